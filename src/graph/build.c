/* Building the graph: which units become nodes (greedy ranking pass), then the exact rows.
 *
 * Rows are A[t, all sources] for the logit targets and the expanded units, computed
 * batch_size targets at a time by agi_frozen_vjp; at each source layer the cotangents at the
 * MLP output meet the sources' written vectors (unit i: act_i · decoder column i) in GEMMs.
 *
 * When max_feature_nodes is smaller than the number of units, the units to expand are chosen
 * greedily (circuit-tracer's scheme, DESIGN §1.4):
 *  - ranking pass: the logit rows, then rounds of update_interval·batch_size units taken by
 *    estimated influence. The estimate is pushed down as rows are computed: a computed row t
 *    with estimated influence c_t (its logit weight, or its own score when it was chosen)
 *    adds c_t · |A[t,s]| / sum_s' |A[t,s']| to the score of every unit s. One GEMM per
 *    source layer against the whole decoder gives every unit's edge; the absolute values are
 *    kept per batch in bfloat16 (they only rank) until the row sums are known.
 *  - exact pass: once the node set S is fixed, the rows of the logits and of S are computed
 *    again, now only against S's written vectors (a small GEMM per (layer, position)), the
 *    error vectors (units never expanded, folded into their (layer, position) error node)
 *    and the embeddings. Nothing but the kept columns is ever stored, so memory grows with
 *    |S| · (|S| + L·T + T), not with rows x all units.
 * When every unit fits the budget the ranking pass is skipped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "engine/blas.h"
#include "graph/graph.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static inline uint16_t to_bf16(float x) { /* x >= 0, finite: round to nearest even */
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

typedef struct scored {
    double s;
    int64_t u;
} scored;

/* (score desc, index asc) */
static inline int scored_before(const scored *a, const scored *b) { return a->s > b->s || (a->s == b->s && a->u < b->u); }
static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    return scored_before(x, y) ? -1 : scored_before(y, x) ? 1 : 0;
}

