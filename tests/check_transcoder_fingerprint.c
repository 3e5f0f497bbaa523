/*
 * check_transcoder_fingerprint — the model a transcoder set was made for, saved in its files
 * and checked on load and where a set meets a trace or a model:
 *   - ag_transcoder_save writes the fingerprint of the model the set was trained or loaded for
 *     into every layer file's __metadata__ ("attrgraph.model_fingerprint") and config.yaml
 *     ("model_fingerprint"); save -> load (with or without a model) -> save keeps it;
 *   - ag_transcoder_load(dir, model) accepts the same weights (loaded again, or as GGUF) and
 *     refuses (AG_ERR_FORMAT, as its other model mismatches) a copy whose weights differ (every
 *     weight x (1 + 1e-3), or only block 4's w2 x 1.01), naming the directory and both
 *     fingerprints;
 *   - circuit-tracer files (no such field) load with any model of the right shape, as before;
 *     the field in config.yaml alone counts; a malformed field is AG_ERR_FORMAT;
 *   - ag_graph_build (transcoder basis), ag_transcoder_trace, ag_transcoder_evaluate and
 *     ag_transcoder_label refuse a set loaded for another model (AG_ERR_INVALID_ARGUMENT);
 *   - `attrgraph transcoder train` writes the field; `attrgraph graph --transcoders` with a
 *     model file of other weights fails with the message.
 * Oracles, independent of the code under test: the expected fingerprints are computed here from
 * the llama2.c file's bytes (header, then the tensors in file order) with the hash documented
 * in src/model/model.h, written out again in this file — the value stored in files is a file
 * format now, so it is pinned; the metadata is read here with cJSON from the raw header;
 * circuit-tracer files are written here byte by byte.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "attrgraph.h"
#include "cli_output.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "transcoder_setup.h"
#include "suite_run.h"

#define STORIES_BIN "models/stories260K.bin"
#define STORIES_GGUF "models/stories260K.gguf"

static const int32_t TOKS[9] = {1, 403, 407, 261, 378, 300, 413, 372, 260};

/* ---- files ------------------------------------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long sz = ftell(f);
    ck_assert(sz >= 0);
    rewind(f);
    unsigned char *b = malloc((size_t)sz + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    b[sz] = 0;
    *n = (size_t)sz;
    return b;
}

static char *tmpdir(const char *tag) {
    char *p = malloc(256);
    snprintf(p, 256, "/tmp/ag_fp_%s_%d_XXXXXX", tag, (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(p));
    return p;
}

static void rm_rf(char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(dir);
}

/* __metadata__[key] of a safetensors file (malloc'ed), or NULL when absent. */
static char *st_meta(const char *path, const char *key) {
    size_t n;
    unsigned char *b = read_all(path, &n);
    ck_assert(n >= 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    ck_assert(hl <= n - 8);
    cJSON *root = cJSON_ParseWithLength((const char *)b + 8, (size_t)hl);
    ck_assert_msg(root != NULL, "%s: header is not JSON", path);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "__metadata__"), key);
    char *out = NULL;
    if (cJSON_IsString(v)) out = strdup(v->valuestring);
    cJSON_Delete(root);
    free(b);
    return out;
}

/* 1 when the file at dir/name contains the line `line` */
static int has_line(const char *dir, const char *name, const char *line) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t n;
    char *t = (char *)read_all(p, &n);
    int found = 0;
    for (char *s = strtok(t, "\n"); s && !found; s = strtok(NULL, "\n")) found = strcmp(s, line) == 0;
    free(t);
    return found;
}

/* Every layer file of the set in dir (PLT layer_l, or CLT W_enc_l and W_dec_l) has
 * __metadata__["attrgraph.model_fingerprint"] == want, and config.yaml the same value. */
static void expect_fingerprint_in_files(const char *dir, int clt, const char *want) {
    for (int l = 0; l < 5; l++)
        for (int part = 0; part < (clt ? 2 : 1); part++) {
            char p[512];
            snprintf(p, sizeof p, clt ? (part ? "%s/W_dec_%d.safetensors" : "%s/W_enc_%d.safetensors") : "%s/layer_%d.safetensors", dir, l);
            char *v = st_meta(p, "attrgraph.model_fingerprint");
            ck_assert_msg(v != NULL, "%s: no attrgraph.model_fingerprint in __metadata__", p);
            ck_assert_str_eq(v, want);
            free(v);
        }
    char line[64];
    snprintf(line, sizeof line, "model_fingerprint: \"%s\"", want);
    ck_assert_msg(has_line(dir, "config.yaml", line), "%s/config.yaml has no line %s", dir, line);
}

