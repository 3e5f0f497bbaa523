/* The batched reverse pass (src/engine/backward.c) on the two shared models, against central
 * finite differences in double precision of the independent oracle forward
 * (tests/support/naive_llama), at every site kind and for every target kind; B batched
 * targets against B single runs; one reverse pass over several forward sequences (the IG
 * layout) against separate runs; the linearised variants (frozen norms / patterns / gates,
 * MLP outputs held) against finite differences of the oracle's frozen model.
 *
 * FD scheme: the oracle forward with a hook that replaces the site's values by z (double),
 * f(z) read from the oracle's cache; five-point differences (fourth order), h = 1e-4.
 * Full coordinate sweeps at embed and resid.L; directional derivatives along random
 * directions elsewhere (and for everything under valgrind). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "engine/backward.h"
#include "engine/forward.h"
#include "engine/trace.h"
#include "methods/method.h"
#include "model/model.h"
#include "naive_llama.h"
#include "suite_run.h"

static const int PROMPT[] = {1, 403, 407, 261, 378}; /* "Once upon a time" */
#define PROMPT_T 5

typedef struct fixture {
    ag_model *m;
    ag_trace *tr;
    nl_model *nm;
    nl_cache *clean; /* the oracle's cache of the prompt (frozen values) */
    int T;
} fixture;

static void fixture_open(fixture *fx, const char *file, int T) {
    const char *path = ag_test_fixture(file);
    ck_assert_int_eq(ag_model_load(&fx->m, path, NULL), AG_OK);
    int32_t tok[16];
    for (int i = 0; i < T; i++) tok[i] = i < PROMPT_T ? PROMPT[i] : (int32_t)(100 + 37 * i) % 512;
    ck_assert_int_eq(ag_trace_create(&fx->tr, fx->m, tok, (size_t)T, NULL), AG_OK);
    fx->nm = nl_load_bin(path);
    ck_assert_ptr_nonnull(fx->nm);
    fx->clean = nl_cache_new(fx->nm, T);
    ck_assert_int_eq(nl_forward_i32(fx->nm, tok, T, NULL, fx->clean), 0);
    fx->T = T;
}

static void fixture_close(fixture *fx) {
    nl_cache_free(fx->clean);
    nl_free(fx->nm);
    ag_trace_free(fx->tr);
    ag_model_free(fx->m);
}

/* ---- the oracle: f(site := z) in double ---------------------------------------------------- */

typedef struct oracle {
    const fixture *fx;
    int kind, layer;         /* site replaced by z */
    const double *z;
    const agi_target *t;
    unsigned freeze;         /* NL_FREEZE_* */
    nl_cache *cache;
} oracle;

static int nl_site_of(int kind) {
    switch (kind) {
    case AG_SITE_EMBED:
    case AG_SITE_RESID: return NL_SITE_RESID;
    case AG_SITE_MID: return NL_SITE_MID;
    case AG_SITE_MLP: return NL_SITE_NEURONS;
    default: return NL_SITE_ATTN_HEADS;
    }
}

static void replace_hook(void *user, nl_site site, int layer, int T, int width, double *data) {
    oracle *o = user;
    if ((int)site == nl_site_of(o->kind) && layer == o->layer)
        memcpy(data, o->z, sizeof(double) * (size_t)T * (size_t)width);
}

/* Site values of the oracle's cache for (kind, layer). */
static double *cache_site(const nl_cache *C, int kind, int layer) {
    size_t T = (size_t)C->T, D = (size_t)C->D, Hd = (size_t)C->Hd;
    switch (kind) {
    case AG_SITE_EMBED: return C->resid;
    case AG_SITE_RESID: return C->resid + (size_t)layer * T * D;
    case AG_SITE_MID: return C->mid + (size_t)layer * T * D;
    case AG_SITE_MLP: return C->neurons + (size_t)layer * T * Hd;
    default: return C->heads + (size_t)layer * T * D;
    }
}

