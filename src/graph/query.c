/* The public graph API: options, build (validation and assembly), free, and the read-only
 * queries (info, node info, lookup by id, edges sorted by |weight|, lazy expansion). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "graph/graph.h"

ag_status ag_graph_options_init(ag_graph_options *opts, size_t struct_size) {
    static const char *const fn = "ag_graph_options_init";
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t)) return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    ag_graph_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.method = AG_METHOD_DECOMPOSITION;
    d.basis = AG_BASIS_NEURONS;
    d.max_feature_nodes = 7500;
    d.max_logits = 10;
    d.logit_prob = 0.95;
    d.node_threshold = 0.8;
    d.edge_threshold = 0.98;
    d.batch_size = 256;
    d.update_interval = 4;
    d.ig_steps = 16;
    size_t n = struct_size < sizeof d ? struct_size : sizeof d;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, n);
    opts->struct_size = struct_size;
    return AG_OK;
}

int agi_g_kind(const ag_graph *g, int64_t i) {
    if (i < g->n_units) return AG_NODE_UNIT;
    if (i < g->n_units + g->n_errors) return AG_NODE_ERROR;
    if (i < g->n_units + g->n_errors + g->n_embed) return AG_NODE_EMBEDDING;
    return AG_NODE_LOGIT;
}

int64_t agi_g_find_unit(const ag_graph *g, int l, int p, int idx) {
    if (l < 0 || l >= g->L || p < 0 || p >= g->T) return -1;
    int64_t lo = g->lp_start[(size_t)l * g->T + p], hi = g->lp_start[(size_t)l * g->T + p + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (g->unit_i[mid] < idx) lo = mid + 1;
        else hi = mid;
    }
    return lo < g->lp_start[(size_t)l * g->T + p + 1] && g->unit_i[lo] == idx ? lo : -1;
}

void ag_graph_free(ag_graph *g) {
    if (!g) return;
    if (g->basis && g->basis->release) g->basis->release((agi_basis *)g->basis);
    free(g->constant);
    free(g->model_name);
    free(g->tokens);
    if (g->pieces)
        for (int p = 0; p < g->T; p++) free(g->pieces[p]);
    free(g->pieces);
    free(g->unit_l);
    free(g->unit_p);
    free(g->unit_i);
    free(g->unit_act);
    agi_targets_free(g->logits, (int)g->n_logits);
    free(g->lp_start);
    free(g->vs);
    free(g->err);
    free(g->has_err);
    free(g->row_ptr);
    free(g->col);
    free(g->w);
    free(g->col_ptr);
    free(g->col_edge);
    free(g->col_row);
    free(g->value);
    free(g->infl);
    free(g->cum);
    free(g->node_kept);
    free(g->edge_kept);
    free(g);
}

static ag_status build_csc(ag_graph *g, const char *func) {
    int64_t n = g->n_nodes;
    g->col_ptr = agi_calloc((size_t)n + 1, sizeof(int64_t), func);
    g->col_edge = agi_malloc(sizeof(int64_t) * (size_t)(g->nnz ? g->nnz : 1), func);
    g->col_row = agi_malloc(sizeof(int32_t) * (size_t)(g->nnz ? g->nnz : 1), func);
    if (!g->col_ptr || !g->col_edge || !g->col_row) return AG_ERR_OUT_OF_MEMORY;
    for (int64_t e = 0; e < g->nnz; e++) g->col_ptr[g->col[e] + 1]++;
    for (int64_t i = 0; i < n; i++) g->col_ptr[i + 1] += g->col_ptr[i];
    int64_t *fill = agi_malloc(sizeof(int64_t) * (size_t)(n ? n : 1), func);
    if (!fill) return AG_ERR_OUT_OF_MEMORY;
    memcpy(fill, g->col_ptr, sizeof(int64_t) * (size_t)n);
    for (int64_t t = 0; t < n; t++) /* rows in order: each column's targets ascending */
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++) {
            int64_t k = fill[g->col[e]]++;
            g->col_edge[k] = e;
            g->col_row[k] = (int32_t)t;
        }
    free(fill);
    return AG_OK;
}

