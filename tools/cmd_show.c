/* attrgraph show G.json: a graph JSON (the viewer schema of DESIGN §4, also circuit-tracer's
 * and Neuronpedia's) summarised in the terminal: the strongest paths to each target logit and
 * the most influential nodes of each layer; --html writes the interactive viewer. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

enum { K_UNIT = 0, K_ERROR = 1, K_EMB = 2, K_LOGIT = 3 };

typedef struct show_node {
    const char *id;
    const char *label;   /* clerp, "" when none */
    const char *type;    /* feature_type */
    int kind;
    long layer;          /* units/errors: the layer; embeddings -1; logits: LONG_MAX-ish */
    int has_layer;
    long pos;
    double infl, act, prob; /* NAN when absent */
    double feature;         /* NAN when absent */
    int target;
    double in_abs;          /* sum of |w| of its incoming links */
} show_node;

typedef struct show_graph {
    cJSON *doc;
    show_node *n;
    size_t nn;
    int64_t *src, *dst; /* links (valid ones) */
    double *w;
    size_t ne;
    size_t *out_off, *out_idx; /* CSR of outgoing links */
    const char **tokens;
    size_t ntok;
} show_graph;

/* ---- id lookup (open addressing, FNV-1a) ------------------------------------------------------ */

typedef struct id_map {
    int64_t *slot; /* node index or -1 */
    size_t mask;
} id_map;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int map_init(id_map *m, const show_graph *g) {
    size_t cap = 16;
    while (cap < 2 * g->nn + 2) cap <<= 1;
    m->slot = malloc(cap * sizeof *m->slot);
    if (!m->slot) return 1;
    m->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) m->slot[i] = -1;
    for (size_t i = 0; i < g->nn; i++) {
        size_t h = (size_t)fnv1a(g->n[i].id) & m->mask;
        while (m->slot[h] >= 0 && strcmp(g->n[m->slot[h]].id, g->n[i].id) != 0) h = (h + 1) & m->mask;
        if (m->slot[h] < 0) m->slot[h] = (int64_t)i; /* a duplicate id keeps the first node */
    }
    return 0;
}

static int64_t map_get(const id_map *m, const show_graph *g, const char *id) {
    size_t h = (size_t)fnv1a(id) & m->mask;
    while (m->slot[h] >= 0) {
        if (strcmp(g->n[m->slot[h]].id, id) == 0) return m->slot[h];
        h = (h + 1) & m->mask;
    }
    return -1;
}

/* ---- reading ------------------------------------------------------------------------------------ */

static double num_field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) return v->valuedouble;
    if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        double d = strtod(v->valuestring, &end);
        if (*end == '\0' && isfinite(d)) return d;
    }
    return NAN;
}

static const char *str_field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void graph_free(show_graph *g) {
    cJSON_Delete(g->doc);
    free(g->n);
    free(g->src);
    free(g->dst);
    free(g->w);
    free(g->out_off);
    free(g->out_idx);
    free(g->tokens);
    memset(g, 0, sizeof *g);
}

static int kind_of(const cJSON *o) {
    const char *t = str_field(o, "feature_type");
    const cJSON *layer = cJSON_GetObjectItemCaseSensitive(o, "layer");
    if (strcmp(t, "embedding") == 0 || strcmp(t, "token") == 0 ||
        (cJSON_IsString(layer) && strcmp(layer->valuestring, "E") == 0))
        return K_EMB;
    if (strncmp(t, "logit", 5) == 0) return K_LOGIT;
    if (strstr(t, "error")) return K_ERROR;
    return K_UNIT;
}

