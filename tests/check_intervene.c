/*
 * check_intervene — interventions (DESIGN §1.5, issue #7): the three modes, the result
 * getters, steered generation and argument checking.
 *
 * Oracles: tests/support/naive_llama (an independent double-precision forward with its own
 * freezing and hooks) for every mode; the exact identities of the local replacement model
 * (direct-mode columns compose into linear-mode path sums; the frozen model is linear); and
 * plain generation / teacher-forced reruns for steered generation.
 */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "attrgraph.h"
#include "cli_output.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "suite_run.h"

#define STORIES_BIN "models/stories260K.bin"
#define XS_BIN "models/llama2xs_model.bin"

static const int32_t ONCE[5] = {1, 403, 407, 261, 378};

/* ---- helpers ------------------------------------------------------------------------------ */

/* A set/scale item on an MLP unit. */
static ag_intervention unit_iv(int32_t kind, int32_t layer, int32_t pos, int32_t index, float value) {
    return ag_test_intervention(kind, AG_SITE_MLP, layer, pos, index, value);
}

/* Adds coef * vec at a residual site. */
static ag_intervention add_iv(int32_t site, int32_t layer, int32_t pos, float coef, const float *vec) {
    ag_intervention iv = ag_test_intervention(AG_INTERVENE_ADD, site, layer, pos, 0, coef);
    iv.vector = vec;
    return iv;
}

/* A deterministic direction of unit-ish norm for residual adds. */
static void direction(float *v, int D, uint64_t seed) {
    uint64_t s = seed * 2862933555777941757ULL + 3037000493ULL;
    double ss = 0;
    for (int i = 0; i < D; i++) {
        s = s * 2862933555777941757ULL + 3037000493ULL;
        v[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        ss += (double)v[i] * v[i];
    }
    for (int i = 0; i < D; i++) v[i] = (float)(v[i] / sqrt(ss));
}

/* ---- the oracle: naive_llama with hooks that apply the same interventions -------------------- */

typedef struct oracle_edit {
    int kind; /* 0 clamp, 1 add resid, 2 add mid */
    int layer, pos, index;
    double value;      /* clamp: the full value */
    const float *vec;  /* add: D floats */
    double coef;
} oracle_edit;

typedef struct oracle_ctx {
    const nl_model *m;
    const nl_cache *clean;
    int direct; /* MLP outputs frozen: add clamp changes along W2 at the MLP_OUT hook */
    const oracle_edit *e;
    int n;
} oracle_ctx;

static void oracle_hook(void *user, nl_site site, int layer, int T, int width, double *data) {
    oracle_ctx *c = user;
    int D = c->m->c.dim, Hd = c->m->c.hidden_dim;
    (void)T;
    (void)width;
    for (int i = 0; i < c->n; i++) {
        const oracle_edit *e = &c->e[i];
        if (e->layer != layer) continue;
        if (site == NL_SITE_NEURONS && e->kind == 0) data[(size_t)e->pos * Hd + e->index] = e->value;
        if (site == NL_SITE_MLP_OUT && e->kind == 0 && c->direct) {
            double d = e->value - c->clean->neurons[((size_t)layer * c->clean->T + e->pos) * Hd + e->index];
            const double *w2 = c->m->w2 + (size_t)layer * D * Hd;
            for (int j = 0; j < D; j++) data[(size_t)e->pos * D + j] += d * w2[(size_t)j * Hd + e->index];
        }
        if ((site == NL_SITE_RESID && e->kind == 1) || (site == NL_SITE_MID && e->kind == 2))
            for (int j = 0; j < D; j++) data[(size_t)e->pos * D + j] += e->coef * e->vec[j];
    }
}

/* Oracle run: logits [T][V] and the cache; freeze NL_FREEZE_* against `clean`. */
static void oracle_run(const nl_model *m, const int32_t *toks, int T, const nl_cache *clean, unsigned freeze,
                       const oracle_edit *e, int n, nl_cache *out) {
    int *ti = malloc((size_t)T * sizeof *ti);
    for (int i = 0; i < T; i++) ti[i] = toks[i];
    oracle_ctx ctx = {m, clean, (freeze & NL_FREEZE_MLP_OUT) != 0, e, n};
    nl_forward_opts o;
    memset(&o, 0, sizeof o);
    o.hook = oracle_hook;
    o.user = &ctx;
    o.frozen = freeze ? clean : NULL;
    o.freeze = freeze;
    ck_assert_int_eq(nl_forward_ex(m, ti, T, &o, NULL, out), 0);
    free(ti);
}

/* Compare a result's deltas (logits at every position, units of every layer) with oracle deltas. */
static void compare_deltas(const ag_intervention_result *r, const nl_cache *oc, const nl_cache *on, int L, int T, int Hd,
                           int V, double tol, const char *what) {
    size_t nl = (size_t)T * V;
    double *want = malloc(nl * sizeof *want);
    for (size_t i = 0; i < nl; i++) want[i] = on->logits[i] - oc->logits[i];
    const float *got = ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 1);
    double e = ag_rel_err_fd(got, want, nl);
    ck_assert_msg(e <= tol, "%s: logit changes rel err %.3g > %.1g (max |change| %.3g)", what, e, tol, ag_max_abs_d(want, nl));
    free(want);
    size_t nu = (size_t)T * Hd;
    want = malloc((size_t)L * nu * sizeof *want);
    float *gotu = malloc((size_t)L * nu * sizeof *gotu);
    for (int l = 0; l < L; l++) {
        const float *g = ag_test_result_tensor(r, AG_TENSOR_NEURONS, l, 1);
        memcpy(gotu + (size_t)l * nu, g, nu * sizeof *gotu);
        for (size_t i = 0; i < nu; i++) want[(size_t)l * nu + i] = on->neurons[(size_t)l * nu + i] - oc->neurons[(size_t)l * nu + i];
    }
    e = ag_rel_err_fd(gotu, want, (size_t)L * nu);
    ck_assert_msg(e <= tol, "%s: unit changes rel err %.3g > %.1g", what, e, tol);
    free(want);
    free(gotu);
}

