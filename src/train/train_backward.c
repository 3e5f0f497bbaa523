/* The training forward/backward: loss and the gradient of every weight.
 *
 * This is the reverse pass of a whole Llama model over B sequences, with weight gradients.
 * It is written here, over the activation VJPs of engine/ops.h, because the engine's own
 * activation-only reverse pass (engine/backward.c, issue 3) did not exist when training was
 * written; the ops are shared, only the layer loop is duplicated. The loop mirrors
 * engine/forward.c stage by stage, in reverse. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/forward.h"
#include "engine/ops.h"
#include "train/train.h"

void agi_trainer_free(agi_trainer *t) {
    if (!t) return;
    ag_model_free(t->view);
    agi_acts_free(&t->acts);
    free(t->params);
    free(t->grads);
    free(t->dxfin);
    free(t->gacc);
    agi_layout_free(&t->lay);
    free(t);
}

ag_status agi_trainer_create(agi_trainer **out, const agi_config *cfg, int shared, int B, int T, const char *func) {
    *out = NULL;
    if (B < 1 || T < 1 || T > cfg->seq_len)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "batch %d x %d positions (seq_len %d)", B, T, cfg->seq_len);
    agi_trainer *t = agi_calloc(1, sizeof *t, func);
    if (!t) return AG_ERR_OUT_OF_MEMORY;
    t->B = B;
    t->T = T;
    ag_status st = agi_layout_init(&t->lay, cfg, shared, func);
    if (st != AG_OK) goto fail;
    size_t n = t->lay.n_params;
    t->params = agi_calloc(n, sizeof(float), func);
    t->grads = agi_calloc(n, sizeof(float), func);
    if (!t->params || !t->grads) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    st = agi_model_view(&t->view, &t->lay, t->params, "<training>", func);
    if (st != AG_OK) goto fail;
    st = agi_acts_alloc(&t->acts, cfg, B, T, T, 1, func);
    if (st != AG_OK) goto fail;
    size_t N = (size_t)B * (size_t)T, D = (size_t)cfg->dim, KV = (size_t)cfg->kv_dim, Hd = (size_t)cfg->hidden_dim;
    /* one block: dxfin dx du dheads dq da [N][D]; dk dv [N][KV]; dn dgate dup [N][Hd]; scratch [T][T] */
    size_t total = 6 * N * D + 2 * N * KV + 3 * N * Hd + (size_t)T * (size_t)T;
    t->dxfin = agi_calloc(total, sizeof(float), func);
    t->gacc = agi_calloc(D, sizeof(double), func);
    if (!t->dxfin || !t->gacc) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    float *p = t->dxfin + N * D;
    t->dx = p, p += N * D;
    t->du = p, p += N * D;
    t->dheads = p, p += N * D;
    t->dq = p, p += N * D;
    t->da = p, p += N * D;
    t->dk = p, p += N * KV;
    t->dv = p, p += N * KV;
    t->dn = p, p += N * Hd;
    t->dgate = p, p += N * Hd;
    t->dup = p, p += N * Hd;
    t->scratch = p;
    *out = t;
    return AG_OK;
fail:
    agi_trainer_free(t);
    return st;
}

/* RMSNorm gain gradient: dg[i] += sum_n dout[n][i] * x[n][i] * r[n]. */
static void gain_grad(double *acc, float *dg, const float *dout, const float *x, const float *r, int N, int D) {
    memset(acc, 0, sizeof(double) * (size_t)D);
    for (int n = 0; n < N; n++) {
        const float *dn = dout + (size_t)n * D, *xn = x + (size_t)n * D;
        double rn = r[n];
        for (int i = 0; i < D; i++) acc[i] += (double)dn[i] * xn[i] * rn;
    }
    for (int i = 0; i < D; i++) dg[i] += (float)acc[i];
}

/* Softmax cross-entropy over the logits rows (in place: each row becomes its gradient,
 * (softmax - onehot) / n_scored, or zeros for an unscored row). Returns the mean loss. */
