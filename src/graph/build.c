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
    /* issue #6: constants' contributions per row; scratch of cross-layer written vectors */
    double *cst;       /* [Bmax] */
    float *vscr;       /* [max units per (layer, position)][D] */
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
        /* units of layer s write into this MLP output l (s = l; a cross-layer basis: every
         * s <= l within reach); a cross-layer unit's estimate sums |edge| over its output
         * layers (an upper bound, good enough to rank) */
        int cross = bc->basis->cross_layer;
        for (int s = cross ? 0 : l; s <= l; s++) {
            int o = l - s;
            if (o >= agi_basis_n_out(bc->basis, s)) continue;
            int ld;
            const float *dec = o == 0 ? bc->basis->decoder(bc->basis, tr, s, &ld) : bc->basis->cross_decoder(bc->basis, tr, s, o, &ld);
            const float *act = bc->basis->acts(bc->basis, tr, s);
            /* Y[n_act*Tp][Hd] = g[n_act*Tp][D] · dec[D][Hd] */
            agi_gemm(0, 0, n_act * Tp, Hd, D, 1.0f, gr, D, dec, ld, 0.0f, bc->Y, Hd);
            bc->flops += 2.0 * n_act * Tp * (double)D * Hd;
            for (int b = 0; b < n_act; b++) {
                int P = bc->t_pos[b];
                uint16_t *base = bc->absbuf + bc->off[b] + (size_t)s * (P + 1) * Hd;
                double sum = 0.0;
                for (int p = 0; p <= P; p++) {
                    const float *y = bc->Y + ((size_t)b * Tp + p) * Hd;
                    const float *a = act + (size_t)p * Hd;
                    uint16_t *ob = base + (size_t)p * Hd;
                    float ps = 0.0f;
                    if (cross) {
                        for (int i = 0; i < Hd; i++) {
                            float v = fabsf(y[i] * a[i]);
                            ps += v;
                            ob[i] = to_bf16(from_bf16(ob[i]) + v);
                        }
                    } else { /* branch-free, eight partial sums: so that it vectorises */
                        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                        int i = 0;
                        for (; i + 8 <= Hd; i += 8)
                            for (int k = 0; k < 8; k++) {
                                float v = fabsf(y[i + k] * a[i + k]);
                                acc[k] += v;
                                ob[i + k] = to_bf16(v);
                            }
                        for (; i < Hd; i++) {
                            float v = fabsf(y[i] * a[i]);
                            acc[0] += v;
                            ob[i] = to_bf16(v);
                        }
                        ps = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                    }
                    sum += ps;
                }
                if (!isfinite(sum)) bc->nonfinite = 1; /* a NaN or infinity anywhere in the row */
                bc->rowabs[b] += sum;
            }
        }
    } else {
        const float *E = tr->model->w.token_embedding;
        for (int b = 0; b < n_act; b++)
            for (int p = 0; p <= bc->t_pos[b]; p++)
                bc->rowabs[b] += fabs(dot_d(gr + ((size_t)b * Tp + p) * D, E + (size_t)tr->acts.tokens[p] * D, D));
    }
    return 0;
}

/* The edge (row b, column node) of weight w: zeros are not stored, a non-finite weight is flagged. */
static int add_edge(batch_ctx *bc, int b, int32_t node, float w) {
    if (w == 0.0f) return 0;
    if (!isfinite(w)) bc->nonfinite = 1;
    if (rowvec_push(&bc->rows[b], node, w)) return agi_error(AG_ERR_OUT_OF_MEMORY, bc->func, "cannot grow an edge row");
    return 0;
}

/* The edges of the rows reading position p to the node writing v there (an error node or an
 * embedding): w = gr[b, p, :] . v. */
