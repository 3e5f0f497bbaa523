/* The internal attribution-method interface (DESIGN §1.3): every method answers "how much
 * of target f is due to site z?" for a batch of B targets at once, through a small vtable:
 *
 *   prepare(request) -> state   validate method options, build baselines / quadrature plans /
 *                               buffers; independent of the targets
 *   vjp(state, targets[B])      attributions (and, where defined, gradients) of the B targets
 *                               to the site; may be called many times on one state
 *   release(state)
 *
 * Built-in methods: agi_method_gradient (gradient.c), agi_method_ig and agi_method_path
 * (path.c); agi_method_decomposition (decomposition.c, issue #4) plugs in the same way.
 * attribute.c, the public entry point, picks one by AG_METHOD_* id.
 *
 * Shared helpers live here too: resolved targets (target.c), quadrature rules and the
 * segment integrator behind ig and path (ig.c). */
#ifndef AGI_METHOD_H
#define AGI_METHOD_H

#include <stdint.h>

#include "attrgraph.h"
#include "engine/acts.h"
#include "engine/backward.h"
#include "engine/trace.h"

/* ---- targets (target.c) ----------------------------------------------------------------- */

/* A resolved, validated target (defaults filled in). */
typedef struct agi_target {
    int32_t kind;       /* AG_TARGET_* */
    int32_t token;      /* logit kinds: vocabulary id (never -1 once resolved); else -1 */
    int32_t token_b;    /* AG_TARGET_LOGIT_DIFF */
    int32_t position;   /* 0..T-1 */
    int32_t site_kind;  /* DIRECTION / UNIT: the site read (AG_SITE_*) */
    int32_t site_layer;
    int32_t index;      /* UNIT: coordinate within the row */
    const float *direction; /* DIRECTION: site-width floats (borrowed) */
} agi_target;

/* Fill `t` from the public options (defaults: top logit at the last position) and validate
 * it against the trace and the attribution site (the target must not lie upstream). */
ag_status agi_target_resolve(const ag_trace *trace, const ag_attribute_options *o, int site_kind, int site_layer,
                             agi_target *t, const char *func);

/* Station where the target's cotangent enters the reverse pass, and that station's width. */
int agi_target_station(const agi_config *c, const agi_target *t);
int agi_target_width(const agi_config *c, const agi_target *t);

/* Evaluation context: per-call scratch for logits and the classifier's mean row. */
typedef struct agi_target_ctx {
    const ag_model *m;
    float *logits; /* [V] */
    float *wmean;  /* [D] mean row of the classifier (demeaned logits), computed lazily */
    double *dtmp;  /* [max(V, D)] */
    int have_wmean;
} agi_target_ctx;

ag_status agi_target_ctx_init(agi_target_ctx *tc, const ag_model *m, const char *func);
void agi_target_ctx_free(agi_target_ctx *tc);

/* f for forward sequence s of `a`, and (when seed != NULL) df/d(station row) into seed
 * (agi_target_width floats). Logit kinds need a->xfin (computed by agi_forward_final).
 * Returns AG_ERR_NUMERIC (message recorded) when f or the seed is not finite. */
ag_status agi_target_eval(agi_target_ctx *tc, const agi_acts *a, int s, const agi_target *t, double *value,
                          float *seed, const char *func);

/* ---- the method vtable ------------------------------------------------------------------- */

/* What a method is asked (the options are the caller's, already validated field by field
 * where generic: site, target; method-specific fields are checked by prepare). */
typedef struct agi_method_request {
    const ag_trace *trace;
    int32_t site_kind, site_layer;
    const ag_attribute_options *opts;
    const char *func; /* for error messages */
} agi_method_request;

/* The state of a method that needs only the trace and the site (gradient, decomposition):
 * a copy of the request's trace, site and function name. */
typedef struct agi_site_state {
    const ag_trace *trace;
    int site_kind, site_layer;
    const char *func;
} agi_site_state;
ag_status agi_site_state_prepare(const agi_method_request *req, void **state);
void agi_site_state_release(void *state);

/* Where a method writes its answers for B targets (arrays allocated by the caller). */
typedef struct agi_method_result {
    float *values;          /* [B][site size] attributions */
    float *gradient;        /* [B][site size]; NULL when the caller does not want it */
    int has_gradient;       /* set by the method: 1 when gradient[] was written */
    double *target_value;   /* [B] f at the input (path: at the end) */
    double *baseline_value; /* [B] f at the baseline(s) (NAN where not applicable) */
    ag_attribution_stats stats; /* accumulated by the method (struct_size preset by the caller) */
} agi_method_result;

