/*
 * check_intervene_features — interventions on transcoder features (issue #7): ag_intervene with
 * AG_SITE_FEATURE items and ag_intervene_options.transcoder in every mode, steered generation
 * with features, `attrgraph intervene --transcoders`, and ag_graph_validate / `attrgraph
 * validate` on transcoder graphs (per-layer and cross-layer sets, with and without skip
 * connections, ReLU, JumpReLU and TopK, over stories260K).
 *
 * Oracles, independent of the code under test:
 *   - tests/support/naive_llama (double precision, its own reader and loops) with hooks that
 *     implement the feature semantics from the header's definition: DIRECT adds
 *     (a' - a_clean) W_dec, FREE (real model) adds (a' - act(encoder of the run's input)) W_dec,
 *     LINEAR / FREE + free_replacement replace every MLP output by sum_s a_s W_dec + the clean
 *     rest (mlp_out - reconstruction), features recomputed in double here;
 *   - the graph's adjacency (direct mode) and path sums computed by a backward sweep over the
 *     graph's rows here (linear mode);
 *   - plain generation, and teacher-forced oracle runs, for steered generation;
 *   - ag_intervention_result_features: the set's weights applied here in double loops to the
 *     run's own read-point tensor (MLP_IN or MID of the result), per mode (activation function
 *     or frozen multipliers), clamps at their values;
 *   - a set loaded or trained for stories260K against copies of the model with other weights
 *     (ag_model_load_memory of perturbed bytes): refused; the same weights again, or as GGUF:
 *     accepted.
 * Random sets come from tests/support/transcoder_setup (agi_tc_alloc, shared with
 * check_transcoder_graph); the oracle reads their weights, not anything the library derives
 * from them.
 */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "attrgraph.h"
#include "cli_output.h"
#include "graph_paths.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "transcoder_setup.h"
#include "transcoder/transcoder.h"
#include "suite_run.h"

#define STORIES_BIN "models/stories260K.bin"

static const int32_t TOKS[9] = {1, 403, 407, 261, 378, 300, 413, 372, 260};

/* ---- helpers ------------------------------------------------------------------------------ */

/* The four kinds of sets the suite runs over. */
static ag_transcoder *set_of(int which) {
    switch (which) {
    case 0: return ag_test_random_transcoder(AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 0, 48, 0, 3);
    case 1: return ag_test_random_transcoder(AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_JUMPRELU, AG_READ_RESID_MID, 1, 48, 0, 4);
    case 2: return ag_test_random_transcoder(AG_TRANSCODER_CROSS_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 1, 40, 0, 5);
    default: return ag_test_random_transcoder(AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_TOPK, AG_READ_MLP_IN, 0, 48, 6, 6);
    }
}
static const char *const SET_NAMES[4] = {"PLT relu u", "PLT jumprelu x_mid skip", "CLT relu u skip", "PLT topk6 u"};

/* A set/scale item on a transcoder feature. */
static ag_intervention feat_iv(int32_t kind, int32_t layer, int32_t pos, int32_t index, float value) {
    return ag_test_intervention(kind, AG_SITE_FEATURE, layer, pos, index, value);
}

/* Intervene options with the transcoder set tc (free_replacement = repl). */
static ag_intervene_options tc_opts(int32_t mode, const ag_transcoder *tc, int fa, int fn, int fg, int repl) {
    ag_intervene_options o = ag_test_intervene_options(mode, fa, fn, fg);
    o.transcoder = tc;
    o.free_replacement = repl;
    return o;
}

/* The clean activations of layer l on the trace [T][F], through the public API. */
static float *clean_acts(const ag_transcoder *tc, const ag_trace *t, int l) {
    float *a = malloc(sizeof(float) * 9 * (size_t)tc->F);
    ck_assert_int_eq(ag_transcoder_trace(tc, t, l, a, NULL, NULL), AG_OK);
    return a;
}

/* An active and an inactive feature of layer l at position *p (clean, via the public API); when
 * *p has none, the next position (of 1..8) that has both. */
static void pick_features_at(const ag_transcoder *tc, const ag_trace *t, int l, int *p, int *on, int *off) {
    float *a = clean_acts(tc, t, l);
    for (int k = 0; k < 8; k++) {
        int q = 1 + (*p - 1 + k) % 8;
        *on = *off = -1;
        for (int i = 0; i < tc->F; i++) {
            float v = a[(size_t)q * tc->F + i];
            if (v > 0.05f && (*on < 0 || v > a[(size_t)q * tc->F + *on])) *on = i;
            if (v == 0.0f && *off < 0) *off = i;
        }
        if (*on >= 0 && *off >= 0) {
            *p = q;
            break;
        }
    }
    free(a);
    ck_assert_msg(*on >= 0 && *off >= 0, "layer %d: no position with an active and an inactive feature", l);
}

static void pick_features(const ag_transcoder *tc, const ag_trace *t, int l, int p, int *on, int *off) {
    int q = p;
    pick_features_at(tc, t, l, &q, on, off);
    ck_assert_msg(q == p, "layer %d position %d: no active or no inactive feature", l, p);
}

/* ---- the oracle: naive_llama with the feature semantics, in double ------------------------- */

enum { FO_DIRECT = 1, FO_REAL, FO_LINEAR, FO_REPLACE };

typedef struct fo_clamp {
    int layer, pos, index;
    double value; /* the new activation (full value) */
} fo_clamp;

typedef struct fo_ctx {
    const nl_model *m;
    const ag_transcoder *tc;
    nl_cache *run;   /* the cache being filled (its mlp_in / mid of block l are current at MLP_OUT) */
    int mode, freeze_mult, T, bos0;
    const fo_clamp *cl;
    int n;
    const double *clean_a, *clean_pre, *rest; /* [L][T][F], [L][T][F], [L][T][D] */
    double *acts;                              /* [L][T][F] replacement modes */
    double *fdelta;                            /* [n] REAL */
} fo_ctx;

static int n_out_of(const ag_transcoder *tc, int l) { return tc->kind == AG_TRANSCODER_CROSS_LAYER ? tc->L - l : 1; }

/* pre[F] = W_enc x + b_enc of layer l, in double. */
static void fo_pre(const ag_transcoder *tc, int l, const double *x, double *pre) {
    int F = tc->F, D = tc->D;
    for (int i = 0; i < F; i++) {
        double s = tc->layers[l].b_enc[i];
        for (int d = 0; d < D; d++) s += (double)tc->layers[l].W_enc[(size_t)i * D + d] * x[d];
        pre[i] = s;
    }
}

/* The activation function on one row (ReLU, JumpReLU, TopK: the k largest, ties by index). */
static void fo_act(const ag_transcoder *tc, int l, const double *pre, double *a) {
    int F = tc->F;
    if (tc->activation == AG_ACTIVATION_TOPK) {
        for (int i = 0; i < F; i++) {
            int above = 0;
            for (int j = 0; j < F; j++) above += pre[j] > pre[i] || (pre[j] == pre[i] && j < i);
            a[i] = above < tc->k && pre[i] > 0 ? pre[i] : 0.0;
        }
        return;
    }
    for (int i = 0; i < F; i++) {
        double th = tc->activation == AG_ACTIVATION_JUMPRELU ? tc->layers[l].threshold[i] : 0.0;
        a[i] = pre[i] > th ? pre[i] : 0.0;
    }
}

static const double *fo_read(const fo_ctx *c, const nl_cache *cc, int l, int p) {
    const double *base = c->tc->read_point == AG_READ_RESID_MID ? cc->mid : cc->mlp_in;
    return base + ((size_t)l * c->T + p) * c->tc->D;
}

static const double *fo_dec(const ag_transcoder *tc, int s, int f, int o, double *buf) {
    int D = tc->D, no = n_out_of(tc, s);
    for (int d = 0; d < D; d++) buf[d] = tc->layers[s].W_dec[((size_t)f * no + o) * D + d];
    return buf;
}

static void fo_hook(void *user, nl_site site, int layer, int T, int width, double *data) {
    fo_ctx *c = user;
    (void)width;
    if (site != NL_SITE_MLP_OUT) return;
    const ag_transcoder *tc = c->tc;
    int l = layer, F = tc->F, D = tc->D;
    double *dec = malloc(sizeof(double) * (size_t)D), *pre = malloc(sizeof(double) * (size_t)F);
    double *a = malloc(sizeof(double) * (size_t)F);
    if (c->mode == FO_DIRECT || c->mode == FO_REAL) {
        for (int k = 0; k < c->n; k++) {
            const fo_clamp *q = &c->cl[k];
            int o = l - q->layer;
            if (o < 0 || o >= n_out_of(tc, q->layer)) continue;
            double d;
            if (c->mode == FO_DIRECT) {
                d = q->value - c->clean_a[((size_t)q->layer * T + q->pos) * F + q->index];
            } else if (o == 0) {
                fo_pre(tc, l, fo_read(c, c->run, l, q->pos), pre);
                fo_act(tc, l, pre, a);
                d = c->fdelta[k] = q->value - a[q->index];
            } else {
                d = c->fdelta[k];
            }
            fo_dec(tc, q->layer, q->index, o, dec);
            for (int j = 0; j < D; j++) data[(size_t)q->pos * D + j] += d * dec[j];
        }
    } else { /* replacement: every MLP output = sum_s a_s W_dec[s -> l] + rest */
        for (int p = 0; p < T; p++) {
            double *ap = c->acts + ((size_t)l * T + p) * F;
            if (c->bos0 && p == 0) {
                for (int i = 0; i < F; i++) ap[i] = 0.0;
            } else {
                fo_pre(tc, l, fo_read(c, c->run, l, p), pre);
                if (c->mode == FO_LINEAR || c->freeze_mult) {
                    for (int i = 0; i < F; i++) {
                        size_t at = ((size_t)l * T + p) * F + i;
                        ap[i] = c->clean_a[at] != 0.0 ? c->clean_a[at] / c->clean_pre[at] * pre[i] : 0.0;
                    }
                } else {
                    fo_act(tc, l, pre, ap);
                }
                for (int k = 0; k < c->n; k++)
                    if (c->cl[k].layer == l && c->cl[k].pos == p) ap[c->cl[k].index] = c->cl[k].value;
            }
            double *out = data + (size_t)p * D;
            for (int j = 0; j < D; j++) out[j] = c->rest[((size_t)l * T + p) * D + j];
            for (int s = 0; s <= l; s++) {
                int o = l - s;
                if (o >= n_out_of(tc, s)) continue;
                const double *as = c->acts + ((size_t)s * T + p) * F;
                for (int i = 0; i < F; i++) {
                    if (as[i] == 0.0) continue;
                    fo_dec(tc, s, i, o, dec);
                    for (int j = 0; j < D; j++) out[j] += as[i] * dec[j];
                }
            }
        }
    }
    free(dec);
    free(pre);
    free(a);
}

typedef struct fo_clean {
    nl_cache *cache;
    double *a, *pre, *rest;
} fo_clean;

