/* Targets f of the attribution methods: resolution (defaults, validation) and evaluation of
 * f and of its cotangent seed df/d(read point) on any forward sequence of an agi_acts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/blas.h"
#include "methods/method.h"

static int is_logit_kind(int k) { return k >= AG_TARGET_LOGIT && k <= AG_TARGET_LOGIT_DIFF; }

static void site_text(int kind, int layer, char *buf, size_t cap) {
    if (ag_site_name(kind, layer, buf, cap, NULL) != AG_OK) snprintf(buf, cap, "site %d", kind);
}

/* Layer range check of a site against the model; kind validity too. */
static ag_status check_site(const agi_config *c, int kind, int layer, const char *func, const char *field) {
    if (kind == AG_SITE_FEATURE)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func,
                         "%s = AG_SITE_FEATURE (feature.L): transcoder features are an intervention site, not a target site", field);
    if (kind < AG_SITE_EMBED || kind > AG_SITE_ATTN)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s = %d is not an AG_SITE_* value", field, kind);
    if (kind == AG_SITE_EMBED) return AG_OK;
    int max = kind == AG_SITE_RESID ? c->n_layers : c->n_layers - 1;
    if (layer < 0 || layer > max)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "%s: layer %d is outside [0, %d] for this model", field, layer, max);
    return AG_OK;
}

int agi_target_station(const agi_config *c, const agi_target *t) {
    if (is_logit_kind(t->kind)) return AGI_STATION_FINAL(c);
    return agi_station(c, t->site_kind, t->site_layer);
}

int agi_target_width(const agi_config *c, const agi_target *t) {
    return is_logit_kind(t->kind) ? c->dim : agi_site_width(c, t->site_kind);
}

ag_status agi_target_resolve(const ag_trace *trace, const ag_attribute_options *o, int site_kind, int site_layer,
                             agi_target *t, const char *func) {
    const agi_config *c = &trace->model->cfg;
    const int T = trace->acts.T, V = c->vocab_size;
    memset(t, 0, sizeof *t);
    t->kind = o->target_kind;
    t->token = t->token_b = t->index = -1;
    if (t->kind < AG_TARGET_LOGIT || t->kind > AG_TARGET_UNIT)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->target_kind = %d is not an AG_TARGET_* value", t->kind);
    if (o->target_position < -1 || o->target_position >= T)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->target_position = %d is outside [0, %d) (or -1 for the last)",
                         o->target_position, T);
    t->position = o->target_position < 0 ? T - 1 : o->target_position;
    if (is_logit_kind(t->kind)) {
        const float *lg = trace->acts.logits + (size_t)t->position * (size_t)V;
        if (o->target_token < -1 || o->target_token >= V)
            return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->target_token = %d is outside the vocabulary [0, %d)",
                             o->target_token, V);
        if (o->target_token >= 0) {
            t->token = o->target_token;
        } else { /* the top logit (lowest id on ties) */
            int best = 0;
            for (int v = 1; v < V; v++)
                if (lg[v] > lg[best]) best = v;
            t->token = best;
        }
        if (t->kind == AG_TARGET_LOGIT_DIFF) {
            if (o->target_token_b < -1 || o->target_token_b >= V)
                return agi_error(AG_ERR_INVALID_ARGUMENT, func,
                                 "opts->target_token_b = %d is outside the vocabulary [0, %d)", o->target_token_b, V);
            if (o->target_token_b >= 0) {
                t->token_b = o->target_token_b;
            } else { /* the highest logit other than token */
                int best = t->token == 0 ? 1 : 0;
                for (int v = 0; v < V; v++)
                    if (v != t->token && lg[v] > lg[best]) best = v;
                t->token_b = best;
            }
        }
    } else {
        t->site_kind = o->target_site_kind != 0 ? o->target_site_kind
                                                : (t->kind == AG_TARGET_UNIT ? AG_SITE_MLP : AG_SITE_RESID);
        t->site_layer = t->site_kind == AG_SITE_EMBED ? 0 : o->target_layer;
        ag_status st = check_site(c, t->site_kind, t->site_layer, func, "opts->target_site_kind/target_layer");
        if (st != AG_OK) return st;
        int width = agi_site_width(c, t->site_kind);
        if (t->kind == AG_TARGET_UNIT) {
            if (o->target_index < 0 || o->target_index >= width)
                return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->target_index = %d is outside [0, %d)",
                                 o->target_index, width);
            t->index = o->target_index;
        } else {
            if (!o->target_direction)
                return agi_error(AG_ERR_INVALID_ARGUMENT, func,
                                 "opts->target_direction is NULL (AG_TARGET_DIRECTION needs %d floats)", width);
            for (int i = 0; i < width; i++)
                if (!isfinite(o->target_direction[i]))
                    return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->target_direction[%d] is not finite", i);
            t->direction = o->target_direction;
        }
    }
    if (agi_target_station(c, t) < agi_station(c, site_kind, site_layer)) {
        char a[32], b[32];
        site_text(t->site_kind, t->site_layer, a, sizeof a);
        site_text(site_kind, site_layer, b, sizeof b);
        return agi_error(AG_ERR_INVALID_ARGUMENT, func,
                         "the target (at %s) lies upstream of the site %s and does not depend on it", a, b);
    }
    return AG_OK;
}

