/* Unit bases. Only the neuron basis exists now: unit i of block l at position p is the
 * SwiGLU neuron n_i = silu(gate_i)·(W3_i·u); as a source it writes n_i·W2[:,i] into the MLP
 * output, as a target it reads silu(gate_i)·W3_i through the frozen ffn norm (value n_i with
 * the gate frozen). The neurons reconstruct the MLP output exactly, so there is no
 * reconstruction error; a transcoder basis (issue #6) supplies its own four functions. */
#include <stddef.h>

#include "engine/frozen.h"
#include "graph/graph.h"

static const float *neurons_decoder(const agi_basis *b, const ag_trace *tr, int l, int *ld) {
    (void)b;
    *ld = tr->model->cfg.hidden_dim;
    return tr->model->w.layers[l].w2; /* [D][Hd] */
}

static const float *neurons_acts(const agi_basis *b, const ag_trace *tr, int l) {
    (void)b;
    return AGI_LROW(&tr->acts, n, l, tr->model->cfg.hidden_dim);
}

static void neurons_read_dir(const agi_basis *b, const ag_trace *tr, int l, int p, int i, float *d) {
    (void)b;
    agi_frozen_neuron_dir(tr, l, p, i, d);
}

static const float *neurons_recon_error(const agi_basis *b, const ag_trace *tr, int l, int p) {
    (void)b;
    (void)tr;
    (void)l;
    (void)p;
    return NULL;
}

static const agi_basis NEURONS = {
    .name = "neurons",
    .id = AG_BASIS_NEURONS,
    .decoder = neurons_decoder,
    .acts = neurons_acts,
    .read_dir = neurons_read_dir,
    .recon_error = neurons_recon_error,
};

const agi_basis *agi_basis_get(int32_t id) {
    if (id == AG_BASIS_NEURONS) return &NEURONS;
    return NULL;
}