/* The oracle's clean run and its clean feature quantities. */
static fo_clean fo_clean_make(const nl_model *nm, const ag_transcoder *tc, const int32_t *toks, int T) {
    fo_clean c;
    int L = tc->L, F = tc->F, D = tc->D;
    c.cache = nl_cache_new(nm, T);
    ck_assert_int_eq(nl_forward_i32(nm, toks, T, NULL, c.cache), 0);
    c.a = calloc((size_t)L * T * F, sizeof(double));
    c.pre = calloc((size_t)L * T * F, sizeof(double));
    c.rest = calloc((size_t)L * T * D, sizeof(double));
    fo_ctx tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.tc = tc;
    tmp.T = T;
    double *dec = malloc(sizeof(double) * (size_t)D);
    for (int l = 0; l < L; l++)
        for (int p = 0; p < T; p++) {
            double *pr = c.pre + ((size_t)l * T + p) * F, *ap = c.a + ((size_t)l * T + p) * F;
            fo_pre(tc, l, fo_read(&tmp, c.cache, l, p), pr);
            fo_act(tc, l, pr, ap);
            if (p == 0 && toks[0] == 1)
                for (int i = 0; i < F; i++) ap[i] = 0.0;
        }
    for (int l = 0; l < L; l++)
        for (int p = 0; p < T; p++) {
            double *re = c.rest + ((size_t)l * T + p) * D;
            for (int j = 0; j < D; j++) re[j] = c.cache->mlp_out[((size_t)l * T + p) * D + j];
            for (int s = 0; s <= l; s++) {
                int o = l - s;
                if (o >= n_out_of(tc, s)) continue;
                for (int i = 0; i < F; i++) {
                    double as = c.a[((size_t)s * T + p) * F + i];
                    if (as == 0.0) continue;
                    fo_dec(tc, s, i, o, dec);
                    for (int j = 0; j < D; j++) re[j] -= as * dec[j];
                }
            }
        }
    free(dec);
    return c;
}

static void fo_clean_free(fo_clean *c) {
    nl_cache_free(c->cache);
    free(c->a);
    free(c->pre);
    free(c->rest);
}

/* Oracle logits [T][V] of a run in `mode` with clamps cl (full new values) and residual adds
 * (site NL_SITE_RESID/MID handled by a second hook layer below). */
typedef struct fo_add {
    int site; /* NL_SITE_RESID or NL_SITE_MID */
    int layer, pos;
    double coef;
    const float *vec;
} fo_add;

typedef struct fo_both {
    fo_ctx f;
    const fo_add *adds;
    int n_adds;
} fo_both;

static void both_hook(void *user, nl_site site, int layer, int T, int width, double *data) {
    fo_both *b = user;
    for (int k = 0; k < b->n_adds; k++)
        if ((int)site == b->adds[k].site && layer == b->adds[k].layer)
            for (int j = 0; j < width; j++) data[(size_t)b->adds[k].pos * width + j] += b->adds[k].coef * b->adds[k].vec[j];
    fo_hook(&b->f, site, layer, T, width, data);
}

static nl_cache *fo_run(const nl_model *nm, const ag_transcoder *tc, const fo_clean *fc, const int32_t *toks, int T, int mode,
                        unsigned freeze, int freeze_mult, const fo_clamp *cl, int n, const fo_add *adds, int n_adds) {
    nl_cache *out = nl_cache_new(nm, T);
    fo_both b;
    memset(&b, 0, sizeof b);
    b.f.m = nm;
    b.f.tc = tc;
    b.f.run = out;
    b.f.mode = mode;
    b.f.freeze_mult = freeze_mult;
    b.f.T = T;
    b.f.bos0 = toks[0] == 1;
    b.f.cl = cl;
    b.f.n = n;
    b.f.clean_a = fc->a;
    b.f.clean_pre = fc->pre;
    b.f.rest = fc->rest;
    b.f.acts = calloc((size_t)tc->L * T * tc->F, sizeof(double));
    b.f.fdelta = calloc((size_t)(n ? n : 1), sizeof(double));
    b.adds = adds;
    b.n_adds = n_adds;
    int *ti = malloc(sizeof(int) * (size_t)T);
    for (int i = 0; i < T; i++) ti[i] = toks[i];
    nl_forward_opts o;
    memset(&o, 0, sizeof o);
    o.hook = both_hook;
    o.user = &b;
    o.frozen = freeze ? fc->cache : NULL;
    o.freeze = freeze;
    ck_assert_int_eq(nl_forward_ex(nm, ti, T, &o, NULL, out), 0);
    free(ti);
    free(b.f.acts);
    free(b.f.fdelta);
    return out;
}

/* ---- every mode against the oracle ------------------------------------------------------------ */

static void check_modes_vs_oracle(int which) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    nl_model *nm = nl_load_bin(ag_test_fixture(STORIES_BIN));
    ck_assert_ptr_nonnull(nm);
    ag_transcoder *tc = set_of(which);
    const int T = 9, V = 512, D = 64;
    ag_trace *t = ag_test_trace(m, TOKS, T);
    fo_clean fc = fo_clean_make(nm, tc, TOKS, T);
    /* clamps: double an active feature, turn on an inactive one, ablate another active one
     * (a CLT feature writes every later block), plus a residual vector */
    int on1, off1, on2, off2, p1 = 3, p2 = 6;
    pick_features_at(tc, t, 1, &p1, &on1, &off1);
    pick_features_at(tc, t, 0, &p2, &on2, &off2);
    int p3 = p1 == 5 ? 7 : 5;
    float *a1 = clean_acts(tc, t, 1), *a0 = clean_acts(tc, t, 0);
    ag_intervention iv[4] = {feat_iv(AG_INTERVENE_SCALE, 1, p1, on1, 2.0f), feat_iv(AG_INTERVENE_SET, 1, p3, off1, 1.5f),
                             feat_iv(AG_INTERVENE_SET, 0, p2, on2, 0.0f), {0}};
    float vec[64];
    for (int d = 0; d < D; d++) vec[d] = (float)(0.3 * sin(0.7 * d + 1.0));
    iv[3].kind = AG_INTERVENE_ADD;
    iv[3].site = AG_SITE_RESID;
    iv[3].layer = 2;
    iv[3].position = 4;
    iv[3].value = 1.0f;
    iv[3].vector = vec;
    fo_clamp cl[3] = {{1, p1, on1, 2.0 * a1[(size_t)p1 * tc->F + on1]}, {1, p3, off1, 1.5}, {0, p2, on2, 0.0}};
    fo_add ad[1] = {{NL_SITE_RESID, 2, 4, 1.0, vec}};
    free(a1);
    free(a0);
    struct {
        int32_t mode;
        int fa, fn, fg, repl;
        int fo_mode;
        unsigned freeze;
        int delta;
    } cases[] = {
        {AG_INTERVENE_DIRECT, 0, 0, 0, 0, FO_DIRECT, NL_FREEZE_DIRECT, 1},
        {AG_INTERVENE_LINEAR, 0, 0, 0, 0, FO_LINEAR, NL_FREEZE_LINEAR, 1},
        {AG_INTERVENE_FREE, 0, 0, 0, 0, FO_REAL, 0u, 0},
        {AG_INTERVENE_FREE, 1, 0, 0, 0, FO_REAL, NL_FREEZE_ATTN, 0},
        {AG_INTERVENE_FREE, 0, 0, 0, 1, FO_REPLACE, 0u, 0},
        {AG_INTERVENE_FREE, 1, 1, 0, 1, FO_REPLACE, NL_FREEZE_ATTN | NL_FREEZE_NORMS, 0},
        {AG_INTERVENE_FREE, 0, 0, 1, 1, FO_REPLACE, 0u, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int with_add = 0; with_add < 2; with_add++) {
            ag_intervene_options o = tc_opts(cases[k].mode, tc, cases[k].fa, cases[k].fn, cases[k].fg, cases[k].repl);
            ag_intervention_result *r = ag_test_intervene(t, iv, with_add ? 4 : 3, &o);
            nl_cache *on = fo_run(nm, tc, &fc, TOKS, T, cases[k].fo_mode, cases[k].freeze, cases[k].fg && cases[k].repl, cl, 3, ad,
                                  with_add);
            size_t nl = (size_t)T * V;
            double *want = malloc(nl * sizeof *want);
            for (size_t i = 0; i < nl; i++) want[i] = on->logits[i] - fc.cache->logits[i];
            double e = ag_rel_err_fd(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 1), want, nl);
            double big = ag_max_abs_d(want, nl);
            ck_assert_msg(big > 1e-3, "%s case %zu: the interventions should move the logits (%.3g)", SET_NAMES[which], k, big);
            ck_assert_msg(e <= 1e-4, "%s case %zu (mode %d, freeze %d%d%d, replacement %d, add %d): logit changes rel err %.3g (max %.3g)",
                          SET_NAMES[which], k, cases[k].mode, cases[k].fa, cases[k].fn, cases[k].fg, cases[k].repl, with_add, e, big);
            /* every MLP output's change too */
            for (int l = 0; l < tc->L; l++) {
                size_t nd = (size_t)T * D;
                for (size_t i = 0; i < nd; i++) want[i] = on->mlp_out[(size_t)l * nd + i] - fc.cache->mlp_out[(size_t)l * nd + i];
                double mx = ag_max_abs_d(want, nd);
                double em = ag_max_diff_fd(ag_test_result_tensor(r, AG_TENSOR_MLP_OUT, l, 1), want, nd);
                ck_assert_msg(em <= 1e-4 * fmax(mx, 1e-2), "%s case %zu: mlp_out %d changes off by %.3g (max %.3g)", SET_NAMES[which], k, l,
                              em, mx);
            }
            free(want);
            nl_cache_free(on);
            ag_intervention_result_free(r);
        }
    }
    fo_clean_free(&fc);
    ag_trace_free(t);
    ag_transcoder_free(tc);
    nl_free(nm);
    ag_model_free(m);
}

START_TEST(test_modes_vs_oracle) { check_modes_vs_oracle(_i); }
END_TEST

/* ---- no-ops, FREE + replacement + everything frozen = LINEAR, result getters ---------------- */

