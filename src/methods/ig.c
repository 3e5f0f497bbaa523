/* Integrated gradients: quadrature rules, baselines, the forward pass from an overridden
 * site, and the segment integrator shared with path.c.
 *
 * The integrator evaluates df/dz at points z(a) = start + a (end - start) of each segment in
 * *rounds*: all points of a round are laid out as sequences of one agi_acts (B = number of
 * points in the batch), run forward from the site in one pass (every matmul one GEMM over all
 * points' rows), and differentiated by one batched reverse pass whose cotangent sequences are
 * (target, point) pairs. Fixed rules need one round. The adaptive rule works on panels of
 * `steps`-node Gauss-Legendre: it also evaluates f at every panel end (forward only), so each
 * panel knows its exact completeness residual e = Q(df/da) - (f(b) - f(a)); panels whose
 * residuals are largest are bisected, round after round, until the sum of |e| over a segment is
 * at most tolerance * |f(end) - f(start)| or the evaluation budget is spent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "engine/forward.h"
#include "methods/method.h"

/* ---- quadrature rules ---------------------------------------------------------------------- */

/* P_n(z) by the three-term recurrence; *dp = P_n'(z). */
static double legendre(int n, double z, double *dp) {
    double p1 = 1.0, p2 = 0.0;
    for (int j = 1; j <= n; j++) {
        double p3 = p2;
        p2 = p1;
        p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
    }
    *dp = n * (z * p1 - p2) / (z * z - 1.0);
    return p1;
}

void agi_gauss_legendre(int n, double *x, double *w) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < (n + 1) / 2; i++) {
        double z = cos(pi * (i + 0.75) / (n + 0.5)), pp = 1.0;
        for (int it = 0; it < 100; it++) {
            double p1 = legendre(n, z, &pp), z1 = z;
            z = z1 - p1 / pp;
            if (fabs(z - z1) <= 1e-15) {
                legendre(n, z, &pp); /* the derivative at the converged node */
                break;
            }
        }
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = w[n - 1 - i] = 2.0 / ((1.0 - z * z) * pp * pp);
    }
    if (n % 2) x[n / 2] = 0.0;
}

ag_status agi_quad_rule(int rule, int n, double *nodes, double *weights, const char *func) {
    if (n < 1) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->steps = %d: a rule needs at least 1 node", n);
    switch (rule) {
    case AG_QUAD_RIEMANN:
        for (int i = 0; i < n; i++) nodes[i] = (i + 0.5) / n, weights[i] = 1.0 / n;
        return AG_OK;
    case AG_QUAD_TRAPEZOID: {
        if (n < 2) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->steps = %d: the trapezoid rule needs at least 2 nodes", n);
        double h = 1.0 / (n - 1), s = 0.0;
        for (int i = 0; i < n; i++) {
            nodes[i] = i == n - 1 ? 1.0 : i * h;
            weights[i] = (i == 0 || i == n - 1) ? 0.5 * h : h;
        }
        /* make the weights sum to exactly 1: the last one takes the rounding (summing in
         * index order, s + (1 - s) == 1 exactly since s >= 1/2) */
        for (int i = 0; i < n - 1; i++) s += weights[i];
        weights[n - 1] = 1.0 - s;
        return AG_OK;
    }
    case AG_QUAD_GAUSS_LEGENDRE:
        agi_gauss_legendre(n, nodes, weights);
        for (int i = 0; i < n; i++) nodes[i] = 0.5 * (nodes[i] + 1.0), weights[i] *= 0.5;
        return AG_OK;
    default:
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->quadrature = %d is not a fixed AG_QUAD_* rule", rule);
    }
}

ag_status agi_integrator_from_options(const ag_attribute_options *o, agi_integrator *ig, const char *func) {
    memset(ig, 0, sizeof *ig);
    ig->rule = o->quadrature;
    if (ig->rule < AG_QUAD_RIEMANN || ig->rule > AG_QUAD_ADAPTIVE)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->quadrature = %d is not an AG_QUAD_* value", ig->rule);
    if (o->steps < 0 || o->steps > 100000)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->steps = %d is outside [0, 100000] (0 = default)", o->steps);
    ig->steps = o->steps ? o->steps : ig->rule == AG_QUAD_ADAPTIVE ? 8 : 32;
    if (ig->rule == AG_QUAD_TRAPEZOID && ig->steps < 2)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->steps = %d: the trapezoid rule needs at least 2 nodes", ig->steps);
    if (!(o->tolerance > 0.0) || !isfinite(o->tolerance))
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->tolerance = %g must be positive", o->tolerance);
    if (o->max_evaluations < 1)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->max_evaluations = %d must be positive", o->max_evaluations);
    if (o->batch_size < 0)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->batch_size = %d must be >= 0 (0 = automatic)", o->batch_size);
    ig->tolerance = o->tolerance;
    ig->max_evaluations = o->max_evaluations;
    ig->batch_size = o->batch_size;
    ig->progress = o->progress;
    ig->user_data = o->user_data;
    return AG_OK;
}

