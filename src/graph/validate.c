/* ag_graph_validate: the graph's predicted effects against measured interventions (issue #7).
 *
 * Predictions come from the graph's public queries only (nodes, incoming rows); measurements
 * from the intervention engine (intervene.h) on the trace. One forward sweep over the graph's
 * rows (units in layer order, then the target's row) computes the total effect of every ablation
 * at once: rel[s][r] is the relative change of source s's value under ablation r (-1 for an
 * ablated node), and a unit's change is sum_s A[t,s] * rel[s][r]. The target is any logit node:
 * its measured change is w . (change of the final norm's output at the last position), w the
 * target's direction (graph.h). Transcoder graphs are measured through intervene_tc.c with the
 * set the caller passes (checked against the graph's activations). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/trace.h"
#include "export/strbuf.h"
#include "graph/graph.h"
#include "graph/intervene.h"
#include "transcoder/transcoder.h"

#define N_MODES 4
static const int32_t MODE_BITS[N_MODES] = {AG_VALIDATE_DIRECT, AG_VALIDATE_LINEAR, AG_VALIDATE_FREE,
                                           AG_VALIDATE_FREE_FROZEN_ATTENTION};
static const char *const MODE_NAMES[N_MODES] = {"direct", "linear", "free", "free_frozen_attention"};

typedef struct vrow {
    int64_t node;  /* -1 for groups */
    int32_t group; /* -1 for nodes */
    double activation, influence, pred_direct, pred_total;
    double measured[N_MODES];
    int64_t first, count; /* its nodes in ag_validation.members */
} vrow;

struct ag_validation {
    int64_t target;
    int32_t target_kind; /* AG_GRAPH_TARGET_* */
    int32_t target_token, target_token_b;
    double target_value;
    char target_id[48];
    int32_t modes;
    size_t n_rows, n_node_rows;
    vrow *rows;
    int64_t *members;       /* the ablated nodes of every row, back to back */
    char (*member_ids)[48]; /* their ids */
    int32_t *member_kind, *member_layer, *member_pos, *member_index;
    ag_validation_stats stats[N_MODES][2];
};

/* ---- options ------------------------------------------------------------------------------ */

ag_status ag_validate_options_init(ag_validate_options *opts, size_t struct_size) {
    static const char *const fn = "ag_validate_options_init";
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t)) return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    ag_validate_options d;
    memset(&d, 0, sizeof d);
    d.top_k = 20;
    d.modes = AG_VALIDATE_ALL;
    d.target = -1;
    d.include_errors = 1;
    d.include_embeddings = 1;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, struct_size < sizeof d ? struct_size : sizeof d);
    opts->struct_size = struct_size;
    return AG_OK;
}

void ag_validation_free(ag_validation *v) {
    if (!v) return;
    free(v->rows);
    free(v->members);
    free(v->member_ids);
    free(v->member_kind);
    free(v->member_layer);
    free(v->member_pos);
    free(v->member_index);
    free(v);
}

/* ---- statistics --------------------------------------------------------------------------- */

static double pearson(const double *x, const double *y, size_t n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx <= 0 || syy <= 0) return NAN;
    return sxy / sqrt(sxx * syy);
}

typedef struct val_idx {
    double v;
    size_t i;
} val_idx;

