/* Influence, pruning and scores on the sparse rows (DESIGN §1.4; circuit-tracer's
 * prune_graph and compute_graph_scores, circuit-tracer-notes §2-§3).
 *
 * Nothing here is N x N: the influence series is a sequence of sparse vector-matrix
 * products over the stored rows (at most depth-of-the-DAG + 1 of them, about L + 2), and
 * thresholds are found by a weighted quickselect over the positive scores, O(n) expected.
 * Only the node ranks for the `influence` field need a sort, of N nodes (not edges). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "graph/graph.h"

int agi_influence(int64_t n, const int64_t *row_ptr, const int32_t *col, const float *w, const uint8_t *edge_mask,
                  const double *weights, double *I) {
    double *rowabs = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!rowabs || !x || !y) {
        free(rowabs);
        free(x);
        free(y);
        return -2;
    }
    for (int64_t t = 0; t < n; t++) {
        double s = 0.0;
        for (int64_t e = row_ptr[t]; e < row_ptr[t + 1]; e++)
            if (!edge_mask || edge_mask[e]) s += fabs((double)w[e]);
        rowabs[t] = s > 1e-10 ? s : 1e-10;
        x[t] = weights[t];
        I[t] = 0.0;
    }
    int rc = -1;
    for (int64_t it = 0; it <= n + 1; it++) {
        memset(y, 0, sizeof(double) * (size_t)n);
        int any = 0;
        for (int64_t t = 0; t < n; t++) {
            if (x[t] == 0.0) continue;
            double f = x[t] / rowabs[t];
            for (int64_t e = row_ptr[t]; e < row_ptr[t + 1]; e++)
                if (!edge_mask || edge_mask[e]) y[col[e]] += f * fabs((double)w[e]);
        }
        for (int64_t t = 0; t < n; t++) {
            I[t] += y[t];
            any |= y[t] != 0.0;
        }
        if (!any) {
            rc = 0;
            break;
        }
        double *tmp = x;
        x = y;
        y = tmp;
    }
    free(rowabs);
    free(x);
    free(y);
    return rc;
}

double agi_find_threshold(const double *scores, int64_t n, double threshold, double *a) {
    int64_t m = 0;
    double total = 0.0, mn = INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (scores[i] > 0.0) {
            a[m++] = scores[i];
            total += scores[i];
            mn = scores[i] < mn ? scores[i] : mn;
        }
    if (m == 0) return INFINITY;
    if (threshold >= 1.0) return mn;
    double need = threshold * total, acc = 0.0;
    int64_t lo = 0, hi = m; /* the answer is in a[lo..hi); acc = sum of the larger ones */
    while (1) {
        if (hi - lo == 1) return a[lo];
        /* median of three (deterministic) */
        double p0 = a[lo], p1 = a[lo + (hi - lo) / 2], p2 = a[hi - 1];
        double piv = p0 < p1 ? (p1 < p2 ? p1 : (p0 < p2 ? p2 : p0)) : (p0 < p2 ? p0 : (p1 < p2 ? p2 : p1));
        /* three-way partition: [> piv | == piv | < piv] */
        int64_t gt = lo, i = lo, lt = hi;
        while (i < lt) {
            if (a[i] > piv) {
                double t = a[i];
                a[i] = a[gt];
                a[gt] = t;
                gt++;
                i++;
            } else if (a[i] < piv) {
                lt--;
                double t = a[i];
                a[i] = a[lt];
                a[lt] = t;
            } else {
                i++;
            }
        }
        double sum_gt = 0.0;
        for (int64_t k = lo; k < gt; k++) sum_gt += a[k];
        if (gt > lo && acc + sum_gt >= need) {
            hi = gt;
            continue;
        }
        acc += sum_gt;
        if (acc + (double)(lt - gt) * piv >= need || lt == hi) return piv;
        acc += (double)(lt - gt) * piv;
        lo = lt;
    }
}

typedef struct rank_pair {
    double v;
    int64_t i;
} rank_pair;

