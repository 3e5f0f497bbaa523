/*
 * transcoder_setup — random transcoder sets over stories260K and graphs on them, for the
 * suites that test transcoder graphs and interventions on features.
 */
#ifndef AG_TEST_TRANSCODER_SETUP_H
#define AG_TEST_TRANSCODER_SETUP_H

#include <stdint.h>

#include "attrgraph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A random set of F features per layer for stories260K (5 layers of width 64), built with
 * agi_tc_alloc, whose features fire on about a third of the tokens: Gaussian weights (encoder
 * 0.15, or 0.05 when reading resid-mid; decoder 0.1; encoder bias -0.5 + 0.2 N; JumpReLU
 * thresholds 0.05 |N|; skip 0.02) from a generator seeded with `seed`. kind, act and
 * read_point are AG_TRANSCODER_*, AG_ACTIVATION_*, AG_READ_*; k > 0 is TopK's k; skip adds
 * skip connections. */
ag_transcoder *ag_test_random_transcoder(int kind, int act, int read_point, int skip, int F, int k, uint64_t seed);

/* ag_graph_build on trace t in the transcoder basis of tc: max_feature_nodes (0 = all),
 * batch_size (0 = the default) and targets tg[0..n_tg) (NULL / 0 = the default logits). */
ag_graph *ag_test_transcoder_graph(const ag_trace *t, const ag_transcoder *tc, int32_t max_nodes, int32_t batch_size,
                                   const ag_graph_target *tg, int n_tg);

#ifdef __cplusplus
}
#endif

#endif
