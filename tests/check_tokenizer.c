/* Tokenizer suite: llama2.c's encode/decode semantics through the public API, for the
 * llama2.c tokenizer (tok512.bin attached to stories260K.bin) and for the vocabulary inside
 * stories260K.gguf. Oracles: the independent test vectors (tokens and pieces of "Once upon a
 * time"), the two vocabularies against each other, round trips, and a direct port of
 * llama2.c run.c's O(n^2) `encode` loop (written here, independent of the library's
 * priority-queue implementation). */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "suite_run.h"

#define MODELS AG_SHARED_DIR "/models/"
#define VECTORS AG_SHARED_DIR "/vectors/"

static const int32_t ONCE_IDS[5] = {1, 403, 407, 261, 378};

static ag_model *load_bin(void) {
    ag_model_options o;
    ck_assert_int_eq(AG_MODEL_OPTIONS_INIT(o), AG_OK);
    o.tokenizer_path = MODELS "tok512.bin";
    ag_model *m = NULL;
    ag_status st = ag_model_load(&m, MODELS "stories260K.bin", &o);
    ck_assert_msg(st == AG_OK, "load stories260K.bin + tok512.bin: %s", ag_last_error());
    return m;
}

static ag_model *load_gguf(void) {
    ag_model *m = NULL;
    ag_status st = ag_model_load(&m, MODELS "stories260K.gguf", NULL);
    ck_assert_msg(st == AG_OK, "load stories260K.gguf: %s", ag_last_error());
    return m;
}

/* Texts for cross-checks: ASCII, unicode, emoji (byte fallback), empty, whitespace. */
static const char *const TEXTS[] = {
    "",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park. One day, she saw a big, red ball.",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "a",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "  leading spaces",
    "trailing spaces   ",
    "a  b   c    d",
    "line one\nline two\r\nline three",
    "tabs\tand\tmore\ttabs",
    "don't \"quote\" me; (please) [ok] {fine} <tag>",
    "1234567890 3.14159 -42 +7",
    "ünïcödé àccénts",
    "naïve café résumé",
    "Straße",
    "Ωμέγα αλφάβητο",
    "日本語のテキスト",
    "中文",
    "한국어",
    "😀",
    "emoji party 🎉🎈🥳!",
    "👩‍👩‍👧 family (zero width joiner)",
    "mixed ascii and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
    "<s>",
    "</s>",
    "<unk>",
    "<0x41>",
    ("\xe2\x96\x81" "already a sentencepiece space"),
    "\x01\x02\x03 control bytes \x7f",
    "invalid utf8: \xff\xfe \x80\x80 \xc3",
    "\xe2\x82",
    "\x80\x81\x82\x83\x84\x85",
    "A very long word: supercalifragilisticexpialidocious!",
    "Tom and Sue went to the store. They bought apples, milk and bread.",
};
#define N_TEXTS (sizeof TEXTS / sizeof TEXTS[0])

static size_t encode(const ag_model *m, const char *text, int bos, int32_t *out, size_t cap) {
    size_t n = 0;
    ag_status st = ag_tokenize(m, text, bos, out, cap, &n);
    ck_assert_msg(st == AG_OK, "ag_tokenize(\"%s\"): %s", text, ag_last_error());
    return n;
}

/* The same without Check bookkeeping (for loops): 1 on success. */
static int try_encode(const ag_model *m, const char *text, int bos, int32_t *out, size_t cap, size_t *n) {
    return ag_tokenize(m, text, bos, out, cap, n) == AG_OK;
}

/* Concatenate decode(prev, tok) for tokens[from..n), with prev = tokens[i-1] (or -1). */
/* Returns NULL if a token fails to decode (no Check calls: used in loops). */
static char *decode_all(const ag_model *m, const int32_t *t, size_t n, size_t from, size_t *len) {
    size_t cap = 64, used = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    for (size_t i = from; i < n; i++) {
        char piece[64];
        size_t pl = 0;
        ag_status st = ag_token_decode(m, i ? t[i - 1] : -1, t[i], piece, sizeof piece, &pl);
        if (st != AG_OK) {
            free(s);
            return NULL;
        }
        if (used + pl + 1 > cap) {
            cap = 2 * (used + pl + 1);
            char *grown = realloc(s, cap);
            if (!grown) {
                free(s);
                return NULL;
            }
            s = grown;
        }
        memcpy(s + used, piece, pl);
        used += pl;
    }
    s[used] = '\0';
    *len = used;
    return s;
}

