/* The batched reverse pass of the real model (see backward.h). Shapes: B cotangent
 * sequences of T positions, rows c*T + p; D model width, KV = n_kv_heads*hs, Hd MLP width.
 * Weight-only matmuls are one GEMM over all B*T rows; activation-dependent ops run per
 * cotangent sequence against its forward sequence's activations.
 *
 * One layer loop (reverse_pass) serves attribution (agi_backward_run: seeds, activation VJPs
 * only) and training (agi_backward_weights: a dense cotangent at xfin and the weight
 * gradients, dW += dy^T x for every linear map, the RMSNorm gains, the embedding). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/backward.h"
#include "engine/blas.h"
#include "engine/ops.h"

int agi_station(const agi_config *c, int kind, int layer) {
    switch (kind) {
    case AG_SITE_EMBED: return 0;
    case AG_SITE_RESID: return 4 * layer;
    case AG_SITE_ATTN: return 4 * layer + 1;
    case AG_SITE_MID: return 4 * layer + 2;
    case AG_SITE_MLP: return 4 * layer + 3;
    default: return AGI_STATION_FINAL(c);
    }
}

int agi_site_width(const agi_config *c, int kind) { return kind == AG_SITE_MLP ? c->hidden_dim : c->dim; }

float *agi_site_ptr(const agi_acts *a, const agi_config *c, int kind, int layer, int b) {
    size_t T = (size_t)a->T, D = (size_t)c->dim, Hd = (size_t)c->hidden_dim;
    switch (kind) {
    case AG_SITE_EMBED: return a->x + (size_t)b * T * D;
    case AG_SITE_RESID: return AGI_LROW(a, x, layer, D) + (size_t)b * T * D;
    case AG_SITE_ATTN: return AGI_LROW(a, heads, layer, D) + (size_t)b * T * D;
    case AG_SITE_MID: return AGI_LROW(a, xmid, layer, D) + (size_t)b * T * D;
    case AG_SITE_MLP: return AGI_LROW(a, n, layer, Hd) + (size_t)b * T * Hd;
    default: return a->xfin + (size_t)b * T * D;
    }
}

ag_status agi_backward_init(agi_backward *w, const ag_model *m, const agi_acts *a, int B, const char *func) {
    memset(w, 0, sizeof *w);
    const agi_config *c = &m->cfg;
    size_t BT = (size_t)B * (size_t)a->T, D = (size_t)c->dim, KV = (size_t)c->kv_dim, Hd = (size_t)c->hidden_dim;
    size_t T2 = (size_t)a->T * (size_t)a->T;
    size_t per_row = 3 * D + 2 * KV + 3 * Hd, total;
    if (!agi_mul_size(BT, per_row, &total) || !agi_add_size(total, T2, &total))
        return agi_error(AG_ERR_OUT_OF_MEMORY, func, "backward workspace for %d x %d positions overflows", B, a->T);
    w->mem = agi_malloc(total * sizeof(float), func);
    w->gacc = agi_malloc(D * sizeof(double), func);
    if (!w->mem || !w->gacc) {
        agi_backward_free(w);
        return AG_ERR_OUT_OF_MEMORY;
    }
    float *p = w->mem;
    w->dres = p, p += BT * D;
    w->dD = p, p += BT * D;
    w->dq = p, p += BT * D;
    w->dk = p, p += BT * KV;
    w->dv = p, p += BT * KV;
    w->dn = p, p += BT * Hd;
    w->dgate = p, p += BT * Hd;
    w->dup = p, p += BT * Hd;
    w->scratch = p;
    w->m = m;
    w->a = a;
    w->B = B;
    return AG_OK;
}

void agi_backward_free(agi_backward *w) {
    free(w->mem);
    free(w->gacc);
    memset(w, 0, sizeof *w);
}

/* Add the seeds at `station` into buf ([B*T][width]); returns how many were added. */
static int add_seeds(const agi_backward *w, const agi_seed *seeds, int n_seeds, int station, float *buf, int width) {
    int n = 0;
    size_t T = (size_t)w->a->T;
    for (int i = 0; i < n_seeds; i++) {
        const agi_seed *s = &seeds[i];
        if (s->station != station) continue;
        agi_axpy(width, s->scale, s->vec, buf + ((size_t)s->block * T + (size_t)s->position) * (size_t)width);
        n++;
    }
    return n;
}

