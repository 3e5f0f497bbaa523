/*
 * check_transcoder — transcoders (DESIGN §1.6, issue #6): the safetensors layout (written here
 * by an independent writer, F32/F16/BF16, PLT and CLT), save/load bit-exactness, encode/decode
 * against naive double loops, bad files, training on a planted sparse dictionary (the
 * dictionary is recovered), determinism and resumption, and a small end-to-end run on
 * stories260K (train, evaluate, label).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attrgraph.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "transcoder/transcoder.h"
#include "suite_run.h"

#define STORIES_BIN "models/stories260K.bin"
#define TOK_BIN "models/tok512.bin"

/* ---- helpers ------------------------------------------------------------------------------ */

static char *tmpdir(const char *tag) {
    char *p = malloc(256);
    snprintf(p, 256, "/tmp/ag_tc_%s_%d_XXXXXX", tag, (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(p));
    return p;
}

static void rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static uint64_t rng_state = 1;
static double urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double nrand(void) {
    double u1 = urand(), u2 = urand();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- an independent safetensors writer -------------------------------------------------------
 * Values are multiples of 1/64 in [-4, 4]: exact in F16, BF16 and F32. */

typedef struct w_tensor {
    const char *name;
    const char *dtype; /* "F32", "F16", "BF16" */
    int ndim;
    long shape[3];
    const float *vals;
} w_tensor;

static uint16_t f16_of(float f) { /* exact for the values used (normal, 10-bit mantissa) */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = (u >> 16) & 0x8000u;
    if (f == 0.0f) return (uint16_t)s; /* keeps -0 */
    int e = (int)((u >> 23) & 0xFF) - 127 + 15;
    return (uint16_t)(s | (uint32_t)e << 10 | ((u & 0x7FFFFFu) >> 13));
}
static uint16_t bf16_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* header: raw JSON text (NULL: built from the tensors); extra_data: bytes appended */
static void write_st(const char *path, const w_tensor *t, int n, const char *raw_header, long truncate_to) {
    char hdr[8192];
    size_t hl = 0;
    long off = 0;
    if (raw_header) {
        hl = (size_t)snprintf(hdr, sizeof hdr, "%s", raw_header);
    } else {
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (int i = 0; i < n; i++) {
            long numel = 1;
            for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
            int es = strcmp(t[i].dtype, "F32") == 0 ? 4 : 2;
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
            for (int d = 0; d < t[i].ndim; d++) hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s%ld", d ? "," : "", t[i].shape[d]);
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "],\"data_offsets\":[%ld,%ld]}", off, off + numel * es);
            off += numel * es;
        }
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t h = hl;
    for (int k = 0; k < 8; k++) fputc((int)((h >> (8 * k)) & 0xFF), f);
    fwrite(hdr, 1, hl, f);
    for (int i = 0; i < n; i++) {
        long numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        for (long q = 0; q < numel; q++) {
            float v = t[i].vals[q];
            if (strcmp(t[i].dtype, "F32") == 0) {
                uint32_t u;
                memcpy(&u, &v, 4);
                for (int k = 0; k < 4; k++) fputc((int)((u >> (8 * k)) & 0xFF), f);
            } else {
                uint16_t u = strcmp(t[i].dtype, "F16") == 0 ? f16_of(v) : bf16_of(v);
                fputc(u & 0xFF, f);
                fputc(u >> 8, f);
            }
        }
    }
    fclose(f);
    if (truncate_to >= 0) ck_assert_int_eq(truncate(path, truncate_to), 0);
}

static float *grid_vals(size_t n, double scale) { /* multiples of 1/64 */
    float *v = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        double x = nrand() * scale;
        if (x > 3.9) x = 3.9;
        if (x < -3.9) x = -3.9;
        v[i] = (float)(round(x * 64.0) / 64.0);
    }
    return v;
}

/* the published PLT layout for stories260K (L = 5, D = 64), F features */
typedef struct plt_src {
    int F;
    float *We[5], *Wd[5], *be[5], *bd[5], *th[5], *Ws[5];
} plt_src;

static void plt_make(plt_src *s, int F, int jumprelu, int skip) {
    s->F = F;
    for (int l = 0; l < 5; l++) {
        s->We[l] = grid_vals((size_t)F * 64, 0.5);
        s->Wd[l] = grid_vals((size_t)F * 64, 0.5);
        s->be[l] = grid_vals((size_t)F, 0.3);
        s->bd[l] = grid_vals(64, 0.3);
        s->th[l] = jumprelu ? grid_vals((size_t)F, 0.2) : NULL;
        if (s->th[l])
            for (int i = 0; i < F; i++) s->th[l][i] = fabsf(s->th[l][i]);
        s->Ws[l] = skip ? grid_vals(64 * 64, 0.1) : NULL;
    }
}
static void plt_free(plt_src *s) {
    for (int l = 0; l < 5; l++) {
        free(s->We[l]);
        free(s->Wd[l]);
        free(s->be[l]);
        free(s->bd[l]);
        free(s->th[l]);
        free(s->Ws[l]);
    }
}

static void plt_write(const plt_src *s, const char *dir, const char *const dtypes[5]) {
    for (int l = 0; l < 5; l++) {
        w_tensor t[6];
        int n = 0;
        long F = s->F;
        t[n++] = (w_tensor){"W_enc", dtypes[l], 2, {F, 64, 0}, s->We[l]};
        t[n++] = (w_tensor){"W_dec", dtypes[l], 2, {F, 64, 0}, s->Wd[l]};
        t[n++] = (w_tensor){"b_enc", dtypes[l], 1, {F, 0, 0}, s->be[l]};
        t[n++] = (w_tensor){"b_dec", dtypes[l], 1, {64, 0, 0}, s->bd[l]};
        if (s->th[l]) t[n++] = (w_tensor){"activation_function.threshold", dtypes[l], 1, {F, 0, 0}, s->th[l]};
        if (s->Ws[l]) t[n++] = (w_tensor){"W_skip", dtypes[l], 2, {64, 64, 0}, s->Ws[l]};
        char p[512];
        snprintf(p, sizeof p, "%s/layer_%d.safetensors", dir, l);
        write_st(p, t, n, NULL, -1);
    }
}

/* ---- the published layout ---------------------------------------------------------------------- */

START_TEST(test_plt_layout_loads) {
    rng_state = 11;
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    char *dir = tmpdir("plt");
    plt_src s;
    plt_make(&s, 24, 1, 1);
    const char *dt[5] = {"F32", "F16", "BF16", "F16", "BF16"};
    plt_write(&s, dir, dt);
    char p[512];
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    FILE *f = fopen(p, "w");
    fputs("model_kind: transcoder_set\nfeature_input_hook: blocks.0.mlp.hook_in\nfeature_output_hook: blocks.0.mlp.hook_out\n", f);
    fclose(f);
    ag_transcoder *tc = NULL;
    ag_status st = ag_transcoder_load(&tc, dir, m, NULL);
    ck_assert_msg(st == AG_OK, "load: %s", ag_last_error());
    ag_transcoder_info ti;
    ti.struct_size = sizeof ti;
    ck_assert_int_eq(ag_transcoder_get_info(tc, &ti), AG_OK);
    ck_assert_int_eq(ti.kind, AG_TRANSCODER_PER_LAYER);
    ck_assert_int_eq(ti.activation, AG_ACTIVATION_JUMPRELU);
    ck_assert_int_eq(ti.read_point, AG_READ_MLP_IN);
    ck_assert_int_eq(ti.n_layers, 5);
    ck_assert_int_eq(ti.n_features, 24);
    ck_assert_int_eq(ti.has_skip, 1);
    for (int l = 0; l < 5; l++) {
        const float *d;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_transcoder_tensor(tc, l, "W_enc", &d, sh, &nd), AG_OK);
        ck_assert(nd == 2 && sh[0] == 24 && sh[1] == 64);
        ck_assert_int_eq(memcmp(d, s.We[l], sizeof(float) * 24 * 64), 0);
        ck_assert_int_eq(ag_transcoder_tensor(tc, l, "W_dec", &d, sh, &nd), AG_OK);
        ck_assert_int_eq(memcmp(d, s.Wd[l], sizeof(float) * 24 * 64), 0);
        ck_assert_int_eq(ag_transcoder_tensor(tc, l, "threshold", &d, sh, &nd), AG_OK);
        ck_assert_int_eq(memcmp(d, s.th[l], sizeof(float) * 24), 0);
        ck_assert_int_eq(ag_transcoder_tensor(tc, l, "W_skip", &d, sh, &nd), AG_OK);
        ck_assert_int_eq(memcmp(d, s.Ws[l], sizeof(float) * 64 * 64), 0); /* PLT: y = W_skip x as stored */
    }
    /* encode / decode against naive double loops on a trace */
    const int32_t toks[6] = {1, 403, 407, 261, 378, 300};
    ag_trace *tr = NULL;
    ck_assert_int_eq(ag_trace_create(&tr, m, toks, 6, NULL), AG_OK);
    float acts[6 * 24], rec[6 * 64], err[6 * 64];
    double worst = 0.0, worst_e = 0.0;
    for (int l = 0; l < 5; l++) {
        ck_assert_int_eq(ag_transcoder_trace(tc, tr, l, acts, rec, err), AG_OK);
        const float *u, *mo;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_trace_tensor(tr, AG_TENSOR_MLP_IN, l, &u, sh, &nd), AG_OK);
        ck_assert_int_eq(ag_trace_tensor(tr, AG_TENSOR_MLP_OUT, l, &mo, sh, &nd), AG_OK);
        for (int p = 0; p < 6; p++) {
            double a[24], y[64];
            for (int i = 0; i < 24; i++) {
                double pre = s.be[l][i];
                for (int d = 0; d < 64; d++) pre += (double)s.We[l][i * 64 + d] * u[p * 64 + d];
                a[i] = pre > s.th[l][i] ? pre : 0.0;
                worst = fmax(worst, fabs(a[i] - acts[p * 24 + i]));
            }
            for (int d = 0; d < 64; d++) {
                y[d] = s.bd[l][d];
                for (int i = 0; i < 24; i++) y[d] += a[i] * s.Wd[l][i * 64 + d];
                for (int e = 0; e < 64; e++) y[d] += (double)s.Ws[l][d * 64 + e] * u[p * 64 + e];
                worst = fmax(worst, fabs(y[d] - rec[p * 64 + d]));
                float want = mo[p * 64 + d] - rec[p * 64 + d]; /* float arithmetic, as the error is defined */
                worst_e = fmax(worst_e, fabs((double)err[p * 64 + d] - (double)want));
            }
        }
    }
    ck_assert_msg(worst < 2e-4, "encode/decode differ from the naive loops by %g", worst);
    ck_assert_msg(worst_e == 0.0, "error != mlp_out - recon exactly (%g)", worst_e);
    ag_trace_free(tr);
    ag_transcoder_free(tc);
    /* a read point from config.yaml's hook; an explicit option wins */
    f = fopen(p, "w");
    fputs("model_kind: transcoder_set\nfeature_input_hook: hook_resid_mid\nactivation: jumprelu\n", f);
    fclose(f);
    ck_assert_int_eq(ag_transcoder_load(&tc, dir, m, NULL), AG_OK);
    ck_assert_int_eq(ag_transcoder_get_info(tc, &ti), AG_OK);
    ck_assert_int_eq(ti.read_point, AG_READ_RESID_MID);
    ag_transcoder_free(tc);
    ag_transcoder_load_options lo;
    ag_transcoder_load_options_init(&lo, sizeof lo);
    lo.read_point = AG_READ_MLP_IN;
    ck_assert_int_eq(ag_transcoder_load(&tc, dir, m, &lo), AG_OK);
    ck_assert_int_eq(ag_transcoder_get_info(tc, &ti), AG_OK);
    ck_assert_int_eq(ti.read_point, AG_READ_MLP_IN);
    ag_transcoder_free(tc);
    plt_free(&s);
    rm_rf(dir);
    free(dir);
    ag_model_free(m);
}
END_TEST

