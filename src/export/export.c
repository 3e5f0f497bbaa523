/* The graph writers: the attribution-graph viewer JSON (DESIGN §4; circuit-tracer-notes §5)
 * and Graphviz DOT. Both are built in memory first (one allocation failure = a clean error,
 * never half a file) and are deterministic: nodes in node order, links in row order then
 * source order, numbers printed with fixed formats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "core/core.h"
#include "export/strbuf.h"
#include "graph/graph.h"

void agi_graph_node_id(const ag_graph *g, int64_t i, char *buf, size_t cap);

ag_status ag_export_options_init(ag_export_options *opts, size_t struct_size) {
    static const char *const fn = "ag_export_options_init";
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t)) return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    ag_export_options d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.include_timings = 1;
    d.pruned = 1;
    size_t n = struct_size < sizeof d ? struct_size : sizeof d;
    memset(opts, 0, struct_size);
    memcpy(opts, &d, n);
    opts->struct_size = struct_size;
    return AG_OK;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int node_shown(const ag_graph *g, const ag_export_options *o, int64_t i) { return !o->pruned || g->node_kept[i]; }
static int edge_shown(const ag_graph *g, const ag_export_options *o, int64_t t, int64_t e) {
    (void)t;
    return o->pruned ? g->edge_kept[e] : 1;
}

static void json_node(agi_strbuf *b, const ag_graph *g, int64_t i) {
    char id[64];
    agi_graph_node_id(g, i, id, sizeof id);
    int kind = agi_g_kind(g, i);
    long long feature = 0;
    char layer[32], js[96];
    const char *ftype = "";
    const char *clerp = "";
    double token_prob = 0.0, activation = NAN;
    int target_logit = 0;
    int ctx = 0;
    if (kind == AG_NODE_UNIT) {
        long long l = g->unit_l[i], x = g->unit_i[i];
        feature = (l + x) * (l + x + 1) / 2 + x; /* Cantor pairing of (layer, index) */
        snprintf(layer, sizeof layer, "%d", (int)l);
        snprintf(js, sizeof js, "%d_%d-0", (int)l, (int)x);
        ftype = g->basis->id == AG_BASIS_NEURONS ? "mlp neuron" : "cross layer transcoder";
        ctx = g->unit_p[i];
        activation = g->unit_act[i];
        if (g->basis->label) clerp = g->basis->label(g->basis, (int)l, (int)x); /* transcoder feature labels */
    } else if (kind == AG_NODE_ERROR) {
        int l = (int)((i - g->n_units) / g->T);
        ctx = (int)((i - g->n_units) % g->T);
        feature = -1;
        snprintf(layer, sizeof layer, "%d", l);
        snprintf(js, sizeof js, "%d_-1-%d", l, ctx);
        ftype = "mlp reconstruction error";
    } else if (kind == AG_NODE_EMBEDDING) {
        ctx = (int)(i - g->n_units - g->n_errors);
        feature = ctx;
        snprintf(layer, sizeof layer, "E");
        snprintf(js, sizeof js, "E_%d-%d", (int)g->tokens[ctx], ctx);
        ftype = "embedding";
    } else {
        int k = (int)(i - g->n_units - g->n_errors - g->n_embed);
        const agi_logit_target *t = &g->logits[k];
        ctx = g->T - 1;
        feature = t->vid;
        snprintf(layer, sizeof layer, "%d", g->L + 1);
        snprintf(js, sizeof js, "L_%d-%d", (int)t->vid, ctx);
        ftype = "logit";
        clerp = t->label;
        token_prob = t->kind == AG_GRAPH_TARGET_TOKEN ? t->prob : t->weight;
        target_logit = k == 0;
        activation = t->value;
    }
    agi_sb_puts(b, "{\"node_id\":");
    agi_sb_json_str(b, id);
    agi_sb_printf(b, ",\"feature\":%lld,\"layer\":", feature);
    agi_sb_json_str(b, layer);
    agi_sb_printf(b, ",\"ctx_idx\":%d,\"feature_type\":", ctx);
    agi_sb_json_str(b, ftype);
    agi_sb_puts(b, ",\"token_prob\":");
    agi_sb_json_num(b, token_prob);
    agi_sb_printf(b, ",\"is_target_logit\":%s,\"run_idx\":0,\"reverse_ctx_idx\":0,\"jsNodeId\":", target_logit ? "true" : "false");
    agi_sb_json_str(b, js);
    agi_sb_puts(b, ",\"clerp\":");
    agi_sb_json_str(b, clerp);
    agi_sb_puts(b, ",\"influence\":");
    agi_sb_json_num(b, g->cum[i]);
    agi_sb_puts(b, ",\"activation\":");
    agi_sb_json_num(b, activation);
    agi_sb_putc(b, '}');
}

