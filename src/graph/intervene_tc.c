/* Interventions on transcoder features (see intervene.h and the INTERVENTIONS section of
 * attrgraph.h): the clean side of a set on a trace, and the MLP extension of the forward that
 * clamps features through their decoder rows or replaces every MLP by the transcoder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "engine/trace.h"
#include "graph/intervene.h"
#include "transcoder/transcoder.h"

/* ---- the clean side ---------------------------------------------------------------------- */

void agi_tc_clean_free(agi_tc_clean *c) {
    if (!c) return;
    free(c->acts);
    free(c->mult);
    free(c->rest);
    memset(c, 0, sizeof *c);
}

ag_status agi_tc_clean_make(agi_tc_clean *c, const ag_transcoder *tc, const ag_trace *tr, const char *fn) {
    memset(c, 0, sizeof *c);
    const agi_acts *a = &tr->acts;
    int L = tc->L, T = a->T, F = tc->F, D = tc->D;
    c->tc = tc;
    c->L = L, c->T = T, c->F = F, c->D = D;
    c->bos0 = agi_tc_bos0(tr->model, a->tokens);
    size_t LTF = (size_t)L * T * F;
    c->acts = agi_malloc(sizeof(float) * LTF, fn);
    c->mult = agi_malloc(sizeof(float) * LTF, fn);
    c->rest = agi_malloc(sizeof(float) * (size_t)L * T * D, fn);
    const float **ptr = agi_calloc((size_t)L, sizeof *ptr, fn);
    if (!c->acts || !c->mult || !c->rest || !ptr) {
        free(ptr);
        agi_tc_clean_free(c);
        return AG_ERR_OUT_OF_MEMORY;
    }
    for (int l = 0; l < L; l++) {
        float *ac = c->acts + (size_t)l * T * F, *mu = c->mult + (size_t)l * T * F;
        const float *x = agi_tc_input(tc, a, l);
        agi_tc_encode(tc, l, x, T, mu, ac); /* mu = pre for now */
        if (c->bos0) memset(ac, 0, sizeof(float) * (size_t)F);
        for (size_t q = 0; q < (size_t)T * F; q++) mu[q] = ac[q] != 0.0f ? ac[q] / mu[q] : 0.0f;
        ptr[l] = ac;
    }
    for (int l = 0; l < L; l++) { /* rest = mlp_out - sum_s a_s W_dec[s -> l] */
        float *re = c->rest + (size_t)l * T * D;
        memcpy(re, AGI_LROW(a, mlp_out, l, D), sizeof(float) * (size_t)T * D);
        int s0 = tc->kind == AG_TRANSCODER_CROSS_LAYER ? 0 : l;
        for (int s = s0; s <= l; s++) {
            int no = agi_tc_n_out(tc, s), o = l - s;
            if (o >= no) continue;
            agi_gemm(0, 0, T, D, F, -1.0f, ptr[s], F, tc->layers[s].W_dec + (size_t)o * D, no * D, 1.0f, re, D);
        }
    }
    free(ptr);
    return AG_OK;
}

/* ---- the run ------------------------------------------------------------------------------ */

static void tc_out(agi_mlp_ext *ext, const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1,
                   float *mo);

ag_status agi_tc_run_init(agi_tc_run *r, const ag_transcoder *tc, const agi_tc_clean *clean, int kind, int freeze_mult,
                          int T, int bos0, int n_edits, const char *fn) {
    memset(r, 0, sizeof *r);
    r->ext.replace = kind == AGI_TC_LINEAR || kind == AGI_TC_REPLACE;
    r->ext.out = tc_out;
    r->tc = tc;
    r->clean = clean;
    r->kind = kind;
    r->freeze_mult = freeze_mult;
    r->mult = clean ? clean->mult : NULL;
    r->T = T;
    r->bos0 = bos0;
    r->n_edits = n_edits;
    int F = tc->F;
    r->row = agi_malloc(sizeof(float) * (size_t)T * F, fn);
    if (r->ext.replace) r->acts = agi_malloc(sizeof(float) * (size_t)tc->L * T * F, fn);
    if (kind == AGI_TC_REAL) r->fdelta = agi_calloc((size_t)(n_edits > 0 ? n_edits : 1) * T, sizeof(float), fn);
    if (!r->row || (r->ext.replace && !r->acts) || (kind == AGI_TC_REAL && !r->fdelta)) {
        agi_tc_run_free(r);
        return AG_ERR_OUT_OF_MEMORY;
    }
    return AG_OK;
}

void agi_tc_run_reset(agi_tc_run *r, int delta) {
    if (!r->acts) return;
    size_t n = (size_t)r->tc->L * r->T * r->tc->F;
    if (delta || !r->clean) memset(r->acts, 0, sizeof(float) * n);
    else memcpy(r->acts, r->clean->acts, sizeof(float) * n);
}

void agi_tc_run_free(agi_tc_run *r) {
    if (!r) return;
    free(r->acts);
    free(r->row);
    free(r->fdelta);
    memset(r, 0, sizeof *r);
}

/* Positions of edit e inside [p0, p1) without BOS: [*b, *en). */
static void span_of(const agi_tc_run *r, const agi_edit *e, int p0, int p1, int *b, int *en) {
    *b = e->pos_begin > p0 ? e->pos_begin : p0;
    *en = e->pos_end < p1 ? e->pos_end : p1;
    if (r->bos0 && *b == 0) *b = 1;
}