/* Returns 0, or prints a message and returns 1. */
static int graph_load(show_graph *g, const char *cmd, const char *path, const char *buf, size_t len) {
    memset(g, 0, sizeof *g);
    g->doc = cJSON_ParseWithLength(buf, len);
    if (!g->doc) return cli_fail(cmd, "%s: not valid JSON", path);
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(g->doc, "nodes");
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(g->doc, "links");
    if (!cJSON_IsArray(nodes) || !cJSON_IsArray(links))
        return cli_fail(cmd, "%s: not a graph JSON (needs \"nodes\" and \"links\" arrays)", path);
    size_t nn = (size_t)cJSON_GetArraySize(nodes), ne = (size_t)cJSON_GetArraySize(links);
    g->n = calloc(nn ? nn : 1, sizeof *g->n);
    g->src = malloc((ne ? ne : 1) * sizeof *g->src);
    g->dst = malloc((ne ? ne : 1) * sizeof *g->dst);
    g->w = malloc((ne ? ne : 1) * sizeof *g->w);
    if (!g->n || !g->src || !g->dst || !g->w) return cli_fail(cmd, "out of memory");
    const cJSON *o;
    cJSON_ArrayForEach(o, nodes) {
        if (!cJSON_IsObject(o)) continue;
        show_node *n = &g->n[g->nn];
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "node_id");
        if (!cJSON_IsString(id)) continue;
        n->id = id->valuestring;
        n->label = str_field(o, "clerp");
        n->type = str_field(o, "feature_type");
        n->kind = kind_of(o);
        double layer = num_field(o, "layer");
        n->has_layer = !isnan(layer);
        n->layer = n->kind == K_EMB ? -1 : (n->has_layer ? (long)layer : 0);
        double pos = num_field(o, "ctx_idx");
        n->pos = isnan(pos) || pos < 0 ? 0 : (long)pos;
        n->infl = num_field(o, "influence");
        n->act = num_field(o, "activation");
        n->prob = num_field(o, "token_prob");
        n->feature = num_field(o, "feature");
        n->target = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "is_target_logit"));
        g->nn++;
    }
    id_map m;
    if (map_init(&m, g)) return cli_fail(cmd, "out of memory");
    cJSON_ArrayForEach(o, links) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "source");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "target");
        double w = num_field(o, "weight");
        if (!cJSON_IsString(s) || !cJSON_IsString(t) || isnan(w)) continue;
        int64_t si = map_get(&m, g, s->valuestring), ti = map_get(&m, g, t->valuestring);
        if (si < 0 || ti < 0) continue;
        g->src[g->ne] = si;
        g->dst[g->ne] = ti;
        g->w[g->ne] = w;
        g->n[ti].in_abs += fabs(w);
        g->ne++;
    }
    free(m.slot);
    /* outgoing CSR */
    g->out_off = calloc(g->nn + 1, sizeof *g->out_off);
    g->out_idx = malloc((g->ne ? g->ne : 1) * sizeof *g->out_idx);
    if (!g->out_off || !g->out_idx) return cli_fail(cmd, "out of memory");
    for (size_t e = 0; e < g->ne; e++) g->out_off[g->src[e] + 1]++;
    for (size_t i = 0; i < g->nn; i++) g->out_off[i + 1] += g->out_off[i];
    size_t *fill = malloc((g->nn ? g->nn : 1) * sizeof *fill);
    if (!fill) return cli_fail(cmd, "out of memory");
    memcpy(fill, g->out_off, g->nn * sizeof *fill);
    for (size_t e = 0; e < g->ne; e++) g->out_idx[fill[g->src[e]]++] = e;
    free(fill);
    /* prompt tokens */
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(g->doc, "metadata");
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(meta, "prompt_tokens");
    if (cJSON_IsArray(toks)) {
        size_t nt = (size_t)cJSON_GetArraySize(toks);
        g->tokens = calloc(nt ? nt : 1, sizeof *g->tokens);
        if (!g->tokens) return cli_fail(cmd, "out of memory");
        cJSON_ArrayForEach(o, toks) g->tokens[g->ntok++] = cJSON_IsString(o) ? o->valuestring : "?";
    }
    return 0;
}

/* ---- printing helpers ---------------------------------------------------------------------------- */

/* A token or label, quoted, with control characters escaped and long text cut. */
static void put_quoted(FILE *f, const char *s, size_t max) {
    fputc('"', f);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (n >= max) {
            while ((*p & 0xC0) == 0x80) fputc(*p++, f); /* finish the UTF-8 character */
            fputs("...", f);
            break;
        }
        if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p == '"') fputs("\\\"", f);
        else if (*p < 0x20 || *p == 0x7F) fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static const char *token_at(const show_graph *g, long pos) {
    return pos >= 0 && (size_t)pos < g->ntok ? g->tokens[pos] : "";
}