ag_status ag_graph_build(ag_graph **out, const ag_trace *tr, const ag_graph_options *opts) {
    static const char *const fn = "ag_graph_build";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!tr) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "trace is NULL");
    ag_graph_options o;
    ag_graph_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    if (o.method != AG_METHOD_DECOMPOSITION && o.method != AG_METHOD_GRADIENT && o.method != AG_METHOD_IG)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->method = %d is not a graph edge method (AG_METHOD_DECOMPOSITION, AG_METHOD_GRADIENT, AG_METHOD_IG)", (int)o.method);
    if (o.method != AG_METHOD_DECOMPOSITION && o.basis != AG_BASIS_NEURONS)
        return agi_error(AG_ERR_UNSUPPORTED, fn, "opts->method = %s needs opts->basis = AG_BASIS_NEURONS", o.method == AG_METHOD_IG ? "AG_METHOD_IG" : "AG_METHOD_GRADIENT");
    if (o.method == AG_METHOD_IG && o.ig_steps < 1)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->ig_steps = %d must be >= 1", (int)o.ig_steps);
    const agi_basis *basis = NULL;
    if (o.basis == AG_BASIS_TRANSCODERS) { /* a per-graph instance, made below (issue #6) */
        if (!o.transcoders)
            return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->transcoders is NULL (AG_BASIS_TRANSCODERS needs a transcoder set)");
    } else {
        basis = agi_basis_get(o.basis);
        if (!basis) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->basis = %d is not an AG_BASIS_* value", (int)o.basis);
    }
    if (!(o.node_threshold >= 0.0 && o.node_threshold <= 1.0))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->node_threshold = %g must be in [0, 1]", o.node_threshold);
    if (!(o.edge_threshold >= 0.0 && o.edge_threshold <= 1.0))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->edge_threshold = %g must be in [0, 1]", o.edge_threshold);
    if (!(o.logit_prob > 0.0 && o.logit_prob <= 1.0))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->logit_prob = %g must be in (0, 1]", o.logit_prob);
    if (o.max_logits < 1) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->max_logits = %d must be >= 1", (int)o.max_logits);
    if (o.max_feature_nodes < 0)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->max_feature_nodes = %d must be >= 0 (0 = every unit)", (int)o.max_feature_nodes);
    if (o.batch_size < 1) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->batch_size = %d must be >= 1", (int)o.batch_size);
    if (o.update_interval < 1)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->update_interval = %d must be >= 1", (int)o.update_interval);
    if (o.n_targets < 0 || (o.n_targets > 0 && !o.targets))
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->n_targets = %d with targets %s", (int)o.n_targets, o.targets ? "set" : "NULL");
    const ag_model *m = tr->model;
    const agi_config *c = &m->cfg;
    int T = tr->acts.T;
    if (T > c->seq_len)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "the trace's %d tokens exceed the model's context of %d", T, c->seq_len);
    double t0 = agi_now_seconds();

    agi_basis *own = NULL;
    if (!basis) {
        st = agi_basis_transcoder_create(&own, o.transcoders, tr, fn);
        if (st != AG_OK) return st;
        basis = own;
    }
    ag_graph *g = agi_calloc(1, sizeof *g, fn);
    if (!g) {
        if (own) own->release(own);
        return AG_ERR_OUT_OF_MEMORY;
    }
    g->trace = tr;
    g->basis = basis;
    g->method = o.method;
    g->ig_steps = o.ig_steps;
    g->L = c->n_layers;
    g->T = T;
    g->D = c->dim;
    g->V = c->vocab_size;
    g->n_per_pos = basis->n_units ? basis->n_units : c->hidden_dim;
    g->n_candidates = (int64_t)g->L * T * g->n_per_pos;
    g->node_threshold = o.node_threshold;
    g->edge_threshold = o.edge_threshold;
    g->logit_prob = o.logit_prob;
    g->max_logits = o.max_logits;
    g->max_feature_nodes = o.max_feature_nodes;
    g->batch_size = o.batch_size;
    const char *name = m->name ? m->name : "model";
    g->model_name = agi_malloc(strlen(name) + 1, fn);
    g->tokens = agi_malloc(sizeof(int32_t) * (size_t)T, fn);
    g->pieces = agi_calloc((size_t)T, sizeof(char *), fn);
    if (!g->model_name || !g->tokens || !g->pieces) {
        ag_graph_free(g);
        return AG_ERR_OUT_OF_MEMORY;
    }
    strcpy(g->model_name, name);
    memcpy(g->tokens, tr->acts.tokens, sizeof(int32_t) * (size_t)T);
    for (int p = 0; p < T; p++) {
        char buf[256];
        size_t len = 0;
        if (!m->tok || ag_token_decode(m, p > 0 ? g->tokens[p - 1] : -1, g->tokens[p], buf, sizeof buf, &len) != AG_OK)
            snprintf(buf, sizeof buf, "<%d>", (int)g->tokens[p]);
        g->pieces[p] = agi_malloc(strlen(buf) + 1, fn);
        if (!g->pieces[p]) {
            ag_graph_free(g);
            return AG_ERR_OUT_OF_MEMORY;
        }
        strcpy(g->pieces[p], buf);
    }
    int nl = 0;
    st = agi_targets_resolve(tr, &o, &g->logits, &nl, fn);
    g->n_logits = nl;
    if (st == AG_OK) st = agi_graph_build(g, tr, &o, fn);
    if (st == AG_OK) st = build_csc(g, fn);
    if (st == AG_OK && o.progress && o.progress("prune", 0.0, o.user_data))
        st = agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    double t1 = agi_now_seconds();
    if (st == AG_OK) st = agi_graph_prune(g, fn);
    if (st == AG_OK && o.progress && o.progress("prune", 1.0, o.user_data))
        st = agi_error(AG_ERR_CANCELLED, fn, "cancelled by the progress callback");
    if (st != AG_OK) {
        ag_graph_free(g);
        return st;
    }
    g->t_prune = agi_now_seconds() - t1;
    g->t_total = agi_now_seconds() - t0;
    agi_clear_error();
    *out = g;
    return AG_OK;
}