static char *read_text_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *size = (size_t)n;
    return buf;
}

START_TEST(test_once_upon_a_time) {
    ag_model *ms[2] = {load_bin(), load_gguf()};
    for (int k = 0; k < 2; k++) {
        int32_t t[16];
        size_t n = encode(ms[k], "Once upon a time", 1, t, 16);
        ck_assert_uint_eq(n, 5);
        ck_assert_mem_eq(t, ONCE_IDS, sizeof ONCE_IDS);
        /* Without BOS: the same ids minus the first. */
        n = encode(ms[k], "Once upon a time", 0, t, 16);
        ck_assert_uint_eq(n, 4);
        ck_assert_mem_eq(t, ONCE_IDS + 1, 4 * sizeof(int32_t));
        ag_model_info info;
        info.struct_size = sizeof info;
        ck_assert_int_eq(ag_model_get_info(ms[k], &info), AG_OK);
        ck_assert_int_eq(info.has_tokenizer, 1);
        ck_assert_int_eq(info.bos_id, 1);
        ck_assert_int_eq(info.eos_id, 2);
        ag_model_free(ms[k]);
    }
}
END_TEST

START_TEST(test_pieces_match_vectors) {
    size_t size;
    char *json = read_text_file(VECTORS "stories260K-once-upon-a-time.json", &size);
    cJSON *root = cJSON_ParseWithLength(json, size);
    free(json);
    ck_assert_ptr_nonnull(root);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    const cJSON *pieces = cJSON_GetObjectItemCaseSensitive(root, "pieces");
    ck_assert(cJSON_IsString(prompt) && cJSON_IsArray(tokens) && cJSON_IsArray(pieces));
    int n = cJSON_GetArraySize(tokens);
    ck_assert_int_eq(n, cJSON_GetArraySize(pieces));
    ck_assert_int_eq(n, 5);

    ag_model *ms[2] = {load_bin(), load_gguf()};
    for (int k = 0; k < 2; k++) {
        int32_t t[16];
        size_t nt = encode(ms[k], prompt->valuestring, 1, t, 16);
        ck_assert_uint_eq(nt, (size_t)n);
        int bad = -1;
        char got_bad[64] = "", want_bad[64] = "";
        for (int i = 0; i < n; i++) {
            const cJSON *ti = cJSON_GetArrayItem(tokens, i), *pi = cJSON_GetArrayItem(pieces, i);
            char piece[64];
            size_t pl;
            ag_status st = ag_token_decode(ms[k], i ? t[i - 1] : -1, t[i], piece, sizeof piece, &pl);
            /* The GGUF vocabulary spells BOS "<s>"; llama2.c's .bin writes "\n<s>\n". */
            const char *want = (k == 1 && i == 0) ? "<s>" : pi->valuestring;
            if (bad < 0 && (st != AG_OK || (int)ti->valuedouble != t[i] || strcmp(piece, want) != 0 || pl != strlen(want))) {
                bad = i;
                snprintf(got_bad, sizeof got_bad, "%s", piece);
                snprintf(want_bad, sizeof want_bad, "%s", want);
            }
        }
        ck_assert_msg(bad < 0, "model %d: piece %d is \"%s\", vectors say \"%s\"", k, bad, got_bad, want_bad);
        ag_model_free(ms[k]);
    }
    cJSON_Delete(root);
}
END_TEST