START_TEST(test_noop_and_free_frozen_equals_linear) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    const int T = 9, V = 512;
    ag_trace *t = ag_test_trace(m, TOKS, T);
    const float *clean = ag_test_trace_tensor(t, AG_TENSOR_LOGITS, 0, NULL, NULL);
    size_t nl = (size_t)T * V;
    double scale = ag_max_abs_f(clean, nl);
    for (int which = 0; which < 4; which++) {
        ag_transcoder *tc = set_of(which);
        int on, off;
        pick_features(tc, t, 2, 4, &on, &off);
        float *a2 = clean_acts(tc, t, 2);
        ag_intervention noop[4] = {feat_iv(AG_INTERVENE_SET, 2, 4, on, a2[(size_t)4 * tc->F + on]),
                                   feat_iv(AG_INTERVENE_SCALE, 1, 0, 7, 1.0f), /* from BOS (skipped) to the end */
                                   feat_iv(AG_INTERVENE_ADD, 3, 2, off, 0.0f), feat_iv(AG_INTERVENE_ADD, 4, 8, 0, 0.0f)};
        noop[1].position_end = AG_POSITION_OPEN;
        ag_intervene_options modes[7] = {
            tc_opts(AG_INTERVENE_DIRECT, tc, 0, 0, 0, 0), tc_opts(AG_INTERVENE_LINEAR, tc, 0, 0, 0, 0),
            tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 0),   tc_opts(AG_INTERVENE_FREE, tc, 1, 1, 1, 0),
            tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 1),   tc_opts(AG_INTERVENE_FREE, tc, 1, 1, 1, 1),
            tc_opts(AG_INTERVENE_FREE, tc, 0, 1, 0, 1)};
        for (int k = 0; k < 7; k++) {
            ag_intervention_result *r = ag_test_intervene(t, NULL, 0, &modes[k]); /* nothing at all: exactly the trace */
            ck_assert_mem_eq(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 0), clean, nl * sizeof(float));
            ag_intervention_result_free(r);
            r = ag_test_intervene(t, noop, 4, &modes[k]);
            double d = ag_max_diff_ff(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 0), clean, nl);
            ck_assert_msg(d <= 1e-5 * scale, "%s mode %d (free_replacement %d): no-op changed logits by %.3g", SET_NAMES[which],
                          modes[k].mode, modes[k].free_replacement, d);
            if (modes[k].mode != AG_INTERVENE_FREE) /* exact propagation of a zero change */
                ck_assert_double_eq(ag_max_abs_f(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 1), nl), 0.0);
            /* previous / value of feature items: the clean activation and the clamp; NAN at BOS */
            float prev = 0, val = 0;
            ck_assert_int_eq(ag_intervention_result_unit(r, 0, 4, &prev, &val), AG_OK);
            ck_assert_float_eq(prev, a2[(size_t)4 * tc->F + on]);
            ck_assert_float_eq(val, a2[(size_t)4 * tc->F + on]);
            ck_assert_int_eq(ag_intervention_result_unit(r, 1, 0, &prev, &val), AG_OK);
            ck_assert(isnan(prev) && isnan(val));
            ag_intervention_result_free(r);
        }
        /* FREE with the replacement model and attention, norms and multipliers frozen = LINEAR */
        float vec[64];
        for (int d = 0; d < 64; d++) vec[d] = (float)(0.5 * cos(0.3 * d));
        ag_intervention iv[4] = {feat_iv(AG_INTERVENE_SET, 1, 3, off, 2.5f), feat_iv(AG_INTERVENE_SCALE, 2, 4, on, -3.0f),
                                 {0}, feat_iv(AG_INTERVENE_ADD, 0, 1, off, 1.0f)};
        iv[1].position_end = 7;
        iv[2].kind = AG_INTERVENE_ADD;
        iv[2].site = AG_SITE_MID;
        iv[2].layer = 1;
        iv[2].position = 2;
        iv[2].value = -2.0f;
        iv[2].vector = vec;
        ag_intervene_options ol = tc_opts(AG_INTERVENE_LINEAR, tc, 0, 0, 0, 0), of = tc_opts(AG_INTERVENE_FREE, tc, 1, 1, 1, 1);
        ag_intervention_result *rl = ag_test_intervene(t, iv, 4, &ol), *rf = ag_test_intervene(t, iv, 4, &of);
        const float *dl = ag_test_result_tensor(rl, AG_TENSOR_LOGITS, 0, 1), *df = ag_test_result_tensor(rf, AG_TENSOR_LOGITS, 0, 1);
        double big = ag_max_abs_f(dl, nl);
        ck_assert_msg(big > 0.05, "%s: the interventions should move the logits (max change %.3g)", SET_NAMES[which], big);
        double d = ag_max_diff_ff(dl, df, nl);
        ck_assert_msg(d <= 2e-5 * scale, "%s: linear vs free (replacement, all frozen) logits differ by %.3g", SET_NAMES[which], d);
        for (int l = 0; l < 5; l++) {
            size_t nd = (size_t)T * 64;
            const float *ml = ag_test_result_tensor(rl, AG_TENSOR_MLP_OUT, l, 0);
            double dm = ag_max_diff_ff(ml, ag_test_result_tensor(rf, AG_TENSOR_MLP_OUT, l, 0), nd);
            ck_assert_msg(dm <= 1e-4 * (1.0 + ag_max_abs_f(ml, nd)), "%s: mlp_out %d differs by %.3g", SET_NAMES[which], l, dm);
        }
        /* the nonlinear replacement model and the real model really differ from it */
        ag_intervene_options orp = tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 1), ore = tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 0);
        ag_intervention_result *rr = ag_test_intervene(t, iv, 4, &orp), *rreal = ag_test_intervene(t, iv, 4, &ore);
        ck_assert_double_gt(ag_max_diff_ff(ag_test_result_tensor(rr, AG_TENSOR_LOGITS, 0, 1), dl, nl), 1e-4);
        ck_assert_double_gt(ag_max_diff_ff(ag_test_result_tensor(rreal, AG_TENSOR_LOGITS, 0, 1), dl, nl), 1e-4);
        /* LINEAR does not run the neurons: their tensors keep the trace's values */
        ag_model_info in;
        in.struct_size = sizeof in;
        ck_assert_int_eq(ag_model_get_info(m, &in), AG_OK);
        ck_assert_double_eq(ag_max_abs_f(ag_test_result_tensor(rl, AG_TENSOR_NEURONS, 3, 1), (size_t)T * in.hidden_dim), 0.0);
        ag_intervention_result_free(rr);
        ag_intervention_result_free(rreal);
        ag_intervention_result_free(rl);
        ag_intervention_result_free(rf);
        free(a2);
        ag_transcoder_free(tc);
    }
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- ag_intervention_result_features: the run's feature activations ------------------------------ */

/* The features' expected values in a run, computed here from the run's read-point tensor (the
 * library's MLP_IN or MID of the result) and the set's weights by naive double loops (fo_pre,
 * fo_act): never through the code under test. kind: FO_DIRECT / FO_LINEAR (frozen multipliers
 * on the exact change), FO_REAL / FO_REPLACE (the activation function, or with freeze_mult the
 * frozen multipliers, on the run's values). Writes want_full / want_delta [T][F] of layer l and,
 * per element, ambiguous = 1 where a discontinuous activation (JumpReLU threshold, TopK rank k)
 * is within 1e-4 of flipping, so float32 and double may legitimately disagree. */
static void expected_features(const ag_transcoder *tc, int l, int T, int kind, int freeze_mult, const float *x_clean,
                              const float *x_full, const float *dx, double *want_full, double *want_delta, char *ambiguous) {
    int F = tc->F, D = tc->D;
    double *xd = malloc(sizeof(double) * (size_t)D), *pc = malloc(sizeof(double) * (size_t)F);
    double *ac = malloc(sizeof(double) * (size_t)F), *pr = malloc(sizeof(double) * (size_t)F);
    double *ar = malloc(sizeof(double) * (size_t)F), *sorted = malloc(sizeof(double) * (size_t)F);
    for (int p = 0; p < T; p++) {
        double *wf = want_full + (size_t)p * F, *wd = want_delta + (size_t)p * F;
        char *amb = ambiguous + (size_t)p * F;
        memset(amb, 0, (size_t)F);
        if (p == 0) { /* BOS: no features */
            for (int i = 0; i < F; i++) wf[i] = wd[i] = 0.0;
            continue;
        }
        for (int d = 0; d < D; d++) xd[d] = x_clean[(size_t)p * D + d];
        fo_pre(tc, l, xd, pc);
        fo_act(tc, l, pc, ac);
        if (kind == FO_DIRECT || kind == FO_LINEAR) { /* mult x (W_enc . dx), no bias */
            for (int i = 0; i < F; i++) {
                double s = 0.0;
                for (int d = 0; d < D; d++) s += (double)tc->layers[l].W_enc[(size_t)i * D + d] * dx[(size_t)p * D + d];
                double mult = ac[i] != 0.0 ? ac[i] / pc[i] : 0.0;
                wd[i] = mult * s;
                wf[i] = ac[i] + wd[i];
            }
            continue;
        }
        for (int d = 0; d < D; d++) xd[d] = x_full[(size_t)p * D + d];
        fo_pre(tc, l, xd, pr);
        if (freeze_mult) {
            for (int i = 0; i < F; i++) ar[i] = ac[i] != 0.0 ? ac[i] / pc[i] * pr[i] : 0.0;
        } else {
            fo_act(tc, l, pr, ar);
            /* near a discontinuity of the activation function (for the run's and the clean rows) */
            for (int i = 0; i < F; i++) {
                if (tc->activation == AG_ACTIVATION_JUMPRELU)
                    amb[i] = fabs(pr[i] - tc->layers[l].threshold[i]) < 1e-4 || fabs(pc[i] - tc->layers[l].threshold[i]) < 1e-4;
            }
            if (tc->activation == AG_ACTIVATION_TOPK) {
                for (int pass = 0; pass < 2; pass++) {
                    const double *row = pass ? pc : pr;
                    memcpy(sorted, row, sizeof(double) * (size_t)F);
                    for (int i = 1; i < F; i++) /* insertion sort, descending */
                        for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
                            double t = sorted[j];
                            sorted[j] = sorted[j - 1];
                            sorted[j - 1] = t;
                        }
                    double vk = sorted[tc->k - 1], vk1 = sorted[tc->k < F ? tc->k : F - 1];
                    if (vk - vk1 < 1e-4)
                        for (int i = 0; i < F; i++) amb[i] |= fabs(row[i] - vk) < 1e-4 || fabs(row[i] - vk1) < 1e-4;
                }
            }
        }
        for (int i = 0; i < F; i++) {
            wf[i] = ar[i];
            wd[i] = ar[i] - ac[i];
        }
    }
    free(xd);
    free(pc);
    free(ac);
    free(pr);
    free(ar);
    free(sorted);
}

static double worst_features_err = 0.0; /* over every case of test_result_features (printed) */