/* ---- no-op interventions reproduce the clean logits in every mode -------------------------- */

START_TEST(test_noop_every_mode) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    const float *clean = ag_test_trace_tensor(t, AG_TENSOR_LOGITS, 0, NULL, NULL);
    const float *n2 = ag_test_trace_tensor(t, AG_TENSOR_NEURONS, 2, NULL, NULL);
    float zero[512];
    memset(zero, 0, sizeof zero);
    ag_intervention iv[5] = {
        unit_iv(AG_INTERVENE_SET, 2, 3, 17, n2[3 * in.hidden_dim + 17]), /* its own clean value */
        unit_iv(AG_INTERVENE_SCALE, 0, 1, 5, 1.0f),
        unit_iv(AG_INTERVENE_ADD, 4, 4, 100, 0.0f),
        add_iv(AG_SITE_RESID, 1, 2, 1.0f, zero),
        add_iv(AG_SITE_MID, 3, 0, 1.0f, zero),
    };
    iv[1].position_end = AG_POSITION_OPEN;
    ag_intervene_options modes[6] = {
        ag_test_intervene_options(AG_INTERVENE_DIRECT, 0, 0, 0), ag_test_intervene_options(AG_INTERVENE_LINEAR, 0, 0, 0),
        ag_test_intervene_options(AG_INTERVENE_FREE, 0, 0, 0),   ag_test_intervene_options(AG_INTERVENE_FREE, 1, 0, 0),
        ag_test_intervene_options(AG_INTERVENE_FREE, 1, 1, 1),   ag_test_intervene_options(AG_INTERVENE_FREE, 0, 1, 0),
    };
    size_t nl = (size_t)5 * in.vocab_size;
    double scale = ag_max_abs_f(clean, nl);
    for (int k = 0; k < 6; k++) {
        /* nothing at all: exactly the trace */
        ag_intervention_result *r = ag_test_intervene(t, NULL, 0, &modes[k]);
        ck_assert_int_eq(ag_intervention_result_mode(r), modes[k].mode);
        ck_assert_mem_eq(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 0), clean, nl * sizeof(float));
        ag_intervention_result_free(r);
        /* interventions that change nothing */
        r = ag_test_intervene(t, iv, 5, &modes[k]);
        const float *lg = ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 0);
        double d = ag_max_diff_ff(lg, clean, nl);
        ck_assert_msg(d <= 1e-5 * scale, "mode %d (freeze %d%d%d): no-op changed logits by %.3g", modes[k].mode,
                      modes[k].freeze_attention, modes[k].freeze_norms, modes[k].freeze_gates, d);
        if (modes[k].mode != AG_INTERVENE_FREE) /* exact propagation of a zero change */
            ck_assert_double_eq(ag_max_abs_f(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 1), nl), 0.0);
        const float *last = NULL;
        ck_assert_int_eq(ag_intervention_result_logits(r, -1, 0, &last), AG_OK);
        ck_assert_ptr_eq(last, lg + 4 * (size_t)in.vocab_size);
        ag_intervention_result_free(r);
    }
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- direct and linear modes against the oracle's frozen model ------------------------------ */

static void check_frozen_vs_oracle(const char *rel, int32_t mode) {
    ag_model *m = ag_test_load_model(rel, NULL);
    ag_model_info in = ag_test_model_info(m);
    nl_model *nm = nl_load_bin(ag_test_fixture(rel));
    ck_assert_ptr_nonnull(nm);
    const int T = 9, L = in.n_layers, Hd = in.hidden_dim, V = in.vocab_size, D = in.dim;
    int32_t toks[9];
    ag_test_random_tokens(toks, T, V, 11);
    toks[1] = 403;
    ag_trace *t = ag_test_trace(m, toks, T);
    nl_cache *oc = nl_cache_new(nm, T), *on = nl_cache_new(nm, T);
    ck_assert_int_eq(nl_forward_i32(nm, toks, T, NULL, oc), 0);
    unsigned freeze = mode == AG_INTERVENE_DIRECT ? NL_FREEZE_DIRECT : NL_FREEZE_LINEAR;
    ag_intervene_options o = ag_test_intervene_options(mode, 0, 0, 0);
    float *vec = malloc((size_t)D * sizeof *vec);
    direction(vec, D, 5);
    const int cases = ag_test_under_valgrind() ? 2 : 6;
    for (int k = 0; k < cases; k++) {
        int layer = k % L, pos = (2 * k + 1) % T, index = (37 * k + 11) % Hd;
        const float *nc = ag_test_trace_tensor(t, AG_TENSOR_NEURONS, layer, NULL, NULL);
        float clean_v = nc[(size_t)pos * Hd + index];
        /* double the unit (the adjacency column of a unit source), plus on odd cases a vector at a
         * residual site and a second clamp further up */
        ag_intervention iv[3];
        oracle_edit oe[3];
        int n = 0;
        iv[n] = unit_iv(AG_INTERVENE_SCALE, layer, pos, index, 2.0f);
        oe[n] = (oracle_edit){0, layer, pos, index, 2.0 * clean_v, NULL, 0};
        n++;
        if (k % 2) {
            int rl = (layer + 1) % (L + 1), rp = (pos + 3) % T;
            iv[n] = add_iv(k % 4 == 1 ? AG_SITE_RESID : AG_SITE_MID, k % 4 == 1 ? rl : layer, rp, 0.75f, vec);
            oe[n] = (oracle_edit){k % 4 == 1 ? 1 : 2, k % 4 == 1 ? rl : layer, rp, 0, 0, vec, 0.75};
            n++;
            int ul = L - 1, up = T - 1, ui = (index + 50) % Hd;
            iv[n] = unit_iv(AG_INTERVENE_SET, ul, up, ui, 0.0f);
            oe[n] = (oracle_edit){0, ul, up, ui, 0.0, NULL, 0};
            n++;
        }
        oracle_run(nm, toks, T, oc, freeze, oe, n, on);
        ag_intervention_result *r = ag_test_intervene(t, iv, (size_t)n, &o);
        char what[96];
        snprintf(what, sizeof what, "%s mode %d case %d (unit %d:%d:%d)", rel, mode, k, layer, pos, index);
        compare_deltas(r, oc, on, L, T, Hd, V, 1e-4, what);
        ag_intervention_result_free(r);
    }
    free(vec);
    nl_cache_free(oc);
    nl_cache_free(on);
    nl_free(nm);
    ag_trace_free(t);
    ag_model_free(m);
}

