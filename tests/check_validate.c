/*
 * check_validate — interventions against attribution graphs (issue #7 §3, §5):
 *   - direct mode reproduces the adjacency: doubling a unit (or an embedding, or adding an
 *     error vector) changes every target by that source's column of A (<= 1e-4 relative);
 *   - linear mode reproduces total effects: ablating a node changes the target logit by the
 *     graph's path sum (computed here by a backward sweep over the graph's edges, independently
 *     of ag_graph_validate's forward sweep);
 *   - ag_graph_validate's report (rows, groups, statistics, JSON) and its argument checks;
 *   - logit-difference and direction targets: the same exactness, and the measured change
 *     equal to the change of logit(a) - logit(b) / direction . final-norm output of the same
 *     ablation run through ag_intervene;
 *   - `attrgraph validate`, and its --target-direction FILE (the classifier rows' difference from
 *     naive_llama's reader, written as text, equals --target-diff; bad files are refused).
 * Independent pieces: W2 and the error vectors come from tests/support/naive_llama's own reader.
 */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "attrgraph.h"
#include "cli_output.h"
#include "graph_paths.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "suite_run.h"

#define STORIES_BIN "models/stories260K.bin"
#define XS_BIN "models/llama2xs_model.bin"
#define TOK512 "models/tok512.bin"

static const int32_t ONCE[5] = {1, 403, 407, 261, 378};

/* ---- helpers ------------------------------------------------------------------------------ */

static ag_graph *graph_of(const ag_trace *t, int32_t max_nodes) {
    ag_graph_options o;
    ck_assert_int_eq(AG_GRAPH_OPTIONS_INIT(o), AG_OK);
    o.max_feature_nodes = max_nodes;
    ag_graph *g = NULL;
    ag_status st = ag_graph_build(&g, t, &o);
    ck_assert_msg(st == AG_OK, "ag_graph_build = %d: %s", (int)st, ag_last_error());
    return g;
}

/* ag_intervene in `mode` (nothing frozen beyond what the mode freezes). */
static ag_intervention_result *run(const ag_trace *t, const ag_intervention *iv, size_t n, int32_t mode) {
    ag_intervene_options o = ag_test_intervene_options(mode, 0, 0, 0);
    return ag_test_intervene(t, iv, n, &o);
}

/* The change of graph target node `tn` (a unit's value or a token logit's demeaned logit). */
static double target_change(const ag_intervention_result *r, const ag_node_info *tn, int Hd, int V) {
    if (tn->kind == AG_NODE_UNIT) return ag_test_result_tensor(r, AG_TENSOR_NEURONS, tn->layer, 1)[(size_t)tn->position * Hd + tn->index];
    const float *d;
    ck_assert_int_eq(ag_intervention_result_logits(r, -1, 1, &d), AG_OK);
    double mean = 0;
    for (int v = 0; v < V; v++) mean += d[v];
    return d[tn->token] - mean / V;
}

/* Unit nodes as a bitmap [L][T][Hd]. */
static unsigned char *unit_nodes(const ag_graph *g, int L, int T, int Hd) {
    unsigned char *b = calloc((size_t)L * T * Hd, 1);
    size_t N = ag_graph_n_nodes(g);
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni = ag_test_node_info(g, i);
        if (ni.kind == AG_NODE_UNIT) b[((size_t)ni.layer * T + ni.position) * Hd + ni.index] = 1;
    }
    return b;
}

/* ---- statistics, recomputed from the rows by their definitions (attrgraph.h) ---------------- */

static double row_measured(const ag_validation_row *r, int32_t mode) {
    return mode == AG_VALIDATE_DIRECT ? r->measured_direct :
           mode == AG_VALIDATE_LINEAR ? r->measured_linear :
           mode == AG_VALIDATE_FREE   ? r->measured_free :
                                        r->measured_free_frozen_attention;
}

static double ref_pearson(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) mx += x[i] / (double)n, my += y[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return n < 2 || sxx <= 0 || syy <= 0 ? NAN : sxy / sqrt(sxx * syy);
}

/* average ranks, counted naively: values below, plus half the other equal ones */
static void ref_ranks(const double *x, size_t n, double *r) {
    for (size_t i = 0; i < n; i++) {
        double below = 0, equal = 0;
        for (size_t j = 0; j < n; j++) below += x[j] < x[i], equal += x[j] == x[i];
        r[i] = below + 0.5 * (equal - 1);
    }
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void expect_stat(const char *name, double got, double want, int32_t mode) {
    if (isnan(want)) ck_assert_msg(isnan(got), "mode %d %s: %.12g, reference NAN", mode, name, got);
    else ck_assert_msg(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want)), "mode %d %s: %.12g, reference %.12g", mode, name, got, want);
}

static void check_stats_against_rows(const ag_validation *v, int32_t mode, int32_t versus_total) {
    size_t n = ag_validation_n_rows(v);
    double *m = calloc(4 * n + 1, sizeof *m), *p = m + n, *rm = m + 2 * n, *rp = m + 3 * n;
    double pmax = 0, emax = 0;
    for (size_t i = 0; i < n; i++) {
        ag_validation_row r;
        r.struct_size = sizeof r;
        ck_assert_int_eq(ag_validation_get_row(v, i, &r), AG_OK);
        m[i] = row_measured(&r, mode);
        p[i] = versus_total ? r.predicted_total : r.predicted_direct;
        pmax = fmax(pmax, fabs(p[i]));
        emax = fmax(emax, fabs(m[i] - p[i]));
    }
    size_t agree = 0, counted = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(p[i]) > 1e-6 * pmax) counted++, agree += (m[i] > 0) == (p[i] > 0) && m[i] != 0;
    ref_ranks(m, n, rm);
    ref_ranks(p, n, rp);
    double spearman = ref_pearson(rm, rp, n), pearson = ref_pearson(m, p, n);
    double *re = rm; /* ranks no longer needed */
    for (size_t i = 0; i < n; i++) re[i] = fabs(m[i] - p[i]) / fmax(fabs(p[i]), 1e-3 * pmax);
    qsort(re, n, sizeof *re, cmp_dbl);
    ag_validation_stats s;
    s.struct_size = sizeof s;
    ck_assert_int_eq(ag_validation_get_stats(v, mode, versus_total, &s), AG_OK);
    ck_assert_int_eq(s.mode, mode);
    ck_assert_int_eq(s.versus_total, versus_total);
    ck_assert_int_eq(s.n, (int64_t)n);
    ck_assert(n > 0 && pmax > 0);
    expect_stat("pearson", s.pearson, pearson, mode);
    expect_stat("spearman", s.spearman, spearman, mode);
    expect_stat("sign agreement", s.sign_agreement, counted ? (double)agree / (double)counted : NAN, mode);
    expect_stat("rel_error", s.rel_error, emax / pmax, mode);
    expect_stat("median rel error", s.median_rel_error, n % 2 ? re[n / 2] : 0.5 * (re[n / 2 - 1] + re[n / 2]), mode);
    free(m);
}