static void check_result_features(int which) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = set_of(which);
    const int T = 9, L = tc->L, F = tc->F;
    ag_trace *t = ag_test_trace(m, TOKS, T);
    ag_tensor_kind rk = tc->read_point == AG_READ_RESID_MID ? AG_TENSOR_MID : AG_TENSOR_MLP_IN;
    int on1, off1, on2, off2, p1 = 4, p2 = 6;
    pick_features_at(tc, t, 1, &p1, &on1, &off1);
    pick_features_at(tc, t, 2, &p2, &on2, &off2);
    int p3 = p1 == 5 ? 7 : 5;
    float *a1 = clean_acts(tc, t, 1), *a2 = clean_acts(tc, t, 2);
    float vec[64];
    for (int d = 0; d < 64; d++) vec[d] = (float)(0.3 * sin(0.7 * d + 1.0));
    /* set A: point clamps (doubled, switched on, ablated) and a residual vector, none before
     * position pmin; set B adds a clamp over every position from BOS on of a layer-3 feature */
    ag_intervention iv[5] = {feat_iv(AG_INTERVENE_SCALE, 1, p1, on1, 2.0f), feat_iv(AG_INTERVENE_SET, 1, p3, off1, 1.5f),
                             feat_iv(AG_INTERVENE_SET, 2, p2, on2, 0.0f), {0}, feat_iv(AG_INTERVENE_ADD, 3, 0, 5, 0.25f)};
    iv[3].kind = AG_INTERVENE_ADD;
    iv[3].site = AG_SITE_MID;
    iv[3].layer = 1;
    iv[3].position = p1 < p2 ? p1 : p2;
    iv[3].value = 1.0f;
    iv[3].vector = vec;
    iv[4].position_end = AG_POSITION_OPEN;
    int pmin = p1 < p2 ? p1 : p2;
    if (p3 < pmin) pmin = p3;
    const float clamp1 = 2.0f * a1[(size_t)p1 * F + on1];
    struct {
        int32_t mode;
        int fa, fn, fg, repl, kind;
    } cases[] = {
        {AG_INTERVENE_DIRECT, 0, 0, 0, 0, FO_DIRECT}, {AG_INTERVENE_LINEAR, 0, 0, 0, 0, FO_LINEAR},
        {AG_INTERVENE_FREE, 0, 0, 0, 0, FO_REAL},     {AG_INTERVENE_FREE, 1, 1, 1, 0, FO_REAL},
        {AG_INTERVENE_FREE, 0, 0, 0, 1, FO_REPLACE},  {AG_INTERVENE_FREE, 1, 0, 0, 1, FO_REPLACE},
        {AG_INTERVENE_FREE, 0, 0, 1, 1, FO_REPLACE},
    };
    size_t TF = (size_t)T * F;
    double *wf = malloc(sizeof(double) * TF), *wd = malloc(sizeof(double) * TF);
    char *amb = malloc(TF);
    int n_amb = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int set = 0; set < 2; set++) {
            ag_intervene_options o = tc_opts(cases[k].mode, tc, cases[k].fa, cases[k].fn, cases[k].fg, cases[k].repl);
            ag_intervention_result *r = ag_test_intervene(t, iv, set ? 5 : 4, &o);
            double moved = 0.0;
            for (int l = 0; l < L; l++) {
                const float *full, *dl;
                int64_t sh[2] = {0, 0};
                ck_assert_int_eq(ag_intervention_result_features(r, l, 0, &full, sh), AG_OK);
                ck_assert(sh[0] == T && sh[1] == F);
                ck_assert_int_eq(ag_intervention_result_features(r, l, 1, &dl, NULL), AG_OK);
                expected_features(tc, l, T, cases[k].kind, cases[k].fg && cases[k].repl, ag_test_trace_tensor(t, rk, l, NULL, NULL),
                                  ag_test_result_tensor(r, rk, l, 0), ag_test_result_tensor(r, rk, l, 1), wf, wd, amb);
                /* the clamps: exactly their values (and the clean activations' difference) */
                for (int q = 0; q < (set ? 5 : 4); q++) {
                    if (iv[q].site != AG_SITE_FEATURE || iv[q].layer != l) continue;
                    float *cl = clean_acts(tc, t, l);
                    int b = iv[q].position, e = iv[q].position_end == AG_POSITION_OPEN ? T : iv[q].position + 1;
                    for (int p = b < 1 ? 1 : b; p < e; p++) {
                        size_t at = (size_t)p * F + (size_t)iv[q].index;
                        float c0 = cl[at];
                        float v = iv[q].kind == AG_INTERVENE_SET ? iv[q].value : iv[q].kind == AG_INTERVENE_SCALE ? iv[q].value * c0 : c0 + iv[q].value;
                        if (q == 0) ck_assert_float_eq(v, clamp1);
                        ck_assert_msg(full[at] == v, "%s case %zu: clamped feature %d of layer %d at %d reports %.9g, not its clamp %.9g",
                                      SET_NAMES[which], k, iv[q].index, l, p, full[at], v);
                        ck_assert_msg(dl[at] == v - c0, "%s case %zu: clamped feature's change %.9g, not %.9g", SET_NAMES[which], k,
                                      dl[at], v - c0);
                        float prev, val;
                        ck_assert_int_eq(ag_intervention_result_unit(r, (size_t)q, p, &prev, &val), AG_OK);
                        ck_assert(val == v && prev == c0);
                        wf[at] = v;
                        wd[at] = (double)v - c0;
                        amb[at] = 0;
                    }
                    free(cl);
                }
                double fmax_w = 1.0, dmax_w = 1e-2, ef = 0.0, ed = 0.0;
                for (size_t i = 0; i < TF; i++) {
                    fmax_w = fmax(fmax_w, fabs(wf[i]));
                    dmax_w = fmax(dmax_w, fabs(wd[i]));
                }
                for (size_t i = 0; i < TF; i++) {
                    double e1 = fabs(full[i] - wf[i]), e2 = fabs(dl[i] - wd[i]);
                    if (amb[i] && (e1 > 1e-5 * fmax_w || e2 > 1e-5 * dmax_w)) {
                        n_amb++;
                        continue;
                    }
                    ef = fmax(ef, e1);
                    ed = fmax(ed, e2);
                }
                moved = fmax(moved, dmax_w);
                worst_features_err = fmax(worst_features_err, fmax(ef / fmax_w, ed / dmax_w));
                ck_assert_msg(ef <= 1e-5 * fmax_w, "%s case %zu set %d layer %d: features off by %.3g (max %.3g)", SET_NAMES[which], k, set, l,
                              ef, fmax_w);
                ck_assert_msg(ed <= 1e-5 * dmax_w, "%s case %zu set %d layer %d: feature changes off by %.3g (max %.3g)", SET_NAMES[which], k,
                              set, l, ed, dmax_w);
                /* causality: nothing changes before the earliest intervened position (set A), and
                 * the change is exactly 0 there in every mode */
                if (!set)
                    for (size_t i = 0; i < (size_t)pmin * F; i++)
                        ck_assert_msg(dl[i] == 0.0f, "%s case %zu layer %d: feature %zu changed before position %d", SET_NAMES[which], k, l,
                                      i % (size_t)F, pmin);
                /* full = trace + change (ag_transcoder_trace's activations; 0 at BOS, where they are not) */
                float *cl = clean_acts(tc, t, l);
                for (size_t i = 0; i < (size_t)F; i++) ck_assert(full[i] == 0.0f && dl[i] == 0.0f);
                for (size_t i = (size_t)F; i < TF; i++) ck_assert(fabs(full[i] - (cl[i] + dl[i])) <= 1e-6 * fmax_w);
                free(cl);
            }
            ck_assert_msg(moved > 0.05, "%s case %zu: the interventions should move some feature (max change %.3g)", SET_NAMES[which], k, moved);
            ag_intervention_result_free(r);
        }
    }
    ck_assert_msg(n_amb <= 4, "%s: %d features near a discontinuity disagreed (expected almost none)", SET_NAMES[which], n_amb);
    /* FREE with the replacement model and every freeze reports the LINEAR features */
    ag_intervene_options ol = tc_opts(AG_INTERVENE_LINEAR, tc, 0, 0, 0, 0), of = tc_opts(AG_INTERVENE_FREE, tc, 1, 1, 1, 1);
    ag_intervention_result *rl = ag_test_intervene(t, iv, 5, &ol), *rf = ag_test_intervene(t, iv, 5, &of);
    for (int l = 0; l < L; l++) {
        const float *fl, *ff;
        ck_assert_int_eq(ag_intervention_result_features(rl, l, 0, &fl, NULL), AG_OK);
        ck_assert_int_eq(ag_intervention_result_features(rf, l, 0, &ff, NULL), AG_OK);
        ck_assert_double_le(ag_max_diff_ff(fl, ff, TF), 1e-5 * (1.0 + ag_max_abs_f(fl, TF)));
    }
    ag_intervention_result_free(rl);
    ag_intervention_result_free(rf);
    free(wf);
    free(wd);
    free(amb);
    free(a1);
    free(a2);
    ag_trace_free(t);
    ag_transcoder_free(tc);
    ag_model_free(m);
    printf("result features %s: worst relative error so far %.3g (%d ambiguous)\n", SET_NAMES[which], worst_features_err, n_amb);
}

START_TEST(test_result_features) { check_result_features(_i); }
END_TEST

START_TEST(test_result_features_errors) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_trace *t = ag_test_trace(m, TOKS, 9);
    ag_intervention iv = ag_test_intervention(AG_INTERVENE_SET, AG_SITE_MLP, 2, 4, 17, 1.0f);
    ag_intervention_result *r = ag_test_intervene(t, &iv, 1, NULL); /* no transcoder */
    const float *d = (const float *)0x1;
    int64_t sh[2];
    ck_assert_int_eq(ag_intervention_result_features(r, 0, 0, &d, sh), AG_ERR_STATE);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(ag_last_error(), "ag_intervention_result_features") && strstr(ag_last_error(), "transcoder"), "%s",
                  ag_last_error());
    ag_intervention_result_free(r);
    ag_transcoder *tc = set_of(2);
    ag_intervene_options o = tc_opts(AG_INTERVENE_DIRECT, tc, 0, 0, 0, 0);
    r = ag_test_intervene(t, &iv, 1, &o); /* a neuron clamp with a set: features still reported */
    ck_assert_int_eq(ag_intervention_result_features(r, -1, 0, &d, sh), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "layer = -1"));
    ck_assert_int_eq(ag_intervention_result_features(r, 5, 1, &d, sh), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_intervention_result_features(r, 0, 0, NULL, sh), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_intervention_result_features(NULL, 0, 0, &d, sh), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_intervention_result_features(r, 4, 1, &d, NULL), AG_OK);
    /* a neuron clamp in block 2 changes nothing below block 3's features in DIRECT mode */
    for (int l = 0; l < 3; l++) {
        ck_assert_int_eq(ag_intervention_result_features(r, l, 1, &d, sh), AG_OK);
        ck_assert_double_eq(ag_max_abs_f(d, (size_t)sh[0] * (size_t)sh[1]), 0.0);
    }
    ck_assert_int_eq(ag_intervention_result_features(r, 3, 1, &d, sh), AG_OK);
    ck_assert_double_gt(ag_max_abs_f(d, (size_t)sh[0] * (size_t)sh[1]), 0.0);
    ag_intervention_result_free(r);
    ag_transcoder_free(tc);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- transcoder graphs: direct mode = adjacency columns, linear mode = path sums -------------- */


/* The change of a graph target: a feature's value W_enc . x at the read point (from the run's
 * read-point tensor change), or a token logit's demeaned logit. */
static double target_change(const ag_intervention_result *r, const ag_transcoder *tc, const ag_node_info *tn) {
    if (tn->kind == AG_NODE_UNIT) {
        const float *dx = ag_test_result_tensor(r, tc->read_point == AG_READ_RESID_MID ? AG_TENSOR_MID : AG_TENSOR_MLP_IN, tn->layer, 1);
        double v = 0;
        for (int d = 0; d < tc->D; d++)
            v += (double)tc->layers[tn->layer].W_enc[(size_t)tn->index * tc->D + d] * dx[(size_t)tn->position * tc->D + d];
        return v;
    }
    const float *dl;
    ck_assert_int_eq(ag_intervention_result_logits(r, -1, 1, &dl), AG_OK);
    double mean = 0;
    for (int v = 0; v < 512; v++) mean += dl[v];
    return dl[tn->token] - mean / 512;
}

