/* Forward ops (and, beside each, its backward). See ops.h for shapes. */
#include <math.h>
#include <string.h>

#include "engine/blas.h"
#include "engine/ops.h"

/* ---- embedding ------------------------------------------------------------------------ */

void agi_embed_forward(float *x, const int32_t *tok, const float *E, int N, int D) {
    for (int n = 0; n < N; n++) memcpy(x + (long)n * D, E + (long)tok[n] * D, sizeof(float) * (size_t)D);
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

/* ---- RoPE ------------------------------------------------------------------------------- */

void agi_rope_forward(float *x, int N, int n_heads, int hs, int pos0, int rows_per_seq, float theta) {
    int width = n_heads * hs;
    for (int n = 0; n < N; n++) {
        int pos = pos0 + n % rows_per_seq;
        float *row = x + (long)n * width;
        for (int i = 0; i < hs; i += 2) {
            double ang = pos * pow((double)theta, -(double)i / hs);
            float c = (float)cos(ang), s = (float)sin(ang);
            for (int h = 0; h < n_heads; h++) {
                float *p = row + h * hs + i;
                float a = p[0], b = p[1];
                p[0] = a * c - b * s;
                p[1] = a * s + b * c;
            }
        }
    }
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

/* ---- SwiGLU ----------------------------------------------------------------------------- */

void agi_swiglu_forward(float *n, const float *gate, const float *up, long N) {
    for (long i = 0; i < N; i++) n[i] = agi_silu(gate[i]) * up[i];
}

/* ---- residual --------------------------------------------------------------------------- */

void agi_residual_forward(float *y, const float *a, const float *b, long N) {
    for (long i = 0; i < N; i++) y[i] = a[i] + b[i];
}
