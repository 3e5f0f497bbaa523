/* The model's operations, llm.c style: one function per op named after the math, shapes in
 * the comment, forward first and its backward (vector-Jacobian product) beside it.
 * N = number of rows (batch x positions), D = model width, Hd = MLP width. Every matmul
 * goes through blas.h. Backward functions *accumulate* into input gradients (+=) unless
 * the comment says otherwise, so residual branches add up naturally. */
#ifndef AGI_OPS_H
#define AGI_OPS_H

#include <math.h>
#include <stdint.h>

/* x[N][D] = E[tok[n]] */
void agi_embed_forward(float *x, const int32_t *tok, const float *E, int N, int D);

/* out[N][D] = x * r * g, r[N] = 1/sqrt(mean(x^2) + eps) */
void agi_rmsnorm_forward(float *out, float *r, const float *x, const float *g, int N, int D, float eps);

/* Rotate adjacent pairs (x[2i], x[2i+1]) of each head in place by pos * theta^(-2i/hs).
 * x[N][n_heads*hs]; row n is at position pos0 + n % rows_per_seq. */
void agi_rope_forward(float *x, int N, int n_heads, int hs, int pos0, int rows_per_seq, float theta);

/* Causal attention of one sequence, queries at positions [p0, p1), keys [0, p1):
 *   S = q_h k_h^T / sqrt(hs), P = softmax(S) (causal), out_h = P v_h   for every head h,
 * with GQA: head h reads kv head h / (H / KVH).
 * q: row p at q + p*D; k, v: row p at k + p*KV; out: row p at out + p*D.
 * att: P for query row i (position p0+i) and head h at att + (h*att_rows + i)*att_ld,
 * entries above the diagonal set to 0. */
void agi_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                           int p0, int p1, int H, int KVH, int hs, int att_rows, int att_ld);

/* n[N] = silu(gate[N]) * up[N]  (elementwise, N = rows * Hd) */
void agi_swiglu_forward(float *n, const float *gate, const float *up, long N);

/* y[N] = a[N] + b[N] */
void agi_residual_forward(float *y, const float *a, const float *b, long N);


/* ---- backward (vector-Jacobian products); implemented beside each forward in ops.c ----
 * `frozen` variants are the local replacement model's linear maps (DESIGN §1.2): the norm
 * scale r, the attention pattern P, or the SwiGLU gate factor silu(gate) held constant. */

/* dE[V][D] += dx[n] at row tok[n] for every n < N (the embedding's weight gradient; the
 * gradient *at* the embeddings is dx itself). */
void agi_embed_backward(float *dE, const float *dx, const int32_t *tok, int N, int D);

/* dx[N][D] += VJP of out = x*r*g, r [N] the forward's scales.
 * frozen_scale: dx += dout*r*g (r held constant; x unused, may be NULL). */
void agi_rmsnorm_backward(float *dx, const float *dout, const float *x, const float *g, const float *r,
                          int N, int D, int frozen_scale);

/* The gain's weight gradient: dg[i] += sum_n dout[n][i] * x[n][i] * r[n] over the N rows, summed
 * in double in row order (acc: D doubles of scratch). */
void agi_rmsnorm_dgain(float *dg, double *acc, const float *dout, const float *x, const float *r, int N, int D);

/* In place: dx <- R^T dx, the inverse rotation of agi_rope_forward (same arguments). */
void agi_rope_backward(float *dx, int N, int n_heads, int hs, int pos0, int rows_per_seq, float theta);

/* One sequence of T positions (p0 = 0, p1 = T), layout as agi_attention_forward with
 * att_rows = att_ld = T. Accumulates dq[T][D], dk[T][KV], dv[T][KV] from dout[T][D].
 * frozen_pattern: only the OV path, dv += P^T dout (dq, dk, q, k and scratch unused, may
 * be NULL; v unused too).
 * Heads sharing a kv head (GQA) accumulate into it. scratch: at least T*T floats (unused
 * when frozen_pattern). Every matmul is a GEMM over the T rows of one head. */
void agi_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                            const float *q, const float *k, const float *v, int T, int H, int KVH,
                            int hs, int frozen_pattern, float *scratch);

/* n = silu(gate)*up: dgate += dn*up*silu'(gate), dup += dn*silu(gate).
 * frozen_gate: only dup (dgate and up unused, may be NULL). */
void agi_swiglu_backward(float *dgate, float *dup, const float *dn, const float *gate, const float *up,
                         long N, int frozen_gate);

/* y = a + b: da += dy, db += dy (either may be NULL). */
void agi_residual_backward(float *da, float *db, const float *dy, long N);

static inline float agi_silu(float x) { return x / (1.0f + expf(-x)); }

#endif
