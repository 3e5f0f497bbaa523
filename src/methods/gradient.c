/* The gradient method: g = df/dz of the real model at the traced input, and gradient x
 * activation g ⊙ z. B targets share the trace's forward: their cotangents are B sequences
 * of one batched reverse pass (each backward matmul one GEMM over B*T rows).
 *
 * The same pass with norms, attention and gates frozen is the decomposition method
 * (decomposition.c): agi_site_gradient_vjp serves both, `frozen` selecting the model and, at
 * branch sites, the extra pass for the skipping residual's share (baseline_value). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "methods/method.h"


ag_status agi_site_gradient_vjp(void *state, const agi_target *targets, int B, agi_method_result *res, int frozen) {
    agi_site_state *s = state;
    const ag_trace *tr = s->trace;
    const ag_model *m = tr->model;
    const agi_config *c = &m->cfg;
    const char *func = s->func;
    size_t n = agi_site_size(tr, s->site_kind);
    double t0 = agi_now_seconds();
    agi_target_ctx tc;
    ag_status st = agi_target_ctx_init(&tc, m, func);
    if (st != AG_OK) return st;
    int wmax = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    /* frozen, at a branch site: the skipping residual's share needs J after the branch */
    int branch = frozen && (s->site_kind == AG_SITE_MLP || s->site_kind == AG_SITE_ATTN);
    size_t n_rest = (size_t)tr->acts.T * (size_t)c->dim;
    agi_seed *seeds = agi_calloc((size_t)B, sizeof *seeds, func);
    float *seedv = agi_calloc((size_t)B * (size_t)wmax, sizeof(float), func);
    float *grad = res->gradient ? res->gradient : agi_malloc((size_t)B * n * sizeof(float), func);
    float *grest = branch ? agi_malloc((size_t)B * n_rest * sizeof(float), func) : NULL;
    agi_backward bw = {0};
    if (!seeds || !seedv || !grad || (branch && !grest)) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int b = 0; b < B; b++) {
        st = agi_target_eval(&tc, &tr->acts, 0, &targets[b], &res->target_value[b], seedv + (size_t)b * wmax, func);
        if (st != AG_OK) goto done;
        res->baseline_value[b] = frozen ? 0.0 : NAN;
        seeds[b] = (agi_seed){b, agi_target_station(c, &targets[b]), targets[b].position, 1.0f, seedv + (size_t)b * wmax};
    }
    double t1 = agi_now_seconds();
    st = agi_backward_init(&bw, m, &tr->acts, B, func);
    if (st != AG_OK) goto done;
    if (frozen) bw.flags = AGI_BW_FREEZE_NORMS | AGI_BW_FREEZE_ATTN | AGI_BW_FREEZE_GATES;
    agi_backward_run(&bw, seeds, B, s->site_kind, s->site_layer, grad);
    if (branch) {
        /* the skipping residual: J after the branch · the residual before it */
        int after_kind = s->site_kind == AG_SITE_MLP ? AG_SITE_RESID : AG_SITE_MID;
        int after_layer = s->site_kind == AG_SITE_MLP ? s->site_layer + 1 : s->site_layer;
        agi_backward_run(&bw, seeds, B, after_kind, after_layer, grest);
        const float *skip = s->site_kind == AG_SITE_MLP ? AGI_LROW(&tr->acts, xmid, s->site_layer, c->dim)
                                                        : AGI_LROW(&tr->acts, x, s->site_layer, c->dim);
        for (int b = 0; b < B; b++) {
            double acc = 0.0;
            const float *gr = grest + (size_t)b * n_rest;
            for (size_t i = 0; i < n_rest; i++) acc += (double)gr[i] * skip[i];
            res->baseline_value[b] = acc;
        }
    }
    double t2 = agi_now_seconds();
    const float *z = agi_site_ptr(&tr->acts, c, s->site_kind, s->site_layer, 0);
    for (int b = 0; b < B; b++) {
        const float *g = grad + (size_t)b * n;
        float *v = res->values + (size_t)b * n;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(g[i])) {
                st = agi_error(AG_ERR_NUMERIC, func, "the %sgradient is not finite at element %zu", frozen ? "frozen " : "", i);
                goto done;
            }
            v[i] = g[i] * z[i];
        }
    }
    res->has_gradient = res->gradient != NULL;
    res->stats.evaluations += 1;
    res->stats.rounds += 1;
    if (res->stats.batch_size < B) res->stats.batch_size = B;
    res->stats.forward_seconds += t1 - t0;
    res->stats.backward_seconds += t2 - t1;
    res->stats.backward_flops += bw.flops;
done:
    agi_backward_free(&bw);
    if (grad != res->gradient) free(grad);
    free(grest);
    free(seeds);
    free(seedv);
    agi_target_ctx_free(&tc);
    return st;
}

static ag_status grad_vjp(void *state, const agi_target *targets, int B, agi_method_result *res) {
    return agi_site_gradient_vjp(state, targets, B, res, 0);
}

const agi_method agi_method_gradient = {"gradient", AG_METHOD_GRADIENT, agi_site_state_prepare, grad_vjp, agi_site_state_release};