/* ---- direct mode = the adjacency columns --------------------------------------------------- */

/* For sources of every kind, the intervention that adds the source's written vector once more
 * (doubling it) must change every row target (units, logits) by exactly its column of A. */
static void check_columns(const char *rel, int32_t max_nodes, int n_src_per_kind) {
    ag_model *m = ag_test_load_model(rel, NULL);
    ag_model_info in = ag_test_model_info(m);
    nl_model *nm = nl_load_bin(ag_test_fixture(rel));
    ck_assert_ptr_nonnull(nm);
    const int T = 5, L = in.n_layers, Hd = in.hidden_dim, V = in.vocab_size, D = in.dim;
    ag_trace *t = ag_test_trace(m, ONCE, T);
    ag_graph *g = graph_of(t, max_nodes);
    size_t N = ag_graph_n_nodes(g);
    unsigned char *isn = unit_nodes(g, L, T, Hd);
    const float *nn = NULL, *emb = NULL;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_RESID, 0, &emb, sh, &nd), AG_OK);
    /* targets: every node with a row */
    size_t *tg = malloc(N * sizeof *tg), ntg = 0;
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni = ag_test_node_info(g, i);
        if (ni.kind == AG_NODE_UNIT || (ni.kind == AG_NODE_LOGIT && ni.token >= 0)) tg[ntg++] = i;
    }
    double *want = malloc(N * sizeof *want), *got = malloc(N * sizeof *got);
    double *errv = malloc((size_t)D * sizeof *errv);
    float *errf = malloc((size_t)D * sizeof *errf);
    int done_kind[5] = {0, 0, 0, 0, 0};
    /* sources: a deterministic spread over the node list, up to n_src_per_kind of each kind */
    for (size_t k = 0; k < N; k++) {
        size_t s = (k * 7919u + 13u) % N;
        ag_node_info sn = ag_test_node_info(g, s);
        if (sn.kind == AG_NODE_LOGIT || done_kind[sn.kind] >= n_src_per_kind) continue;
        ag_intervention iv;
        memset(&iv, 0, sizeof iv);
        iv.position = sn.position;
        if (sn.kind == AG_NODE_UNIT) {
            if (sn.activation == 0.0) continue;
            iv.kind = AG_INTERVENE_SCALE;
            iv.site = AG_SITE_MLP;
            iv.layer = sn.layer;
            iv.index = sn.index;
            iv.value = 2.0f;
        } else if (sn.kind == AG_NODE_EMBEDDING) {
            iv.kind = AG_INTERVENE_ADD;
            iv.site = AG_SITE_EMBED;
            iv.value = 1.0f;
            iv.vector = emb + (size_t)sn.position * D;
        } else { /* error node: its vector = the MLP output of the units that are not nodes (oracle W2) */
            ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_NEURONS, sn.layer, &nn, sh, &nd), AG_OK);
            memset(errv, 0, (size_t)D * sizeof *errv);
            int any = 0;
            for (int i = 0; i < Hd; i++) {
                if (isn[((size_t)sn.layer * T + sn.position) * Hd + i]) continue;
                double a = nn[(size_t)sn.position * Hd + i];
                any |= a != 0.0;
                for (int j = 0; j < D; j++) errv[j] += a * nm->w2[((size_t)sn.layer * D + j) * Hd + i];
            }
            if (!any) continue; /* a zero error node has no column */
            for (int j = 0; j < D; j++) errf[j] = (float)errv[j];
            iv.kind = AG_INTERVENE_ADD;
            iv.site = AG_SITE_RESID;
            iv.layer = sn.layer + 1;
            iv.value = 1.0f;
            iv.vector = errf;
        }
        for (size_t k = 0; k < N; k++) want[k] = 0.0;
        size_t ne;
        ag_edge *col = ag_test_node_edges(g, s, AG_EDGES_OUT, &ne);
        for (size_t k = 0; k < ne; k++) want[col[k].target] = col[k].weight;
        free(col);
        ag_intervention_result *r = run(t, &iv, 1, AG_INTERVENE_DIRECT);
        double emax = 0, wmax = 0;
        for (size_t k = 0; k < ntg; k++) {
            if (tg[k] == s) continue; /* the doubled unit itself: no self edge */
            ag_node_info tn = ag_test_node_info(g, tg[k]);
            got[k] = target_change(r, &tn, Hd, V);
            emax = fmax(emax, fabs(got[k] - want[tg[k]]));
            wmax = fmax(wmax, fabs(want[tg[k]]));
        }
        ag_intervention_result_free(r);
        if (wmax == 0.0) { /* no path to any row target (e.g. a last-layer unit off the last position) */
            ck_assert_msg(emax <= 1e-6, "%s: source %s has an empty column but moves targets by %.3g", rel, sn.id, emax);
            continue;
        }
        ck_assert_msg(emax <= 1e-4 * wmax, "%s (budget %d): source %s: direct-mode changes differ from its column by %.3g (max %.3g)",
                      rel, max_nodes, sn.id, emax, wmax);
        done_kind[sn.kind]++;
    }
    ck_assert_int_ge(done_kind[AG_NODE_UNIT], 1);
    ck_assert_int_ge(done_kind[AG_NODE_EMBEDDING], 1);
    if (max_nodes > 0) ck_assert_int_ge(done_kind[AG_NODE_ERROR], 1);
    free(tg);
    free(want);
    free(got);
    free(errv);
    free(errf);
    free(isn);
    ag_graph_free(g);
    ag_trace_free(t);
    nl_free(nm);
    ag_model_free(m);
}