/* Move the k best (scored_before) of v[0..n) to v[0..k) (unordered), O(n) expected. */
static void select_top(scored *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    while (lo < hi) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        scored piv = v[lo + (int64_t)((seed >> 33) % (uint64_t)(hi - lo + 1))];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (scored_before(&v[i], &piv)) i++;
            while (scored_before(&piv, &v[j])) j--;
            if (i <= j) {
                scored t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* A target of a batch: unit (layer, pos, index) or logit k (layer = L). */
typedef struct tgt {
    int layer, pos, idx; /* idx: unit index, or logit number */
    int64_t node;        /* row node (exact pass) */
    double c;            /* ranking weight */
} tgt;

/* Batch order: highest position first (so batches share a short prefix of positions), and
 * inside a batch highest layer first (agi_frozen_vjp's rule). */
static int cmp_tgt_pos(const void *a, const void *b) {
    const tgt *x = a, *y = b;
    if (x->pos != y->pos) return y->pos - x->pos;
    if (x->layer != y->layer) return y->layer - x->layer;
    return (x->idx > y->idx) - (x->idx < y->idx);
}
static int cmp_tgt_layer(const void *a, const void *b) {
    const tgt *x = a, *y = b;
    if (x->layer != y->layer) return y->layer - x->layer;
    if (x->pos != y->pos) return y->pos - x->pos;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* ---- per-batch state shared by both passes ---------------------------------------------- */

typedef struct edge_pair {
    int32_t col;
    float w;
} edge_pair;

typedef struct rowvec {
    edge_pair *e;
    int64_t n, cap;
} rowvec;

static int rowvec_push(rowvec *r, int32_t col, float w) {
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 64;
        edge_pair *e = realloc(r->e, sizeof *e * (size_t)cap);
        if (!e) return -1;
        r->e = e;
        r->cap = cap;
    }
    r->e[r->n].col = col;
    r->e[r->n].w = w;
    r->n++;
    return 0;
}

typedef struct batch_ctx {
    ag_graph *g;
    const ag_trace *tr;
    const agi_basis *basis;
    const char *func;
    int B;
    const tgt *t;      /* [B] */
    int *t_layer, *t_pos; /* [Bmax] */
    float *dirs;       /* [Bmax][D] */
    float *Y;          /* [Bmax*T][Hd] GEMM output */
    size_t Y_floats;
    /* ranking */
    uint16_t *absbuf;
    size_t absbuf_cap;
    size_t *off;       /* [Bmax] */
    double *rowabs;    /* [Bmax] */
    /* exact */
    rowvec *rows;      /* [B] rows of the batch (exact pass) */
    int nonfinite;
    double flops;
} batch_ctx;

static double dot_d(const float *a, const float *b, int n) {
    double s = 0.0;
    for (int k = 0; k < n; k++) s += (double)a[k] * b[k];
    return s;
}

/* Ranking callback: every unit's edge through one GEMM against the whole decoder. */
static int rank_cb(void *user, int l, const float *gr, int n_act, int Tp) {
    batch_ctx *bc = user;
    const ag_trace *tr = bc->tr;
    const agi_config *c = &tr->model->cfg;
    int D = c->dim, Hd = bc->g->n_per_pos;
    if (l >= 0) {
        int ld;
        const float *dec = bc->basis->decoder(bc->basis, tr, l, &ld);
        const float *act = bc->basis->acts(bc->basis, tr, l);
        /* Y[n_act*Tp][Hd] = g[n_act*Tp][D] · dec[D][Hd] */
        agi_gemm(0, 0, n_act * Tp, Hd, D, 1.0f, gr, D, dec, ld, 0.0f, bc->Y, Hd);
        bc->flops += 2.0 * n_act * Tp * (double)D * Hd;
        for (int b = 0; b < n_act; b++) {
            int P = bc->t_pos[b];
            uint16_t *base = bc->absbuf + bc->off[b] + (size_t)l * (P + 1) * Hd;
            double sum = 0.0;
            for (int p = 0; p <= P; p++) {
                const float *y = bc->Y + ((size_t)b * Tp + p) * Hd;
                const float *a = act + (size_t)p * Hd;
                uint16_t *o = base + (size_t)p * Hd;
                for (int i = 0; i < Hd; i++) {
                    float v = fabsf(y[i] * a[i]);
                    if (!isfinite(v)) bc->nonfinite = 1, v = 0.0f;
                    sum += v;
                    o[i] = to_bf16(v);
                }
            }
            bc->rowabs[b] += sum;
        }
    } else {
        const float *E = tr->model->w.token_embedding;
        for (int b = 0; b < n_act; b++)
            for (int p = 0; p <= bc->t_pos[b]; p++)
                bc->rowabs[b] += fabs(dot_d(gr + ((size_t)b * Tp + p) * D, E + (size_t)tr->acts.tokens[p] * D, D));
    }
    return 0;
}

/* Exact callback: edges to the graph's unit nodes, error nodes and embeddings only. */
static int exact_cb(void *user, int l, const float *gr, int n_act, int Tp) {
    batch_ctx *bc = user;
    ag_graph *g = bc->g;
    const ag_trace *tr = bc->tr;
    int D = g->D, T = g->T, Hd = g->n_per_pos;
    if (l >= 0) {
        int64_t s0 = g->lp_start[(size_t)l * T], s1 = g->lp_start[(size_t)l * T + Tp];
        int dense = (s1 - s0) * 4 >= (int64_t)Tp * Hd; /* most units of the layer are nodes */
        if (dense && s1 > s0) {
            int ld;
            const float *dec = bc->basis->decoder(bc->basis, tr, l, &ld);
            agi_gemm(0, 0, n_act * Tp, Hd, D, 1.0f, gr, D, dec, ld, 0.0f, bc->Y, Hd);
            bc->flops += 2.0 * n_act * Tp * (double)D * Hd;
        }
        for (int p = 0; p < Tp; p++) {
            int64_t u0 = g->lp_start[(size_t)l * T + p], u1 = g->lp_start[(size_t)l * T + p + 1];
            int k = (int)(u1 - u0);
            if (k > 0) {
                const float *out;
                int ldo;
                if (dense) {
                    out = NULL;
                    ldo = 0;
                } else {
                    /* out[n_act][k] = g[:, p, :] · vs[u0..u1)^T */
                    agi_gemm(0, 1, n_act, k, D, 1.0f, gr + (size_t)p * D, Tp * D, g->vs + (size_t)u0 * D, D, 0.0f,
                             bc->Y, k);
                    bc->flops += 2.0 * n_act * (double)D * k;
                    out = bc->Y;
                    ldo = k;
                }
                for (int b = 0; b < n_act; b++) {
                    if (bc->t_pos[b] < p) continue;
                    for (int j = 0; j < k; j++) {
                        float w;
                        if (dense) w = bc->Y[((size_t)b * Tp + p) * Hd + g->unit_i[u0 + j]] * g->unit_act[u0 + j];
                        else w = out[(size_t)b * ldo + j];
                        if (w == 0.0f) continue;
                        if (!isfinite(w)) bc->nonfinite = 1;
                        if (rowvec_push(&bc->rows[b], (int32_t)(u0 + j), w)) return agi_error(AG_ERR_OUT_OF_MEMORY, bc->func, "cannot grow an edge row");
                    }
                }
            }
            if (g->has_err[(size_t)l * T + p]) {
                const float *e = g->err + ((size_t)l * T + p) * D;
                int32_t node = (int32_t)agi_g_error_node(g, l, p);
                for (int b = 0; b < n_act; b++) {
                    if (bc->t_pos[b] < p) continue;
                    float w = (float)dot_d(gr + ((size_t)b * Tp + p) * D, e, D);
                    if (w == 0.0f) continue;
                    if (!isfinite(w)) bc->nonfinite = 1;
                    if (rowvec_push(&bc->rows[b], node, w)) return agi_error(AG_ERR_OUT_OF_MEMORY, bc->func, "cannot grow an edge row");
                }
            }
        }
    } else {
        const float *E = tr->model->w.token_embedding;
        for (int p = 0; p < Tp; p++) {
            int32_t node = (int32_t)agi_g_embed_node(g, p);
            const float *e = E + (size_t)tr->acts.tokens[p] * D;
            for (int b = 0; b < n_act; b++) {
                if (bc->t_pos[b] < p) continue;
                float w = (float)dot_d(gr + ((size_t)b * Tp + p) * D, e, D);
                if (w == 0.0f) continue;
                if (!isfinite(w)) bc->nonfinite = 1;
                if (rowvec_push(&bc->rows[b], node, w)) return agi_error(AG_ERR_OUT_OF_MEMORY, bc->func, "cannot grow an edge row");
            }
        }
    }
    return 0;
}

/* Directions and layer/position arrays of a batch (sorted by layer, highest first). */
static void batch_setup(batch_ctx *bc, tgt *t, int B) {
    ag_graph *g = bc->g;
    qsort(t, (size_t)B, sizeof *t, cmp_tgt_layer);
    bc->t = t;
    bc->B = B;
    for (int b = 0; b < B; b++) {
        bc->t_layer[b] = t[b].layer;
        bc->t_pos[b] = t[b].pos;
        float *d = bc->dirs + (size_t)b * g->D;
        if (t[b].layer == g->L) agi_frozen_final_dir(bc->tr, g->T - 1, g->logits[t[b].idx].wvec, d);
        else bc->basis->read_dir(bc->basis, bc->tr, t[b].layer, t[b].pos, t[b].idx, d);
    }
}

static int report(const ag_graph_options *o, const char *phase, double done) {
    return o->progress ? o->progress(phase, done < 0 ? 0 : done > 1 ? 1 : done, o->user_data) : 0;
}

/* ---- ranking pass -------------------------------------------------------------------------- */

/* Choose the units to expand; sets sel[0..*n_sel) (global unit ids l*T*Hd + p*Hd + i). */
static ag_status rank_units(ag_graph *g, batch_ctx *bc, agi_frozen_ws *ws, const ag_graph_options *o,
                            int64_t budget, int64_t *sel, int64_t *n_sel, const char *func) {
    int L = g->L, T = g->T, Hd = g->n_per_pos, Bmax = bc->B;
    int64_t n_cand = g->n_candidates;
    double *score = agi_calloc((size_t)n_cand, sizeof(double), func);
    uint8_t *expanded = agi_calloc((size_t)n_cand, 1, func);
    scored *cand = agi_malloc(sizeof(scored) * (size_t)n_cand, func);
    tgt *round = agi_malloc(sizeof(tgt) * (size_t)((int64_t)o->update_interval * Bmax > g->n_logits ? (int64_t)o->update_interval * Bmax : g->n_logits), func);
    ag_status st = AG_OK;
    int64_t ns = 0;
    if (!score || !expanded || !cand || !round) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int first = 1;; first = 0) {
        int64_t R = 0;
        if (first) {
            for (int k = 0; k < g->n_logits; k++) round[R++] = (tgt){L, T - 1, k, -1, g->logits[k].weight};
        } else {
            int64_t nc = 0;
            for (int64_t u = 0; u < n_cand; u++)
                if (!expanded[u] && score[u] > 0.0) cand[nc++] = (scored){score[u], u};
            int64_t want = (int64_t)o->update_interval * Bmax;
            if (want > budget - ns) want = budget - ns;
            if (want > nc) want = nc;
            if (want <= 0) break;
            if (want < nc) select_top(cand, nc, want);
            qsort(cand, (size_t)want, sizeof *cand, cmp_scored);
            for (int64_t r = 0; r < want; r++) {
                int64_t u = cand[r].u;
                expanded[u] = 1;
                sel[ns++] = u;
                int l = (int)(u / ((int64_t)T * Hd)), p = (int)(u / Hd % T), i = (int)(u % Hd);
                round[R++] = (tgt){l, p, i, -1, cand[r].s};
            }
        }
        qsort(round, (size_t)R, sizeof *round, cmp_tgt_pos);
        for (int64_t r0 = 0; r0 < R; r0 += Bmax) {
            int B = (int)(R - r0 < Bmax ? R - r0 : Bmax);
            tgt *t = round + r0;
            batch_setup(bc, t, B);
            /* per-row blocks of |A| over [layer][pos+1][Hd] */
            size_t need = 0;
            for (int b = 0; b < B; b++) {
                bc->off[b] = need;
                need += (size_t)t[b].layer * (size_t)(t[b].pos + 1) * (size_t)Hd;
                bc->rowabs[b] = 0.0;
            }
            if (need > bc->absbuf_cap) {
                uint16_t *nb = realloc(bc->absbuf, need * sizeof(uint16_t));
                if (!nb) {
                    st = agi_error(AG_ERR_OUT_OF_MEMORY, func, "cannot allocate %zu bytes of ranking scratch", need * 2);
                    goto out;
                }
                bc->absbuf = nb;
                bc->absbuf_cap = need;
            }
            st = agi_frozen_vjp(ws, bc->tr, B, bc->t_layer, bc->t_pos, bc->dirs, rank_cb, bc);
            if (st != AG_OK) goto out;
            if (bc->nonfinite) {
                st = agi_error(AG_ERR_NUMERIC, func, "a non-finite edge appeared while ranking units");
                goto out;
            }
            g->rows_computed += B;
            for (int b = 0; b < B; b++) {
                double s = t[b].c / (bc->rowabs[b] > 1e-10 ? bc->rowabs[b] : 1e-10);
                int P = t[b].pos;
                for (int l = 0; l < t[b].layer; l++)
                    for (int p = 0; p <= P; p++) {
                        const uint16_t *a = bc->absbuf + bc->off[b] + ((size_t)l * (P + 1) + p) * Hd;
                        double *sc = score + ((size_t)l * T + p) * Hd;
                        const uint8_t *ex = expanded + ((size_t)l * T + p) * Hd;
                        for (int i = 0; i < Hd; i++)
                            if (a[i] && !ex[i]) sc[i] += s * from_bf16(a[i]);
                    }
            }
            if (report(o, "rank", (double)ns / (double)budget)) {
                st = agi_error(AG_ERR_CANCELLED, func, "cancelled by the progress callback");
                goto out;
            }
        }
        if (ns >= budget) break;
    }
    *n_sel = ns;
out:
    free(score);
    free(expanded);
    free(cand);
    free(round);
    return st;
}

/* ---- the build ------------------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}
static int cmp_edge(const void *a, const void *b) {
    const edge_pair *x = a, *y = b;
    return (x->col > y->col) - (x->col < y->col);
}

ag_status agi_graph_build(ag_graph *g, const ag_trace *tr, const ag_graph_options *o, const char *func) {
    const agi_config *c = &tr->model->cfg;
    int L = g->L, T = g->T, D = g->D, Hd = g->n_per_pos;
    const agi_basis *basis = g->basis;
    double t0 = now_s();
    ag_status st = AG_OK;
    int Bmax = o->batch_size;
    int64_t budget = o->max_feature_nodes == 0 || o->max_feature_nodes >= g->n_candidates ? g->n_candidates : o->max_feature_nodes;
    int64_t total_rows = g->n_logits + budget;
    if (Bmax > total_rows) Bmax = (int)total_rows;
    if (Bmax < 1) Bmax = 1;

    batch_ctx bc;
    memset(&bc, 0, sizeof bc);
    bc.g = g;
    bc.tr = tr;
    bc.basis = basis;
    bc.func = func;
    bc.B = Bmax;
    agi_frozen_ws ws;
    memset(&ws, 0, sizeof ws);
    int64_t *sel = NULL;
    tgt *rows_t = NULL;
    rowvec *rows = NULL;
    int64_t n_rows = 0;
    float *masked = NULL;

    st = agi_frozen_ws_init(&ws, tr, Bmax, func);
    if (st != AG_OK) return st;
    bc.t_layer = agi_malloc(sizeof(int) * (size_t)Bmax, func);
    bc.t_pos = agi_malloc(sizeof(int) * (size_t)Bmax, func);
    bc.dirs = agi_malloc(sizeof(float) * (size_t)Bmax * D, func);
    bc.off = agi_malloc(sizeof(size_t) * (size_t)Bmax, func);
    bc.rowabs = agi_malloc(sizeof(double) * (size_t)Bmax, func);
    bc.Y_floats = (size_t)Bmax * T * (size_t)(Hd > D ? Hd : D);
    bc.Y = agi_malloc(sizeof(float) * bc.Y_floats, func);
    sel = agi_malloc(sizeof(int64_t) * (size_t)(budget > 0 ? budget : 1), func);
    if (!bc.t_layer || !bc.t_pos || !bc.dirs || !bc.off || !bc.rowabs || !bc.Y || !sel) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }

    /* 1. the unit nodes */
    int64_t n_sel = 0;
    if (budget == g->n_candidates) {
        for (int64_t u = 0; u < budget; u++) sel[u] = u;
        n_sel = budget;
    } else {
        st = rank_units(g, &bc, &ws, o, budget, sel, &n_sel, func);
        if (st != AG_OK) goto out;
    }
    free(bc.absbuf);
    bc.absbuf = NULL;
    bc.absbuf_cap = 0;
    qsort(sel, (size_t)n_sel, sizeof *sel, cmp_i64); /* (l, p, i) order */
    double t1 = now_s();
    g->t_rank = t1 - t0;

    g->n_units = n_sel;
    g->n_errors = (int64_t)L * T;
    g->n_embed = T;
    g->n_nodes = g->n_units + g->n_errors + g->n_embed + g->n_logits;
    if (g->n_nodes > INT32_MAX) {
        st = agi_error(AG_ERR_UNSUPPORTED, func, "%lld nodes exceed the 2^31 node limit", (long long)g->n_nodes);
        goto out;
    }
    g->unit_l = agi_malloc(sizeof(int32_t) * (size_t)(n_sel ? n_sel : 1), func);
    g->unit_p = agi_malloc(sizeof(int32_t) * (size_t)(n_sel ? n_sel : 1), func);
    g->unit_i = agi_malloc(sizeof(int32_t) * (size_t)(n_sel ? n_sel : 1), func);
    g->unit_act = agi_malloc(sizeof(float) * (size_t)(n_sel ? n_sel : 1), func);
    g->vs = agi_malloc(sizeof(float) * (size_t)(n_sel ? n_sel : 1) * D, func);
    g->lp_start = agi_calloc((size_t)L * T + 1, sizeof(int64_t), func);
    g->err = agi_calloc((size_t)L * T * D, sizeof(float), func);
    g->has_err = agi_calloc((size_t)L * T, 1, func);
    masked = agi_malloc(sizeof(float) * (size_t)T * Hd, func);
    if (!g->unit_l || !g->unit_p || !g->unit_i || !g->unit_act || !g->vs || !g->lp_start || !g->err || !g->has_err || !masked) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int64_t k = 0; k < n_sel; k++) {
        int64_t u = sel[k];
        int l = (int)(u / ((int64_t)T * Hd)), p = (int)(u / Hd % T), i = (int)(u % Hd);
        g->unit_l[k] = l;
        g->unit_p[k] = p;
        g->unit_i[k] = i;
        g->unit_act[k] = basis->acts(basis, tr, l)[(size_t)p * Hd + i];
        g->lp_start[(size_t)l * T + p + 1]++;
        int ld;
        const float *dec = basis->decoder(basis, tr, l, &ld);
        float *v = g->vs + (size_t)k * D;
        for (int d = 0; d < D; d++) v[d] = g->unit_act[k] * dec[(size_t)d * ld + i];
    }
    for (size_t q = 0; q < (size_t)L * T; q++) g->lp_start[q + 1] += g->lp_start[q];

    /* 2. error vectors: the units that are not nodes, folded into (l, p), plus the basis's
     * reconstruction error. One GEMM per layer over the masked activations. */
    for (int l = 0; l < L; l++) {
        const float *act = basis->acts(basis, tr, l);
        memcpy(masked, act, sizeof(float) * (size_t)T * Hd);
        int any = 0;
        for (int64_t k = g->lp_start[(size_t)l * T]; k < g->lp_start[(size_t)(l + 1) * T]; k++)
            masked[(size_t)g->unit_p[k] * Hd + g->unit_i[k]] = 0.0f;
        for (int p = 0; p < T; p++) {
            const float *mr = masked + (size_t)p * Hd;
            int nz = 0;
            for (int i = 0; i < Hd && !nz; i++) nz = mr[i] != 0.0f;
            g->has_err[(size_t)l * T + p] = (uint8_t)nz;
            any |= nz;
        }
        float *el = g->err + (size_t)l * T * D;
        if (any) {
            int ld;
            const float *dec = basis->decoder(basis, tr, l, &ld);
            /* err[T][D] = masked[T][Hd] · dec[D][Hd]^T */
            agi_gemm(0, 1, T, D, Hd, 1.0f, masked, Hd, dec, ld, 0.0f, el, D);
            for (int p = 0; p < T; p++)
                if (!g->has_err[(size_t)l * T + p]) memset(el + (size_t)p * D, 0, sizeof(float) * (size_t)D);
        }
        for (int p = 0; p < T; p++) {
            const float *re = basis->recon_error(basis, tr, l, p);
            if (!re) continue;
            float *e = el + (size_t)p * D;
            for (int d = 0; d < D; d++) e[d] += re[d];
            g->has_err[(size_t)l * T + p] = 1;
        }
    }
    free(masked);
    masked = NULL;

    /* 3. the exact rows: logits and unit nodes */
    n_rows = g->n_logits + g->n_units;
    rows_t = agi_malloc(sizeof(tgt) * (size_t)n_rows, func);
    rows = agi_calloc((size_t)Bmax, sizeof(rowvec), func);
    g->row_ptr = agi_calloc((size_t)g->n_nodes + 1, sizeof(int64_t), func);
    g->value = agi_malloc(sizeof(double) * (size_t)g->n_nodes, func);
    if (!rows_t || !rows || !g->row_ptr || !g->value) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int64_t i = 0; i < g->n_nodes; i++) g->value[i] = NAN;
    for (int k = 0; k < g->n_logits; k++) {
        rows_t[k] = (tgt){L, T - 1, k, agi_g_logit_node(g, k), 0.0};
        g->value[agi_g_logit_node(g, k)] = g->logits[k].value;
    }
    for (int64_t k = 0; k < g->n_units; k++) {
        rows_t[g->n_logits + k] = (tgt){g->unit_l[k], g->unit_p[k], g->unit_i[k], k, 0.0};
        g->value[k] = g->unit_act[k];
    }
    qsort(rows_t, (size_t)n_rows, sizeof *rows_t, cmp_tgt_pos);
    /* every row's edges, kept per batch then appended to the CSR arrays in node order at the end */
    edge_pair **row_edges = agi_calloc((size_t)g->n_nodes, sizeof(edge_pair *), func);
    if (!row_edges) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    bc.rows = rows;
    for (int64_t r0 = 0; r0 < n_rows && st == AG_OK; r0 += Bmax) {
        int B = (int)(n_rows - r0 < Bmax ? n_rows - r0 : Bmax);
        tgt *t = rows_t + r0;
        batch_setup(&bc, t, B);
        for (int b = 0; b < B; b++) rows[b].n = 0;
        st = agi_frozen_vjp(&ws, tr, B, bc.t_layer, bc.t_pos, bc.dirs, exact_cb, &bc);
        if (st != AG_OK) break;
        if (bc.nonfinite) {
            st = agi_error(AG_ERR_NUMERIC, func, "a non-finite edge appeared");
            break;
        }
        g->rows_computed += B;
        for (int b = 0; b < B; b++) {
            int64_t node = t[b].node;
            qsort(rows[b].e, (size_t)rows[b].n, sizeof(edge_pair), cmp_edge);
            edge_pair *copy = agi_malloc(sizeof(edge_pair) * (size_t)(rows[b].n ? rows[b].n : 1), func);
            if (!copy) {
                st = AG_ERR_OUT_OF_MEMORY;
                break;
            }
            if (rows[b].n) memcpy(copy, rows[b].e, sizeof(edge_pair) * (size_t)rows[b].n);
            row_edges[node] = copy;
            g->row_ptr[node + 1] = rows[b].n;
        }
        if (st == AG_OK && report(o, "rows", (double)(r0 + B) / (double)n_rows))
            st = agi_error(AG_ERR_CANCELLED, func, "cancelled by the progress callback");
    }
    if (st == AG_OK) {
        for (int64_t i = 0; i < g->n_nodes; i++) g->row_ptr[i + 1] += g->row_ptr[i];
        g->nnz = g->row_ptr[g->n_nodes];
        g->col = agi_malloc(sizeof(int32_t) * (size_t)(g->nnz ? g->nnz : 1), func);
        g->w = agi_malloc(sizeof(float) * (size_t)(g->nnz ? g->nnz : 1), func);
        if (!g->col || !g->w) st = AG_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < g->n_nodes; i++) {
        if (!row_edges[i]) continue;
        if (st == AG_OK) {
            int64_t a = g->row_ptr[i], n = g->row_ptr[i + 1] - a;
            for (int64_t k = 0; k < n; k++) {
                g->col[a + k] = row_edges[i][k].col;
                g->w[a + k] = row_edges[i][k].w;
            }
        }
        free(row_edges[i]);
    }
    free(row_edges);
    if (st != AG_OK) goto out;
    g->flops = bc.flops + ws.flops;
    g->t_rows = now_s() - t1;