static int act_of(const agi_backward *w, int c) { return w->act_of ? w->act_of[c] : c % w->a->B; }

/* C[BT][N] (+)= A[BT][K] · W[K][N]: the input gradient of a linear layer with W [N_out=K][N]. */
static void grad_linear(agi_backward *w, float *dx, const float *dy, const float *W, int K_in, int M_out, float beta) {
    int BT = w->B * w->a->T;
    agi_linear_dx(dx, dy, W, BT, K_in, M_out, beta); /* dx[BT][K_in] = dy[BT][M_out] · W[M_out][K_in] */
    w->flops += 2.0 * BT * (double)K_in * M_out;
}

/* dW[M_out][K_in] += dy[BT][M_out]^T · x[BT][K_in]: the weight gradient of the same layer. */
static void grad_weight(agi_backward *w, float *dW, const float *dy, const float *x, int K_in, int M_out) {
    int BT = w->B * w->a->T;
    agi_linear_dw(dW, dy, x, BT, K_in, M_out, 1.0f);
    w->flops += 2.0 * BT * (double)K_in * M_out;
}

/* The reverse layer loop of both entry points. Runs from the highest seed at or above `stop`
 * down to station `stop` and writes the cotangent there into grad (rows of `width`; NULL: not
 * written). dense_final: w->dD already holds a cotangent [B*T][D] at the final station (the
 * seeds there add to it). g: weight gradients to accumulate (requires the real model, act_of
 * the identity and stop = 0), or NULL: activation VJPs only, no weight GEMM. */
