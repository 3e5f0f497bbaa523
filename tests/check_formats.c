/* Format suite: bad input for the llama2.c .bin reader, the GGUF reader and the llama2.c
 * tokenizer reader. Copies of the real fixtures are mutated in memory (ag_model_load_memory)
 * or written to a private temp directory (ag_model_load, tokenizer_path). Every failure
 * must return the right status, leave *out NULL and name the file and the field in
 * ag_last_error(). A small independent GGUF walker and writer (below) locates fields and
 * rebuilds variants (dropped/added keys and tensors, other alignment, F16 weights).
 * White-box checks compare weight pointers through model/model.h. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attrgraph.h"
#include "model/model.h"
#include "suite_run.h"

#define MODELS AG_SHARED_DIR "/models/"

/* ---- fixtures ------------------------------------------------------------------------------ */

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(d);
    memcpy(d, p, n);
    return d;
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static char g_tmpdir[256];

static void make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/ag_formats_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(g_tmpdir) != NULL, "mkdtemp failed");
}

static void remove_tmpdir(void) { ck_assert_int_eq(rmdir(g_tmpdir), 0); }

static void write_tmp(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    if (n) ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- expectation helpers ------------------------------------------------------------------- */

/* Load `data` from memory and check status, *out and the message. Returns 1 when all hold,
 * else 0 with the reason in `why`. f1/f2 (may be NULL) must appear in the message. */
static int load_expect(const void *data, size_t size, const char *name, const ag_model_options *o, ag_status want,
                       const char *f1, const char *f2, char *why, size_t cap) {
    ag_model *m = (ag_model *)(uintptr_t)1;
    ag_status st = ag_model_load_memory(&m, data, size, 0, name, o);
    const char *e = ag_last_error();
    if (st == AG_OK) ag_model_free(m);
    if (st != want) {
        snprintf(why, cap, "%s: status %d, expected %d (%s)", name, (int)st, (int)want, e);
        return 0;
    }
    if (st == AG_OK) return 1;
    if (m != NULL) {
        snprintf(why, cap, "%s: *out is not NULL after failure", name);
        return 0;
    }
    const char *need[3] = {name, f1, f2};
    for (int i = 0; i < 3; i++) {
        if (need[i] && !strstr(e, need[i])) {
            snprintf(why, cap, "%s: message \"%s\" does not mention \"%s\"", name, e, need[i]);
            return 0;
        }
    }
    return 1;
}

#define EXPECT_LOAD(data, size, name, opts, status, f1, f2)                                        \
    do {                                                                                           \
        char why_[1400];                                                                           \
        ck_assert_msg(load_expect(data, size, name, opts, status, f1, f2, why_, sizeof why_), "%s", \
                      why_);                                                                       \
    } while (0)

/* Load a file path and check the same things. */
static void expect_path(const char *path, const ag_model_options *o, ag_status want, const char *f1, const char *f2) {
    ag_model *m = (ag_model *)(uintptr_t)1;
    ag_status st = ag_model_load(&m, path, o);
    if (st == AG_OK) ag_model_free(m);
    const char *e = ag_last_error();
    ck_assert_msg(st == want, "%s: status %d, expected %d (%s)", path, (int)st, (int)want, e);
    if (want == AG_OK) return;
    ck_assert_ptr_null(m);
    ck_assert_msg(!f1 || strstr(e, f1), "message \"%s\" does not mention \"%s\"", e, f1);
    ck_assert_msg(!f2 || strstr(e, f2), "message \"%s\" does not mention \"%s\"", e, f2);
}

/* ---- an independent GGUF walker ------------------------------------------------------------ */

typedef struct tkv {
    char key[128];
    size_t start;    /* offset of the key length */
    size_t type_off; /* offset of the value type */
    uint32_t type;
    size_t val;      /* offset of the value */
    size_t end;
} tkv;

typedef struct tti {
    char name[96];
    size_t start;
    size_t ndims_off;
    uint32_t n_dims;
    size_t dims_off;
    uint64_t ne[4];
    size_t type_off;
    uint32_t type;
    size_t offset_off;
    uint64_t offset;
    size_t end;
} tti;

typedef struct tgguf {
    const uint8_t *d;
    size_t size;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    tkv kv[64];
    tti t[128];
    size_t kv_end, infos_end, data_start;
} tgguf;

static size_t walk_value(const uint8_t *d, size_t p, uint32_t type) {
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) return p + 8 + (size_t)get_u64(d + p);
    if (type == 9) {
        uint32_t et = get_u32(d + p);
        uint64_t n = get_u64(d + p + 4);
        p += 12;
        for (uint64_t i = 0; i < n; i++) p = walk_value(d, p, et);
        return p;
    }
    if (type >= 13) ck_abort_msg("fixture: unknown value type %u", type);
    return p + sz[type];
}

static void gguf_parse(tgguf *g, const uint8_t *d, size_t size) {
    memset(g, 0, sizeof *g);
    g->d = d;
    g->size = size;
    g->version = get_u32(d + 4);
    g->n_tensors = get_u64(d + 8);
    g->n_kv = get_u64(d + 16);
    if (memcmp(d, "GGUF", 4) != 0 || g->n_kv > 64 || g->n_tensors > 128) ck_abort_msg("fixture: unexpected GGUF header");
    size_t p = 24;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        tkv *k = &g->kv[i];
        k->start = p;
        uint64_t n = get_u64(d + p);
        if (n >= sizeof k->key) ck_abort_msg("fixture: key %llu is too long", (unsigned long long)i);
        memcpy(k->key, d + p + 8, (size_t)n);
        p += 8 + (size_t)n;
        k->type_off = p;
        k->type = get_u32(d + p);
        k->val = p + 4;
        k->end = p = walk_value(d, p + 4, k->type);
    }
    g->kv_end = p;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        tti *t = &g->t[i];
        t->start = p;
        uint64_t n = get_u64(d + p);
        if (n >= sizeof t->name) ck_abort_msg("fixture: tensor name %llu is too long", (unsigned long long)i);
        memcpy(t->name, d + p + 8, (size_t)n);
        p += 8 + (size_t)n;
        t->ndims_off = p;
        t->n_dims = get_u32(d + p);
        p += 4;
        t->dims_off = p;
        for (int k = 0; k < 4; k++) t->ne[k] = 1;
        for (uint32_t k = 0; k < t->n_dims; k++) t->ne[k] = get_u64(d + p + 8 * k);
        p += 8 * t->n_dims;
        t->type_off = p;
        t->type = get_u32(d + p);
        t->offset_off = p + 4;
        t->offset = get_u64(d + p + 4);
        t->end = p = p + 12;
    }
    g->infos_end = p;
    g->data_start = (p + 31) / 32 * 32;
}