out:
    if (rows)
        for (int b = 0; b < Bmax; b++) free(rows[b].e);
    free(rows);
    free(rows_t);
    free(masked);
    free(sel);
    free(bc.t_layer);
    free(bc.t_pos);
    free(bc.dirs);
    free(bc.off);
    free(bc.rowabs);
    free(bc.Y);
    free(bc.absbuf);
    agi_frozen_ws_free(&ws);
    (void)c;
    return st;
}

/* One unit's exact row against g's nodes (lazy expansion). */
ag_status agi_graph_expand_row(const ag_graph *g, int l, int p, int i, int32_t **cols, float **ws_out, int64_t *n_out,
                               double *value, const char *func) {
    const ag_trace *tr = g->trace;
    *cols = NULL;
    *ws_out = NULL;
    *n_out = 0;
    agi_frozen_ws ws;
    ag_status st = agi_frozen_ws_init(&ws, tr, 1, func);
    if (st != AG_OK) return st;
    batch_ctx bc;
    memset(&bc, 0, sizeof bc);
    bc.g = (ag_graph *)g; /* the callbacks only read g */
    bc.tr = tr;
    bc.basis = g->basis;
    bc.func = func;
    rowvec row = {0};
    tgt t = {l, p, i, -1, 0.0};
    int tl = l, tp = p;
    bc.t_layer = &tl;
    bc.t_pos = &tp;
    bc.dirs = agi_malloc(sizeof(float) * (size_t)g->D, func);
    bc.Y_floats = (size_t)g->T * (size_t)(g->n_per_pos > g->D ? g->n_per_pos : g->D);
    bc.Y = agi_malloc(sizeof(float) * bc.Y_floats, func);
    bc.rows = &row;
    if (!bc.dirs || !bc.Y) {
        st = AG_ERR_OUT_OF_MEMORY;
    } else {
        bc.t = &t;
        bc.B = 1;
        g->basis->read_dir(g->basis, tr, l, p, i, bc.dirs);
        st = agi_frozen_vjp(&ws, tr, 1, &tl, &tp, bc.dirs, exact_cb, &bc);
        if (st == AG_OK && bc.nonfinite) st = agi_error(AG_ERR_NUMERIC, func, "a non-finite edge appeared");
    }
    if (st == AG_OK) {
        *cols = agi_malloc(sizeof(int32_t) * (size_t)(row.n ? row.n : 1), func);
        *ws_out = agi_malloc(sizeof(float) * (size_t)(row.n ? row.n : 1), func);
        if (!*cols || !*ws_out) {
            free(*cols);
            free(*ws_out);
            *cols = NULL;
            *ws_out = NULL;
            st = AG_ERR_OUT_OF_MEMORY;
        } else {
            for (int64_t k = 0; k < row.n; k++) {
                (*cols)[k] = row.e[k].col;
                (*ws_out)[k] = row.e[k].w;
            }
            *n_out = row.n;
            if (value) *value = g->basis->acts(g->basis, tr, l)[(size_t)p * g->n_per_pos + i];
        }
    }
    free(row.e);
    free(bc.dirs);
    free(bc.Y);
    agi_frozen_ws_free(&ws);
    return st;
}