/* The middle number of a "{layer}_{index}_{pos}" id, or the feature field. */
static void unit_index(const show_node *n, char *buf, size_t cap) {
    const char *a = strchr(n->id, '_');
    const char *b = a ? strrchr(n->id, '_') : NULL;
    if (a && b && b > a + 1 && (size_t)(b - a - 1) < cap) {
        memcpy(buf, a + 1, (size_t)(b - a - 1));
        buf[b - a - 1] = '\0';
    } else if (!isnan(n->feature)) {
        snprintf(buf, cap, "%.0f", n->feature);
    } else {
        snprintf(buf, cap, "?");
    }
}

static void put_node(FILE *f, const show_graph *g, const show_node *n) {
    char idx[32];
    switch (n->kind) {
    case K_EMB:
        fputs("E", f);
        put_quoted(f, token_at(g, n->pos), 24);
        fprintf(f, "@%ld", n->pos);
        break;
    case K_LOGIT: {
        /* 'Output "tok" (p=0.123)' -> logit"tok" */
        const char *a = strchr(n->label, '"'), *b = strstr(n->label, "\" (p=");
        if (a && b && b > a) {
            fputs("logit\"", f);
            for (const char *p = a + 1; p < b; p++) {
                if ((unsigned char)*p < 0x20) fprintf(f, "\\x%02x", (unsigned char)*p);
                else fputc(*p, f);
            }
            fputc('"', f);
        } else if (n->label[0]) {
            put_quoted(f, n->label, 48);
        } else {
            fprintf(f, "logit #%.0f", n->feature);
        }
        break;
    }
    case K_ERROR: fprintf(f, "err L%ld@%ld", n->layer, n->pos); break;
    default:
        unit_index(n, idx, sizeof idx);
        fprintf(f, "L%ld#%s@%ld", n->layer, idx, n->pos);
        if (n->label[0]) {
            fputc(' ', f);
            put_quoted(f, n->label, 32);
        }
    }
}

static void put_num(FILE *f, double v) {
    if (isnan(v)) fputs("-", f);
    else fprintf(f, "%.4g", v);
}

/* ---- paths ---------------------------------------------------------------------------------------- */

typedef struct path_entry {
    double score; /* product of row-normalised |w| from this node to the logit */
    int64_t edge; /* first link of the path (-1 at the logit itself) */
    int64_t start; /* the first node (in the final list only) */
    int32_t rank;  /* which entry of the link target's list continues it */
} path_entry;

/* Topological order (Kahn); returns the count placed (< nn when there are cycles). */
static size_t topo_order(const show_graph *g, size_t *order) {
    size_t *indeg = calloc(g->nn ? g->nn : 1, sizeof *indeg);
    if (!indeg) return 0;
    for (size_t e = 0; e < g->ne; e++) indeg[g->dst[e]]++;
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < g->nn; i++)
        if (!indeg[i]) order[tail++] = i;
    while (head < tail) {
        size_t v = order[head++];
        for (size_t k = g->out_off[v]; k < g->out_off[v + 1]; k++) {
            size_t u = (size_t)g->dst[g->out_idx[k]];
            if (--indeg[u] == 0) order[tail++] = u;
        }
    }
    free(indeg);
    return tail;
}

static void insert_top(path_entry *list, int32_t *cnt, int K, path_entry e) {
    if (*cnt == K && e.score <= list[K - 1].score) return;
    int i = *cnt < K ? (*cnt)++ : K - 1;
    while (i > 0 && list[i - 1].score < e.score) {
        list[i] = list[i - 1];
        i--;
    }
    list[i] = e;
}

