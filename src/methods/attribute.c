/* ag_attribute: the public entry point of the attribution methods. Validates the generic
 * options (site, target), picks the method's vtable by AG_METHOD_* id, runs prepare / vjp
 * (one target) / release, and packs the answer into an ag_attribution. Also the site-name
 * helpers ag_site_parse / ag_site_name. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "methods/method.h"

/* The decomposition method (src/methods/decomposition.c) is referenced strongly, so a
 * static link always pulls it in. */
#define AGI_DECOMPOSITION (&agi_method_decomposition)

ag_status agi_site_state_prepare(const agi_method_request *req, void **state) {
    agi_site_state *s = agi_calloc(1, sizeof *s, req->func);
    if (!s) return AG_ERR_OUT_OF_MEMORY;
    s->trace = req->trace;
    s->site_kind = req->site_kind;
    s->site_layer = req->site_layer;
    s->func = req->func;
    *state = s;
    return AG_OK;
}

void agi_site_state_release(void *state) { free(state); }

struct ag_attribution {
    int32_t method, site_kind, site_layer;
    int64_t shape[3];
    int32_t ndim;
    size_t n;
    float *values;
    float *gradient; /* NULL when the method defines none */
    double target_value, baseline_value, sum, completeness_error;
    agi_target target;
    ag_attribution_stats stats;
};

ag_status ag_attribute_options_init(ag_attribute_options *o, size_t struct_size) {
    static const char *const fn = "ag_attribute_options_init";
    if (!o) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t))
        return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    ag_attribute_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.method = AG_METHOD_GRADIENT;
    d.site_kind = AG_SITE_EMBED;
    d.target_kind = AG_TARGET_LOGIT;
    d.target_token = -1;
    d.target_token_b = -1;
    d.target_position = -1;
    d.quadrature = AG_QUAD_GAUSS_LEGENDRE;
    d.baseline_kind = AG_BASELINE_ZERO;
    d.n_baselines = 1;
    d.tolerance = 1e-3;
    d.max_evaluations = 8192;
    /* an older (shorter) struct gets the prefix; a newer one a zero tail */
    memset(o, 0, struct_size);
    memcpy(o, &d, struct_size < sizeof d ? struct_size : sizeof d);
    o->struct_size = struct_size;
    return AG_OK;
}

size_t agi_site_size(const ag_trace *trace, int site_kind) {
    return (size_t)trace->acts.T * (size_t)agi_site_width(&trace->model->cfg, site_kind);
}

static const agi_method *method_by_id(int32_t id) {
    switch (id) {
    case AG_METHOD_GRADIENT: return &agi_method_gradient;
    case AG_METHOD_IG: return &agi_method_ig;
    case AG_METHOD_PATH: return &agi_method_path;
    case AG_METHOD_DECOMPOSITION: return AGI_DECOMPOSITION;
    default: return NULL;
    }
}

ag_status ag_attribute(const ag_trace *trace, const ag_attribute_options *opts, ag_attribution **out) {
    static const char *const fn = "ag_attribute";
    double t0 = agi_now_seconds();
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!trace) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "trace is NULL");
    ag_attribute_options o;
    ag_attribute_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    const agi_config *c = &trace->model->cfg;
    if (o.method < AG_METHOD_GRADIENT || o.method > AG_METHOD_DECOMPOSITION)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->method = %d is not an AG_METHOD_* value", o.method);
    const agi_method *meth = method_by_id(o.method);
    if (!meth)
        return agi_error(AG_ERR_UNSUPPORTED, fn, "opts->method = %d (decomposition) is not built into this library", o.method);
    if (o.site_kind == AG_SITE_FEATURE)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                         "opts->site_kind = AG_SITE_FEATURE (feature.L): transcoder features are an intervention site "
                         "(ag_intervene), not an attribution site; attribute to mlp.L, or build a graph with "
                         "basis AG_BASIS_TRANSCODERS");
    if (o.site_kind < AG_SITE_EMBED || o.site_kind > AG_SITE_ATTN)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->site_kind = %d is not an AG_SITE_* value", o.site_kind);
    if (o.site_kind == AG_SITE_EMBED) o.site_layer = 0;
    int max_layer = o.site_kind == AG_SITE_RESID ? c->n_layers : c->n_layers - 1;
    if (o.site_layer < 0 || o.site_layer > max_layer)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->site_layer = %d is outside [0, %d] for this site kind and model",
                         o.site_layer, max_layer);
    ag_attribution *r = agi_calloc(1, sizeof *r, fn);
    if (!r) return AG_ERR_OUT_OF_MEMORY;
    st = agi_target_resolve(trace, &o, o.site_kind, o.site_layer, &r->target, fn);
    if (st != AG_OK) {
        free(r);
        return st;
    }
    r->method = o.method, r->site_kind = o.site_kind, r->site_layer = o.site_layer;
    r->n = agi_site_size(trace, o.site_kind);
    r->shape[0] = trace->acts.T;
    if (o.site_kind == AG_SITE_ATTN) {
        r->ndim = 3, r->shape[1] = c->n_heads, r->shape[2] = c->head_dim;
    } else {
        r->ndim = 2, r->shape[1] = agi_site_width(c, o.site_kind);
    }
    r->values = agi_malloc(r->n * sizeof(float), fn);
    r->gradient = agi_malloc(r->n * sizeof(float), fn);
    if (!r->values || !r->gradient) {
        ag_attribution_free(r);
        return AG_ERR_OUT_OF_MEMORY;
    }
    agi_method_result res;
    memset(&res, 0, sizeof res);
    res.values = r->values;
    res.gradient = r->gradient;
    res.target_value = &r->target_value;
    res.baseline_value = &r->baseline_value;
    res.stats.struct_size = sizeof res.stats;
    agi_method_request req = {trace, o.site_kind, o.site_layer, &o, fn};
    void *state = NULL;
    st = meth->prepare(&req, &state);
    if (st == AG_OK) {
        st = meth->vjp(state, &r->target, 1, &res);
        meth->release(state);
    }
    if (st != AG_OK) {
        ag_attribution_free(r);
        return st;
    }
    if (!res.has_gradient) {
        free(r->gradient);
        r->gradient = NULL;
    }
    double sum = 0.0;
    for (size_t i = 0; i < r->n; i++) sum += r->values[i];
    r->sum = sum;
    r->completeness_error = isnan(r->baseline_value) ? NAN : sum - (r->target_value - r->baseline_value);
    r->stats = res.stats;
    r->stats.total_seconds = agi_now_seconds() - t0;
    agi_clear_error();
    *out = r;
    return AG_OK;
}

