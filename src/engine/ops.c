/* Forward ops (and, beside each, its backward). See ops.h for shapes. */
#include <math.h>
#include <string.h>

#include "engine/blas.h"
#include "engine/ops.h"

/* ---- embedding ------------------------------------------------------------------------ */

void agi_embed_forward(float *x, const int32_t *tok, const float *E, int N, int D) {
    for (int n = 0; n < N; n++) memcpy(x + (long)n * D, E + (long)tok[n] * D, sizeof(float) * (size_t)D);
}

/* dE[V][D] += scatter of dx[N][D] by token: dE[tok[n]] += dx[n]. (The attribution methods
 * read dx itself, the gradient at the embeddings; this is the weight-gradient form.) */
void agi_embed_backward(float *dE, const float *dx, const int32_t *tok, int N, int D) {
    for (int n = 0; n < N; n++) {
        float *e = dE + (long)tok[n] * D;
        const float *d = dx + (long)n * D;
        for (int i = 0; i < D; i++) e[i] += d[i];
    }
}

/* ---- RMSNorm ---------------------------------------------------------------------------- */

void agi_rmsnorm_forward(float *out, float *r, const float *x, const float *g, int N, int D, float eps) {
    for (int n = 0; n < N; n++) {
        const float *xn = x + (long)n * D;
        float *on = out + (long)n * D;
        double ss = 0.0;
        for (int i = 0; i < D; i++) ss += (double)xn[i] * xn[i];
        float rn = (float)(1.0 / sqrt(ss / D + (double)eps));
        r[n] = rn;
        for (int i = 0; i < D; i++) on[i] = xn[i] * rn * g[i];
    }
}

/* out = x*r*g with r = (mean(x^2) + eps)^(-1/2), so dr/dx_i = -r^3 x_i / D and
 *   dx_i += r g_i dout_i - (r^3 / D) x_i sum_j dout_j g_j x_j.
 * frozen_scale: r is a constant, dx_i += r g_i dout_i. Shapes: x, dout, dx [N][D]; g [D];
 * r [N] (the forward's). */
void agi_rmsnorm_backward(float *dx, const float *dout, const float *x, const float *g, const float *r,
                          int N, int D, int frozen_scale) {
    for (int n = 0; n < N; n++) {
        const float *xn = x + (long)n * D, *dn = dout + (long)n * D;
        float *dxn = dx + (long)n * D;
        float rn = r[n];
        if (frozen_scale) {
            for (int i = 0; i < D; i++) dxn[i] += rn * g[i] * dn[i];
            continue;
        }
        double dot = 0.0;
        for (int i = 0; i < D; i++) dot += (double)dn[i] * g[i] * xn[i];
        float c = (float)((double)rn * rn * rn * dot / D);
        for (int i = 0; i < D; i++) dxn[i] += rn * g[i] * dn[i] - c * xn[i];
    }
}

/* out = x*r*g: dg_i += sum_n dout[n][i] x[n][i] r[n] (in double, rows in order). */
void agi_rmsnorm_dgain(float *dg, double *acc, const float *dout, const float *x, const float *r, int N, int D) {
    memset(acc, 0, sizeof(double) * (size_t)D);
    for (int n = 0; n < N; n++) {
        const float *dn = dout + (size_t)n * D, *xn = x + (size_t)n * D;
        double rn = r[n];
        for (int i = 0; i < D; i++) acc[i] += (double)dn[i] * xn[i] * rn;
    }
    for (int i = 0; i < D; i++) dg[i] += (float)acc[i];
}

/* ---- RoPE ------------------------------------------------------------------------------- */

/* x <- R(sign * angle) x for every row: per (position, pair) the angle pos * theta^(-i/hs),
 * its float cos/sin computed once and applied to the rows of that position in every sequence.
 * sign = -1 rotates back (R^T), exactly: only the sine's sign changes. */
static void rope_rotate(float *x, int N, int n_heads, int hs, int pos0, int rows_per_seq, float theta, float sign) {
    int width = n_heads * hs, n_pos = N < rows_per_seq ? N : rows_per_seq;
    for (int t = 0; t < n_pos; t++)
        for (int i = 0; i < hs; i += 2) {
            double ang = (pos0 + t) * pow((double)theta, -(double)i / hs);
            float c = (float)cos(ang), s = sign * (float)sin(ang);
            for (int n = t; n < N; n += rows_per_seq)
                for (int h = 0; h < n_heads; h++) {
                    float *p = x + (long)n * width + h * hs + i;
                    float a = p[0], b = p[1];
                    p[0] = a * c - b * s;
                    p[1] = a * s + b * c;
                }
        }
}

void agi_rope_forward(float *x, int N, int n_heads, int hs, int pos0, int rows_per_seq, float theta) {
    rope_rotate(x, N, n_heads, hs, pos0, rows_per_seq, theta, 1.0f);
}

/* RoPE is a rotation R per (position, pair), so its VJP is R^T: rotate by -angle. */
void agi_rope_backward(float *dx, int N, int n_heads, int hs, int pos0, int rows_per_seq, float theta) {
    rope_rotate(dx, N, n_heads, hs, pos0, rows_per_seq, theta, -1.0f);
}

/* ---- attention -------------------------------------------------------------------------- */