static int print_paths(FILE *f, const show_graph *g, size_t target, int K, const size_t *order, size_t n_order) {
    path_entry *best = malloc(g->nn * (size_t)K * sizeof *best);
    int32_t *cnt = calloc(g->nn, sizeof *cnt);
    if (!best || !cnt) {
        free(best);
        free(cnt);
        return 1;
    }
    best[target * (size_t)K] = (path_entry){1.0, -1, -1, -1};
    cnt[target] = 1;
    for (size_t oi = n_order; oi-- > 0;) {
        size_t v = order[oi];
        if (v == target) continue;
        for (size_t k = g->out_off[v]; k < g->out_off[v + 1]; k++) {
            size_t e = g->out_idx[k];
            size_t u = (size_t)g->dst[e];
            if (!cnt[u] || g->n[u].in_abs <= 0) continue;
            double a = fabs(g->w[e]) / g->n[u].in_abs;
            for (int32_t j = 0; j < cnt[u]; j++)
                insert_top(best + v * (size_t)K, &cnt[v], K, (path_entry){a * best[u * (size_t)K + j].score, (int64_t)e, -1, j});
        }
    }
    /* complete paths start at nodes without inputs (embeddings, errors, ...) */
    path_entry *top = malloc((size_t)K * sizeof *top);
    int32_t ntop = 0;
    if (!top) {
        free(best);
        free(cnt);
        return 1;
    }
    for (size_t v = 0; v < g->nn; v++) {
        if (v == target || g->n[v].in_abs > 0 || g->out_off[v] == g->out_off[v + 1]) continue;
        for (int32_t j = 0; j < cnt[v]; j++) {
            path_entry pe = best[v * (size_t)K + j];
            pe.start = (int64_t)v;
            insert_top(top, &ntop, K, pe);
        }
    }
    if (!ntop) fprintf(f, "    (no path from an input reaches it)\n");
    for (int32_t i = 0; i < ntop; i++) {
        fprintf(f, "  %2d. %6.2f%%  ", i + 1, 100.0 * top[i].score);
        size_t v = (size_t)top[i].start;
        path_entry pe = top[i];
        put_node(f, g, &g->n[v]);
        while (pe.edge >= 0) {
            size_t u = (size_t)g->dst[pe.edge];
            fprintf(f, " -(%+.3g)-> ", g->w[pe.edge]);
            put_node(f, g, &g->n[u]);
            pe = best[u * (size_t)K + pe.rank];
        }
        fputc('\n', f);
    }
    free(top);
    free(best);
    free(cnt);
    return 0;
}

/* ---- per-layer ranking ----------------------------------------------------------------------------- */

static const show_graph *g_sort; /* for the qsort comparators (single-threaded CLI) */

static int by_importance(const void *pa, const void *pb) {
    const show_node *a = &g_sort->n[*(const size_t *)pa], *b = &g_sort->n[*(const size_t *)pb];
    double ia = isnan(a->infl) ? 2.0 : a->infl, ib = isnan(b->infl) ? 2.0 : b->infl;
    if (ia != ib) return ia < ib ? -1 : 1;
    double aa = isnan(a->act) ? -1 : fabs(a->act), ab = isnan(b->act) ? -1 : fabs(b->act);
    if (aa != ab) return aa > ab ? -1 : 1;
    return strcmp(a->id, b->id);
}

static int by_logit(const void *pa, const void *pb) {
    const show_node *a = &g_sort->n[*(const size_t *)pa], *b = &g_sort->n[*(const size_t *)pb];
    if (a->target != b->target) return a->target ? -1 : 1;
    double pa_ = isnan(a->prob) ? -1 : a->prob, pb_ = isnan(b->prob) ? -1 : b->prob;
    if (pa_ != pb_) return pa_ > pb_ ? -1 : 1;
    return strcmp(a->id, b->id);
}

static int by_layer_then_importance(const void *pa, const void *pb) {
    const show_node *a = &g_sort->n[*(const size_t *)pa], *b = &g_sort->n[*(const size_t *)pb];
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return by_importance(pa, pb);
}

/* ---- the command ------------------------------------------------------------------------------------- */