static void reverse_pass(agi_backward *w, const agi_seed *seeds, int n_seeds, int dense_final, int stop, int width,
                         float *grad, const agi_weight_grads *g) {
    const ag_model *m = w->m;
    const agi_config *c = &m->cfg;
    const agi_acts *a = w->a;
    const int L = c->n_layers, D = c->dim, KV = c->kv_dim, Hd = c->hidden_dim, H = c->n_heads, hs = c->head_dim;
    const int T = a->T, B = w->B;
    const size_t BT = (size_t)B * (size_t)T, TD = (size_t)T * D, THd = (size_t)T * Hd, TKV = (size_t)T * KV;
    const int frz_norm = (w->flags & AGI_BW_FREEZE_NORMS) != 0, frz_att = (w->flags & AGI_BW_FREEZE_ATTN) != 0;
    const int frz_gate = (w->flags & AGI_BW_FREEZE_GATES) != 0, no_mlp = (w->flags & AGI_BW_NO_MLP) != 0;
    int top = dense_final ? AGI_STATION_FINAL(c) : -1;
    for (int i = 0; i < n_seeds; i++)
        if (seeds[i].station >= stop && seeds[i].station > top) top = seeds[i].station;
    float *dres = w->dres, *dD = w->dD;
    memset(dres, 0, BT * D * sizeof(float));
    if (top < 0) { /* nothing depends on the site */
        if (grad) memset(grad, 0, BT * (size_t)width * sizeof(float));
        return;
    }
    int live = 0; /* dres holds a nonzero cotangent */

    /* final norm: xfin = RMSNorm(x_L) * g_final */
    if (top == AGI_STATION_FINAL(c)) {
        if (!dense_final) memset(dD, 0, BT * D * sizeof(float));
        add_seeds(w, seeds, n_seeds, top, dD, D);
        if (g) agi_rmsnorm_dgain(g->rms_final, w->gacc, dD, AGI_LROW(a, x, L, D), a->r_fin, (int)BT, D);
        for (int b = 0; b < B; b++) {
            int s = act_of(w, b);
            agi_rmsnorm_backward(dres + b * TD, dD + b * TD, AGI_LROW(a, x, L, D) + s * TD, m->w.rms_final,
                                 a->r_fin + (size_t)s * T, T, D, frz_norm);
        }
        live = 1;
    }
    for (int l = L;; l--) {
        /* station resid.l (embed when l = 0) */
        if (add_seeds(w, seeds, n_seeds, agi_station(c, AG_SITE_RESID, l), dres, D)) live = 1;
        if (stop == 4 * l || l == 0) {
            /* x_0 = E[tok]: the embedding's gradient is a scatter-add of d x_0 */
            if (g && l == 0) agi_embed_backward(g->token_embedding, dres, a->tokens, (int)BT, D);
            if (grad) memcpy(grad, dres, BT * D * sizeof(float));
            return;
        }
        const int bl = l - 1;
        const agi_layer_weights *lw = &m->w.layers[bl];
        const agi_layer_grads *lg = g ? &g->layers[bl] : NULL;
        const int st_mlp = 4 * bl + 3, st_mid = 4 * bl + 2, st_attn = 4 * bl + 1;
        if (top <= 4 * bl) continue; /* no seed inside this block or above it yet */

        /* ---- MLP: x_{l} = xmid + W2 n,  n = silu(W1 u) * (W3 u),  u = RMSNorm(xmid) * g_ffn ---- */
        int dn_live = 0;
        float *dn = w->dn;
        if (live && (!no_mlp || stop == st_mlp)) {
            grad_linear(w, dn, dres, lw->w2, Hd, D, 0.0f); /* dn[BT][Hd] = dres[BT][D] · W2[D][Hd] */
            if (lg) grad_weight(w, lg->w2, dres, AGI_LROW(a, n, bl, Hd), Hd, D);
            dn_live = 1;
        }
        if (!dn_live) memset(dn, 0, BT * Hd * sizeof(float));
        if (add_seeds(w, seeds, n_seeds, st_mlp, dn, Hd)) dn_live = 1;
        if (stop == st_mlp) {
            if (grad) memcpy(grad, dn, BT * Hd * sizeof(float));
            return;
        }
        if (dn_live) {
            memset(w->dup, 0, BT * Hd * sizeof(float));
            if (!frz_gate) memset(w->dgate, 0, BT * Hd * sizeof(float));
            for (int b = 0; b < B; b++) {
                int s = act_of(w, b);
                agi_swiglu_backward(frz_gate ? NULL : w->dgate + b * THd, w->dup + b * THd, dn + b * THd,
                                    AGI_LROW(a, gate, bl, Hd) + s * THd, AGI_LROW(a, up, bl, Hd) + s * THd, (long)THd,
                                    frz_gate);
            }
            /* du[BT][D] = dgate · W1 + dup · W3 */
            if (!frz_gate) grad_linear(w, dD, w->dgate, lw->w1, D, Hd, 0.0f);
            grad_linear(w, dD, w->dup, lw->w3, D, Hd, frz_gate ? 0.0f : 1.0f);
            if (lg) {
                const float *u = AGI_LROW(a, u, bl, D);
                grad_weight(w, lg->w1, w->dgate, u, D, Hd);
                grad_weight(w, lg->w3, w->dup, u, D, Hd);
                agi_rmsnorm_dgain(lg->rms_ffn, w->gacc, dD, AGI_LROW(a, xmid, bl, D), AGI_LROW(a, r_ffn, bl, 1),
                                  (int)BT, D);
            }
            for (int b = 0; b < B; b++) {
                int s = act_of(w, b);
                agi_rmsnorm_backward(dres + b * TD, dD + b * TD, AGI_LROW(a, xmid, bl, D) + s * TD, lw->rms_ffn,
                                     AGI_LROW(a, r_ffn, bl, 1) + (size_t)s * T, T, D, frz_norm);
            }
            live = 1;
        }

        /* ---- station mid.bl ---- */
        if (add_seeds(w, seeds, n_seeds, st_mid, dres, D)) live = 1;
        if (stop == st_mid) {
            if (grad) memcpy(grad, dres, BT * D * sizeof(float));
            return;
        }

        /* ---- attention: xmid = x + Wo heads ---- */
        int dh_live = 0;
        if (live) {
            grad_linear(w, dD, dres, lw->wo, D, D, 0.0f); /* dheads[BT][D] = dres · Wo */
            if (lg) grad_weight(w, lg->wo, dres, AGI_LROW(a, heads, bl, D), D, D);
            dh_live = 1;
        } else {
            memset(dD, 0, BT * D * sizeof(float));
        }
        if (add_seeds(w, seeds, n_seeds, st_attn, dD, D)) dh_live = 1;
        if (stop == st_attn) {
            if (grad) memcpy(grad, dD, BT * D * sizeof(float));
            return;
        }
        if (!dh_live) continue;
        if (!frz_att) {
            memset(w->dq, 0, BT * D * sizeof(float));
            memset(w->dk, 0, BT * KV * sizeof(float));
        }
        memset(w->dv, 0, BT * KV * sizeof(float));
        for (int b = 0; b < B; b++) {
            int s = act_of(w, b);
            const float *att = agi_acts_att(a, c, bl, s, 0);
            agi_attention_backward(frz_att ? NULL : w->dq + b * TD, frz_att ? NULL : w->dk + b * TKV, w->dv + b * TKV,
                                   dD + b * TD, att, AGI_LROW(a, q, bl, D) + s * TD, AGI_LROW(a, k, bl, KV) + s * TKV,
                                   AGI_LROW(a, v, bl, KV) + s * TKV, T, H, c->n_kv_heads, hs, frz_att, w->scratch);
            w->flops += (frz_att ? 1.0 : 4.0) * 2.0 * (double)T * T * hs * H;
        }
        if (!frz_att) {
            agi_rope_backward(w->dq, (int)BT, H, hs, 0, T, c->rope_theta);
            agi_rope_backward(w->dk, (int)BT, c->n_kv_heads, hs, 0, T, c->rope_theta);
        }
        /* da[BT][D] = dq · Wq + dk · Wk + dv · Wv  (into dD: dheads is no longer needed) */
        if (!frz_att) {
            grad_linear(w, dD, w->dq, lw->wq, D, D, 0.0f);
            grad_linear(w, dD, w->dk, lw->wk, D, KV, 1.0f);
        }
        grad_linear(w, dD, w->dv, lw->wv, D, KV, frz_att ? 0.0f : 1.0f);
        if (lg) {
            const float *an = AGI_LROW(a, a, bl, D);
            grad_weight(w, lg->wq, w->dq, an, D, D);
            grad_weight(w, lg->wk, w->dk, an, D, KV);
            grad_weight(w, lg->wv, w->dv, an, D, KV);
            agi_rmsnorm_dgain(lg->rms_att, w->gacc, dD, AGI_LROW(a, x, bl, D), AGI_LROW(a, r_att, bl, 1), (int)BT, D);
        }
        for (int b = 0; b < B; b++) {
            int s = act_of(w, b);
            agi_rmsnorm_backward(dres + b * TD, dD + b * TD, AGI_LROW(a, x, bl, D) + s * TD, lw->rms_att,
                                 AGI_LROW(a, r_att, bl, 1) + (size_t)s * T, T, D, frz_norm);
        }
        live = 1;
    }
}