static void check_columns(int which) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = set_of(which);
    ag_trace *t = ag_test_trace(m, TOKS, 9);
    ag_graph *g = ag_test_transcoder_graph(t, tc, 0, 0, NULL, 0);
    size_t N = ag_graph_n_nodes(g);
    size_t *tg = malloc(N * sizeof *tg), ntg = 0;
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni = ag_test_node_info(g, i);
        if (ni.kind == AG_NODE_UNIT || (ni.kind == AG_NODE_LOGIT && ni.token >= 0)) tg[ntg++] = i;
    }
    double *want = calloc(N, sizeof *want);
    int tested = 0;
    for (size_t k = 0; k < N && tested < 8; k++) {
        size_t s = (k * 7919u + 13u) % N;
        ag_node_info sn = ag_test_node_info(g, s);
        if (sn.kind != AG_NODE_UNIT) continue;
        for (size_t q = 0; q < N; q++) want[q] = 0.0;
        size_t ne;
        ag_edge *col = ag_test_node_edges(g, s, AG_EDGES_OUT, &ne);
        for (size_t q = 0; q < ne; q++) want[col[q].target] = col[q].weight;
        free(col);
        for (int ablate = 0; ablate < 2; ablate++) { /* doubling: +column; ablating: -column */
            ag_intervention iv = feat_iv(ablate ? AG_INTERVENE_SET : AG_INTERVENE_SCALE, sn.layer, sn.position, sn.index,
                                         ablate ? 0.0f : 2.0f);
            ag_intervene_options o = tc_opts(AG_INTERVENE_DIRECT, tc, 0, 0, 0, 0);
            ag_intervention_result *r = ag_test_intervene(t, &iv, 1, &o);
            double emax = 0, wmax = 0;
            for (size_t q = 0; q < ntg; q++) {
                if (tg[q] == s) continue;
                ag_node_info tn = ag_test_node_info(g, tg[q]);
                double w = (ablate ? -1.0 : 1.0) * want[tg[q]];
                emax = fmax(emax, fabs(target_change(r, tc, &tn) - w));
                wmax = fmax(wmax, fabs(w));
            }
            ag_intervention_result_free(r);
            if (wmax == 0.0) {
                ck_assert_msg(emax <= 1e-6, "%s: source %s has an empty column but moves targets by %.3g", SET_NAMES[which], sn.id, emax);
                continue;
            }
            ck_assert_msg(emax <= 1e-4 * wmax, "%s: feature %s (%s): direct-mode changes differ from its column by %.3g (max %.3g)",
                          SET_NAMES[which], sn.id, ablate ? "ablated" : "doubled", emax, wmax);
            if (ablate) tested++;
        }
    }
    ck_assert_int_ge(tested, 4);
    free(want);
    free(tg);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_transcoder_free(tc);
    ag_model_free(m);
}

START_TEST(test_direct_columns) { check_columns(_i); }
END_TEST

/* The graph target's change in a run: w . (final norm output change at the last position);
 * w computed here from the target's definition (token: demeaned classifier row; difference of
 * two rows; a direction). */
static double final_change(const ag_intervention_result *r, const ag_model *m, const ag_graph_target *tg) {
    const float *xf = ag_test_result_tensor(r, AG_TENSOR_FINAL_OUT, 0, 1) + (size_t)8 * 64;
    (void)m;
    const float *lg;
    ck_assert_int_eq(ag_intervention_result_logits(r, -1, 1, &lg), AG_OK);
    if (!tg || tg->kind == AG_GRAPH_TARGET_TOKEN) {
        double mean = 0;
        for (int v = 0; v < 512; v++) mean += lg[v];
        return lg[tg ? tg->token : 0] - mean / 512;
    }
    if (tg->kind == AG_GRAPH_TARGET_LOGIT_DIFF) return (double)lg[tg->token] - (double)lg[tg->token_b];
    double s = 0;
    for (int d = 0; d < 64; d++) s += (double)tg->direction[d] * xf[d];
    return s;
}

static void check_path_sums(int which, int32_t max_nodes, const ag_graph_target *tg) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = set_of(which);
    const int T = 9, F = tc->F, L = tc->L, D = 64;
    ag_trace *t = ag_test_trace(m, TOKS, T);
    ag_graph *g = ag_test_transcoder_graph(t, tc, max_nodes, 0, tg, tg ? 1 : 0);
    size_t N = ag_graph_n_nodes(g);
    size_t target = N - 1;
    ck_assert_int_eq(ag_test_node_info(g, target).kind, AG_NODE_LOGIT);
    ag_graph_target tok;
    if (!tg) {
        memset(&tok, 0, sizeof tok);
        tok.kind = AG_GRAPH_TARGET_TOKEN;
        tok.token = ag_test_node_info(g, target).token;
        tg = &tok;
    }
    double *H = ag_test_total_effects(g, target);
    /* hold every active feature that is not a node at its clean value (the graph folds it into
     * its error node) */
    unsigned char *isn = calloc((size_t)L * T * F, 1);
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni = ag_test_node_info(g, i);
        if (ni.kind == AG_NODE_UNIT) isn[((size_t)ni.layer * T + ni.position) * F + ni.index] = 1;
    }
    ag_intervention *iv = malloc(((size_t)L * T * F + 1) * sizeof *iv);
    size_t nh = 0;
    float *errv = malloc(sizeof(float) * (size_t)L * T * D);
    for (int l = 0; l < L; l++) {
        float *a = clean_acts(tc, t, l);
        ck_assert_int_eq(ag_transcoder_trace(tc, t, l, NULL, NULL, errv + (size_t)l * T * D), AG_OK);
        for (int p = 1; p < T; p++)
            for (int i = 0; i < F; i++) {
                float v = a[(size_t)p * F + i];
                if (v == 0.0f || isn[((size_t)l * T + p) * F + i]) continue;
                iv[1 + nh++] = feat_iv(AG_INTERVENE_SET, l, p, i, v);
            }
        free(a);
    }
    if (max_nodes > 0) ck_assert_int_gt((int)nh, 0);
    const float *emb = ag_test_trace_tensor(t, AG_TENSOR_RESID, 0, NULL, NULL);
    int tested = 0;
    double *want = malloc(N * sizeof *want), *got = malloc(N * sizeof *got);
    ag_intervene_options o = tc_opts(AG_INTERVENE_LINEAR, tc, 0, 0, 0, 0);
    for (size_t s = 0; s < N && tested < 30; s++) {
        ag_node_info sn = ag_test_node_info(g, s);
        if (sn.kind == AG_NODE_LOGIT || H[s] == 0.0) continue;
        if (sn.kind == AG_NODE_UNIT && s % 5 != 0) continue; /* a spread of features */
        memset(&iv[0], 0, sizeof *iv);
        if (sn.kind == AG_NODE_UNIT) {
            iv[0] = feat_iv(AG_INTERVENE_SET, sn.layer, sn.position, sn.index, 0.0f);
        } else if (sn.kind == AG_NODE_EMBEDDING) {
            iv[0].kind = AG_INTERVENE_ADD;
            iv[0].site = AG_SITE_EMBED;
            iv[0].position = sn.position;
            iv[0].value = -1.0f;
            iv[0].vector = emb + (size_t)sn.position * D;
        } else { /* an error node of a full graph: the reconstruction error (ag_transcoder_trace) */
            if (max_nodes > 0 || sn.position == 0) continue;
            iv[0].kind = AG_INTERVENE_ADD;
            iv[0].site = AG_SITE_RESID;
            iv[0].layer = sn.layer + 1;
            iv[0].position = sn.position;
            iv[0].value = -1.0f;
            iv[0].vector = errv + ((size_t)sn.layer * T + sn.position) * D;
        }
        ag_intervention_result *r = ag_test_intervene(t, iv, nh + 1, &o);
        want[tested] = -H[s];
        got[tested] = final_change(r, m, tg);
        ag_intervention_result_free(r);
        tested++;
    }
    ck_assert_int_ge(tested, 8);
    double e = ag_rel_err_dd(got, want, (size_t)tested);
    ck_assert_msg(e <= 1e-4, "%s (budget %d, target kind %d): linear-mode ablations vs graph path sums: rel err %.3g over %d sources",
                  SET_NAMES[which], max_nodes, tg->kind, e, tested);
    free(want);
    free(got);
    free(errv);
    free(iv);
    free(isn);
    free(H);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_transcoder_free(tc);
    ag_model_free(m);
}

START_TEST(test_linear_path_sums) {
    check_path_sums(_i, 0, NULL);
    check_path_sums(_i, 30, NULL);
}
END_TEST

START_TEST(test_linear_path_sums_diff_direction) {
    ag_graph_target tg;
    memset(&tg, 0, sizeof tg);
    tg.kind = AG_GRAPH_TARGET_LOGIT_DIFF;
    tg.token = 432;
    tg.token_b = 261;
    check_path_sums(2, 0, &tg);
    float dir[64];
    for (int d = 0; d < 64; d++) dir[d] = (float)sin(1.3 * d);
    memset(&tg, 0, sizeof tg);
    tg.kind = AG_GRAPH_TARGET_DIRECTION;
    tg.direction = dir;
    check_path_sums(0, 40, &tg);
}
END_TEST

/* ---- ag_graph_validate on transcoder graphs ---------------------------------------------------- */