ag_status ag_graph_get_info(const ag_graph *g, ag_graph_info *info) {
    static const char *const fn = "ag_graph_get_info";
    if (!g || !info) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !g ? "graph" : "info");
    size_t given = info->struct_size;
    ag_status st = agi_check_struct_size(given, sizeof(size_t) + 2 * sizeof(int32_t), fn, "info");
    if (st != AG_OK) return st;
    ag_graph_info d;
    memset(&d, 0, sizeof d);
    d.struct_size = given;
    d.method = g->method;
    d.basis = g->basis->id;
    d.n_layers = g->L;
    d.n_positions = g->T;
    d.n_nodes = g->n_nodes;
    d.n_units = g->n_units;
    d.n_unit_candidates = g->n_candidates;
    d.n_errors = g->n_errors;
    d.n_embeddings = g->n_embed;
    d.n_logits = g->n_logits;
    d.n_edges = g->nnz;
    d.n_kept_nodes = g->n_kept_nodes;
    d.n_kept_edges = g->n_kept_edges;
    d.node_threshold = g->node_threshold;
    d.edge_threshold = g->edge_threshold;
    d.replacement_score = g->replacement;
    d.completeness_score = g->completeness;
    d.completeness_score_units_only = g->completeness_units;
    d.seconds_rank = g->t_rank;
    d.seconds_rows = g->t_rows;
    d.seconds_prune = g->t_prune;
    d.seconds_total = g->t_total;
    d.flops = g->flops;
    d.rows_computed = g->rows_computed;
    memcpy(info, &d, given < sizeof d ? given : sizeof d);
    if (given > sizeof d) memset((char *)info + sizeof d, 0, given - sizeof d);
    return AG_OK;
}

size_t ag_graph_n_nodes(const ag_graph *g) { return g ? (size_t)g->n_nodes : 0; }

/* Node id text (see attrgraph.h) into buf. */
static void node_id(const ag_graph *g, int64_t i, char *buf, size_t cap) {
    switch (agi_g_kind(g, i)) {
    case AG_NODE_UNIT: snprintf(buf, cap, "%d_%d_%d", (int)g->unit_l[i], (int)g->unit_i[i], (int)g->unit_p[i]); break;
    case AG_NODE_ERROR: {
        int64_t q = i - g->n_units;
        snprintf(buf, cap, "%d_-1_%d", (int)(q / g->T), (int)(q % g->T));
        break;
    }
    case AG_NODE_EMBEDDING: {
        int p = (int)(i - g->n_units - g->n_errors);
        snprintf(buf, cap, "E_%d_%d", (int)g->tokens[p], p);
        break;
    }
    default: {
        int k = (int)(i - g->n_units - g->n_errors - g->n_embed);
        snprintf(buf, cap, "%d_%d_%d", g->L + 1, (int)g->logits[k].vid, g->T - 1);
    }
    }
}

/* Internal: for the writers. */
void agi_graph_node_id(const ag_graph *g, int64_t i, char *buf, size_t cap);
void agi_graph_node_id(const ag_graph *g, int64_t i, char *buf, size_t cap) { node_id(g, i, buf, cap); }