START_TEST(test_direct_columns_full_graph) { check_columns(STORIES_BIN, ag_test_under_valgrind() ? 300 : 0, ag_test_under_valgrind() ? 2 : 6); }
END_TEST
START_TEST(test_direct_columns_budget_graph) { check_columns(STORIES_BIN, 400, ag_test_under_valgrind() ? 2 : 6); }
END_TEST
START_TEST(test_direct_columns_xs) { check_columns(XS_BIN, ag_test_under_valgrind() ? 200 : 0, ag_test_under_valgrind() ? 1 : 4); }
END_TEST

/* ---- linear mode = path sums ------------------------------------------------------------------- */

START_TEST(test_linear_path_sums) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    const int T = 5, Hd = in.hidden_dim, V = in.vocab_size, D = in.dim;
    const int vg = ag_test_under_valgrind();
    ag_trace *t = ag_test_trace(m, ONCE, T);
    ag_graph *g = graph_of(t, vg ? 300 : 1200); /* with a budget, units off the graph are held (below) */
    size_t N = ag_graph_n_nodes(g);
    unsigned char *isn = unit_nodes(g, in.n_layers, T, Hd);
    size_t target = N - 1;
    ag_node_info tn = ag_test_node_info(g, target);
    ck_assert_int_eq(tn.kind, AG_NODE_LOGIT);
    double *H = ag_test_total_effects(g, target);
    const float *emb;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_RESID, 0, &emb, sh, &nd), AG_OK);
    /* hold units that are not nodes at their trace values (the graph folds them into constant errors) */
    size_t nh = 0;
    ag_intervention *iv = malloc(((size_t)in.n_layers * T * Hd + 1) * sizeof *iv);
    for (int l = 0; l < in.n_layers; l++) {
        const float *nn;
        ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_NEURONS, l, &nn, sh, &nd), AG_OK);
        for (int p = 0; p < T; p++)
            for (int i = 0; i < Hd; i++) {
                if (isn[((size_t)l * T + p) * Hd + i]) continue;
                memset(&iv[nh + 1], 0, sizeof *iv);
                iv[nh + 1] = (ag_intervention){AG_INTERVENE_SET, AG_SITE_MLP, l, p, 0, i, nn[(size_t)p * Hd + i], 0, NULL};
                nh++;
            }
    }
    /* ablate the most influential sources one at a time */
    int tested = 0;
    double *want = malloc(N * sizeof *want), *gotv = malloc(N * sizeof *gotv);
    for (size_t s = 0; s < N && tested < (vg ? 4 : 40); s++) {
        ag_node_info sn = ag_test_node_info(g, s);
        if (sn.kind == AG_NODE_LOGIT || sn.kind == AG_NODE_ERROR || H[s] == 0.0) continue;
        if (sn.kind == AG_NODE_UNIT && (s % 37) != 0) continue; /* a spread of units, every embedding */
        memset(&iv[0], 0, sizeof *iv);
        iv[0].position = sn.position;
        if (sn.kind == AG_NODE_UNIT) {
            iv[0].kind = AG_INTERVENE_SET;
            iv[0].site = AG_SITE_MLP;
            iv[0].layer = sn.layer;
            iv[0].index = sn.index;
        } else {
            iv[0].kind = AG_INTERVENE_ADD;
            iv[0].site = AG_SITE_EMBED;
            iv[0].value = -1.0f;
            iv[0].vector = emb + (size_t)sn.position * D;
        }
        ag_intervention_result *r = run(t, iv, nh + 1, AG_INTERVENE_LINEAR);
        want[tested] = -H[s];
        gotv[tested] = target_change(r, &tn, Hd, V);
        ag_intervention_result_free(r);
        tested++;
    }
    ck_assert_int_ge(tested, 4);
    double e = ag_rel_err_dd(gotv, want, (size_t)tested);
    ck_assert_msg(e <= 1e-4, "linear-mode ablations vs graph path sums: rel err %.3g over %d sources", e, tested);
    free(want);
    free(gotv);
    free(iv);
    free(H);
    free(isn);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- ag_graph_validate ---------------------------------------------------------------------- */