static int cmp_val_idx(const void *a, const void *b) {
    const val_idx *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Average ranks (ties share the mean of their ranks). */
static void ranks(const double *x, size_t n, double *r, val_idx *tmp) {
    for (size_t i = 0; i < n; i++) tmp[i] = (val_idx){x[i], i};
    qsort(tmp, n, sizeof *tmp, cmp_val_idx);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && tmp[j + 1].v == tmp[i].v) j++;
        double avg = 0.5 * (double)(i + j);
        for (size_t k = i; k <= j; k++) r[tmp[k].i] = avg;
        i = j + 1;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Stats of measured m against predicted p (n rows; scratch: 4n doubles + n val_idx). */
static void compute_stats(const double *m, const double *p, size_t n, ag_validation_stats *s, double *scr, val_idx *tmp) {
    s->n = (int64_t)n;
    s->pearson = pearson(m, p, n);
    if (n >= 2) {
        ranks(m, n, scr, tmp);
        ranks(p, n, scr + n, tmp);
        s->spearman = pearson(scr, scr + n, n);
    } else {
        s->spearman = NAN;
    }
    double pmax = 0, emax = 0;
    for (size_t i = 0; i < n; i++) {
        pmax = fmax(pmax, fabs(p[i]));
        emax = fmax(emax, fabs(m[i] - p[i]));
    }
    s->rel_error = n == 0 ? NAN : pmax > 0 ? emax / pmax : (emax > 0 ? INFINITY : 0.0);
    size_t agree = 0, counted = 0;
    double floor = 1e-3 * pmax;
    for (size_t i = 0; i < n; i++) {
        if (fabs(p[i]) > 1e-6 * pmax) {
            counted++;
            agree += (m[i] > 0) == (p[i] > 0) && m[i] != 0;
        }
        double den = fmax(fabs(p[i]), floor);
        scr[2 * n + i] = den > 0 ? fabs(m[i] - p[i]) / den : (m[i] == p[i] ? 0.0 : INFINITY);
    }
    s->sign_agreement = counted ? (double)agree / (double)counted : NAN;
    if (n) {
        qsort(scr + 2 * n, n, sizeof(double), cmp_double);
        s->median_rel_error = n % 2 ? scr[2 * n + n / 2] : 0.5 * (scr[2 * n + n / 2 - 1] + scr[2 * n + n / 2]);
    } else {
        s->median_rel_error = NAN;
    }
}

/* ---- helpers over the public graph API ---------------------------------------------------- */

static ag_status node_info(const ag_graph *g, int64_t i, ag_node_info *ni, const char *fn) {
    memset(ni, 0, sizeof *ni);
    ni->struct_size = sizeof *ni;
    ag_status st = ag_graph_node_info(g, (size_t)i, ni);
    if (st != AG_OK) return agi_error(st, fn, "%s", ag_last_error());
    return AG_OK;
}

/* The incoming edges of node t into *buf (grown as needed). */
static ag_status row_of(const ag_graph *g, int64_t t, ag_edge **buf, size_t *cap, size_t *n, const char *fn) {
    ag_status st = ag_graph_node_edges(g, (size_t)t, AG_EDGES_IN, 0, *buf, *cap, n);
    if (st == AG_ERR_BUFFER_TOO_SMALL) {
        size_t want = *n + 16;
        ag_edge *nb = realloc(*buf, want * sizeof *nb);
        if (!nb) return agi_error(AG_ERR_OUT_OF_MEMORY, fn, "out of memory for a row of %zu edges", *n);
        *buf = nb;
        *cap = want;
        st = ag_graph_node_edges(g, (size_t)t, AG_EDGES_IN, 0, *buf, *cap, n);
    }
    if (st != AG_OK) return agi_error(st, fn, "%s", ag_last_error());
    return AG_OK;
}

typedef struct src_node {
    int64_t node;
    double infl;
} src_node;

static int cmp_src(const void *a, const void *b) {
    const src_node *x = a, *y = b;
    if (x->infl != y->infl) return x->infl > y->infl ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* ---- validate ----------------------------------------------------------------------------- */

ag_status ag_graph_validate(ag_validation **out, const ag_graph *g, const ag_trace *trace, const ag_validate_options *opts) {
    static const char *const fn = "ag_graph_validate";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!g || !trace) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !g ? "graph" : "trace");
    ag_validate_options o;
    ag_validate_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    if (o.top_k < 0) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->top_k = %d is negative", o.top_k);
    if (o.modes <= 0 || (o.modes & ~AG_VALIDATE_ALL))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->modes = %d must be a nonzero combination of AG_VALIDATE_* (at most %d)",
                         o.modes, AG_VALIDATE_ALL);
    if (o.n_groups < 0) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->n_groups = %d is negative", o.n_groups);
    if (o.n_groups > 0 && (!o.group_nodes || !o.group_sizes))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->%s is NULL with n_groups = %d", !o.group_sizes ? "group_sizes" : "group_nodes",
                         o.n_groups);

    const ag_model *m = trace->model;
    const agi_acts *clean = &trace->acts;
    const agi_config *c = &m->cfg;
    const int T = clean->T, L = c->n_layers, D = c->dim;
    ag_graph_info gi;
    memset(&gi, 0, sizeof gi);
    gi.struct_size = sizeof gi;
    if ((st = ag_graph_get_info(g, &gi)) != AG_OK) return agi_error(st, fn, "%s", ag_last_error());
    if (gi.basis != AG_BASIS_NEURONS && gi.basis != AG_BASIS_TRANSCODERS)
        return agi_error(AG_ERR_UNSUPPORTED, fn, "graph basis %d: only neuron and transcoder graphs can be validated", gi.basis);
    if (gi.n_positions != T || gi.n_layers != L)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "trace (%d positions, %d layers) does not match the graph (%d positions, %d layers)",
                         T, L, gi.n_positions, gi.n_layers);
    const int tcg = gi.basis == AG_BASIS_TRANSCODERS;
    const ag_transcoder *tc = tcg ? o.transcoder : NULL;
    if (tcg) {
        if (!tc)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                             "opts->transcoder is NULL: a transcoder graph is validated with the set it was built with");
        if ((st = agi_tc_check_model(tc, m, fn, "opts->transcoder")) != AG_OK) return st;
        int clt = tc->kind == AG_TRANSCODER_CROSS_LAYER;
        if (tc->F != g->n_per_pos || clt != g->basis->cross_layer)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                             "opts->transcoder (%s, %d features per layer) is not the set the graph was built with (%s, %d features)",
                             clt ? "cross-layer" : "per-layer", tc->F, g->basis->cross_layer ? "cross-layer" : "per-layer",
                             g->n_per_pos);
    }
    const int U = tcg ? tc->F : c->hidden_dim; /* units per (layer, position) */
    const int64_t N = (int64_t)ag_graph_n_nodes(g);
    const int bos0 = agi_tc_bos0(m, clean->tokens);

    /* nodes: kinds, unit membership, the target, the candidates */
    ag_validation *v = NULL;
    int32_t *kind = NULL, *nl = NULL, *np = NULL, *ni_ = NULL;
    double *act = NULL, *infl = NULL;
    uint8_t *is_node = NULL; /* [L][T][U] 1 when the unit is a graph node */
    src_node *cand = NULL;
    float *err = NULL;     /* [L*T][D] error vectors (units that are not nodes) */
    uint8_t *has_err = NULL;
    double *rel = NULL, *chg = NULL;
    ag_edge *ebuf = NULL;
    size_t ecap = 0;
    agi_edit *edits = NULL;
    agi_acts work;
    memset(&work, 0, sizeof work);
    double *scr = NULL;
    val_idx *vtmp = NULL;
    agi_tc_clean fc;
    memset(&fc, 0, sizeof fc);
    agi_tc_run trun[3]; /* transcoder graphs: DIRECT, LINEAR, REAL */
    memset(trun, 0, sizeof trun);
    float *hold_mult = NULL; /* [L][T][F] LINEAR multipliers: the clean ones for nodes, 0 (held) otherwise */
    const float *wvec = NULL;

    kind = agi_calloc((size_t)N, sizeof *kind, fn);
    nl = agi_calloc((size_t)N, sizeof *nl, fn);
    np = agi_calloc((size_t)N, sizeof *np, fn);
    ni_ = agi_calloc((size_t)N, sizeof *ni_, fn);
    act = agi_calloc((size_t)N, sizeof *act, fn);
    infl = agi_calloc((size_t)N, sizeof *infl, fn);
    is_node = agi_calloc((size_t)L * T * U, 1, fn);
    cand = agi_calloc((size_t)N, sizeof *cand, fn);
    err = agi_calloc((size_t)L * T * D, sizeof *err, fn);
    has_err = agi_calloc((size_t)L * T, 1, fn);
    v = agi_calloc(1, sizeof *v, fn);
    if (!kind || !nl || !np || !ni_ || !act || !infl || !is_node || !cand || !err || !has_err || !v) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (tcg && (st = agi_tc_clean_make(&fc, tc, trace, fn)) != AG_OK) goto done;
    int64_t target = o.target, best_logit = -1;
    double best_w = -INFINITY;
    for (int64_t i = 0; i < N; i++) {
        ag_node_info ni;
        if ((st = node_info(g, i, &ni, fn)) != AG_OK) goto done;
        kind[i] = ni.kind;
        nl[i] = ni.layer;
        np[i] = ni.position;
        ni_[i] = ni.index;
        act[i] = ni.activation;
        infl[i] = ni.influence_raw;
        if (ni.kind == AG_NODE_UNIT) {
            if (ni.layer < 0 || ni.layer >= L || ni.position < 0 || ni.position >= T || ni.index < 0 || ni.index >= U) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "graph node %lld (%s) does not fit the trace's model", (long long)i, ni.id);
                goto done;
            }
            is_node[((size_t)ni.layer * T + ni.position) * U + ni.index] = 1;
            if (tcg) { /* the caller's set must give the graph's activations on this trace */
                double a = fc.acts[((size_t)ni.layer * T + ni.position) * U + ni.index];
                if (!(fabs(a - ni.activation) <= 1e-5 * fmax(1.0, fabs(ni.activation)))) {
                    st = agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                                   "opts->transcoder is not the set the graph was built with: feature node %s has activation %.9g "
                                   "in the graph and %.9g from the set on this trace",
                                   ni.id, ni.activation, a);
                    goto done;
                }
                /* ... and its decoder: the node's written vector (into its own block) */
                const float *dec = tc->layers[ni.layer].W_dec + (size_t)ni.index * agi_tc_n_out(tc, ni.layer) * D;
                const float *vs = g->vs + (size_t)i * D;
                for (int d = 0; d < D; d++)
                    if (!(fabs((double)vs[d] - (double)ni.activation * dec[d]) <= 1e-5 * (1.0 + fabs(vs[d])))) {
                        st = agi_error(AG_ERR_INVALID_ARGUMENT, fn,
                                       "opts->transcoder is not the set the graph was built with: the decoder of feature node %s differs",
                                       ni.id);
                        goto done;
                    }
            }
        } else if (ni.kind == AG_NODE_EMBEDDING) {
            if (ni.position < 0 || ni.position >= T || ni.token != clean->tokens[ni.position]) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "trace does not match the graph: embedding node %s vs token %d at position %d",
                               ni.id, ni.position >= 0 && ni.position < T ? clean->tokens[ni.position] : -1, ni.position);
                goto done;
            }
        } else if (ni.kind == AG_NODE_LOGIT && ni.weight > best_w) {
            best_w = ni.weight;
            best_logit = i;
        }
    }
    if (target == -1) target = best_logit;
    if (target < 0 || target >= N || kind[target] != AG_NODE_LOGIT) {
        st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->target = %lld is not a logit node of the graph", (long long)o.target);
        goto done;
    }
    {
        ag_node_info ni;
        if ((st = node_info(g, target, &ni, fn)) != AG_OK) goto done;
        const agi_logit_target *lt = &g->logits[target - (g->n_units + g->n_errors + g->n_embed)];
        v->target = target;
        v->target_kind = lt->kind;
        v->target_token = lt->token;
        v->target_token_b = lt->token_b;
        v->target_value = ni.value;
        wvec = lt->wvec;
        memcpy(v->target_id, ni.id, sizeof v->target_id);
    }
    /* error vectors: the MLP output of units that are not nodes (neuron basis); transcoder
     * graphs: the graph's own (reconstruction error plus the features that are not nodes) */
    if (tcg) {
        memcpy(err, g->err, sizeof(float) * (size_t)L * T * D);
        memcpy(has_err, g->has_err, (size_t)L * T);
    } else {
        for (int l = 0; l < L; l++) {
            const float *w2 = m->w.layers[l].w2, *nn = AGI_LROW(clean, n, l, U);
            for (int p = 0; p < T; p++) {
                float *e = err + ((size_t)l * T + p) * D;
                for (int i = 0; i < U; i++) {
                    float a = nn[(size_t)p * U + i];
                    if (is_node[((size_t)l * T + p) * U + i] || a == 0.0f) continue;
                    has_err[l * T + p] = 1;
                    for (int j = 0; j < D; j++) e[j] += a * w2[(size_t)j * U + i];
                }
            }
        }
    }
    /* groups: check */
    int64_t n_members_groups = 0;
    for (int32_t k = 0; k < o.n_groups; k++) {
        if (o.group_sizes[k] < 1) {
            st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->group_sizes[%d] = %d must be >= 1", k, o.group_sizes[k]);
            goto done;
        }
        for (int32_t j = 0; j < o.group_sizes[k]; j++) {
            int64_t nd = o.group_nodes[n_members_groups + j];
            if (nd < 0 || nd >= N || kind[nd] == AG_NODE_LOGIT) {
                st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->group_nodes[%lld] = %lld (group %d) is not a source node of the graph (0..%lld, not a logit)",
                               (long long)(n_members_groups + j), (long long)nd, k, (long long)N - 1);
                goto done;
            }
            for (int32_t q = 0; q < j; q++)
                if (o.group_nodes[n_members_groups + q] == nd) {
                    st = agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->group_nodes: node %lld appears twice in group %d", (long long)nd, k);
                    goto done;
                }
        }
        n_members_groups += o.group_sizes[k];
    }
    /* the top-k sources by influence (nodes with nothing to ablate are skipped) */
    int64_t nc = 0;
    for (int64_t i = 0; i < N; i++) {
        int k = kind[i];
        if (k == AG_NODE_LOGIT || (k == AG_NODE_ERROR && (!o.include_errors || !has_err[nl[i] * T + np[i]])) ||
            (k == AG_NODE_EMBEDDING && !o.include_embeddings) || (k == AG_NODE_UNIT && act[i] == 0.0) || !(infl[i] > 0.0))
            continue;
        cand[nc++] = (src_node){i, infl[i]};
    }
    qsort(cand, (size_t)nc, sizeof *cand, cmp_src);
    size_t n_node_rows = (size_t)(nc < o.top_k ? nc : o.top_k);
    size_t n_rows = n_node_rows + (size_t)o.n_groups;
    size_t n_members = n_node_rows + (size_t)n_members_groups;
    v->modes = o.modes;
    v->n_rows = n_rows;
    v->n_node_rows = n_node_rows;
    v->rows = agi_calloc(n_rows ? n_rows : 1, sizeof *v->rows, fn);
    v->members = agi_calloc(n_members ? n_members : 1, sizeof *v->members, fn);
    v->member_ids = agi_calloc(n_members ? n_members : 1, sizeof *v->member_ids, fn);
    v->member_kind = agi_calloc(n_members ? n_members : 1, sizeof(int32_t), fn);
    v->member_layer = agi_calloc(n_members ? n_members : 1, sizeof(int32_t), fn);
    v->member_pos = agi_calloc(n_members ? n_members : 1, sizeof(int32_t), fn);
    v->member_index = agi_calloc(n_members ? n_members : 1, sizeof(int32_t), fn);
    if (!v->rows || !v->members || !v->member_ids || !v->member_kind || !v->member_layer || !v->member_pos || !v->member_index) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    {
        size_t mi = 0;
        for (size_t r = 0; r < n_node_rows; r++) {
            vrow *row = &v->rows[r];
            row->node = cand[r].node;
            row->group = -1;
            row->activation = kind[row->node] == AG_NODE_UNIT ? act[row->node] : NAN;
            row->influence = infl[row->node];
            row->first = (int64_t)mi;
            row->count = 1;
            v->members[mi++] = row->node;
        }
        int64_t off = 0;
        for (int32_t k = 0; k < o.n_groups; k++) {
            vrow *row = &v->rows[n_node_rows + (size_t)k];
            row->node = -1;
            row->group = k;
            row->activation = row->influence = NAN;
            row->first = (int64_t)mi;
            row->count = o.group_sizes[k];
            for (int32_t j = 0; j < o.group_sizes[k]; j++) v->members[mi++] = o.group_nodes[off + j];
            off += o.group_sizes[k];
        }
        for (size_t j = 0; j < n_members; j++) {
            ag_node_info ni;
            if ((st = node_info(g, v->members[j], &ni, fn)) != AG_OK) goto done;
            memcpy(v->member_ids[j], ni.id, sizeof v->member_ids[j]);
            v->member_kind[j] = ni.kind;
            v->member_layer[j] = ni.layer;
            v->member_pos[j] = ni.position;
            v->member_index[j] = ni.index;
        }
    }

    /* predictions: one forward sweep over the rows, every ablation at once */
    if (n_rows) {
        rel = agi_calloc((size_t)N * n_rows, sizeof *rel, fn); /* [node][row] relative change */
        chg = agi_calloc(n_rows, sizeof *chg, fn);
        uint8_t *abl = agi_calloc((size_t)N * n_rows, 1, fn);
        if (!rel || !chg || !abl) {
            free(abl);
            st = AG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (size_t r = 0; r < n_rows; r++)
            for (int64_t j = 0; j < v->rows[r].count; j++) {
                int64_t nd = v->members[v->rows[r].first + j];
                abl[(size_t)nd * n_rows + r] = 1;
                rel[(size_t)nd * n_rows + r] = -1.0;
            }
        /* units in node order (sorted by layer: sources come before their targets), then the target */
        for (int64_t t = 0; t <= N && st == AG_OK; t++) {
            int64_t tt = t < N ? t : target;
            if (t < N && kind[t] != AG_NODE_UNIT) continue;
            size_t ne = 0;
            if ((st = row_of(g, tt, &ebuf, &ecap, &ne, fn)) != AG_OK) break;
            memset(chg, 0, n_rows * sizeof *chg);
            for (size_t e = 0; e < ne; e++) {
                const double *rs = rel + (size_t)ebuf[e].source * n_rows;
                double w = ebuf[e].weight;
                for (size_t r = 0; r < n_rows; r++) chg[r] += w * rs[r];
                if (t == N)
                    for (size_t r = 0; r < n_rows; r++)
                        if (abl[(size_t)ebuf[e].source * n_rows + r]) v->rows[r].pred_direct -= w;
            }
            if (t == N) {
                for (size_t r = 0; r < n_rows; r++) v->rows[r].pred_total = chg[r];
            } else {
                double a = act[t];
                for (size_t r = 0; r < n_rows; r++)
                    if (!abl[(size_t)t * n_rows + r]) rel[(size_t)t * n_rows + r] = a != 0.0 ? chg[r] / a : 0.0;
            }
        }
        free(abl);
        if (st != AG_OK) goto done;
    }

    /* measurements */
    for (size_t r = 0; r < n_rows; r++)
        for (int k = 0; k < N_MODES; k++) v->rows[r].measured[k] = NAN;
    if (n_rows) {
        if ((st = agi_acts_alloc(&work, c, 1, T, T, 1, fn)) != AG_OK) goto done;
        /* edits: the ablations, then (linear mode, neurons) every unit that is not a node held at
         * its trace value; transcoder graphs hold features through the multipliers instead */
        size_t n_hold = 0;
        if (!tcg)
            for (size_t u = 0; u < (size_t)L * T * U; u++) n_hold += !is_node[u];
        int64_t max_count = 0;
        for (size_t r = 0; r < n_rows; r++) max_count = v->rows[r].count > max_count ? v->rows[r].count : max_count;
        edits = agi_calloc((size_t)max_count + n_hold, sizeof *edits, fn);
        if (!edits) {
            st = AG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        if (tcg) {
            size_t LTF = (size_t)L * T * U;
            hold_mult = agi_malloc(sizeof(float) * LTF, fn);
            if (!hold_mult) {
                st = AG_ERR_OUT_OF_MEMORY;
                goto done;
            }
            for (size_t q = 0; q < LTF; q++) hold_mult[q] = is_node[q] ? fc.mult[q] : 0.0f;
            static const int kinds[3] = {AGI_TC_DIRECT, AGI_TC_LINEAR, AGI_TC_REAL};
            for (int q = 0; q < 3 && st == AG_OK; q++)
                st = agi_tc_run_init(&trun[q], tc, &fc, kinds[q], 0, T, bos0, (int)max_count, fn);
            if (st != AG_OK) goto done;
            trun[1].mult = hold_mult;
        }
        const float *emb = AGI_LROW(clean, x, 0, D); /* x_0 = the embeddings */
        for (size_t r = 0; r < n_rows; r++) {
            int ne = 0;
            for (int64_t j = 0; j < v->rows[r].count; j++) {
                size_t mi = (size_t)(v->rows[r].first + j);
                int l = v->member_layer[mi], p = v->member_pos[mi];
                agi_edit e;
                memset(&e, 0, sizeof e);
                e.pos_begin = p;
                e.pos_end = p + 1;
                if (v->member_kind[mi] == AG_NODE_UNIT) { /* set to 0 */
                    e.kind = tcg ? AGI_EDIT_CLAMP_FEATURE : AGI_EDIT_CLAMP;
                    e.layer = l;
                    e.index = v->member_index[mi];
                } else if (v->member_kind[mi] == AG_NODE_EMBEDDING) {
                    e.kind = AGI_EDIT_ADD_RESID;
                    e.layer = 0;
                    e.coef = -1.0f;
                    e.vec = emb + (size_t)p * D;
                } else { /* error node: its vector leaves the residual after block l */
                    e.kind = AGI_EDIT_ADD_RESID;
                    e.layer = l + 1;
                    e.coef = -1.0f;
                    e.vec = err + ((size_t)l * T + p) * D;
                }
                edits[ne++] = e;
            }
            for (int k = 0; k < N_MODES; k++) {
                if (!(o.modes & MODE_BITS[k])) continue;
                int n_ed = ne;
                if (MODE_BITS[k] == AG_VALIDATE_LINEAR && !tcg)
                    for (int l = 0; l < L; l++)
                        for (int p = 0; p < T; p++)
                            for (int i = 0; i < U; i++) {
                                if (is_node[((size_t)l * T + p) * U + i]) continue;
                                agi_edit h;
                                memset(&h, 0, sizeof h);
                                h.kind = AGI_EDIT_CLAMP;
                                h.layer = l;
                                h.pos_begin = p;
                                h.pos_end = p + 1;
                                h.index = i;
                                h.add = AGI_LROW(clean, n, l, U)[(size_t)p * U + i];
                                edits[n_ed++] = h;
                            }
                unsigned freeze = MODE_BITS[k] == AG_VALIDATE_DIRECT   ? AGI_FREEZE_DIRECT
                                  : MODE_BITS[k] == AG_VALIDATE_LINEAR ? AGI_FREEZE_LINEAR
                                  : MODE_BITS[k] == AG_VALIDATE_FREE   ? 0u
                                                                       : AGI_FREEZE_ATTN;
                int delta = MODE_BITS[k] == AG_VALIDATE_DIRECT || MODE_BITS[k] == AG_VALIDATE_LINEAR;
                agi_tc_run *tr = !tcg ? NULL
                                 : MODE_BITS[k] == AG_VALIDATE_DIRECT ? &trun[0]
                                 : MODE_BITS[k] == AG_VALIDATE_LINEAR ? &trun[1]
                                                                      : &trun[2];
                if (tr) agi_tc_run_reset(tr, delta);
                agi_intervene_run(m, clean, edits, n_ed, freeze, delta, tr ? &tr->ext : NULL, &work);
                /* the target's change: w . (change of the final norm's output at the last position) */
                const float *xf = work.xfin + (size_t)(T - 1) * D, *xc = clean->xfin + (size_t)(T - 1) * D;
                double ch = 0.0;
                for (int d = 0; d < D; d++) ch += (double)wvec[d] * (delta ? (double)xf[d] : (double)xf[d] - (double)xc[d]);
                v->rows[r].measured[k] = ch;
            }
        }
    }

    /* summary statistics */
    scr = agi_calloc(6 * (n_rows ? n_rows : 1), sizeof *scr, fn);
    vtmp = agi_calloc(n_rows ? n_rows : 1, sizeof *vtmp, fn);
    if (!scr || !vtmp) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int k = 0; k < N_MODES; k++)
        for (int vs = 0; vs < 2; vs++) {
            ag_validation_stats *s = &v->stats[k][vs];
            s->struct_size = sizeof *s;
            s->mode = MODE_BITS[k];
            s->versus_total = vs;
            if (!(o.modes & MODE_BITS[k])) continue;
            double *mm = scr + 4 * n_rows, *pp = scr + 5 * n_rows;
            for (size_t r = 0; r < n_rows; r++) {
                mm[r] = v->rows[r].measured[k];
                pp[r] = vs ? v->rows[r].pred_total : v->rows[r].pred_direct;
            }
            compute_stats(mm, pp, n_rows, s, scr, vtmp);
        }

done:
    free(kind);
    free(nl);
    free(np);
    free(ni_);
    free(act);
    free(infl);
    free(is_node);
    free(cand);
    free(err);
    free(has_err);
    free(rel);
    free(chg);
    free(ebuf);
    free(edits);
    free(scr);
    free(vtmp);
    free(hold_mult);
    for (int q = 0; q < 3; q++) agi_tc_run_free(&trun[q]);
    agi_tc_clean_free(&fc);
    agi_acts_free(&work);
    if (st != AG_OK) {
        ag_validation_free(v);
        return st;
    }
    agi_clear_error();
    *out = v;
    return AG_OK;
}

