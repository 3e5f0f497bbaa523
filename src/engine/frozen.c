/* The batched frozen VJP of the local replacement model. See frozen.h for the math. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/frozen.h"
#include "engine/ops.h"

size_t agi_frozen_ws_bytes(const agi_config *c, int Bmax, int T) {
    size_t BT = (size_t)Bmax * (size_t)T;
    size_t floats = BT * (size_t)c->dim * 3 + BT * (size_t)c->kv_dim * 2 + (size_t)c->n_heads * (size_t)T * (size_t)T + BT;
    return floats * sizeof(float);
}

ag_status agi_frozen_ws_init(agi_frozen_ws *ws, const ag_trace *tr, int Bmax, const char *func) {
    memset(ws, 0, sizeof *ws);
    const agi_config *c = &tr->model->cfg;
    ws->Bmax = Bmax;
    ws->T = tr->acts.T;
    ws->D = c->dim;
    ws->KV = c->kv_dim;
    ws->H = c->n_heads;
    size_t BT = (size_t)Bmax * (size_t)ws->T, bd, bkv, pat;
    if (!agi_mul_size(BT, (size_t)ws->D, &bd) || !agi_mul_size(BT, (size_t)ws->KV, &bkv) ||
        !agi_mul_size((size_t)ws->H * (size_t)ws->T, (size_t)ws->T, &pat))
        return agi_error(AG_ERR_OUT_OF_MEMORY, func, "workspace for %d targets x %d positions overflows", Bmax, ws->T);
    ws->g = agi_calloc(bd, sizeof(float), func);
    ws->buf_d = agi_calloc(bd, sizeof(float), func);
    ws->buf_h = agi_calloc(bd, sizeof(float), func);
    ws->buf_kv = agi_calloc(bkv, sizeof(float), func);
    ws->dv = agi_calloc(bkv, sizeof(float), func);
    ws->pat = agi_calloc(pat, sizeof(float), func);
    ws->r_rep = agi_calloc(BT, sizeof(float), func);
    if (!ws->g || !ws->buf_d || !ws->buf_h || !ws->buf_kv || !ws->dv || !ws->pat || !ws->r_rep) {
        agi_frozen_ws_free(ws);
        return AG_ERR_OUT_OF_MEMORY;
    }
    return AG_OK;
}

void agi_frozen_ws_free(agi_frozen_ws *ws) {
    free(ws->g);
    free(ws->buf_d);
    free(ws->buf_h);
    free(ws->buf_kv);
    free(ws->dv);
    free(ws->pat);
    free(ws->r_rep);
    memset(ws, 0, sizeof *ws);
}

/* g[b*Tp + p] += d_b for the targets [i0, i1). */
static void inject(agi_frozen_ws *ws, int i0, int i1, const int *t_pos, const float *dirs, int Tp) {
    int D = ws->D;
    for (int b = i0; b < i1; b++) {
        float *row = ws->g + ((size_t)b * Tp + (size_t)t_pos[b]) * D;
        const float *d = dirs + (size_t)b * D;
        for (int k = 0; k < D; k++) row[k] += d[k];
    }
}

/* g (cotangent at x_l^mid, rows [0,n) x [0,Tp)) -> cotangent at x_l, in place:
 * g += (W_V^T (P^T (W_O^T g))) ⊙ r_att ⊙ g_att, the residual branch plus the frozen OV path. */