START_TEST(test_clt_layout_loads) {
    rng_state = 12;
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    char *dir = tmpdir("clt");
    const int F = 16, L = 5, D = 64;
    float *We[5], *be[5], *bd[5], *Wd[5], *Ws[5];
    const char *dt[5] = {"BF16", "F32", "F16", "F32", "BF16"};
    for (int l = 0; l < L; l++) {
        We[l] = grid_vals((size_t)F * D, 0.5);
        be[l] = grid_vals((size_t)F, 0.3);
        bd[l] = grid_vals((size_t)D, 0.3);
        Wd[l] = grid_vals((size_t)F * (L - l) * D, 0.3);
        Ws[l] = grid_vals((size_t)D * D, 0.1);
        char p[512], n1[32], n2[32], n3[32], n4[32], n5[32];
        snprintf(n1, sizeof n1, "W_enc_%d", l);
        snprintf(n2, sizeof n2, "b_enc_%d", l);
        snprintf(n3, sizeof n3, "b_dec_%d", l);
        snprintf(n4, sizeof n4, "W_skip_%d", l);
        snprintf(n5, sizeof n5, "W_dec_%d", l);
        w_tensor te[4] = {{n1, dt[l], 2, {F, D, 0}, We[l]}, {n2, dt[l], 1, {F, 0, 0}, be[l]},
                          {n3, dt[l], 1, {D, 0, 0}, bd[l]}, {n4, dt[l], 2, {D, D, 0}, Ws[l]}};
        snprintf(p, sizeof p, "%s/W_enc_%d.safetensors", dir, l);
        write_st(p, te, 4, NULL, -1);
        w_tensor td = {n5, dt[l], 3, {F, L - l, D}, Wd[l]};
        snprintf(p, sizeof p, "%s/W_dec_%d.safetensors", dir, l);
        write_st(p, &td, 1, NULL, -1);
    }
    ag_transcoder *tc = NULL;
    ag_status st = ag_transcoder_load(&tc, dir, m, NULL);
    ck_assert_msg(st == AG_OK, "load: %s", ag_last_error());
    ag_transcoder_info ti;
    ti.struct_size = sizeof ti;
    ck_assert_int_eq(ag_transcoder_get_info(tc, &ti), AG_OK);
    ck_assert_int_eq(ti.kind, AG_TRANSCODER_CROSS_LAYER);
    ck_assert_int_eq(ti.activation, AG_ACTIVATION_RELU);
    ck_assert_int_eq(ti.read_point, AG_READ_RESID_MID); /* circuit-tracer's CLT default */
    const int32_t toks[5] = {1, 403, 407, 261, 378};
    ag_trace *tr = NULL;
    ck_assert_int_eq(ag_trace_create(&tr, m, toks, 5, NULL), AG_OK);
    /* naive: a_l = relu(W_enc_l x_l + b), recon_l = sum_{s<=l} a_s W_dec_s[:, l-s] + b_dec_l + x_l W_skip_l */
    double a[5][5][16];
    double worst = 0.0;
    float rec[5 * 64];
    for (int l = 0; l < L; l++) {
        const float *x;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_trace_tensor(tr, AG_TENSOR_MID, l, &x, sh, &nd), AG_OK);
        for (int p = 0; p < 5; p++)
            for (int i = 0; i < F; i++) {
                double pre = be[l][i];
                for (int d = 0; d < D; d++) pre += (double)We[l][i * D + d] * x[p * D + d];
                a[l][p][i] = pre > 0 ? pre : 0;
            }
        ck_assert_int_eq(ag_transcoder_trace(tc, tr, l, NULL, rec, NULL), AG_OK);
        for (int p = 0; p < 5; p++)
            for (int d = 0; d < D; d++) {
                double y = bd[l][d];
                for (int s = 0; s <= l; s++)
                    for (int i = 0; i < F; i++) y += a[s][p][i] * Wd[s][((size_t)i * (L - s) + (l - s)) * D + d];
                for (int e = 0; e < D; e++) y += (double)x[p * D + e] * Ws[l][e * D + d];
                worst = fmax(worst, fabs(y - rec[p * D + d]));
            }
    }
    ck_assert_msg(worst < 2e-4, "CLT reconstruction differs from the naive loops by %g", worst);
    /* save and reload: bit-exact, and the CLT W_skip orientation survives */
    char *dir2 = tmpdir("clt2");
    ck_assert_int_eq(ag_transcoder_save(tc, dir2), AG_OK);
    ag_transcoder *tc2 = NULL;
    ck_assert_msg(ag_transcoder_load(&tc2, dir2, m, NULL) == AG_OK, "%s", ag_last_error());
    const char *names[5] = {"W_enc", "b_enc", "W_dec", "b_dec", "W_skip"};
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 5; k++) {
            const float *d1, *d2;
            int64_t s1[3], s2[3];
            int32_t n1, n2;
            ck_assert_int_eq(ag_transcoder_tensor(tc, l, names[k], &d1, s1, &n1), AG_OK);
            ck_assert_int_eq(ag_transcoder_tensor(tc2, l, names[k], &d2, s2, &n2), AG_OK);
            ck_assert_int_eq(n1, n2);
            size_t cnt = 1;
            for (int q = 0; q < n1; q++) cnt *= (size_t)s1[q];
            ck_assert_int_eq(memcmp(d1, d2, cnt * sizeof(float)), 0);
        }
    ag_transcoder_free(tc2);
    ag_transcoder_free(tc);
    ag_trace_free(tr);
    for (int l = 0; l < L; l++) {
        free(We[l]);
        free(be[l]);
        free(bd[l]);
        free(Wd[l]);
        free(Ws[l]);
    }
    rm_rf(dir);
    rm_rf(dir2);
    free(dir);
    free(dir2);
    ag_model_free(m);
}
END_TEST