START_TEST(test_direct_vs_oracle_stories) { check_frozen_vs_oracle(STORIES_BIN, AG_INTERVENE_DIRECT); }
END_TEST
START_TEST(test_linear_vs_oracle_stories) { check_frozen_vs_oracle(STORIES_BIN, AG_INTERVENE_LINEAR); }
END_TEST
START_TEST(test_direct_vs_oracle_xs) { check_frozen_vs_oracle(XS_BIN, AG_INTERVENE_DIRECT); }
END_TEST
START_TEST(test_linear_vs_oracle_xs) { check_frozen_vs_oracle(XS_BIN, AG_INTERVENE_LINEAR); }
END_TEST

/* ---- free mode against the oracle's real model (patterns free or frozen) ----------------------- */

START_TEST(test_free_vs_oracle) {
    const char *rels[2] = {STORIES_BIN, XS_BIN};
    for (int mi = 0; mi < 2; mi++) {
        ag_model *m = ag_test_load_model(rels[mi], NULL);
        ag_model_info in = ag_test_model_info(m);
        nl_model *nm = nl_load_bin(ag_test_fixture(rels[mi]));
        const int T = 8, L = in.n_layers, Hd = in.hidden_dim, V = in.vocab_size, D = in.dim;
        int32_t toks[8];
        ag_test_random_tokens(toks, T, V, 23);
        ag_trace *t = ag_test_trace(m, toks, T);
        nl_cache *oc = nl_cache_new(nm, T), *on = nl_cache_new(nm, T);
        ck_assert_int_eq(nl_forward_i32(nm, toks, T, NULL, oc), 0);
        float *vec = malloc((size_t)D * sizeof *vec);
        direction(vec, D, 9);
        ag_intervention iv[3] = {unit_iv(AG_INTERVENE_SET, 1, 2, 7, 3.0f), add_iv(AG_SITE_MID, 0, 4, 2.0f, vec),
                                 add_iv(AG_SITE_RESID, L, 6, -1.5f, vec)};
        oracle_edit oe[3] = {{0, 1, 2, 7, 3.0, NULL, 0}, {2, 0, 4, 0, 0, vec, 2.0}, {1, L, 6, 0, 0, vec, -1.5}};
        /* nothing frozen; attention; norms; gates; attention and gates */
        static const int cfg[5][3] = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 0, 1}};
        for (int ci = 0; ci < 5; ci++) {
            int fa = cfg[ci][0];
            unsigned nf = (cfg[ci][0] ? NL_FREEZE_ATTN : 0u) | (cfg[ci][1] ? NL_FREEZE_NORMS : 0u) | (cfg[ci][2] ? NL_FREEZE_GATES : 0u);
            oracle_run(nm, toks, T, oc, nf, oe, 3, on);
            ag_intervene_options o = ag_test_intervene_options(AG_INTERVENE_FREE, cfg[ci][0], cfg[ci][1], cfg[ci][2]);
            ag_intervention_result *r = ag_test_intervene(t, iv, 3, &o);
            double e = ag_rel_err_fd(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 0), on->logits, (size_t)T * V);
            ck_assert_msg(e <= 1e-5, "%s free (freeze %d%d%d): logits rel err %.3g", rels[mi], cfg[ci][0], cfg[ci][1], cfg[ci][2], e);
            size_t nu = (size_t)T * Hd;
            for (int l = 0; l < L; l++) {
                e = ag_rel_err_fd(ag_test_result_tensor(r, AG_TENSOR_NEURONS, l, 0), on->neurons + (size_t)l * nu, nu);
                ck_assert_msg(e <= 1e-4, "%s free (fa %d): neurons of layer %d rel err %.3g", rels[mi], fa, l, e);
            }
            /* the clamped unit holds its value, and earlier positions did not move */
            ck_assert_float_eq(ag_test_result_tensor(r, AG_TENSOR_NEURONS, 1, 0)[2 * (size_t)Hd + 7], 3.0f);
            ck_assert_double_eq(ag_max_abs_f(ag_test_result_tensor(r, AG_TENSOR_LOGITS, 0, 1), 2 * (size_t)V), 0.0);
            ag_intervention_result_free(r);
        }
        free(vec);
        nl_cache_free(oc);
        nl_cache_free(on);
        nl_free(nm);
        ag_trace_free(t);
        ag_model_free(m);
    }
}
END_TEST

/* ---- free mode with attention, norms and gates frozen equals linear mode --------------------- */

