/* The Llama forward pass, stage by stage (see forward.h). Shapes: D model width,
 * KV = n_kv_heads*head_dim, Hd MLP width, V vocabulary; rows are (sequence, position).
 *
 * Every stage is written once, as agi_forward_ctl_*: with a NULL control descriptor it is the
 * plain forward; with one it can take norm scales, attention patterns, gate factors and MLP
 * outputs from a clean trace (the local replacement model and its "direct" variant) and apply
 * interventions (clamped units, vectors added to the residual stream). */
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

/* ---- helpers of the controlled stages ------------------------------------------------------ */

static unsigned frozen(const agi_fwd_ctl *ctl, unsigned what) { return ctl ? (ctl->freeze & what) : 0u; }

/* out[N][D] = x * r * g with r given (a norm with its scale frozen: linear in x). */
static void rmsnorm_fixed_scale(float *out, const float *x, const float *r, const float *g, int N, int D) {
    for (int n = 0; n < N; n++) {
        const float *xn = x + (long)n * D;
        float *on = out + (long)n * D;
        float rn = r[n];
        for (int i = 0; i < D; i++) on[i] = xn[i] * rn * g[i];
    }
}

/* Attention with a fixed pattern, queries [p0, p1) of one sequence: heads_h = P_h · v_h, one
 * GEMM per head. P: pattern of head h at P + h*att_rows*ld, query row p at row p (ld = T). */
static void attention_fixed_pattern(float *out, const float *att, const float *v, int p0, int p1, int H, int KVH,
                                    int hs, int att_rows, int ld) {
    int D = H * hs, KV = KVH * hs, Tq = p1 - p0, group = H / KVH;
    for (int h = 0; h < H; h++) {
        const float *P = att + (long)h * att_rows * ld + (long)p0 * ld;
        /* out_h[Tq][hs] = P[Tq][p1] · v_h[p1][hs] */
        agi_gemm(0, 0, Tq, hs, p1, 1.0f, P, ld, v + (h / group) * hs, KV, 0.0f, out + (long)p0 * D + h * hs, D);
    }
}

/* Positions of edit e inside [p0, p1): [*b, *e), empty when *b >= *e. */
static void edit_span(const agi_edit *e, int p0, int p1, int *b, int *en) {
    *b = e->pos_begin > p0 ? e->pos_begin : p0;
    *en = e->pos_end < p1 ? e->pos_end : p1;
}

/* x[p] += coef * vec for the edits of `kind` at `layer`; rows of positions (B = 1). */
static void apply_adds(const agi_fwd_ctl *ctl, int kind, int layer, float *base, int D, int p0, int p1) {
    if (!ctl) return;
    for (int i = 0; i < ctl->n_edits; i++) {
        const agi_edit *e = &ctl->edits[i];
        if (e->kind != kind || e->layer != layer) continue;
        int b, en;
        edit_span(e, p0, p1, &b, &en);
        for (int p = b; p < en; p++) agi_axpy(D, e->coef, e->vec, base + (size_t)p * (size_t)D);
    }
}

/* ---- stages -------------------------------------------------------------------------------- */

void agi_forward_embed(const ag_model *m, agi_acts *a, int p0, int p1) {
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    int D = m->cfg.dim;
    agi_embed_forward(a->x + r0 * D, a->tokens + r0, m->w.token_embedding, N, D);
}