/* ---- save / load round trip ------------------------------------------------------------------- */

static ag_transcoder *random_set(int kind, int act, int L, int D, int F, int th, int skip, uint64_t seed) {
    ag_transcoder *tc = NULL;
    ck_assert_int_eq(agi_tc_alloc(&tc, kind, act, AG_READ_MLP_IN, L, D, F, act == AG_ACTIVATION_TOPK ? 3 : 0, th, skip, "test"), AG_OK);
    rng_state = seed;
    for (int l = 0; l < L; l++) {
        agi_tc_layer *ly = &tc->layers[l];
        int no = agi_tc_n_out(tc, l);
        for (int q = 0; q < F * D; q++) ly->W_enc[q] = (float)nrand();
        for (int q = 0; q < F * no * D; q++) ly->W_dec[q] = (float)nrand();
        for (int q = 0; q < F; q++) ly->b_enc[q] = (float)nrand();
        for (int q = 0; q < D; q++) ly->b_dec[q] = (float)nrand();
        if (th)
            for (int q = 0; q < F; q++) ly->threshold[q] = (float)fabs(nrand());
        if (skip)
            for (int q = 0; q < D * D; q++) ly->W_skip[q] = (float)nrand();
    }
    return tc;
}

static void assert_same(const ag_transcoder *a, const ag_transcoder *b) {
    ck_assert_int_eq(a->kind, b->kind);
    ck_assert_int_eq(a->activation, b->activation);
    ck_assert_int_eq(a->read_point, b->read_point);
    ck_assert(a->L == b->L && a->D == b->D && a->F == b->F && a->has_skip == b->has_skip);
    if (a->activation == AG_ACTIVATION_TOPK) ck_assert_int_eq(a->k, b->k);
    for (int l = 0; l < a->L; l++) {
        const agi_tc_layer *x = &a->layers[l], *y = &b->layers[l];
        size_t F = (size_t)a->F, D = (size_t)a->D, no = (size_t)agi_tc_n_out(a, l);
        ck_assert_int_eq(memcmp(x->W_enc, y->W_enc, F * D * 4), 0);
        ck_assert_int_eq(memcmp(x->W_dec, y->W_dec, F * no * D * 4), 0);
        ck_assert_int_eq(memcmp(x->b_enc, y->b_enc, F * 4), 0);
        ck_assert_int_eq(memcmp(x->b_dec, y->b_dec, D * 4), 0);
        ck_assert_int_eq(!x->threshold, !y->threshold);
        if (x->threshold) ck_assert_int_eq(memcmp(x->threshold, y->threshold, F * 4), 0);
        ck_assert_int_eq(!x->W_skip, !y->W_skip);
        if (x->W_skip) ck_assert_int_eq(memcmp(x->W_skip, y->W_skip, D * D * 4), 0);
    }
}