static int add_vec_edges(batch_ctx *bc, const float *gr, int n_act, int Tp, int p, const float *v, int32_t node) {
    int D = bc->g->D;
    for (int b = 0; b < n_act; b++) {
        if (bc->t_pos[b] < p) continue;
        int rc = add_edge(bc, b, node, (float)dot_d(gr + ((size_t)b * Tp + p) * D, v, D));
        if (rc) return rc;
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
                        int rc = add_edge(bc, b, (int32_t)(u0 + j), w);
                        if (rc) return rc;
                    }
                }
            }
            if (g->has_err[(size_t)l * T + p]) {
                const float *e = g->err + ((size_t)l * T + p) * D;
                int32_t node = (int32_t)agi_g_error_node(g, l, p);
                int rc = add_vec_edges(bc, gr, n_act, Tp, p, e, node);
                if (rc) return rc;
            }
            const float *cv = bc->basis->constant ? bc->basis->constant(bc->basis, tr, l, p) : NULL;
            if (cv)
                for (int b = 0; b < n_act; b++)
                    if (bc->t_pos[b] >= p) bc->cst[b] += dot_d(gr + ((size_t)b * Tp + p) * D, cv, D);
        }
        /* cross-layer units of lower layers s that write into this MLP output l too */
        for (int s = 0; bc->basis->cross_layer && s < l; s++) {
            int o = l - s, ld;
            if (o >= agi_basis_n_out(bc->basis, s)) continue;
            const float *cd = bc->basis->cross_decoder(bc->basis, tr, s, o, &ld);
            for (int p = 0; p < Tp; p++) {
                int64_t u0 = g->lp_start[(size_t)s * T + p], u1 = g->lp_start[(size_t)s * T + p + 1];
                int k = (int)(u1 - u0);
                if (k == 0) continue;
                for (int j = 0; j < k; j++) { /* written vectors act · decoder column */
                    float a = g->unit_act[u0 + j], *v = bc->vscr + (size_t)j * D;
                    for (int d = 0; d < D; d++) v[d] = a * cd[(size_t)d * ld + g->unit_i[u0 + j]];
                }
                agi_gemm(0, 1, n_act, k, D, 1.0f, gr + (size_t)p * D, Tp * D, bc->vscr, D, 0.0f, bc->Y, k);
                bc->flops += 2.0 * n_act * (double)D * k;
                for (int b = 0; b < n_act; b++) {
                    if (bc->t_pos[b] < p) continue;
                    for (int j = 0; j < k; j++) {
                        float w = bc->Y[(size_t)b * k + j];
                        int rc = add_edge(bc, b, (int32_t)(u0 + j), w);
                        if (rc) return rc;
                    }
                }
            }
        }
    } else {
        const float *E = tr->model->w.token_embedding;
        for (int p = 0; p < Tp; p++) {
            int32_t node = (int32_t)agi_g_embed_node(g, p);
            const float *e = E + (size_t)tr->acts.tokens[p] * D;
            int rc = add_vec_edges(bc, gr, n_act, Tp, p, e, node);
            if (rc) return rc;
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

/* The batch's reverse pass: the frozen VJP (decomposition) or the real model's (gradient, ig). */
static ag_status run_vjp(agi_frozen_ws *ws, batch_ctx *bc, int B, agi_frozen_cb cb) {
    if (bc->g->method == AG_METHOD_DECOMPOSITION) return agi_frozen_vjp(ws, bc->tr, B, bc->t_layer, bc->t_pos, bc->dirs, cb, bc);
    int *idx = agi_malloc(sizeof(int) * (size_t)B, bc->func);
    if (!idx) return AG_ERR_OUT_OF_MEMORY;
    for (int b = 0; b < B; b++) idx[b] = bc->t[b].idx;
    ag_status st = bc->g->method == AG_METHOD_IG
                       ? agi_ig_vjp(bc->g, bc->tr, B, bc->t_layer, bc->t_pos, idx, cb, bc, &bc->flops, bc->func)
                       : agi_gradient_vjp(bc->g, bc->tr, B, bc->t_layer, bc->t_pos, idx, cb, bc, &bc->flops, bc->func);
    free(idx);
    return st;
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
    float *score = agi_calloc((size_t)n_cand, sizeof(float), func);
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
            if (bc->basis->cross_layer) memset(bc->absbuf, 0, need * sizeof(uint16_t)); /* rank_cb accumulates */
            st = run_vjp(ws, bc, B, rank_cb);
            if (st != AG_OK) goto out;
            if (bc->nonfinite) {
                st = agi_error(AG_ERR_NUMERIC, func, "a non-finite edge appeared while ranking units");
                goto out;
            }
            g->rows_computed += B;
            /* push c_t |A[t, .]| / sum |A[t, .]| into the scores (expanded units are never chosen
             * again, so their scores may grow harmlessly; branch-free so that it vectorises) */
            for (int b = 0; b < B; b++) {
                float s = (float)(t[b].c / (bc->rowabs[b] > 1e-10 ? bc->rowabs[b] : 1e-10));
                int P = t[b].pos;
                for (int l = 0; l < t[b].layer; l++)
                    for (int p = 0; p <= P; p++) {
                        const uint16_t *a = bc->absbuf + bc->off[b] + ((size_t)l * (P + 1) + p) * Hd;
                        float *sc = score + ((size_t)l * T + p) * Hd;
                        for (int i = 0; i < Hd; i++) sc[i] += s * from_bf16(a[i]);
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

/* A cross-layer unit reaches a target through several MLP outputs: one edge, the sum (the
 * row is sorted by source; a no-op for the other bases). */
static void merge_same_source(rowvec *r) {
    int64_t w = 0;
    for (int64_t k = 0; k < r->n; k++) {
        if (w > 0 && r->e[w - 1].col == r->e[k].col) r->e[w - 1].w += r->e[k].w;
        else r->e[w++] = r->e[k];
    }
    int64_t z = 0; /* sums that cancel exactly are dropped like other exact zeros */
    for (int64_t k = 0; k < w; k++)
        if (r->e[k].w != 0.0f) r->e[z++] = r->e[k];
    r->n = z;
}

ag_status agi_graph_build(ag_graph *g, const ag_trace *tr, const ag_graph_options *o, const char *func) {
    const agi_config *c = &tr->model->cfg;
    int L = g->L, T = g->T, D = g->D, Hd = g->n_per_pos;
    const agi_basis *basis = g->basis;
    double t0 = agi_now_seconds();
    ag_status st = AG_OK;
    int Bmax = o->batch_size;
    /* units that can be nodes: all, or (sparse bases) those with a nonzero activation */
    int64_t n_live = g->n_candidates;
    if (basis->sparse) {
        n_live = 0;
        for (int l = 0; l < L; l++) {
            const float *a = basis->acts(basis, tr, l);
            for (size_t q = 0; q < (size_t)T * Hd; q++) n_live += a[q] != 0.0f;
        }
    }
    int64_t budget = o->max_feature_nodes == 0 || o->max_feature_nodes >= n_live ? n_live : o->max_feature_nodes;
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
    bc.cst = agi_calloc((size_t)Bmax, sizeof(double), func);
    sel = agi_malloc(sizeof(int64_t) * (size_t)(budget > 0 ? budget : 1), func);
    if (!bc.t_layer || !bc.t_pos || !bc.dirs || !bc.off || !bc.rowabs || !bc.Y || !bc.cst || !sel) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }

    /* 1. the unit nodes */
    int64_t n_sel = 0;
    if (budget == n_live) {
        for (int64_t u = 0; u < g->n_candidates; u++)
            if (!basis->sparse || basis->acts(basis, tr, (int)(u / ((int64_t)T * Hd)))[u % ((int64_t)T * Hd)] != 0.0f) sel[n_sel++] = u;
    } else {
        st = rank_units(g, &bc, &ws, o, budget, sel, &n_sel, func);
        if (st != AG_OK) goto out;
    }
    free(bc.absbuf);
    bc.absbuf = NULL;
    bc.absbuf_cap = 0;
    qsort(sel, (size_t)n_sel, sizeof *sel, cmp_i64); /* (l, p, i) order */
    double t1 = agi_now_seconds();
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
    /* a cross-layer basis: the units that are not nodes write into later MLP outputs too */
    for (int s = 0; basis->cross_layer && s < L - 1 && st == AG_OK; s++) {
        const float *act = basis->acts(basis, tr, s);
        memcpy(masked, act, sizeof(float) * (size_t)T * Hd);
        for (int64_t k = g->lp_start[(size_t)s * T]; k < g->lp_start[(size_t)(s + 1) * T]; k++)
            masked[(size_t)g->unit_p[k] * Hd + g->unit_i[k]] = 0.0f;
        float *xe = agi_malloc(sizeof(float) * (size_t)T * D, func);
        if (!xe) {
            st = AG_ERR_OUT_OF_MEMORY;
            break;
        }
        for (int o = 1; o < agi_basis_n_out(basis, s); o++) {
            int ld;
            const float *cd = basis->cross_decoder(basis, tr, s, o, &ld);
            agi_gemm(0, 1, T, D, Hd, 1.0f, masked, Hd, cd, ld, 0.0f, xe, D);
            for (int p = 0; p < T; p++) {
                const float *mr = masked + (size_t)p * Hd;
                int nz = 0;
                for (int i = 0; i < Hd && !nz; i++) nz = mr[i] != 0.0f;
                if (!nz) continue;
                float *e = g->err + ((size_t)(s + o) * T + p) * D;
                for (int d = 0; d < D; d++) e[d] += xe[(size_t)p * D + d];
                g->has_err[(size_t)(s + o) * T + p] = 1;
            }
        }
        free(xe);
    }
    if (st != AG_OK) goto out;
    free(masked);
    masked = NULL;
    if (basis->cross_layer) { /* scratch for the written vectors of one (layer, position) */
        int64_t maxk = 1;
        for (size_t q = 0; q < (size_t)L * T; q++)
            if (g->lp_start[q + 1] - g->lp_start[q] > maxk) maxk = g->lp_start[q + 1] - g->lp_start[q];
        bc.vscr = agi_malloc(sizeof(float) * (size_t)maxk * D, func);
        if (!bc.vscr || (size_t)maxk * Bmax > bc.Y_floats) {
            free(bc.Y);
            bc.Y_floats = (size_t)maxk * Bmax > bc.Y_floats ? (size_t)maxk * Bmax : bc.Y_floats;
            bc.Y = agi_malloc(sizeof(float) * bc.Y_floats, func);
        }
        if (!bc.vscr || !bc.Y) {
            st = AG_ERR_OUT_OF_MEMORY;
            goto out;
        }
    }

    /* 3. the exact rows: logits and unit nodes */
    n_rows = g->n_logits + g->n_units;
    rows_t = agi_malloc(sizeof(tgt) * (size_t)n_rows, func);
    rows = agi_calloc((size_t)Bmax, sizeof(rowvec), func);
    g->row_ptr = agi_calloc((size_t)g->n_nodes + 1, sizeof(int64_t), func);
    g->value = agi_malloc(sizeof(double) * (size_t)g->n_nodes, func);
    g->constant = agi_calloc((size_t)g->n_nodes, sizeof(double), func);
    if (!rows_t || !rows || !g->row_ptr || !g->value || !g->constant) {
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
        g->value[k] = basis->target_value ? basis->target_value(basis, tr, g->unit_l[k], g->unit_p[k], g->unit_i[k]) : g->unit_act[k];
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
        for (int b = 0; b < B; b++) rows[b].n = 0, bc.cst[b] = 0.0;
        st = run_vjp(&ws, &bc, B, exact_cb);
        if (st != AG_OK) break;
        if (bc.nonfinite) {
            st = agi_error(AG_ERR_NUMERIC, func, "a non-finite edge appeared");
            break;
        }
        g->rows_computed += B;
        for (int b = 0; b < B; b++) {
            int64_t node = t[b].node;
            qsort(rows[b].e, (size_t)rows[b].n, sizeof(edge_pair), cmp_edge);
            merge_same_source(&rows[b]);
            g->constant[node] = bc.cst[b];
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
    g->t_rows = agi_now_seconds() - t1;

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
    free(bc.cst);
    free(bc.vscr);
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
    double cst = 0.0;
    bc.cst = &cst;
    if (g->basis->cross_layer) bc.vscr = agi_malloc(sizeof(float) * (size_t)g->n_per_pos * (size_t)g->D, func);
    if (!bc.dirs || !bc.Y || (g->basis->cross_layer && !bc.vscr)) {
        st = AG_ERR_OUT_OF_MEMORY;
    } else {
        bc.t = &t;
        bc.B = 1;
        g->basis->read_dir(g->basis, tr, l, p, i, bc.dirs);
        st = run_vjp(&ws, &bc, 1, exact_cb);
        if (st == AG_OK && bc.nonfinite) st = agi_error(AG_ERR_NUMERIC, func, "a non-finite edge appeared");
        if (st == AG_OK && g->basis->cross_layer) {
            qsort(row.e, (size_t)row.n, sizeof(edge_pair), cmp_edge);
            merge_same_source(&row);
        }
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
            if (value)
                *value = g->basis->target_value ? g->basis->target_value(g->basis, tr, l, p, i)
                                                : g->basis->acts(g->basis, tr, l)[(size_t)p * g->n_per_pos + i];
        }
    }
    free(row.e);
    free(bc.dirs);
    free(bc.Y);
    free(bc.vscr);
    agi_frozen_ws_free(&ws);
    return st;
}