START_TEST(test_bin_and_gguf_agree_on_ids) {
    ag_model *b = load_bin(), *g = load_gguf();
    int first_bad = -1, n_bad = 0;
    for (size_t i = 0; i < N_TEXTS; i++) {
        for (int bos = 0; bos < 2; bos++) {
            int32_t tb[512], tg[512];
            size_t nb = 0, ng = 0;
            int ok = try_encode(b, TEXTS[i], bos, tb, 512, &nb) && try_encode(g, TEXTS[i], bos, tg, 512, &ng);
            if (!ok || nb != ng || memcmp(tb, tg, nb * sizeof *tb) != 0) {
                n_bad++;
                if (first_bad < 0) first_bad = (int)i;
            }
        }
    }
    ck_assert_msg(n_bad == 0, "%d encodings differ; first text #%d \"%s\"", n_bad, first_bad,
                  first_bad >= 0 ? TEXTS[first_bad] : "");
    ag_model_free(b);
    ag_model_free(g);
}
END_TEST

START_TEST(test_bin_and_gguf_agree_on_pieces) {
    ag_model *b = load_bin(), *g = load_gguf();
    const int32_t prevs[3] = {-1, 1, 100};
    int first_bad = -1, n_bad = 0;
    for (int32_t t = 0; t < 512; t++) {
        const char *pb = "", *pg = "";
        float sb = 0, sg = 1;
        int same = ag_token_piece(b, t, &pb, &sb) == AG_OK && ag_token_piece(g, t, &pg, &sg) == AG_OK;
        /* BOS/EOS: llama2.c writes "\n<s>\n" / "\n</s>\n", GGUF "<s>" / "</s>". */
        int control = t == 1 || t == 2;
        same = same && sb == sg;
        if (control) same = same && strncmp(pb + 1, pg, strlen(pg)) == 0 && pb[0] == '\n';
        else same = same && strcmp(pb, pg) == 0;
        for (int k = 0; k < 3 && !control; k++) {
            char db[64], dg[64];
            size_t lb = 0, lg = 0;
            ag_status s1 = ag_token_decode(b, prevs[k], t, db, sizeof db, &lb);
            ag_status s2 = ag_token_decode(g, prevs[k], t, dg, sizeof dg, &lg);
            same = same && s1 == AG_OK && s2 == AG_OK && lb == lg && memcmp(db, dg, lb) == 0;
        }
        if (!same) {
            n_bad++;
            if (first_bad < 0) first_bad = t;
        }
    }
    ck_assert_msg(n_bad == 0, "%d tokens differ between tok512.bin and the GGUF vocabulary; first %d", n_bad, first_bad);
    ag_model_free(b);
    ag_model_free(g);
}
END_TEST

START_TEST(test_round_trip) {
    ag_model *ms[2] = {load_bin(), load_gguf()};
    for (int k = 0; k < 2; k++) {
        int first_bad = -1;
        for (size_t i = 0; i < N_TEXTS; i++) {
            int32_t t[512];
            size_t len = 0, n = 0;
            /* With BOS: the piece after BOS drops the dummy-prefix space: exact text back. */
            int ok = try_encode(ms[k], TEXTS[i], 1, t, 512, &n);
            char *s = ok ? decode_all(ms[k], t, n, 1, &len) : NULL;
            ok = s && len == strlen(TEXTS[i]) && strcmp(s, TEXTS[i]) == 0 && t[0] == 1;
            free(s);
            /* Without BOS: the dummy prefix stays. */
            ok = ok && try_encode(ms[k], TEXTS[i], 0, t, 512, &n);
            s = ok ? decode_all(ms[k], t, n, 0, &len) : NULL;
            if (!s) ok = 0;
            else if (TEXTS[i][0]) ok = ok && s[0] == ' ' && strcmp(s + 1, TEXTS[i]) == 0;
            else ok = ok && n == 0 && len == 0;
            free(s);
            if (!ok && first_bad < 0) first_bad = (int)i;
        }
        ck_assert_msg(first_bad < 0, "model %d: round trip fails for text #%d \"%s\"", k, first_bad,
                      first_bad >= 0 ? TEXTS[first_bad] : "");
        ag_model_free(ms[k]);
    }
}
END_TEST