void agi_backward_run(agi_backward *w, const agi_seed *seeds, int n_seeds, int site_kind, int site_layer,
                      float *grad) {
    const agi_config *c = &w->m->cfg;
    reverse_pass(w, seeds, n_seeds, 0, agi_station(c, site_kind, site_layer), agi_site_width(c, site_kind), grad,
                 NULL);
}

void agi_backward_weights(agi_backward *w, const float *dlogits, const agi_weight_grads *g) {
    const ag_model *m = w->m;
    const agi_acts *a = w->a;
    const int D = m->cfg.dim, V = m->cfg.vocab_size;
    /* logits[BT][V] = xfin · Wcls^T: dWcls += dlogits^T xfin, and d xfin (the dense cotangent
     * at the final station) goes straight into the workspace the loop starts from */
    grad_weight(w, g->wcls, dlogits, a->xfin, D, V);
    grad_linear(w, w->dD, dlogits, m->w.wcls, D, V, 0.0f);
    reverse_pass(w, NULL, 0, 1, 0, D, NULL, g);
}

double agi_backward_flops_per_seq(const agi_config *c, int T) {
    double D = c->dim, KV = c->kv_dim, Hd = c->hidden_dim, t = T;
    double per_layer = 2.0 * t * (2.0 * D * D + 2.0 * D * KV + 3.0 * D * Hd) + 4.0 * 2.0 * t * t * c->head_dim * c->n_heads;
    return c->n_layers * per_layer;
}

double agi_forward_flops_per_seq(const agi_config *c, int T, int l0) {
    double D = c->dim, KV = c->kv_dim, Hd = c->hidden_dim, t = T;
    double per_layer = 2.0 * t * (2.0 * D * D + 2.0 * D * KV + 3.0 * D * Hd) + 2.0 * 2.0 * t * t * c->head_dim * c->n_heads;
    return (c->n_layers - l0) * per_layer;
}