START_TEST(test_validate_report) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    const int vg = ag_test_under_valgrind();
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    ag_graph *g = graph_of(t, vg ? 300 : 0);
    size_t N = ag_graph_n_nodes(g);
    double *H = ag_test_total_effects(g, N - 1);
    /* two groups: the first three units, and a unit with an embedding */
    int64_t members[5];
    int nu = 0;
    for (size_t i = 0; i < N && nu < 4; i++)
        if (ag_test_node_info(g, i).kind == AG_NODE_UNIT && H[i] != 0.0 && i % 11 == 0) members[nu++] = (int64_t)i;
    ck_assert_int_eq(nu, 4);
    members[4] = (int64_t)N - 2; /* an embedding (the last position's) */
    ck_assert_int_eq(ag_test_node_info(g, N - 2).kind, AG_NODE_EMBEDDING);
    int32_t sizes[2] = {3, 2}; /* groups: units 0..2; unit 3 with the embedding */
    const int64_t *all = members;
    ag_validate_options o;
    ck_assert_int_eq(AG_VALIDATE_OPTIONS_INIT(o), AG_OK);
    o.top_k = vg ? 4 : 15;
    o.group_nodes = members;
    o.group_sizes = sizes;
    o.n_groups = 2;
    ag_validation *v = NULL;
    ag_status st = ag_graph_validate(&v, g, t, &o);
    ck_assert_msg(st == AG_OK, "ag_graph_validate = %d: %s", (int)st, ag_last_error());
    ck_assert_uint_eq(ag_validation_n_rows(v), (size_t)o.top_k + 2);
    /* rows: the node rows' predicted totals equal the independent backward sweep's; direct and
     * linear measurements equal the predictions; influence decreasing */
    ag_model_info in = ag_test_model_info(m);
    const int Hd = in.hidden_dim, V = in.vocab_size;
    int free_rows_checked = 0;
    double prev_infl = INFINITY;
    for (size_t i = 0; i < ag_validation_n_rows(v); i++) {
        ag_validation_row r;
        r.struct_size = sizeof r;
        ck_assert_int_eq(ag_validation_get_row(v, i, &r), AG_OK);
        double scale = fmax(1e-3, fabs(r.predicted_total));
        if (r.node >= 0) {
            ck_assert_int_eq(r.group, -1);
            ck_assert(r.influence <= prev_infl);
            prev_infl = r.influence;
            ck_assert_msg(fabs(r.predicted_total + H[r.node]) <= 1e-4 * fmax(1e-3, fabs(H[r.node])),
                          "row %zu: forward-sweep path sum %.9g vs backward sweep %.9g", i, r.predicted_total, -H[r.node]);
        } else {
            ck_assert_int_eq(r.group, (int32_t)i - o.top_k);
        }
        ck_assert_msg(fabs(r.measured_linear - r.predicted_total) <= 1e-4 * scale, "row %zu: linear %.9g vs path sum %.9g", i,
                      r.measured_linear, r.predicted_total);
        ck_assert_msg(fabs(r.measured_direct - r.predicted_direct) <= 1e-4 * fmax(1e-3, fabs(r.predicted_direct)),
                      "row %zu: direct %.9g vs edge %.9g", i, r.measured_direct, r.predicted_direct);
        ck_assert(isfinite(r.measured_free) && isfinite(r.measured_free_frozen_attention));
        /* the real-model measurements of a unit row are the target's change under the same
         * ablation through ag_intervene (attention free, then frozen) */
        if (r.node >= 0 && ag_test_node_info(g, (size_t)r.node).kind == AG_NODE_UNIT) {
            ag_node_info sn = ag_test_node_info(g, (size_t)r.node), tn = ag_test_node_info(g, N - 1);
            ag_intervention abl = ag_test_intervention(AG_INTERVENE_SET, AG_SITE_MLP, sn.layer, sn.position, sn.index, 0.0f);
            for (int fa = 0; fa < 2; fa++) {
                ag_intervene_options io = ag_test_intervene_options(AG_INTERVENE_FREE, fa, 0, 0);
                ag_intervention_result *ir = ag_test_intervene(t, &abl, 1, &io);
                double want = target_change(ir, &tn, Hd, V), got = fa ? r.measured_free_frozen_attention : r.measured_free;
                ck_assert_msg(fabs(got - want) <= 1e-4 * fmax(0.1, fabs(want)), "row %zu %s: validate %.9g vs ag_intervene %.9g", i,
                              fa ? "free, frozen attention" : "free", got, want);
                ag_intervention_result_free(ir);
            }
            free_rows_checked++;
        }
    }
    ck_assert_int_ge(free_rows_checked, 1);
    /* every mode's statistics against both predictions, recomputed from the rows */
    for (int32_t mode = AG_VALIDATE_DIRECT; mode <= AG_VALIDATE_FREE_FROZEN_ATTENTION; mode *= 2)
        for (int32_t vt = 0; vt < 2; vt++) check_stats_against_rows(v, mode, vt);
    /* the groups' direct prediction is the sum of their members' edges to the target */
    {
        size_t ne;
        ag_edge *row = ag_test_node_edges(g, N - 1, AG_EDGES_IN, &ne);
        double sum = 0;
        for (size_t k = 0; k < ne; k++)
            for (int j = 0; j < 3; j++)
                if (row[k].source == all[j]) sum -= row[k].weight;
        free(row);
        ag_validation_row r;
        r.struct_size = sizeof r;
        ck_assert_int_eq(ag_validation_get_row(v, (size_t)o.top_k, &r), AG_OK);
        ck_assert_double_eq_tol(r.predicted_direct, sum, 1e-6 * (1 + fabs(sum)));
    }
    /* statistics */
    ag_validation_stats s;
    s.struct_size = sizeof s;
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_DIRECT, 0, &s), AG_OK);
    ck_assert_int_eq(s.n, o.top_k + 2);
    ck_assert_double_le(s.rel_error, 1e-4);
    ck_assert_double_gt(s.pearson, 0.999999);
    ck_assert_double_eq(s.sign_agreement, 1.0);
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_LINEAR, 1, &s), AG_OK);
    ck_assert_double_le(s.rel_error, 1e-4);
    ck_assert_double_gt(s.spearman, 0.999);
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_FREE, 1, &s), AG_OK);
    ck_assert(s.pearson >= -1.0 && s.pearson <= 1.0);
    ck_assert_int_eq(ag_validation_get_stats(v, 3, 1, &s), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_validation_get_stats(NULL, AG_VALIDATE_FREE, 1, &s), AG_ERR_INVALID_ARGUMENT);
    s.struct_size = 8;
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_FREE, 1, &s), AG_ERR_VERSION);
    s.struct_size = sizeof s;
    ag_validation_row r;
    r.struct_size = sizeof r;
    ck_assert_int_eq(ag_validation_get_row(v, 999, &r), AG_ERR_INVALID_ARGUMENT);
    /* JSON */
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(ag_validation_json(v, &json, &len), AG_OK);
    ck_assert_uint_eq(strlen(json), len);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "nodes")), o.top_k);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "groups")), 2);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "modes")), 4);
    const cJSON *rel = ag_json_get(root, "summary", "linear", "vs_total", "rel_error", NULL);
    ck_assert_ptr_nonnull(rel);
    ck_assert_double_le(rel->valuedouble, 1e-4);
    const cJSON *n0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "nodes"), 0);
    ck_assert_ptr_nonnull(ag_json_get(n0, "measured", "free", NULL));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(n0, "id"));
    cJSON_Delete(root);
    /* deterministic */
    char *json2 = NULL;
    ck_assert_int_eq(ag_validation_json(v, &json2, NULL), AG_OK);
    ck_assert_str_eq(json, json2);
    ag_free(json);
    ag_free(json2);
    ag_validation_free(v);
    ag_validation_free(NULL);
    ck_assert_uint_eq(ag_validation_n_rows(NULL), 0);

    /* one mode only */
    ag_validate_options o1;
    AG_VALIDATE_OPTIONS_INIT(o1);
    o1.top_k = 3;
    o1.modes = AG_VALIDATE_FREE;
    ck_assert_int_eq(ag_graph_validate(&v, g, t, &o1), AG_OK);
    ck_assert_int_eq(ag_validation_get_row(v, 0, &r), AG_OK);
    ck_assert(isnan(r.measured_direct) && isnan(r.measured_linear) && isfinite(r.measured_free));
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_LINEAR, 1, &s), AG_ERR_INVALID_ARGUMENT);
    ag_validation_free(v);
    /* a graph with a node budget: linear mode holds the units folded into error nodes, so it
     * still equals the path sums; error nodes are ablated too */
    ag_graph *gb = graph_of(t, 250);
    o1.top_k = vg ? 4 : 25;
    o1.modes = AG_VALIDATE_LINEAR | AG_VALIDATE_DIRECT;
    ck_assert_int_eq(ag_graph_validate(&v, gb, t, &o1), AG_OK);
    int errors_seen = 0;
    for (size_t i = 0; i < ag_validation_n_rows(v); i++) {
        ck_assert_int_eq(ag_validation_get_row(v, i, &r), AG_OK);
        errors_seen += ag_test_node_info(gb, (size_t)r.node).kind == AG_NODE_ERROR;
    }
    if (!vg) ck_assert_int_ge(errors_seen, 1);
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_LINEAR, 1, &s), AG_OK);
    ck_assert_msg(s.rel_error <= 1e-4, "budget graph: linear vs path sums rel err %.3g", s.rel_error);
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_DIRECT, 0, &s), AG_OK);
    ck_assert_msg(s.rel_error <= 1e-4, "budget graph: direct vs edges rel err %.3g", s.rel_error);
    ag_validation_free(v);
    ag_graph_free(gb);
    free(H);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- logit-difference and direction targets ------------------------------------------------- */