START_TEST(test_empty_and_whitespace) {
    ag_model *m = load_bin();
    int32_t t[8];
    ck_assert_uint_eq(encode(m, "", 0, t, 8), 0);
    ck_assert_uint_eq(encode(m, "", 1, t, 8), 1);
    ck_assert_int_eq(t[0], 1);
    /* " " -> the dummy prefix and the space: two " " pieces (tok512 has no "  " piece). */
    const char *piece;
    size_t n = encode(m, " ", 0, t, 8);
    ck_assert_uint_ge(n, 1);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(ag_token_piece(m, t[i], &piece, NULL), AG_OK);
        ck_assert_str_eq(piece, " ");
    }
    ag_model_free(m);
}
END_TEST

START_TEST(test_byte_fallback) {
    ag_model *ms[2] = {load_bin(), load_gguf()};
    for (int k = 0; k < 2; k++) {
        /* 😀 = F0 9F 98 80 is not a piece: four <0xNN> tokens after the dummy prefix. */
        int32_t t[16];
        size_t n = encode(ms[k], "\xF0\x9F\x98\x80", 1, t, 16);
        ck_assert_uint_eq(n, 6);
        const char *piece;
        ck_assert_int_eq(ag_token_piece(ms[k], t[1], &piece, NULL), AG_OK);
        ck_assert_str_eq(piece, " ");
        const unsigned char bytes[4] = {0xF0, 0x9F, 0x98, 0x80};
        for (int i = 0; i < 4; i++) {
            char want[8];
            snprintf(want, sizeof want, "<0x%02X>", bytes[i]);
            ck_assert_int_eq(ag_token_piece(ms[k], t[2 + i], &piece, NULL), AG_OK);
            ck_assert_str_eq(piece, want);
            ck_assert_int_eq(t[2 + i], bytes[i] + 3);
        }
        /* Every byte token decodes to its single byte, whatever precedes it. */
        int first_bad = -1;
        for (int b = 0; b < 256; b++) {
            char buf[4];
            size_t len = 99;
            ag_status st = ag_token_decode(ms[k], 1, b + 3, buf, sizeof buf, &len);
            if ((st != AG_OK || len != 1 || (unsigned char)buf[0] != b || buf[1] != '\0') && first_bad < 0) first_bad = b;
        }
        ck_assert_msg(first_bad < 0, "model %d: byte token <0x%02X> does not decode to its byte", k, first_bad);
        ag_model_free(ms[k]);
    }
}
END_TEST