void agi_mean_row(float *out, double *acc, const float *W, int rows, int cols) {
    for (int i = 0; i < cols; i++) acc[i] = 0.0;
    for (int v = 0; v < rows; v++)
        for (int i = 0; i < cols; i++) acc[i] += W[(size_t)v * cols + i];
    for (int i = 0; i < cols; i++) out[i] = (float)(acc[i] / rows);
}

ag_status agi_target_ctx_init(agi_target_ctx *tc, const ag_model *m, const char *func) {
    memset(tc, 0, sizeof *tc);
    tc->m = m;
    tc->logits = agi_malloc(sizeof(float) * (size_t)m->cfg.vocab_size, func);
    tc->wmean = agi_malloc(sizeof(float) * (size_t)m->cfg.dim, func);
    size_t nd = (size_t)(m->cfg.vocab_size > m->cfg.dim ? m->cfg.vocab_size : m->cfg.dim);
    tc->dtmp = agi_malloc(sizeof(double) * nd, func);
    if (!tc->logits || !tc->wmean || !tc->dtmp) {
        agi_target_ctx_free(tc);
        return AG_ERR_OUT_OF_MEMORY;
    }
    return AG_OK;
}

void agi_target_ctx_free(agi_target_ctx *tc) {
    free(tc->logits);
    free(tc->wmean);
    free(tc->dtmp);
    memset(tc, 0, sizeof *tc);
}

ag_status agi_target_eval(agi_target_ctx *tc, const agi_acts *a, int s, const agi_target *t, double *value,
                          float *seed, const char *func) {
    const agi_config *c = &tc->m->cfg;
    const int D = c->dim, V = c->vocab_size;
    const float *W = tc->m->w.wcls;
    double f = 0.0;
    int width = agi_target_width(c, t);
    if (is_logit_kind(t->kind)) {
        const float *x = a->xfin + ((size_t)s * (size_t)a->T + (size_t)t->position) * (size_t)D;
        agi_linear(tc->logits, x, W, 1, D, V, 0.0f); /* logits[V] = Wcls · xfin[p] */
        const float *lg = tc->logits;
        const float *wv = W + (size_t)t->token * D;
        if (t->kind == AG_TARGET_LOGIT || t->kind == AG_TARGET_LOGIT_DIFF) {
            f = lg[t->token];
            if (seed) memcpy(seed, wv, sizeof(float) * (size_t)D);
            if (t->kind == AG_TARGET_LOGIT_DIFF) {
                f -= lg[t->token_b];
                if (seed) agi_axpy(D, -1.0f, W + (size_t)t->token_b * D, seed);
            }
        } else if (t->kind == AG_TARGET_DEMEANED_LOGIT) {
            double mean = 0.0;
            for (int v = 0; v < V; v++) mean += lg[v];
            f = lg[t->token] - mean / V;
            if (seed) {
                if (!tc->have_wmean) { /* the classifier's mean row */
                    agi_mean_row(tc->wmean, tc->dtmp, W, V, D);
                    tc->have_wmean = 1;
                }
                for (int i = 0; i < D; i++) seed[i] = wv[i] - tc->wmean[i];
            }
        } else { /* LOGPROB, PROB: softmax p; d log p_v = W_v - p^T W */
            double mx = lg[0], sum = 0.0;
            for (int v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
            for (int v = 0; v < V; v++) sum += (tc->dtmp[v] = exp((double)lg[v] - mx));
            double logp = (double)lg[t->token] - mx - log(sum);
            double pv = tc->dtmp[t->token] / sum;
            f = t->kind == AG_TARGET_LOGPROB ? logp : pv;
            if (seed) {
                float *p = tc->logits; /* reuse: probabilities as float */
                for (int v = 0; v < V; v++) p[v] = (float)(tc->dtmp[v] / sum);
                /* seed[D] = -(p^T W) */
                agi_gemm(0, 0, 1, D, V, -1.0f, p, V, W, D, 0.0f, seed, D);
                agi_axpy(D, 1.0f, wv, seed);
                if (t->kind == AG_TARGET_PROB)
                    for (int i = 0; i < D; i++) seed[i] *= (float)pv;
            }
        }
    } else {
        const float *z = agi_site_ptr(a, c, t->site_kind, t->site_layer, s) + (size_t)t->position * (size_t)width;
        if (t->kind == AG_TARGET_UNIT) {
            f = z[t->index];
            if (seed) {
                memset(seed, 0, sizeof(float) * (size_t)width);
                seed[t->index] = 1.0f;
            }
        } else {
            for (int i = 0; i < width; i++) f += (double)t->direction[i] * z[i];
            if (seed) memcpy(seed, t->direction, sizeof(float) * (size_t)width);
        }
    }
    *value = f;
    if (!isfinite(f)) return agi_error(AG_ERR_NUMERIC, func, "the target value is not finite (%g)", f);
    if (seed)
        for (int i = 0; i < width; i++)
            if (!isfinite(seed[i])) return agi_error(AG_ERR_NUMERIC, func, "the target's gradient seed is not finite");
    return AG_OK;
}