static const tkv *find_kv(const tgguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    ck_abort_msg("key %s not in the fixture", key);
    return NULL;
}

static const tti *find_tensor(const tgguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->t[i].name, name) == 0) return &g->t[i];
    ck_abort_msg("tensor %s not in the fixture", name);
    return NULL;
}

/* Offset of element `idx` of an array value starting at `val`. */
static size_t array_elem(const uint8_t *d, size_t val, uint64_t idx) {
    uint32_t et = get_u32(d + val);
    size_t p = val + 12;
    for (uint64_t i = 0; i < idx; i++) p = walk_value(d, p, et);
    return p;
}

/* float -> IEEE half, round to nearest even (finite inputs in half range or below). */
static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t e = (int32_t)((x >> 23) & 0xFF) - 127 + 15;
    uint32_t mant = x & 0x7FFFFFu;
    if (e >= 31) return (uint16_t)(sign | 0x7C00u);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)e << 10 | mant >> 13, rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

typedef struct rebuild_opts {
    const uint8_t *extra_kv; /* raw kv records appended after the existing ones */
    size_t extra_len;
    int n_extra;
    const char *drop_kv;     /* a key to leave out, or NULL */
    const char *drop_tensor; /* a tensor to leave out, or NULL */
    int to_f16;              /* convert every tensor to F16 (new offsets) */
    size_t align;            /* data-section alignment (default 32) */
} rebuild_opts;

/* Write a new GGUF from the parsed fixture with the changes in `ro`. */
static uint8_t *gguf_rebuild(const tgguf *g, const rebuild_opts *ro, size_t *out_size) {
    size_t align = ro->align ? ro->align : 32;
    size_t cap = g->size * 2 + ro->extra_len + 4096;
    uint8_t *o = calloc(1, cap);
    ck_assert_ptr_nonnull(o);
    const uint8_t *d = g->d;
    memcpy(o, d, 24);
    uint64_t n_t = g->n_tensors - (ro->drop_tensor ? 1 : 0);
    uint64_t n_kv = g->n_kv + (uint64_t)ro->n_extra - (ro->drop_kv ? 1 : 0);
    put_u64(o + 8, n_t);
    put_u64(o + 16, n_kv);
    size_t p = 24;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (ro->drop_kv && strcmp(g->kv[i].key, ro->drop_kv) == 0) continue;
        memcpy(o + p, d + g->kv[i].start, g->kv[i].end - g->kv[i].start);
        p += g->kv[i].end - g->kv[i].start;
    }
    if (ro->extra_len) memcpy(o + p, ro->extra_kv, ro->extra_len);
    p += ro->extra_len;
    size_t new_off = 0;
    uint64_t *offs = calloc(g->n_tensors, sizeof *offs);
    ck_assert_ptr_nonnull(offs);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const tti *t = &g->t[i];
        if (ro->drop_tensor && strcmp(t->name, ro->drop_tensor) == 0) continue;
        memcpy(o + p, d + t->start, t->end - t->start);
        size_t tp = p + (t->type_off - t->start);
        if (ro->to_f16) {
            put_u32(o + tp, 1);
            put_u64(o + tp + 4, new_off);
            offs[i] = new_off;
            uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            new_off = (new_off + 2 * n + 31) / 32 * 32;
        }
        p += t->end - t->start;
    }
    p = (p + align - 1) / align * align;
    if (ro->to_f16) {
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const tti *t = &g->t[i];
            if (ro->drop_tensor && strcmp(t->name, ro->drop_tensor) == 0) continue;
            uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            for (uint64_t k = 0; k < n; k++) {
                float f;
                memcpy(&f, d + g->data_start + t->offset + 4 * k, 4);
                uint16_t h = float_to_half(f);
                o[p + offs[i] + 2 * k] = (uint8_t)h;
                o[p + offs[i] + 2 * k + 1] = (uint8_t)(h >> 8);
            }
        }
        p += new_off;
    } else {
        memcpy(o + p, d + g->data_start, g->size - g->data_start);
        p += g->size - g->data_start;
    }
    free(offs);
    ck_assert_uint_le(p, cap);
    *out_size = p;
    return o;
}

/* Append a kv record (key, type, raw value bytes) to buf at *n. */
static void kv_append(uint8_t *buf, size_t *n, const char *key, uint32_t type, const void *val, size_t vlen) {
    size_t kl = strlen(key);
    put_u64(buf + *n, kl);
    memcpy(buf + *n + 8, key, kl);
    put_u32(buf + *n + 8 + kl, type);
    memcpy(buf + *n + 12 + kl, val, vlen);
    *n += 12 + kl + vlen;
}

/* ---- white-box weight comparison ------------------------------------------------------------ */

static int weights_equal(const ag_model *a, const ag_model *b, double tol) {
    const agi_config *c = &a->cfg;
    size_t D = (size_t)c->dim, V = (size_t)c->vocab_size, KV = (size_t)c->kv_dim, H = (size_t)c->hidden_dim;
    struct {
        const float *x, *y;
        size_t n;
    } pairs[3 + 9 * 64];
    int np = 0;
#define PAIR(f, n_)                                                                                 \
    do {                                                                                           \
        pairs[np].x = a->w.f;                                                                      \
        pairs[np].y = b->w.f;                                                                      \
        pairs[np].n = (n_);                                                                        \
        np++;                                                                                      \
    } while (0)
    PAIR(token_embedding, V * D);
    PAIR(rms_final, D);
    PAIR(wcls, V * D);
    for (int l = 0; l < c->n_layers && l < 64; l++) {
        PAIR(layers[l].rms_att, D);
        PAIR(layers[l].wq, D * D);
        PAIR(layers[l].wk, KV * D);
        PAIR(layers[l].wv, KV * D);
        PAIR(layers[l].wo, D * D);
        PAIR(layers[l].rms_ffn, D);
        PAIR(layers[l].w1, H * D);
        PAIR(layers[l].w2, D * H);
        PAIR(layers[l].w3, H * D);
    }
#undef PAIR
    for (int i = 0; i < np; i++) {
        if (!pairs[i].x || !pairs[i].y) return 0;
        if (tol == 0) {
            if (memcmp(pairs[i].x, pairs[i].y, pairs[i].n * sizeof(float)) != 0) return 0;
        } else {
            for (size_t k = 0; k < pairs[i].n; k++) {
                double x = pairs[i].x[k], y = pairs[i].y[k];
                if (fabs(x - y) > tol * fabs(x) + 6.0e-8) return 0;
            }
        }
    }
    return 1;
}

/* ---- tests: files and paths ------------------------------------------------------------------ */

