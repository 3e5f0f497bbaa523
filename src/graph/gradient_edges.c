/* The `gradient` edge method (DESIGN §1.3: attribution-patching edges): the same sources,
 * targets and callbacks as the decomposition's frozen VJP, but through the *real* model's
 * Jacobian at the traced input: norm scales, attention patterns (QK path included) and SwiGLU
 * gates are differentiated, not frozen. Every MLP output is still held fixed, so an edge is a
 * direct effect (a path through another unit is a chain of edges): A[t,s] = v_s · d t / d
 * mlp_out(s) with the real model's derivative. Unlike the decomposition these rows do not sum
 * to the targets' values (the model is not linear); an edge is the first-order change of the
 * target when the source's output is scaled, checked against finite differences of the
 * independent oracle with the MLP outputs frozen.
 *
 * Targets: a neuron's value n_i = silu(gate_i)·up_i is seeded at the neurons (its gate now
 * differentiated), a logit direction w at the final norm's output (the norm differentiated).
 *
 * The reverse pass is the backward engine's (src/engine/backward.c, AGI_BW_NO_MLP): it returns
 * the gradient at one site per run, so each batch runs it once per source layer (resid.l+1
 * for the MLP outputs of layer l) and once at the embeddings: L + 1 passes per batch, each
 * from the targets down to that site. That is about L/2 times the decomposition's cost; this
 * method is for comparisons, not for the largest graphs. Neuron basis only. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/backward.h"
#include "graph/graph.h"

ag_status agi_gradient_vjp(const ag_graph *g, const ag_trace *tr, int B, const int *t_layer, const int *t_pos,
                           const int *t_idx, agi_frozen_cb cb, void *user, double *flops, const char *func) {
    const agi_config *c = &tr->model->cfg;
    int L = c->n_layers, D = c->dim, Hd = c->hidden_dim, T = tr->acts.T;
    if (B <= 0) return AG_OK;
    agi_seed *seeds = agi_calloc((size_t)B, sizeof *seeds, func);
    float *onehot = agi_calloc((size_t)B * Hd, sizeof(float), func);
    float *grad = agi_malloc(sizeof(float) * (size_t)B * T * D, func);
    agi_backward bw;
    memset(&bw, 0, sizeof bw);
    ag_status st = AG_OK;
    if (!seeds || !onehot || !grad) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int b = 0; b < B; b++) {
        if (t_layer[b] >= L) { /* a logit: w · xfin at the last position */
            seeds[b] = (agi_seed){b, AGI_STATION_FINAL(c), T - 1, 1.0f, g->logits[t_idx[b]].wvec};
        } else { /* a neuron n_i of block l at position p */
            onehot[(size_t)b * Hd + t_idx[b]] = 1.0f;
            seeds[b] = (agi_seed){b, agi_station(c, AG_SITE_MLP, t_layer[b]), t_pos[b], 1.0f, onehot + (size_t)b * Hd};
        }
    }
    st = agi_backward_init(&bw, tr->model, &tr->acts, B, func);
    if (st != AG_OK) goto out;
    bw.flags = AGI_BW_NO_MLP;
    int n_act = 0;
    for (int l = L - 1; l >= -1; l--) {
        while (n_act < B && t_layer[n_act] > l) n_act++; /* targets reading above MLP output l */
        if (n_act == 0) continue;
        if (l >= 0) agi_backward_run(&bw, seeds, B, AG_SITE_RESID, l + 1, grad);
        else agi_backward_run(&bw, seeds, B, AG_SITE_EMBED, 0, grad);
        int rc = cb(user, l, grad, l >= 0 ? n_act : B, T);
        if (rc) {
            st = (ag_status)rc;
            goto out;
        }
    }
    if (flops) *flops += bw.flops;
out:
    agi_backward_free(&bw);
    free(seeds);
    free(onehot);
    free(grad);
    return st;
}
