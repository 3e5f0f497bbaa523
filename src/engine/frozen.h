/* The frozen local-replacement VJP (DESIGN §1.2), batched over B target cotangents that share
 * one trace.
 *
 * In the local replacement model every norm scale r, every attention pattern P and every
 * SwiGLU gate factor silu(W1 u) is held at its traced value, and every MLP output is held
 * fixed (it is decomposed into its own unit and error nodes). What remains between the
 * sources (embeddings x_0[p], MLP outputs mlp_out[l][p]) and the targets' read points is the
 * residual stream with the attention OV path only:
 *
 *   x_l^mid = x_l + W_O · heads,  heads_h[q] = sum_k P[l,h,q,k] · v_h[k],  v = W_V (x_l ⊙ r_att ⊙ g_att)
 *   x_{l+1} = x_l^mid + mlp_out[l]           (mlp_out[l] a source, held fixed)
 *
 * A target reads a direction d at a site:  a unit of block l reads at x_l^mid[p]
 * (target layer l), a logit reads at the final residual x_L[p] (target layer L = n_layers).
 * Injecting d there and running this linear map backwards gives, at x_{l+1}, the cotangent
 * of mlp_out[l] for every source layer l < target layer, and at x_0 the cotangent of the
 * embeddings. A source's edge is the dot of that cotangent with the source's written vector.
 *
 * Batching: B targets at once, rows sequence-major (row b*Tp + p), one GEMM per op per
 * layer over the active rows. Work that cannot matter is skipped: a target at (layer l,
 * position p) only needs layers < l and positions <= p, so the batch runs over
 * Tp = 1 + max position positions and, at each layer, only over the targets that have
 * already been injected (targets must be sorted by layer, highest first, so those are a
 * prefix of the batch).
 *
 * The attention step uses agi_attention_backward (ops.c) with frozen_pattern = 1 on a
 * head-major copy of the cotangents ([Tp][H][B][hs], i.e. "head size" B·hs), so each head is
 * one GEMM over all B targets instead of B skinny ones; the norm step uses
 * agi_rmsnorm_backward with frozen_scale = 1.
 *
 * Threads: the workspace belongs to one thread; the trace and model are only read. */
#ifndef AGI_FROZEN_H
#define AGI_FROZEN_H

#include <stddef.h>

#include "engine/trace.h"

typedef struct agi_frozen_ws {
    int Bmax, T, D, KV, H;
    float *g;      /* [Bmax][T][D] the cotangents (gradient at x_l or x_l^mid) */
    float *buf_d;  /* [Bmax][T][D] dheads, then d(attn_in) */
    float *buf_h;  /* [Bmax][T][D] head-major dheads */
    float *buf_kv; /* [Bmax][T][KV] head-major dv */
    float *dv;     /* [Bmax][T][KV] dv, sequence-major */
    float *pat;    /* [H][T][T] compact copy of one layer's patterns for Tp < T */
    float *r_rep;  /* [Bmax][T] replicated norm scales */
    double flops;  /* matmul FLOPs done so far (multiply-add = 2) */
} agi_frozen_ws;

ag_status agi_frozen_ws_init(agi_frozen_ws *ws, const ag_trace *tr, int Bmax, const char *func);
void agi_frozen_ws_free(agi_frozen_ws *ws);
/* Bytes a workspace for Bmax targets over T positions takes. */
size_t agi_frozen_ws_bytes(const agi_config *c, int Bmax, int T);

/* Called once per source layer, top to bottom: `layer` l in [lmax-1 .. 0] with g = the
 * cotangent at x_{l+1} (= of mlp_out[l]), then layer = -1 with g = the cotangent at x_0 (of
 * the embeddings). g holds rows [0, n_active) x [0, Tp) of width D, row b at g + b*Tp*D;
 * rows >= n_active are the targets that read at or below x_{l+1} (they have no sources in
 * layer l) and are not passed. Return nonzero to stop (agi_frozen_vjp then returns that
 * value as the status, which must be a negative ag_status). */
typedef int (*agi_frozen_cb)(void *user, int layer, const float *g, int n_active, int Tp);

/* Run the batched frozen VJP for B <= ws->Bmax targets: target b reads dirs[b*D .. +D) at
 * layer t_layer[b] (0..L-1: x^mid of that block; L: the final residual) and position
 * t_pos[b]. t_layer must be non-increasing. Returns AG_OK or the callback's status. */
ag_status agi_frozen_vjp(agi_frozen_ws *ws, const ag_trace *tr, int B, const int *t_layer, const int *t_pos,
                         const float *dirs, agi_frozen_cb cb, void *user);

/* Read directions (DESIGN §1.2), width D, written to d:
 *  - a neuron i of block l at position p, value n_i under the frozen gate: read at x_l^mid[p],
 *    d = silu(gate_i) · W3[i,:] ⊙ g_ffn · r_ffn[p];  value = n_i.
 *  - a direction w (width D, in the space of the final norm's output, e.g. a W_cls row) at
 *    position p: read at x_L[p], d = w ⊙ g_final · r_fin[p]; value = w · xfin[p]. */
void agi_frozen_neuron_dir(const ag_trace *tr, int l, int p, int i, float *d);
void agi_frozen_final_dir(const ag_trace *tr, int p, const float *w, float *d);

#endif