static void check_virtual_target(const ag_graph_target *tg) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    const int vg = ag_test_under_valgrind(), V = in.vocab_size, D = in.dim;
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    ag_graph_options go;
    ck_assert_int_eq(AG_GRAPH_OPTIONS_INIT(go), AG_OK);
    go.max_feature_nodes = vg ? 300 : 0;
    go.targets = tg;
    go.n_targets = 1;
    ag_graph *g = NULL;
    ck_assert_int_eq(ag_graph_build(&g, t, &go), AG_OK);
    size_t N = ag_graph_n_nodes(g);
    ag_node_info tn = ag_test_node_info(g, N - 1);
    ck_assert_int_eq(tn.kind, AG_NODE_LOGIT);
    ck_assert_int_eq(tn.token, -1); /* a virtual target */
    double *H = ag_test_total_effects(g, N - 1);
    ag_validate_options o;
    ck_assert_int_eq(AG_VALIDATE_OPTIONS_INIT(o), AG_OK);
    o.top_k = vg ? 4 : 15; /* target -1: the only logit node */
    ag_validation *v = NULL;
    ag_status st = ag_graph_validate(&v, g, t, &o);
    ck_assert_msg(st == AG_OK, "ag_graph_validate: %s", ag_last_error());
    ck_assert_uint_eq(ag_validation_n_rows(v), (size_t)o.top_k);
    int checked_free = 0;
    for (size_t i = 0; i < ag_validation_n_rows(v); i++) {
        ag_validation_row r;
        r.struct_size = sizeof r;
        ck_assert_int_eq(ag_validation_get_row(v, i, &r), AG_OK);
        ck_assert_msg(fabs(r.predicted_total + H[r.node]) <= 1e-4 * fmax(1e-3, fabs(H[r.node])),
                      "kind %d row %zu: path sum %.9g vs backward sweep %.9g", tg->kind, i, r.predicted_total, -H[r.node]);
        ck_assert_msg(fabs(r.measured_linear - r.predicted_total) <= 1e-4 * fmax(1e-3, fabs(r.predicted_total)),
                      "kind %d row %zu: linear %.9g vs path sum %.9g", tg->kind, i, r.measured_linear, r.predicted_total);
        ck_assert_msg(fabs(r.measured_direct - r.predicted_direct) <= 1e-4 * fmax(1e-3, fabs(r.predicted_direct)),
                      "kind %d row %zu: direct %.9g vs edge %.9g", tg->kind, i, r.measured_direct, r.predicted_direct);
        /* the measured changes are the target's own: the same ablation through ag_intervene */
        ag_node_info sn = ag_test_node_info(g, (size_t)r.node);
        if (sn.kind != AG_NODE_UNIT && sn.kind != AG_NODE_EMBEDDING) continue;
        const float *emb;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_RESID, 0, &emb, sh, &nd), AG_OK);
        ag_intervention iv;
        memset(&iv, 0, sizeof iv);
        iv.position = sn.position;
        if (sn.kind == AG_NODE_UNIT) {
            iv.kind = AG_INTERVENE_SET;
            iv.site = AG_SITE_MLP;
            iv.layer = sn.layer;
            iv.index = sn.index;
        } else {
            iv.kind = AG_INTERVENE_ADD;
            iv.site = AG_SITE_EMBED;
            iv.value = -1.0f;
            iv.vector = emb + (size_t)sn.position * D;
        }
        for (int mode = 0; mode < 2; mode++) {
            ag_intervention_result *ir = run(t, &iv, 1, mode ? AG_INTERVENE_FREE : AG_INTERVENE_DIRECT);
            const float *dl, *dx;
            ck_assert_int_eq(ag_intervention_result_logits(ir, -1, 1, &dl), AG_OK);
            ck_assert_int_eq(ag_intervention_result_tensor(ir, AG_TENSOR_FINAL_OUT, 0, 1, &dx, sh, &nd), AG_OK);
            double want = 0;
            if (tg->kind == AG_GRAPH_TARGET_LOGIT_DIFF) {
                want = (double)dl[tg->token] - (double)dl[tg->token_b];
            } else {
                for (int d = 0; d < D; d++) want += (double)tg->direction[d] * dx[(size_t)4 * D + d];
            }
            double got = mode ? r.measured_free : r.measured_direct;
            ck_assert_msg(fabs(got - want) <= 1e-4 * fmax(0.1, fabs(want)), "kind %d row %zu %s: validate %.9g vs ag_intervene %.9g",
                          tg->kind, i, mode ? "free" : "direct", got, want);
            ag_intervention_result_free(ir);
        }
        checked_free++;
    }
    ck_assert_int_ge(checked_free, 1);
    ag_validation_stats s;
    s.struct_size = sizeof s;
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_DIRECT, 0, &s), AG_OK);
    ck_assert_double_le(s.rel_error, 1e-4);
    ck_assert_int_eq(ag_validation_get_stats(v, AG_VALIDATE_LINEAR, 1, &s), AG_OK);
    ck_assert_double_le(s.rel_error, 1e-4);
    char *json = NULL;
    ck_assert_int_eq(ag_validation_json(v, &json, NULL), AG_OK);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(ag_json_get(root, "target", "kind", NULL)->valuestring,
                     tg->kind == AG_GRAPH_TARGET_LOGIT_DIFF ? "logit_diff" : "direction");
    ck_assert_int_eq(ag_json_get(root, "target", "token", NULL)->valueint, tg->kind == AG_GRAPH_TARGET_LOGIT_DIFF ? tg->token : -1);
    ck_assert_int_eq(ag_json_get(root, "target", "token_b", NULL)->valueint, tg->kind == AG_GRAPH_TARGET_LOGIT_DIFF ? tg->token_b : -1);
    ck_assert_int_eq(ag_json_get(root, "target", "node", NULL)->valueint, (int)N - 1);
    cJSON_Delete(root);
    ag_free(json);
    ag_validation_free(v);
    free(H);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_model_free(m);
    (void)V;
}

