/*
 * graph_paths — path sums over an attribution graph's edges, an oracle for linear-mode
 * interventions that reads only the graph (ag_graph_node_info / ag_graph_node_edges), not
 * the library's own sweeps (ag_graph_validate runs a forward one).
 */
#ifndef AG_TEST_GRAPH_PATHS_H
#define AG_TEST_GRAPH_PATHS_H

#include <stddef.h>

#include "attrgraph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Backward sweep over the graph's rows for one target node: G_t = d target / d value_t in the
 * graph's linear model (a unit's value is its activation times its incoming edges' sum); the
 * total effect of source s is H[s] = sum_t G_t A[t, s], so ablating s changes the target by
 * -H[s]. Returns H [n_nodes], calloc'ed (free()). */
double *ag_test_total_effects(const ag_graph *g, size_t target);

#ifdef __cplusplus
}
#endif

#endif