static int cmp_rank(const void *a, const void *b) {
    const rank_pair *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

ag_status agi_graph_prune(ag_graph *g, const char *func) {
    int64_t n = g->n_nodes, nnz = g->nnz;
    ag_status st = AG_OK;
    double *wt = agi_calloc((size_t)n, sizeof(double), func);
    double *I2 = agi_malloc(sizeof(double) * (size_t)n, func);
    double *scratch = agi_malloc(sizeof(double) * (size_t)(n > nnz ? n : nnz ? nnz : 1), func);
    double *escore = agi_malloc(sizeof(double) * (size_t)(nnz ? nnz : 1), func);
    double *rowabs = agi_malloc(sizeof(double) * (size_t)n, func);
    int64_t *cnt_in = agi_malloc(sizeof(int64_t) * (size_t)n, func);
    int64_t *cnt_out = agi_malloc(sizeof(int64_t) * (size_t)n, func);
    rank_pair *rk = agi_malloc(sizeof(rank_pair) * (size_t)n, func);
    g->infl = agi_malloc(sizeof(double) * (size_t)n, func);
    g->cum = agi_malloc(sizeof(double) * (size_t)n, func);
    g->node_kept = agi_calloc((size_t)n, 1, func);
    g->edge_kept = agi_calloc((size_t)(nnz ? nnz : 1), 1, func);
    if (!wt || !I2 || !scratch || !escore || !rowabs || !cnt_in || !cnt_out || !rk || !g->infl || !g->cum || !g->node_kept ||
        !g->edge_kept) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int k = 0; k < g->n_logits; k++) wt[agi_g_logit_node(g, k)] = g->logits[k].weight;
    int64_t first_fixed = g->n_units + g->n_errors; /* embeddings and logits: always kept */

    /* node influence on the full graph, and the node threshold */
    int rc = agi_influence(n, g->row_ptr, g->col, g->w, NULL, wt, g->infl);
    if (rc) {
        st = rc == -2 ? agi_error(AG_ERR_OUT_OF_MEMORY, func, "influence scratch") :
                        agi_error(AG_ERR_INTERNAL, func, "the influence series did not terminate (the graph is not a DAG)");
        goto out;
    }
    double thr_n = agi_find_threshold(g->infl, n, g->node_threshold, scratch);
    for (int64_t i = 0; i < n; i++) g->node_kept[i] = i >= first_fixed || g->infl[i] >= thr_n;

    /* edges among kept nodes, their influence-weighted scores and the edge threshold */
    uint8_t *pm = g->edge_kept; /* first: the pruned matrix's mask */
    for (int64_t t = 0; t < n; t++)
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++) pm[e] = g->node_kept[t] && g->node_kept[g->col[e]];
    rc = agi_influence(n, g->row_ptr, g->col, g->w, pm, wt, I2);
    if (rc) {
        st = agi_error(rc == -2 ? AG_ERR_OUT_OF_MEMORY : AG_ERR_INTERNAL, func, "influence on the pruned graph failed");
        goto out;
    }
    for (int64_t t = 0; t < n; t++) {
        double s = 0.0;
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++)
            if (pm[e]) s += fabs((double)g->w[e]);
        s = s > 1e-10 ? s : 1e-10;
        double f = (I2[t] + wt[t]) / s;
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++) escore[e] = pm[e] ? fabs((double)g->w[e]) * f : 0.0;
    }
    double thr_e = agi_find_threshold(escore, nnz, g->edge_threshold, scratch);
    for (int64_t e = 0; e < nnz; e++) g->edge_kept[e] = pm[e] && escore[e] > 0.0 && escore[e] >= thr_e;

    /* clean-up: units and errors need a kept outgoing edge, units a kept incoming one */
    for (int changed = 1; changed;) {
        changed = 0;
        memset(cnt_in, 0, sizeof(int64_t) * (size_t)n);
        memset(cnt_out, 0, sizeof(int64_t) * (size_t)n);
        for (int64_t t = 0; t < n; t++)
            for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++)
                if (g->edge_kept[e]) {
                    cnt_in[t]++;
                    cnt_out[g->col[e]]++;
                }
        for (int64_t i = 0; i < first_fixed; i++) {
            if (!g->node_kept[i]) continue;
            if (cnt_out[i] == 0 || (i < g->n_units && cnt_in[i] == 0)) {
                g->node_kept[i] = 0;
                changed = 1;
            }
        }
        if (changed)
            for (int64_t t = 0; t < n; t++)
                for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++)
                    if (g->edge_kept[e] && (!g->node_kept[t] || !g->node_kept[g->col[e]])) g->edge_kept[e] = 0;
    }
    g->n_kept_nodes = 0;
    g->n_kept_edges = 0;
    for (int64_t i = 0; i < n; i++) g->n_kept_nodes += g->node_kept[i];
    for (int64_t e = 0; e < nnz; e++) g->n_kept_edges += g->edge_kept[e];

    /* cumulative influence rank fraction of every node */
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) rk[i] = (rank_pair){g->infl[i], i};
    qsort(rk, (size_t)n, sizeof *rk, cmp_rank);
    for (int64_t i = 0; i < n; i++) total += rk[i].v;
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        acc += rk[i].v;
        g->cum[rk[i].i] = total > 0.0 ? acc / total : 1.0;
    }

    /* scores on the unpruned graph */
    double emb = 0.0, err = 0.0, num = 0.0, den = 0.0, num_u = 0.0, den_u = 0.0;
    for (int64_t i = 0; i < n; i++) {
        int kind = agi_g_kind(g, i);
        if (kind == AG_NODE_EMBEDDING) emb += g->infl[i];
        if (kind == AG_NODE_ERROR) err += g->infl[i];
        double s = 0.0, se = 0.0;
        for (int64_t e = g->row_ptr[i]; e < g->row_ptr[i + 1]; e++) {
            double a = fabs((double)g->w[e]);
            s += a;
            if (agi_g_kind(g, g->col[e]) == AG_NODE_ERROR) se += a;
        }
        double frac = 1.0 - se / (s > 1e-10 ? s : 1e-10);
        double wgt = g->infl[i] + wt[i];
        num += frac * wgt;
        den += wgt;
        if (kind == AG_NODE_UNIT || kind == AG_NODE_LOGIT) {
            num_u += frac * wgt;
            den_u += wgt;
        }
    }
    g->replacement = emb + err > 0.0 ? emb / (emb + err) : 0.0;
    g->completeness = den > 0.0 ? num / den : 0.0;
    g->completeness_units = den_u > 0.0 ? num_u / den_u : 0.0;
out:
    free(wt);
    free(I2);
    free(scratch);
    free(escore);
    free(rowabs);
    free(cnt_in);
    free(cnt_out);
    free(rk);
    return st;
}