START_TEST(test_free_frozen_equals_linear) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    const int T = 10, V = in.vocab_size, L = in.n_layers, Hd = in.hidden_dim;
    int32_t toks[10];
    ag_test_random_tokens(toks, T, V, 3);
    ag_trace *t = ag_test_trace(m, toks, T);
    float vec[64];
    direction(vec, in.dim, 2);
    const float *n1 = ag_test_trace_tensor(t, AG_TENSOR_NEURONS, 1, NULL, NULL);
    ag_intervention iv[4] = {unit_iv(AG_INTERVENE_SET, 1, 3, 40, 5.0f * n1[3 * Hd + 40] + 1.0f),
                             unit_iv(AG_INTERVENE_SCALE, 0, 2, 9, -3.0f), add_iv(AG_SITE_RESID, 2, 5, 4.0f, vec),
                             add_iv(AG_SITE_MID, 3, 1, -2.0f, vec)};
    iv[1].position_end = 7;
    ag_intervene_options ol = ag_test_intervene_options(AG_INTERVENE_LINEAR, 0, 0, 0),
                         of = ag_test_intervene_options(AG_INTERVENE_FREE, 1, 1, 1);
    ag_intervention_result *rl = ag_test_intervene(t, iv, 4, &ol), *rf = ag_test_intervene(t, iv, 4, &of);
    size_t nl = (size_t)T * V;
    const float *dl = ag_test_result_tensor(rl, AG_TENSOR_LOGITS, 0, 1), *df = ag_test_result_tensor(rf, AG_TENSOR_LOGITS, 0, 1);
    double big = ag_max_abs_f(dl, nl);
    ck_assert_msg(big > 0.05, "the interventions should move the logits (max change %.3g)", big);
    double d = ag_max_diff_ff(dl, df, nl);
    ck_assert_msg(d <= 2e-5 * ag_max_abs_f(ag_test_trace_tensor(t, AG_TENSOR_LOGITS, 0, NULL, NULL), nl),
                  "linear vs free-frozen logits differ by %.3g", d);
    for (int l = 0; l < L; l++) {
        size_t nu = (size_t)T * Hd;
        d = ag_max_diff_ff(ag_test_result_tensor(rl, AG_TENSOR_NEURONS, l, 0), ag_test_result_tensor(rf, AG_TENSOR_NEURONS, l, 0), nu);
        ck_assert_msg(d <= 1e-4 * (1.0 + ag_max_abs_f(ag_test_result_tensor(rl, AG_TENSOR_NEURONS, l, 0), nu)),
                      "layer %d units differ by %.3g", l, d);
    }
    /* and the real model (nothing frozen) really differs from the linear one */
    ag_intervene_options ofree = ag_test_intervene_options(AG_INTERVENE_FREE, 0, 0, 0);
    ag_intervention_result *rr = ag_test_intervene(t, iv, 4, &ofree);
    ck_assert_double_gt(ag_max_diff_ff(ag_test_result_tensor(rr, AG_TENSOR_LOGITS, 0, 1), dl, nl), 1e-3);
    ag_intervention_result_free(rr);
    ag_intervention_result_free(rl);
    ag_intervention_result_free(rf);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- linear mode = path sums of direct-mode columns (DESIGN §1.2 identity 2) ------------------ */

/* Ablating unit s in linear mode changes each target by the sum over all paths of direct
 * effects. Direct-mode columns J[:, u] (the change of every unit and logit when unit u moves by
 * +1 with all other MLP outputs held) composed in layer order give that sum. */
START_TEST(test_linear_is_path_sum_of_direct) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    const int T = 5, L = in.n_layers, Hd = in.hidden_dim, V = in.vocab_size;
    ag_trace *t = ag_test_trace(m, ONCE, T);
    const int vg = ag_test_under_valgrind();
    /* source: a unit with a sizeable activation */
    int sl = vg ? L - 2 : 1, sp = vg ? T - 1 : 2, si = 0;
    const float *ns = ag_test_trace_tensor(t, AG_TENSOR_NEURONS, sl, NULL, NULL);
    for (int i = 1; i < Hd; i++)
        if (fabsf(ns[(size_t)sp * Hd + i]) > fabsf(ns[(size_t)sp * Hd + si])) si = i;
    float a_s = ns[(size_t)sp * Hd + si];

    /* measured: ablate s in linear mode */
    ag_intervene_options ol = ag_test_intervene_options(AG_INTERVENE_LINEAR, 0, 0, 0),
                         od = ag_test_intervene_options(AG_INTERVENE_DIRECT, 0, 0, 0);
    ag_intervention abl = unit_iv(AG_INTERVENE_SET, sl, sp, si, 0.0f);
    ag_intervention_result *rl = ag_test_intervene(t, &abl, 1, &ol);

    /* predicted: sweep units (l, p, i) in layer order from s: change[u] = sum_v J[u, v] change[v] */
    size_t nu = (size_t)L * T * Hd;
    double *chg = calloc(nu, sizeof *chg);  /* change of every unit's value */
    double *lchg = calloc((size_t)T * V, sizeof *lchg);
    chg[((size_t)sl * T + sp) * Hd + si] = -a_s;
    for (int l = sl; l < L; l++)
        for (int p = (l == sl ? sp : 0); p < T; p++)
            for (int i = 0; i < Hd; i++) {
                double c = chg[((size_t)l * T + p) * Hd + i];
                if (c == 0.0) continue;
                ag_intervention one = unit_iv(AG_INTERVENE_ADD, l, p, i, 1.0f);
                ag_intervention_result *rd = ag_test_intervene(t, &one, 1, &od);
                for (int l2 = l + 1; l2 < L; l2++) {
                    const float *col = ag_test_result_tensor(rd, AG_TENSOR_NEURONS, l2, 1);
                    for (size_t k = 0; k < (size_t)T * Hd; k++) chg[(size_t)l2 * T * Hd + k] += c * col[k];
                }
                const float *lc = ag_test_result_tensor(rd, AG_TENSOR_LOGITS, 0, 1);
                for (size_t k = 0; k < (size_t)T * V; k++) lchg[k] += c * lc[k];
                ag_intervention_result_free(rd);
            }
    /* compare units above s and logits */
    double e = ag_rel_err_fd(ag_test_result_tensor(rl, AG_TENSOR_LOGITS, 0, 1), lchg, (size_t)T * V);
    ck_assert_msg(e <= 1e-4, "logit path sums: rel err %.3g (max %.3g)", e, ag_max_abs_d(lchg, (size_t)T * V));
    for (int l = sl + 1; l < L; l++) {
        e = ag_rel_err_fd(ag_test_result_tensor(rl, AG_TENSOR_NEURONS, l, 1), chg + (size_t)l * T * Hd, (size_t)T * Hd);
        ck_assert_msg(e <= 1e-4, "unit path sums of layer %d: rel err %.3g", l, e);
    }
    free(chg);
    free(lchg);
    ag_intervention_result_free(rl);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- linearity of the frozen modes ----------------------------------------------------------- */