/* ---- forward from an overridden site --------------------------------------------------------- */

void agi_forward_from_site(const ag_trace *trace, agi_acts *a, int kind, int layer) {
    const ag_model *m = trace->model;
    const agi_config *c = &m->cfg;
    const int T = a->T;
    const size_t TD = (size_t)T * (size_t)c->dim;
    switch (kind) {
    case AG_SITE_EMBED: agi_forward_from(m, a, 0, 0, T); break;
    case AG_SITE_RESID: agi_forward_from(m, a, layer, 0, T); break;
    case AG_SITE_ATTN: /* xmid = x + Wo heads needs the traced x[l] */
        for (int b = 0; b < a->B; b++)
            memcpy(AGI_LROW(a, x, layer, c->dim) + b * TD, AGI_LROW(&trace->acts, x, layer, c->dim), TD * sizeof(float));
        agi_forward_attn_out(m, a, layer, 0, T);
        agi_forward_mlp_neurons(m, a, layer, 0, T);
        agi_forward_mlp_out(m, a, layer, 0, T);
        agi_forward_from(m, a, layer + 1, 0, T);
        break;
    case AG_SITE_MID:
        agi_forward_mlp_neurons(m, a, layer, 0, T);
        agi_forward_mlp_out(m, a, layer, 0, T);
        agi_forward_from(m, a, layer + 1, 0, T);
        break;
    case AG_SITE_MLP: /* x[l+1] = xmid + W2 n needs the traced xmid[l] */
        for (int b = 0; b < a->B; b++)
            memcpy(AGI_LROW(a, xmid, layer, c->dim) + b * TD, AGI_LROW(&trace->acts, xmid, layer, c->dim), TD * sizeof(float));
        agi_forward_mlp_out(m, a, layer, 0, T);
        agi_forward_from(m, a, layer + 1, 0, T);
        break;
    default: break;
    }
}

/* ---- baselines ------------------------------------------------------------------------------ */

/* Floats of one sequence's activations (as agi_acts_alloc lays them out, every pattern kept,
 * no logits). */
static double acts_floats_per_seq(const agi_config *c, int T) {
    double L = c->n_layers, D = c->dim, KV = c->kv_dim, Hd = c->hidden_dim, t = T;
    return (L + 1) * t * D + L * t * (6 * D + 2 * KV + 3 * Hd + 2) + L * c->n_heads * t * t + t * (D + 1);
}