static ag_status make_json(const ag_graph *g, const ag_export_options *o, agi_strbuf *b) {
    agi_sb_puts(b, "{\"metadata\":{\"slug\":");
    agi_sb_json_str(b, o->slug ? o->slug : "attrgraph");
    agi_sb_puts(b, ",\"scan\":");
    agi_sb_json_str(b, o->scan ? o->scan : base_name(g->model_name));
    agi_sb_puts(b, ",\"prompt\":");
    if (o->prompt) {
        agi_sb_json_str(b, o->prompt);
    } else {
        agi_strbuf pr = {0};
        for (int p = 0; p < g->T; p++) agi_sb_puts(&pr, g->pieces[p]);
        agi_sb_json_str(b, pr.s ? pr.s : "");
        if (pr.failed) b->failed = 1;
        free(pr.s);
    }
    agi_sb_puts(b, ",\"prompt_tokens\":[");
    for (int p = 0; p < g->T; p++) {
        if (p) agi_sb_putc(b, ',');
        agi_sb_json_str(b, g->pieces[p]);
    }
    agi_sb_puts(b, "],\"node_threshold\":");
    agi_sb_json_num(b, g->node_threshold);
    agi_sb_printf(b, ",\"schema_version\":1,\"info\":{\"generator\":{\"name\":\"attrgraph\",\"version\":\"%s\"}}",
                  AG_VERSION_STRING);
    agi_sb_printf(b, ",\"generation_settings\":{\"max_n_logits\":%d,\"desired_logit_prob\":", (int)g->max_logits);
    agi_sb_json_num(b, g->logit_prob);
    agi_sb_printf(b, ",\"batch_size\":%d,\"max_feature_nodes\":%d}", (int)g->batch_size, (int)g->max_feature_nodes);
    agi_sb_puts(b, ",\"pruning_settings\":{\"node_threshold\":");
    agi_sb_json_num(b, g->node_threshold);
    agi_sb_puts(b, ",\"edge_threshold\":");
    agi_sb_json_num(b, g->edge_threshold);
    agi_sb_printf(b, "},\"attrgraph\":{\"method\":\"%s\",\"basis\":", g->method == AG_METHOD_GRADIENT ? "gradient" : g->method == AG_METHOD_IG ? "ig" : "decomposition");
    agi_sb_json_str(b, g->basis->name);
    agi_sb_puts(b, ",\"replacement_score\":");
    agi_sb_json_num17(b, g->replacement);
    agi_sb_puts(b, ",\"completeness_score\":");
    agi_sb_json_num17(b, g->completeness);
    agi_sb_puts(b, ",\"completeness_score_units_only\":");
    agi_sb_json_num17(b, g->completeness_units);
    agi_sb_printf(b, ",\"n_nodes_total\":%lld,\"n_units_expanded\":%lld,\"n_unit_candidates\":%lld,\"n_edges_total\":%lld",
                  (long long)g->n_nodes, (long long)g->n_units, (long long)g->n_candidates, (long long)g->nnz);
    agi_sb_printf(b, ",\"n_nodes_kept\":%lld,\"n_edges_kept\":%lld,\"edge_threshold\":", (long long)g->n_kept_nodes,
                  (long long)g->n_kept_edges);
    agi_sb_json_num(b, g->edge_threshold);
    if (o->include_timings) {
        agi_sb_puts(b, ",\"timings\":{\"rank\":");
        agi_sb_json_num(b, g->t_rank);
        agi_sb_puts(b, ",\"rows\":");
        agi_sb_json_num(b, g->t_rows);
        agi_sb_puts(b, ",\"prune\":");
        agi_sb_json_num(b, g->t_prune);
        agi_sb_puts(b, ",\"total\":");
        agi_sb_json_num(b, g->t_total);
        agi_sb_putc(b, '}');
    }
    agi_sb_puts(b, "}},\n\"qParams\":{\"pinnedIds\":[],\"supernodes\":[],\"linkType\":\"both\",\"clickedId\":\"\",\"sg_pos\":\"\"},\n\"nodes\":[");
    int first = 1;
    for (int64_t i = 0; i < g->n_nodes; i++) {
        if (!node_shown(g, o, i)) continue;
        agi_sb_puts(b, first ? "\n" : ",\n");
        first = 0;
        json_node(b, g, i);
    }
    agi_sb_puts(b, "],\n\"links\":[");
    first = 1;
    char src[64], tgt[64];
    for (int64_t t = 0; t < g->n_nodes; t++) {
        if (!node_shown(g, o, t)) continue;
        int have_tgt = 0;
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++) {
            if (!edge_shown(g, o, t, e) || !node_shown(g, o, g->col[e])) continue;
            if (!have_tgt) {
                agi_graph_node_id(g, t, tgt, sizeof tgt);
                have_tgt = 1;
            }
            agi_graph_node_id(g, g->col[e], src, sizeof src);
            agi_sb_puts(b, first ? "\n" : ",\n");
            first = 0;
            agi_sb_puts(b, "{\"source\":");
            agi_sb_json_str(b, src);
            agi_sb_puts(b, ",\"target\":");
            agi_sb_json_str(b, tgt);
            agi_sb_puts(b, ",\"weight\":");
            agi_sb_json_num(b, g->w[e]);
            agi_sb_putc(b, '}');
        }
    }
    agi_sb_puts(b, "]}\n");
    return b->failed ? AG_ERR_OUT_OF_MEMORY : AG_OK;
}