static void check_validate(int which, int32_t max_nodes, const ag_graph_target *tg) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = set_of(which);
    ag_trace *t = ag_test_trace(m, TOKS, 9);
    ag_graph *g = ag_test_transcoder_graph(t, tc, max_nodes, 0, tg, tg ? 1 : 0);
    size_t N = ag_graph_n_nodes(g);
    double *H = ag_test_total_effects(g, N - 1);
    int64_t members[3];
    int nm = 0;
    for (size_t i = 0; i < N && nm < 3; i++)
        if (ag_test_node_info(g, i).kind == AG_NODE_UNIT && H[i] != 0.0 && i % 3 == 0) members[nm++] = (int64_t)i;
    ck_assert_int_eq(nm, 3);
    int32_t sizes[1] = {3};
    ag_validate_options o;
    ck_assert_int_eq(AG_VALIDATE_OPTIONS_INIT(o), AG_OK);
    ck_assert_ptr_null(o.transcoder);
    o.top_k = 40;
    o.include_embeddings = 0; /* the embeddings dominate; make room for features */
    o.transcoder = tc;
    o.target = (int64_t)N - 1;
    o.group_nodes = members;
    o.group_sizes = sizes;
    o.n_groups = 1;
    ag_validation *v = NULL;
    ag_status st = ag_graph_validate(&v, g, t, &o);
    ck_assert_msg(st == AG_OK, "ag_graph_validate: %s", ag_last_error());
    size_t nr = ag_validation_n_rows(v);
    ck_assert_uint_ge(nr, 16);
    int units = 0;
    for (size_t i = 0; i < nr; i++) {
        ag_validation_row r;
        r.struct_size = sizeof r;
        ck_assert_int_eq(ag_validation_get_row(v, i, &r), AG_OK);
        if (r.node >= 0) {
            units += ag_test_node_info(g, (size_t)r.node).kind == AG_NODE_UNIT;
            ck_assert_msg(fabs(r.predicted_total + H[r.node]) <= 1e-4 * fmax(1e-3, fabs(H[r.node])),
                          "%s row %zu: forward-sweep path sum %.9g vs backward sweep %.9g", SET_NAMES[which], i, r.predicted_total, -H[r.node]);
        }
        ck_assert_msg(fabs(r.measured_linear - r.predicted_total) <= 1e-4 * fmax(1e-3, fabs(r.predicted_total)),
                      "%s row %zu: linear %.9g vs path sum %.9g", SET_NAMES[which], i, r.measured_linear, r.predicted_total);
        ck_assert_msg(fabs(r.measured_direct - r.predicted_direct) <= 1e-4 * fmax(1e-3, fabs(r.predicted_direct)),
                      "%s row %zu: direct %.9g vs edge %.9g", SET_NAMES[which], i, r.measured_direct, r.predicted_direct);
        ck_assert(isfinite(r.measured_free) && isfinite(r.measured_free_frozen_attention));
        ag_node_info ni = r.node >= 0 ? ag_test_node_info(g, (size_t)r.node) : (ag_node_info){0};
        if (r.node >= 0 && ni.kind == AG_NODE_UNIT) { /* a feature row: FREE = ag_intervene's real model */
            ag_graph_target tok;
            memset(&tok, 0, sizeof tok);
            tok.kind = AG_GRAPH_TARGET_TOKEN;
            tok.token = ag_test_node_info(g, N - 1).token;
            ag_intervention iv = feat_iv(AG_INTERVENE_SET, ni.layer, ni.position, ni.index, 0.0f);
            for (int fa = 0; fa < 2; fa++) {
                ag_intervene_options io = tc_opts(AG_INTERVENE_FREE, tc, fa, 0, 0, 0);
                ag_intervention_result *ir = ag_test_intervene(t, &iv, 1, &io);
                double want = final_change(ir, m, tg ? tg : &tok);
                double got = fa ? r.measured_free_frozen_attention : r.measured_free;
                ck_assert_msg(fabs(got - want) <= 1e-4 * fmax(0.1, fabs(want)), "%s row %zu: free%s %.9g vs ag_intervene %.9g",
                              SET_NAMES[which], i, fa ? " (frozen attention)" : "", got, want);
                ag_intervention_result_free(ir);
            }
        }
    }
    ck_assert_msg(units >= 1, "%s: no feature among the %d most influential sources", SET_NAMES[which], o.top_k);
    /* FREE equals ag_intervene's FREE (real model) with the same ablation */
    {
        ag_validation_row r;
        r.struct_size = sizeof r;
        ck_assert_int_eq(ag_validation_get_row(v, nr - 1, &r), AG_OK); /* the group */
        ck_assert_int_eq(r.group, 0);
        ag_intervention iv[3];
        for (int j = 0; j < 3; j++) {
            ag_node_info ni = ag_test_node_info(g, (size_t)members[j]);
            iv[j] = feat_iv(AG_INTERVENE_SET, ni.layer, ni.position, ni.index, 0.0f);
        }
        ag_intervene_options io = tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 0);
        ag_intervention_result *ir = ag_test_intervene(t, iv, 3, &io);
        ag_graph_target tok;
        memset(&tok, 0, sizeof tok);
        tok.kind = AG_GRAPH_TARGET_TOKEN;
        tok.token = ag_test_node_info(g, N - 1).token;
        double want = final_change(ir, m, tg ? tg : &tok);
        ck_assert_msg(fabs(r.measured_free - want) <= 1e-4 * fmax(0.1, fabs(want)), "group: free %.9g vs ag_intervene %.9g",
                      r.measured_free, want);
        ag_intervention_result_free(ir);
    }
    ag_validation_stats s;
    s.struct_size = sizeof s;
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_DIRECT, 0, &s), AG_OK);
    ck_assert_msg(s.rel_error <= 1e-4, "%s: direct vs edges rel err %.3g", SET_NAMES[which], s.rel_error);
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_LINEAR, 1, &s), AG_OK);
    ck_assert_msg(s.rel_error <= 1e-4, "%s: linear vs path sums rel err %.3g", SET_NAMES[which], s.rel_error);
    char *json = NULL;
    ck_assert_int_eq(ag_validation_json(v, &json, NULL), AG_OK);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    const char *kind = tg && tg->kind == AG_GRAPH_TARGET_LOGIT_DIFF ? "logit_diff" : tg && tg->kind == AG_GRAPH_TARGET_DIRECTION ? "direction" : "token";
    ck_assert_str_eq(ag_json_get(root, "target", "kind", NULL)->valuestring, kind);
    if (tg && tg->kind == AG_GRAPH_TARGET_LOGIT_DIFF) ck_assert_int_eq(ag_json_get(root, "target", "token_b", NULL)->valueint, tg->token_b);
    cJSON_Delete(root);
    ag_free(json);
    ag_validation_free(v);
    free(H);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_transcoder_free(tc);
    ag_model_free(m);
}

START_TEST(test_validate_transcoder_graphs) {
    check_validate(_i, 0, NULL);
    if (_i == 2) check_validate(_i, 25, NULL); /* a budget: features that are not nodes are held */
}
END_TEST

START_TEST(test_validate_diff_direction_targets) {
    ag_graph_target tg;
    memset(&tg, 0, sizeof tg);
    tg.kind = AG_GRAPH_TARGET_LOGIT_DIFF;
    tg.token = 432;
    tg.token_b = 261;
    check_validate(0, 0, &tg);
    check_validate(2, 30, &tg);
    float dir[64];
    for (int d = 0; d < 64; d++) dir[d] = (float)cos(0.9 * d + 0.2);
    memset(&tg, 0, sizeof tg);
    tg.kind = AG_GRAPH_TARGET_DIRECTION;
    tg.direction = dir;
    check_validate(1, 0, &tg);
}
END_TEST

static void expect_bad_validate(const ag_graph *g, const ag_trace *t, const ag_validate_options *o, const char *needle) {
    ag_validation *v = (ag_validation *)0x1;
    ag_status st = ag_graph_validate(&v, g, t, o);
    ck_assert_msg(st == AG_ERR_INVALID_ARGUMENT, "expected AG_ERR_INVALID_ARGUMENT for '%s', got %d (%s)", needle, (int)st, ag_last_error());
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(ag_last_error(), needle) != NULL, "message '%s' does not name '%s'", ag_last_error(), needle);
}

START_TEST(test_validate_bad_transcoder) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = set_of(0);
    ag_trace *t = ag_test_trace(m, TOKS, 9);
    ag_graph *g = ag_test_transcoder_graph(t, tc, 0, 0, NULL, 0);
    ag_validate_options o;
    AG_VALIDATE_OPTIONS_INIT(o);
    o.top_k = 3;
    expect_bad_validate(g, t, &o, "opts->transcoder is NULL"); /* missing */
    ag_transcoder *other = ag_test_random_transcoder(AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 0, 48, 0, 99);
    o.transcoder = other; /* same shape, other weights */
    expect_bad_validate(g, t, &o, "not the set the graph was built with");
    ag_transcoder *redec = set_of(0); /* the same encoders, another decoder */
    for (int l = 0; l < redec->L; l++)
        for (int q = 0; q < redec->F * redec->D; q++) redec->layers[l].W_dec[q] *= 1.01f;
    o.transcoder = redec;
    expect_bad_validate(g, t, &o, "the decoder of feature node");
    ag_transcoder_free(redec);
    ag_transcoder *wide = ag_test_random_transcoder(AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 0, 40, 0, 3);
    o.transcoder = wide; /* other feature count */
    expect_bad_validate(g, t, &o, "opts->transcoder");
    ag_transcoder *clt = set_of(2);
    o.transcoder = clt; /* a cross-layer set for a per-layer graph */
    expect_bad_validate(g, t, &o, "cross-layer");
    ag_transcoder *small = NULL; /* another model's shape */
    ck_assert_int_eq(agi_tc_alloc(&small, AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 4, 64, 48, 0, 0, 0, "t"), AG_OK);
    o.transcoder = small;
    expect_bad_validate(g, t, &o, "does not fit the model");
    o.transcoder = tc;
    o.target = 0; /* a feature node, not a logit */
    expect_bad_validate(g, t, &o, "opts->target");
    ag_transcoder_free(small);
    ag_transcoder_free(clt);
    ag_transcoder_free(wide);
    ag_transcoder_free(other);
    /* a neuron graph ignores opts->transcoder; a transcoder graph with the right set works */
    ag_graph_options go;
    AG_GRAPH_OPTIONS_INIT(go);
    go.max_feature_nodes = 200;
    ag_graph *gn = NULL;
    ck_assert_int_eq(ag_graph_build(&gn, t, &go), AG_OK);
    AG_VALIDATE_OPTIONS_INIT(o);
    o.top_k = 3;
    o.transcoder = tc;
    ag_validation *v = NULL;
    ck_assert_int_eq(ag_graph_validate(&v, gn, t, &o), AG_OK);
    ag_validation_free(v);
    ck_assert_int_eq(ag_graph_validate(&v, g, t, &o), AG_OK);
    ag_validation_free(v);
    ag_graph_free(gn);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_transcoder_free(tc);
    ag_model_free(m);
}
END_TEST

/* ---- bad inputs ---------------------------------------------------------------------------------- */

static void expect_bad(const ag_trace *t, const ag_intervention *iv, size_t n, const ag_intervene_options *o, const char *needle) {
    ag_intervention_result *r = (ag_intervention_result *)0x1;
    ag_status st = ag_intervene(&r, t, iv, n, o);
    ck_assert_msg(st == AG_ERR_INVALID_ARGUMENT, "expected AG_ERR_INVALID_ARGUMENT for '%s', got %d (%s)", needle, (int)st, ag_last_error());
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(ag_last_error(), needle) != NULL, "message '%s' does not name '%s'", ag_last_error(), needle);
}

START_TEST(test_bad_feature_interventions) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = set_of(2); /* CLT, 40 features */
    ag_trace *t = ag_test_trace(m, TOKS, 9);
    ag_intervention good = feat_iv(AG_INTERVENE_SET, 1, 2, 3, 0.0f), b;
    ag_intervene_options o = tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 0), none = tc_opts(AG_INTERVENE_FREE, NULL, 0, 0, 0, 0);
    ag_intervention_result *r = ag_test_intervene(t, &good, 1, &o);
    ag_intervention_result_free(r);
    expect_bad(t, &good, 1, &none, "needs a transcoder set (opts->transcoder is NULL)");
    expect_bad(t, &good, 1, NULL, "opts->transcoder");
    b = good;
    b.index = 40;
    expect_bad(t, &b, 1, &o, "items[0].index = 40 is outside [0, 40) (the transcoder's n_features)");
    b.index = -1;
    expect_bad(t, &b, 1, &o, "items[0].index");
    b = good;
    b.layer = 5;
    expect_bad(t, &b, 1, &o, "items[0].layer = 5 is outside [0, 4] (the transcoder's layers)");
    b.layer = -1;
    expect_bad(t, &b, 1, &o, "items[0].layer");
    b = good;
    b.position = 0; /* BOS alone */
    expect_bad(t, &b, 1, &o, "BOS");
    b.position_end = 3; /* a range from BOS: fine (BOS skipped) */
    r = ag_test_intervene(t, &b, 1, &o);
    float prev, val;
    ck_assert_int_eq(ag_intervention_result_unit(r, 0, 1, &prev, &val), AG_OK);
    ck_assert(isfinite(prev) && val == 0.0f);
    ag_intervention_result_free(r);
    b = good;
    b.value = NAN;
    expect_bad(t, &b, 1, &o, "items[0].value");
    float vec[64] = {0};
    b = good;
    b.vector = vec;
    expect_bad(t, &b, 1, &o, "items[0].vector");
    ag_intervention dup[2] = {good, good};
    dup[1].kind = AG_INTERVENE_SCALE;
    expect_bad(t, dup, 2, &o, "items[1] clamps feature");
    dup[1].site = AG_SITE_MLP; /* a neuron with the same numbers is another unit */
    r = ag_test_intervene(t, dup, 2, &o);
    ag_intervention_result_free(r);
    /* neurons where the transcoder replaces the MLPs */
    ag_intervene_options ol = tc_opts(AG_INTERVENE_LINEAR, tc, 0, 0, 0, 0), orp = tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 1);
    expect_bad(t, dup, 2, &ol, "items[1].site = AG_SITE_MLP");
    expect_bad(t, dup, 2, &orp, "items[1].site = AG_SITE_MLP");
    ag_intervene_options od = tc_opts(AG_INTERVENE_DIRECT, tc, 0, 0, 0, 0);
    r = ag_test_intervene(t, dup, 2, &od);
    ag_intervention_result_free(r);
    /* options */
    ag_intervene_options bad = tc_opts(AG_INTERVENE_FREE, tc, 0, 0, 0, 2);
    expect_bad(t, &good, 1, &bad, "opts->free_replacement = 2");
    bad = tc_opts(AG_INTERVENE_FREE, NULL, 0, 0, 0, 1);
    expect_bad(t, NULL, 0, &bad, "opts->free_replacement = 1 needs opts->transcoder");
    /* a set built for another model (other layer count; other width) */
    ag_transcoder *l4 = NULL, *d32 = NULL;
    ck_assert_int_eq(agi_tc_alloc(&l4, AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 4, 64, 8, 0, 0, 0, "t"), AG_OK);
    ck_assert_int_eq(agi_tc_alloc(&d32, AG_TRANSCODER_PER_LAYER, AG_ACTIVATION_RELU, AG_READ_MLP_IN, 5, 32, 8, 0, 0, 0, "t"), AG_OK);
    bad = tc_opts(AG_INTERVENE_DIRECT, l4, 0, 0, 0, 0);
    expect_bad(t, &good, 1, &bad, "opts->transcoder (4 layers of width 64) does not fit the model (5 layers of width 64)");
    bad = tc_opts(AG_INTERVENE_LINEAR, d32, 0, 0, 0, 0);
    expect_bad(t, NULL, 0, &bad, "opts->transcoder");
    /* an older, shorter options struct: no transcoder, so features are refused */
    ag_intervene_options old = tc_opts(AG_INTERVENE_FREE, NULL, 0, 0, 0, 0);
    old.struct_size = offsetof(ag_intervene_options, transcoder);
    expect_bad(t, &good, 1, &old, "opts->transcoder is NULL");
    /* steered generation: the same checks against seq_len, the set in ag_generate_options */
    ag_generate_options go;
    AG_GENERATE_OPTIONS_INIT(go);
    ck_assert_ptr_null(go.transcoder);
    go.max_new_tokens = 4;
    int32_t out[4];
    size_t n_out = 0;
    ck_assert_int_eq(ag_generate_steered(m, TOKS, 5, &good, 1, &go, out, 4, &n_out), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "opts->transcoder is NULL"));
    go.transcoder = l4;
    ck_assert_int_eq(ag_generate_steered(m, TOKS, 5, &good, 1, &go, out, 4, &n_out), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "does not fit the model"));
    go.transcoder = tc;
    b = good;
    b.index = 99;
    ck_assert_int_eq(ag_generate_steered(m, TOKS, 5, &b, 1, &go, out, 4, &n_out), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "items[0].index"));
    b = good;
    b.position = 0;
    ck_assert_int_eq(ag_generate_steered(m, TOKS, 5, &b, 1, &go, out, 4, &n_out), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "BOS"));
    ck_assert_int_eq(ag_generate(m, TOKS, 5, &go, out, 4, &n_out), AG_OK); /* ignored by ag_generate */
    ag_transcoder_free(l4);
    ag_transcoder_free(d32);
    ag_trace_free(t);
    ag_transcoder_free(tc);
    ag_model_free(m);
}
END_TEST