/* ---- the fingerprint oracle: model.h's hash over a llama2.c file's bytes ---------------------- */

static uint64_t mix(uint64_t h, uint64_t w) {
    h ^= w + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* n floats at p: their count, then up to 1024 evenly spaced ones (first and last included) */
static uint64_t tensor(uint64_t h, const unsigned char *p, size_t n) {
    h = mix(h, n);
    size_t k = n < 1024 ? n : 1024;
    for (size_t i = 0; i < k; i++) {
        size_t at = k == 1 ? 0 : (size_t)((unsigned long long)i * (n - 1) / (k - 1));
        h = mix(h, le32(p + 4 * at));
    }
    return h;
}

static void fp_hex(const unsigned char *b, size_t n, char out[17]) {
    ck_assert(n > 28);
    int32_t hd[7];
    for (int i = 0; i < 7; i++) hd[i] = (int32_t)le32(b + 4 * i);
    size_t D = (size_t)hd[0], Hd = (size_t)hd[1], L = (size_t)hd[2], H = (size_t)hd[3], KV = (size_t)hd[4] * (D / H);
    size_t V = (size_t)(hd[5] < 0 ? -hd[5] : hd[5]), S = (size_t)hd[6], hs = D / H;
    uint64_t h = 0x6174747267726170ull;
    const int32_t shape[6] = {hd[0], hd[1], hd[2], hd[3], hd[4], (int32_t)V};
    for (int i = 0; i < 6; i++) h = mix(h, (uint32_t)shape[i]);
    const unsigned char *emb = b + 28, *p = emb + 4 * V * D;
    const unsigned char *rms_att = p, *wq = rms_att + 4 * L * D, *wk = wq + 4 * L * D * D, *wv = wk + 4 * L * KV * D,
                        *wo = wv + 4 * L * KV * D, *rms_ffn = wo + 4 * L * D * D, *w1 = rms_ffn + 4 * L * D,
                        *w2 = w1 + 4 * L * Hd * D, *w3 = w2 + 4 * L * D * Hd, *rms_final = w3 + 4 * L * Hd * D;
    const unsigned char *wcls = hd[5] > 0 ? emb : rms_final + 4 * D + 4 * S * hs;
    ck_assert((size_t)(wcls - b) + (hd[5] > 0 ? 0 : 4 * V * D) <= n);
    h = tensor(h, emb, V * D);
    for (size_t l = 0; l < L; l++) {
        h = tensor(h, rms_att + 4 * l * D, D);
        h = tensor(h, wq + 4 * l * D * D, D * D);
        h = tensor(h, wk + 4 * l * KV * D, KV * D);
        h = tensor(h, wv + 4 * l * KV * D, KV * D);
        h = tensor(h, wo + 4 * l * D * D, D * D);
        h = tensor(h, rms_ffn + 4 * l * D, D);
        h = tensor(h, w1 + 4 * l * Hd * D, Hd * D);
        h = tensor(h, w2 + 4 * l * D * Hd, D * Hd);
        h = tensor(h, w3 + 4 * l * Hd * D, Hd * D);
    }
    h = tensor(h, rms_final, D);
    h = tensor(h, wcls, V * D);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* ---- models ------------------------------------------------------------------------------------ */

/* stories260K.bin's bytes with weights scaled by (1 + eps): every float after the header
 * (tensor = -1) or only the w2 of block 4 (tensor = 4). The bytes are returned (free()) and
 * their oracle fingerprint written to hex. */
static unsigned char *perturbed_bytes(int tensor_sel, float eps, size_t *n, char hex[17]) {
    unsigned char *b = read_all(ag_test_fixture(STORIES_BIN), n);
    int32_t hd[7];
    for (int i = 0; i < 7; i++) hd[i] = (int32_t)le32(b + 4 * i);
    size_t D = (size_t)hd[0], Hd = (size_t)hd[1], L = (size_t)hd[2], H = (size_t)hd[3], KV = (size_t)hd[4] * (D / H), V = (size_t)abs(hd[5]);
    size_t begin = 0, count = (*n - 28) / 4;
    if (tensor_sel == 4) {
        begin = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + L * Hd * D + 4 * D * Hd;
        count = D * Hd;
    }
    for (size_t i = 0; i < count; i++) {
        float v;
        memcpy(&v, b + 28 + 4 * (begin + i), 4);
        v *= 1.0f + eps;
        memcpy(b + 28 + 4 * (begin + i), &v, 4);
    }
    fp_hex(b, *n, hex);
    return b;
}

static ag_model *model_of(const unsigned char *b, size_t n, const char *name) {
    ag_model *m = NULL;
    ck_assert_msg(ag_model_load_memory(&m, b, n, 1, name, NULL) == AG_OK, "%s", ag_last_error());
    return m;
}

static void stories_hex(char hex[17]) {
    size_t n;
    unsigned char *b = read_all(ag_test_fixture(STORIES_BIN), &n);
    fp_hex(b, n, hex);
    free(b);
}

/* ag_transcoder_load(dir, m) refused as a set made for another model: AG_ERR_FORMAT, *out NULL,
 * the message names the directory and both fingerprints. */
static void expect_load_refused(const char *dir, const ag_model *m, const char *made_for, const char *given) {
    ag_transcoder *tc = (ag_transcoder *)0x1;
    ck_assert_int_eq(ag_transcoder_load(&tc, dir, m, NULL), AG_ERR_FORMAT);
    ck_assert_ptr_null(tc);
    const char *msg = ag_last_error();
    ck_assert_msg(strstr(msg, dir) && strstr(msg, "made for another model") && strstr(msg, made_for) && strstr(msg, given),
                  "message: %s (want %s, %s)", msg, made_for, given);
}

static ag_transcoder *load_ok(const char *dir, const ag_model *m) {
    ag_transcoder *tc = NULL;
    ck_assert_msg(ag_transcoder_load(&tc, dir, m, NULL) == AG_OK, "load %s: %s", dir, ag_last_error());
    return tc;
}

/* A set for stories260K: trained (PLT; tiny, skipped under valgrind) or a random CLT loaded with
 * the model. */
static ag_transcoder *set_for(const ag_model *m, int trained, const char *scratch) {
    if (trained) {
        ag_transcoder_train_options to;
        AG_TRANSCODER_TRAIN_OPTIONS_INIT(to);
        to.n_features = 16;
        to.corpus_tokens = 300;
        to.context = 32;
        to.buffer_tokens = 128;
        to.batch_size = 32;
        to.steps = 2;
        to.warmup_steps = 1;
        ag_transcoder *tc = NULL;
        ck_assert_msg(ag_transcoder_train(&tc, m, &to) == AG_OK, "%s", ag_last_error());
        return tc;
    }
    ag_transcoder *rnd = ag_test_random_transcoder(AG_TRANSCODER_CROSS_LAYER, AG_ACTIVATION_RELU, AG_READ_RESID_MID, 1, 24, 0, 7);
    ck_assert_int_eq(ag_transcoder_save(rnd, scratch), AG_OK); /* built in memory: no fingerprint */
    ag_transcoder_free(rnd);
    char p[512];
    snprintf(p, sizeof p, "%s/W_enc_0.safetensors", scratch);
    char *v = st_meta(p, "attrgraph.model_fingerprint");
    ck_assert_ptr_null(v);
    return load_ok(scratch, m);
}

/* ---- save -> load ---------------------------------------------------------------------------- */

START_TEST(test_saved_and_checked_on_load) {
    int trained = _i == 0;
    if (trained && ag_test_under_valgrind()) return;
    char want[17], xhex[17], whex[17];
    stories_hex(want);
    size_t nx, nw;
    unsigned char *bx = perturbed_bytes(-1, 1e-3f, &nx, xhex), *bw = perturbed_bytes(4, 1e-2f, &nw, whex);
    ck_assert_str_ne(want, xhex);
    ck_assert_str_ne(want, whex);
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL), *m2 = ag_test_load_model(STORIES_BIN, NULL);
    ag_model *mg = ag_test_load_model(STORIES_GGUF, NULL);
    ag_model *mx = model_of(bx, nx, "scaled-everywhere"), *mw = model_of(bw, nw, "scaled-w2-of-block-4");
    char *src = tmpdir("src"), *dir = tmpdir("a"), *dir2 = tmpdir("b");
    ag_transcoder *tc = set_for(m, trained, src);
    ag_transcoder_info ti = {.struct_size = sizeof ti};
    ck_assert_int_eq(ag_transcoder_get_info(tc, &ti), AG_OK);
    int clt = ti.kind == AG_TRANSCODER_CROSS_LAYER;
    ck_assert_int_eq(clt, !trained);
    ck_assert_int_eq(ag_transcoder_save(tc, dir), AG_OK);
    expect_fingerprint_in_files(dir, clt, want);
    /* the same weights: loaded again, or as GGUF */
    ag_transcoder *a = load_ok(dir, m2), *g = load_ok(dir, mg);
    /* other weights: refused at load */
    expect_load_refused(dir, mx, want, xhex);
    expect_load_refused(dir, mw, want, whex);
    /* loaded without a model: shapes only, and saving keeps the fingerprint */
    ag_transcoder *none = load_ok(dir, NULL);
    ck_assert_int_eq(ag_transcoder_save(none, dir2), AG_OK);
    expect_fingerprint_in_files(dir2, clt, want);
    expect_load_refused(dir2, mx, want, xhex);
    ag_transcoder_free(load_ok(dir2, mg));
    /* a set loaded for the GGUF conversion saves the same fingerprint */
    ck_assert_int_eq(ag_transcoder_save(g, dir2), AG_OK);
    expect_fingerprint_in_files(dir2, clt, want);
    ag_transcoder_free(load_ok(dir2, m));
    ag_transcoder_free(a);
    ag_transcoder_free(g);
    ag_transcoder_free(none);
    ag_transcoder_free(tc);
    ag_model_free(m);
    ag_model_free(m2);
    ag_model_free(mg);
    ag_model_free(mx);
    ag_model_free(mw);
    free(bx);
    free(bw);
    rm_rf(src);
    rm_rf(dir);
    rm_rf(dir2);
}
END_TEST

/* ---- circuit-tracer files ---------------------------------------------------------------------- */

/* A PLT for stories260K (5 layers, D = 64, F features) in circuit-tracer's layout, written byte
 * by byte: layer_l.safetensors with W_enc, W_dec, b_enc, b_dec (F32, small deterministic values)
 * and __metadata__ {"format": "pt"}; config.yaml as circuit-tracer writes it, plus `extra` (a
 * line, or NULL). */
static void write_circuit_tracer(const char *dir, int F, const char *extra) {
    const int D = 64;
    const char *names[4] = {"W_enc", "W_dec", "b_enc", "b_dec"};
    const long counts[4] = {(long)F * D, (long)F * D, F, D};
    for (int l = 0; l < 5; l++) {
        char hdr[1024];
        size_t hl = (size_t)snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
        long off = 0;
        for (int i = 0; i < 4; i++) {
            if (i < 2) hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],", names[i], F, D);
            else hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%ld],", names[i], counts[i]);
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "\"data_offsets\":[%ld,%ld]}", off, off + 4 * counts[i]);
            off += 4 * counts[i];
        }
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
        char p[512];
        snprintf(p, sizeof p, "%s/layer_%d.safetensors", dir, l);
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        for (int k = 0; k < 8; k++) fputc((int)(((uint64_t)hl >> (8 * k)) & 0xFF), f);
        fwrite(hdr, 1, hl, f);
        for (int i = 0; i < 4; i++)
            for (long q = 0; q < counts[i]; q++) {
                float v = (float)(((q * 37 + i * 11 + l * 5) % 17) - 8) / 64.0f;
                uint32_t u;
                memcpy(&u, &v, 4);
                for (int k = 0; k < 4; k++) fputc((int)((u >> (8 * k)) & 0xFF), f);
            }
        fclose(f);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "model_kind: transcoder_set\nmodel_name: stories260K\nfeature_input_hook: mlp.hook_in\nfeature_output_hook: mlp.hook_out\n");
    if (extra) fprintf(f, "%s\n", extra);
    fclose(f);
}

