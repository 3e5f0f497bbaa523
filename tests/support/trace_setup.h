/*
 * trace_setup — set-up through the public API for the Check suites: a model, its info, a trace
 * and its tensors, graph nodes and edges, interventions and their results. Every helper fails
 * the current test (ck_assert, with ag_last_error() in the message) when the library call does
 * not succeed, so that suites can write the thing they test and not the plumbing.
 *
 * Paths are relative to the shared fixtures directory (ag_test_fixture).
 */
#ifndef AG_TEST_TRACE_SETUP_H
#define AG_TEST_TRACE_SETUP_H

#include <stddef.h>
#include <stdint.h>

#include "attrgraph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- models and traces ----------------------------------------------------------------- */

/* Load fixture `rel` (default options), with the llama2.c tokenizer fixture `tokenizer_rel`
 * attached when it is not NULL. */
ag_model *ag_test_load_model(const char *rel, const char *tokenizer_rel);
/* The model's ag_model_info. */
ag_model_info ag_test_model_info(const ag_model *m);
/* A trace of toks[0..n) (default options). */
ag_trace *ag_test_trace(const ag_model *m, const int32_t *toks, size_t n);
/* The trace's tensor `k` of `layer`; its shape and rank go to shape[3] / *ndim when those are
 * not NULL. */
const float *ag_test_trace_tensor(const ag_trace *t, ag_tensor_kind k, int32_t layer, int64_t *shape, int32_t *ndim);
/* Deterministic pseudo-random tokens: BOS (1), then ids in [3, V) from an LCG seeded with
 * `seed` (a hard, non-story input). */
void ag_test_random_tokens(int32_t *toks, int n, int V, uint64_t seed);

/* A model and a trace of T <= 64 tokens: "Once upon a time" (1 403 407 261 378), then filler
 * ids (100 + 37 i) mod 512. */
typedef struct ag_test_story {
    ag_model *m;
    ag_trace *tr;
    int32_t tok[64];
    int T;
} ag_test_story;
void ag_test_story_open(ag_test_story *fx, const char *model_rel, int T);
void ag_test_story_close(ag_test_story *fx);

/* ---- graphs ---------------------------------------------------------------------------- */

/* The ag_node_info of node i. */
ag_node_info ag_test_node_info(const ag_graph *g, size_t i);
/* All edges into (AG_EDGES_IN) or out of (AG_EDGES_OUT) node i, malloc'ed (free()); the count
 * in *n. */
ag_edge *ag_test_node_edges(const ag_graph *g, size_t i, int32_t flags, size_t *n);

/* ---- interventions ------------------------------------------------------------------------ */

/* One intervention item (no vector). */
ag_intervention ag_test_intervention(int32_t kind, int32_t site, int32_t layer, int32_t pos, int32_t index, float value);
/* Default intervene options with `mode` and the three freeze flags. */
ag_intervene_options ag_test_intervene_options(int32_t mode, int32_t freeze_attention, int32_t freeze_norms, int32_t freeze_gates);
/* ag_intervene of iv[0..n) on trace t (o may be NULL: defaults). */
ag_intervention_result *ag_test_intervene(const ag_trace *t, const ag_intervention *iv, size_t n, const ag_intervene_options *o);
/* The result's tensor `k` of `layer`: the intervened run's value (delta 0) or its change
 * against the trace (delta 1). */
const float *ag_test_result_tensor(const ag_intervention_result *r, ag_tensor_kind k, int32_t layer, int32_t delta);

#ifdef __cplusplus
}
#endif

#endif