static void print_summary(FILE *f, const show_graph *g, const char *path, int n_paths, int n_top) {
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(g->doc, "metadata");
    size_t counts[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < g->nn; i++) counts[g->n[i].kind]++;
    fprintf(f, "graph %s", path);
    const char *slug = str_field(meta, "slug"), *scan = str_field(meta, "scan");
    if (slug[0]) fprintf(f, "  slug %s", slug);
    if (scan[0]) fprintf(f, "  model %s", scan);
    fputc('\n', f);
    fputs("prompt ", f);
    put_quoted(f, str_field(meta, "prompt"), 200);
    fprintf(f, "  (%zu tokens)\n", g->ntok);
    fprintf(f, "nodes %zu: %zu units, %zu errors, %zu embeddings, %zu logits; links %zu", g->nn, counts[K_UNIT],
            counts[K_ERROR], counts[K_EMB], counts[K_LOGIT], g->ne);
    double th = num_field(meta, "node_threshold");
    if (!isnan(th)) fprintf(f, "; node_threshold %.4g", th);
    fputc('\n', f);
    const cJSON *ag = cJSON_GetObjectItemCaseSensitive(meta, "attrgraph");
    if (cJSON_IsObject(ag)) {
        fprintf(f, "method %s, basis %s; replacement score ", str_field(ag, "method"), str_field(ag, "basis"));
        put_num(f, num_field(ag, "replacement_score"));
        fputs(", completeness ", f);
        put_num(f, num_field(ag, "completeness_score"));
        fputs(" (units only ", f);
        put_num(f, num_field(ag, "completeness_score_units_only"));
        fputs(")\n", f);
    }

    size_t *idx = malloc((g->nn ? g->nn : 1) * sizeof *idx);
    size_t *order = malloc((g->nn ? g->nn : 1) * sizeof *order);
    if (!idx || !order) {
        free(idx);
        free(order);
        return;
    }
    size_t n_order = topo_order(g, order);
    if (n_order < g->nn) fprintf(f, "note: the links have a cycle; %zu nodes on it are left out of the paths\n", g->nn - n_order);
    g_sort = g;

    /* logits, targets first */
    size_t nl = 0;
    for (size_t i = 0; i < g->nn; i++)
        if (g->n[i].kind == K_LOGIT) idx[nl++] = i;
    qsort(idx, nl, sizeof *idx, by_logit);
    fprintf(f, "\nTop %d paths to each logit (share of the logit's |input| along the path: the product of\n"
               "row-normalised |weights|, as in the influence; link weights in parentheses)\n", n_paths);
    for (size_t k = 0; k < nl; k++) {
        const show_node *n = &g->n[idx[k]];
        fputc('\n', f);
        put_node(f, g, n);
        fprintf(f, "  %s p=", n->target ? "target" : "logit");
        put_num(f, n->prob);
        fprintf(f, "  %s\n", n->id);
        if (print_paths(f, g, idx[k], n_paths, order, n_order)) fprintf(f, "    (out of memory)\n");
    }

    /* top nodes per layer */
    size_t nu = 0;
    for (size_t i = 0; i < g->nn; i++)
        if (g->n[i].kind != K_LOGIT) idx[nu++] = i;
    qsort(idx, nu, sizeof *idx, by_layer_then_importance);
    fprintf(f, "\nTop %d nodes per layer (by influence: the cumulative-influence rank fraction, smaller is\n"
               "more important)\n", n_top);
    for (size_t a = 0; a < nu;) {
        size_t b = a;
        while (b < nu && g->n[idx[b]].layer == g->n[idx[a]].layer) b++;
        const show_node *first = &g->n[idx[a]];
        if (first->kind == K_EMB) fprintf(f, "\nembeddings (%zu nodes)\n", b - a);
        else fprintf(f, "\nlayer %ld (%zu nodes)\n", first->layer, b - a);
        for (size_t k = a; k < b && k < a + (size_t)n_top; k++) {
            const show_node *n = &g->n[idx[k]];
            fputs("  influence ", f);
            if (isnan(n->infl)) fputs("     -", f);
            else fprintf(f, "%6.4f", n->infl);
            fputs("  act ", f);
            if (isnan(n->act)) fputs("        -", f);
            else fprintf(f, "%9.4g", n->act);
            fputs("  ", f);
            put_node(f, g, n);
            if (n->kind != K_EMB) {
                fputs(" ", f);
                put_quoted(f, token_at(g, n->pos), 16);
            }
            fputc('\n', f);
        }
        a = b;
    }
    free(idx);
    free(order);
}