/* mo[p] += d * W_dec of feature f of layer s into layer s + o. */
static void add_dec(const ag_transcoder *tc, int s, int o, int f, float d, float *row) {
    int no = agi_tc_n_out(tc, s), D = tc->D;
    agi_axpy(D, d, tc->layers[s].W_dec + ((size_t)f * no + o) * D, row);
}

static void tc_out(agi_mlp_ext *ext, const ag_model *m, agi_acts *a, const agi_fwd_ctl *ctl, int l, int p0, int p1,
                   float *mo) {
    agi_tc_run *r = (agi_tc_run *)ext;
    const ag_transcoder *tc = r->tc;
    int F = tc->F, D = tc->D, T = r->T;
    (void)m;
    if (r->kind == AGI_TC_DIRECT || r->kind == AGI_TC_REAL) {
        /* REAL: encode the rows of block l that a clamp of layer l touches (current activations) */
        if (r->kind == AGI_TC_REAL) {
            const float *x = agi_tc_input(tc, a, l);
            for (int p = p0; p < p1; p++) {
                int need = 0;
                for (int i = 0; i < ctl->n_edits && !need; i++) {
                    const agi_edit *e = &ctl->edits[i];
                    int b, en;
                    if (e->kind != AGI_EDIT_CLAMP_FEATURE || e->layer != l) continue;
                    span_of(r, e, p0, p1, &b, &en);
                    need = p >= b && p < en;
                }
                if (need) agi_tc_encode(tc, l, x + (size_t)p * D, 1, NULL, r->row + (size_t)p * F);
            }
        }
        for (int i = 0; i < ctl->n_edits; i++) {
            const agi_edit *e = &ctl->edits[i];
            if (e->kind != AGI_EDIT_CLAMP_FEATURE || e->layer > l) continue;
            int s = e->layer, o = l - s;
            if (o >= agi_tc_n_out(tc, s)) continue;
            int b, en;
            span_of(r, e, p0, p1, &b, &en);
            for (int p = b; p < en; p++) {
                float d;
                if (r->kind == AGI_TC_DIRECT) {
                    float cur = r->clean->acts[((size_t)s * T + p) * F + e->index];
                    d = (e->mul * cur + e->add) - cur;
                } else if (o == 0) {
                    float cur = r->row[(size_t)p * F + e->index];
                    d = (e->mul * cur + e->add) - cur;
                    r->fdelta[(size_t)i * T + p] = d;
                } else {
                    d = r->fdelta[(size_t)i * T + p];
                }
                add_dec(tc, s, o, e->index, d, mo + (size_t)p * D);
            }
        }
        return;
    }

    /* LINEAR (delta) / REPLACE (full): recompute the features of block l from its read point
     * (the run's u or x_mid; a delta run: their changes), clamp, decode */
    int N = p1 - p0;
    int lin = r->kind == AGI_TC_LINEAR;
    const float *x = agi_tc_input(tc, a, l) + (size_t)p0 * D;
    const float *cl = r->clean->acts + (size_t)l * T * F, *mu = r->mult + (size_t)l * T * F;
    float *act = r->acts + (size_t)l * T * F + (size_t)p0 * F, *pre = r->row;
    const agi_tc_layer *ly = &tc->layers[l];
    if (lin) {
        agi_linear(pre, x, ly->W_enc, N, D, F, 0.0f); /* the change of W_enc . x (no bias) */
        for (size_t q = 0; q < (size_t)N * F; q++) act[q] = mu[(size_t)p0 * F + q] * pre[q];
    } else {
        for (int n = 0; n < N; n++) memcpy(pre + (size_t)n * F, ly->b_enc, sizeof(float) * (size_t)F);
        agi_linear(pre, x, ly->W_enc, N, D, F, 1.0f);
        if (r->freeze_mult)
            for (size_t q = 0; q < (size_t)N * F; q++) act[q] = mu[(size_t)p0 * F + q] * pre[q];
        else
            agi_tc_activate(tc, l, pre, N, act);
    }
    if (r->bos0 && p0 == 0) /* BOS: no features (its clean value: 0; change 0) */
        memset(act, 0, sizeof(float) * (size_t)F);
    for (int i = 0; i < ctl->n_edits; i++) {
        const agi_edit *e = &ctl->edits[i];
        if (e->kind != AGI_EDIT_CLAMP_FEATURE || e->layer != l) continue;
        int b, en;
        span_of(r, e, p0, p1, &b, &en);
        for (int p = b; p < en; p++) {
            float *v = &act[(size_t)(p - p0) * F + e->index];
            float c0 = lin ? cl[(size_t)p * F + e->index] : 0.0f;
            *v = (e->mul * (c0 + *v) + e->add) - c0; /* full values; a delta run keeps the change */
        }
    }
    /* mo = sum_s a_s W_dec[s -> l] (+ the held rest in a full run) */
    float *mr = mo + (size_t)p0 * D;
    if (lin) memset(mr, 0, sizeof(float) * (size_t)N * D);
    else memcpy(mr, r->clean->rest + ((size_t)l * T + p0) * D, sizeof(float) * (size_t)N * D);
    int s0 = tc->kind == AG_TRANSCODER_CROSS_LAYER ? 0 : l;
    for (int s = s0; s <= l; s++) {
        int no = agi_tc_n_out(tc, s), o = l - s;
        if (o >= no) continue;
        const float *as = r->acts + ((size_t)s * T + p0) * F;
        agi_gemm(0, 0, N, D, F, 1.0f, as, F, tc->layers[s].W_dec + (size_t)o * D, no * D, 1.0f, mr, D);
    }
}
