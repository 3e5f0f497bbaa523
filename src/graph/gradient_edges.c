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
#include "engine/forward.h"
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

/* ---- ig: the gradient edges averaged along alpha · embeddings ------------------------------
 * EAP-IG's scheme on the graph's direct effects: A[t,s] = v_s · (1/m) sum_k d t / d mlp_out(s)
 * at the input alpha_k · x_0, alpha_k = (k + 1/2) / m, with the real model (MLP outputs held
 * fixed at their values on the path) and v_s the traced written vector (the path starts at
 * zero embeddings, where every activation is zero: no biases). Near alpha = 0 the RMSNorms
 * enter their eps regime, so a few nodes can be far from the integral; more ig_steps help. */
ag_status agi_ig_vjp(const ag_graph *g, const ag_trace *tr, int B, const int *t_layer, const int *t_pos,
                     const int *t_idx, agi_frozen_cb cb, void *user, double *flops, const char *func) {
    const ag_model *m = tr->model;
    const agi_config *c = &m->cfg;
    int L = c->n_layers, D = c->dim, Hd = c->hidden_dim, T = tr->acts.T, M = g->ig_steps;
    if (B <= 0) return AG_OK;
    size_t n = (size_t)B * T * D;
    agi_acts *path = agi_calloc((size_t)M, sizeof *path, func);
    agi_seed *seeds = agi_calloc((size_t)B, sizeof *seeds, func);
    float *onehot = agi_calloc((size_t)B * Hd, sizeof(float), func);
    float *grad = agi_malloc(sizeof(float) * n, func), *avg = agi_malloc(sizeof(float) * n, func);
    agi_backward bw;
    memset(&bw, 0, sizeof bw);
    ag_status st = AG_OK;
    int made = 0;
    if (!path || !seeds || !onehot || !grad || !avg) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    /* the forward caches along the path */
    for (int k = 0; k < M; k++, made++) {
        st = agi_acts_alloc(&path[k], c, 1, T, T, 0, func);
        if (st != AG_OK) goto out;
        memcpy(path[k].tokens, tr->acts.tokens, sizeof(int32_t) * (size_t)T);
        agi_forward_embed(m, &path[k], 0, T);
        float alpha = (float)((k + 0.5) / M);
        for (size_t i = 0; i < (size_t)T * D; i++) path[k].x[i] *= alpha;
        agi_forward_from(m, &path[k], 0, 0, T);
        if (flops) *flops += agi_forward_flops_per_seq(c, T, 0);
    }
    for (int b = 0; b < B; b++) {
        if (t_layer[b] >= L) {
            seeds[b] = (agi_seed){b, AGI_STATION_FINAL(c), T - 1, 1.0f, g->logits[t_idx[b]].wvec};
        } else {
            onehot[(size_t)b * Hd + t_idx[b]] = 1.0f;
            seeds[b] = (agi_seed){b, agi_station(c, AG_SITE_MLP, t_layer[b]), t_pos[b], 1.0f, onehot + (size_t)b * Hd};
        }
    }
    st = agi_backward_init(&bw, m, &path[0], B, func);
    if (st != AG_OK) goto out;
    bw.flags = AGI_BW_NO_MLP;
    int n_act = 0;
    for (int l = L - 1; l >= -1; l--) {
        while (n_act < B && t_layer[n_act] > l) n_act++;
        if (n_act == 0) continue;
        memset(avg, 0, sizeof(float) * n);
        for (int k = 0; k < M; k++) {
            bw.a = &path[k]; /* the same workspace, another point of the path */
            if (l >= 0) agi_backward_run(&bw, seeds, B, AG_SITE_RESID, l + 1, grad);
            else agi_backward_run(&bw, seeds, B, AG_SITE_EMBED, 0, grad);
            for (size_t i = 0; i < n; i++) avg[i] += grad[i];
        }
        float inv = 1.0f / (float)M;
        for (size_t i = 0; i < n; i++) avg[i] *= inv;
        int rc = cb(user, l, avg, l >= 0 ? n_act : B, T);
        if (rc) {
            st = (ag_status)rc;
            goto out;
        }
    }
    if (flops) *flops += bw.flops;
out:
    agi_backward_free(&bw);
    for (int k = 0; k < made; k++) agi_acts_free(&path[k]);
    free(path);
    free(seeds);
    free(onehot);
    free(grad);
    free(avg);
    return st;
}
