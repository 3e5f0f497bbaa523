/* The real model's reverse pass over cached activations (not weights), batched over B
 * cotangent sequences: every backward matmul is one GEMM over all B*T rows (the weights are
 * shared), while activation-dependent ops (norms, attention, SwiGLU) read, for cotangent
 * sequence c, the activations of forward sequence act_of(c).
 *
 * Two uses:
 *   - B targets on one trace: acts has B = 1, every cotangent sequence reads sequence 0;
 *   - integrated gradients: acts has one sequence per quadrature node (site overridden by
 *     baseline + alpha (input - baseline)), cotangent sequence c reads sequence c (or, for
 *     several targets per node, c % n_nodes).
 *
 * Stations order the points of the network in forward order (DESIGN §1.1):
 *   resid.l = 4l, attn.l = 4l+1, mid.l = 4l+2, mlp.l = 4l+3, resid.L = 4L, final = 4L+1,
 * where "final" is the output of the final RMSNorm (xfin), the read point of every logit.
 * embed is resid.0. A cotangent *seed* enters at a station (one position of one cotangent
 * sequence); the pass runs from the highest seed down to the site and returns the gradient
 * there. Seeds below the site are ignored (they cannot depend on it).
 *
 * Training uses the same pass through agi_backward_weights: a dense cotangent at the logits,
 * run down to the embeddings, with every weight's gradient accumulated on the way (the
 * weight-gradient GEMMs run only then; the activation-only path above never does them). */
#ifndef AGI_BACKWARD_H
#define AGI_BACKWARD_H

#include "engine/acts.h"

/* Station of a site (AG_SITE_* kind, layer); AGI_STATION_FINAL for xfin. */
int agi_station(const agi_config *c, int kind, int layer);
#define AGI_STATION_FINAL(c) (4 * (c)->n_layers + 1)
/* Width of one position's row at a site: D, or Hd for AG_SITE_MLP. */
int agi_site_width(const agi_config *c, int kind);
/* Block b's [T][width] array of a site inside acts (xfin for kind 0 = final). */
float *agi_site_ptr(const agi_acts *a, const agi_config *c, int kind, int layer, int b);

/* One cotangent injection: d f / d (station row `position` of cotangent sequence `block`)
 * = scale * vec (vec has the station's width; xfin: D). */
typedef struct agi_seed {
    int block;
    int station;
    int position;
    float scale;
    const float *vec;
} agi_seed;

/* Linearisations (DESIGN §1.2's local replacement model) — the default is the real model. */
enum {
    AGI_BW_FREEZE_NORMS = 1u << 0, /* norm scales r held constant */
    AGI_BW_FREEZE_ATTN = 1u << 1,  /* attention patterns held constant: only the OV path */
    AGI_BW_FREEZE_GATES = 1u << 2, /* SwiGLU gate factors silu(gate) held constant */
    AGI_BW_NO_MLP = 1u << 3        /* MLP outputs held fixed: no gradient through any MLP (the
                                      gradient *at* an mlp site and unit seeds still work) */
};

typedef struct agi_backward {
    const ag_model *m;
    const agi_acts *a;   /* forward activations (every pattern kept: a->keep_att) */
    int B;               /* cotangent sequences */
    const int *act_of;   /* [B] forward sequence of each cotangent sequence, or NULL: c % a->B */
    unsigned flags;      /* AGI_BW_* */
    double flops;        /* matmul FLOPs done so far (multiply-add = 2) */
    /* workspace, [B*T] rows each */
    float *dres, *dD, *dq, *dk, *dv, *dn, *dgate, *dup, *scratch;
    float *mem;
    double *gacc; /* [D] RMSNorm gain-gradient accumulator (agi_backward_weights) */
} agi_backward;

/* Allocate the workspace for B cotangent sequences over `a`. Errors: AG_ERR_OUT_OF_MEMORY. */
ag_status agi_backward_init(agi_backward *w, const ag_model *m, const agi_acts *a, int B, const char *func);
void agi_backward_free(agi_backward *w);

/* Run the reverse pass for the given seeds and write grad[B][T][width(site)] =
 * d (sum of block c's seeds . their stations) / d site, block by block (overwrites grad).
 * The site is (kind, layer) with kind an AG_SITE_* value (callers validate layers). */
void agi_backward_run(agi_backward *w, const agi_seed *seeds, int n_seeds, int site_kind, int site_layer,
                      float *grad);

/* Weight gradients, laid out like the weights they belong to (model.h: agi_layer_weights,
 * agi_weights; matrices [out][in] row-major, RMSNorm gains [D]). */
typedef struct agi_layer_grads {
    float *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3;
} agi_layer_grads;

typedef struct agi_weight_grads {
    float *token_embedding;  /* [V][D] */
    agi_layer_grads *layers; /* [L] */
    float *rms_final;        /* [D] */
    float *wcls;             /* [V][D] (== token_embedding when the classifier is shared) */
} agi_weight_grads;

/* The reverse pass of the whole model with weight gradients (training): from
 * dlogits[B*T][V] = d f / d logits (logits = xfin · Wcls^T) down to the embeddings, adding
 * d f / d W into every tensor of *g (+=; callers zero it first). The layer loop is
 * agi_backward_run's. Requires the real model (flags 0) and cotangent sequence c reading
 * forward sequence c (w->B == a->B, act_of NULL): every weight-gradient GEMM is one
 * dW += dy^T x over all B*T rows. */
void agi_backward_weights(agi_backward *w, const float *dlogits, const agi_weight_grads *g);

/* FLOPs of one full backward pass of one sequence of T positions from the final norm to the
 * embeddings (matmuls only; used by benchmarks and stats). */
double agi_backward_flops_per_seq(const agi_config *c, int T);
/* FLOPs of agi_forward_from(l0) for one sequence, without logits. */
double agi_forward_flops_per_seq(const agi_config *c, int T, int l0);

#endif