START_TEST(test_circuit_tracer_files) {
    char want[17], xhex[17];
    stories_hex(want);
    size_t nx;
    unsigned char *bx = perturbed_bytes(-1, 1e-3f, &nx, xhex);
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL), *mx = model_of(bx, nx, "scaled-everywhere");
    char *ct = tmpdir("ct"), *dir = tmpdir("ct2");
    /* no field: loads with any model of the right shape, as before */
    write_circuit_tracer(ct, 12, NULL);
    ag_transcoder *a = load_ok(ct, m), *b = load_ok(ct, mx);
    ag_transcoder_info ti = {.struct_size = sizeof ti};
    ck_assert_int_eq(ag_transcoder_get_info(b, &ti), AG_OK);
    ck_assert_int_eq(ti.n_features, 12);
    ck_assert_int_eq(ti.read_point, AG_READ_MLP_IN);
    /* loaded for the scaled model and saved: now the files record that model */
    ck_assert_int_eq(ag_transcoder_save(b, dir), AG_OK);
    expect_fingerprint_in_files(dir, 0, xhex);
    expect_load_refused(dir, m, xhex, want);
    ag_transcoder_free(load_ok(dir, mx));
    ag_transcoder_free(a);
    ag_transcoder_free(b);
    /* the field in config.yaml alone (no metadata) counts */
    char line[64];
    snprintf(line, sizeof line, "model_fingerprint: \"%s\"", want);
    write_circuit_tracer(ct, 12, line);
    ag_transcoder_free(load_ok(ct, m));
    expect_load_refused(ct, mx, want, xhex);
    /* a malformed field */
    write_circuit_tracer(ct, 12, "model_fingerprint: \"12ab\"");
    ag_transcoder *bad = (ag_transcoder *)0x1;
    ck_assert_int_eq(ag_transcoder_load(&bad, ct, m, NULL), AG_ERR_FORMAT);
    ck_assert_ptr_null(bad);
    ck_assert_msg(strstr(ag_last_error(), "model_fingerprint") && strstr(ag_last_error(), "12ab"), "%s", ag_last_error());
    ag_model_free(m);
    ag_model_free(mx);
    free(bx);
    rm_rf(ct);
    rm_rf(dir);
}
END_TEST