/* ---- getters ------------------------------------------------------------------------------ */

size_t ag_validation_n_rows(const ag_validation *v) { return v ? v->n_rows : 0; }

ag_status ag_validation_get_row(const ag_validation *v, size_t i, ag_validation_row *out) {
    static const char *const fn = "ag_validation_get_row";
    if (!v || !out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !v ? "validation" : "out");
    ag_status st = agi_check_struct_size(out->struct_size, sizeof *out, fn, "out");
    if (st != AG_OK) return st;
    if (i >= v->n_rows) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "i = %zu is outside [0, %zu)", i, v->n_rows);
    const vrow *r = &v->rows[i];
    size_t ss = out->struct_size;
    memset(out, 0, sizeof *out);
    out->struct_size = ss;
    out->node = r->node;
    out->group = r->group;
    out->activation = r->activation;
    out->influence = r->influence;
    out->predicted_direct = r->pred_direct;
    out->predicted_total = r->pred_total;
    out->measured_direct = r->measured[0];
    out->measured_linear = r->measured[1];
    out->measured_free = r->measured[2];
    out->measured_free_frozen_attention = r->measured[3];
    return AG_OK;
}

ag_status ag_validation_get_stats(const ag_validation *v, int32_t mode, int32_t versus_total, ag_validation_stats *out) {
    static const char *const fn = "ag_validation_get_stats";
    if (!v || !out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !v ? "validation" : "out");
    ag_status st = agi_check_struct_size(out->struct_size, sizeof *out, fn, "out");
    if (st != AG_OK) return st;
    int k = -1;
    for (int i = 0; i < N_MODES; i++)
        if (MODE_BITS[i] == mode) k = i;
    if (k < 0 || !(v->modes & mode))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "mode = %d is not one AG_VALIDATE_* bit that was measured (measured: %d)", mode,
                         v->modes);
    size_t ss = out->struct_size;
    *out = v->stats[k][versus_total ? 1 : 0];
    out->struct_size = ss;
    return AG_OK;
}

