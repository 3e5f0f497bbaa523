/* Influence, thresholds, pruning and scores (src/graph/prune.c) on small hand-made graphs
 * with known answers:
 *  - circuit-tracer's 12-node golden example (tests/test_graph.py: test_small_graph; the
 *    influences [1/12, 1/3, 0, 1/4, 0, 0, 1/3, 0, 1/4, 1/4, 1/6, 0] and the edge scores after
 *    node pruning), as a graph of 5 units, 4 error nodes, 2 embeddings and 1 logit;
 *  - the node and edge masks it gives at several thresholds, including 0 and 1, worked out
 *    by hand; every kept unit has kept in- and out-edges, every kept error a kept out-edge;
 *  - replacement and both completeness scores, worked out by hand;
 *  - the selection-based threshold against a plain sort-based reference on random data. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "graph/graph.h"
#include "suite_run.h"

/* The golden graph: rows (targets) 11 <- {1,3,6,8}, 3 <- {0,1,6}, 1 <- {9,10}, 0 <- {9}, every
 * weight 10 (the influences only see normalised |A|). Nodes: units 0-4, errors 5-8 (L = 2,
 * T = 2), embeddings 9-10, logit 11 with weight 1. */
static ag_graph *golden(double node_thr, double edge_thr) {
    ag_graph *g = calloc(1, sizeof *g);
    g->basis = agi_basis_get(AG_BASIS_NEURONS);
    g->L = 2, g->T = 2, g->D = 4, g->V = 16, g->n_per_pos = 8;
    g->n_units = 5, g->n_errors = 4, g->n_embed = 2, g->n_logits = 1, g->n_nodes = 12;
    g->node_threshold = node_thr, g->edge_threshold = edge_thr;
    g->logits = calloc(1, sizeof *g->logits);
    g->logits[0].weight = 1.0;
    g->logits[0].label = strdup("logit");
    static const int rows[12][4] = {{9, -1}, {9, 10, -1}, {-1}, {0, 1, 6, -1}, {-1}, {-1}, {-1}, {-1}, {-1}, {-1}, {-1}, {1, 3, 6, 8}};
    static const int nrow[12] = {1, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4};
    g->row_ptr = calloc(13, sizeof(int64_t));
    g->col = malloc(16 * sizeof(int32_t));
    g->w = malloc(16 * sizeof(float));
    int64_t k = 0;
    for (int t = 0; t < 12; t++) {
        for (int j = 0; j < nrow[t]; j++) {
            g->col[k] = rows[t][j];
            g->w[k] = (k % 2) ? 10.0f : -10.0f; /* signs do not matter */
            k++;
        }
        g->row_ptr[t + 1] = k;
    }
    g->nnz = k;
    return g;
}

static void check_kept(const ag_graph *g, const int *want_nodes, int n_want) {
    uint8_t want[12] = {0};
    for (int i = 0; i < n_want; i++) want[want_nodes[i]] = 1;
    for (int i = 0; i < 12; i++) ck_assert_msg(g->node_kept[i] == want[i], "node %d kept = %d, want %d", i, g->node_kept[i], want[i]);
    /* invariants: units need a kept in- and out-edge, errors a kept out-edge; kept edges join
     * kept nodes */
    int in[12] = {0}, out[12] = {0};
    for (int t = 0; t < 12; t++)
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++)
            if (g->edge_kept[e]) {
                ck_assert(g->node_kept[t] && g->node_kept[g->col[e]]);
                in[t]++;
                out[g->col[e]]++;
            }
    for (int i = 0; i < 9; i++)
        if (g->node_kept[i]) {
            ck_assert_int_gt(out[i], 0);
            if (i < 5) ck_assert_int_gt(in[i], 0);
        }
    ck_assert(g->node_kept[9] && g->node_kept[10] && g->node_kept[11]); /* always kept */
}

static int n_kept_edges(const ag_graph *g) {
    int n = 0;
    for (int64_t e = 0; e < g->nnz; e++) n += g->edge_kept[e];
    return n;
}