/* ---- steered generation with features ------------------------------------------------------------ */

START_TEST(test_steered_generation_features) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    nl_model *nm = nl_load_bin(ag_test_fixture(STORIES_BIN));
    const int NP = 5, NG = 10;
    for (int which = 0; which < 4; which += 2) { /* a PLT and a CLT */
        ag_transcoder *tc = set_of(which);
        ag_generate_options go;
        AG_GENERATE_OPTIONS_INIT(go);
        go.max_new_tokens = NG;
        go.transcoder = tc;
        int32_t plain[16], steer[16];
        size_t np = 0, ns = 0;
        ck_assert_int_eq(ag_generate(m, TOKS, NP, &go, plain, 16, &np), AG_OK);
        ck_assert_int_eq(ag_generate_steered(m, TOKS, NP, NULL, 0, &go, steer, 16, &ns), AG_OK);
        ck_assert_uint_eq(np, ns);
        ck_assert_mem_eq(plain, steer, np * sizeof *plain);
        /* a strong feature set on every position from 1 on, generated tokens included */
        ag_intervention iv = feat_iv(AG_INTERVENE_SET, 1, 1, 0, 40.0f);
        iv.position_end = AG_POSITION_OPEN;
        ck_assert_int_eq(ag_generate_steered(m, TOKS, NP, &iv, 1, &go, steer, 16, &ns), AG_OK);
        ck_assert_uint_ge(ns, 1);
        ck_assert_msg(ns != np || memcmp(plain, steer, ns * sizeof *steer) != 0, "%s: steering did not change the text", SET_NAMES[which]);
        /* teacher-forced oracle: the real model with the clamp at every position of prompt +
         * generated text predicts each generated token (greedy) */
        int T = NP + (int)ns;
        int32_t all[16];
        memcpy(all, TOKS, NP * sizeof *all);
        memcpy(all + NP, steer, ns * sizeof *steer);
        fo_clean fc = fo_clean_make(nm, tc, all, T);
        fo_clamp cl[16];
        for (int p = 1; p < T; p++) cl[p - 1] = (fo_clamp){1, p, 0, 40.0};
        nl_cache *on = fo_run(nm, tc, &fc, all, T, FO_REAL, 0u, 0, cl, T - 1, NULL, 0);
        int compared = 0;
        for (int p = NP - 1; p < T - 1; p++) {
            const double *lg = on->logits + (size_t)p * 512;
            int best = 0, second = -1;
            for (int v = 1; v < 512; v++)
                if (lg[v] > lg[best]) second = best, best = v;
                else if (second < 0 || lg[v] > lg[second]) second = v;
            if (lg[best] - lg[second] < 1e-3) continue; /* a near tie: float32 may pick either */
            ck_assert_msg(best == all[p + 1], "%s: generated token %d at position %d, the oracle predicts %d", SET_NAMES[which], all[p + 1],
                          p + 1, best);
            compared++;
        }
        ck_assert_int_ge(compared, (T - NP) / 2);
        nl_cache_free(on);
        fo_clean_free(&fc);
        ag_transcoder_free(tc);
    }
    nl_free(nm);
    ag_model_free(m);
}
END_TEST

/* ---- a set loaded (or trained) for another model of the same shape ------------------------------- */

/* stories260K.bin's bytes with weights scaled by (1 + eps): every weight (tensor = -1) or only
 * the down projection w2 of block 4 (tensor = 4; llama2.c layout: embedding, rms_att, wq, wk,
 * wv, wo, rms_ffn, w1, w2, w3, ...), as a model in memory named `name`. */
static ag_model *perturbed_model(int tensor, float eps, const char *name) {
    FILE *f = fopen(ag_test_fixture(STORIES_BIN), "rb");
    ck_assert_ptr_nonnull(f);
    static unsigned char buf[1 << 21];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert(n > 28 && n < sizeof buf);
    int32_t h[7];
    memcpy(h, buf, sizeof h);
    size_t D = (size_t)h[0], Hd = (size_t)h[1], L = (size_t)h[2], H = (size_t)h[3], KV = (size_t)h[4] * (D / H), V = (size_t)abs(h[5]);
    size_t begin = 0, count = (n - 28) / 4;
    if (tensor == 4) {
        begin = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + L * Hd * D + 4 * D * Hd;
        count = D * Hd;
    }
    float *w = malloc(count * sizeof *w);
    memcpy(w, buf + 28 + 4 * begin, count * sizeof *w);
    for (size_t i = 0; i < count; i++) w[i] *= 1.0f + eps;
    memcpy(buf + 28 + 4 * begin, w, count * sizeof *w);
    free(w);
    ag_model *m = NULL;
    ck_assert_int_eq(ag_model_load_memory(&m, buf, n, 1, name, NULL), AG_OK);
    return m;
}

/* ag_intervene of a feature clamp with `tc` on `t` in every mode: all succeed, or (other != NULL)
 * all fail with AG_ERR_INVALID_ARGUMENT naming opts->transcoder and both models. */
static void expect_intervene(const ag_trace *t, const ag_transcoder *tc, const char *other, const char *loaded_for) {
    ag_intervention iv = feat_iv(AG_INTERVENE_SET, 1, 4, 3, 0.0f);
    const int32_t modes[3] = {AG_INTERVENE_DIRECT, AG_INTERVENE_LINEAR, AG_INTERVENE_FREE};
    for (int k = 0; k < 3; k++) {
        for (size_t n = 0; n < 2; n++) { /* without items too: the set still shapes LINEAR */
            ag_intervene_options o = tc_opts(modes[k], tc, 0, 0, 0, 0);
            ag_intervention_result *r = (ag_intervention_result *)0x1;
            ag_status st = ag_intervene(&r, t, &iv, n, &o);
            if (!other) {
                ck_assert_msg(st == AG_OK, "mode %d: %s", modes[k], ag_last_error());
                ag_intervention_result_free(r);
                continue;
            }
            ck_assert_int_eq(st, AG_ERR_INVALID_ARGUMENT);
            ck_assert_ptr_null(r);
            const char *msg = ag_last_error();
            ck_assert_msg(strstr(msg, "opts->transcoder was loaded for the model") && strstr(msg, loaded_for) && strstr(msg, other),
                          "message: %s", msg);
        }
    }
}

