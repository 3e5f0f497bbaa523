/*
 * transcoder_setup.c — random transcoder sets and graphs on them (see the header).
 */
#include "transcoder_setup.h"

#include <check.h>
#include <math.h>

#include "transcoder/transcoder.h"

/* Standard normal numbers (Box-Muller over an LCG); the state is reset by every set. */
static uint64_t rs = 1;
static double nrand(void) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = (double)(rs >> 11) / 9007199254740992.0;
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = (double)(rs >> 11) / 9007199254740992.0;
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

ag_transcoder *ag_test_random_transcoder(int kind, int act, int read_point, int skip, int F, int k, uint64_t seed) {
    ag_transcoder *tc = NULL;
    int L = 5, D = 64;
    ck_assert_int_eq(agi_tc_alloc(&tc, kind, act, read_point, L, D, F, k, act == AG_ACTIVATION_JUMPRELU, skip, "t"), AG_OK);
    rs = seed;
    for (int l = 0; l < L; l++) {
        agi_tc_layer *ly = &tc->layers[l];
        int no = agi_tc_n_out(tc, l);
        double se = read_point == AG_READ_RESID_MID ? 0.05 : 0.15;
        for (int q = 0; q < F * D; q++) ly->W_enc[q] = (float)(se * nrand());
        for (int q = 0; q < F * no * D; q++) ly->W_dec[q] = (float)(0.1 * nrand());
        for (int q = 0; q < F; q++) ly->b_enc[q] = (float)(-0.5 + 0.2 * nrand());
        for (int q = 0; q < D; q++) ly->b_dec[q] = (float)(0.1 * nrand());
        if (ly->threshold)
            for (int q = 0; q < F; q++) ly->threshold[q] = (float)(0.05 * fabs(nrand()));
        if (skip)
            for (int q = 0; q < D * D; q++) ly->W_skip[q] = (float)(0.02 * nrand());
    }
    return tc;
}

ag_graph *ag_test_transcoder_graph(const ag_trace *t, const ag_transcoder *tc, int32_t max_nodes, int32_t batch_size,
                                   const ag_graph_target *tg, int n_tg) {
    ag_graph_options go;
    ck_assert_int_eq(AG_GRAPH_OPTIONS_INIT(go), AG_OK);
    go.basis = AG_BASIS_TRANSCODERS;
    go.transcoders = tc;
    go.max_feature_nodes = max_nodes;
    if (batch_size > 0) go.batch_size = batch_size;
    go.targets = tg;
    go.n_targets = n_tg;
    ag_graph *g = NULL;
    ag_status st = ag_graph_build(&g, t, &go);
    ck_assert_msg(st == AG_OK, "ag_graph_build = %d: %s", (int)st, ag_last_error());
    return g;
}