static double cross_entropy(float *logits, const int32_t *targets, int N, int V) {
    int n_scored = 0;
    for (int n = 0; n < N; n++) n_scored += targets[n] >= 0;
    double loss = 0.0, inv = n_scored ? 1.0 / n_scored : 0.0;
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        int32_t tgt = targets[n];
        if (tgt < 0) {
            memset(row, 0, sizeof(float) * (size_t)V);
            continue;
        }
        float mx = row[0], lt = row[tgt];
        for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        double sum = 0.0;
        for (int v = 0; v < V; v++) {
            float e = expf(row[v] - mx);
            row[v] = e;
            sum += e;
        }
        /* loss = log(sum) + mx - logit[tgt] = -log(e_tgt / sum) */
        loss += log(sum) - ((double)lt - mx);
        float scale = (float)(inv / sum);
        for (int v = 0; v < V; v++) row[v] *= scale;
        row[tgt] -= (float)inv;
    }
    return loss * inv;
}

double agi_grad_norm(const float *g, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double agi_trainer_loss(agi_trainer *t, const int32_t *inputs, const int32_t *targets, int want_grad) {
    const ag_model *m = t->view;
    const agi_config *c = &t->lay.cfg;
    agi_acts *a = &t->acts;
    int B = t->B, T = t->T, N = B * T, D = c->dim, KV = c->kv_dim, Hd = c->hidden_dim, V = c->vocab_size;
    int L = c->n_layers, H = c->n_heads, KVH = c->n_kv_heads, hs = c->head_dim;
    memcpy(a->tokens, inputs, sizeof(int32_t) * (size_t)N);
    agi_forward(m, a, 0, T);
    double loss = cross_entropy(a->logits, targets, N, V);
    if (!want_grad) return loss;

    const agi_layout *lay = &t->lay;
    float *g = t->grads;
    memset(g, 0, sizeof(float) * lay->n_params);
    /* gradient pointers, in layout order */
    int k = 0;
    float *g_emb = g + lay->t[k++].offset;
    size_t g_layer0 = (size_t)k;
    k += 9 * L;
    float *g_final = g + lay->t[k++].offset;
    float *g_cls = lay->shared_classifier ? g_emb : g + lay->t[k].offset;
    const float *dlogits = a->logits;

    /* logits[N][V] = xfin · Wcls^T */
    agi_linear_dw(g_cls, dlogits, a->xfin, N, D, V, 1.0f);
    agi_linear_dx(t->dxfin, dlogits, m->w.wcls, N, D, V, 0.0f);
    /* xfin = RMSNorm(x_L) g_final */
    const float *xL = AGI_LROW(a, x, L, D);
    gain_grad(t->gacc, g_final, t->dxfin, xL, a->r_fin, N, D);
    memset(t->dx, 0, sizeof(float) * (size_t)N * D);
    agi_rmsnorm_backward(t->dx, t->dxfin, xL, m->w.rms_final, a->r_fin, N, D, 0);

    for (int l = L - 1; l >= 0; l--) {
        const agi_layer_weights *w = &m->w.layers[l];
        const agi_ptensor *pt = &lay->t[g_layer0 + (size_t)l * 9];
        float *g_rms_att = g + pt[0].offset, *g_wq = g + pt[1].offset, *g_wk = g + pt[2].offset;
        float *g_wv = g + pt[3].offset, *g_wo = g + pt[4].offset, *g_rms_ffn = g + pt[5].offset;
        float *g_w1 = g + pt[6].offset, *g_w2 = g + pt[7].offset, *g_w3 = g + pt[8].offset;
        const float *x = AGI_LROW(a, x, l, D), *xmid = AGI_LROW(a, xmid, l, D);
        const float *u = AGI_LROW(a, u, l, D), *nrn = AGI_LROW(a, n, l, Hd);
        const float *gate = AGI_LROW(a, gate, l, Hd), *up = AGI_LROW(a, up, l, Hd);
        const float *an = AGI_LROW(a, a, l, D), *heads = AGI_LROW(a, heads, l, D);
        const float *q = AGI_LROW(a, q, l, D), *kk = AGI_LROW(a, k, l, KV), *v = AGI_LROW(a, v, l, KV);

        /* x_{l+1} = xmid + mlp_out, mlp_out = n · W2^T: t->dx is d x_{l+1} = d mlp_out */
        agi_linear_dw(g_w2, t->dx, nrn, N, Hd, D, 1.0f);
        agi_linear_dx(t->dn, t->dx, w->w2, N, Hd, D, 0.0f);
        /* n = silu(gate) * up */
        memset(t->dgate, 0, sizeof(float) * (size_t)N * Hd);
        memset(t->dup, 0, sizeof(float) * (size_t)N * Hd);
        agi_swiglu_backward(t->dgate, t->dup, t->dn, gate, up, (long)N * Hd, 0);
        /* gate = u · W1^T, up = u · W3^T */
        agi_linear_dw(g_w1, t->dgate, u, N, D, Hd, 1.0f);
        agi_linear_dw(g_w3, t->dup, u, N, D, Hd, 1.0f);
        agi_linear_dx(t->du, t->dgate, w->w1, N, D, Hd, 0.0f);
        agi_linear_dx(t->du, t->dup, w->w3, N, D, Hd, 1.0f);
        /* u = RMSNorm(xmid) g_ffn; the residual passes dx through, so dx becomes d xmid */
        gain_grad(t->gacc, g_rms_ffn, t->du, xmid, AGI_LROW(a, r_ffn, l, 1), N, D);
        agi_rmsnorm_backward(t->dx, t->du, xmid, w->rms_ffn, AGI_LROW(a, r_ffn, l, 1), N, D, 0);

        /* xmid = x + heads · Wo^T */
        agi_linear_dw(g_wo, t->dx, heads, N, D, D, 1.0f);
        agi_linear_dx(t->dheads, t->dx, w->wo, N, D, D, 0.0f);
        /* attention, one sequence at a time (patterns are per sequence) */
        memset(t->dq, 0, sizeof(float) * (size_t)N * D);
        memset(t->dk, 0, sizeof(float) * (size_t)N * KV);
        memset(t->dv, 0, sizeof(float) * (size_t)N * KV);
        for (int b = 0; b < B; b++) {
            size_t rd = (size_t)b * T * D, rk = (size_t)b * T * KV;
            agi_attention_backward(t->dq + rd, t->dk + rk, t->dv + rk, t->dheads + rd, agi_acts_att(a, c, l, b, 0),
                                   q + rd, kk + rk, v + rk, T, H, KVH, hs, 0, t->scratch);
        }
        /* q, k were rotated after their projections */
        agi_rope_backward(t->dq, N, H, hs, 0, T, c->rope_theta);
        agi_rope_backward(t->dk, N, KVH, hs, 0, T, c->rope_theta);
        /* q = a Wq^T, k = a Wk^T, v = a Wv^T */
        agi_linear_dw(g_wq, t->dq, an, N, D, D, 1.0f);
        agi_linear_dw(g_wk, t->dk, an, N, D, KV, 1.0f);
        agi_linear_dw(g_wv, t->dv, an, N, D, KV, 1.0f);
        agi_linear_dx(t->da, t->dq, w->wq, N, D, D, 0.0f);
        agi_linear_dx(t->da, t->dk, w->wk, N, D, KV, 1.0f);
        agi_linear_dx(t->da, t->dv, w->wv, N, D, KV, 1.0f);
        /* a = RMSNorm(x) g_att; dx becomes d x_l */
        gain_grad(t->gacc, g_rms_att, t->da, x, AGI_LROW(a, r_att, l, 1), N, D);
        agi_rmsnorm_backward(t->dx, t->da, x, w->rms_att, AGI_LROW(a, r_att, l, 1), N, D, 0);
    }
    /* x_0 = E[tok] */
    agi_embed_backward(g_emb, t->dx, a->tokens, N, D);
    return loss;
}