START_TEST(test_validate_logit_diff_target) {
    ag_graph_target tg;
    memset(&tg, 0, sizeof tg);
    tg.kind = AG_GRAPH_TARGET_LOGIT_DIFF;
    tg.token = 432;  /* "," */
    tg.token_b = 261; /* another token */
    check_virtual_target(&tg);
}
END_TEST

START_TEST(test_validate_direction_target) {
    float dir[64];
    for (int d = 0; d < 64; d++) dir[d] = (float)sin(0.37 * d + 0.5);
    ag_graph_target tg;
    memset(&tg, 0, sizeof tg);
    tg.kind = AG_GRAPH_TARGET_DIRECTION;
    tg.direction = dir;
    check_virtual_target(&tg);
}
END_TEST

static void expect_bad(const ag_graph *g, const ag_trace *t, const ag_validate_options *o, const char *needle) {
    ag_validation *v = (ag_validation *)0x1;
    ag_status st = ag_graph_validate(&v, g, t, o);
    ck_assert_msg(st == AG_ERR_INVALID_ARGUMENT, "expected AG_ERR_INVALID_ARGUMENT for '%s', got %d (%s)", needle, (int)st,
                  ag_last_error());
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(ag_last_error(), needle) != NULL, "message '%s' does not name '%s'", ag_last_error(), needle);
}