void ag_attribution_free(ag_attribution *r) {
    if (!r) return;
    free(r->values);
    free(r->gradient);
    free(r);
}

ag_status ag_attribution_shape(const ag_attribution *r, int64_t shape[3], int32_t *ndim) {
    if (!r || !shape || !ndim)
        return agi_error(AG_ERR_INVALID_ARGUMENT, "ag_attribution_shape", "%s is NULL", !r ? "attr" : !shape ? "shape" : "ndim");
    for (int i = 0; i < 3; i++) shape[i] = i < r->ndim ? r->shape[i] : 0;
    *ndim = r->ndim;
    return AG_OK;
}

size_t ag_attribution_size(const ag_attribution *r) { return r ? r->n : 0; }
const float *ag_attribution_values(const ag_attribution *r) { return r ? r->values : NULL; }
const float *ag_attribution_gradient(const ag_attribution *r) { return r ? r->gradient : NULL; }
double ag_attribution_target_value(const ag_attribution *r) { return r ? r->target_value : NAN; }
double ag_attribution_baseline_value(const ag_attribution *r) { return r ? r->baseline_value : NAN; }
double ag_attribution_sum(const ag_attribution *r) { return r ? r->sum : NAN; }
double ag_attribution_completeness_error(const ag_attribution *r) { return r ? r->completeness_error : NAN; }
int64_t ag_attribution_evaluations(const ag_attribution *r) { return r ? r->stats.evaluations : 0; }

ag_status ag_attribution_target(const ag_attribution *r, int32_t *kind, int32_t *token, int32_t *position) {
    if (!r) return agi_error(AG_ERR_INVALID_ARGUMENT, "ag_attribution_target", "attr is NULL");
    if (kind) *kind = r->target.kind;
    if (token) *token = r->target.token;
    if (position) *position = r->target.position;
    return AG_OK;
}

ag_status ag_attribution_get_stats(const ag_attribution *r, ag_attribution_stats *out) {
    static const char *const fn = "ag_attribution_get_stats";
    if (!r || !out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !r ? "attr" : "out");
    size_t given = out->struct_size;
    ag_status st = agi_check_struct_size(given, offsetof(ag_attribution_stats, evaluations) + sizeof(int64_t), fn, "out");
    if (st != AG_OK) return st;
    ag_attribution_stats s = r->stats;
    s.struct_size = given;
    memcpy(out, &s, given < sizeof s ? given : sizeof s);
    return AG_OK;
}

/* ---- site names ------------------------------------------------------------------------- */

static const char *const SITE_PREFIX[] = {NULL, "embed", "resid", "mid", "mlp", "attn", "feature"};

ag_status ag_site_parse(const char *text, int32_t *kind, int32_t *layer) {
    static const char *const fn = "ag_site_parse";
    if (!text || !kind || !layer) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !text ? "text" : !kind ? "kind" : "layer");
    if (strcmp(text, "embed") == 0) {
        *kind = AG_SITE_EMBED;
        *layer = 0;
        return AG_OK;
    }
    for (int k = AG_SITE_RESID; k <= AG_SITE_FEATURE; k++) {
        size_t len = strlen(SITE_PREFIX[k]);
        if (strncmp(text, SITE_PREFIX[k], len) != 0 || text[len] != '.') continue;
        const char *d = text + len + 1;
        long v = 0;
        int nd = 0;
        for (; d[nd]; nd++) {
            if (d[nd] < '0' || d[nd] > '9' || nd >= 6) break;
            v = v * 10 + (d[nd] - '0');
        }
        if (nd == 0 || d[nd] != '\0') break;
        *kind = k;
        *layer = (int32_t)v;
        return AG_OK;
    }
    return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                     "'%s' is not a site (embed, resid.L, mid.L, mlp.L, attn.L or feature.L with L a layer number)", text);
}

ag_status ag_site_name(int32_t kind, int32_t layer, char *buf, size_t cap, size_t *n_out) {
    static const char *const fn = "ag_site_name";
    if (kind < AG_SITE_EMBED || kind > AG_SITE_FEATURE)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "kind = %d is not an AG_SITE_* value", kind);
    if (kind != AG_SITE_EMBED && layer < 0) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is negative", layer);
    char tmp[32];
    int len = kind == AG_SITE_EMBED ? snprintf(tmp, sizeof tmp, "embed") : snprintf(tmp, sizeof tmp, "%s.%d", SITE_PREFIX[kind], layer);
    if (n_out) *n_out = (size_t)len;
    if (!buf || cap < (size_t)len + 1) {
        if (buf && cap) buf[0] = '\0';
        return agi_error(AG_ERR_BUFFER_TOO_SMALL, fn, "the name needs %d bytes, the buffer has %zu", len + 1, cap);
    }
    memcpy(buf, tmp, (size_t)len + 1);
    return AG_OK;
}