ag_status agi_baselines_build(const ag_trace *trace, int kind, int layer, const ag_attribute_options *o, float **out,
                              int *n_out, const char *func) {
    const ag_model *m = trace->model;
    const agi_config *c = &m->cfg;
    const int T = trace->acts.T, D = c->dim;
    const size_t n = agi_site_size(trace, kind);
    *out = NULL;
    *n_out = 0;
    int nb = o->n_baselines;
    if (nb < 1 || nb > 4096) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->n_baselines = %d is outside [1, 4096]", nb);
    if ((o->baseline_kind == AG_BASELINE_ZERO || o->baseline_kind == AG_BASELINE_MEAN) && nb != 1)
        return agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->n_baselines = %d: the zero and mean baselines are single", nb);
    float *z = agi_calloc((size_t)nb * n, sizeof(float), func);
    if (!z) return AG_ERR_OUT_OF_MEMORY;
    ag_status st = AG_OK;
    switch (o->baseline_kind) {
    case AG_BASELINE_ZERO: break;
    case AG_BASELINE_VALUES:
        if (!o->baseline_values) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->baseline_values is NULL (AG_BASELINE_VALUES)");
            break;
        }
        for (size_t i = 0; i < (size_t)nb * n; i++) {
            if (!isfinite(o->baseline_values[i])) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->baseline_values[%zu] is not finite", i);
                break;
            }
            z[i] = o->baseline_values[i];
        }
        break;
    case AG_BASELINE_MEAN:
    case AG_BASELINE_TOKENS: {
        int tokens = o->baseline_kind == AG_BASELINE_TOKENS;
        if (tokens) {
            if (!o->baseline_tokens) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->baseline_tokens is NULL (AG_BASELINE_TOKENS)");
                break;
            }
            for (size_t i = 0; i < (size_t)nb * (size_t)T; i++)
                if (o->baseline_tokens[i] < 0 || o->baseline_tokens[i] >= c->vocab_size) {
                    st = agi_error(AG_ERR_INVALID_ARGUMENT, func,
                                   "opts->baseline_tokens[%zu] = %d is outside the vocabulary [0, %d)", i,
                                   o->baseline_tokens[i], c->vocab_size);
                    break;
                }
            if (st != AG_OK) break;
        }
        agi_acts a;
        st = agi_acts_alloc(&a, c, nb, T, T, 0, func);
        if (st != AG_OK) break;
        if (tokens) {
            memcpy(a.tokens, o->baseline_tokens, sizeof(int32_t) * (size_t)nb * (size_t)T);
            agi_forward_embed(m, &a, 0, T);
        } else { /* the mean embedding at every position */
            double *acc = agi_calloc((size_t)D, sizeof(double), func);
            if (!acc) {
                agi_acts_free(&a);
                st = AG_ERR_OUT_OF_MEMORY;
                break;
            }
            agi_mean_row(a.x, acc, m->w.token_embedding, c->vocab_size, D);
            for (int p = 1; p < T; p++) memcpy(a.x + (size_t)p * D, a.x, sizeof(float) * (size_t)D);
            free(acc);
        }
        int stop_layer = kind == AG_SITE_EMBED ? 0 : layer; /* run the blocks the site needs */
        for (int l = 0; l <= stop_layer && l < c->n_layers; l++) {
            if (l == stop_layer && (kind == AG_SITE_EMBED || kind == AG_SITE_RESID)) break;
            agi_forward_attn_heads(m, &a, l, 0, T);
            if (l == stop_layer && kind == AG_SITE_ATTN) break;
            agi_forward_attn_out(m, &a, l, 0, T);
            agi_forward_mlp_neurons(m, &a, l, 0, T);
            if (l == stop_layer) break; /* mid.l and mlp.l are both ready */
            agi_forward_mlp_out(m, &a, l, 0, T);
        }
        for (int b = 0; b < nb; b++) memcpy(z + (size_t)b * n, agi_site_ptr(&a, c, kind, layer, b), n * sizeof(float));
        agi_acts_free(&a);
        break;
    }
    default:
        st = agi_error(AG_ERR_INVALID_ARGUMENT, func, "opts->baseline_kind = %d is not an AG_BASELINE_* value", o->baseline_kind);
    }
    if (st != AG_OK) {
        free(z);
        return st;
    }
    *out = z;
    *n_out = nb;
    return AG_OK;
}

/* ---- the integrator ------------------------------------------------------------------------- */

/* A point a of segment s where f is known (or to be computed by a forward-only pass). */
typedef struct ipoint {
    int seg;
    double alpha;
    int known;
    double *f; /* [B] */
} ipoint;

typedef struct ipanel {
    int seg;
    double a, b;
    int pa, pb;    /* ipoint indices of the ends */
    int state;     /* 0 new (nodes not evaluated), 1 evaluated, 2 split (dead) */
    double *q;     /* [B] integral of df/da over the panel */
    double *Q;     /* [B][n] integral of df/dz over the panel (alpha measure) */
} ipanel;

/* One sequence of a batch: a gradient node (panel >= 0) or a forward-only point (point >= 0). */
typedef struct ireq {
    int seg;
    double alpha, weight;
    int panel, point;
} ireq;

typedef struct integ {
    const ag_trace *trace;
    const ag_model *m;
    const agi_config *c;
    int kind, layer, B, n_segs;
    size_t n;
    const agi_segment *segs;
    const agi_target *targets;
    const agi_integrator *ig;
    const char *func;
    agi_method_result *res;
    float *dz;           /* [n_segs][n] end - start */
    ipoint *pts;
    int n_pts, cap_pts;
    ipanel *pan;
    int n_pan, cap_pan;
    ireq *reqs;
    int n_reqs, cap_reqs;
    /* batch buffers */
    int cap_seq;         /* sequences per batch */
    agi_acts acts;
    agi_backward bw;
    agi_target_ctx tc;
    int wmax;
    float *seedv;        /* [B*cap_seq][wmax] */
    agi_seed *seeds;     /* [B*cap_seq] */
    int *act_of;         /* [B*cap_seq] */
    float *grad;         /* [B*cap_seq][n] */
    double *fvals;       /* [B*cap_seq] */
    int64_t evals;
    double progress_last;
    double *nodes, *weights;
} integ;