/* ---- graphs, traces, evaluation, labels --------------------------------------------------------- */

START_TEST(test_graph_build_refuses) {
    char want[17], xhex[17];
    stories_hex(want);
    size_t nx;
    unsigned char *bx = perturbed_bytes(-1, 1e-3f, &nx, xhex);
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL), *mg = ag_test_load_model(STORIES_GGUF, NULL);
    ag_model *mx = model_of(bx, nx, "scaled-everywhere");
    char *ct = tmpdir("g");
    write_circuit_tracer(ct, 12, NULL);
    ag_transcoder *for_m = load_ok(ct, m), *for_none = load_ok(ct, NULL);
    ag_trace *tx = ag_test_trace(mx, TOKS, 9), *tg = ag_test_trace(mg, TOKS, 9);
    ag_graph_options go;
    AG_GRAPH_OPTIONS_INIT(go);
    go.basis = AG_BASIS_TRANSCODERS;
    go.max_feature_nodes = 20;
    go.transcoders = for_m;
    ag_graph *g = (ag_graph *)0x1;
    ck_assert_int_eq(ag_graph_build(&g, tx, &go), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(g);
    const char *msg = ag_last_error();
    ck_assert_msg(strstr(msg, "opts->transcoders was loaded for the model") && strstr(msg, "scaled-everywhere") && strstr(msg, want) &&
                      strstr(msg, xhex),
                  "message: %s", msg);
    /* the same weights (GGUF) are accepted, and so is a set loaded without a model */
    ag_graph_free(ag_test_transcoder_graph(tg, for_m, 20, 0, NULL, 0));
    ag_graph_free(ag_test_transcoder_graph(tx, for_none, 20, 0, NULL, 0));
    /* ag_transcoder_trace */
    float *acts = malloc(sizeof(float) * 9 * 12);
    ck_assert_int_eq(ag_transcoder_trace(for_m, tx, 2, acts, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(ag_last_error(), want) && strstr(ag_last_error(), xhex), "%s", ag_last_error());
    ck_assert_msg(ag_transcoder_trace(for_m, tg, 2, acts, NULL, NULL) == AG_OK, "%s", ag_last_error());
    ck_assert_msg(ag_transcoder_trace(for_none, tx, 2, acts, NULL, NULL) == AG_OK, "%s", ag_last_error());
    free(acts);
    /* evaluation and labels (refused before any text is sampled) */
    ag_transcoder_eval_options eo;
    AG_TRANSCODER_EVAL_OPTIONS_INIT(eo);
    eo.n_tokens = 64;
    eo.context = 16;
    ag_transcoder_eval sum = {.struct_size = sizeof sum};
    ck_assert_int_eq(ag_transcoder_evaluate(for_m, mx, &eo, NULL, &sum), AG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(ag_last_error(), want) && strstr(ag_last_error(), xhex), "%s", ag_last_error());
    ck_assert_int_eq(ag_transcoder_label(for_m, mx, &eo), AG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(ag_last_error(), want) && strstr(ag_last_error(), xhex), "%s", ag_last_error());
    ag_transcoder_info ti = {.struct_size = sizeof ti};
    ck_assert_int_eq(ag_transcoder_get_info(for_m, &ti), AG_OK);
    ck_assert_int_eq(ti.has_labels, 0);
    ck_assert_msg(ag_transcoder_evaluate(for_m, mg, &eo, NULL, &sum) == AG_OK, "%s", ag_last_error());
    ag_trace_free(tx);
    ag_trace_free(tg);
    ag_transcoder_free(for_m);
    ag_transcoder_free(for_none);
    ag_model_free(m);
    ag_model_free(mg);
    ag_model_free(mx);
    free(bx);
    rm_rf(ct);
}
END_TEST

/* ---- the command line --------------------------------------------------------------------------- */

#ifdef AG_CLI_PATH
START_TEST(test_cli_train_writes_fingerprint) {
    char want[17], xhex[17];
    stories_hex(want);
    size_t nx;
    unsigned char *bx = perturbed_bytes(-1, 1e-3f, &nx, xhex);
    char *dir = tmpdir("cli"), *other = tmpdir("clim");
    char set[512], mpath[512], args[2048];
    snprintf(set, sizeof set, "%s/plt", dir);
    snprintf(mpath, sizeof mpath, "%s/scaled.bin", other);
    FILE *f = fopen(mpath, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bx, 1, nx, f), nx);
    fclose(f);
    int code;
    snprintf(args, sizeof args,
             "transcoder train -m '%s' -o '%s' --features 8 --corpus-tokens 300 --context 32 --buffer 128 --batch-size 32 --steps 2 "
             "--warmup 1 -q",
             ag_test_fixture(STORIES_BIN), set);
    free(ag_test_cli_output(args, &code));
    ck_assert_int_eq(code, 0);
    expect_fingerprint_in_files(set, 0, want);
    /* graph with the same weights: fine; with the scaled model's file: refused at load */
    snprintf(args, sizeof args, "graph -m '%s' -t 1,403,407,261,378 --basis transcoders --transcoders '%s' --max-feature-nodes 10 -q -o '%s/g.json'",
             ag_test_fixture(STORIES_GGUF), set, dir);
    free(ag_test_cli_output(args, &code));
    ck_assert_int_eq(code, 0);
    snprintf(args, sizeof args, "graph -m '%s' -t 1,403,407,261,378 --basis transcoders --transcoders '%s' -q -o '%s/g2.json'", mpath, set, dir);
    char *err = ag_test_cli_stderr(args, &code);
    ck_assert_int_ne(code, 0);
    ck_assert_msg(strstr(err, "made for another model") && strstr(err, want) && strstr(err, xhex), "stderr: %s", err);
    free(err);
    free(bx);
    rm_rf(dir);
    rm_rf(other);
}
END_TEST
#endif

static Suite *suite(void) {
    Suite *s = suite_create("transcoder_fingerprint");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_saved_and_checked_on_load, 0, 2);
    tcase_add_test(tc, test_circuit_tracer_files);
    tcase_add_test(tc, test_graph_build_refuses);
#ifdef AG_CLI_PATH
    tcase_add_test(tc, test_cli_train_writes_fingerprint);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(suite(), CK_NORMAL);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