START_TEST(test_io_errors) {
    expect_path("/nonexistent/dir/model.bin", NULL, AG_ERR_IO, "/nonexistent/dir/model.bin", NULL);
    expect_path(AG_SHARED_DIR "/models", NULL, AG_ERR_IO, "models", "regular file");

    make_tmpdir();
    char empty[512], tok[512];
    snprintf(empty, sizeof empty, "%s/empty_model.bin", g_tmpdir);
    write_tmp(empty, "", 0);
    expect_path(empty, NULL, AG_ERR_FORMAT, "empty_model.bin", "empty");
    /* An empty tokenizer file. */
    ag_model_options o;
    ck_assert_int_eq(AG_MODEL_OPTIONS_INIT(o), AG_OK);
    o.tokenizer_path = empty;
    expect_path(MODELS "stories260K.bin", &o, AG_ERR_FORMAT, "empty_model.bin", NULL);
    /* A missing tokenizer file. */
    snprintf(tok, sizeof tok, "%s/missing_tok.bin", g_tmpdir);
    o.tokenizer_path = tok;
    expect_path(MODELS "stories260K.bin", &o, AG_ERR_IO, "missing_tok.bin", NULL);
    /* Tokenizer files shorter than the 4-byte header. */
    snprintf(tok, sizeof tok, "%s/tiny_tok.bin", g_tmpdir);
    write_tmp(tok, "\x07\x00", 2);
    expect_path(MODELS "stories260K.gguf", &o, AG_ERR_FORMAT, "tiny_tok.bin", "max_token_length");
    ck_assert_int_eq(unlink(tok), 0);
    ck_assert_int_eq(unlink(empty), 0);
    remove_tmpdir();

    /* NULL and zero-size arguments. */
    ag_model *m = (ag_model *)(uintptr_t)1;
    ck_assert_int_eq(ag_model_load(&m, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(ag_model_load_memory(&m, NULL, 10, 0, "x", NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_model_load_memory(&m, "abc", 0, 0, "zero.bin", NULL), AG_ERR_FORMAT);
    ck_assert_ptr_null(m);
}
END_TEST

/* ---- tests: llama2.c .bin --------------------------------------------------------------------- */

START_TEST(test_llama2c_truncated) {
    size_t size;
    uint8_t *bin = read_file(MODELS "stories260K.bin", &size);
    int n_bad = 0;
    char first[1600] = "";
    size_t cuts[200];
    int nc = 0;
    for (size_t c = 1; c <= 40; c++) cuts[nc++] = c;
    for (int i = 1; i < 150; i++) cuts[nc++] = 40 + (size - 41) * (size_t)i / 150;
    cuts[nc++] = size - 4;
    cuts[nc++] = size - 1;
    for (int i = 0; i < nc; i++) {
        uint8_t *p = dup_bytes(bin, cuts[i]);
        char why[1400];
        if (!load_expect(p, cuts[i], "cut_stories260K.bin", NULL, AG_ERR_FORMAT, "header", NULL, why, sizeof why)) {
            if (!n_bad++) snprintf(first, sizeof first, "cut at %zu: %s", cuts[i], why);
        }
        free(p);
    }
    ck_assert_msg(n_bad == 0, "%d cut points misbehave; first: %s", n_bad, first);
    /* One byte too many is also a size mismatch. */
    uint8_t *p = malloc(size + 1);
    memcpy(p, bin, size);
    p[size] = 0;
    EXPECT_LOAD(p, size + 1, "long_stories260K.bin", NULL, AG_ERR_FORMAT, "header", "1056541");
    free(p);
    free(bin);
}
END_TEST

START_TEST(test_llama2c_header_fields) {
    static const char *const names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    size_t size;
    uint8_t *bin = read_file(MODELS "stories260K.bin", &size);
    const int32_t bad[3] = {0, -3, INT32_MAX};
    for (int f = 0; f < 7; f++) {
        for (int b = 0; b < 3; b++) {
            uint8_t *p = dup_bytes(bin, size);
            put_u32(p + 4 * f, (uint32_t)bad[b]);
            /* A negative vocab_size is legal (unshared classifier): then the size is wrong. */
            EXPECT_LOAD(p, size, "hdr_stories260K.bin", NULL, AG_ERR_FORMAT, names[f], NULL);
            free(p);
        }
    }
    uint8_t *p = dup_bytes(bin, size);
    put_u32(p + 20, (uint32_t)INT32_MIN);
    EXPECT_LOAD(p, size, "min_stories260K.bin", NULL, AG_ERR_FORMAT, "vocab_size", NULL);
    put_u32(p + 20, 512);
    put_u32(p + 12, 7); /* n_heads 7: dim 64 is not a multiple */
    EXPECT_LOAD(p, size, "heads_stories260K.bin", NULL, AG_ERR_FORMAT, "n_heads", NULL);
    put_u32(p + 12, 8);
    put_u32(p + 16, 3); /* n_kv_heads 3 does not divide 8 */
    EXPECT_LOAD(p, size, "kv_stories260K.bin", NULL, AG_ERR_FORMAT, "n_kv_heads", NULL);
    put_u32(p + 16, 4);
    memcpy(p, "ak42", 4);
    EXPECT_LOAD(p, size, "v2_stories260K.bin", NULL, AG_ERR_UNSUPPORTED, "ak42", NULL);
    free(p);
    /* The second model with the first model's header shape fails on size. */
    size_t xs_size;
    uint8_t *xs = read_file(MODELS "llama2xs_model.bin", &xs_size);
    memcpy(xs, bin, 28);
    EXPECT_LOAD(xs, xs_size, "xs_with_260K_header.bin", NULL, AG_ERR_FORMAT, "hidden_dim 172", NULL);
    free(xs);
    free(bin);
}
END_TEST

START_TEST(test_random_bytes) {
    uint64_t s = 0x1234567887654321ull;
    int n_bad = 0;
    char first[1600] = "";
    for (int it = 0; it < 400; it++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t n = 1 + (size_t)(s % 3000);
        uint8_t *p = malloc(n + 32);
        for (size_t i = 0; i < n + 32; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            p[i] = (uint8_t)s;
        }
        if (it % 2 && n >= 24) { /* a plausible GGUF header with random counts */
            memcpy(p, "GGUF", 4);
            put_u32(p + 4, 3);
            put_u64(p + 8, s % 50);
            put_u64(p + 16, (s >> 8) % 50);
        }
        ag_model *m = (ag_model *)(uintptr_t)1;
        ag_status st = ag_model_load_memory(&m, p, n, 0, "random.bin", NULL);
        int ok = (st == AG_ERR_FORMAT || st == AG_ERR_UNSUPPORTED) && m == NULL && strstr(ag_last_error(), "random.bin");
        if (st == AG_OK) ag_model_free(m);
        if (!ok && !n_bad++) snprintf(first, sizeof first, "iteration %d (%zu bytes): status %d: %s", it, n, st, ag_last_error());
        free(p);
    }
    ck_assert_msg(n_bad == 0, "%d random inputs misbehave; first: %s", n_bad, first);
}
END_TEST

/* ---- tests: GGUF ------------------------------------------------------------------------------ */

START_TEST(test_gguf_truncated) {
    size_t size;
    uint8_t *gg = read_file(MODELS "stories260K.gguf", &size);
    tgguf g;
    gguf_parse(&g, gg, size);
    int n_bad = 0;
    char first[1600] = "";
    size_t *cuts = malloc(4000 * sizeof *cuts);
    int nc = 0;
    for (size_t c = 1; c <= 120; c++) cuts[nc++] = c;
    for (size_t c = 121; c < g.data_start + 64; c += 13) cuts[nc++] = c;
    for (int i = 1; i < 120; i++) cuts[nc++] = g.data_start + (size - g.data_start) * (size_t)i / 120;
    cuts[nc++] = size - 1;
    for (int i = 0; i < nc; i++) {
        uint8_t *p = dup_bytes(gg, cuts[i]);
        char why[1400];
        if (!load_expect(p, cuts[i], "cut_stories260K.gguf", NULL, AG_ERR_FORMAT, NULL, NULL, why, sizeof why)) {
            if (!n_bad++) snprintf(first, sizeof first, "cut at %zu: %s", cuts[i], why);
        }
        free(p);
    }
    free(cuts);
    ck_assert_msg(n_bad == 0, "%d cut points misbehave; first: %s", n_bad, first);
    /* Named fields at a few cuts. */
    const tkv *tok = find_kv(&g, "tokenizer.ggml.tokens");
    EXPECT_LOAD(gg, 10, "c1.gguf", NULL, AG_ERR_FORMAT, "tensor_count", NULL);
    EXPECT_LOAD(gg, tok->end - 3, "c2.gguf", NULL, AG_ERR_FORMAT, "tokenizer.ggml.tokens", NULL);
    EXPECT_LOAD(gg, g.t[5].start + 30, "c3.gguf", NULL, AG_ERR_FORMAT, g.t[5].name, NULL);
    EXPECT_LOAD(gg, size - 1, "c4.gguf", NULL, AG_ERR_FORMAT, g.t[g.n_tensors - 1].name, "offset");
    free(gg);
}
END_TEST

typedef enum { M_U32, M_U64, M_BYTES } mut_kind;

START_TEST(test_gguf_mutations) {
    size_t size;
    uint8_t *gg = read_file(MODELS "stories260K.gguf", &size);
    tgguf g;
    gguf_parse(&g, gg, size);
    const size_t data_size = size - g.data_start;
    struct {
        const char *what;
        size_t off;
        mut_kind kind;
        uint64_t v;
        const char *bytes;
        ag_status want;
        const char *f1, *f2;
    } cases[64];
    int n = 0;
#define CASE(w_, off_, kind_, v_, bytes_, want_, f1_, f2_)                                          \
    do {                                                                                           \
        cases[n].what = (w_);                                                                      \
        cases[n].off = (off_);                                                                     \
        cases[n].kind = (kind_);                                                                   \
        cases[n].v = (v_);                                                                         \
        cases[n].bytes = (bytes_);                                                                 \
        cases[n].want = (want_);                                                                   \
        cases[n].f1 = (f1_);                                                                       \
        cases[n].f2 = (f2_);                                                                       \
        n++;                                                                                       \
    } while (0)
    const tti *q0 = find_tensor(&g, "blk.0.attn_q.weight");
    const tti *k0 = find_tensor(&g, "blk.0.attn_k.weight");
    const tti *up2 = find_tensor(&g, "blk.2.ffn_up.weight");
    const tti *fn4 = find_tensor(&g, "blk.4.ffn_norm.weight");
    const tti *q3 = find_tensor(&g, "blk.3.attn_q.weight");
    const tti *emb = find_tensor(&g, "token_embd.weight");
    const tti *last = &g.t[g.n_tensors - 1];
    const tkv *tokens = find_kv(&g, "tokenizer.ggml.tokens");
    const tkv *scores = find_kv(&g, "tokenizer.ggml.scores");

    CASE("magic", 0, M_BYTES, 0, "GGUX", AG_ERR_FORMAT, "header", NULL);
    CASE("version 1", 4, M_U32, 1, NULL, AG_ERR_UNSUPPORTED, "version", NULL);
    CASE("version 4", 4, M_U32, 4, NULL, AG_ERR_UNSUPPORTED, "version", NULL);
    CASE("version 0", 4, M_U32, 0, NULL, AG_ERR_FORMAT, "version", NULL);
    CASE("big-endian", 4, M_U32, 0x03000000u, NULL, AG_ERR_UNSUPPORTED, "version", "big-endian");
    CASE("version 2", 4, M_U32, 2, NULL, AG_OK, NULL, NULL);
    CASE("tensor_count huge", 8, M_U64, 1ull << 62, NULL, AG_ERR_FORMAT, "tensor_count", NULL);
    CASE("kv_count huge", 16, M_U64, UINT64_MAX, NULL, AG_ERR_FORMAT, "kv_count", NULL);
    CASE("tensor_count + 1", 8, M_U64, g.n_tensors + 1, NULL, AG_ERR_FORMAT, NULL, NULL);
    CASE("key length huge", g.kv[0].start, M_U64, 1ull << 63, NULL, AG_ERR_FORMAT, "key 0 name length", NULL);
    CASE("array length huge", tokens->val + 4, M_U64, 1ull << 60, NULL, AG_ERR_FORMAT, "tokenizer.ggml.tokens", "array length");
    CASE("element length huge", array_elem(gg, tokens->val, 37), M_U64, 1ull << 40, NULL, AG_ERR_FORMAT,
         "tokenizer.ggml.tokens", "length");
    CASE("unknown value type", find_kv(&g, "general.name")->type_off, M_U32, 13, NULL, AG_ERR_FORMAT, "general.name", "type 13");
    CASE("unknown element type", tokens->val, M_U32, 77, NULL, AG_ERR_FORMAT, "tokenizer.ggml.tokens", "string");
    CASE("scores not float", scores->val, M_U32, 5, NULL, AG_ERR_FORMAT, "tokenizer.ggml.scores", "int32");
    CASE("block_count as float", find_kv(&g, "llama.block_count")->type_off, M_U32, 6, NULL, AG_ERR_FORMAT,
         "llama.block_count", "integer");
    CASE("block_count 0", find_kv(&g, "llama.block_count")->val, M_U32, 0, NULL, AG_ERR_FORMAT, "llama.block_count", NULL);
    CASE("block_count 4", find_kv(&g, "llama.block_count")->val, M_U32, 4, NULL, AG_ERR_FORMAT, "blk.4", "outside");
    CASE("block_count 6", find_kv(&g, "llama.block_count")->val, M_U32, 6, NULL, AG_ERR_FORMAT, "blk.5.attn_norm.weight", "missing");
    CASE("head_count 7", find_kv(&g, "llama.attention.head_count")->val, M_U32, 7, NULL, AG_ERR_FORMAT, "n_heads", NULL);
    CASE("embedding_length huge", find_kv(&g, "llama.embedding_length")->val, M_U32, UINT32_MAX, NULL, AG_ERR_FORMAT,
         "llama.embedding_length", NULL);
    CASE("context_length 0", find_kv(&g, "llama.context_length")->val, M_U32, 0, NULL, AG_ERR_FORMAT, "llama.context_length", NULL);
    CASE("eps NaN", find_kv(&g, "llama.attention.layer_norm_rms_epsilon")->val, M_U32, 0x7FC00000u, NULL, AG_ERR_FORMAT,
         "layer_norm_rms_epsilon", NULL);
    CASE("rope dims", find_kv(&g, "llama.rope.dimension_count")->val, M_U32, 4, NULL, AG_ERR_UNSUPPORTED,
         "llama.rope.dimension_count", NULL);
    CASE("architecture", find_kv(&g, "general.architecture")->val + 8, M_BYTES, 0, "falco", AG_ERR_UNSUPPORTED,
         "general.architecture", "falco");
    CASE("tokenizer model gpt2", find_kv(&g, "tokenizer.ggml.model")->val + 8, M_BYTES, 0, "gpt2_", AG_OK, NULL, NULL);
    CASE("bos out of range", find_kv(&g, "tokenizer.ggml.bos_token_id")->val, M_U32, 9999, NULL, AG_ERR_FORMAT,
         "tokenizer.ggml.bos_token_id", NULL);
    CASE("score NaN", array_elem(gg, scores->val, 37), M_U32, 0x7FC00000u, NULL, AG_ERR_FORMAT, "tokenizer.ggml.scores", "37");
    CASE("offset past end", q0->offset_off, M_U64, data_size, NULL, AG_ERR_FORMAT, "blk.0.attn_q.weight", "offset");
    CASE("offset overflows", q0->offset_off, M_U64, UINT64_MAX - 31, NULL, AG_ERR_FORMAT, "blk.0.attn_q.weight", "offset");
    CASE("last tensor past end", last->offset_off, M_U64, last->offset + 32, NULL, AG_ERR_FORMAT, last->name, "past the end");
    CASE("offset misaligned", q0->offset_off, M_U64, q0->offset + 4, NULL, AG_ERR_FORMAT, "blk.0.attn_q.weight", "alignment");
    CASE("type Q8_0", up2->type_off, M_U32, 8, NULL, AG_ERR_UNSUPPORTED, "blk.2.ffn_up.weight", "Q8_0");
    CASE("type 99", up2->type_off, M_U32, 99, NULL, AG_ERR_UNSUPPORTED, "blk.2.ffn_up.weight", "type 99");
    CASE("missing tensor", fn4->start + 8 + 10, M_BYTES, 0, "nrom", AG_ERR_FORMAT, "blk.4.ffn_norm.weight", "missing");
    CASE("duplicate tensor", k0->start + 8 + 11, M_BYTES, 0, "q", AG_ERR_FORMAT, "blk.0.attn_q.weight", "more than once");
    CASE("bad shape", q3->dims_off + 8, M_U64, 32, NULL, AG_ERR_FORMAT, "blk.3.attn_q.weight", "shape [32 x 64]");
    CASE("embedding rows", emb->dims_off + 8, M_U64, 511, NULL, AG_ERR_FORMAT, "token_embd.weight", "tokenizer.ggml.tokens");
    CASE("embedding cols", emb->dims_off, M_U64, 63, NULL, AG_ERR_FORMAT, "token_embd.weight", "shape");
    CASE("n_dims 5", q0->ndims_off, M_U32, 5, NULL, AG_ERR_FORMAT, "blk.0.attn_q.weight", "n_dims");
    CASE("n_dims 0", q0->ndims_off, M_U32, 0, NULL, AG_ERR_FORMAT, "blk.0.attn_q.weight", "n_dims");
#undef CASE
    for (int i = 0; i < n; i++) {
        uint8_t *p = dup_bytes(gg, size);
        if (cases[i].kind == M_U32) put_u32(p + cases[i].off, (uint32_t)cases[i].v);
        else if (cases[i].kind == M_U64) put_u64(p + cases[i].off, cases[i].v);
        else memcpy(p + cases[i].off, cases[i].bytes, strlen(cases[i].bytes));
        char why[1400];
        ck_assert_msg(load_expect(p, size, "mut_stories260K.gguf", NULL, cases[i].want, cases[i].f1, cases[i].f2, why, sizeof why),
                      "case \"%s\": %s", cases[i].what, why);
        free(p);
    }

    /* A non-llama tokenizer loads without a tokenizer. */
    uint8_t *p = dup_bytes(gg, size);
    memcpy(p + find_kv(&g, "tokenizer.ggml.model")->val + 8, "gpt2_", 5);
    ag_model *m = NULL;
    ck_assert_int_eq(ag_model_load_memory(&m, p, size, 0, "gpt2.gguf", NULL), AG_OK);
    ag_model_info info;
    info.struct_size = sizeof info;
    ck_assert_int_eq(ag_model_get_info(m, &info), AG_OK);
    ck_assert_int_eq(info.has_tokenizer, 0);
    ck_assert_int_eq(info.vocab_size, 512);
    ag_model_free(m);
    free(p);
    free(gg);
}
END_TEST

START_TEST(test_gguf_random_mutations) {
    /* Random byte changes in the metadata and tensor infos: never a crash; a failure names
     * the file; a success is a consistent model. */
    size_t size;
    uint8_t *gg = read_file(MODELS "stories260K.gguf", &size);
    tgguf g;
    gguf_parse(&g, gg, size);
    uint64_t s = 0xABCDEF0123456789ull;
    int n_bad = 0, n_fail = 0;
    char first[1600] = "";
    for (int it = 0; it < 500; it++) {
        uint8_t *p = dup_bytes(gg, size);
        int k = 1 + it % 4;
        for (int j = 0; j < k; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            /* Bias towards the structured parts: header, first keys and tensor infos. */
            size_t region = (s >> 40) % 3;
            size_t off = region == 0 ? (size_t)(s % 64)
                         : region == 1 ? g.kv_end + (size_t)(s % (g.infos_end - g.kv_end))
                                       : (size_t)(s % g.infos_end);
            p[off] = (uint8_t)(s >> 24);
        }
        ag_model *m = (ag_model *)(uintptr_t)1;
        ag_status st = ag_model_load_memory(&m, p, size, 0, "rnd_stories260K.gguf", NULL);
        if (st == AG_OK) {
            ag_model_info info;
            info.struct_size = sizeof info;
            if (ag_model_get_info(m, &info) != AG_OK || info.vocab_size <= 0) n_bad++;
            ag_model_free(m);
        } else {
            n_fail++;
            int ok = m == NULL && strstr(ag_last_error(), "rnd_stories260K.gguf") != NULL && st != AG_ERR_INTERNAL;
            if (!ok && !n_bad++) snprintf(first, sizeof first, "iteration %d: status %d: %s", it, st, ag_last_error());
        }
        free(p);
    }
    ck_assert_msg(n_bad == 0, "%d mutations misbehave; first: %s", n_bad, first);
    ck_assert_int_gt(n_fail, 50); /* the mutations do hit the parser */
    free(gg);
}
END_TEST

START_TEST(test_gguf_rebuilt_variants) {
    size_t size, bsize;
    uint8_t *gg = read_file(MODELS "stories260K.gguf", &size);
    tgguf g;
    gguf_parse(&g, gg, size);
    ag_model *bin = NULL, *m = NULL;
    ck_assert_int_eq(ag_model_load(&bin, MODELS "stories260K.bin", NULL), AG_OK);
    ag_model_info bi, info;
    bi.struct_size = info.struct_size = sizeof bi;
    ck_assert_int_eq(ag_model_get_info(bin, &bi), AG_OK);
    uint8_t extra[4096];
    size_t ne;
    rebuild_opts ro;

    /* The identity rebuild loads and equals the fixture. */
    memset(&ro, 0, sizeof ro);
    uint8_t *p = gguf_rebuild(&g, &ro, &bsize);
    ck_assert_uint_eq(bsize, size);
    ck_assert_int_eq(memcmp(p, gg, size), 0);
    free(p);

    /* Without `output`: a shared classifier, the same parameter count as the .bin. */
    memset(&ro, 0, sizeof ro);
    ro.drop_tensor = "output.weight";
    p = gguf_rebuild(&g, &ro, &bsize);
    ck_assert_int_eq(ag_model_load_memory(&m, p, bsize, 0, "no_output.gguf", NULL), AG_OK);
    ck_assert_int_eq(ag_model_get_info(m, &info), AG_OK);
    ck_assert_int_eq(info.shared_classifier, 1);
    ck_assert_int_eq(info.n_params, bi.n_params);
    ck_assert_ptr_eq(m->w.wcls, m->w.token_embedding);
    ck_assert(weights_equal(bin, m, 0));
    ag_model_free(m);
    free(p);

    /* Without token_embd: missing. */
    ro.drop_tensor = "token_embd.weight";
    p = gguf_rebuild(&g, &ro, &bsize);
    EXPECT_LOAD(p, bsize, "no_embd.gguf", NULL, AG_ERR_FORMAT, "token_embd.weight", NULL);
    free(p);

    /* general.alignment = 16 (offsets stay multiples of 16): loads, same weights. */
    uint32_t a16 = 16;
    memset(&ro, 0, sizeof ro);
    ne = 0;
    kv_append(extra, &ne, "general.alignment", 4, &a16, 4);
    ro.extra_kv = extra, ro.extra_len = ne, ro.n_extra = 1, ro.align = 16;
    p = gguf_rebuild(&g, &ro, &bsize);
    ck_assert_int_eq(ag_model_load_memory(&m, p, bsize, 0, "align16.gguf", NULL), AG_OK);
    ck_assert(weights_equal(bin, m, 0));
    ag_model_free(m);
    free(p);
    /* general.alignment = 3, 0, as a string. */
    const uint32_t bad_align[2] = {3, 0};
    for (int i = 0; i < 2; i++) {
        ne = 0;
        kv_append(extra, &ne, "general.alignment", 4, &bad_align[i], 4);
        ro.extra_len = ne, ro.align = 32;
        p = gguf_rebuild(&g, &ro, &bsize);
        EXPECT_LOAD(p, bsize, "bad_align.gguf", NULL, AG_ERR_FORMAT, "general.alignment", "power of two");
        free(p);
    }
    /* general.alignment = 512: some offsets (multiples of 256) are then misaligned. */
    uint32_t a512 = 512;
    ne = 0;
    kv_append(extra, &ne, "general.alignment", 4, &a512, 4);
    ro.extra_len = ne, ro.align = 512;
    p = gguf_rebuild(&g, &ro, &bsize);
    EXPECT_LOAD(p, bsize, "align512.gguf", NULL, AG_ERR_FORMAT, "not a multiple of the alignment 512", NULL);
    free(p);

    /* Nested arrays of every type are skipped. */
    memset(&ro, 0, sizeof ro);
    uint8_t val[512];
    size_t vl = 0;
    put_u32(val, 9); /* array of arrays */
    put_u64(val + 4, 3);
    vl = 12;
    put_u32(val + vl, 8), put_u64(val + vl + 4, 2), vl += 12; /* [ "ab", "" ] */
    put_u64(val + vl, 2), memcpy(val + vl + 8, "ab", 2), vl += 10;
    put_u64(val + vl, 0), vl += 8;
    put_u32(val + vl, 12), put_u64(val + vl + 4, 2), vl += 12; /* [ 1.0, 2.0 ] float64 */
    memset(val + vl, 0, 16), vl += 16;
    put_u32(val + vl, 9), put_u64(val + vl + 4, 1), vl += 12; /* [ [ true ] ] */
    put_u32(val + vl, 7), put_u64(val + vl + 4, 1), vl += 12;
    val[vl++] = 1;
    ne = 0;
    kv_append(extra, &ne, "test.nested", 9, val, vl);
    uint16_t u16 = 7;
    kv_append(extra, &ne, "test.u16", 2, &u16, 2);
    int64_t i64 = -5;
    kv_append(extra, &ne, "test.i64", 11, &i64, 8);
    ro.extra_kv = extra, ro.extra_len = ne, ro.n_extra = 3;
    p = gguf_rebuild(&g, &ro, &bsize);
    ck_assert_int_eq(ag_model_load_memory(&m, p, bsize, 0, "nested.gguf", NULL), AG_OK);
    ag_model_free(m);
    free(p);
    /* Nesting deeper than the cap. */
    vl = 0;
    for (int d = 0; d < 12; d++) put_u32(val + vl, 9), put_u64(val + vl + 4, 1), vl += 12;
    put_u32(val + vl, 0), put_u64(val + vl + 4, 0), vl += 12;
    ne = 0;
    kv_append(extra, &ne, "test.deep", 9, val, vl);
    ro.extra_len = ne, ro.n_extra = 1;
    p = gguf_rebuild(&g, &ro, &bsize);
    EXPECT_LOAD(p, bsize, "deep.gguf", NULL, AG_ERR_FORMAT, "test.deep", "nested");
    free(p);
    /* Unknown value type; a duplicate known key. */
    ne = 0;
    kv_append(extra, &ne, "test.odd", 13, "", 0);
    ro.extra_len = ne;
    p = gguf_rebuild(&g, &ro, &bsize);
    EXPECT_LOAD(p, bsize, "odd.gguf", NULL, AG_ERR_FORMAT, "test.odd", "type 13");
    free(p);
    uint32_t five = 5;
    ne = 0;
    kv_append(extra, &ne, "llama.block_count", 4, &five, 4);
    ro.extra_len = ne;
    p = gguf_rebuild(&g, &ro, &bsize);
    EXPECT_LOAD(p, bsize, "dup.gguf", NULL, AG_ERR_FORMAT, "llama.block_count", "more than once");
    free(p);
    /* llama.vocab_size that disagrees with the token list. */
    uint32_t v500 = 500;
    ne = 0;
    kv_append(extra, &ne, "llama.vocab_size", 4, &v500, 4);
    ro.extra_len = ne;
    p = gguf_rebuild(&g, &ro, &bsize);
    EXPECT_LOAD(p, bsize, "vocab.gguf", NULL, AG_ERR_FORMAT, "llama.vocab_size", NULL);
    free(p);

    /* Missing keys. */
    memset(&ro, 0, sizeof ro);
    const char *required[] = {"general.architecture", "llama.block_count", "llama.embedding_length",
                              "llama.feed_forward_length", "llama.attention.head_count", "llama.context_length"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        ro.drop_kv = required[i];
        p = gguf_rebuild(&g, &ro, &bsize);
        EXPECT_LOAD(p, bsize, "nokey.gguf", NULL, AG_ERR_FORMAT, required[i], "missing");
        free(p);
    }
    /* Optional keys: defaults. No token list: no tokenizer, vocab from token_embd. */
    /* head_count_kv defaults to head_count (8): the 4-head K/V tensors then mismatch. */
    ro.drop_kv = "llama.attention.head_count_kv";
    p = gguf_rebuild(&g, &ro, &bsize);
    EXPECT_LOAD(p, bsize, "nokv.gguf", NULL, AG_ERR_FORMAT, "blk.0.attn_k.weight", "expected [64 x 64]");
    free(p);
    const char *optional[] = {"llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon",
                              "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.model",
                              "tokenizer.ggml.bos_token_id"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        ro.drop_kv = optional[i];
        p = gguf_rebuild(&g, &ro, &bsize);
        ck_assert_msg(ag_model_load_memory(&m, p, bsize, 0, "opt.gguf", NULL) == AG_OK, "without %s: %s", optional[i],
                      ag_last_error());
        ck_assert_int_eq(ag_model_get_info(m, &info), AG_OK);
        ck_assert_int_eq(info.vocab_size, 512);
        ck_assert_int_eq(info.has_tokenizer, i != 2);
        ck_assert_int_eq(info.n_kv_heads, 4);
        ck_assert_float_eq(info.rms_eps, 1e-5f);
        ag_model_free(m);
        free(p);
    }

    /* F16 weights: converted once, within half precision of the F32 ones. */
    memset(&ro, 0, sizeof ro);
    ro.to_f16 = 1;
    p = gguf_rebuild(&g, &ro, &bsize);
    ck_assert_int_eq(ag_model_load_memory(&m, p, bsize, 0, "f16.gguf", NULL), AG_OK);
    ck_assert(weights_equal(bin, m, 1.0 / 1024));
    ck_assert_int_eq(m->w.shared_classifier, 0);
    ag_model_free(m);
    free(p);

    ag_model_free(bin);
    free(gg);
}
END_TEST

START_TEST(test_gguf_unaligned_memory) {
    /* Borrowed bytes at an odd address: F32 tensors are copied, never read misaligned. */
    size_t size;
    uint8_t *gg = read_file(MODELS "stories260K.gguf", &size);
    uint8_t *buf = malloc(size + 1);
    memcpy(buf + 1, gg, size);
    ag_model *a = NULL, *b = NULL, *c = NULL;
    ck_assert_int_eq(ag_model_load_memory(&a, buf + 1, size, 0, "odd.gguf", NULL), AG_OK);
    ck_assert_int_eq(ag_model_load_memory(&b, gg, size, 1, "copy.gguf", NULL), AG_OK);
    ck_assert_int_eq(ag_model_load(&c, MODELS "stories260K.gguf", NULL), AG_OK);
    ck_assert(weights_equal(a, c, 0));
    ck_assert(weights_equal(b, c, 0));
    ck_assert_uint_eq((uintptr_t)a->w.layers[0].wq % sizeof(float), 0);
    ag_model_free(a);
    ag_model_free(b);
    ag_model_free(c);
    free(buf);
    free(gg);
}
END_TEST

START_TEST(test_bin_and_gguf_same_model) {
    ag_model *b = NULL, *g = NULL;
    ck_assert_int_eq(ag_model_load(&b, MODELS "stories260K.bin", NULL), AG_OK);
    ck_assert_int_eq(ag_model_load(&g, MODELS "stories260K.gguf", NULL), AG_OK);
    ag_model_info bi, gi;
    bi.struct_size = gi.struct_size = sizeof bi;
    ck_assert_int_eq(ag_model_get_info(b, &bi), AG_OK);
    ck_assert_int_eq(ag_model_get_info(g, &gi), AG_OK);
    ck_assert_int_eq(bi.format, AG_FORMAT_LLAMA2C);
    ck_assert_int_eq(gi.format, AG_FORMAT_GGUF);
    ck_assert_int_eq(bi.arch, gi.arch);
    ck_assert_int_eq(bi.dim, 64);
    ck_assert_int_eq(bi.dim, gi.dim);
    ck_assert_int_eq(bi.hidden_dim, 172);
    ck_assert_int_eq(bi.hidden_dim, gi.hidden_dim);
    ck_assert_int_eq(bi.n_layers, gi.n_layers);
    ck_assert_int_eq(bi.n_heads, gi.n_heads);
    ck_assert_int_eq(bi.n_kv_heads, gi.n_kv_heads);
    ck_assert_int_eq(bi.head_dim, gi.head_dim);
    ck_assert_int_eq(bi.vocab_size, gi.vocab_size);
    ck_assert_float_eq(bi.rms_eps, gi.rms_eps);
    ck_assert_float_eq(bi.rope_theta, gi.rope_theta);
    /* The documented differences: context_length 2048, and an explicit `output` tensor. */
    ck_assert_int_eq(bi.seq_len, 512);
    ck_assert_int_eq(gi.seq_len, 2048);
    ck_assert_int_eq(bi.shared_classifier, 1);
    ck_assert_int_eq(gi.shared_classifier, 0);
    ck_assert_int_eq(bi.n_params, 260032);
    ck_assert_int_eq(gi.n_params, bi.n_params + (int64_t)bi.vocab_size * bi.dim);
    /* All weights bit-identical (the GGUF's `output` equals the .bin's token embedding). */
    ck_assert(weights_equal(b, g, 0));
    /* The second model is another shape. */
    ag_model *xs = NULL;
    ck_assert_int_eq(ag_model_load(&xs, MODELS "llama2xs_model.bin", NULL), AG_OK);
    ck_assert_int_eq(ag_model_get_info(xs, &bi), AG_OK);
    ck_assert_int_eq(bi.hidden_dim, 192);
    ck_assert_int_eq(bi.seq_len, 256);
    ag_model_free(xs);
    ag_model_free(b);
    ag_model_free(g);
}
END_TEST

/* ---- tests: the llama2.c tokenizer file ------------------------------------------------------ */

START_TEST(test_tokenizer_files) {
    size_t size;
    uint8_t *tok = read_file(MODELS "tok512.bin", &size);
    /* Offsets of each token record. */
    size_t rec[513];
    size_t p = 4;
    for (int i = 0; i < 512; i++) {
        rec[i] = p;
        p += 8 + get_u32(tok + p + 4);
    }
    rec[512] = p;
    ck_assert_uint_eq(p, size);

    make_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/bad_tok512.bin", g_tmpdir);
    ag_model_options o;
    ck_assert_int_eq(AG_MODEL_OPTIONS_INIT(o), AG_OK);
    o.tokenizer_path = path;
    const char *models[3] = {MODELS "llama2xs_model.bin", MODELS "stories260K.bin", MODELS "stories260K.gguf"};

    /* Truncated: the model's vocab (512) no longer fits. */
    const size_t cuts[] = {1, 3, 4, 5, 11, 12, 100, rec[300], rec[300] + 5, rec[511] + 8, size - 1};
    const char *cut_field[] = {"max_token_length", "max_token_length", "vocab_size", "vocab_size", "vocab_size", "token",
                               "vocab_size", "token 300", "token 300", "token 511: length", "token 511: length"};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_tmp(path, tok, cuts[i]);
        expect_path(models[i % 3], &o, AG_ERR_FORMAT, "bad_tok512.bin", cut_field[i]);
    }
    /* Bad fields. */
    struct {
        size_t off;
        uint32_t v;
        const char *f1, *f2;
    } cases[] = {
        {rec[37] + 4, (uint32_t)-5, "token 37: length -5 is negative", NULL},
        {rec[37] + 4, 0x7FFFFFFFu, "token 37: length 2147483647", "max_token_length"},
        {rec[5], 0x7FC00000u, "token 5: score is NaN", NULL},
        {0, (uint32_t)-1, "max_token_length = -1", NULL},
        {0, 3, "exceeds max_token_length 3", "token"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *d = dup_bytes(tok, size);
        put_u32(d + cases[i].off, cases[i].v);
        write_tmp(path, d, size);
        free(d);
        expect_path(models[i % 3], &o, AG_ERR_FORMAT, "bad_tok512.bin", cases[i].f1);
        if (cases[i].f2) ck_assert_ptr_nonnull(strstr(ag_last_error(), cases[i].f2));
    }
    /* A huge length with a large max_token_length: the remaining-bytes check. */
    uint8_t *d = dup_bytes(tok, size);
    put_u32(d, 0x7FFFFFFFu);
    put_u32(d + rec[37] + 4, 0x7FFFFFF0u);
    write_tmp(path, d, size);
    expect_path(models[0], &o, AG_ERR_FORMAT, "bad_tok512.bin", "token 37: length 2147483632 exceeds the");
    free(d);
    /* Trailing bytes are ignored (llama2.c reads only vocab_size records); empty pieces load. */
    d = malloc(size + 10);
    memcpy(d, tok, size);
    memset(d + size, 0xEE, 10);
    write_tmp(path, d, size + 10);
    free(d);
    expect_path(models[0], &o, AG_OK, NULL, NULL);
    /* Random corruption of the tokenizer file: never a crash, failures name it. */
    uint64_t s = 99;
    int n_bad = 0;
    char first[1600] = "";
    for (int it = 0; it < 60; it++) {
        d = dup_bytes(tok, size);
        for (int j = 0; j < 3; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            d[s % size] = (uint8_t)(s >> 20);
        }
        write_tmp(path, d, size);
        free(d);
        ag_model *m = (ag_model *)(uintptr_t)1;
        ag_status st = ag_model_load(&m, models[it % 3], &o);
        if (st == AG_OK) {
            int32_t ids[64];
            size_t n;
            if (ag_tokenize(m, "Once upon a time \xF0\x9F\x98\x80", 1, ids, 64, &n) != AG_OK) n_bad++;
            ag_model_free(m);
        } else if ((m != NULL || !strstr(ag_last_error(), "bad_tok512.bin")) && !n_bad++) {
            snprintf(first, sizeof first, "iteration %d: %s", it, ag_last_error());
        }
    }
    ck_assert_msg(n_bad == 0, "%d corrupted tokenizers misbehave; first: %s", n_bad, first);
    ck_assert_int_eq(unlink(path), 0);
    remove_tmpdir();
    free(tok);
}
END_TEST

static Suite *formats_suite(void) {
    Suite *s = suite_create("formats");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_llama2c_truncated);
    tcase_add_test(tc, test_llama2c_header_fields);
    tcase_add_test(tc, test_random_bytes);
    tcase_add_test(tc, test_gguf_truncated);
    tcase_add_test(tc, test_gguf_mutations);
    tcase_add_test(tc, test_gguf_random_mutations);
    tcase_add_test(tc, test_gguf_rebuilt_variants);
    tcase_add_test(tc, test_gguf_unaligned_memory);
    tcase_add_test(tc, test_bin_and_gguf_same_model);
    tcase_add_test(tc, test_tokenizer_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(formats_suite(), CK_NORMAL);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