static int grow(void **p, int *cap, int need, size_t elem, const char *func) {
    if (need <= *cap) return 1;
    int nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) {
        agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory (%d integration records)", nc);
        return 0;
    }
    *p = q;
    *cap = nc;
    return 1;
}

static int add_point(integ *g, int seg, double alpha) {
    if (!grow((void **)&g->pts, &g->cap_pts, g->n_pts + 1, sizeof(ipoint), g->func)) return -1;
    ipoint *p = &g->pts[g->n_pts];
    p->seg = seg;
    p->alpha = alpha;
    p->known = 0;
    p->f = agi_calloc((size_t)g->B, sizeof(double), g->func);
    if (!p->f) return -1;
    return g->n_pts++;
}

static int add_panel(integ *g, int seg, double a, double b, int pa, int pb) {
    if (!grow((void **)&g->pan, &g->cap_pan, g->n_pan + 1, sizeof(ipanel), g->func)) return -1;
    ipanel *p = &g->pan[g->n_pan];
    memset(p, 0, sizeof *p);
    p->seg = seg, p->a = a, p->b = b, p->pa = pa, p->pb = pb;
    return g->n_pan++;
}

static int add_req(integ *g, int seg, double alpha, double weight, int panel, int point) {
    if (!grow((void **)&g->reqs, &g->cap_reqs, g->n_reqs + 1, sizeof(ireq), g->func)) return 0;
    g->reqs[g->n_reqs++] = (ireq){seg, alpha, weight, panel, point};
    return 1;
}

/* Run requests [r0, r1) (at most cap_seq) as one batch: forward of every sequence from the
 * site, targets, one reverse pass for the gradient nodes, accumulation into panels/points. */
static ag_status run_batch(integ *g, int r0, int r1) {
    const agi_config *c = g->c;
    const int B = g->B, T = g->acts.T;
    const size_t n = g->n;
    int kg = 0;
    for (int r = r0; r < r1; r++) kg += g->reqs[r].panel >= 0;
    const int ns = r1 - r0;
    /* grad nodes first (sequences 0..kg-1), then forward-only points */
    int *order = agi_malloc(sizeof(int) * (size_t)ns, g->func);
    if (!order) return AG_ERR_OUT_OF_MEMORY;
    int ig_ = 0, ip_ = kg;
    for (int r = r0; r < r1; r++) order[g->reqs[r].panel >= 0 ? ig_++ : ip_++] = r;
    double t0 = agi_now_seconds();
    g->acts.B = ns; /* the layout follows B; every array the pass reads is rewritten below */
    for (int j = 0; j < ns; j++) {
        const ireq *q = &g->reqs[order[j]];
        const agi_segment *s = &g->segs[q->seg];
        float *z = agi_site_ptr(&g->acts, c, g->kind, g->layer, j);
        double al = q->alpha;
        for (size_t i = 0; i < n; i++) z[i] = (float)((double)s->start[i] + al * ((double)s->end[i] - (double)s->start[i]));
    }
    agi_forward_from_site(g->trace, &g->acts, g->kind, g->layer);
    ag_status st = AG_OK;
    for (int j = 0; j < ns && st == AG_OK; j++)
        for (int t = 0; t < B && st == AG_OK; t++) {
            int cidx = t * kg + j;
            float *seed = j < kg ? g->seedv + (size_t)cidx * (size_t)g->wmax : NULL;
            st = agi_target_eval(&g->tc, &g->acts, j, &g->targets[t], &g->fvals[(size_t)t * ns + j], seed, g->func);
            if (j < kg) {
                g->seeds[cidx] = (agi_seed){cidx, agi_target_station(c, &g->targets[t]), g->targets[t].position, 1.0f, seed};
                g->act_of[cidx] = j;
            }
        }
    double t1 = agi_now_seconds();
    g->res->stats.forward_seconds += t1 - t0;
    g->res->stats.forward_sequences += ns;
    g->res->stats.forward_flops += ns * agi_forward_flops_per_seq(c, T, g->layer) + 2.0 * ns * B * (double)c->dim * c->vocab_size;
    if (g->res->stats.batch_size < ns) g->res->stats.batch_size = ns;
    if (st != AG_OK) goto out;
    if (kg > 0) {
        g->bw.B = B * kg;
        g->bw.act_of = g->act_of;
        double f0 = g->bw.flops;
        agi_backward_run(&g->bw, g->seeds, B * kg, g->kind, g->layer, g->grad);
        g->res->stats.backward_seconds += agi_now_seconds() - t1;
        g->res->stats.backward_flops += g->bw.flops - f0;
    }
    g->res->stats.rounds++;
    /* accumulate */
    for (int j = 0; j < ns; j++) {
        const ireq *q = &g->reqs[order[j]];
        if (q->point >= 0) {
            ipoint *p = &g->pts[q->point];
            for (int t = 0; t < B; t++) p->f[t] = g->fvals[(size_t)t * ns + j];
            p->known = 1;
        }
        if (q->panel < 0) continue;
        ipanel *P = &g->pan[q->panel];
        const float *dz = g->dz + (size_t)q->seg * n;
        for (int t = 0; t < B; t++) {
            const float *gr = g->grad + (size_t)(t * kg + j) * n;
            double *Q = P->Q + (size_t)t * n, dfda = 0.0;
            for (size_t i = 0; i < n; i++) {
                if (!isfinite(gr[i])) {
                    st = agi_error(AG_ERR_NUMERIC, g->func, "the gradient is not finite at alpha = %g (element %zu)", q->alpha, i);
                    goto out;
                }
                dfda += (double)dz[i] * gr[i];
                Q[i] += q->weight * gr[i];
            }
            P->q[t] += q->weight * dfda;
        }
        g->evals++;
    }
out:
    free(order);
    return st;
}