/* f of the oracle's cache, from the math of each target kind. */
static double target_of_cache(const nl_cache *C, const agi_target *t) {
    int V = C->V;
    const double *lg = C->logits + (size_t)t->position * V;
    double mx = lg[0], sum = 0, mean = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, lg[v]), mean += lg[v] / V;
    for (int v = 0; v < V; v++) sum += exp(lg[v] - mx);
    switch (t->kind) {
    case AG_TARGET_LOGIT: return lg[t->token];
    case AG_TARGET_DEMEANED_LOGIT: return lg[t->token] - mean;
    case AG_TARGET_LOGPROB: return lg[t->token] - mx - log(sum);
    case AG_TARGET_PROB: return exp(lg[t->token] - mx) / sum;
    case AG_TARGET_LOGIT_DIFF: return lg[t->token] - lg[t->token_b];
    default: {
        int w = t->site_kind == AG_SITE_MLP ? C->Hd : C->D;
        const double *z = cache_site(C, t->site_kind, t->site_layer) + (size_t)t->position * w;
        if (t->kind == AG_TARGET_UNIT) return z[t->index];
        double s = 0;
        for (int i = 0; i < w; i++) s += t->direction[i] * z[i];
        return s;
    }
    }
}

static double oracle_f(void *user, const double *z, size_t n) {
    (void)n;
    oracle *o = user;
    o->z = z;
    nl_forward_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.hook = replace_hook;
    opts.user = o;
    opts.freeze = o->freeze;
    opts.frozen = o->freeze ? o->fx->clean : NULL;
    int itok[16];
    for (int i = 0; i < o->fx->T; i++) itok[i] = o->fx->tr->acts.tokens[i];
    ck_assert_int_eq(nl_forward_ex(o->fx->nm, itok, o->fx->T, &opts, NULL, o->cache), 0);
    return target_of_cache(o->cache, o->t);
}

/* ---- the engine ---------------------------------------------------------------------------- */

/* grad[B][T][w] of B targets at a site, over the trace (one batched reverse pass). */
static void engine_grad(const fixture *fx, int kind, int layer, const agi_target *t, int B, unsigned flags, float *grad) {
    const ag_model *m = fx->m;
    const agi_config *c = &m->cfg;
    agi_target_ctx tc;
    ck_assert_int_eq(agi_target_ctx_init(&tc, m, "test"), AG_OK);
    int wmax = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    float *sv = calloc((size_t)B * wmax, sizeof(float));
    agi_seed *seeds = calloc((size_t)B, sizeof *seeds);
    for (int b = 0; b < B; b++) {
        double v;
        ck_assert_int_eq(agi_target_eval(&tc, &fx->tr->acts, 0, &t[b], &v, sv + (size_t)b * wmax, "test"), AG_OK);
        seeds[b] = (agi_seed){b, agi_target_station(c, &t[b]), t[b].position, 1.0f, sv + (size_t)b * wmax};
    }
    agi_backward bw;
    ck_assert_int_eq(agi_backward_init(&bw, m, &fx->tr->acts, B, "test"), AG_OK);
    bw.flags = flags;
    agi_backward_run(&bw, seeds, B, kind, layer, grad);
    agi_backward_free(&bw);
    free(sv);
    free(seeds);
    agi_target_ctx_free(&tc);
}