/* The strongest path to each target logit of the graph JSON at `path` (attrgraph graph prints
 * it after writing the JSON, so the main job shows its answer in text). */
int cli_show_top_paths(FILE *f, const char *cmd, const char *path, int n_paths) {
    size_t len = 0;
    char *buf = cli_read_file(path, &len);
    if (!buf) return cli_fail(cmd, "%s: cannot read the file", path);
    show_graph g;
    int rc = graph_load(&g, cmd, path, buf, len);
    size_t *order = rc ? NULL : malloc((g.nn ? g.nn : 1) * sizeof *order);
    if (!rc && !order) rc = cli_fail(cmd, "out of memory");
    if (!rc) {
        size_t n_order = topo_order(&g, order);
        for (size_t i = 0; i < g.nn && !rc; i++) {
            const show_node *n = &g.n[i];
            if (n->kind != K_LOGIT || !n->target) continue;
            fprintf(f, "top path%s to ", n_paths > 1 ? "s" : "");
            put_node(f, &g, n);
            fputs(" p=", f);
            put_num(f, n->prob);
            fputs(" (share of the logit's |input| along the path; link weights in parentheses):\n", f);
            if (print_paths(f, &g, i, n_paths, order, n_order)) rc = cli_fail(cmd, "out of memory");
        }
    }
    free(order);
    graph_free(&g);
    free(buf);
    return rc;
}

static int run_show(cli_args *a) {
    const char *cmd = "show";
    long long n_paths = 5, n_top = 8;
    const char *s;
    if ((s = cli_opt(a, NULL, "--paths")) && cli_parse_int(s, "--paths", 1, 1000, &n_paths)) return 1;
    if ((s = cli_opt(a, NULL, "--top")) && cli_parse_int(s, "--top", 1, 1000000, &n_top)) return 1;
    const char *html = cli_opt(a, NULL, "--html");
    const char *title = cli_opt(a, NULL, "--title");
    int quiet = cli_flag(a, "-q", "--quiet");
    const char *path = NULL;
    for (int i = 2; i < a->argc; i++)
        if (!a->used[i] && a->argv[i][0] != '-') {
            if (path) return cli_fail(cmd, "give one graph JSON file (got '%s' and '%s')", path, a->argv[i]);
            path = a->argv[i];
            a->used[i] = 1;
        }
    if (cli_check_unused(a, cmd)) return 1;
    if (!path) return cli_fail(cmd, "no graph given: attrgraph show G.json");
    if (html && !*html) return cli_fail(cmd, "--html needs a file name");
    size_t len = 0;
    char *buf = cli_read_file(path, &len);
    if (!buf) return cli_fail(cmd, "%s: cannot read the file", path);
    show_graph g;
    int rc = graph_load(&g, cmd, path, buf, len);
    if (!rc && !quiet) print_summary(stdout, &g, path, (int)n_paths, (int)n_top);
    if (!rc && html) {
        ag_status st = ag_viewer_write_html(html, buf, len, title);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
        else if (!quiet) fprintf(stderr, "attrgraph show: wrote the viewer to %s\n", html);
    }
    graph_free(&g);
    free(buf);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}

const cli_command cli_cmd_show = {
    "show", "summarise a graph JSON in the terminal; --html writes the interactive viewer",
    "usage: attrgraph show G.json [--paths K] [--top N] [--html OUT.html] [--title TEXT] [-q]\n\n"
    "Reads a graph JSON in the viewer schema (written by attrgraph graph, or by circuit-tracer /\n"
    "Neuronpedia) and prints:\n"
    "  - for each logit node (targets first): the K strongest paths (default 5) from an input\n"
    "    (a node without incoming links: embedding, error) to it, scored by the product of\n"
    "    row-normalised |weights| along the path (its share of the logit's absolute input, as in\n"
    "    the influence computation), each link with its signed weight;\n"
    "  - for each layer (embeddings first): the N most influential nodes (default 8), with\n"
    "    influence, activation, label and token.\n"
    "--html OUT.html also writes the interactive viewer of this JSON: one self-contained file,\n"
    "no network, opens from file:// (title: --title, or the prompt). -q prints nothing.\n",
    run_show};