/* DOT string literal. */
static void dot_str(agi_strbuf *b, const char *s) {
    agi_sb_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') agi_sb_putc(b, '\\');
        if (*p == '\n') {
            agi_sb_puts(b, "\\n");
            continue;
        }
        if ((unsigned char)*p < 0x20) continue;
        agi_sb_putc(b, *p);
    }
    agi_sb_putc(b, '"');
}

static void dot_node(agi_strbuf *b, const ag_graph *g, int64_t i) {
    char id[64], label[256];
    agi_graph_node_id(g, i, id, sizeof id);
    int kind = agi_g_kind(g, i);
    const char *shape = "box", *fill = "#ffffff";
    if (kind == AG_NODE_UNIT) {
        snprintf(label, sizeof label, "L%d #%d @%d\n%.3g", (int)g->unit_l[i], (int)g->unit_i[i], (int)g->unit_p[i],
                 (double)g->unit_act[i]);
        fill = "#e8f0fe";
    } else if (kind == AG_NODE_ERROR) {
        int64_t q = i - g->n_units;
        snprintf(label, sizeof label, "error L%d @%d", (int)(q / g->T), (int)(q % g->T));
        shape = "diamond";
        fill = "#eeeeee";
    } else if (kind == AG_NODE_EMBEDDING) {
        int p = (int)(i - g->n_units - g->n_errors);
        snprintf(label, sizeof label, "%s\n@%d", g->pieces[p], p);
        shape = "ellipse";
        fill = "#fff3d6";
    } else {
        int k = (int)(i - g->n_units - g->n_errors - g->n_embed);
        snprintf(label, sizeof label, "%s", g->logits[k].label);
        shape = "octagon";
        fill = "#e6f5e6";
    }
    agi_sb_puts(b, "    ");
    dot_str(b, id);
    agi_sb_printf(b, " [shape=%s, style=filled, fillcolor=\"%s\", label=", shape, fill);
    dot_str(b, label);
    agi_sb_puts(b, "];\n");
}