static const char *kind_name(int32_t k) {
    return k == AG_NODE_UNIT ? "unit" : k == AG_NODE_ERROR ? "error" : k == AG_NODE_EMBEDDING ? "embedding" : "logit";
}

static void json_measured(agi_strbuf *b, const ag_validation *v, const vrow *r) {
    agi_sb_puts(b, "\"measured\":{");
    int first = 1;
    for (int k = 0; k < N_MODES; k++) {
        if (!(v->modes & MODE_BITS[k])) continue;
        agi_sb_printf(b, "%s\"%s\":", first ? "" : ",", MODE_NAMES[k]);
        agi_sb_json_num17(b, r->measured[k]);
        first = 0;
    }
    agi_sb_putc(b, '}');
}

static void json_stats(agi_strbuf *b, const ag_validation_stats *s) {
    agi_sb_printf(b, "{\"n\":%lld,\"pearson\":", (long long)s->n);
    agi_sb_json_num17(b, s->pearson);
    agi_sb_puts(b, ",\"spearman\":");
    agi_sb_json_num17(b, s->spearman);
    agi_sb_puts(b, ",\"sign_agreement\":");
    agi_sb_json_num17(b, s->sign_agreement);
    agi_sb_puts(b, ",\"rel_error\":");
    agi_sb_json_num17(b, s->rel_error);
    agi_sb_puts(b, ",\"median_rel_error\":");
    agi_sb_json_num17(b, s->median_rel_error);
    agi_sb_putc(b, '}');
}

