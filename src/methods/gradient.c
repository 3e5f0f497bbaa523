/* The gradient method: g = df/dz of the real model at the traced input, and gradient x
 * activation g ⊙ z. B targets share the trace's forward: their cotangents are B sequences
 * of one batched reverse pass (each backward matmul one GEMM over B*T rows). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "methods/method.h"


static ag_status grad_vjp(void *state, const agi_target *targets, int B, agi_method_result *res) {
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
    agi_seed *seeds = agi_calloc((size_t)B, sizeof *seeds, func);
    float *seedv = agi_calloc((size_t)B * (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim), sizeof(float), func);
    float *grad = res->gradient ? res->gradient : agi_malloc((size_t)B * n * sizeof(float), func);
    agi_backward bw = {0};
    if (!seeds || !seedv || !grad) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    int wmax = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    for (int b = 0; b < B; b++) {
        st = agi_target_eval(&tc, &tr->acts, 0, &targets[b], &res->target_value[b], seedv + (size_t)b * wmax, func);
        if (st != AG_OK) goto done;
        res->baseline_value[b] = NAN;
        seeds[b] = (agi_seed){b, agi_target_station(c, &targets[b]), targets[b].position, 1.0f, seedv + (size_t)b * wmax};
    }
    double t1 = agi_now_seconds();
    st = agi_backward_init(&bw, m, &tr->acts, B, func);
    if (st != AG_OK) goto done;
    agi_backward_run(&bw, seeds, B, s->site_kind, s->site_layer, grad);
    double t2 = agi_now_seconds();
    const float *z = agi_site_ptr(&tr->acts, c, s->site_kind, s->site_layer, 0);
    for (int b = 0; b < B; b++) {
        const float *g = grad + (size_t)b * n;
        float *v = res->values + (size_t)b * n;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(g[i])) {
                st = agi_error(AG_ERR_NUMERIC, func, "the gradient is not finite at element %zu", i);
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
    free(seeds);
    free(seedv);
    agi_target_ctx_free(&tc);
    return st;
}

const agi_method agi_method_gradient = {"gradient", AG_METHOD_GRADIENT, agi_site_state_prepare, grad_vjp, agi_site_state_release};
