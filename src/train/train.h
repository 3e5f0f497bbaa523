/* The training engine (issue 5): parameters in one array, the batched forward (the engine's
 * agi_forward over an ag_model whose weight pointers point into that array), softmax
 * cross-entropy, the reverse pass with weight gradients for every op (the engine's own reverse
 * pass, agi_backward_weights in engine/backward.h: one layer loop for attribution and
 * training), AdamW with decoupled weight decay, a cosine schedule with linear warm-up,
 * global-norm gradient clipping and checkpoints.
 *
 * Parameter layout (one float array, llama2.c order; weights [out][in] row-major):
 *   token_embedding [V][D]
 *   per layer l: rms_att [D], wq [D][D], wk [KV][D], wv [KV][D], wo [D][D], rms_ffn [D],
 *                w1 [Hd][D], w2 [D][Hd], w3 [Hd][D]
 *   rms_final [D]
 *   wcls [V][D]              (absent when the classifier is the embedding)
 * Gradients, and AdamW's first and second moments, use the same layout.
 *
 * Weight gradients (N = B*T rows; computed by engine/backward.c with the ops of engine/ops.h):
 *   linear y = x W^T          dW += dy^T x             (agi_linear_dw, one GEMM)
 *   RMSNorm out = x r g       dg_i += sum_n dout[n,i] x[n,i] r[n]   (agi_rmsnorm_dgain)
 *   embedding x = E[tok]      dE[tok[n]] += dx[n]      (agi_embed_backward)
 *   classifier logits = xfin Wcls^T: dWcls += dlogits^T xfin (into dE when shared)
 *
 * Determinism: every reduction runs in a fixed order on one thread; BLAS is the only
 * parallel part, so a run is bit-reproducible for a given seed and OpenBLAS thread count. */
#ifndef AGI_TRAIN_H
#define AGI_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/acts.h"
#include "engine/backward.h"
#include "model/model.h"

/* One named tensor of the layout. */
typedef struct agi_ptensor {
    char name[40];  /* GGUF-style name, e.g. "blk.0.attn_q" */
    size_t offset;  /* in floats */
    size_t count;
    int rows, cols; /* cols = 1 for vectors */
    int decay;      /* 1: matrices (weight decay applies), 0: RMSNorm gains */
} agi_ptensor;

typedef struct agi_layout {
    agi_config cfg;
    int shared_classifier;
    size_t n_params;
    agi_ptensor *t;
    int n_t;
} agi_layout;

ag_status agi_layout_init(agi_layout *lay, const agi_config *cfg, int shared_classifier, const char *func);
void agi_layout_free(agi_layout *lay);

/* An ag_model whose weights point into `base` (laid out as above). It owns nothing but its
 * name and layer table; ag_model_free releases it (and any tokenizer attached to it). */
ag_status agi_model_view(ag_model **out, const agi_layout *lay, const float *base, const char *name, const char *func);
void agi_model_view_bind(ag_model *m, const agi_layout *lay, const float *base);
/* The same binding for gradients: g's tensors point into `base` (g->layers: n_layers entries,
 * allocated by the caller; wcls == token_embedding when the classifier is shared). */
void agi_grads_bind(agi_weight_grads *g, const agi_layout *lay, float *base);

/* llama2.c-style initialisation: N(0, 0.02) for matrices, N(0, 0.02/sqrt(2L)) for the
 * residual projections wo and w2, 1 for RMSNorm gains. Deterministic for `seed`. */
void agi_params_init(const agi_layout *lay, float *params, uint64_t seed);

/* Batched forward + loss + backward for B sequences of T positions. */
typedef struct agi_trainer {
    agi_layout lay;
    int B, T;
    float *params, *grads; /* [n_params] each */
    ag_model *view;        /* weights -> params */
    agi_acts acts;         /* B x T, every pattern kept, logits on */
    agi_backward bw;       /* the engine's reverse pass over acts (its workspace) */
    agi_weight_grads wg;   /* -> grads */
} agi_trainer;

ag_status agi_trainer_create(agi_trainer **out, const agi_config *cfg, int shared_classifier, int B, int T,
                             const char *func);
void agi_trainer_free(agi_trainer *t);

/* inputs[B*T], targets[B*T] (row b*T+p; target < 0 = not scored). Runs the forward and
 * returns the mean cross-entropy over scored rows (0 when none). With want_grad, also
 * overwrites t->grads with its gradient (agi_backward_weights from d loss / d logits). */
double agi_trainer_loss(agi_trainer *t, const int32_t *inputs, const int32_t *targets, int want_grad);

/* The global L2 norm of t->grads, in double. */
double agi_grad_norm(const float *g, size_t n);

/* ---- optimiser --------------------------------------------------------------------------- */

typedef struct agi_adamw {
    float lr, beta1, beta2, eps, weight_decay;
} agi_adamw;

/* One AdamW step (PyTorch's form: p -= lr*wd*p for decayed tensors, then
 * p -= lr * mhat / (sqrt(vhat) + eps)); `step` counts from 1 (bias correction). */
void agi_adamw_step(const agi_layout *lay, float *params, const float *grads, float *m, float *v, int64_t step,
                    const agi_adamw *opt);

/* Linear warm-up to lr_max over `warmup` steps, then a cosine decay to lr_min at `total`.
 * `step` counts from 0. */
float agi_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min);

/* Scale g so that its global norm is at most max_norm (no-op for max_norm <= 0).
 * Returns the norm before clipping. */
double agi_clip_grad(float *g, size_t n, double max_norm);

/* ---- checkpoints ------------------------------------------------------------------------- */

/* File layout (little-endian): "AGTC", u32 version 1, then u32 fields dim, hidden_dim,
 * n_layers, n_heads, n_kv_heads, vocab_size, seq_len, shared_classifier, batch_size; u64
 * fields world_seed, seed, step (steps done), total_steps, n_params; f32 rms_eps,
 * rope_theta; then params, m, v (n_params float32 each). Written to PATH.tmp and renamed. */
typedef struct agi_ckpt_header {
    agi_config cfg;
    int shared_classifier, batch_size;
    uint64_t world_seed, seed, step, total_steps, n_params;
} agi_ckpt_header;

ag_status agi_ckpt_save(const char *path, const agi_ckpt_header *h, const float *params, const float *m,
                        const float *v, const char *func);
/* Read the header; when params/m/v are non-NULL (n_params floats each) also the arrays. */
ag_status agi_ckpt_load(const char *path, agi_ckpt_header *h, float *params, float *m, float *v, const char *func);

#endif