ag_status ag_graph_node_info(const ag_graph *g, size_t index, ag_node_info *out) {
    static const char *const fn = "ag_graph_node_info";
    if (!g || !out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !g ? "graph" : "out");
    size_t given = out->struct_size;
    /* version 1 of the struct ends with `label`; later versions only append */
    ag_status st = agi_check_struct_size(given, offsetof(ag_node_info, label) + sizeof(const char *), fn, "out");
    if (st != AG_OK) return st;
    if (index >= (size_t)g->n_nodes)
        return agi_error(AG_ERR_NOT_FOUND, fn, "node index %zu is outside [0, %lld)", index, (long long)g->n_nodes);
    int64_t i = (int64_t)index;
    ag_node_info d;
    memset(&d, 0, sizeof d);
    d.struct_size = given;
    d.kind = agi_g_kind(g, i);
    d.token = -1;
    d.activation = NAN;
    d.value = g->value[i];
    d.influence = g->cum[i];
    d.influence_raw = g->infl[i];
    d.kept = g->node_kept[i];
    d.label = "";
    switch (d.kind) {
    case AG_NODE_UNIT:
        d.layer = g->unit_l[i];
        d.position = g->unit_p[i];
        d.index = g->unit_i[i];
        d.activation = g->unit_act[i];
        if (g->basis->label) d.label = g->basis->label(g->basis, d.layer, d.index);
        break;
    case AG_NODE_ERROR:
        d.layer = (int32_t)((i - g->n_units) / g->T);
        d.position = (int32_t)((i - g->n_units) % g->T);
        d.index = -1;
        break;
    case AG_NODE_EMBEDDING:
        d.layer = -1;
        d.position = (int32_t)(i - g->n_units - g->n_errors);
        d.index = d.position;
        d.token = g->tokens[d.position];
        d.label = g->pieces[d.position];
        break;
    default: {
        int k = (int)(i - g->n_units - g->n_errors - g->n_embed);
        d.layer = g->L + 1;
        d.position = g->T - 1;
        d.index = g->logits[k].vid;
        d.token = g->logits[k].kind == AG_GRAPH_TARGET_TOKEN ? g->logits[k].token : -1;
        d.activation = g->logits[k].value;
        d.weight = g->logits[k].weight;
        d.label = g->logits[k].label;
    }
    }
    node_id(g, i, d.id, sizeof d.id);
    memcpy(out, &d, given < sizeof d ? given : sizeof d);
    if (given > sizeof d) memset((char *)out + sizeof d, 0, given - sizeof d);
    return AG_OK;
}

ag_status ag_graph_find_node(const ag_graph *g, const char *id, size_t *index) {
    static const char *const fn = "ag_graph_find_node";
    if (!g || !id || !index) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !g ? "graph" : !id ? "id" : "index");
    long a, b, p;
    char tail;
    if (id[0] == 'E') {
        if (sscanf(id, "E_%ld_%ld%c", &a, &p, &tail) != 2) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "malformed node id '%s'", id);
        if (p < 0 || p >= g->T || a != g->tokens[p]) return agi_error(AG_ERR_NOT_FOUND, fn, "no node '%s'", id);
        *index = (size_t)agi_g_embed_node(g, (int)p);
        return AG_OK;
    }
    if (sscanf(id, "%ld_%ld_%ld%c", &a, &b, &p, &tail) != 3) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "malformed node id '%s'", id);
    if (a == g->L + 1) {
        for (int k = 0; k < g->n_logits; k++)
            if (g->logits[k].vid == b && p == g->T - 1) {
                *index = (size_t)agi_g_logit_node(g, k);
                return AG_OK;
            }
        return agi_error(AG_ERR_NOT_FOUND, fn, "no logit node '%s'", id);
    }
    if (a < 0 || a >= g->L || p < 0 || p >= g->T) return agi_error(AG_ERR_NOT_FOUND, fn, "no node '%s'", id);
    if (b == -1) {
        *index = (size_t)agi_g_error_node(g, (int)a, (int)p);
        return AG_OK;
    }
    int64_t u = b >= 0 && b < g->n_per_pos ? agi_g_find_unit(g, (int)a, (int)p, (int)b) : -1;
    if (u < 0) return agi_error(AG_ERR_NOT_FOUND, fn, "no unit node '%s' (not expanded: folded into error node %ld_-1_%ld)", id, a, p);
    *index = (size_t)u;
    return AG_OK;
}