START_TEST(test_golden_influence) {
    ag_graph *g = golden(0.8, 0.98);
    ck_assert_int_eq(agi_graph_prune(g, "test"), AG_OK);
    static const double want[12] = {1.0 / 12, 1.0 / 3, 0, 1.0 / 4, 0, 0, 1.0 / 3, 0, 1.0 / 4, 1.0 / 4, 1.0 / 6, 0};
    for (int i = 0; i < 12; i++) ck_assert_msg(fabs(g->infl[i] - want[i]) < 1e-12, "I[%d] = %.15g, want %.15g", i, g->infl[i], want[i]);
    /* node threshold 0.8 keeps I >= 1/4: units 1, 3, errors 6, 8 (+ embeddings, logit); edge
     * scores after node pruning (circuit-tracer's post_pruning_edge_matrix): 11 <- 1,3,6,8:
     * 1/4; 3 <- 1,6: 1/8; 1 <- 9,10: 3/16. At 0.98 every one of them is kept. */
    static const int keep[] = {1, 3, 6, 8, 9, 10, 11};
    check_kept(g, keep, 7);
    ck_assert_int_eq(n_kept_edges(g), 8);
    /* cumulative rank fractions: the most influential nodes first */
    ck_assert(fabs(g->cum[1] - 0.2) < 1e-12 || fabs(g->cum[6] - 0.2) < 1e-12);
    ck_assert(fabs(g->cum[0] - 1.0) < 1e-12);
    /* scores (worked out by hand, see the file comment of prune.c) */
    ck_assert(fabs(g->replacement - 5.0 / 12.0) < 1e-12);
    ck_assert(fabs(g->completeness - 25.0 / 32.0) < 1e-12);
    ck_assert(fabs(g->completeness_units - 13.0 / 20.0) < 1e-12);
    ag_graph_free(g);
}
END_TEST

START_TEST(test_golden_edge_scores) {
    /* edge threshold 0.8: sorted scores 1/4 x4 (cum 0.615), 3/16 x2 (0.846) -> keep >= 3/16;
     * unit 3 loses its inputs (1/8 each) and is dropped with its out-edge. */
    ag_graph *g = golden(0.8, 0.8);
    ck_assert_int_eq(agi_graph_prune(g, "test"), AG_OK);
    static const int keep[] = {1, 6, 8, 9, 10, 11};
    check_kept(g, keep, 6);
    ck_assert_int_eq(n_kept_edges(g), 5);
    ag_graph_free(g);
    /* 0.6: only the four 1/4 edges into the logit; units 1 and 3 have no kept input */
    g = golden(0.8, 0.6);
    ck_assert_int_eq(agi_graph_prune(g, "test"), AG_OK);
    static const int keep2[] = {6, 8, 9, 10, 11};
    check_kept(g, keep2, 5);
    ck_assert_int_eq(n_kept_edges(g), 2);
    ag_graph_free(g);
}
END_TEST

START_TEST(test_thresholds_0_and_1) {
    /* 0: only the top node(s) (1 and 6, tied at 1/3) and then the top edges (11 <- 1, 6 at
     * 1/2); unit 1 has no kept input and goes. */
    ag_graph *g = golden(0.0, 0.0);
    ck_assert_int_eq(agi_graph_prune(g, "test"), AG_OK);
    static const int keep0[] = {6, 9, 10, 11};
    check_kept(g, keep0, 4);
    ck_assert_int_eq(n_kept_edges(g), 1);
    ag_graph_free(g);
    /* 1: every node and edge with a positive score */
    g = golden(1.0, 1.0);
    ck_assert_int_eq(agi_graph_prune(g, "test"), AG_OK);
    static const int keep1[] = {0, 1, 3, 6, 8, 9, 10, 11};
    check_kept(g, keep1, 8);
    ck_assert_int_eq(n_kept_edges(g), 10);
    ag_graph_free(g);
}
END_TEST

START_TEST(test_not_a_dag) {
    ag_graph *g = golden(0.8, 0.98);
    g->col[0] = 3; /* 0 <- 3 and 3 <- 0: a cycle */
    ck_assert_int_eq(agi_graph_prune(g, "test"), AG_ERR_INTERNAL);
    ag_graph_free(g);
}
END_TEST