void agi_forward_ctl_attn_heads(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1) {
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
    if (frozen(ctl, AGI_FREEZE_NORMS))
        rmsnorm_fixed_scale(an, x, AGI_LROW(ctl->clean, r_att, l, 1) + r0, w->rms_att, N, D);
    else
        agi_rmsnorm_forward(an, AGI_LROW(a, r_att, l, 1) + r0, x, w->rms_att, N, D, c->rms_eps);
    if (frozen(ctl, AGI_FREEZE_ATTN)) { /* only the OV path: v, then the clean pattern */
        agi_linear(v + r0 * KV, an, w->wv, N, D, KV, 0.0f);
        const agi_acts *cl = ctl->clean;
        attention_fixed_pattern(heads, agi_acts_att(cl, c, l, 0, 0), v, p0, p1, c->n_heads, c->n_kv_heads, hs,
                                cl->att_rows, cl->T);
        return;
    }
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

void agi_forward_ctl_attn_out(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1) {
    int D = m->cfg.dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    float *xmid = AGI_LROW(a, xmid, l, D) + r0 * D;
    /* xmid[N][D] = x + heads · Wo^T */
    memcpy(xmid, AGI_LROW(a, x, l, D) + r0 * D, sizeof(float) * (size_t)N * (size_t)D);
    agi_linear(xmid, AGI_LROW(a, heads, l, D) + r0 * D, m->w.layers[l].wo, N, D, D, 1.0f);
    apply_adds(ctl, AGI_EDIT_ADD_MID, l, AGI_LROW(a, xmid, l, D), D, p0, p1);
}

void agi_forward_ctl_mlp_neurons(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1) {
    const agi_config *c = &m->cfg;
    const agi_layer_weights *w = &m->w.layers[l];
    int D = c->dim, Hd = c->hidden_dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    float *u = AGI_LROW(a, u, l, D) + r0 * D;
    float *gate = AGI_LROW(a, gate, l, Hd) + r0 * Hd, *up = AGI_LROW(a, up, l, Hd) + r0 * Hd;
    float *n = AGI_LROW(a, n, l, Hd) + r0 * Hd;
    if (frozen(ctl, AGI_FREEZE_NORMS))
        rmsnorm_fixed_scale(u, AGI_LROW(a, xmid, l, D) + r0 * D, AGI_LROW(ctl->clean, r_ffn, l, 1) + r0, w->rms_ffn, N, D);
    else
        agi_rmsnorm_forward(u, AGI_LROW(a, r_ffn, l, 1) + r0, AGI_LROW(a, xmid, l, D) + r0 * D, w->rms_ffn, N, D,
                            c->rms_eps);
    if (ctl && ctl->mlp && ctl->mlp->replace) return; /* the MLP is replaced (mlp_out) */
    if (frozen(ctl, AGI_FREEZE_GATES)) { /* n = silu(gate_clean) * (W3 u): linear in u */
        agi_linear(up, u, w->w3, N, D, Hd, 0.0f);
        agi_swiglu_forward(n, AGI_LROW(ctl->clean, gate, l, Hd) + r0 * Hd, up, (long)N * Hd);
    } else {
        agi_linear(gate, u, w->w1, N, D, Hd, 0.0f); /* gate[N][Hd] = u · W1^T */
        agi_linear(up, u, w->w3, N, D, Hd, 0.0f);   /* up[N][Hd]   = u · W3^T */
        agi_swiglu_forward(n, gate, up, (long)N * Hd);
    }
    if (!ctl) return;
    /* clamps: new = mul * current + add (full values; a delta run stores differences) */
    float *nl = AGI_LROW(a, n, l, Hd);
    const float *ncl = ctl->delta ? AGI_LROW(ctl->clean, n, l, Hd) : NULL;
    for (int i = 0; i < ctl->n_edits; i++) {
        const agi_edit *e = &ctl->edits[i];
        if (e->kind != AGI_EDIT_CLAMP || e->layer != l) continue;
        int b, en;
        edit_span(e, p0, p1, &b, &en);
        for (int p = b; p < en; p++) {
            size_t at = (size_t)p * (size_t)Hd + (size_t)e->index;
            if (ncl) {
                float cur = ncl[at] + nl[at];
                nl[at] = (e->mul * cur + e->add) - ncl[at];
            } else {
                nl[at] = e->mul * nl[at] + e->add;
            }
        }
    }
}

void agi_forward_ctl_mlp_out(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1) {
    int D = m->cfg.dim, Hd = m->cfg.hidden_dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    float *mo = AGI_LROW(a, mlp_out, l, D) + r0 * D;
    if (ctl && ctl->mlp && ctl->mlp->replace) {
        ctl->mlp->out(ctl->mlp, m, a, ctl, l, p0, p1, AGI_LROW(a, mlp_out, l, D));
    } else if (frozen(ctl, AGI_FREEZE_MLP_OUT)) {
        /* held at the clean output (difference 0) plus each clamped unit's change along W2[:, i] */
        if (ctl->delta) memset(mo, 0, sizeof(float) * (size_t)N * (size_t)D);
        else memcpy(mo, AGI_LROW(ctl->clean, mlp_out, l, D) + r0 * D, sizeof(float) * (size_t)N * (size_t)D);
        const float *w2 = m->w.layers[l].w2, *nl = AGI_LROW(a, n, l, Hd), *ncl = AGI_LROW(ctl->clean, n, l, Hd);
        float *mol = AGI_LROW(a, mlp_out, l, D);
        for (int i = 0; i < ctl->n_edits; i++) {
            const agi_edit *e = &ctl->edits[i];
            if (e->kind != AGI_EDIT_CLAMP || e->layer != l) continue;
            int b, en;
            edit_span(e, p0, p1, &b, &en);
            for (int p = b; p < en; p++) {
                size_t at = (size_t)p * (size_t)Hd + (size_t)e->index;
                float d = ctl->delta ? nl[at] : nl[at] - ncl[at];
                float *row = mol + (size_t)p * (size_t)D;
                for (int j = 0; j < D; j++) row[j] += d * w2[(size_t)j * (size_t)Hd + (size_t)e->index];
            }
        }
    } else {
        agi_linear(mo, AGI_LROW(a, n, l, Hd) + r0 * Hd, m->w.layers[l].w2, N, Hd, D, 0.0f); /* [N][D] = n · W2^T */
    }
    if (ctl && ctl->mlp && !ctl->mlp->replace) ctl->mlp->out(ctl->mlp, m, a, ctl, l, p0, p1, AGI_LROW(a, mlp_out, l, D));
    agi_residual_forward(AGI_LROW(a, x, l + 1, D) + r0 * D, AGI_LROW(a, xmid, l, D) + r0 * D, mo, (long)N * D);
    apply_adds(ctl, AGI_EDIT_ADD_RESID, l + 1, AGI_LROW(a, x, l + 1, D), D, p0, p1);
}

void agi_forward_ctl_final(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int p0, int p1) {
    const agi_config *c = &m->cfg;
    int D = c->dim;
    size_t r0;
    int N;
    agi_forward_rows(a, p0, p1, &r0, &N);
    const float *xL = AGI_LROW(a, x, c->n_layers, D) + r0 * D;
    if (frozen(ctl, AGI_FREEZE_NORMS))
        rmsnorm_fixed_scale(a->xfin + r0 * D, xL, ctl->clean->r_fin + r0, m->w.rms_final, N, D);
    else
        agi_rmsnorm_forward(a->xfin + r0 * D, a->r_fin + r0, xL, m->w.rms_final, N, D, c->rms_eps);
    if (a->want_logits) /* logits[N][V] = xfin · Wcls^T */
        agi_linear(a->logits + r0 * (size_t)c->vocab_size, a->xfin + r0 * D, m->w.wcls, N, D, c->vocab_size, 0.0f);
}

void agi_forward_ctl_from(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l0, int p0, int p1) {
    apply_adds(ctl, AGI_EDIT_ADD_RESID, l0, AGI_LROW(a, x, l0, m->cfg.dim), m->cfg.dim, p0, p1);
    for (int l = l0; l < m->cfg.n_layers; l++) {
        agi_forward_ctl_attn_heads(m, a, ctl, l, p0, p1);
        agi_forward_ctl_attn_out(m, a, ctl, l, p0, p1);
        agi_forward_ctl_mlp_neurons(m, a, ctl, l, p0, p1);
        agi_forward_ctl_mlp_out(m, a, ctl, l, p0, p1);
    }
    agi_forward_ctl_final(m, a, ctl, p0, p1);
}

void agi_forward_ctl(const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int p0, int p1) {
    agi_forward_embed(m, a, p0, p1);
    agi_forward_ctl_from(m, a, ctl, 0, p0, p1);
}

/* ---- the plain stages ------------------------------------------------------------------------ */

void agi_forward_attn_heads(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    agi_forward_ctl_attn_heads(m, a, NULL, l, p0, p1);
}
void agi_forward_attn_out(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    agi_forward_ctl_attn_out(m, a, NULL, l, p0, p1);
}
void agi_forward_mlp_neurons(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    agi_forward_ctl_mlp_neurons(m, a, NULL, l, p0, p1);
}
void agi_forward_mlp_out(const ag_model *m, agi_acts *a, int l, int p0, int p1) {
    agi_forward_ctl_mlp_out(m, a, NULL, l, p0, p1);
}
void agi_forward_final(const ag_model *m, agi_acts *a, int p0, int p1) { agi_forward_ctl_final(m, a, NULL, p0, p1); }
void agi_forward_from(const ag_model *m, agi_acts *a, int l0, int p0, int p1) { agi_forward_ctl_from(m, a, NULL, l0, p0, p1); }
void agi_forward(const ag_model *m, agi_acts *a, int p0, int p1) { agi_forward_ctl(m, a, NULL, p0, p1); }