typedef struct agi_method {
    const char *name;
    int32_t id; /* AG_METHOD_* */
    ag_status (*prepare)(const agi_method_request *req, void **state);
    ag_status (*vjp)(void *state, const agi_target *targets, int B, agi_method_result *res);
    void (*release)(void *state);
} agi_method;

extern const agi_method agi_method_gradient;
extern const agi_method agi_method_ig;
extern const agi_method agi_method_path;
extern const agi_method agi_method_decomposition;

/* Attributions g ⊙ z of B targets to the site of an agi_site_state, g = df/dz from one batched
 * reverse pass (gradient.c): in the real model (frozen = 0: the gradient method; baseline_value
 * NAN), or in the local replacement model with norms, attention and gates frozen at the trace's
 * values (frozen = 1: the decomposition method; baseline_value 0 at residual sites, the
 * skipping residual's share J(after the branch) · (residual before it) at attn / mlp sites). */
ag_status agi_site_gradient_vjp(void *state, const agi_target *targets, int B, agi_method_result *res, int frozen);

/* Site geometry of a trace: rows T, row width, total floats. */
size_t agi_site_size(const ag_trace *trace, int site_kind);

/* out[cols] = the mean of the rows of W[rows][cols], summed in double in row order (acc: cols
 * doubles of scratch); the classifier's mean row of the demeaned logit, the mean embedding. */
void agi_mean_row(float *out, double *acc, const float *W, int rows, int cols);

/* ---- quadrature and the segment integrator (ig.c) ---------------------------------------- */

/* Nodes and weights of a fixed rule on [0, 1] (AG_QUAD_RIEMANN / TRAPEZOID / GAUSS_LEGENDRE),
 * ascending. Errors: AG_ERR_INVALID_ARGUMENT (n < 1, trapezoid n < 2, unknown rule). */
ag_status agi_quad_rule(int rule, int n, double *nodes, double *weights, const char *func);
/* Gauss-Legendre on [-1, 1] by Newton's method on P_n in double. */
void agi_gauss_legendre(int n, double *x, double *w);

/* A straight piece of an integration path at the site, z(a) = start + a (end - start):
 * the attribution gets weight * (end - start) * integral_0^1 df/dz(z(a)) da. Paths are chains
 * of segments: `first` marks a path's first segment (its start value goes into
 * baseline_value), `last` its last (its end value into target_value), both with `weight`. */
typedef struct agi_segment {
    const float *start, *end; /* site-shaped (T * width floats) */
    double weight;
    int first, last;
    int end_is_input;         /* end == the trace's site values: f(end) read from the trace */
} agi_segment;

/* Integration settings (from the options, validated). */
typedef struct agi_integrator {
    int rule;        /* AG_QUAD_* */
    int steps;       /* nodes (adaptive: per panel) */
    double tolerance;
    int64_t max_evaluations;
    int batch_size;  /* 0 = automatic */
    int (*progress)(double, void *);
    void *user_data;
} agi_integrator;

/* Integrate B targets along the segments (batched forward/backward per round) and fill res:
 * values, gradient (only for a single segment: the integral of the gradient), target and
 * baseline values, stats. */
ag_status agi_integrate(const ag_trace *trace, int site_kind, int site_layer, const agi_segment *segs, int n_segs,
                        const agi_integrator *ig, const agi_target *targets, int B, agi_method_result *res,
                        const char *func);

/* Baselines at a site (for ig and path): n_baselines site-shaped arrays built from the
 * options (zero, mean embedding, other tokens, given values), malloc'ed into *out. */
ag_status agi_baselines_build(const ag_trace *trace, int site_kind, int site_layer, const ag_attribute_options *o,
                              float **out, int *n_out, const char *func);

/* The settings of o, validated (shared by ig and path). */
ag_status agi_integrator_from_options(const ag_attribute_options *o, agi_integrator *ig, const char *func);

/* Run the forward pass of every sequence of `a` from the site, whose values are already
 * written to agi_site_ptr(a, ..., b) for every b; the traced values upstream of the site
 * that the rest of the pass reads (x[l] for attn.l, xmid[l] for mlp.l) are copied from the
 * trace first. Logits are not computed (a->want_logits must be 0); xfin is. */
void agi_forward_from_site(const ag_trace *trace, agi_acts *a, int site_kind, int site_layer);

#endif