/* Evaluate every queued request in batches of cap_seq; progress after each batch. */
static ag_status run_round(integ *g, double progress_lo, double progress_hi) {
    ag_status st = AG_OK;
    for (int r0 = 0; r0 < g->n_reqs && st == AG_OK; r0 += g->cap_seq) {
        int r1 = r0 + g->cap_seq < g->n_reqs ? r0 + g->cap_seq : g->n_reqs;
        st = run_batch(g, r0, r1);
        if (st == AG_OK && g->ig->progress) {
            double fr = progress_lo + (progress_hi - progress_lo) * (double)r1 / g->n_reqs;
            fr = fr > g->progress_last ? fr : g->progress_last; /* never backwards */
            g->progress_last = fr;
            if (g->ig->progress(fr, g->ig->user_data))
                st = agi_error(AG_ERR_CANCELLED, g->func, "cancelled by the progress callback");
        }
    }
    g->n_reqs = 0;
    return st;
}

/* Panels [a, b] with b > LOG_RATIO * a are integrated and split in ln(alpha) (see below). */
#define LOG_RATIO 2.0
/* Geometric levels added at once when the panel at alpha = 0 is cut (see the split below). */
#define ZERO_LEVELS 4

/* Queue a new panel's nodes (rule nodes scaled to [a,b]) and allocate its accumulators. */
static ag_status queue_panel(integ *g, int pi, const double *x, const double *w, int k) {
    ipanel *P = &g->pan[pi];
    P->q = agi_calloc((size_t)g->B, sizeof(double), g->func);
    P->Q = agi_calloc((size_t)g->B * g->n, sizeof(double), g->func);
    if (!P->q || !P->Q) return AG_ERR_OUT_OF_MEMORY;
    P->state = 1;
    if (g->ig->rule == AG_QUAD_ADAPTIVE && P->a > 0.0 && P->b > LOG_RATIO * P->a) {
        /* a panel spanning a large ratio: the rule in s = ln(alpha), dalpha = alpha ds */
        double la = log(P->a), h = log(P->b) - la;
        for (int i = 0; i < k; i++) {
            double al = exp(la + h * x[i]);
            if (!add_req(g, P->seg, al, h * w[i] * al, pi, -1)) return AG_ERR_OUT_OF_MEMORY;
        }
        return AG_OK;
    }
    double h = P->b - P->a;
    for (int i = 0; i < k; i++)
        if (!add_req(g, P->seg, P->a + h * x[i], h * w[i], pi, -1)) return AG_ERR_OUT_OF_MEMORY;
    return AG_OK;
}

static ag_status queue_point(integ *g, int pt) {
    return add_req(g, g->pts[pt].seg, g->pts[pt].alpha, 0.0, -1, pt) ? AG_OK : AG_ERR_OUT_OF_MEMORY;
}

static int cmp_desc(const void *a, const void *b) {
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return (x < y) - (x > y);
}