START_TEST(test_validate_bad_arguments) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_trace *t = ag_test_trace(m, ONCE, 5);
    ag_graph *g = graph_of(t, 100);
    size_t N = ag_graph_n_nodes(g);
    ag_validate_options o;
    AG_VALIDATE_OPTIONS_INIT(o);
    o.top_k = -1;
    expect_bad(g, t, &o, "top_k");
    AG_VALIDATE_OPTIONS_INIT(o);
    o.modes = 16;
    expect_bad(g, t, &o, "modes");
    o.modes = 0;
    expect_bad(g, t, &o, "modes");
    AG_VALIDATE_OPTIONS_INIT(o);
    o.target = 0; /* a unit, not a logit */
    expect_bad(g, t, &o, "target");
    o.target = (int64_t)N;
    expect_bad(g, t, &o, "target");
    AG_VALIDATE_OPTIONS_INIT(o);
    int64_t bad_nodes[2] = {0, (int64_t)N - 1}; /* the last node is a logit */
    int32_t sz[1] = {2};
    o.group_nodes = bad_nodes;
    o.group_sizes = sz;
    o.n_groups = 1;
    expect_bad(g, t, &o, "group_nodes[1]");
    sz[0] = 0;
    expect_bad(g, t, &o, "group_sizes[0]");
    o.group_sizes = NULL;
    expect_bad(g, t, &o, "group_sizes");
    int64_t twice[2] = {0, 0};
    sz[0] = 2;
    o.group_sizes = sz;
    o.group_nodes = twice;
    expect_bad(g, t, &o, "twice");
    /* a different trace */
    int32_t other[5] = {1, 403, 407, 261, 379};
    ag_trace *t2 = ag_test_trace(m, other, 5), *t3 = ag_test_trace(m, ONCE, 4);
    expect_bad(g, t2, NULL, "trace");
    expect_bad(g, t3, NULL, "trace");
    ag_validation *v = (ag_validation *)0x1;
    ck_assert_int_eq(ag_graph_validate(&v, NULL, t, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(ag_graph_validate(NULL, g, t, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_validate_options_init(NULL, sizeof o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_validate_options_init(&o, 3), AG_ERR_VERSION);
    char *js = (char *)0x1;
    ck_assert_int_eq(ag_validation_json(NULL, &js, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(js);
    ag_trace_free(t2);
    ag_trace_free(t3);
    ag_graph_free(g);
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- attrgraph validate ------------------------------------------------------------------------ */

#ifdef AG_CLI_PATH

/* Write the numbers v[0..n) to a new temporary file, separated by `sep` (every `per_line`
 * numbers a newline), with `prefix` / `suffix` around them; returns its malloc'ed path. */
static char *write_numbers(const double *v, int n, const char *sep, int per_line, const char *prefix, const char *suffix) {
    char *path = strdup("/tmp/ag_h13_dir_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(prefix, f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.9g%s", i ? sep : "", v[i], per_line && (i + 1) % per_line == 0 ? "\n" : "");
    fputs(suffix, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* attrgraph validate's JSON for `target_args` (-q), parsed. */
static cJSON *cli_validate_json(const char *target_args) {
    char args[2048];
    int code;
    snprintf(args, sizeof args, "validate -m '%s' -t 1,403,407,261,378 -k 8 --max-feature-nodes %d %s -q", ag_test_fixture(STORIES_BIN),
             ag_test_under_valgrind() ? 200 : 0, target_args);
    char *out = ag_test_cli_output(args, &code);
    ck_assert_msg(code == 0, "attrgraph %s exited %d", args, code);
    cJSON *root = cJSON_Parse(out);
    ck_assert_msg(root != NULL, "not JSON: %.200s", out);
    free(out);
    return root;
}

/* `attrgraph validate ARGS` fails, with one stderr line that contains every needle (NULL-ended). */
static void expect_cli_error(const char *target_args, ...) {
    char args[2048];
    int code;
    snprintf(args, sizeof args, "validate -m '%s' -t 1,403,407,261,378 %s", ag_test_fixture(STORIES_BIN), target_args);
    char *err = ag_test_cli_stderr(args, &code);
    ck_assert_msg(code != 0, "'%s' should fail", target_args);
    ck_assert_msg(strncmp(err, "attrgraph validate: ", 20) == 0, "'%s': message '%s'", target_args, err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "'%s': not one line: '%s'", target_args, err);
    va_list ap;
    va_start(ap, target_args);
    for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;)
        ck_assert_msg(strstr(err, needle) != NULL, "'%s': message '%s' does not say '%s'", target_args, err, needle);
    va_end(ap);
    free(err);
}

/* --target-direction FILE: the classifier rows' difference w_432 - w_261 read from a file is the
 * same target as --target-diff 432,261 (every prediction and measurement agrees), in any of the
 * documented spellings; bad files are refused with the file and the problem named. */
START_TEST(test_cli_validate_direction) {
    nl_model *nm = nl_load_bin(ag_test_fixture(STORIES_BIN)); /* the classifier rows, read independently */
    ck_assert_ptr_nonnull(nm);
    const int D = nm->c.dim;
    double *w = malloc(sizeof(double) * (size_t)D);
    for (int d = 0; d < D; d++) w[d] = (double)(float)(nm->wcls[(size_t)432 * D + d] - nm->wcls[(size_t)261 * D + d]);
    char *files[3] = {write_numbers(w, D, "", 1, "", ""),             /* one per line */
                      write_numbers(w, D, " \t", 8, "  ", "\n\n"),    /* spaces and tabs, 8 per line */
                      write_numbers(w, D, ", ", 0, "[", "]\n")};      /* a JSON array */
    cJSON *ref = cli_validate_json("--target-diff 432,261");
    const cJSON *rn = cJSON_GetObjectItem(ref, "nodes");
    ck_assert_int_eq(cJSON_GetArraySize(rn), 8);
    double worst = 0.0;
    for (int f = 0; f < 3; f++) {
        char ta[512];
        snprintf(ta, sizeof ta, "--target-direction '%s'", files[f]);
        cJSON *root = cli_validate_json(ta);
        ck_assert_str_eq(ag_json_get(root, "target", "kind", NULL)->valuestring, "direction");
        ck_assert_int_eq(ag_json_get(root, "target", "token", NULL)->valueint, -1);
        double tv = ag_json_get(root, "target", "value", NULL)->valuedouble, rv = ag_json_get(ref, "target", "value", NULL)->valuedouble;
        ck_assert_msg(fabs(tv - rv) <= 1e-5 * fabs(rv), "target value %.9g vs logit difference %.9g", tv, rv);
        const cJSON *nodes = cJSON_GetObjectItem(root, "nodes");
        ck_assert_int_eq(cJSON_GetArraySize(nodes), 8);
        for (int i = 0; i < 8; i++) {
            const cJSON *a = cJSON_GetArrayItem(nodes, i), *b = cJSON_GetArrayItem(rn, i);
            ck_assert_str_eq(cJSON_GetObjectItem(a, "id")->valuestring, cJSON_GetObjectItem(b, "id")->valuestring);
            const char *keys[2] = {"predicted_direct", "predicted_total"};
            for (int k = 0; k < 2; k++) {
                double x = cJSON_GetObjectItem(a, keys[k])->valuedouble, y = cJSON_GetObjectItem(b, keys[k])->valuedouble;
                worst = fmax(worst, fabs(x - y) / fmax(1e-3, fabs(y)));
                ck_assert_msg(fabs(x - y) <= 1e-4 * fmax(1e-3, fabs(y)), "node %d %s: %.9g vs %.9g", i, keys[k], x, y);
            }
            const char *modes[4] = {"direct", "linear", "free", "free_frozen_attention"};
            for (int k = 0; k < 4; k++) {
                double x = ag_json_get(a, "measured", modes[k], NULL)->valuedouble, y = ag_json_get(b, "measured", modes[k], NULL)->valuedouble;
                worst = fmax(worst, fabs(x - y) / fmax(1e-3, fabs(y)));
                ck_assert_msg(fabs(x - y) <= 1e-4 * fmax(1e-3, fabs(y)), "node %d measured %s: %.9g vs %.9g", i, modes[k], x, y);
            }
        }
        const cJSON *d = ag_json_get(root, "summary", "direct", "vs_direct", "rel_error", NULL);
        const cJSON *l = ag_json_get(root, "summary", "linear", "vs_total", "rel_error", NULL);
        ck_assert(d && l && d->valuedouble <= 1e-4 && l->valuedouble <= 1e-4);
        cJSON_Delete(root);
    }
    printf("--target-direction vs --target-diff: worst relative difference %.3g\n", worst);
    cJSON_Delete(ref);
    /* bad files: each message names the file and what is wrong */
    double *w65 = malloc(sizeof(double) * (size_t)(D + 1));
    memcpy(w65, w, sizeof(double) * (size_t)D);
    w65[D] = 1.0;
    double *zero = calloc((size_t)D, sizeof(double));
    char *short_f = write_numbers(w, D - 1, " ", 0, "", "\n"), *long_f = write_numbers(w65, D + 1, " ", 0, "", "\n");
    char *word_f = write_numbers(w, 4, " ", 0, "", " 0.5x"), *nan_f = write_numbers(w, 2, " ", 0, "", " nan 1"),
         *zero_f = write_numbers(zero, D, "\n", 0, "", "\n"), *empty_f = write_numbers(w, 0, "", 0, "", "");
    char a[512];
    snprintf(a, sizeof a, "--target-direction '%s'", short_f);
    expect_cli_error(a, short_f, "63 numbers", "dim is 64", (char *)NULL);
    snprintf(a, sizeof a, "--target-direction '%s'", long_f);
    expect_cli_error(a, long_f, "65 numbers", (char *)NULL);
    snprintf(a, sizeof a, "--target-direction '%s'", word_f);
    expect_cli_error(a, word_f, "number 5", "0.5x", "not a finite float", (char *)NULL);
    snprintf(a, sizeof a, "--target-direction '%s'", nan_f);
    expect_cli_error(a, nan_f, "number 3", "nan", (char *)NULL);
    snprintf(a, sizeof a, "--target-direction '%s'", zero_f);
    expect_cli_error(a, zero_f, "every number is 0", (char *)NULL);
    snprintf(a, sizeof a, "--target-direction '%s'", empty_f);
    expect_cli_error(a, empty_f, "0 numbers", (char *)NULL);
    expect_cli_error("--target-direction /nonexistent/dir.txt", "/nonexistent/dir.txt", "cannot open", (char *)NULL);
    snprintf(a, sizeof a, "--target-direction '%s' --target-diff 432,261", files[0]);
    expect_cli_error(a, "one of --target, --target-diff and --target-direction", (char *)NULL);
    snprintf(a, sizeof a, "--target 5 --target-direction '%s'", files[0]);
    expect_cli_error(a, "one of --target", (char *)NULL);
    char *all[9] = {files[0], files[1], files[2], short_f, long_f, word_f, nan_f, zero_f, empty_f};
    for (int i = 0; i < 9; i++) {
        remove(all[i]);
        free(all[i]);
    }
    free(zero);
    free(w65);
    free(w);
    nl_free(nm);
}
END_TEST

START_TEST(test_cli_validate) {
    char args[1024];
    int code;
    snprintf(args, sizeof args, "validate -m '%s' -t 1,403,407,261,378 -k 6 --max-feature-nodes %d -q", ag_test_fixture(STORIES_BIN),
             ag_test_under_valgrind() ? 200 : 0);
    char *out = ag_test_cli_output(args, &code);
    ck_assert_msg(code == 0, "attrgraph validate exited %d", code);
    cJSON *root = cJSON_Parse(out);
    ck_assert_msg(root != NULL, "not JSON: %.200s", out);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "nodes")), 6);
    const cJSON *d = ag_json_get(root, "summary", "direct", "vs_direct", "rel_error", NULL);
    const cJSON *l = ag_json_get(root, "summary", "linear", "vs_total", "rel_error", NULL);
    ck_assert(d && l && d->valuedouble <= 1e-4 && l->valuedouble <= 1e-4);
    ck_assert_ptr_nonnull(ag_json_get(root, "summary", "free", "vs_total", "pearson", NULL));
    ck_assert_int_eq(ag_json_get(root, "target", "token", NULL)->valueint, 432);
    cJSON_Delete(root);
    free(out);
    /* a group by node ids, one mode, a chosen target */
    snprintf(args, sizeof args, "validate -m '%s' -t 1,403,407,261,378 -k 2 --modes linear --target 261 --group 0_5_0,E_403_1 -q",
             ag_test_fixture(STORIES_BIN));
    out = ag_test_cli_output(args, &code);
    ck_assert_int_eq(code, 0);
    root = cJSON_Parse(out);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "groups")), 1);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "modes")), 1);
    ck_assert_int_eq(ag_json_get(root, "target", "token", NULL)->valueint, 261);
    cJSON_Delete(root);
    free(out);
    /* errors */
    const char *bad[3] = {"--group 9_9_9", "--modes sideways", "-k -1"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "validate -m '%s' -t 1,403,407 %s", ag_test_fixture(STORIES_BIN), bad[i]);
        out = ag_test_cli_output(args, &code);
        ck_assert_msg(code != 0, "'%s' should fail", bad[i]);
        free(out);
    }
}
END_TEST
#endif

/* ---- suite ---------------------------------------------------------------------------------- */

static Suite *validate_suite(void) {
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("graph");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_direct_columns_full_graph);
    tcase_add_test(tc, test_direct_columns_budget_graph);
    tcase_add_test(tc, test_direct_columns_xs);
    tcase_add_test(tc, test_linear_path_sums);
    tcase_add_test(tc, test_validate_report);
    tcase_add_test(tc, test_validate_bad_arguments);
    tcase_add_test(tc, test_validate_logit_diff_target);
    tcase_add_test(tc, test_validate_direction_target);
#ifdef AG_CLI_PATH
    tcase_add_test(tc, test_cli_validate);
    tcase_add_test(tc, test_cli_validate_direction);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(validate_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