static void attention_ov_backward(agi_frozen_ws *ws, const ag_trace *tr, int l, int n, int Tp) {
    const agi_config *c = &tr->model->cfg;
    const agi_layer_weights *w = &tr->model->w.layers[l];
    int D = c->dim, KV = c->kv_dim, H = c->n_heads, KVH = c->n_kv_heads, hs = c->head_dim, T = tr->acts.T;
    int N = n * Tp;
    /* dheads[N][D] = g[N][D] · W_O */
    agi_linear_dx(ws->buf_d, ws->g, w->wo, N, D, D, 0.0f);
    /* head-major copy X[t][h][b][j] = dheads[b][t][h*hs + j] */
    for (int b = 0; b < n; b++)
        for (int t = 0; t < Tp; t++) {
            const float *src = ws->buf_d + ((size_t)b * Tp + t) * D;
            for (int h = 0; h < H; h++)
                memcpy(ws->buf_h + (((size_t)t * H + h) * n + b) * hs, src + (size_t)h * hs, sizeof(float) * (size_t)hs);
        }
    /* the layer's patterns over Tp positions */
    const float *att = agi_acts_att(&tr->acts, c, l, 0, 0);
    const float *P = att;
    if (Tp < T) {
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tp; i++)
                memcpy(ws->pat + ((size_t)h * Tp + i) * Tp, att + ((size_t)h * T + i) * T, sizeof(float) * (size_t)Tp);
        P = ws->pat;
    }
    /* dv_kh += P_h^T dheads_h for every head, one GEMM per head over all n targets
     * (the op's "head size" is n*hs in this layout) */
    memset(ws->buf_kv, 0, sizeof(float) * (size_t)N * KV);
    agi_attention_backward(NULL, NULL, ws->buf_kv, ws->buf_h, P, NULL, NULL, NULL, Tp, H, KVH, n * hs, 1, NULL);
    /* back to sequence-major dv[b][t][kh*hs + j] */
    for (int t = 0; t < Tp; t++)
        for (int kh = 0; kh < KVH; kh++)
            for (int b = 0; b < n; b++)
                memcpy(ws->dv + ((size_t)b * Tp + t) * KV + (size_t)kh * hs,
                       ws->buf_kv + (((size_t)t * KVH + kh) * n + b) * hs, sizeof(float) * (size_t)hs);
    /* d(attn_in)[N][D] = dv[N][KV] · W_V */
    agi_linear_dx(ws->buf_d, ws->dv, w->wv, N, D, KV, 0.0f);
    /* g += d(attn_in) ⊙ r_att ⊙ g_att  (frozen norm scale) */
    const float *r = AGI_LROW(&tr->acts, r_att, l, 1);
    for (int b = 0; b < n; b++) memcpy(ws->r_rep + (size_t)b * Tp, r, sizeof(float) * (size_t)Tp);
    agi_rmsnorm_backward(ws->g, ws->buf_d, NULL, w->rms_att, ws->r_rep, N, D, 1);
    ws->flops += 2.0 * N * ((double)D * D + (double)KV * D) + 2.0 * (double)Tp * Tp * n * D;
}

ag_status agi_frozen_vjp(agi_frozen_ws *ws, const ag_trace *tr, int B, const int *t_layer, const int *t_pos,
                         const float *dirs, agi_frozen_cb cb, void *user) {
    const agi_config *c = &tr->model->cfg;
    int L = c->n_layers, D = c->dim;
    if (B <= 0) return AG_OK;
    int Tp = 1;
    for (int b = 0; b < B; b++) Tp = t_pos[b] + 1 > Tp ? t_pos[b] + 1 : Tp;
    memset(ws->g, 0, sizeof(float) * (size_t)B * Tp * D);
    int next = 0; /* targets [0, next) are injected */
    while (next < B && t_layer[next] >= L) next++;
    inject(ws, 0, next, t_pos, dirs, Tp);
    for (int l = L - 1; l >= 0; l--) {
        if (next > 0) {
            int rc = cb(user, l, ws->g, next, Tp);
            if (rc) return (ag_status)rc;
        }
        int i0 = next;
        while (next < B && t_layer[next] >= l) next++;
        inject(ws, i0, next, t_pos, dirs, Tp);
        if (next > 0) attention_ov_backward(ws, tr, l, next, Tp);
    }
    int rc = cb(user, -1, ws->g, B, Tp);
    return (ag_status)rc;
}

void agi_frozen_neuron_dir(const ag_trace *tr, int l, int p, int i, float *d) {
    const agi_config *c = &tr->model->cfg;
    const agi_layer_weights *w = &tr->model->w.layers[l];
    int D = c->dim, Hd = c->hidden_dim;
    const agi_acts *a = &tr->acts;
    /* dn = e_i -> dup_i = silu(gate_i) (frozen gate) -> du = dup_i W3[i,:] -> d = du ⊙ r_ffn ⊙ g_ffn */
    float one = 1.0f, dup = 0.0f;
    agi_swiglu_backward(NULL, &dup, &one, AGI_LROW(a, gate, l, Hd) + (size_t)p * Hd + i, NULL, 1, 1);
    const float *w3 = w->w3 + (size_t)i * D;
    const float r = AGI_LROW(a, r_ffn, l, 1)[p];
    memset(d, 0, sizeof(float) * (size_t)D);
    /* agi_rmsnorm_backward(frozen) on the row du = dup * W3[i,:], one chunk at a time */
    float du[64];
    for (int k0 = 0; k0 < D; k0 += 64) {
        int m = D - k0 < 64 ? D - k0 : 64;
        for (int k = 0; k < m; k++) du[k] = dup * w3[k0 + k];
        agi_rmsnorm_backward(d + k0, du, NULL, w->rms_ffn + k0, &r, 1, m, 1);
    }
}

void agi_frozen_final_dir(const ag_trace *tr, int p, const float *wdir, float *d) {
    const agi_config *c = &tr->model->cfg;
    memset(d, 0, sizeof(float) * (size_t)c->dim);
    agi_rmsnorm_backward(d, wdir, NULL, tr->model->w.rms_final, tr->acts.r_fin + p, 1, c->dim, 1);
}