ag_status ag_validation_json(const ag_validation *v, char **out, size_t *len) {
    static const char *const fn = "ag_validation_json";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!v) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "validation is NULL");
    agi_strbuf b;
    memset(&b, 0, sizeof b);
    agi_sb_printf(&b, "{\"target\":{\"node\":%lld,\"id\":", (long long)v->target);
    agi_sb_json_str(&b, v->target_id);
    agi_sb_printf(&b, ",\"kind\":\"%s\",\"token\":%d,\"token_b\":%d,\"value\":",
                  v->target_kind == AG_GRAPH_TARGET_LOGIT_DIFF  ? "logit_diff"
                  : v->target_kind == AG_GRAPH_TARGET_DIRECTION ? "direction"
                                                                : "token",
                  (int)v->target_token, (int)v->target_token_b);
    agi_sb_json_num17(&b, v->target_value);
    agi_sb_puts(&b, "},\"modes\":[");
    int first = 1;
    for (int k = 0; k < N_MODES; k++)
        if (v->modes & MODE_BITS[k]) {
            agi_sb_printf(&b, "%s\"%s\"", first ? "" : ",", MODE_NAMES[k]);
            first = 0;
        }
    agi_sb_puts(&b, "],\"nodes\":[");
    for (size_t i = 0; i < v->n_node_rows; i++) {
        const vrow *r = &v->rows[i];
        size_t mi = (size_t)r->first;
        agi_sb_printf(&b, "%s{\"node\":%lld,\"id\":", i ? "," : "", (long long)r->node);
        agi_sb_json_str(&b, v->member_ids[mi]);
        agi_sb_printf(&b, ",\"kind\":\"%s\",\"layer\":%d,\"position\":%d,\"index\":%d,\"activation\":", kind_name(v->member_kind[mi]),
                      (int)v->member_layer[mi], (int)v->member_pos[mi], (int)v->member_index[mi]);
        agi_sb_json_num17(&b, r->activation);
        agi_sb_puts(&b, ",\"influence\":");
        agi_sb_json_num17(&b, r->influence);
        agi_sb_puts(&b, ",\"predicted_direct\":");
        agi_sb_json_num17(&b, r->pred_direct);
        agi_sb_puts(&b, ",\"predicted_total\":");
        agi_sb_json_num17(&b, r->pred_total);
        agi_sb_putc(&b, ',');
        json_measured(&b, v, r);
        agi_sb_putc(&b, '}');
    }
    agi_sb_puts(&b, "],\"groups\":[");
    for (size_t i = v->n_node_rows; i < v->n_rows; i++) {
        const vrow *r = &v->rows[i];
        agi_sb_puts(&b, i > v->n_node_rows ? ",{\"nodes\":[" : "{\"nodes\":[");
        for (int64_t j = 0; j < r->count; j++) {
            if (j) agi_sb_putc(&b, ',');
            agi_sb_json_str(&b, v->member_ids[r->first + j]);
        }
        agi_sb_puts(&b, "],\"predicted_direct\":");
        agi_sb_json_num17(&b, r->pred_direct);
        agi_sb_puts(&b, ",\"predicted_total\":");
        agi_sb_json_num17(&b, r->pred_total);
        agi_sb_putc(&b, ',');
        json_measured(&b, v, r);
        agi_sb_putc(&b, '}');
    }
    agi_sb_puts(&b, "],\"summary\":{");
    first = 1;
    for (int k = 0; k < N_MODES; k++) {
        if (!(v->modes & MODE_BITS[k])) continue;
        agi_sb_printf(&b, "%s\"%s\":{\"vs_direct\":", first ? "" : ",", MODE_NAMES[k]);
        json_stats(&b, &v->stats[k][0]);
        agi_sb_puts(&b, ",\"vs_total\":");
        json_stats(&b, &v->stats[k][1]);
        agi_sb_putc(&b, '}');
        first = 0;
    }
    agi_sb_puts(&b, "}}");
    if (b.failed || !b.s) {
        free(b.s);
        return agi_error(AG_ERR_OUT_OF_MEMORY, fn, "out of memory writing the report");
    }
    *out = b.s;
    if (len) *len = b.n;
    return AG_OK;
}