static ag_status make_dot(const ag_graph *g, const ag_export_options *o, agi_strbuf *b) {
    agi_sb_puts(b, "digraph attrgraph {\n  rankdir=BT;\n  node [fontsize=10, fontname=\"Helvetica\"];\n"
                   "  edge [arrowsize=0.5];\n");
    /* ranks: embeddings, each layer's units and errors, logits */
    agi_sb_puts(b, "  { rank=same;\n");
    for (int p = 0; p < g->T; p++)
        if (node_shown(g, o, agi_g_embed_node(g, p))) dot_node(b, g, agi_g_embed_node(g, p));
    agi_sb_puts(b, "  }\n");
    for (int l = 0; l < g->L; l++) {
        agi_sb_printf(b, "  { rank=same; /* layer %d */\n", l);
        for (int64_t i = g->lp_start[(size_t)l * g->T]; i < g->lp_start[(size_t)(l + 1) * g->T]; i++)
            if (node_shown(g, o, i)) dot_node(b, g, i);
        for (int p = 0; p < g->T; p++)
            if (node_shown(g, o, agi_g_error_node(g, l, p))) dot_node(b, g, agi_g_error_node(g, l, p));
        agi_sb_puts(b, "  }\n");
    }
    agi_sb_puts(b, "  { rank=same;\n");
    for (int k = 0; k < g->n_logits; k++)
        if (node_shown(g, o, agi_g_logit_node(g, k))) dot_node(b, g, agi_g_logit_node(g, k));
    agi_sb_puts(b, "  }\n");
    double mx = 0.0;
    for (int64_t t = 0; t < g->n_nodes; t++)
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++)
            if (edge_shown(g, o, t, e) && node_shown(g, o, t) && node_shown(g, o, g->col[e]))
                mx = fabs(g->w[e]) > mx ? fabs(g->w[e]) : mx;
    char src[64], tgt[64];
    for (int64_t t = 0; t < g->n_nodes; t++) {
        if (!node_shown(g, o, t)) continue;
        agi_graph_node_id(g, t, tgt, sizeof tgt);
        for (int64_t e = g->row_ptr[t]; e < g->row_ptr[t + 1]; e++) {
            if (!edge_shown(g, o, t, e) || !node_shown(g, o, g->col[e])) continue;
            agi_graph_node_id(g, g->col[e], src, sizeof src);
            double w = g->w[e];
            agi_sb_puts(b, "  ");
            dot_str(b, src);
            agi_sb_puts(b, " -> ");
            dot_str(b, tgt);
            agi_sb_printf(b, " [color=\"%s\", penwidth=%.3f, tooltip=\"%.6g\"];\n", w >= 0 ? "#1f5fbf" : "#c0392b",
                          0.3 + 3.7 * (mx > 0 ? fabs(w) / mx : 0.0), w);
        }
    }
    agi_sb_puts(b, "}\n");
    return b->failed ? AG_ERR_OUT_OF_MEMORY : AG_OK;
}

typedef ag_status (*maker)(const ag_graph *, const ag_export_options *, agi_strbuf *);

static ag_status to_memory(const ag_graph *g, const ag_export_options *opts, char **out, size_t *len, maker mk,
                           const char *fn) {
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (len) *len = 0;
    if (!g) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "graph is NULL");
    ag_export_options o;
    ag_export_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    agi_strbuf b = {0};
    st = mk(g, &o, &b);
    if (st != AG_OK) {
        free(b.s);
        return agi_error(st, fn, "cannot allocate the output text");
    }
    *out = b.s;
    if (len) *len = b.n;
    return AG_OK;
}

static ag_status to_file(const ag_graph *g, const char *path, const ag_export_options *opts, maker mk, const char *fn) {
    if (!path) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "path is NULL");
    char *s;
    size_t n;
    ag_status st = to_memory(g, opts, &s, &n, mk, fn);
    if (st != AG_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(s);
        return agi_error(AG_ERR_IO, fn, "%s: cannot open for writing", path);
    }
    size_t w = fwrite(s, 1, n, f);
    int bad = w != n;
    bad |= fclose(f) != 0;
    free(s);
    if (bad) return agi_error(AG_ERR_IO, fn, "%s: write failed", path);
    return AG_OK;
}

ag_status ag_graph_json(const ag_graph *g, const ag_export_options *opts, char **out, size_t *len) {
    return to_memory(g, opts, out, len, make_json, "ag_graph_json");
}
ag_status ag_graph_write_json(const ag_graph *g, const char *path, const ag_export_options *opts) {
    return to_file(g, path, opts, make_json, "ag_graph_write_json");
}
ag_status ag_graph_dot(const ag_graph *g, const ag_export_options *opts, char **out, size_t *len) {
    return to_memory(g, opts, out, len, make_dot, "ag_graph_dot");
}
ag_status ag_graph_write_dot(const ag_graph *g, const char *path, const ag_export_options *opts) {
    return to_file(g, path, opts, make_dot, "ag_graph_write_dot");
}