/* ---- find_threshold against a sort-based reference ------------------------------------------ */

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static double ref_threshold(const double *s, int n, double thr) {
    double *a = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int m = 0;
    double total = 0.0;
    for (int i = 0; i < n; i++)
        if (s[i] > 0) a[m++] = s[i];
    if (m == 0) {
        free(a);
        return INFINITY;
    }
    qsort(a, (size_t)m, sizeof *a, cmp_desc);
    for (int i = 0; i < m; i++) total += a[i];
    double r = a[m - 1];
    if (thr < 1.0) {
        double cum = 0.0;
        for (int i = 0; i < m; i++) {
            cum += a[i];
            if (cum >= thr * total * (1 - 1e-12)) {
                r = a[i];
                break;
            }
        }
    }
    free(a);
    return r;
}

START_TEST(test_find_threshold_random) {
    uint64_t st = 12345;
    double *s = malloc(sizeof(double) * 5000), *scratch = malloc(sizeof(double) * 5000);
    static const double thr[] = {0.0, 0.1, 0.5, 0.8, 0.98, 0.999, 1.0};
    for (int round = 0; round < 60; round++) {
        int n = 1 + round * 83 % 5000;
        for (int i = 0; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(st >> 11) / 9007199254740992.0;
            /* many ties, some zeros, heavy tail */
            s[i] = round % 3 == 0 ? floor(u * 7) : round % 3 == 1 ? (u < 0.2 ? 0.0 : u * u * u) : exp(20 * u);
        }
        for (size_t t = 0; t < sizeof thr / sizeof thr[0]; t++) {
            double want = ref_threshold(s, n, thr[t]);
            double got = agi_find_threshold(s, n, thr[t], scratch);
            /* the reference's 1e-12 slack can move it by one place where a prefix sum sits at
             * the threshold: then the two values are neighbours in sorted order */
            if (got != want) {
                int between = 0;
                for (int i = 0; i < n; i++) between += s[i] > fmin(got, want) && s[i] < fmax(got, want);
                ck_assert_msg(between == 0, "n %d thr %g: %.17g vs reference %.17g", n, thr[t], got, want);
            }
        }
    }
    /* nothing positive */
    for (int i = 0; i < 10; i++) s[i] = 0.0;
    ck_assert(isinf(agi_find_threshold(s, 10, 0.5, scratch)));
    free(s);
    free(scratch);
}
END_TEST

START_TEST(test_influence_series) {
    /* a chain 0 <- 1 <- 2 <- 3 with a side branch: I by hand */
    int64_t row_ptr[6] = {0, 2, 3, 4, 4, 4};
    int32_t col[4] = {1, 4, 2, 3};
    float w[4] = {3.0f, -1.0f, 2.0f, 5.0f};
    double wt[5] = {1.0, 0, 0, 0, 0}, I[5];
    ck_assert_int_eq(agi_influence(5, row_ptr, col, w, NULL, wt, I), 0);
    ck_assert(fabs(I[1] - 0.75) < 1e-15 && fabs(I[4] - 0.25) < 1e-15);
    ck_assert(fabs(I[2] - 0.75) < 1e-15 && fabs(I[3] - 0.75) < 1e-15 && I[0] == 0.0);
    uint8_t mask[4] = {1, 0, 1, 1}; /* drop 0 <- 4 */
    ck_assert_int_eq(agi_influence(5, row_ptr, col, w, mask, wt, I), 0);
    ck_assert(fabs(I[1] - 1.0) < 1e-15 && I[4] == 0.0 && fabs(I[3] - 1.0) < 1e-15);
}
END_TEST

int main(void) {
    Suite *s = suite_create("prune");
    TCase *tc = tcase_create("prune");
    tcase_add_test(tc, test_golden_influence);
    tcase_add_test(tc, test_golden_edge_scores);
    tcase_add_test(tc, test_thresholds_0_and_1);
    tcase_add_test(tc, test_not_a_dag);
    tcase_add_test(tc, test_find_threshold_random);
    tcase_add_test(tc, test_influence_series);
    suite_add_tcase(s, tc);
    int failed = ag_test_run_suite(s, CK_NORMAL);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