START_TEST(test_frozen_modes_are_linear) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    float vec[64];
    direction(vec, in.dim, 4);
    size_t nl = (size_t)5 * in.vocab_size;
    for (int32_t mode = AG_INTERVENE_DIRECT; mode <= AG_INTERVENE_LINEAR; mode++) {
        ag_intervene_options o = ag_test_intervene_options(mode, 0, 0, 0);
        ag_intervention a1[2] = {add_iv(AG_SITE_RESID, 0, 1, 1.0f, vec), unit_iv(AG_INTERVENE_ADD, 2, 3, 60, 0.5f)};
        ag_intervention a3[2] = {add_iv(AG_SITE_RESID, 0, 1, 3.0f, vec), unit_iv(AG_INTERVENE_ADD, 2, 3, 60, 1.5f)};
        ag_intervention_result *r1 = ag_test_intervene(t, a1, 2, &o), *r3 = ag_test_intervene(t, a3, 2, &o);
        const float *d1 = ag_test_result_tensor(r1, AG_TENSOR_LOGITS, 0, 1), *d3 = ag_test_result_tensor(r3, AG_TENSOR_LOGITS, 0, 1);
        double err = 0, mx = 0;
        for (size_t i = 0; i < nl; i++) {
            err = fmax(err, fabs(d3[i] - 3.0 * d1[i]));
            mx = fmax(mx, fabs(d3[i]));
        }
        ck_assert_msg(mx > 0 && err <= 1e-5 * mx, "mode %d: tripling the change gives %.3g of error (max %.3g)", mode, err, mx);
        ag_intervention_result_free(r1);
        ag_intervention_result_free(r3);
    }
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- result getters ---------------------------------------------------------------------------- */