START_TEST(test_set_loaded_for_another_model) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL), *m2 = ag_test_load_model(STORIES_BIN, NULL);
    ag_model *mg = ag_test_load_model("models/stories260K.gguf", NULL);
    ag_model *mx = perturbed_model(-1, 1e-3f, "retrained-everywhere"), *my = perturbed_model(4, 1e-2f, "retrained-w2-of-block-4");
    ag_transcoder *rnd = set_of(0);
    char dir[] = "/tmp/ag_h13_for_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(ag_transcoder_save(rnd, dir), AG_OK);
    ag_transcoder *for_m = NULL, *for_none = NULL, *for_x = NULL;
    ck_assert_int_eq(ag_transcoder_load(&for_m, dir, m, NULL), AG_OK);
    ck_assert_int_eq(ag_transcoder_load(&for_none, dir, NULL, NULL), AG_OK);
    ck_assert_int_eq(ag_transcoder_load(&for_x, dir, mx, NULL), AG_OK);
    ag_trace *tm = ag_test_trace(m, TOKS, 9), *tm2 = ag_test_trace(m2, TOKS, 9), *tg = ag_test_trace(mg, TOKS, 9);
    ag_trace *tx = ag_test_trace(mx, TOKS, 9), *ty = ag_test_trace(my, TOKS, 9);
    /* loaded for stories260K: the same weights loaded again, or from the GGUF conversion, are the
     * same model; a retrained model of the same shape is not, even if only one tensor differs */
    expect_intervene(tm, for_m, NULL, NULL);
    expect_intervene(tm2, for_m, NULL, NULL);
    expect_intervene(tg, for_m, NULL, NULL);
    expect_intervene(tx, for_m, "retrained-everywhere", STORIES_BIN);
    expect_intervene(ty, for_m, "retrained-w2-of-block-4", STORIES_BIN);
    /* loaded for the other model: the other way round */
    expect_intervene(tx, for_x, NULL, NULL);
    expect_intervene(tm, for_x, STORIES_BIN, "retrained-everywhere");
    /* loaded without a model, or built in memory: nothing recorded, shapes only */
    expect_intervene(tx, for_none, NULL, NULL);
    expect_intervene(tx, rnd, NULL, NULL);
    /* steered generation */
    ag_intervention iv = feat_iv(AG_INTERVENE_SET, 1, 4, 3, 0.0f);
    ag_generate_options go;
    AG_GENERATE_OPTIONS_INIT(go);
    go.max_new_tokens = 2;
    go.transcoder = for_m;
    int32_t gen[2];
    size_t ng = 0;
    ck_assert_int_eq(ag_generate_steered(m2, TOKS, 5, &iv, 1, &go, gen, 2, &ng), AG_OK);
    ck_assert_int_eq(ag_generate_steered(my, TOKS, 5, &iv, 1, &go, gen, 2, &ng), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "was loaded for the model"));
    /* validation of a transcoder graph: the graph was built (on the retrained model's trace) with
     * the same weights loaded without a model (ag_graph_build refuses for_m itself there: see
     * check_transcoder_fingerprint); the set given to validate was loaded for stories260K */
    ag_graph *g = ag_test_transcoder_graph(tx, for_none, 40, 0, NULL, 0);
    ag_validate_options vo;
    AG_VALIDATE_OPTIONS_INIT(vo);
    vo.top_k = 2;
    vo.modes = AG_VALIDATE_DIRECT;
    vo.transcoder = for_m;
    ag_validation *v = (ag_validation *)0x1;
    ck_assert_int_eq(ag_graph_validate(&v, g, tx, &vo), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "was loaded for the model"));
    vo.transcoder = for_x;
    ck_assert_msg(ag_graph_validate(&v, g, tx, &vo) == AG_OK, "%s", ag_last_error());
    ag_validation_free(v);
    ag_graph_free(g);
    /* a set trained for stories260K records it too */
    if (!ag_test_under_valgrind()) {
        ag_transcoder_train_options to;
        AG_TRANSCODER_TRAIN_OPTIONS_INIT(to);
        to.n_features = 16;
        to.corpus_tokens = 300;
        to.context = 32;
        to.buffer_tokens = 128;
        to.batch_size = 32;
        to.steps = 2;
        to.warmup_steps = 1;
        ag_transcoder *trained = NULL;
        ck_assert_msg(ag_transcoder_train(&trained, m, &to) == AG_OK, "%s", ag_last_error());
        expect_intervene(tm2, trained, NULL, NULL);
        expect_intervene(ty, trained, "retrained-w2-of-block-4", STORIES_BIN);
        ag_transcoder_free(trained);
    }
    ag_trace_free(tm);
    ag_trace_free(tm2);
    ag_trace_free(tg);
    ag_trace_free(tx);
    ag_trace_free(ty);
    ag_transcoder_free(for_m);
    ag_transcoder_free(for_none);
    ag_transcoder_free(for_x);
    ag_transcoder_free(rnd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    ag_model_free(m);
    ag_model_free(m2);
    ag_model_free(mg);
    ag_model_free(mx);
    ag_model_free(my);
}
END_TEST

/* ---- the command line ------------------------------------------------------------------------------ */

#ifdef AG_CLI_PATH

static void rm_set(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_cli) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_transcoder *tc = set_of(2);
    char dir[] = "/tmp/ag_h7_clt_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(ag_transcoder_save(tc, dir), AG_OK);
    ag_transcoder *loaded = NULL;
    ck_assert_int_eq(ag_transcoder_load(&loaded, dir, m, NULL), AG_OK);
    ag_trace *t = ag_test_trace(m, TOKS, 9);
    int on, off;
    pick_features(loaded, t, 1, 4, &on, &off);
    char args[2048];
    int code;
    /* intervene: an ablated feature and a set one, linear mode; the logits equal the library's */
    snprintf(args, sizeof args, "intervene -m '%s' -t 1,403,407,261,378,300,413,372,260 --transcoders '%s' --ablate f1:4:%d --set f1:-1:%d=2 "
             "--mode linear", ag_test_fixture(STORIES_BIN), dir, on, off);
    char *out = ag_test_cli_output(args, &code);
    ck_assert_msg(code == 0, "attrgraph intervene --transcoders exited %d", code);
    cJSON *root = cJSON_Parse(out);
    ck_assert_msg(root != NULL, "not JSON: %.200s", out);
    const cJSON *ivs = cJSON_GetObjectItem(root, "interventions");
    ck_assert_int_eq(cJSON_GetArraySize(ivs), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ivs, 0), "unit")->valuestring, "feature");
    ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ivs, 0), "value")->valuedouble, 2.0); /* --set comes first */
    ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ivs, 1), "value")->valuedouble, 0.0);
    ag_intervention iv[2] = {feat_iv(AG_INTERVENE_SET, 1, 4, on, 0.0f), feat_iv(AG_INTERVENE_SET, 1, 8, off, 2.0f)};
    ag_intervene_options o = tc_opts(AG_INTERVENE_LINEAR, loaded, 0, 0, 0, 0);
    ag_intervention_result *r = ag_test_intervene(t, iv, 2, &o);
    const float *want;
    ck_assert_int_eq(ag_intervention_result_logits(r, -1, 0, &want), AG_OK);
    size_t n = 0;
    double *got = ag_json_doubles(cJSON_GetObjectItem(root, "logits_after"), &n);
    ck_assert_uint_eq(n, 512);
    for (size_t i = 0; i < n; i++) ck_assert_msg(fabs(got[i] - want[i]) <= 1e-6 * (1 + fabs(want[i])), "logit %zu: %g vs %g", i, got[i], want[i]);
    free(got);
    ag_intervention_result_free(r);
    /* the sites spelled out as ag_site_name writes them (feature.L, mlp.L): the same run */
    snprintf(args, sizeof args, "intervene -m '%s' -t 1,403,407,261,378,300,413,372,260 --transcoders '%s' --ablate feature.1:4:%d "
             "--set feature.1:-1:%d=2 --mode linear", ag_test_fixture(STORIES_BIN), dir, on, off);
    char *out2 = ag_test_cli_output(args, &code);
    ck_assert_int_eq(code, 0);
    ck_assert_str_eq(out2, out);
    free(out2);
    const char *neuron_pairs[2][2] = {{"--set 2:4:17=3 --scale 1:3:40=0", "--set mlp.2:4:17=3 --scale mlp.1:3:40=0"},
                                      {"--shift 0:1..2:5=0.5", "--shift mlp.0:1..2:5=0.5"}};
    for (int k = 0; k < 2; k++) {
        char *o2[2];
        for (int q = 0; q < 2; q++) {
            snprintf(args, sizeof args, "intervene -m '%s' -t 1,403,407,261,378 %s", ag_test_fixture(STORIES_BIN), neuron_pairs[k][q]);
            o2[q] = ag_test_cli_output(args, &code);
            ck_assert_msg(code == 0, "'%s' exited %d", neuron_pairs[k][q], code);
        }
        ck_assert_str_eq(o2[0], o2[1]);
        free(o2[0]);
        free(o2[1]);
    }
    cJSON_Delete(root);
    free(out);
    /* free mode with the replacement model, and steering */
    snprintf(args, sizeof args, "intervene -m '%s' -t 1,403,407,261,378 --transcoders '%s' --scale f0:1..:%d=0 --free-replacement "
             "--freeze-attention --generate 4", ag_test_fixture(STORIES_BIN), dir, on);
    out = ag_test_cli_output(args, &code);
    ck_assert_int_eq(code, 0);
    root = cJSON_Parse(out);
    ck_assert_ptr_nonnull(root);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(root, "free_replacement")));
    ck_assert_ptr_nonnull(ag_json_get(root, "generation", "tokens_steered", NULL));
    cJSON_Delete(root);
    free(out);
    /* errors */
    const char *bad[10] = {"--ablate f1:2:3", /* no --transcoders */
                           "--transcoders DIR --ablate f1:2:999", "--transcoders DIR --ablate 1:2:3 --mode linear",
                           "--free-replacement --ablate 1:2:3", "--transcoders DIR --ablate f1:0:3",
                           "--ablate feature.1:2:3", /* spelled out, still no --transcoders */
                           "--transcoders DIR --ablate attn.1:2:3", "--transcoders DIR --ablate resid.1:2:3",
                           "--transcoders DIR --ablate feature.x:2:3", "--transcoders DIR --ablate feature.1.2:3"};
    for (int i = 0; i < 10; i++) {
        char extra[512];
        const char *at = strstr(bad[i], "DIR");
        if (at) snprintf(extra, sizeof extra, "--transcoders '%s'%s", dir, at + 3);
        else snprintf(extra, sizeof extra, "%s", bad[i]);
        snprintf(args, sizeof args, "intervene -m '%s' -t 1,403,407,261,378 %s", ag_test_fixture(STORIES_BIN), extra);
        out = ag_test_cli_output(args, &code);
        ck_assert_msg(code != 0, "'%s' should fail", extra);
        free(out);
    }
    /* validate on the transcoder graph, a logit difference target */
    snprintf(args, sizeof args, "validate -m '%s' -t 1,403,407,261,378,300,413,372,260 --transcoders '%s' --target-diff 432,261 -k 8 -q",
             ag_test_fixture(STORIES_BIN), dir);
    out = ag_test_cli_output(args, &code);
    ck_assert_msg(code == 0, "attrgraph validate --transcoders exited %d", code);
    root = cJSON_Parse(out);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(ag_json_get(root, "target", "kind", NULL)->valuestring, "logit_diff");
    ck_assert_int_eq(ag_json_get(root, "target", "token_b", NULL)->valueint, 261);
    const cJSON *d = ag_json_get(root, "summary", "direct", "vs_direct", "rel_error", NULL);
    const cJSON *l = ag_json_get(root, "summary", "linear", "vs_total", "rel_error", NULL);
    ck_assert(d && l && d->valuedouble <= 1e-4 && l->valuedouble <= 1e-4);
    cJSON_Delete(root);
    free(out);
    snprintf(args, sizeof args, "validate -m '%s' -t 1,403,407 --target 5 --target-diff 432,261", ag_test_fixture(STORIES_BIN));
    out = ag_test_cli_output(args, &code);
    ck_assert(code != 0);
    free(out);
    ag_trace_free(t);
    ag_transcoder_free(loaded);
    ag_transcoder_free(tc);
    rm_set(dir);
    ag_model_free(m);
}
END_TEST
#endif

/* ---- suite ---------------------------------------------------------------------------------------- */

static Suite *suite(void) {
    Suite *s = suite_create("intervene_features");
    TCase *tc = tcase_create("modes");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_modes_vs_oracle, 0, 4);
    tcase_add_test(tc, test_noop_and_free_frozen_equals_linear);
    tcase_add_test(tc, test_bad_feature_interventions);
    tcase_add_test(tc, test_steered_generation_features);
    tcase_add_loop_test(tc, test_result_features, 0, 4);
    tcase_add_test(tc, test_result_features_errors);
    suite_add_tcase(s, tc);
    TCase *gr = tcase_create("graphs");
    tcase_set_timeout(gr, 600);
    tcase_add_loop_test(gr, test_direct_columns, 0, 4);
    tcase_add_loop_test(gr, test_linear_path_sums, 0, 4);
    tcase_add_test(gr, test_linear_path_sums_diff_direction);
    tcase_add_loop_test(gr, test_validate_transcoder_graphs, 0, 4);
    tcase_add_test(gr, test_validate_diff_direction_targets);
    tcase_add_test(gr, test_validate_bad_transcoder);
    tcase_add_test(gr, test_set_loaded_for_another_model);
#ifdef AG_CLI_PATH
    tcase_add_test(gr, test_cli);
#endif
    suite_add_tcase(s, gr);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