START_TEST(test_buffer_too_small) {
    ag_model *m = load_gguf();
    size_t n = 0;
    ck_assert_int_eq(ag_tokenize(m, "Once upon a time", 1, NULL, 0, &n), AG_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 5);
    int32_t t[5];
    n = 0;
    ck_assert_int_eq(ag_tokenize(m, "Once upon a time", 1, t, 4, &n), AG_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 5);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_tokenize"));
    ck_assert_int_eq(ag_tokenize(m, "Once upon a time", 1, t, 5, &n), AG_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(t, ONCE_IDS, sizeof t);
    ck_assert_int_eq(ag_tokenize(m, "", 0, NULL, 0, &n), AG_OK);
    ck_assert_uint_eq(n, 0);

    /* "Once" needs 5 bytes with the NUL. */
    char buf[8];
    size_t len = 0;
    ck_assert_int_eq(ag_token_decode(m, 1, 403, buf, 4, &len), AG_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(ag_token_decode(m, 1, 403, NULL, 0, &len), AG_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(ag_token_decode(m, 1, 403, buf, 5, &len), AG_OK);
    ck_assert_str_eq(buf, "Once");
    ck_assert_int_eq(ag_token_decode(m, 1, 403, buf, 5, NULL), AG_OK);
    /* Not after BOS: the leading space stays. */
    ck_assert_int_eq(ag_token_decode(m, 403, 407, buf, sizeof buf, &len), AG_OK);
    ck_assert_str_eq(buf, " upon");
    ag_model_free(m);
}
END_TEST

START_TEST(test_out_of_range) {
    ag_model *m = load_bin();
    const int32_t bad[] = {-1, -100, 512, 513, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[16];
        size_t len = 0;
        ck_assert_int_eq(ag_token_decode(m, -1, bad[i], buf, sizeof buf, &len), AG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(ag_last_error(), "token"));
        const char *piece = NULL;
        ck_assert_int_eq(ag_token_piece(m, bad[i], &piece, NULL), AG_ERR_INVALID_ARGUMENT);
    }
    /* An out-of-range prev is harmless: it is only compared with BOS. */
    char buf[16];
    ck_assert_int_eq(ag_token_decode(m, INT32_MIN, 403, buf, sizeof buf, NULL), AG_OK);
    ck_assert_int_eq(ag_tokenize(m, NULL, 1, NULL, 0, &(size_t){0}), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_tokenize(m, "x", 1, NULL, 0, NULL), AG_ERR_INVALID_ARGUMENT);
    ag_model_free(m);
}
END_TEST

START_TEST(test_no_tokenizer) {
    ag_model *m = NULL;
    ck_assert_int_eq(ag_model_load(&m, MODELS "stories260K.bin", NULL), AG_OK);
    size_t n;
    int32_t t[4];
    ck_assert_int_eq(ag_tokenize(m, "hi", 1, t, 4, &n), AG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "stories260K.bin"));
    char buf[8];
    ck_assert_int_eq(ag_token_decode(m, -1, 5, buf, sizeof buf, NULL), AG_ERR_STATE);
    ag_model_info info;
    info.struct_size = sizeof info;
    ck_assert_int_eq(ag_model_get_info(m, &info), AG_OK);
    ck_assert_int_eq(info.has_tokenizer, 0);
    ck_assert_int_eq(info.bos_id, -1);
    ag_model_free(m);
}
END_TEST

/* ---- an independent port of llama2.c run.c `encode` ------------------------------------- */

typedef struct naive_vocab {
    int n;
    const char **piece;
    float *score;
    int bos;
} naive_vocab;

static int naive_lookup(const naive_vocab *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->piece[i], s) == 0) return i;
    return -1;
}

static void naive_vocab_init(naive_vocab *v, const ag_model *m) {
    v->n = 512;
    v->piece = calloc(512, sizeof *v->piece);
    v->score = calloc(512, sizeof *v->score);
    ck_assert(v->piece && v->score);
    int bad = 0;
    for (int i = 0; i < 512; i++) bad += ag_token_piece(m, i, &v->piece[i], &v->score[i]) != AG_OK;
    ck_assert_int_eq(bad, 0);
    v->bos = 1;
}