START_TEST(test_round_trip) {
    struct {
        int kind, act, th, skip;
    } cases[] = {{AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, 0, 0},
                 {AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_JUMPRELU, 1, 1},
                 {AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_TOPK, 0, 0},
                 {AG_TRANSCODER_CROSS_LAYER, AG_ACTIVATION_RELU, 0, 1},
                 {AG_TRANSCODER_CROSS_LAYER, AG_ACTIVATION_JUMPRELU, 1, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ag_transcoder *tc = random_set(cases[c].kind, cases[c].act, 3, 8, 12, cases[c].th, cases[c].skip, 100 + c);
        char *dir = tmpdir("rt");
        ck_assert_msg(ag_transcoder_save(tc, dir) == AG_OK, "%s", ag_last_error());
        ag_transcoder *back = NULL;
        ck_assert_msg(ag_transcoder_load(&back, dir, NULL, NULL) == AG_OK, "case %zu: %s", c, ag_last_error());
        assert_same(tc, back);
        /* saving the loaded set again gives the same bytes */
        char *dir2 = tmpdir("rt2");
        ck_assert_int_eq(ag_transcoder_save(back, dir2), AG_OK);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' > /dev/null", dir, dir2);
        ck_assert_int_eq(system(cmd), 0);
        ag_transcoder_free(back);
        ag_transcoder_free(tc);
        rm_rf(dir);
        rm_rf(dir2);
        free(dir);
        free(dir2);
    }
}
END_TEST

START_TEST(test_half_conversions) {
    /* every finite F16 value converts exactly and back */
    for (uint32_t h = 0; h < 65536; h++) {
        if (((h >> 10) & 0x1F) == 0x1F) continue;
        float f = agi_f16_to_f32((uint16_t)h);
        ck_assert_uint_eq(agi_f32_to_f16(f), h);
    }
    ck_assert(agi_f16_to_f32(0x3C00) == 1.0f);
    ck_assert(agi_f16_to_f32(0xC000) == -2.0f);
    ck_assert(agi_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    ck_assert(agi_bf16_to_f32(0x3F80) == 1.0f);
    ck_assert_uint_eq(agi_f32_to_bf16(1.0f), 0x3F80);
}
END_TEST

/* ---- bad files ------------------------------------------------------------------------------------ */

static void expect_bad(const char *dir, ag_model *m, ag_status want, const char *field) {
    ag_transcoder *tc = (ag_transcoder *)(intptr_t)1;
    ag_status st = ag_transcoder_load(&tc, dir, m, NULL);
    ck_assert_msg(st == want, "expected %d, got %d: %s", (int)want, (int)st, ag_last_error());
    ck_assert_ptr_null(tc);
    const char *msg = ag_last_error();
    ck_assert_msg(strstr(msg, "layer_0.safetensors") != NULL, "message names no file: %s", msg);
    ck_assert_msg(strstr(msg, field) != NULL, "message does not name '%s': %s", field, msg);
}

START_TEST(test_bad_files) {
    rng_state = 13;
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    char *dir = tmpdir("bad");
    plt_src s;
    plt_make(&s, 8, 0, 0);
    const char *dt[5] = {"F32", "F32", "F32", "F32", "F32"};
    plt_write(&s, dir, dt);
    char p0[512];
    snprintf(p0, sizeof p0, "%s/layer_0.safetensors", dir);
    ag_transcoder *tc = NULL;
    ck_assert_msg(ag_transcoder_load(&tc, dir, m, NULL) == AG_OK, "%s", ag_last_error());
    ag_transcoder_free(tc);
    w_tensor good[4] = {{"W_enc", "F32", 2, {8, 64, 0}, s.We[0]}, {"W_dec", "F32", 2, {8, 64, 0}, s.Wd[0]},
                        {"b_enc", "F32", 1, {8, 0, 0}, s.be[0]}, {"b_dec", "F32", 1, {64, 0, 0}, s.bd[0]}};
    /* truncated header */
    write_st(p0, good, 4, NULL, 100);
    expect_bad(dir, m, AG_ERR_FORMAT, "header");
    /* header not a JSON object */
    write_st(p0, NULL, 0, "[1, 2, 3]", -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "not a JSON object");
    write_st(p0, NULL, 0, "{\"W_enc\": {\"dtype\": \"F32\", ", -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "not valid JSON");
    /* unknown dtype */
    write_st(p0, NULL, 0, "{\"W_enc\":{\"dtype\":\"Q9\",\"shape\":[8,64],\"data_offsets\":[0,2048]}}", -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "dtype");
    /* offsets past the end */
    write_st(p0, NULL, 0, "{\"W_enc\":{\"dtype\":\"F32\",\"shape\":[8,64],\"data_offsets\":[0,2048]}}", -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "data_offsets");
    /* offsets that disagree with the shape */
    write_st(p0, good, 4, "{\"W_enc\":{\"dtype\":\"F32\",\"shape\":[8,64],\"data_offsets\":[0,1000]}}", -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "data_offsets");
    /* wrong shapes: the width does not match the model */
    float *wide = grid_vals(8 * 65, 0.5);
    w_tensor bad_w[4] = {{"W_enc", "F32", 2, {8, 65, 0}, wide}, good[1], good[2], good[3]};
    write_st(p0, bad_w, 4, NULL, -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "shape");
    /* a decoder of another shape than the encoder */
    w_tensor bad_d[4] = {good[0], {"W_dec", "F32", 2, {7, 64, 0}, s.Wd[0]}, good[2], good[3]};
    write_st(p0, bad_d, 4, NULL, -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "W_dec");
    /* a missing tensor */
    write_st(p0, good, 3, NULL, -1);
    expect_bad(dir, m, AG_ERR_FORMAT, "b_dec");
    /* too few layers for the model */
    write_st(p0, good, 4, NULL, -1);
    char p4[512];
    snprintf(p4, sizeof p4, "%s/layer_4.safetensors", dir);
    ck_assert_int_eq(unlink(p4), 0);
    tc = NULL;
    ck_assert_int_eq(ag_transcoder_load(&tc, dir, m, NULL), AG_ERR_FORMAT);
    ck_assert_msg(strstr(ag_last_error(), "layer") != NULL, "%s", ag_last_error());
    /* not a directory / empty directory */
    ck_assert_int_eq(ag_transcoder_load(&tc, p0, m, NULL), AG_ERR_INVALID_ARGUMENT);
    char *empty = tmpdir("empty");
    ck_assert_int_eq(ag_transcoder_load(&tc, empty, m, NULL), AG_ERR_NOT_FOUND);
    ck_assert_int_eq(ag_transcoder_load(NULL, dir, m, NULL), AG_ERR_INVALID_ARGUMENT);
    free(wide);
    plt_free(&s);
    rm_rf(dir);
    rm_rf(empty);
    free(dir);
    free(empty);
    ag_model_free(m);
}
END_TEST

/* ---- activations ------------------------------------------------------------------------------- */

START_TEST(test_topk_activation) {
    ag_transcoder *tc = random_set(AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_TOPK, 1, 8, 40, 0, 0, 5);
    tc->k = 5;
    float pre[3 * 40], a[3 * 40];
    rng_state = 77;
    for (int q = 0; q < 120; q++) pre[q] = (float)nrand();
    for (int q = 0; q < 40; q++) pre[80 + q] = -1.0f - (float)q; /* row 2: all negative */
    pre[80 + 7] = 2.0f;
    agi_tc_activate(tc, 0, pre, 3, a);
    for (int r = 0; r < 3; r++) {
        int nz = 0;
        float kth = INFINITY;
        for (int i = 0; i < 40; i++)
            if (a[r * 40 + i] != 0.0f) nz++, kth = fminf(kth, a[r * 40 + i]);
        if (r < 2) {
            ck_assert_int_eq(nz, 5);
            int above = 0;
            for (int i = 0; i < 40; i++) above += pre[r * 40 + i] > kth;
            ck_assert_int_eq(above, 4); /* the kept ones are the 5 largest */
        } else {
            ck_assert_int_eq(nz, 1); /* top-5 then ReLU */
            ck_assert(a[80 + 7] == 2.0f);
        }
    }
    /* in place gives the same */
    float b[120];
    memcpy(b, pre, sizeof b);
    agi_tc_activate(tc, 0, b, 3, b);
    ck_assert_int_eq(memcmp(a, b, sizeof b), 0);
    ag_transcoder_free(tc);
}
END_TEST

/* ---- training on a planted sparse dictionary --------------------------------------------------- */

typedef struct planted {
    int D, M, k;
    double *A, *Bm; /* [M][D] unit input and output atoms */
    uint64_t rng;
} planted;

static void planted_init(planted *p, int D, int M, int k, uint64_t seed) {
    p->D = D, p->M = M, p->k = k, p->rng = seed;
    p->A = malloc(sizeof(double) * M * D);
    p->Bm = malloc(sizeof(double) * M * D);
    rng_state = seed * 7 + 3;
    for (int j = 0; j < M; j++) {
        double *rows[2] = {p->A + j * D, p->Bm + j * D};
        for (int r = 0; r < 2; r++) {
            double s = 0;
            for (int d = 0; d < D; d++) rows[r][d] = nrand(), s += rows[r][d] * rows[r][d];
            for (int d = 0; d < D; d++) rows[r][d] /= sqrt(s);
        }
    }
}

/* x = Σ c_j A_j, y = Σ c_j B_j with k random atoms per token, c_j in [0.5, 1.5] */
static int planted_source(void *user, float *x, float *y, int n) {
    planted *p = user;
    int D = p->D;
    for (int r = 0; r < n; r++) {
        float *xr = x + (size_t)r * D, *yr = y + (size_t)r * D;
        memset(xr, 0, sizeof(float) * D);
        memset(yr, 0, sizeof(float) * D);
        for (int t = 0; t < p->k; t++) {
            p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
            int j = (int)((p->rng >> 33) % (uint64_t)p->M);
            p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
            double c = 0.5 + (double)(p->rng >> 11) / 9007199254740992.0;
            for (int d = 0; d < D; d++) xr[d] += (float)(c * p->A[j * D + d]), yr[d] += (float)(c * p->Bm[j * D + d]);
        }
    }
    return 0;
}

/* mean over true atoms of the best |cos| with a learned decoder row, and the share above 0.9 */
static void recovery(const ag_transcoder *tc, const planted *p, double *mean_cos, double *frac90) {
    int D = p->D, F = tc->F;
    double sum = 0.0;
    int good = 0;
    for (int j = 0; j < p->M; j++) {
        double best = 0.0;
        for (int i = 0; i < F; i++) {
            const float *r = tc->layers[0].W_dec + (size_t)i * D;
            double dot = 0, nr = 0;
            for (int d = 0; d < D; d++) dot += r[d] * p->Bm[j * D + d], nr += (double)r[d] * r[d];
            if (nr > 0) best = fmax(best, dot / sqrt(nr));
        }
        sum += best;
        good += best > 0.9;
    }
    *mean_cos = sum / p->M;
    *frac90 = (double)good / p->M;
}

/* The training options of the planted-dictionary runs. */
static ag_transcoder_train_options planted_options(int64_t steps, uint64_t seed) {
    ag_transcoder_train_options o;
    AG_TRANSCODER_TRAIN_OPTIONS_INIT(o);
    o.steps = steps;
    o.batch_size = 256;
    o.learning_rate = 3e-3f;
    o.warmup_steps = 50;
    o.sparsity_coefficient = 0.3f;
    o.dead_steps = 200;
    o.resample_every = 250;
    o.seed = seed;
    return o;
}

static ag_transcoder *train_planted(int act, int64_t steps, uint64_t seed, const char *ckpt, int64_t ckpt_every, const char *resume) {
    planted p;
    planted_init(&p, 24, 48, 3, seed);
    ag_transcoder *tc = NULL;
    ck_assert_int_eq(agi_tc_alloc(&tc, AG_TRANSCODER_PER_LAYER, act, AG_READ_MLP_IN, 1, 24, 96, 3, 0, 0, "test"), AG_OK);
    ag_transcoder_train_options o = planted_options(steps, seed);
    o.activation = act;
    o.k = 3;
    o.checkpoint_path = ckpt;
    o.checkpoint_every = ckpt_every;
    o.resume_path = resume;
    ag_status st = agi_tc_train_core(tc, planted_source, &p, &o, "test");
    ck_assert_msg(st == AG_OK, "train: %s", ag_last_error());
    free(p.A);
    free(p.Bm);
    p.A = p.Bm = NULL;
    return tc;
}

START_TEST(test_planted_recovery) {
    int heavy = !ag_test_under_valgrind();
    int64_t steps = heavy ? 3000 : 60;
    int acts[2] = {AG_ACTIVATION_RELU, AG_ACTIVATION_TOPK};
    for (int a = 0; a < 2; a++) {
        ag_transcoder *tc = train_planted(acts[a], steps, 3, NULL, 0, NULL);
        planted p;
        planted_init(&p, 24, 48, 3, 3);
        double mc, f90;
        recovery(tc, &p, &mc, &f90);
        fprintf(stderr, "planted %s: mean best cosine %.4f, atoms above 0.9: %.3f\n", a ? "topk" : "relu", mc, f90);
        if (heavy) {
            ck_assert_msg(mc > 0.95, "%s: mean best cosine %.4f", a ? "topk" : "relu", mc);
            ck_assert_msg(f90 >= 0.95, "%s: only %.3f of the atoms recovered above 0.9", a ? "topk" : "relu", f90);
        }
        free(p.A);
        free(p.Bm);
        ag_transcoder_free(tc);
    }
}
END_TEST

START_TEST(test_deterministic) {
    int64_t steps = ag_test_under_valgrind() ? 20 : 400;
    ag_transcoder *a = train_planted(AG_ACTIVATION_RELU, steps, 9, NULL, 0, NULL);
    ag_transcoder *b = train_planted(AG_ACTIVATION_RELU, steps, 9, NULL, 0, NULL);
    assert_same(a, b);
    ag_transcoder_free(a);
    ag_transcoder_free(b);
}
END_TEST

static int cancel_at_half(const ag_transcoder_progress *p, void *user) {
    (void)user;
    return p->step * 2 >= p->total_steps;
}

START_TEST(test_resume_equals_uninterrupted) {
    int64_t steps = ag_test_under_valgrind() ? 20 : 400;
    ag_transcoder *full = train_planted(AG_ACTIVATION_RELU, steps, 21, NULL, 0, NULL);
    char *ck = tmpdir("resume");
    /* run 1: checkpoint at steps/2, cancelled right after it */
    planted p;
    planted_init(&p, 24, 48, 3, 21);
    ag_transcoder *tc = NULL;
    ck_assert_int_eq(agi_tc_alloc(&tc, AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 1, 24, 96, 3, 0, 0, "t"), AG_OK);
    ag_transcoder_train_options o = planted_options(steps, 21);
    o.checkpoint_path = ck;
    o.checkpoint_every = steps / 2;
    o.progress = cancel_at_half;
    o.progress_every = steps / 2;
    ck_assert_int_eq(agi_tc_train_core(tc, planted_source, &p, &o, "t"), AG_ERR_CANCELLED);
    ag_transcoder_free(tc);
    free(p.A);
    free(p.Bm);
    /* run 2: resume from it with a fresh data source */
    planted_init(&p, 24, 48, 3, 21);
    ck_assert_int_eq(agi_tc_alloc(&tc, AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 1, 24, 96, 3, 0, 0, "t"), AG_OK);
    o.checkpoint_path = NULL;
    o.progress = NULL;
    o.resume_path = ck;
    ck_assert_msg(agi_tc_train_core(tc, planted_source, &p, &o, "t") == AG_OK, "%s", ag_last_error());
    assert_same(full, tc);
    /* the checkpoint directory is itself a loadable transcoder set */
    ag_transcoder *mid = NULL;
    ck_assert_msg(ag_transcoder_load(&mid, ck, NULL, NULL) == AG_OK, "%s", ag_last_error());
    ag_transcoder_free(mid);
    ag_transcoder_free(tc);
    ag_transcoder_free(full);
    free(p.A);
    free(p.Bm);
    rm_rf(ck);
    free(ck);
}
END_TEST

/* ---- end to end on stories260K ------------------------------------------------------------------ */

static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0) return 0;
        for (int k = 1; k <= n; k++)
            if ((p[k] & 0xC0) != 0x80) return 0;
        p += n + 1;
    }
    return 1;
}

