/*
 * graph_paths.c — path sums over an attribution graph's edges (see the header).
 */
#include "graph_paths.h"

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