static agi_target logit_target(const fixture *fx, int kind, int pos) {
    agi_target t = {0};
    t.kind = kind;
    t.position = pos;
    const float *lg = fx->tr->acts.logits + (size_t)pos * fx->m->cfg.vocab_size;
    int best = 0, second = 1;
    for (int v = 0; v < fx->m->cfg.vocab_size; v++)
        if (lg[v] > lg[best]) second = best, best = v;
        else if (v != best && lg[v] > lg[second]) second = v;
    t.token = best;
    t.token_b = second;
    t.site_kind = AG_SITE_EMBED;
    t.index = -1;
    return t;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

/* Five-point directional derivative (fourth order: the prompts reach strongly curved spots,
 * e.g. RMSNorm of small embeddings, where central differences at h = 1e-4 are off by 1e-4). */
static double fd5_dir(oracle *o, const double *z, const double *dir, size_t n, double h) {
    double *x = malloc(n * sizeof(double)), f[4];
    const double k[4] = {2, 1, -1, -2};
    for (int j = 0; j < 4; j++) {
        for (size_t i = 0; i < n; i++) x[i] = z[i] + k[j] * h * dir[i];
        f[j] = oracle_f(o, x, n);
    }
    free(x);
    return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

/* Compare the engine's gradient at (kind, layer) for target t with the oracle's FD:
 * full = every coordinate, else `ndir` random directions. Returns the relative error. */
static double check_grad(const fixture *fx, int kind, int layer, const agi_target *t, unsigned flags, unsigned nl_freeze,
                         int full, int ndir) {
    const agi_config *c = &fx->m->cfg;
    size_t n = (size_t)fx->T * (size_t)agi_site_width(c, kind);
    float *g = malloc(n * sizeof(float));
    engine_grad(fx, kind, layer, t, 1, flags, g);
    oracle o = {fx, kind, layer, NULL, t, nl_freeze, nl_cache_new(fx->nm, fx->T)};
    double *z = malloc(n * sizeof(double));
    memcpy(z, cache_site(fx->clean, kind, layer), n * sizeof(double));
    double err;
    if (full) {
        double *fd = malloc(n * sizeof(double));
        nl_fd_grad5(oracle_f, &o, z, n, 1e-4, fd);
        err = ag_rel_err_fd(g, fd, n);
        ck_assert_msg(ag_max_abs_d(fd, n) > 1e-6, "FD gradient vanished: the comparison could not fail");
        free(fd);
    } else {
        double *dir = calloc(n, sizeof(double)), *got = malloc(sizeof(double) * (size_t)ndir),
               *want = malloc(sizeof(double) * (size_t)ndir);
        double gnorm = 0;
        for (size_t i = 0; i < n; i++) gnorm += fabs(g[i]);
        for (int d = 0; d < ndir; d++) {
            for (size_t i = 0; i < n; i++) dir[i] = 2 * urand() - 1;
            want[d] = fd5_dir(&o, z, dir, n, 1e-4);
            got[d] = 0;
            for (size_t i = 0; i < n; i++) got[d] += g[i] * dir[i];
        }
        /* relative to the scale sum |g| (a random direction's derivative can cancel) */
        err = 0;
        for (int d = 0; d < ndir; d++) err = fmax(err, fabs(got[d] - want[d]) / fmax(gnorm, 1e-30));
        ck_assert_msg(gnorm > 1e-6, "gradient vanished: the comparison could not fail");
        free(dir), free(got), free(want);
    }
    free(z);
    free(g);
    nl_cache_free(o.cache);
    return err;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static const char *MODELS[] = {"models/stories260K.bin", "models/llama2xs_model.bin"};

/* Gradients of the top logit at every site kind, both models. embed and resid.2 (the sites of
 * the "done when") with a full coordinate sweep. */
START_TEST(test_gradient_sites_fd) {
    int vg = ag_test_under_valgrind();
    for (int mi = 0; mi < (vg ? 1 : 2); mi++) {
        fixture fx;
        fixture_open(&fx, MODELS[mi], PROMPT_T);
        int L = fx.m->cfg.n_layers;
        agi_target t = logit_target(&fx, AG_TARGET_LOGIT, PROMPT_T - 1);
        struct { int kind, layer, full; } sites[] = {
            {AG_SITE_EMBED, 0, 1}, {AG_SITE_RESID, 2, 1}, {AG_SITE_RESID, L, 0}, {AG_SITE_MID, 1, 0},
            {AG_SITE_MLP, 1, 0},   {AG_SITE_ATTN, 3, 0},  {AG_SITE_MLP, L - 1, 0}, {AG_SITE_ATTN, 0, 0}};
        for (size_t s = 0; s < sizeof sites / sizeof sites[0]; s++) {
            if (vg && s % 2) continue; /* valgrind: every other site, one direction */
            double e = check_grad(&fx, sites[s].kind, sites[s].layer, &t, 0, 0, sites[s].full && !vg, vg ? 1 : 6);
            char name[32];
            ag_site_name(sites[s].kind, sites[s].layer, name, sizeof name, NULL);
            printf("backward %s %s: relative error vs FD %.2e (%s)\n", MODELS[mi], name, e,
                   sites[s].full && !vg ? "all coordinates" : "directions");
            ck_assert_msg(e < 1e-4, "%s: gradient at %s is off by %g relative", MODELS[mi], name, e);
        }
        fixture_close(&fx);
    }
}
END_TEST

/* Every target kind (at a position other than the last too), against FD. */
START_TEST(test_targets_fd) {
    int vg = ag_test_under_valgrind();
    fixture fx;
    fixture_open(&fx, MODELS[0], PROMPT_T);
    const agi_config *c = &fx.m->cfg;
    float *dir = malloc(sizeof(float) * (size_t)c->dim);
    for (int i = 0; i < c->dim; i++) dir[i] = (float)(2 * urand() - 1);
    agi_target ts[8];
    int nt = 0;
    ts[nt++] = logit_target(&fx, AG_TARGET_DEMEANED_LOGIT, 4);
    ts[nt++] = logit_target(&fx, AG_TARGET_LOGPROB, 4);
    ts[nt++] = logit_target(&fx, AG_TARGET_PROB, 2);
    ts[nt++] = logit_target(&fx, AG_TARGET_LOGIT_DIFF, 3);
    ts[nt++] = logit_target(&fx, AG_TARGET_LOGIT, 1);
    agi_target d = {AG_TARGET_DIRECTION, -1, -1, 3, AG_SITE_MID, 3, -1, dir};
    ts[nt++] = d;
    agi_target u = {AG_TARGET_UNIT, -1, -1, 4, AG_SITE_MLP, 3, 17, NULL};
    ts[nt++] = u;
    agi_target r = {AG_TARGET_UNIT, -1, -1, 2, AG_SITE_RESID, 5, 9, NULL}; /* a final-residual coordinate */
    ts[nt++] = r;
    for (int i = 0; i < nt; i++) {
        double e = check_grad(&fx, AG_SITE_RESID, 1, &ts[i], 0, 0, 0, vg ? 1 : 6);
        printf("backward target kind %d at position %d: relative error vs FD %.2e\n", ts[i].kind, ts[i].position, e);
        ck_assert_msg(e < 1e-4, "target kind %d: off by %g relative", ts[i].kind, e);
    }
    free(dir);
    fixture_close(&fx);
}
END_TEST

/* B targets in one batched pass = B single passes (same activations, GEMMs over B*T rows). */
START_TEST(test_batched_targets) {
    fixture fx;
    fixture_open(&fx, MODELS[1], PROMPT_T);
    const agi_config *c = &fx.m->cfg;
    agi_target ts[5] = {logit_target(&fx, AG_TARGET_LOGIT, 4), logit_target(&fx, AG_TARGET_LOGPROB, 2),
                        logit_target(&fx, AG_TARGET_DEMEANED_LOGIT, 0), {0}, {0}};
    ts[3] = (agi_target){AG_TARGET_UNIT, -1, -1, 3, AG_SITE_MLP, 2, 5, NULL};
    ts[4] = (agi_target){AG_TARGET_UNIT, -1, -1, 4, AG_SITE_MID, 4, 11, NULL};
    int kinds[3] = {AG_SITE_EMBED, AG_SITE_MID, AG_SITE_MLP}, layers[3] = {0, 1, 1};
    for (int s = 0; s < 3; s++) {
        size_t n = (size_t)fx.T * (size_t)agi_site_width(c, kinds[s]);
        float *gb = malloc(5 * n * sizeof(float)), *g1 = malloc(n * sizeof(float));
        engine_grad(&fx, kinds[s], layers[s], ts, 5, 0, gb);
        for (int b = 0; b < 5; b++) {
            engine_grad(&fx, kinds[s], layers[s], &ts[b], 1, 0, g1);
            double e = ag_rel_err_ff(gb + (size_t)b * n, g1, n);
            ck_assert_msg(ag_max_abs_f(g1, n) > 0, "zero gradient");
            ck_assert_msg(e < 2e-5, "site %d target %d: batched differs from single by %g", kinds[s], b, e); /* fp32 rounding of other GEMM blockings */
        }
        free(gb), free(g1);
    }
    fixture_close(&fx);
}
END_TEST

/* One reverse pass over several forward sequences with a cotangent -> sequence map (the IG
 * layout: 2 targets x 3 scaled inputs) = separate runs on single-sequence activations. */
START_TEST(test_multi_sequence_pass) {
    fixture fx;
    fixture_open(&fx, MODELS[0], PROMPT_T);
    const ag_model *m = fx.m;
    const agi_config *c = &m->cfg;
    const int T = fx.T, D = c->dim, S = 3, B = 2;
    const float alphas[3] = {0.3f, 0.7f, 1.0f};
    agi_target ts[2] = {logit_target(&fx, AG_TARGET_LOGPROB, 4), {AG_TARGET_UNIT, -1, -1, 3, AG_SITE_MLP, 3, 7, NULL}};
    const int kind = AG_SITE_MID, layer = 1;
    const float *z0 = agi_site_ptr(&fx.tr->acts, c, kind, layer, 0);
    agi_acts a;
    ck_assert_int_eq(agi_acts_alloc(&a, c, S, T, T, 0, "test"), AG_OK);
    for (int s = 0; s < S; s++)
        for (int i = 0; i < T * D; i++) agi_site_ptr(&a, c, kind, layer, s)[i] = alphas[s] * z0[i];
    agi_forward_from_site(fx.tr, &a, kind, layer);
    agi_target_ctx tc;
    ck_assert_int_eq(agi_target_ctx_init(&tc, m, "test"), AG_OK);
    float *sv = calloc((size_t)B * S * c->hidden_dim, sizeof(float));
    agi_seed seeds[6];
    int act_of[6];
    for (int t = 0; t < B; t++)
        for (int s = 0; s < S; s++) {
            int ci = t * S + s;
            double v;
            ck_assert_int_eq(agi_target_eval(&tc, &a, s, &ts[t], &v, sv + (size_t)ci * c->hidden_dim, "test"), AG_OK);
            seeds[ci] = (agi_seed){ci, agi_target_station(c, &ts[t]), ts[t].position, 1.0f, sv + (size_t)ci * c->hidden_dim};
            act_of[ci] = s;
        }
    agi_backward bw;
    ck_assert_int_eq(agi_backward_init(&bw, m, &a, B * S, "test"), AG_OK);
    bw.act_of = act_of;
    size_t n = (size_t)T * D;
    float *g = malloc(B * S * n * sizeof(float)), *g1 = malloc(n * sizeof(float));
    agi_backward_run(&bw, seeds, B * S, kind, layer, g);
    /* singles */
    for (int s = 0; s < S; s++) {
        agi_acts a1;
        ck_assert_int_eq(agi_acts_alloc(&a1, c, 1, T, T, 0, "test"), AG_OK);
        for (int i = 0; i < T * D; i++) agi_site_ptr(&a1, c, kind, layer, 0)[i] = alphas[s] * z0[i];
        agi_forward_from_site(fx.tr, &a1, kind, layer);
        for (int t = 0; t < B; t++) {
            double v;
            float *seed = calloc((size_t)c->hidden_dim, sizeof(float));
            ck_assert_int_eq(agi_target_eval(&tc, &a1, 0, &ts[t], &v, seed, "test"), AG_OK);
            agi_seed sd = {0, agi_target_station(c, &ts[t]), ts[t].position, 1.0f, seed};
            agi_backward b1;
            ck_assert_int_eq(agi_backward_init(&b1, m, &a1, 1, "test"), AG_OK);
            agi_backward_run(&b1, &sd, 1, kind, layer, g1);
            double e = ag_rel_err_ff(g + (size_t)(t * S + s) * n, g1, n);
            ck_assert_msg(ag_max_abs_f(g1, n) > 1e-6, "vanishing gradient");
            ck_assert_msg(e < 2e-5, "sequence %d target %d: %g", s, t, e);
            agi_backward_free(&b1);
            free(seed);
        }
        agi_acts_free(&a1);
    }
    /* and alpha = 1 reproduces the trace's own gradient */
    float *gt = malloc(n * sizeof(float));
    engine_grad(&fx, kind, layer, &ts[0], 1, 0, gt);
    ck_assert_msg(ag_rel_err_ff(g + (size_t)(0 * S + 2) * n, gt, n) < 1e-5, "alpha = 1 differs from the trace");
    free(gt);
    agi_backward_free(&bw);
    free(g), free(g1), free(sv);
    agi_target_ctx_free(&tc);
    agi_acts_free(&a);
    fixture_close(&fx);
}
END_TEST

/* The linearisations (DESIGN §1.2) against FD of the oracle's frozen model: norm scales,
 * attention patterns and gate factors frozen; plus MLP outputs held ("direct"). */
START_TEST(test_frozen_variants_fd) {
    int vg = ag_test_under_valgrind();
    fixture fx;
    fixture_open(&fx, MODELS[0], PROMPT_T);
    agi_target t = logit_target(&fx, AG_TARGET_LOGIT, 4);
    struct { unsigned ag, nl; } v[] = {
        {AGI_BW_FREEZE_NORMS, NL_FREEZE_NORMS},
        {AGI_BW_FREEZE_ATTN, NL_FREEZE_ATTN},
        {AGI_BW_FREEZE_GATES, NL_FREEZE_GATES},
        {AGI_BW_FREEZE_NORMS | AGI_BW_FREEZE_ATTN | AGI_BW_FREEZE_GATES, NL_FREEZE_LINEAR},
        {AGI_BW_FREEZE_NORMS | AGI_BW_FREEZE_ATTN | AGI_BW_FREEZE_GATES | AGI_BW_NO_MLP, NL_FREEZE_DIRECT},
    };
    size_t n = (size_t)fx.T * fx.m->cfg.dim;
    float *g_real = malloc(n * sizeof(float)), *g_frz = malloc(n * sizeof(float));
    engine_grad(&fx, AG_SITE_RESID, 1, &t, 1, 0, g_real);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        double e = check_grad(&fx, AG_SITE_RESID, 1, &t, v[i].ag, v[i].nl, !vg, 1);
        printf("backward frozen flags %u: relative error vs FD of the frozen oracle %.2e\n", v[i].ag, e);
        ck_assert_msg(e < 1e-4, "flags %u: off by %g", v[i].ag, e);
        /* and the linearisation really changes the gradient (else this test proves nothing) */
        engine_grad(&fx, AG_SITE_RESID, 1, &t, 1, v[i].ag, g_frz);
        ck_assert_msg(ag_rel_err_ff(g_frz, g_real, n) > 1e-3, "flags %u do not change the gradient", v[i].ag);
    }
    free(g_real), free(g_frz);
    fixture_close(&fx);
}
END_TEST

/* A target at the site itself has gradient = its seed; a target upstream of the site gives 0. */
START_TEST(test_seed_at_site_and_upstream) {
    fixture fx;
    fixture_open(&fx, MODELS[0], PROMPT_T);
    const agi_config *c = &fx.m->cfg;
    size_t n = (size_t)fx.T * c->hidden_dim;
    float *g = malloc(n * sizeof(float));
    agi_target u = {AG_TARGET_UNIT, -1, -1, 2, AG_SITE_MLP, 2, 40, NULL};
    engine_grad(&fx, AG_SITE_MLP, 2, &u, 1, 0, g);
    for (size_t i = 0; i < n; i++) ck_assert(g[i] == (i == (size_t)2 * c->hidden_dim + 40 ? 1.0f : 0.0f));
    engine_grad(&fx, AG_SITE_MLP, 3, &u, 1, 0, g); /* target below the site */
    ck_assert(ag_max_abs_f(g, n) == 0.0);
    /* causality: the gradient of a target at position 2 vanishes at positions 3, 4 */
    agi_target t = logit_target(&fx, AG_TARGET_LOGIT, 2);
    engine_grad(&fx, AG_SITE_MLP, 0, &t, 1, 0, g);
    ck_assert(ag_max_abs_f(g + 3 * (size_t)c->hidden_dim, 2 * (size_t)c->hidden_dim) == 0.0);
    ck_assert(ag_max_abs_f(g, 3 * (size_t)c->hidden_dim) > 0.0);
    free(g);
    fixture_close(&fx);
}
END_TEST

/* A longer prompt (T = 12) on the second model: attention over more positions. */
START_TEST(test_longer_prompt_fd) {
    if (ag_test_under_valgrind()) return;
    fixture fx;
    fixture_open(&fx, MODELS[1], 12);
    agi_target t = logit_target(&fx, AG_TARGET_LOGPROB, 11);
    double e = check_grad(&fx, AG_SITE_EMBED, 0, &t, 0, 0, 1, 8);
    printf("backward T=12 embed: relative error vs FD %.2e\n", e);
    ck_assert_msg(e < 1e-4, "T=12: %g", e);
    e = check_grad(&fx, AG_SITE_ATTN, 2, &t, 0, 0, 0, 8);
    ck_assert_msg(e < 1e-4, "T=12 attn.2: %g", e);
    fixture_close(&fx);
}
END_TEST


/* The method vtable answers B targets at once: gradient and IG (fixed and adaptive rules) for
 * 3 targets in one call = 3 single-target calls. */
START_TEST(test_method_vtable_batched) {
    fixture fx;
    fixture_open(&fx, MODELS[0], PROMPT_T);
    const agi_config *c = &fx.m->cfg;
    agi_target ts[3] = {logit_target(&fx, AG_TARGET_LOGIT, 4), logit_target(&fx, AG_TARGET_LOGPROB, 3),
                        {AG_TARGET_UNIT, -1, -1, 4, AG_SITE_MLP, 4, 9, NULL}};
    const agi_method *methods[3] = {&agi_method_gradient, &agi_method_ig, &agi_method_ig};
    const int rules[3] = {0, AG_QUAD_GAUSS_LEGENDRE, AG_QUAD_ADAPTIVE};
    for (int k = 0; k < (ag_test_under_valgrind() ? 2 : 3); k++) {
        ag_attribute_options o;
        ag_attribute_options_init(&o, sizeof o);
        o.method = methods[k]->id;
        o.site_kind = AG_SITE_MID;
        o.site_layer = 1;
        if (rules[k]) o.quadrature = rules[k], o.steps = rules[k] == AG_QUAD_ADAPTIVE ? 0 : 12;
        agi_method_request req = {fx.tr, AG_SITE_MID, 1, &o, "test"};
        void *state = NULL;
        ck_assert_int_eq(methods[k]->prepare(&req, &state), AG_OK);
        size_t n = (size_t)fx.T * c->dim;
        float *v3 = calloc(3 * n, sizeof(float)), *g3 = calloc(3 * n, sizeof(float));
        float *v1 = calloc(n, sizeof(float)), *g1 = calloc(n, sizeof(float));
        double tv3[3], bv3[3], tv1, bv1;
        agi_method_result r3 = {v3, g3, 0, tv3, bv3, {sizeof(ag_attribution_stats), 0, 0, 0, 0, 0, 0, 0, 0, 0}};
        ck_assert_int_eq(methods[k]->vjp(state, ts, 3, &r3), AG_OK);
        ck_assert_int_eq(r3.has_gradient, 1);
        for (int b = 0; b < 3; b++) {
            agi_method_result r1 = {v1, g1, 0, &tv1, &bv1, {sizeof(ag_attribution_stats), 0, 0, 0, 0, 0, 0, 0, 0, 0}};
            ck_assert_int_eq(methods[k]->vjp(state, &ts[b], 1, &r1), AG_OK);
            double e = ag_rel_err_ff(v3 + (size_t)b * n, v1, n), eg = ag_rel_err_ff(g3 + (size_t)b * n, g1, n);
            ck_assert_msg(ag_max_abs_f(v1, n) > 0, "method %d target %d: zero attributions", k, b);
            /* adaptive: a batch refines the union of the targets' panels, so it agrees to the
             * rule's accuracy, not to rounding */
            double tol = rules[k] == AG_QUAD_ADAPTIVE ? 2e-3 : 2e-5;
            ck_assert_msg(e < tol && eg < tol, "method %d target %d: batched %g / %g", k, b, e, eg);
            ck_assert(fabs(tv3[b] - tv1) <= 1e-6 * fabs(tv1));
            if (k > 0) {
                ck_assert(fabs(bv3[b] - bv1) <= 1e-5 * fmax(1.0, fabs(bv1)));
                double sum = 0;
                for (size_t i = 0; i < n; i++) sum += v3[(size_t)b * n + i];
                if (rules[k] == AG_QUAD_ADAPTIVE) /* every target of the batch meets the tolerance */
                    ck_assert_msg(fabs(sum - (tv3[b] - bv3[b])) <= 1e-3 * fabs(tv3[b] - bv3[b]), "target %d: %g vs %g", b,
                                  sum, tv3[b] - bv3[b]);
            }
        }
        methods[k]->release(state);
        free(v3), free(g3), free(v1), free(g1);
    }
    fixture_close(&fx);
}
END_TEST

static Suite *backward_suite(void) {
    Suite *s = suite_create("backward");
    TCase *tc = tcase_create("engine");
    tcase_add_test(tc, test_gradient_sites_fd);
    tcase_add_test(tc, test_targets_fd);
    tcase_add_test(tc, test_batched_targets);
    tcase_add_test(tc, test_multi_sequence_pass);
    tcase_add_test(tc, test_frozen_variants_fd);
    tcase_add_test(tc, test_seed_at_site_and_upstream);
    tcase_add_test(tc, test_longer_prompt_fd);
    tcase_add_test(tc, test_method_vtable_batched);
    tcase_set_timeout(tc, 600);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(backward_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