ag_status agi_integrate(const ag_trace *trace, int kind, int layer, const agi_segment *segs, int n_segs,
                        const agi_integrator *ig, const agi_target *targets, int B, agi_method_result *res,
                        const char *func) {
    integ G, *g = &G;
    memset(g, 0, sizeof G);
    g->trace = trace;
    g->m = trace->model;
    g->c = &trace->model->cfg;
    g->kind = kind, g->layer = layer, g->B = B, g->n_segs = n_segs;
    g->n = agi_site_size(trace, kind);
    g->segs = segs, g->targets = targets, g->ig = ig, g->func = func, g->res = res;
    const agi_config *c = g->c;
    const int T = trace->acts.T;
    const size_t n = g->n;
    const int adaptive = ig->rule == AG_QUAD_ADAPTIVE;
    const int k = ig->steps;
    ag_status st = AG_OK;

    g->nodes = agi_malloc(sizeof(double) * (size_t)k, func);
    g->weights = agi_malloc(sizeof(double) * (size_t)k, func);
    g->dz = agi_malloc(sizeof(float) * (size_t)n_segs * n, func);
    if (!g->nodes || !g->weights || !g->dz) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    st = agi_quad_rule(adaptive ? AG_QUAD_GAUSS_LEGENDRE : ig->rule, k, g->nodes, g->weights, func);
    if (st != AG_OK) goto done;
    for (int s = 0; s < n_segs; s++)
        for (size_t i = 0; i < n; i++) g->dz[(size_t)s * n + i] = segs[s].end[i] - segs[s].start[i];

    /* the first round: per segment the end points, and one panel [0,1] (fixed rule) or two
     * panels [0,1/2], [1/2,1] (adaptive) */
    for (int s = 0; s < n_segs; s++) {
        int p0 = add_point(g, s, 0.0), p1 = add_point(g, s, 1.0);
        if (p0 < 0 || p1 < 0) {
            st = AG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        if ((st = queue_point(g, p0)) != AG_OK) goto done;
        if (!segs[s].end_is_input && (st = queue_point(g, p1)) != AG_OK) goto done;
        if (adaptive) {
            int pm = add_point(g, s, 0.5);
            if (pm < 0 || (st = queue_point(g, pm)) != AG_OK) goto done;
            int a = add_panel(g, s, 0.0, 0.5, p0, pm), b = add_panel(g, s, 0.5, 1.0, pm, p1);
            if (a < 0 || b < 0 || (st = queue_panel(g, a, g->nodes, g->weights, k)) != AG_OK ||
                (st = queue_panel(g, b, g->nodes, g->weights, k)) != AG_OK)
                goto done;
        } else {
            int a = add_panel(g, s, 0.0, 1.0, p0, p1);
            if (a < 0 || (st = queue_panel(g, a, g->nodes, g->weights, k)) != AG_OK) goto done;
        }
    }

    /* buffers: cap_seq sequences per batch, from the memory budget */
    double per_seq = 4.0 * (acts_floats_per_seq(c, T) +
                            (double)B * ((double)T * (3 * c->dim + 2 * c->kv_dim + 3 * c->hidden_dim) + (double)n));
    int cap = ig->batch_size > 0 ? ig->batch_size : (int)fmax(1.0, fmin(64.0, 256.0 * 1048576.0 / per_seq));
    /* a fixed rule needs one round of known size; the adaptive rule's later rounds can be large */
    int need = adaptive ? cap : g->n_reqs;
    g->cap_seq = cap < need ? cap : need;
    st = agi_target_ctx_init(&g->tc, g->m, func);
    if (st != AG_OK) goto done;
    st = agi_acts_alloc(&g->acts, c, g->cap_seq, T, T, 0, func);
    if (st != AG_OK) goto done;
    st = agi_backward_init(&g->bw, g->m, &g->acts, B * g->cap_seq, func);
    if (st != AG_OK) goto done;
    g->wmax = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    size_t nc = (size_t)B * (size_t)g->cap_seq;
    g->seedv = agi_malloc(sizeof(float) * nc * (size_t)g->wmax, func);
    g->seeds = agi_malloc(sizeof(agi_seed) * nc, func);
    g->act_of = agi_malloc(sizeof(int) * nc, func);
    g->grad = agi_malloc(sizeof(float) * nc * n, func);
    g->fvals = agi_malloc(sizeof(double) * nc, func);
    if (!g->seedv || !g->seeds || !g->act_of || !g->grad || !g->fvals) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int s = 0; s < n_segs; s++) /* f(input) from the trace itself */
        if (segs[s].end_is_input) {
            ipoint *p1 = &g->pts[(adaptive ? 3 : 2) * s + 1]; /* points per segment: 0, 1 (, 1/2) */
            for (int t = 0; t < B; t++)
                if ((st = agi_target_eval(&g->tc, &trace->acts, 0, &targets[t], &p1->f[t], NULL, func)) != AG_OK) goto done;
            p1->known = 1;
        }

    double budget = (double)ig->max_evaluations;
    st = run_round(g, 0.0, adaptive ? fmin(0.9, g->evals / budget) : 1.0);
    if (st != AG_OK) goto done;

    if (adaptive) {
        /* per segment and target: the tolerance on sum |e| */
        double *tol = agi_malloc(sizeof(double) * (size_t)n_segs * (size_t)B, func);
        double *rank = NULL;
        if (!tol) {
            st = AG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int s = 0; s < n_segs; s++) {
            /* points 3s (0), 3s+1 (1): see the first round */
            const double *f0 = g->pts[3 * s].f, *f1 = g->pts[3 * s + 1].f;
            for (int t = 0; t < B; t++) {
                double scale = fmax(fabs(f0[t]), fabs(f1[t]));
                tol[(size_t)s * B + t] = fmax(ig->tolerance * fabs(f1[t] - f0[t]), 1e-6 * scale + 1e-30);
            }
        }
        for (;;) {
            /* residual ratio r of every live panel and the per-segment sums */
            int n_live = 0;
            for (int p = 0; p < g->n_pan; p++) n_live += g->pan[p].state == 1;
            free(rank);
            rank = agi_malloc(sizeof(double) * 2 * (size_t)(n_live + 1), func);
            double *segsum = agi_calloc((size_t)n_segs, sizeof(double), func);
            if (!rank || !segsum) {
                free(segsum);
                free(tol);
                free(rank);
                st = AG_ERR_OUT_OF_MEMORY;
                goto done;
            }
            int nr = 0;
            for (int p = 0; p < g->n_pan; p++) {
                ipanel *P = &g->pan[p];
                if (P->state != 1) continue;
                double r = 0.0;
                for (int t = 0; t < B; t++) {
                    double e = P->q[t] - (g->pts[P->pb].f[t] - g->pts[P->pa].f[t]);
                    r = fmax(r, fabs(e) / tol[(size_t)P->seg * B + t]);
                }
                segsum[P->seg] += r;
                rank[2 * nr] = r, rank[2 * nr + 1] = p, nr++;
            }
            qsort(rank, (size_t)nr, 2 * sizeof(double), cmp_desc);
            /* split the worst panels of every unconverged segment (sum of r > 1) until what
             * is left of its sum is at most 1/2, within the evaluation budget */
            int n_split = 0;
            double planned = 0.0;
            for (int s = 0; s < n_segs; s++) segsum[s] = segsum[s] > 1.0 ? segsum[s] : -1.0; /* -1: converged */
            for (int i = 0; i < nr && st == AG_OK; i++) {
                int pidx = (int)rank[2 * i + 1], s = g->pan[pidx].seg;
                if (segsum[s] <= 0.5) continue; /* converged, or split enough this round */
                double pa_ = g->pan[pidx].a, pb_ = g->pan[pidx].b;
                if (!(pb_ - pa_ > 4e-16 * fabs(pb_))) continue; /* no room left in double */
                /* Where to cut. A zero baseline at a residual site sends every RMSNorm, one after
                 * the other, through its eps regime as alpha -> 0 (each amplifies by about
                 * 1/sqrt(eps)), so f has features on every scale down to alpha ~ 1e-20 and below,
                 * evenly spread in ln(alpha). So the panel at alpha = 0 is cut geometrically,
                 * ZERO_LEVELS levels at once ([0, b/16^L], ..., [b/256, b/16], [b/16, b]); a panel
                 * spanning a large ratio is cut at the geometric mean (and integrated in ln
                 * alpha); the others are bisected. */
                double cuts[ZERO_LEVELS];
                int nc = 0;
                if (pa_ == 0.0) {
                    double c = pb_;
                    for (int lv = 0; lv < ZERO_LEVELS && c / 16.0 > 0.0; lv++) cuts[ZERO_LEVELS - 1 - nc++] = (c /= 16.0);
                    memmove(cuts, cuts + ZERO_LEVELS - nc, sizeof(double) * (size_t)nc); /* ascending */
                } else {
                    cuts[nc++] = pb_ > LOG_RATIO * pa_ ? sqrt(pa_ * pb_) : 0.5 * (pa_ + pb_);
                }
                if (nc == 0) continue;
                if (g->evals + planned + (double)k * (nc + 1) > budget) break;
                planned += (double)k * (nc + 1);
                segsum[s] -= rank[2 * i];
                int prev_pt = g->pan[pidx].pa, last_pt = g->pan[pidx].pb;
                double prev = pa_;
                for (int c = 0; c <= nc && st == AG_OK; c++) {
                    double hi = c < nc ? cuts[c] : pb_;
                    int hi_pt = last_pt;
                    if (c < nc) {
                        hi_pt = add_point(g, s, hi);
                        if (hi_pt < 0 || queue_point(g, hi_pt) != AG_OK) {
                            st = AG_ERR_OUT_OF_MEMORY;
                            break;
                        }
                    }
                    int np = add_panel(g, s, prev, hi, prev_pt, hi_pt);
                    if (np < 0 || (st = queue_panel(g, np, g->nodes, g->weights, k)) != AG_OK) {
                        st = AG_ERR_OUT_OF_MEMORY;
                        break;
                    }
                    prev = hi, prev_pt = hi_pt;
                }
                ipanel *P = &g->pan[pidx]; /* (add_panel may have moved the array) */
                P->state = 2;
                free(P->Q), free(P->q);
                P->Q = NULL, P->q = NULL;
                n_split++;
            }
            free(segsum);
            if (st != AG_OK || n_split == 0) break;
            st = run_round(g, fmin(0.9, g->evals / budget), fmin(0.95, (g->evals + planned) / budget));
            if (st != AG_OK) break;
        }
        free(rank);
        free(tol);
        if (st != AG_OK) goto done;
    }

    /* assemble: values = sum_s weight_s dz_s ⊙ sum_panels Q; f at path ends */
    {
        double *acc = agi_calloc(n, sizeof(double), func), *gacc = agi_calloc(n, sizeof(double), func);
        if (!acc || !gacc) {
            free(acc), free(gacc);
            st = AG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int t = 0; t < B; t++) {
            memset(acc, 0, n * sizeof(double));
            double fv = 0.0, fb = 0.0;
            for (int s = 0; s < n_segs; s++) {
                memset(gacc, 0, n * sizeof(double));
                for (int p = 0; p < g->n_pan; p++) {
                    const ipanel *P = &g->pan[p];
                    if (P->seg != s || P->state != 1) continue;
                    const double *Q = P->Q + (size_t)t * n;
                    for (size_t i = 0; i < n; i++) gacc[i] += Q[i];
                }
                const float *dz = g->dz + (size_t)s * n;
                for (size_t i = 0; i < n; i++) acc[i] += segs[s].weight * (double)dz[i] * gacc[i];
                if (n_segs == 1 && res->gradient)
                    for (size_t i = 0; i < n; i++) res->gradient[(size_t)t * n + i] = (float)gacc[i];
                int p0 = -1, p1 = -1;
                for (int p = 0; p < g->n_pts; p++)
                    if (g->pts[p].seg == s && g->pts[p].alpha == 0.0 && p0 < 0) p0 = p;
                    else if (g->pts[p].seg == s && g->pts[p].alpha == 1.0 && p1 < 0) p1 = p;
                if (segs[s].first) fb += segs[s].weight * g->pts[p0].f[t];
                if (segs[s].last) fv += segs[s].weight * g->pts[p1].f[t];
            }
            for (size_t i = 0; i < n; i++) res->values[(size_t)t * n + i] = (float)acc[i];
            res->target_value[t] = fv;
            res->baseline_value[t] = fb;
        }
        res->has_gradient = n_segs == 1 && res->gradient != NULL;
        free(acc), free(gacc);
    }
    res->stats.evaluations += g->evals;
    if (ig->progress && ig->progress(1.0, ig->user_data))
        st = agi_error(AG_ERR_CANCELLED, func, "cancelled by the progress callback");

done:
    for (int p = 0; p < g->n_pts; p++) free(g->pts[p].f);
    for (int p = 0; p < g->n_pan; p++) free(g->pan[p].q), free(g->pan[p].Q);
    free(g->pts), free(g->pan), free(g->reqs);
    free(g->nodes), free(g->weights), free(g->dz);
    free(g->seedv), free(g->seeds), free(g->act_of), free(g->grad), free(g->fvals);
    agi_backward_free(&g->bw);
    agi_acts_free(&g->acts);
    agi_target_ctx_free(&g->tc);
    return st;
}