static int cmp_edge_abs(const void *x, const void *y) {
    const ag_edge *a = x, *b = y;
    double u = fabs(a->weight), v = fabs(b->weight);
    if (u != v) return u > v ? -1 : 1;
    if (a->source != b->source) return (a->source > b->source) - (a->source < b->source);
    return (a->target > b->target) - (a->target < b->target);
}

/* Sort edges by |weight| and deliver the top k into buf. Takes ownership of `all`. */
static ag_status deliver(ag_edge *all, size_t n, size_t top_k, ag_edge *buf, size_t cap, size_t *n_out, const char *fn) {
    qsort(all, n, sizeof *all, cmp_edge_abs);
    size_t k = top_k && top_k < n ? top_k : n;
    if (n_out) *n_out = k;
    if (cap < k) {
        free(all);
        return agi_error(AG_ERR_BUFFER_TOO_SMALL, fn, "%zu edges need a buffer of %zu, have %zu", k, k, cap);
    }
    if (k) memcpy(buf, all, k * sizeof *all);
    free(all);
    return AG_OK;
}

ag_status ag_graph_node_edges(const ag_graph *g, size_t index, int32_t flags, size_t top_k, ag_edge *buf, size_t cap,
                              size_t *n_out) {
    static const char *const fn = "ag_graph_node_edges";
    if (!g || !n_out || (!buf && cap)) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !g ? "graph" : !n_out ? "n_out" : "buf");
    *n_out = 0;
    if (flags & ~(int32_t)(AG_EDGES_OUT | AG_EDGES_KEPT_ONLY)) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "flags = %d has unknown bits", (int)flags);
    if (index >= (size_t)g->n_nodes) return agi_error(AG_ERR_NOT_FOUND, fn, "node index %zu is outside [0, %lld)", index, (long long)g->n_nodes);
    int out_dir = (flags & AG_EDGES_OUT) != 0, kept_only = (flags & AG_EDGES_KEPT_ONLY) != 0;
    int64_t i = (int64_t)index;
    int64_t a = out_dir ? g->col_ptr[i] : g->row_ptr[i], b = out_dir ? g->col_ptr[i + 1] : g->row_ptr[i + 1];
    ag_edge *all = agi_malloc(sizeof(ag_edge) * (size_t)(b > a ? b - a : 1), fn);
    if (!all) return AG_ERR_OUT_OF_MEMORY;
    size_t n = 0;
    for (int64_t k = a; k < b; k++) {
        int64_t e = out_dir ? g->col_edge[k] : k;
        if (kept_only && !g->edge_kept[e]) continue;
        ag_edge x;
        x.source = out_dir ? i : g->col[e];
        x.target = out_dir ? g->col_row[k] : i;
        x.weight = g->w[e];
        x.kept = g->edge_kept[e];
        x.reserved = 0;
        all[n++] = x;
    }
    return deliver(all, n, top_k, buf, cap, n_out, fn);
}

ag_status ag_graph_expand_node(const ag_graph *g, int32_t layer, int32_t position, int32_t index, size_t top_k,
                               ag_edge *buf, size_t cap, size_t *n_out, double *value) {
    static const char *const fn = "ag_graph_expand_node";
    if (!g || !n_out || (!buf && cap)) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !g ? "graph" : !n_out ? "n_out" : "buf");
    *n_out = 0;
    if (layer < 0 || layer >= g->L) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "layer = %d is outside [0, %d)", (int)layer, g->L);
    if (position < 0 || position >= g->T) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "position = %d is outside [0, %d)", (int)position, g->T);
    if (index < 0 || index >= g->n_per_pos) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "index = %d is outside [0, %d)", (int)index, g->n_per_pos);
    int32_t *cols = NULL;
    float *ws = NULL;
    int64_t n = 0;
    ag_status st = agi_graph_expand_row(g, layer, position, index, &cols, &ws, &n, value, fn);
    if (st != AG_OK) return st;
    ag_edge *all = agi_malloc(sizeof(ag_edge) * (size_t)(n ? n : 1), fn);
    if (!all) {
        free(cols);
        free(ws);
        return AG_ERR_OUT_OF_MEMORY;
    }
    int64_t self = agi_g_find_unit(g, layer, position, index);
    for (int64_t k = 0; k < n; k++) {
        all[k].source = cols[k];
        all[k].target = self;
        all[k].weight = ws[k];
        all[k].kept = 0;
        all[k].reserved = 0;
    }
    free(cols);
    free(ws);
    return deliver(all, (size_t)n, top_k, buf, cap, n_out, fn);
}
