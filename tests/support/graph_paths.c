/*
 * graph_paths.c — path sums over an attribution graph's edges (see the header).
 */
#include "graph_paths.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "trace_setup.h"

double *ag_test_total_effects(const ag_graph *g, size_t target) {
    size_t N = ag_graph_n_nodes(g);
    double *H = calloc(N, sizeof *H), *G = calloc(N, sizeof *G);
    size_t ne;
    ag_edge *row = ag_test_node_edges(g, target, AG_EDGES_IN, &ne);
    for (size_t k = 0; k < ne; k++) H[row[k].source] += row[k].weight;
    free(row);
    for (size_t t = N; t-- > 0;) {
        ag_node_info tn = ag_test_node_info(g, t);
        if (tn.kind != AG_NODE_UNIT) continue;
        G[t] = tn.activation != 0.0 ? H[t] / tn.activation : 0.0;
        if (G[t] == 0.0) continue;
        row = ag_test_node_edges(g, t, AG_EDGES_IN, &ne);
        for (size_t k = 0; k < ne; k++) H[row[k].source] += G[t] * row[k].weight;
        free(row);
    }
    free(G);
    return H;
}

double ag_test_check_scores(const ag_graph *g, double tol) {
    size_t N = ag_graph_n_nodes(g);
    ck_assert_uint_gt(N, 0);
    double *w = calloc(N, sizeof *w), *rs = calloc(N, sizeof *rs), *es = calloc(N, sizeof *es);
    double *I = calloc(N, sizeof *I), *x = calloc(N, sizeof *x), *y = calloc(N, sizeof *y);
    int *kind = calloc(N, sizeof *kind);
    ag_edge **rows = calloc(N, sizeof *rows);
    size_t *nr = calloc(N, sizeof *nr);
    ck_assert(w && rs && es && I && x && y && kind && rows && nr);
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni = ag_test_node_info(g, i);
        kind[i] = ni.kind;
        w[i] = ni.kind == AG_NODE_LOGIT ? ni.weight : 0.0;
        x[i] = w[i];
    }
    for (size_t i = 0; i < N; i++) {
        rows[i] = ag_test_node_edges(g, i, AG_EDGES_IN, &nr[i]);
        for (size_t k = 0; k < nr[i]; k++) {
            rs[i] += fabs(rows[i][k].weight);
            if (kind[rows[i][k].source] == AG_NODE_ERROR) es[i] += fabs(rows[i][k].weight);
        }
    }
    /* I = sum_{k >= 1} w Â^k: on a DAG the series ends after at most N terms */
    size_t it = 0;
    for (int any = 1; any; it++) {
        ck_assert_msg(it <= N, "the influence series does not end: the graph has a cycle");
        any = 0;
        for (size_t i = 0; i < N; i++) y[i] = 0.0;
        for (size_t t = 0; t < N; t++)
            if (x[t] != 0.0)
                for (size_t k = 0; k < nr[t]; k++) y[rows[t][k].source] += x[t] * fabs(rows[t][k].weight) / fmax(rs[t], 1e-10);
        for (size_t i = 0; i < N; i++) {
            I[i] += y[i];
            x[i] = y[i];
            any |= y[i] != 0.0;
        }
    }
    double emb = 0.0, err = 0.0, num = 0.0, den = 0.0, num_u = 0.0, den_u = 0.0, total = 0.0, Imax = 0.0;
    for (size_t i = 0; i < N; i++) {
        if (kind[i] == AG_NODE_EMBEDDING) emb += I[i];
        if (kind[i] == AG_NODE_ERROR) err += I[i];
        double frac = 1.0 - es[i] / fmax(rs[i], 1e-10), wt = I[i] + w[i];
        num += frac * wt;
        den += wt;
        if (kind[i] == AG_NODE_UNIT || kind[i] == AG_NODE_LOGIT) num_u += frac * wt, den_u += wt;
        total += I[i];
        Imax = fmax(Imax, I[i]);
    }
    ck_assert_msg(emb > 0.0 && den > 0.0 && den_u > 0.0, "no influence reaches the embeddings");
    /* every node: its raw influence, and its cumulative rank fraction (nodes sorted by
     * decreasing influence; with ties the fraction lies between the two ends of the tie) */
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni = ag_test_node_info(g, i);
        ck_assert_msg(fabs(ni.influence_raw - I[i]) <= tol * Imax, "node %s: influence %.12g, reference %.12g", ni.id,
                      ni.influence_raw, I[i]);
        double above = 0.0, tie = 0.0;
        for (size_t j = 0; j < N; j++) {
            if (fabs(I[j] - I[i]) <= tol * Imax) tie += I[j];
            else if (I[j] > I[i]) above += I[j];
        }
        ck_assert_msg(ni.influence * total >= above - tol * total && ni.influence * total <= above + tie + tol * total,
                      "node %s: cumulative influence %.12g, reference in [%.12g, %.12g]", ni.id, ni.influence, above / total,
                      (above + tie) / total);
    }
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ck_assert_int_eq(ag_graph_get_info(g, &gi), AG_OK);
    double rep = emb / (emb + err), comp = num / den, comp_u = num_u / den_u;
    ck_assert_msg(fabs(gi.replacement_score - rep) <= tol * rep, "replacement %.12g, reference %.12g", gi.replacement_score, rep);
    ck_assert_msg(fabs(gi.completeness_score - comp) <= tol * comp, "completeness %.12g, reference %.12g", gi.completeness_score,
                  comp);
    ck_assert_msg(fabs(gi.completeness_score_units_only - comp_u) <= tol * comp_u, "completeness (units) %.12g, reference %.12g",
                  gi.completeness_score_units_only, comp_u);
    for (size_t i = 0; i < N; i++) free(rows[i]);
    free(rows);
    free(nr);
    free(kind);
    free(w);
    free(rs);
    free(es);
    free(I);
    free(x);
    free(y);
    return rep;
}