START_TEST(test_result_getters) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    const int Hd = in.hidden_dim, V = in.vocab_size;
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    const float *n3 = ag_test_trace_tensor(t, AG_TENSOR_NEURONS, 3, NULL, NULL);
    float vec[64];
    direction(vec, in.dim, 1);
    ag_intervention iv[3] = {unit_iv(AG_INTERVENE_SCALE, 3, 1, 20, -2.0f), add_iv(AG_SITE_EMBED, 0, 2, 1.0f, vec),
                             unit_iv(AG_INTERVENE_ADD, 3, 2, 21, 0.25f)};
    iv[0].position_end = 3;
    for (int32_t mode = AG_INTERVENE_DIRECT; mode <= AG_INTERVENE_FREE; mode++) {
        ag_intervene_options o = ag_test_intervene_options(mode, 0, 0, 0);
        ag_intervention_result *r = ag_test_intervene(t, iv, 3, &o);
        float prev = 0, val = 0;
        for (int p = 1; p < 3; p++) {
            ck_assert_int_eq(ag_intervention_result_unit(r, 0, p, &prev, &val), AG_OK);
            ck_assert_float_eq(prev, n3[(size_t)p * Hd + 20]);
            ck_assert_float_eq(val, -2.0f * n3[(size_t)p * Hd + 20]);
            /* the unit holds the value in every mode */
            float got = ag_test_result_tensor(r, AG_TENSOR_NEURONS, 3, 0)[(size_t)p * Hd + 20];
            ck_assert_msg(fabsf(got - val) <= 1e-6f * (1 + fabsf(val)), "mode %d pos %d: unit %g != clamp %g", mode, p, got, val);
        }
        ck_assert_int_eq(ag_intervention_result_unit(r, 2, 2, &prev, &val), AG_OK);
        ck_assert_float_eq(val, n3[2 * (size_t)Hd + 21] + 0.25f);
        ck_assert_int_eq(ag_intervention_result_unit(r, 0, 3, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(ag_last_error(), "position"));
        ck_assert_int_eq(ag_intervention_result_unit(r, 1, 2, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ag_intervention_result_unit(r, 3, 2, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
        /* position 0 is upstream of everything: unchanged; full = clean + delta */
        const float *lg0, *dl0;
        ck_assert_int_eq(ag_intervention_result_logits(r, 0, 1, &dl0), AG_OK);
        ck_assert_double_eq(ag_max_abs_f(dl0, (size_t)V), 0.0);
        ck_assert_int_eq(ag_intervention_result_logits(r, 4, 0, &lg0), AG_OK);
        ck_assert_int_eq(ag_intervention_result_logits(r, 4, 1, &dl0), AG_OK);
        const float *cl = ag_test_trace_tensor(t, AG_TENSOR_LOGITS, 0, NULL, NULL) + 4 * (size_t)V;
        for (int v = 0; v < V; v++) ck_assert_float_eq_tol(lg0[v], cl[v] + dl0[v], 1e-5f * (1 + fabsf(cl[v])));
        ck_assert_int_eq(ag_intervention_result_logits(r, 5, 0, &lg0), AG_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ag_intervention_result_logits(r, -2, 0, &lg0), AG_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(ag_intervention_result_logits(NULL, 0, 0, &lg0), AG_ERR_INVALID_ARGUMENT);
        /* tensors: frozen quantities are the trace's in frozen modes */
        const float *d;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_intervention_result_tensor(r, AG_TENSOR_ATTN_PATTERN, 2, 0, &d, sh, &nd), AG_OK);
        ck_assert_int_eq(nd, 3);
        ck_assert_int_eq(sh[0], in.n_heads);
        if (mode != AG_INTERVENE_FREE) {
            const float *tp = ag_test_trace_tensor(t, AG_TENSOR_ATTN_PATTERN, 2, NULL, NULL);
            ck_assert_mem_eq(d, tp, (size_t)in.n_heads * 25 * sizeof(float));
            ck_assert_int_eq(ag_intervention_result_tensor(r, AG_TENSOR_FFN_NORM_SCALE, 4, 1, &d, sh, &nd), AG_OK);
            ck_assert_double_eq(ag_max_abs_f(d, 5), 0.0);
        }
        ck_assert_int_eq(ag_intervention_result_tensor(r, AG_TENSOR_NEURONS, in.n_layers, 0, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_intervention_result_tensor"));
        ck_assert_int_eq(ag_intervention_result_tensor(NULL, AG_TENSOR_NEURONS, 0, 0, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
        ag_intervention_result_free(r);
    }
    ag_intervention_result_free(NULL);
    ck_assert_int_eq(ag_intervention_result_mode(NULL), 0);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- bad interventions ---------------------------------------------------------------------- */

static void expect_bad(const ag_trace *t, const ag_intervention *iv, size_t n, const ag_intervene_options *o,
                       const char *needle) {
    ag_intervention_result *r = (ag_intervention_result *)0x1;
    ag_status st = ag_intervene(&r, t, iv, n, o);
    ck_assert_msg(st == AG_ERR_INVALID_ARGUMENT, "expected AG_ERR_INVALID_ARGUMENT for '%s', got %d (%s)", needle, (int)st,
                  ag_last_error());
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(ag_last_error(), needle) != NULL, "message '%s' does not name '%s'", ag_last_error(), needle);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_intervene"));
}

START_TEST(test_bad_interventions) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    float vec[64], badvec[64];
    direction(vec, in.dim, 1);
    memcpy(badvec, vec, sizeof vec);
    badvec[10] = INFINITY;
    ag_intervention good = unit_iv(AG_INTERVENE_SET, 1, 1, 1, 0.0f), b;
#define BAD(field, val, needle)                      \
    do {                                             \
        ag_intervention two[2] = {good, good};       \
        two[1].index = 2;                            \
        b = good;                                    \
        b.field = (val);                             \
        two[1].field = (val);                        \
        expect_bad(t, &b, 1, NULL, "items[0]." needle); \
        if (strcmp(#field, "index") != 0) expect_bad(t, two, 2, NULL, "items[1]." needle); \
    } while (0)
    BAD(layer, in.n_layers, "layer");
    BAD(layer, -1, "layer");
    BAD(position, 5, "position");
    BAD(position, -1, "position");
    BAD(position_end, 1, "position_end");
    BAD(position_end, 6, "position_end");
    BAD(position_end, -2, "position_end");
    BAD(index, in.hidden_dim, "index");
    BAD(index, -1, "index");
    BAD(value, NAN, "value");
    BAD(value, INFINITY, "value");
    BAD(kind, 0, "kind");
    BAD(kind, 99, "kind");
    BAD(site, 99, "site");
    BAD(site, AG_SITE_ATTN, "site");
    BAD(reserved, 1, "reserved");
    BAD(vector, vec, "vector");
#undef BAD
    /* residual sites */
    b = add_iv(AG_SITE_RESID, in.n_layers + 1, 0, 1.0f, vec);
    expect_bad(t, &b, 1, NULL, "items[0].layer");
    b = add_iv(AG_SITE_MID, in.n_layers, 0, 1.0f, vec);
    expect_bad(t, &b, 1, NULL, "items[0].layer");
    b = add_iv(AG_SITE_RESID, 1, 0, 1.0f, NULL);
    expect_bad(t, &b, 1, NULL, "items[0].vector");
    b = add_iv(AG_SITE_RESID, 1, 0, 1.0f, badvec);
    expect_bad(t, &b, 1, NULL, "items[0].vector[10]");
    b = add_iv(AG_SITE_RESID, 1, 0, NAN, vec);
    expect_bad(t, &b, 1, NULL, "items[0].value");
    b = add_iv(AG_SITE_MID, 1, 0, 1.0f, vec);
    b.kind = AG_INTERVENE_SET;
    expect_bad(t, &b, 1, NULL, "items[0].kind");
    b = add_iv(AG_SITE_MID, 1, 0, 1.0f, vec);
    b.index = 3;
    expect_bad(t, &b, 1, NULL, "items[0].index");
    /* two clamps of one unit at one position */
    ag_intervention dup[2] = {unit_iv(AG_INTERVENE_SET, 2, 0, 4, 1.0f), unit_iv(AG_INTERVENE_SCALE, 2, 3, 4, 2.0f)};
    dup[0].position_end = AG_POSITION_OPEN;
    expect_bad(t, dup, 2, NULL, "items[1]");
    dup[0].position_end = 3; /* [0, 3) and [3, 4): fine */
    ag_intervention_result *r = NULL;
    ck_assert_int_eq(ag_intervene(&r, t, dup, 2, NULL), AG_OK);
    ag_intervention_result_free(r);
    /* arguments and options */
    expect_bad(t, NULL, 1, NULL, "items");
    ag_intervene_options o = ag_test_intervene_options(7, 0, 0, 0);
    expect_bad(t, &good, 1, &o, "opts->mode");
    o = ag_test_intervene_options(AG_INTERVENE_FREE, 2, 0, 0);
    expect_bad(t, &good, 1, &o, "opts->freeze_attention");
    o = ag_test_intervene_options(AG_INTERVENE_FREE, 0, -1, 0);
    expect_bad(t, &good, 1, &o, "opts->freeze_norms");
    r = (ag_intervention_result *)0x1;
    ck_assert_int_eq(ag_intervene(&r, NULL, &good, 1, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(ag_intervene(NULL, t, &good, 1, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_intervene_options_init(NULL, sizeof o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_intervene_options_init(&o, 2), AG_ERR_VERSION);
    /* an older, shorter options struct: the rest defaults (nothing frozen) */
    struct {
        size_t struct_size;
        int32_t mode;
    } old;
    memset(&old, 0, sizeof old); /* padding included */
    old.struct_size = offsetof(ag_intervene_options, freeze_attention);
    old.mode = AG_INTERVENE_LINEAR;
    r = NULL;
    ck_assert_int_eq(ag_intervene(&r, t, &good, 1, (const ag_intervene_options *)&old), AG_OK);
    ck_assert_int_eq(ag_intervention_result_mode(r), AG_INTERVENE_LINEAR);
    ag_intervention_result_free(r);
    /* steered generation checks the same fields, against seq_len */
    int32_t out[8];
    size_t n_out = 0;
    b = good;
    b.value = NAN;
    ck_assert_int_eq(ag_generate_steered(m, ONCE, 5, &b, 1, NULL, out, 8, &n_out), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "items[0].value"));
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_generate_steered"));
    b = good;
    b.position = in.seq_len;
    ck_assert_int_eq(ag_generate_steered(m, ONCE, 5, &b, 1, NULL, out, 8, &n_out), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "items[0].position"));
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- steered generation ----------------------------------------------------------------------- */

static size_t gen(const ag_model *m, const int32_t *prompt, size_t n, const ag_intervention *iv, size_t niv, float temp,
                  int steered, int32_t *out, size_t cap) {
    ag_generate_options go;
    ck_assert_int_eq(AG_GENERATE_OPTIONS_INIT(go), AG_OK);
    go.max_new_tokens = (int32_t)cap;
    go.temperature = temp;
    go.seed = 7;
    size_t n_out = 0;
    ag_status st = steered ? ag_generate_steered(m, prompt, n, iv, niv, &go, out, cap, &n_out)
                           : ag_generate(m, prompt, n, &go, out, cap, &n_out);
    ck_assert_msg(st == AG_OK, "generate = %d: %s", (int)st, ag_last_error());
    return n_out;
}

START_TEST(test_steered_generation) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    const size_t N = ag_test_under_valgrind() ? 12 : 40;
    int32_t a[40], b[40];
    float zero[64], vec[64];
    memset(zero, 0, sizeof zero);
    direction(vec, in.dim, 13);
    for (int s = 0; s < 2; s++) {
        float temp = s ? 0.8f : 0.0f;
        /* nothing: the plain generation */
        size_t na = gen(m, ONCE, 5, NULL, 0, temp, 0, a, N), nb = gen(m, ONCE, 5, NULL, 0, temp, 1, b, N);
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(a, b, na * sizeof *a);
        /* interventions that change nothing, on every token */
        ag_intervention noop[2] = {unit_iv(AG_INTERVENE_SCALE, 2, 0, 33, 1.0f), add_iv(AG_SITE_RESID, 3, 1, 1.0f, zero)};
        noop[0].position_end = noop[1].position_end = AG_POSITION_OPEN;
        nb = gen(m, ONCE, 5, noop, 2, temp, 1, b, N);
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(a, b, na * sizeof *a);
    }
    /* a strong push on every generated token changes the text, and the steered text is what the
     * intervened model predicts greedily when the whole sequence is rerun (teacher forcing) */
    size_t na = gen(m, ONCE, 5, NULL, 0, 0.0f, 0, a, N);
    ag_intervention push[2] = {add_iv(AG_SITE_RESID, 2, 3, 6.0f, vec), unit_iv(AG_INTERVENE_SET, 1, 4, 12, 4.0f)};
    push[0].position_end = AG_POSITION_OPEN;
    push[1].position_end = AG_POSITION_OPEN;
    size_t nb = gen(m, ONCE, 5, push, 2, 0.0f, 1, b, N);
    ck_assert(nb != na || memcmp(a, b, na * sizeof *a) != 0);
    ck_assert_uint_ge(nb, 2);
    int32_t seq[45];
    memcpy(seq, ONCE, sizeof ONCE);
    memcpy(seq + 5, b, nb * sizeof *b);
    ag_trace *t = ag_test_trace(m, seq, 5 + nb);
    ag_intervention_result *r = ag_test_intervene(t, push, 2, NULL); /* FREE, nothing frozen */
    for (size_t k = 0; k < nb; k++) {
        const float *lg;
        ck_assert_int_eq(ag_intervention_result_logits(r, (int32_t)(4 + k), 0, &lg), AG_OK);
        int best = 0;
        for (int v = 1; v < in.vocab_size; v++)
            if (lg[v] > lg[best]) best = v;
        ck_assert_msg(best == b[k], "generated token %zu: steered generation %d, intervened rerun %d", k, b[k], best);
    }
    ag_intervention_result_free(r);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- attrgraph intervene ----------------------------------------------------------------------- */

#ifdef AG_CLI_PATH

START_TEST(test_cli_intervene) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    const int V = in.vocab_size, Hd = in.hidden_dim;
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    char args[2048];
    int code;
    snprintf(args, sizeof args, "intervene -m '%s' -t 1,403,407,261,378 --set 2:3:17=1.5 --scale 0:1..2:5=2 --mode linear",
             ag_test_fixture(STORIES_BIN));
    char *out = ag_test_cli_output(args, &code);
    ck_assert_msg(code == 0, "attrgraph intervene exited %d", code);
    cJSON *root = cJSON_Parse(out);
    ck_assert_msg(root != NULL, "not JSON: %.200s", out);
    ck_assert_str_eq(cJSON_GetObjectItem(root, "mode")->valuestring, "linear");
    ck_assert_int_eq(cJSON_GetObjectItem(root, "position")->valueint, 4);
    const cJSON *ivs = cJSON_GetObjectItem(root, "interventions");
    ck_assert_int_eq(cJSON_GetArraySize(ivs), 3);
    const int want[3][3] = {{2, 3, 17}, {0, 1, 5}, {0, 2, 5}};
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(ivs, i);
        ck_assert_int_eq(cJSON_GetObjectItem(e, "layer")->valueint, want[i][0]);
        ck_assert_int_eq(cJSON_GetObjectItem(e, "position")->valueint, want[i][1]);
        ck_assert_int_eq(cJSON_GetObjectItem(e, "index")->valueint, want[i][2]);
        float prev = ag_test_trace_tensor(t, AG_TENSOR_NEURONS, want[i][0], NULL, NULL)[(size_t)want[i][1] * Hd + want[i][2]];
        ck_assert_float_eq((float)cJSON_GetObjectItem(e, "previous")->valuedouble, prev);
        ck_assert_float_eq((float)cJSON_GetObjectItem(e, "value")->valuedouble, i == 0 ? 1.5f : 2.0f * prev);
    }
    /* the logits: the trace's before, the library's intervened run after */
    ag_intervention iv[2] = {unit_iv(AG_INTERVENE_SET, 2, 3, 17, 1.5f), unit_iv(AG_INTERVENE_SCALE, 0, 1, 5, 2.0f)};
    iv[1].position_end = 3;
    ag_intervene_options o = ag_test_intervene_options(AG_INTERVENE_LINEAR, 0, 0, 0);
    ag_intervention_result *r = ag_test_intervene(t, iv, 2, &o);
    const float *after, *before = ag_test_trace_tensor(t, AG_TENSOR_LOGITS, 0, NULL, NULL) + 4 * (size_t)V;
    ck_assert_int_eq(ag_intervention_result_logits(r, -1, 0, &after), AG_OK);
    size_t n;
    double *lb = ag_json_doubles(cJSON_GetObjectItem(root, "logits_before"), &n);
    ck_assert_uint_eq(n, (size_t)V);
    double *la = ag_json_doubles(cJSON_GetObjectItem(root, "logits_after"), &n);
    ck_assert_uint_eq(n, (size_t)V);
    for (int v = 0; v < V; v++) {
        ck_assert_float_eq((float)lb[v], before[v]);
        ck_assert_float_eq((float)la[v], after[v]);
    }
    free(lb);
    free(la);
    ag_intervention_result_free(r);
    cJSON_Delete(root);
    free(out);

    /* --add from a file, --ablate, --generate, --all-positions */
    char path[] = "/tmp/ag_check_intervene_vecXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    for (int d = 0; d < in.dim; d++) fprintf(f, "%s%g", d ? ", " : "[", 0.25 * ((d % 5) - 2));
    fputs("]\n", f);
    fclose(f);
    snprintf(args, sizeof args,
             "intervene -m '%s' -z '%s' -p 'Once upon a time' --add 'resid.2:1..=3*@%s' --ablate 1:-1:7 --generate 8 --all-positions",
             ag_test_fixture(STORIES_BIN), ag_test_fixture("models/tok512.bin"), path);
    out = ag_test_cli_output(args, &code);
    remove(path);
    ck_assert_msg(code == 0, "attrgraph intervene --add exited %d", code);
    root = cJSON_Parse(out);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(cJSON_GetObjectItem(root, "mode")->valuestring, "free");
    const cJSON *adds = cJSON_GetObjectItem(root, "additions");
    ck_assert_int_eq(cJSON_GetArraySize(adds), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(adds, 0), "site")->valuestring, "resid.2");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(adds, 0), "position_end")));
    ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(adds, 0), "coefficient")->valuedouble, 3.0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "all_logits_after")), 5);
    const cJSON *gen = cJSON_GetObjectItem(root, "generation");
    ck_assert_ptr_nonnull(gen);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(gen, "tokens_clean")), 8);
    ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItem(gen, "tokens_steered")), 1);
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(gen, "text_clean")->valuestring, "there was"));
    cJSON_Delete(root);
    free(out);

    /* bad input: nonzero exit */
    const char *bad[7] = {"--set 9:0:0=1", "--set 1:0:0=nan", "--set 1:5:0=1", "--add resid.1:0=1,2",
                          "--mode direct --freeze-attention --set 1:0:0=1", "--set 1:0:999=2", "--mode sideways --set 1:0:0=1"};
    for (int i = 0; i < 7; i++) {
        snprintf(args, sizeof args, "intervene -m '%s' -t 1,403,407,261,378 %s", ag_test_fixture(STORIES_BIN), bad[i]);
        out = ag_test_cli_output(args, &code);
        ck_assert_msg(code != 0, "'%s' should fail", bad[i]);
        ck_assert_uint_eq(strlen(out), 0);
        free(out);
    }
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST
#endif

/* ---- suite ------------------------------------------------------------------------------------- */

static Suite *intervene_suite(void) {
    Suite *s = suite_create("intervene");
    TCase *tc = tcase_create("modes");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_noop_every_mode);
    tcase_add_test(tc, test_direct_vs_oracle_stories);
    tcase_add_test(tc, test_linear_vs_oracle_stories);
    tcase_add_test(tc, test_direct_vs_oracle_xs);
    tcase_add_test(tc, test_linear_vs_oracle_xs);
    tcase_add_test(tc, test_free_vs_oracle);
    tcase_add_test(tc, test_free_frozen_equals_linear);
    tcase_add_test(tc, test_linear_is_path_sum_of_direct);
    tcase_add_test(tc, test_frozen_modes_are_linear);
    suite_add_tcase(s, tc);
    TCase *api = tcase_create("api");
    tcase_set_timeout(api, 600);
    tcase_add_test(api, test_result_getters);
    tcase_add_test(api, test_bad_interventions);
    tcase_add_test(api, test_steered_generation);
#ifdef AG_CLI_PATH
    tcase_add_test(api, test_cli_intervene);
#endif
    suite_add_tcase(s, api);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(intervene_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