START_TEST(test_train_eval_label_stories) {
    if (ag_test_under_valgrind()) return;
    ag_model *m = ag_test_load_model(STORIES_BIN, TOK_BIN);
    ag_transcoder_train_options o;
    AG_TRANSCODER_TRAIN_OPTIONS_INIT(o);
    o.n_features = 64;
    o.corpus_tokens = 3000;
    o.context = 64;
    o.buffer_tokens = 2048;
    o.batch_size = 256;
    o.steps = 60;
    o.warmup_steps = 10;
    ag_transcoder *tc = NULL, *tc2 = NULL;
    ck_assert_msg(ag_transcoder_train(&tc, m, &o) == AG_OK, "%s", ag_last_error());
    ck_assert_msg(ag_transcoder_train(&tc2, m, &o) == AG_OK, "%s", ag_last_error());
    assert_same(tc, tc2); /* deterministic end to end */
    ag_transcoder_free(tc2);
    ag_transcoder_eval_options eo;
    AG_TRANSCODER_EVAL_OPTIONS_INIT(eo);
    eo.n_tokens = 2000;
    eo.context = 64;
    ag_transcoder_layer_stats ls[5];
    ag_transcoder_eval e;
    e.struct_size = sizeof e;
    ck_assert_msg(ag_transcoder_evaluate(tc, m, &eo, ls, &e) == AG_OK, "%s", ag_last_error());
    for (int l = 0; l < 5; l++) {
        ck_assert(ls[l].fvu >= 0.0 && ls[l].fvu < 1.5);
        ck_assert(ls[l].l0 >= 0.0 && ls[l].l0 <= 64.0);
        ck_assert(ls[l].dead_fraction >= 0.0 && ls[l].dead_fraction <= 1.0);
    }
    ck_assert(isfinite(e.loss_model) && isfinite(e.loss_replacement) && isfinite(e.loss_zero_ablation));
    /* the summary is made of the per-layer numbers and the three losses */
    double sum_fvu = 0, sum_l0 = 0, sum_dead = 0;
    for (int l = 0; l < 5; l++) {
        sum_fvu += ls[l].fvu, sum_l0 += ls[l].l0, sum_dead += ls[l].dead_fraction;
        double dead = ls[l].dead_fraction * 64.0; /* a count of the 64 features */
        ck_assert_msg(fabs(dead - round(dead)) <= 1e-9, "layer %d: dead fraction %.12g is not a count of 64", l, ls[l].dead_fraction);
        ck_assert_msg(ls[l].mse >= 0.0 && (ls[l].fvu == 0.0) == (ls[l].mse == 0.0), "layer %d: fvu %g, mse %g", l, ls[l].fvu, ls[l].mse);
        ck_assert(ls[l].n_tokens > 0);
    }
    ck_assert(e.n_tokens > 0);
    ck_assert_double_eq_tol(e.mean_fvu, sum_fvu / 5, 1e-12 * (1 + sum_fvu));
    ck_assert_double_eq_tol(e.mean_l0, sum_l0 / 5, 1e-12 * (1 + sum_l0));
    ck_assert_double_eq_tol(e.mean_dead_fraction, sum_dead / 5, 1e-12);
    double recovered = (e.loss_zero_ablation - e.loss_replacement) / (e.loss_zero_ablation - e.loss_model);
    ck_assert_msg(fabs(e.loss_recovered - recovered) <= 1e-9 * fmax(1.0, fabs(recovered)), "loss recovered %.12g, from the losses %.12g",
                  e.loss_recovered, recovered);
    ck_assert(e.loss_model < e.loss_zero_ablation);
    ck_assert_msg(e.loss_replacement < e.loss_zero_ablation, "replacement %g vs zero ablation %g", e.loss_replacement, e.loss_zero_ablation);
    ck_assert_msg(ag_transcoder_label(tc, m, &eo) == AG_OK, "%s", ag_last_error());
    const char *lab = NULL;
    ck_assert_int_eq(ag_transcoder_feature_label(tc, 2, 3, &lab), AG_OK);
    ck_assert_ptr_nonnull(lab);
    ck_assert(strstr(lab, "\xe2\x86\x92") != NULL);
    for (int l = 0; l < 5; l++) /* every label is valid UTF-8 (byte tokens are sanitised) */
        for (int i = 0; i < 64; i++) {
            const char *t = NULL;
            ck_assert_int_eq(ag_transcoder_feature_label(tc, l, i, &t), AG_OK);
            ck_assert_msg(utf8_valid(t), "label %d/%d is not UTF-8: %s", l, i, t);
        }
    char *dir = tmpdir("e2e");
    ck_assert_int_eq(ag_transcoder_save(tc, dir), AG_OK);
    ag_transcoder *back = NULL;
    ck_assert_msg(ag_transcoder_load(&back, dir, m, NULL) == AG_OK, "%s", ag_last_error());
    assert_same(tc, back);
    const char *lab2 = NULL;
    ck_assert_int_eq(ag_transcoder_feature_label(back, 2, 3, &lab2), AG_OK);
    ck_assert_str_eq(lab, lab2);
    ag_transcoder_free(back);
    ag_transcoder_free(tc);
    rm_rf(dir);
    free(dir);
    /* a text corpus */
    char corpus[256];
    snprintf(corpus, sizeof corpus, "/tmp/ag_tc_corpus_%d.txt", (int)getpid());
    FILE *f = fopen(corpus, "w");
    for (int i = 0; i < 40; i++) fprintf(f, "Once upon a time, there was a little girl named Lily. She loved to play outside.\n\n");
    fclose(f);
    o.corpus_path = corpus;
    o.steps = 10;
    ck_assert_msg(ag_transcoder_train(&tc, m, &o) == AG_OK, "%s", ag_last_error());
    ag_transcoder_free(tc);
    unlink(corpus);
    ag_model_free(m);
}
END_TEST

