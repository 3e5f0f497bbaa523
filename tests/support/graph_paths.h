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

/* The node influence and the graph scores recomputed from their definitions (circuit-tracer's
 * compute_graph_scores) on the unpruned edges the API returns, in double: Â = |A| with rows
 * normalised (floor 1e-10), I = w (Â + Â² + ...) with w the logits' weights; replacement =
 * I(embeddings) / I(embeddings + errors); completeness = sum_i (1 - error share of row i)
 * (I_i + w_i) / sum_i (I_i + w_i), over all nodes and over units and logits only. Asserts
 * every node's influence_raw, its cumulative rank fraction `influence`, and the three scores
 * of ag_graph_get_info agree to a relative `tol`; returns the replacement score. */
double ag_test_check_scores(const ag_graph *g, double tol);

#ifdef __cplusplus
}
#endif

#endif