/* run.c encode(), verbatim in logic (bos, no eos); tokens must hold strlen(text)+3. */
static int naive_encode(const naive_vocab *v, const char *text, int bos, int *tokens) {
    char buf[64];
    size_t str_len = 0;
    int n = 0;
    if (bos) tokens[n++] = v->bos;
    if (text[0] != '\0') tokens[n++] = naive_lookup(v, " ");
    for (const char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) str_len = 0;
        buf[str_len++] = *c;
        buf[str_len] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4) continue;
        int id = naive_lookup(v, buf);
        if (id != -1) tokens[n++] = id;
        else
            for (size_t i = 0; i < str_len; i++) tokens[n++] = (unsigned char)buf[i] + 3;
        str_len = 0;
    }
    while (1) {
        float best_score = -1e10f;
        int best_id = -1, best_idx = -1;
        for (int i = 0; i < n - 1; i++) {
            snprintf(buf, sizeof buf, "%s%s", v->piece[tokens[i]], v->piece[tokens[i + 1]]);
            int id = naive_lookup(v, buf);
            if (id != -1 && v->score[id] > best_score) {
                best_score = v->score[id];
                best_id = id;
                best_idx = i;
            }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (int i = best_idx + 1; i < n - 1; i++) tokens[i] = tokens[i + 1];
        n--;
    }
    return n;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random text of up to max_len bytes: words, spaces, punctuation, multi-byte characters
 * and (when `raw`) arbitrary bytes including invalid UTF-8. */
static void random_text(uint64_t *s, char *out, size_t max_len, int raw) {
    static const char *const atoms[] = {"the", " ", "  ", "a", "e", "ing", "Lily", "Tim", ",", ".", "!", "\n", "\t",
                                        "ball", "happy", "ö", "é", "日", "😀", "ß", "Ω", "'", "\"", "1", "42", "x",
                                        "qu", "zz", "<s>", "<0x41>", "\xe2\x96\x81"};
    size_t n = 0, target = (size_t)(rng_next(s) % max_len);
    while (n < target) {
        const char *a;
        char one[2];
        if (raw && rng_next(s) % 4 == 0) {
            one[0] = (char)(1 + rng_next(s) % 255);
            one[1] = '\0';
            a = one;
        } else {
            a = atoms[rng_next(s) % (sizeof atoms / sizeof atoms[0])];
        }
        size_t l = strlen(a);
        if (n + l > max_len) break;
        memcpy(out + n, a, l);
        n += l;
    }
    out[n] = '\0';
}

START_TEST(test_matches_run_c_encode) {
    ag_model *ms[2] = {load_bin(), load_gguf()};
    for (int k = 0; k < 2; k++) {
        naive_vocab v;
        naive_vocab_init(&v, ms[k]);
        uint64_t seed = 0x9E3779B97F4A7C15ull + (uint64_t)k;
        int first_bad = -1;
        char bad_text[200] = "";
        for (int it = 0; it < 300; it++) {
            char text[160];
            random_text(&seed, text, 150, it % 2);
            int want[200];
            int32_t got[200];
            int bos = it % 3 != 0;
            int nw = naive_encode(&v, text, bos, want);
            size_t ng = 0;
            int same = try_encode(ms[k], text, bos, got, 200, &ng) && (size_t)nw == ng;
            for (int i = 0; same && i < nw; i++) same = want[i] == got[i];
            if (!same && first_bad < 0) {
                first_bad = it;
                snprintf(bad_text, sizeof bad_text, "%s", text);
            }
        }
        ck_assert_msg(first_bad < 0, "model %d: iteration %d differs from run.c's encode for \"%s\"", k, first_bad, bad_text);
        free(v.piece);
        free(v.score);
        ag_model_free(ms[k]);
    }
}
END_TEST

START_TEST(test_long_text) {
    /* A long text (~200 KB) encodes quickly and round-trips exactly. */
    const char *para = "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                       "park. One day, she saw a big, red ball. \xF0\x9F\x98\x80 Ünïcödé!\n";
    size_t pl = strlen(para), reps = 1500, n = pl * reps;
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * pl, para, pl);
    text[n] = '\0';
    ag_model *m = load_gguf();
    size_t need = 0;
    ck_assert_int_eq(ag_tokenize(m, text, 1, NULL, 0, &need), AG_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_gt(need, reps);
    ck_assert_uint_le(need, n + 2);
    int32_t *t = malloc(need * sizeof *t);
    ck_assert_ptr_nonnull(t);
    size_t got = encode(m, text, 1, t, need);
    ck_assert_uint_eq(got, need);
    size_t len;
    char *back = decode_all(m, t, got, 1, &len);
    ck_assert_ptr_nonnull(back);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(memcmp(back, text, n), 0);
    free(back);
    free(t);
    free(text);
    ag_model_free(m);
}
END_TEST

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_once_upon_a_time);
    tcase_add_test(tc, test_pieces_match_vectors);
    tcase_add_test(tc, test_bin_and_gguf_agree_on_ids);
    tcase_add_test(tc, test_bin_and_gguf_agree_on_pieces);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_empty_and_whitespace);
    tcase_add_test(tc, test_byte_fallback);
    tcase_add_test(tc, test_buffer_too_small);
    tcase_add_test(tc, test_out_of_range);
    tcase_add_test(tc, test_no_tokenizer);
    tcase_add_test(tc, test_matches_run_c_encode);
    tcase_add_test(tc, test_long_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(tokenizer_suite(), CK_NORMAL);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
