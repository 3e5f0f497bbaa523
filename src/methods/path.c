/* The path and ig methods: integrated gradients along a piecewise-linear path through waypoints
 * (segment k from waypoint k to waypoint k+1; completeness: the sum of the attributions is
 * f(last) - f(first)), or, without waypoints, the average of straight-line IG over the
 * baselines of the options, which is the ig method (it ignores waypoints). The segments go to
 * the integrator of ig.c, so with two waypoints (baseline, input) the result is exactly
 * AG_METHOD_IG's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "methods/method.h"

typedef struct path_state {
    const ag_trace *trace;
    int kind, layer;
    float *points;  /* owned copies: waypoints or baselines */
    int n_points;
    agi_segment *segs;
    int n_segs;
    agi_integrator ig;
    const char *func;
} path_state;

static void path_release(void *state) {
    path_state *s = state;
    if (!s) return;
    free(s->points);
    free(s->segs);
    free(s);
}

/* waypoints: 1 for the path method (the options' waypoints, if any), 0 for ig (baselines). */
static ag_status prepare(const agi_method_request *req, void **state, int waypoints) {
    const ag_attribute_options *o = req->opts;
    const char *func = req->func;
    path_state *s = agi_calloc(1, sizeof *s, func);
    if (!s) return AG_ERR_OUT_OF_MEMORY;
    s->trace = req->trace, s->kind = req->site_kind, s->layer = req->site_layer, s->func = func;
    size_t n = agi_site_size(req->trace, s->kind);
    const float *input = agi_site_ptr(&req->trace->acts, &req->trace->model->cfg, s->kind, s->layer, 0);
    ag_status st = agi_integrator_from_options(o, &s->ig, func);
    if (st != AG_OK) goto fail;
    if (!waypoints || o->n_waypoints == 0) { /* average over the baselines */
        st = agi_baselines_build(req->trace, s->kind, s->layer, o, &s->points, &s->n_points, func);
        if (st != AG_OK) goto fail;
        s->n_segs = s->n_points;
        s->segs = agi_calloc((size_t)s->n_segs, sizeof *s->segs, func);
        if (!s->segs) goto oom;
        for (int b = 0; b < s->n_segs; b++)
            s->segs[b] = (agi_segment){s->points + (size_t)b * n, input, 1.0 / s->n_segs, 1, 1, 1};
    } else {
        if (o->n_waypoints < 2 || o->n_waypoints > 65536) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->n_waypoints = %d: a path needs 0 or 2..65536 waypoints",
                           o->n_waypoints);
            goto fail;
        }
        if (!o->waypoints) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->waypoints is NULL (n_waypoints = %d)", o->n_waypoints);
            goto fail;
        }
        s->n_points = o->n_waypoints;
        s->points = agi_malloc(sizeof(float) * (size_t)s->n_points * n, func);
        s->n_segs = s->n_points - 1;
        s->segs = agi_calloc((size_t)s->n_segs, sizeof *s->segs, func);
        if (!s->points || !s->segs) goto oom;
        for (size_t i = 0; i < (size_t)s->n_points * n; i++) {
            if (!isfinite(o->waypoints[i])) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->waypoints[%zu] (waypoint %zu) is not finite", i, i / n);
                goto fail;
            }
            s->points[i] = o->waypoints[i];
        }
        for (int k = 0; k < s->n_segs; k++) {
            const float *a = s->points + (size_t)k * n, *b = s->points + (size_t)(k + 1) * n;
            int last = k == s->n_segs - 1;
            /* a path ending at the input reads f(input) from the trace, as ig does */
            int at_input = last && memcmp(b, input, n * sizeof(float)) == 0;
            s->segs[k] = (agi_segment){a, at_input ? input : b, 1.0, k == 0, last, at_input};
        }
    }
    *state = s;
    return AG_OK;
oom:
    st = AG_ERR_OUT_OF_MEMORY;
fail:
    path_release(s);
    return st;
}

static ag_status path_prepare(const agi_method_request *req, void **state) { return prepare(req, state, 1); }
static ag_status ig_prepare(const agi_method_request *req, void **state) { return prepare(req, state, 0); }

static ag_status path_vjp(void *state, const agi_target *targets, int B, agi_method_result *res) {
    path_state *s = state;
    return agi_integrate(s->trace, s->kind, s->layer, s->segs, s->n_segs, &s->ig, targets, B, res, s->func);
}

const agi_method agi_method_path = {"path", AG_METHOD_PATH, path_prepare, path_vjp, path_release};
const agi_method agi_method_ig = {"ig", AG_METHOD_IG, ig_prepare, path_vjp, path_release};
