/* The Llama forward pass, stage by stage (see forward.h). Shapes: D model width,
 * KV = n_kv_heads*head_dim, Hd MLP width, V vocabulary; rows are (sequence, position). */
#include <string.h>

#include "engine/blas.h"
#include "engine/forward.h"
#include "engine/ops.h"

void agi_forward_rows(const agi_acts *a, int p0, int p1, size_t *r0, int *n_rows) {
    if (a->B == 1) {
        *r0 = (size_t)p0;
        *n_rows = p1 - p0;
    } else { /* B > 1: whole sequences only */
        *r0 = 0;
        *n_rows = a->B * a->T;
    }
}

void agi_forward_embed(const ag_model *m, agi_acts *a, int p0, int p1) {
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    int D = m->cfg.dim;
    agi_embed_forward(a->x + r0 * D, a->tokens + r0, m->w.token_embedding, N, D);
}

void agi_forward_attn_heads(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    const agi_config *c = &m->cfg;
    const agi_layer_weights *w = &m->w.layers[l];
    int D = c->dim, KV = c->kv_dim, hs = c->head_dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    const float *x = AGI_LROW(a, x, l, D) + r0 * D;
    float *an = AGI_LROW(a, a, l, D) + r0 * D;
    float *q = AGI_LROW(a, q, l, D), *k = AGI_LROW(a, k, l, KV), *v = AGI_LROW(a, v, l, KV);
    float *heads = AGI_LROW(a, heads, l, D);
    agi_rmsnorm_forward(an, AGI_LROW(a, r_att, l, 1) + r0, x, w->rms_att, N, D, c->rms_eps);
    agi_linear(q + r0 * D, an, w->wq, N, D, D, 0.0f);   /* q[N][D]  = a · Wq^T */
    agi_linear(k + r0 * KV, an, w->wk, N, D, KV, 0.0f); /* k[N][KV] = a · Wk^T */
    agi_linear(v + r0 * KV, an, w->wv, N, D, KV, 0.0f); /* v[N][KV] = a · Wv^T */
    agi_rope_forward(q + r0 * D, N, c->n_heads, hs, p0, p1 - p0, c->rope_theta);
    agi_rope_forward(k + r0 * KV, N, c->n_kv_heads, hs, p0, p1 - p0, c->rope_theta);
    size_t T = (size_t)a->T;
    for (int b = 0; b < a->B; b++) {
        float *att = agi_acts_att(a, c, l, b, 0);
        if (a->keep_att) att += (size_t)p0 * T; /* query row p0 of the full pattern */
        agi_attention_forward(heads + b * T * D, att, q + b * T * D, k + b * T * KV, v + b * T * KV, p0, p1,
                              c->n_heads, c->n_kv_heads, hs, a->att_rows, a->T);
    }
}

void agi_forward_attn_out(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    int D = m->cfg.dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    float *xmid = AGI_LROW(a, xmid, l, D) + r0 * D;
    /* xmid[N][D] = x + heads · Wo^T */
    memcpy(xmid, AGI_LROW(a, x, l, D) + r0 * D, sizeof(float) * (size_t)N * (size_t)D);
    agi_linear(xmid, AGI_LROW(a, heads, l, D) + r0 * D, m->w.layers[l].wo, N, D, D, 1.0f);
}

void agi_forward_mlp_neurons(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    const agi_config *c = &m->cfg;
    const agi_layer_weights *w = &m->w.layers[l];
    int D = c->dim, Hd = c->hidden_dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    float *u = AGI_LROW(a, u, l, D) + r0 * D;
    float *gate = AGI_LROW(a, gate, l, Hd) + r0 * Hd, *up = AGI_LROW(a, up, l, Hd) + r0 * Hd;
    agi_rmsnorm_forward(u, AGI_LROW(a, r_ffn, l, 1) + r0, AGI_LROW(a, xmid, l, D) + r0 * D, w->rms_ffn, N, D, c->rms_eps);
    agi_linear(gate, u, w->w1, N, D, Hd, 0.0f); /* gate[N][Hd] = u · W1^T */
    agi_linear(up, u, w->w3, N, D, Hd, 0.0f);   /* up[N][Hd]   = u · W3^T */
    agi_swiglu_forward(AGI_LROW(a, n, l, Hd) + r0 * Hd, gate, up, (long)N * Hd);
}

void agi_forward_mlp_out(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    int D = m->cfg.dim, Hd = m->cfg.hidden_dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    float *mo = AGI_LROW(a, mlp_out, l, D) + r0 * D;
    agi_linear(mo, AGI_LROW(a, n, l, Hd) + r0 * Hd, m->w.layers[l].w2, N, Hd, D, 0.0f); /* [N][D] = n · W2^T */
    agi_residual_forward(AGI_LROW(a, x, l + 1, D) + r0 * D, AGI_LROW(a, xmid, l, D) + r0 * D, mo, (long)N * D);
}

void agi_forward_final(const ag_model *m, agi_acts *a, int p0, int p1) {
    const agi_config *c = &m->cfg;
    int D = c->dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    agi_rmsnorm_forward(a->xfin + r0 * D, a->r_fin + r0, AGI_LROW(a, x, c->n_layers, D) + r0 * D, m->w.rms_final, N, D,
                        c->rms_eps);
    if (a->want_logits) /* logits[N][V] = xfin · Wcls^T */
        agi_linear(a->logits + r0 * (size_t)c->vocab_size, a->xfin + r0 * D, m->w.wcls, N, D, c->vocab_size, 0.0f);
}

void agi_forward_from(const ag_model *m, agi_acts *a, int l0, int p0, int p1) {
    for (int l = l0; l < m->cfg.n_layers; l++) {
        agi_forward_attn_heads(m, a, l, p0, p1);
        agi_forward_attn_out(m, a, l, p0, p1);
        agi_forward_mlp_neurons(m, a, l, p0, p1);
        agi_forward_mlp_out(m, a, l, p0, p1);
    }
    agi_forward_final(m, a, p0, p1);
}

void agi_forward(const ag_model *m, agi_acts *a, int p0, int p1) {
    agi_forward_embed(m, a, p0, p1);
    agi_forward_from(m, a, 0, p0, p1);
}