void agi_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                           int p0, int p1, int H, int KVH, int hs, int att_rows, int att_ld) {
    int D = H * hs, KV = KVH * hs, Tq = p1 - p0, group = H / KVH;
    float scale = 1.0f / sqrtf((float)hs);
    for (int h = 0; h < H; h++) {
        int kh = h / group;
        float *P = att + (long)h * att_rows * att_ld;
        /* S[Tq][p1] = q_h · k_h^T * scale : one GEMM over every query row */
        agi_gemm(0, 1, Tq, p1, hs, scale, q + (long)p0 * D + h * hs, D, k + kh * hs, KV, 0.0f, P, att_ld);
        for (int i = 0; i < Tq; i++) {
            float *row = P + (long)i * att_ld;
            int last = p0 + i; /* causal: keys 0..last */
            float mx = row[0];
            for (int j = 1; j <= last; j++) mx = row[j] > mx ? row[j] : mx;
            double sum = 0.0;
            for (int j = 0; j <= last; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j <= last; j++) row[j] *= inv;
            for (int j = last + 1; j < att_ld; j++) row[j] = 0.0f;
        }
        /* out_h[Tq][hs] = P[Tq][p1] · v_h[p1][hs] */
        agi_gemm(0, 0, Tq, hs, p1, 1.0f, P, att_ld, v + kh * hs, KV, 0.0f, out + (long)p0 * D + h * hs, D);
    }
}

/* Per head h (kv head kh = h / (H/KVH)), with P [T][T] the forward's pattern:
 *   out_h = P v_kh                 ->  dv_kh += P^T dout_h,  dP = dout_h v_kh^T
 *   P = softmax(S) (causal rows)   ->  dS = P ⊙ (dP - rowsum(dP ⊙ P))
 *   S = q_h k_kh^T / sqrt(hs)      ->  dq_h += dS k_kh / sqrt(hs),  dk_kh += dS^T q_h / sqrt(hs)
 * Every product is one GEMM over the T rows; heads sharing a kv head accumulate into it.
 * frozen_pattern: P is a constant, only dv_kh += P^T dout_h. */
void agi_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                            const float *q, const float *k, const float *v, int T, int H, int KVH,
                            int hs, int frozen_pattern, float *scratch) {
    int D = H * hs, KV = KVH * hs, group = H / KVH;
    float scale = 1.0f / sqrtf((float)hs);
    for (int h = 0; h < H; h++) {
        int kh = h / group;
        const float *P = att + (long)h * T * T;
        /* dv_kh[T][hs] += P^T[T][T] · dout_h[T][hs] */
        agi_gemm(1, 0, T, hs, T, 1.0f, P, T, dout + h * hs, D, 1.0f, dv + kh * hs, KV);
        if (frozen_pattern) continue;
        float *dS = scratch;
        /* dP[T][T] = dout_h[T][hs] · v_kh^T[hs][T] */
        agi_gemm(0, 1, T, T, hs, 1.0f, dout + h * hs, D, v + kh * hs, KV, 0.0f, dS, T);
        for (int i = 0; i < T; i++) {
            const float *Pi = P + (long)i * T;
            float *di = dS + (long)i * T;
            double acc = 0.0;
            for (int j = 0; j <= i; j++) acc += (double)di[j] * Pi[j];
            float a = (float)acc;
            for (int j = 0; j <= i; j++) di[j] = Pi[j] * (di[j] - a);
            for (int j = i + 1; j < T; j++) di[j] = 0.0f;
        }
        /* dq_h[T][hs] += scale * dS[T][T] · k_kh[T][hs];  dk_kh[T][hs] += scale * dS^T · q_h */
        agi_gemm(0, 0, T, hs, T, scale, dS, T, k + kh * hs, KV, 1.0f, dq + h * hs, D);
        agi_gemm(1, 0, T, hs, T, scale, dS, T, q + h * hs, D, 1.0f, dk + kh * hs, KV);
    }
}

/* ---- SwiGLU ----------------------------------------------------------------------------- */

void agi_swiglu_forward(float *n, const float *gate, const float *up, long N) {
    for (long i = 0; i < N; i++) n[i] = agi_silu(gate[i]) * up[i];
}

/* n = silu(g)*up, silu(g) = g*sigmoid(g), silu'(g) = sigmoid(g)*(1 + g*(1 - sigmoid(g))):
 *   dgate += dn * up * silu'(gate),   dup += dn * silu(gate).
 * frozen_gate: silu(gate) is a constant multiplier, only dup (dgate may be NULL). */
void agi_swiglu_backward(float *dgate, float *dup, const float *dn, const float *gate, const float *up,
                         long N, int frozen_gate) {
    if (frozen_gate) {
        for (long i = 0; i < N; i++) dup[i] += dn[i] * agi_silu(gate[i]);
        return;
    }
    for (long i = 0; i < N; i++) {
        float g = gate[i], e1 = 1.0f + expf(-g), sg = 1.0f / e1;
        dup[i] += dn[i] * (g / e1); /* silu(g) exactly as agi_silu computes it */
        dgate[i] += dn[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
}

/* ---- residual --------------------------------------------------------------------------- */

void agi_residual_forward(float *y, const float *a, const float *b, long N) {
    for (long i = 0; i < N; i++) y[i] = a[i] + b[i];
}

/* y = a + b: da += dy, db += dy (either may be NULL). */
void agi_residual_backward(float *da, float *db, const float *dy, long N) {
    if (da)
        for (long i = 0; i < N; i++) da[i] += dy[i];
    if (db)
        for (long i = 0; i < N; i++) db[i] += dy[i];
}