START_TEST(test_argument_errors) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = (ag_transcoder *)(intptr_t)1;
    ag_transcoder_train_options o;
    AG_TRANSCODER_TRAIN_OPTIONS_INIT(o);
    o.kind = 7;
    ck_assert_int_eq(ag_transcoder_train(&tc, m, &o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(tc);
    ck_assert(strstr(ag_last_error(), "kind") != NULL);
    AG_TRANSCODER_TRAIN_OPTIONS_INIT(o);
    o.activation = AG_ACTIVATION_TOPK;
    o.k = 0;
    ck_assert_int_eq(ag_transcoder_train(&tc, m, &o), AG_ERR_INVALID_ARGUMENT);
    AG_TRANSCODER_TRAIN_OPTIONS_INIT(o);
    o.buffer_tokens = 10;
    ck_assert_int_eq(ag_transcoder_train(&tc, m, &o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_transcoder_train(&tc, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
    AG_TRANSCODER_TRAIN_OPTIONS_INIT(o);
    o.corpus_path = "/tmp/x.txt";
    ck_assert_int_eq(ag_transcoder_train(&tc, m, &o), AG_ERR_STATE); /* no tokenizer */
    ag_transcoder *t2 = random_set(AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, 3, 8, 4, 0, 0, 1);
    ag_transcoder_eval e;
    e.struct_size = sizeof e;
    ck_assert_int_eq(ag_transcoder_evaluate(t2, m, NULL, NULL, &e), AG_ERR_INVALID_ARGUMENT); /* shapes */
    float x[8] = {0}, a[4];
    ck_assert_int_eq(ag_transcoder_encode(t2, 3, x, 1, a, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_transcoder_encode(t2, 0, x, 1, a, NULL), AG_OK);
    const char *lab;
    ck_assert_int_eq(ag_transcoder_feature_label(t2, 0, 0, &lab), AG_ERR_NOT_FOUND);
    const float *d;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_transcoder_tensor(t2, 0, "threshold", &d, sh, &nd), AG_ERR_NOT_FOUND);
    ck_assert_int_eq(ag_transcoder_tensor(t2, 0, "nope", &d, sh, &nd), AG_ERR_NOT_FOUND);
    ag_transcoder_free(t2);
    ag_transcoder_free(NULL);
    ag_model_free(m);
}
END_TEST

static Suite *transcoder_suite(void) {
    Suite *s = suite_create("transcoder");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_half_conversions);
    tcase_add_test(tc, test_plt_layout_loads);
    tcase_add_test(tc, test_clt_layout_loads);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_topk_activation);
    tcase_add_test(tc, test_argument_errors);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("training");
    tcase_set_timeout(tt, 600);
    tcase_add_test(tt, test_planted_recovery);
    tcase_add_test(tt, test_deterministic);
    tcase_add_test(tt, test_resume_equals_uninterrupted);
    tcase_add_test(tt, test_train_eval_label_stories);
    suite_add_tcase(s, tt);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(transcoder_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
