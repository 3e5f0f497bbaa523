/* The frozen local-replacement VJP and the graph's edges (src/engine/frozen.c,
 * src/graph/build.c) against independent numbers:
 *  - ../shared/vectors frozen_rows: exact edge rows of three targets from an independent
 *    float64 implementation (stories260K, "Once upon a time");
 *  - identity 1 (DESIGN §1.2): every target's incoming edges sum to its value, on both shared
 *    models, with every unit expanded and with a node budget (units folded into errors);
 *  - identity 2: perturbing the frozen model (the independent double-precision oracle,
 *    tests/support/naive_llama, run with norms, patterns, gates and every MLP output frozen)
 *    by a unit's output, an error vector or an embedding changes every target by exactly the
 *    adjacency column;
 *  - batch invariance (batch sizes 1, 7, 256 give the same rows) and lazy expansion. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "graph/graph.h"
#include "methods/method.h"
#include "graph_paths.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "suite_run.h"

static ag_graph *build(const ag_test_story *fx, int max_nodes, int batch) {
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_feature_nodes = max_nodes;
    if (batch) o.batch_size = batch;
    ag_graph *g = NULL;
    ag_status st = ag_graph_build(&g, fx->tr, &o);
    ck_assert_msg(st == AG_OK, "ag_graph_build: %s", ag_last_error());
    return g;
}

/* A node's incoming row as (sources, weights); returns the count. */
static size_t row_of(const ag_graph *g, size_t node, ag_edge **out) {
    size_t n = 0;
    ag_status st = ag_graph_node_edges(g, node, AG_EDGES_IN, 0, NULL, 0, &n);
    ck_assert(st == AG_OK || st == AG_ERR_BUFFER_TOO_SMALL);
    *out = malloc((n ? n : 1) * sizeof **out);
    ck_assert_int_eq(ag_graph_node_edges(g, node, AG_EDGES_IN, 0, *out, n, &n), AG_OK);
    return n;
}

/* ---- the independent vectors ----------------------------------------------------------------- */

START_TEST(test_vectors_frozen_rows) {
    cJSON *js = ag_test_load_json(ag_test_fixture("vectors/stories260K-once-upon-a-time.json"));
    ck_assert_ptr_nonnull(js);
    ag_test_story fx;
    ag_test_story_open(&fx, "models/stories260K.bin", 5);
    ag_graph *g = build(&fx, 0, 0); /* every unit expanded: the rows are complete */
    ag_model_info mi;
    mi.struct_size = sizeof mi;
    ag_model_get_info(fx.m, &mi);
    int L = mi.n_layers, T = 5, Hd = mi.hidden_dim;
    const cJSON *rows = ag_json_get(js, "frozen_rows", NULL);
    ck_assert_int_eq(cJSON_GetArraySize(rows), 3);
    for (int r = 0; r < 3; r++) {
        const cJSON *row = cJSON_GetArrayItem(rows, r);
        const char *id = cJSON_GetObjectItem(row, "target")->valuestring;
        double value = cJSON_GetObjectItem(row, "value")->valuedouble;
        size_t ne = 0, nn = 0;
        double *emb = ag_json_doubles(cJSON_GetObjectItem(row, "from_embeddings"), &ne);
        double *neu = ag_json_doubles(cJSON_GetObjectItem(row, "from_neurons_layer_pos_index"), &nn);
        ck_assert_int_eq((int)ne, T);
        ck_assert_int_eq((int)nn, L * T * Hd);
        size_t node;
        ck_assert_msg(ag_graph_find_node(g, id, &node) == AG_OK, "find %s: %s", id, ag_last_error());
        ag_node_info ni;
        ni.struct_size = sizeof ni;
        ck_assert_int_eq(ag_graph_node_info(g, node, &ni), AG_OK);
        ck_assert_msg(fabs(ni.value - value) <= 1e-5 * fabs(value), "%s value %.9g vs %.9g", id, ni.value, value);
        /* dense expected row vs ours */
        double *got_e = calloc((size_t)T, sizeof(double)), *got_n = calloc(nn, sizeof(double));
        ag_edge *e;
        size_t n = row_of(g, node, &e);
        double sum = 0.0;
        for (size_t k = 0; k < n; k++) {
            ag_node_info si;
            si.struct_size = sizeof si;
            ck_assert_int_eq(ag_graph_node_info(g, (size_t)e[k].source, &si), AG_OK);
            sum += e[k].weight;
            if (si.kind == AG_NODE_EMBEDDING) got_e[si.position] = e[k].weight;
            else if (si.kind == AG_NODE_UNIT) got_n[((size_t)si.layer * T + si.position) * Hd + si.index] = e[k].weight;
            else ck_abort_msg("%s: unexpected source kind %d (no error nodes when every unit is a node)", id, si.kind);
        }
        double mx = fmax(ag_max_abs_d(emb, ne), ag_max_abs_d(neu, nn));
        double de = ag_max_diff_dd(got_e, emb, ne) / mx, dn = ag_max_diff_dd(got_n, neu, nn) / mx;
        ck_assert_msg(de <= 2e-5 && dn <= 2e-5, "%s: embedding edges off by %.3g, neuron edges by %.3g (rel. to %.3g)", id, de,
                      dn, mx);
        ck_assert_msg(fabs(sum - value) <= 1e-5 * fabs(value), "%s: row sum %.9g vs value %.9g", id, sum, value);
        free(e);
        free(got_e);
        free(got_n);
        free(emb);
        free(neu);
    }
    ag_graph_free(g);
    ag_test_story_close(&fx);
    cJSON_Delete(js);
}
END_TEST

/* ---- identity 1 ---------------------------------------------------------------------------------- */

/* The scale of a target's read: sum_k |d_k x_k| over its read direction d and the residual
 * x it reads (a unit: x^mid of its block; a logit: the final residual). A sum of float32
 * terms that cancel cannot be closer to its value than ~1e-7 of this, so identities are
 * checked relative to max(|value|, scale). */
static double read_scale(const ag_graph *g, const ag_node_info *ni, const ag_trace *tr) {
    const agi_config *c = &tr->model->cfg;
    int D = c->dim;
    float *d = malloc(sizeof(float) * (size_t)D);
    const float *x;
    if (ni->kind == AG_NODE_UNIT) {
        agi_frozen_neuron_dir(tr, ni->layer, ni->position, ni->index, d);
        x = AGI_LROW(&tr->acts, xmid, ni->layer, D) + (size_t)ni->position * D;
    } else {
        size_t k = 0;
        for (k = 0; k < (size_t)g->n_logits; k++)
            if (g->logits[k].vid == ni->index) break;
        agi_frozen_final_dir(tr, tr->acts.T - 1, g->logits[k].wvec, d);
        x = AGI_LROW(&tr->acts, x, c->n_layers, D) + (size_t)(tr->acts.T - 1) * D;
    }
    double s = 0.0;
    for (int k = 0; k < D; k++) s += fabs((double)d[k] * x[k]);
    free(d);
    return s;
}

static void check_identity1(const ag_graph *g, const ag_trace *tr, const char *what) {
    size_t N = ag_graph_n_nodes(g);
    int rows = 0;
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni;
        ni.struct_size = sizeof ni;
        ck_assert_int_eq(ag_graph_node_info(g, i, &ni), AG_OK);
        if (isnan(ni.value)) continue;
        ag_edge *e;
        size_t n = row_of(g, i, &e);
        double sum = 0.0;
        for (size_t k = 0; k < n; k++) sum += e[k].weight;
        double scale = fmax(fabs(ni.value), read_scale(g, &ni, tr));
        double rel = fabs(sum - ni.value) / fmax(scale, 1e-30);
        ck_assert_msg(rel <= 1e-5, "%s: node %s: sum of %zu edges %.9g vs value %.9g (rel %.3g of scale %.3g)", what, ni.id, n,
                      sum, ni.value, rel, scale);
        rows++;
        free(e);
    }
    ck_assert_int_gt(rows, 0);
}

static void identity1_model(const char *file, int T) {
    ag_test_story fx;
    ag_test_story_open(&fx, file, T);
    ag_graph *g = build(&fx, 0, 0);
    check_identity1(g, fx.tr, file);
    ag_graph_free(g);
    g = build(&fx, 60, 16); /* budgeted: unexpanded units fold into the error nodes */
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ck_assert_int_eq(ag_graph_get_info(g, &gi), AG_OK);
    ck_assert_int_le(gi.n_units, 60);
    ck_assert_int_gt(gi.n_units, 0);
    check_identity1(g, fx.tr, file);
    ck_assert(gi.replacement_score < 1.0 && gi.replacement_score >= 0.0);
    ag_test_check_scores(g, 1e-9);
    ag_graph_free(g);
    ag_test_story_close(&fx);
}

START_TEST(test_identity1_stories) { identity1_model("models/stories260K.bin", ag_test_under_valgrind() ? 4 : 9); }
END_TEST
START_TEST(test_identity1_xs) { identity1_model("models/llama2xs_model.bin", ag_test_under_valgrind() ? 4 : 9); }
END_TEST

/* ---- identity 2: perturbation of the frozen model = the adjacency column --------------------------- */

typedef struct perturb {
    int site;   /* NL_SITE_MLP_OUT or NL_SITE_RESID (layer 0: embeddings) */
    int layer, pos, D;
    const double *add; /* [D] */
} perturb;

static void add_hook(void *user, nl_site site, int layer, int T, int width, double *data) {
    perturb *p = user;
    (void)T;
    if ((int)site != p->site || layer != p->layer) return;
    for (int d = 0; d < width; d++) data[(size_t)p->pos * width + d] += p->add[d];
}

/* The change of every row target of g when `add` is added at (site, layer, pos) of the
 * oracle's fully frozen model, against the column of source node `src`. */
/* With eps = 0: one run with `add` (the model is linear). Otherwise the central difference
 * (f(+eps add) - f(-eps add)) / 2 eps (the gradient method's first-order edges). */
static void check_column_ex(const ag_graph *g, const nl_model *nm, const nl_cache *clean, const int *tok, int T, size_t src,
                            perturb *pt, const char *what, unsigned freeze, double eps, double tol) {
    const nl_config *c = &nm->c;
    int V = c->vocab_size, Hd = c->hidden_dim;
    nl_cache *pc = nl_cache_new(nm, T), *mc = NULL;
    nl_forward_opts o;
    memset(&o, 0, sizeof o);
    o.hook = add_hook;
    o.user = pt;
    o.frozen = clean;
    o.freeze = freeze;
    double *scaled = NULL;
    const double *orig = pt->add;
    if (eps > 0.0) { /* pc = f(+eps), mc = f(-eps); below, "clean" is replaced by mc */
        int D = nm->c.dim;
        scaled = malloc(sizeof(double) * (size_t)D);
        for (int d = 0; d < D; d++) scaled[d] = eps * orig[d];
        pt->add = scaled;
        ck_assert_int_eq(nl_forward_ex(nm, tok, T, &o, NULL, pc), 0);
        for (int d = 0; d < D; d++) scaled[d] = -eps * orig[d];
        mc = nl_cache_new(nm, T);
        ck_assert_int_eq(nl_forward_ex(nm, tok, T, &o, NULL, mc), 0);
        pt->add = orig;
        clean = mc;
    } else {
        ck_assert_int_eq(nl_forward_ex(nm, tok, T, &o, NULL, pc), 0);
    }
    double inv = eps > 0.0 ? 1.0 / (2.0 * eps) : 1.0;
    /* the column */
    size_t n = 0;
    ag_graph_node_edges(g, src, AG_EDGES_OUT, 0, NULL, 0, &n);
    ag_edge *col = malloc((n ? n : 1) * sizeof *col);
    ck_assert_int_eq(ag_graph_node_edges(g, src, AG_EDGES_OUT, 0, col, n, &n), AG_OK);
    size_t N = ag_graph_n_nodes(g);
    double *want = calloc(N, sizeof(double)), *got = calloc(N, sizeof(double));
    for (size_t k = 0; k < n; k++) want[col[k].target] = col[k].weight;
    double mx = 0.0, err = 0.0;
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni;
        ni.struct_size = sizeof ni;
        ag_graph_node_info(g, i, &ni);
        if (isnan(ni.value)) continue;
        double d;
        if (ni.kind == AG_NODE_UNIT) {
            size_t q = ((size_t)ni.layer * T + ni.position) * Hd + ni.index;
            d = (pc->neurons[q] - clean->neurons[q]) * inv;
        } else { /* logit: demeaned, last position, by the node's token */
            ck_assert_int_ge(ni.token, 0);
            const double *l1 = pc->logits + (size_t)(T - 1) * V, *l0 = clean->logits + (size_t)(T - 1) * V;
            double m1 = 0.0, m0 = 0.0;
            for (int v = 0; v < V; v++) m1 += l1[v], m0 += l0[v];
            d = ((l1[ni.token] - m1 / V) - (l0[ni.token] - m0 / V)) * inv;
        }
        got[i] = d;
        mx = fmax(mx, fmax(fabs(d), fabs(want[i])));
    }
    for (size_t i = 0; i < N; i++) err = fmax(err, fabs(got[i] - want[i]));
    ck_assert_msg(mx > 0.0, "%s: the perturbation changed nothing", what);
    ck_assert_msg(err <= tol * mx, "%s: perturbation vs column: max error %.3g of %.3g", what, err, mx);
    free(want);
    free(got);
    free(col);
    free(scaled);
    nl_cache_free(pc);
    nl_cache_free(mc);
}

static void check_column(const ag_graph *g, const nl_model *nm, const nl_cache *clean, const int *tok, int T, size_t src,
                         perturb *pt, const char *what) {
    check_column_ex(g, nm, clean, tok, T, src, pt, what, NL_FREEZE_DIRECT, 0.0, 1e-4);
}

static void check(const ag_graph *g, const nl_model *nm, const nl_cache *clean, const int *tok, int T, size_t src,
                  perturb *pt, const char *what, int method) {
    if (method == AG_METHOD_GRADIENT) check_column_ex(g, nm, clean, tok, T, src, pt, what, NL_FREEZE_MLP_OUT, 1e-3, 2e-3);
    else check_column_ex(g, nm, clean, tok, T, src, pt, what, NL_FREEZE_DIRECT, 0.0, 1e-4);
}

static void columns_model(const char *file, int T, int method) {
    ag_test_story fx;
    ag_test_story_open(&fx, file, T);
    nl_model *nm = nl_load_bin(ag_test_fixture(file));
    ck_assert_ptr_nonnull(nm);
    int tok[64];
    for (int i = 0; i < T; i++) tok[i] = fx.tok[i];
    nl_cache *clean = nl_cache_new(nm, T);
    ck_assert_int_eq(nl_forward(nm, tok, T, NULL, clean), 0);
    ag_graph_options go;
    AG_GRAPH_OPTIONS_INIT(go);
    go.max_feature_nodes = 40;
    go.batch_size = 8;
    go.method = method;
    ag_graph *g = NULL;
    ck_assert_msg(ag_graph_build(&g, fx.tr, &go) == AG_OK, "%s", ag_last_error());
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ag_graph_get_info(g, &gi);
    int D = nm->c.dim, Hd = nm->c.hidden_dim, L = nm->c.n_layers;
    double *add = malloc(sizeof(double) * (size_t)D);
    perturb pt = {0, 0, 0, D, add};
    char what[96];
    int checked_units = 0, checked_errors = 0;
    size_t N = ag_graph_n_nodes(g);
    int max_checks = ag_test_under_valgrind() ? 1 : 4;
    (void)check_column;
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni;
        ni.struct_size = sizeof ni;
        ag_graph_node_info(g, i, &ni);
        if (ni.kind == AG_NODE_UNIT && checked_units < max_checks && ni.layer < L - 1 && (i % 7) == 3) {
            /* double the unit's output: add n_i * W2[:, i] */
            for (int d = 0; d < D; d++)
                add[d] = clean->neurons[((size_t)ni.layer * T + ni.position) * Hd + ni.index] *
                         nm->w2[(size_t)ni.layer * D * Hd + (size_t)d * Hd + ni.index];
            pt = (perturb){NL_SITE_MLP_OUT, ni.layer, ni.position, D, add};
            snprintf(what, sizeof what, "%s unit %s", file, ni.id);
            check(g, nm, clean, tok, T, i, &pt, what, method);
            checked_units++;
        } else if (ni.kind == AG_NODE_ERROR && checked_errors < max_checks && ni.layer < L - 1 && ni.position >= T / 2) {
            /* add the error vector: the units of (l, p) that are not nodes */
            for (int d = 0; d < D; d++) add[d] = 0.0;
            for (int u = 0; u < Hd; u++) {
                char id[48];
                size_t idx;
                snprintf(id, sizeof id, "%d_%d_%d", ni.layer, u, ni.position);
                if (ag_graph_find_node(g, id, &idx) == AG_OK) continue;
                double nv = clean->neurons[((size_t)ni.layer * T + ni.position) * Hd + u];
                for (int d = 0; d < D; d++) add[d] += nv * nm->w2[(size_t)ni.layer * D * Hd + (size_t)d * Hd + u];
            }
            pt = (perturb){NL_SITE_MLP_OUT, ni.layer, ni.position, D, add};
            snprintf(what, sizeof what, "%s error %s", file, ni.id);
            check(g, nm, clean, tok, T, i, &pt, what, method);
            checked_errors++;
        } else if (ni.kind == AG_NODE_EMBEDDING && (ni.position == 0 || ni.position == T - 2)) {
            for (int d = 0; d < D; d++) add[d] = nm->emb[(size_t)ni.token * D + d];
            pt = (perturb){NL_SITE_RESID, 0, ni.position, D, add};
            snprintf(what, sizeof what, "%s embedding %s", file, ni.id);
            check(g, nm, clean, tok, T, i, &pt, what, method);
        }
    }
    ck_assert_int_gt(checked_units, 0);
    ck_assert_int_gt(checked_errors, 0);
    free(add);
    ag_graph_free(g);
    nl_cache_free(clean);
    nl_free(nm);
    ag_test_story_close(&fx);
}

START_TEST(test_identity2_stories) { columns_model("models/stories260K.bin", 7, AG_METHOD_DECOMPOSITION); }
END_TEST
START_TEST(test_identity2_xs) { columns_model("models/llama2xs_model.bin", 7, AG_METHOD_DECOMPOSITION); }
END_TEST
/* The gradient method: real-model Jacobian with the MLP outputs held fixed, against central
 * differences of the oracle with only the MLP outputs frozen. */
START_TEST(test_gradient_edges_stories) { columns_model("models/stories260K.bin", 6, AG_METHOD_GRADIENT); }
END_TEST
START_TEST(test_gradient_edges_xs) { columns_model("models/llama2xs_model.bin", 6, AG_METHOD_GRADIENT); }
END_TEST

/* ---- batch invariance and lazy expansion ------------------------------------------------------------- */

START_TEST(test_batch_invariance) {
    ag_test_story fx;
    ag_test_story_open(&fx, "models/llama2xs_model.bin", ag_test_under_valgrind() ? 2 : 3);
    /* every unit expanded, so the node set does not depend on the ranking's batches */
    ag_graph *g1 = build(&fx, 0, ag_test_under_valgrind() ? 3 : 1), *g7 = build(&fx, 0, 7), *gd = build(&fx, 0, 0);
    size_t N = ag_graph_n_nodes(g1);
    ck_assert_int_eq((int)N, (int)ag_graph_n_nodes(g7));
    ck_assert_int_eq((int)N, (int)ag_graph_n_nodes(gd));
    ag_graph *gs[2] = {g7, gd};
    for (size_t i = 0; i < N; i++) {
        ag_node_info a;
        a.struct_size = sizeof a;
        ag_graph_node_info(g1, i, &a);
        for (int k = 0; k < 2; k++) {
            ag_node_info b;
            b.struct_size = sizeof b;
            ag_graph_node_info(gs[k], i, &b);
            ck_assert_str_eq(a.id, b.id);
        }
        if (isnan(a.value)) continue;
        ag_edge *e1, *e2;
        size_t n1 = row_of(g1, i, &e1);
        for (int k = 0; k < 2; k++) {
            size_t n2 = row_of(gs[k], i, &e2);
            double mx = fmax(1e-30, read_scale(g1, &a, fx.tr)), err = 0.0;
            for (size_t q = 0; q < n1; q++) mx = fmax(mx, fabs(e1[q].weight));
            /* same sources, weights equal to rounding (sorted by |w|: compare by source) */
            double *w1 = calloc(N, sizeof(double)), *w2 = calloc(N, sizeof(double));
            for (size_t q = 0; q < n1; q++) w1[e1[q].source] = e1[q].weight;
            for (size_t q = 0; q < n2; q++) w2[e2[q].source] = e2[q].weight;
            for (size_t q = 0; q < N; q++) err = fmax(err, fabs(w1[q] - w2[q]));
            ck_assert_msg(err <= 1e-5 * mx, "node %s: batch %d vs 1 differ by %.3g of %.3g", a.id, k ? 256 : 7, err, mx);
            free(w1);
            free(w2);
            free(e2);
        }
        free(e1);
    }
    ag_graph_free(g1);
    ag_graph_free(g7);
    ag_graph_free(gd);
    ag_test_story_close(&fx);
}
END_TEST

START_TEST(test_expand_node) {
    ag_test_story fx;
    ag_test_story_open(&fx, "models/stories260K.bin", 6);
    ag_graph *g = build(&fx, 30, 0);
    size_t N = ag_graph_n_nodes(g);
    int tried_in = 0, tried_out = 0;
    for (int l = 1; l < 5; l++)
        for (int i = 0; i < 172; i += 13) {
            int p = (l + i) % 6;
            char id[48];
            size_t node;
            snprintf(id, sizeof id, "%d_%d_%d", l, i, p);
            int is_node = ag_graph_find_node(g, id, &node) == AG_OK;
            size_t n = 0;
            double value = 0.0;
            ag_status st = ag_graph_expand_node(g, l, p, i, 0, NULL, 0, &n, &value);
            ck_assert(st == AG_OK || st == AG_ERR_BUFFER_TOO_SMALL);
            ag_edge *e = malloc((n ? n : 1) * sizeof *e);
            ck_assert_int_eq(ag_graph_expand_node(g, l, p, i, 0, e, n, &n, &value), AG_OK);
            double sum = 0.0, sabs = 0.0;
            for (size_t k = 0; k < n; k++) {
                sum += e[k].weight;
                sabs += fabs(e[k].weight);
                ck_assert_int_lt(e[k].source, (int64_t)N);
                if (k) ck_assert(fabs(e[k].weight) <= fabs(e[k - 1].weight));
            }
            ck_assert_msg(fabs(sum - value) <= 1e-5 * fmax(fabs(value), 1e-2 * sabs), "expand %s: %.9g vs %.9g", id, sum, value);
            if (is_node) {
                ag_edge *r;
                size_t nr = row_of(g, node, &r);
                ck_assert_int_eq((int)nr, (int)n);
                for (size_t k = 0; k < n; k++) {
                    ck_assert_int_eq(r[k].source, e[k].source);
                    ck_assert(fabs(r[k].weight - e[k].weight) <= 1e-6 * fabs(r[0].weight));
                }
                free(r);
                tried_in++;
            } else {
                ck_assert_int_eq(e[0].target, -1);
                tried_out++;
            }
            /* top-k */
            size_t k3 = 0;
            ag_edge top[3];
            ck_assert_int_eq(ag_graph_expand_node(g, l, p, i, 3, top, 3, &k3, NULL), AG_OK);
            ck_assert_int_eq((int)k3, n < 3 ? (int)n : 3);
            free(e);
        }
    ck_assert_int_gt(tried_out, 0);
    size_t n;
    ck_assert_int_eq(ag_graph_expand_node(g, 5, 0, 0, 0, NULL, 0, &n, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_graph_expand_node(g, 0, 6, 0, 0, NULL, 0, &n, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_graph_expand_node(g, 0, 0, 172, 0, NULL, 0, &n, NULL), AG_ERR_INVALID_ARGUMENT);
    (void)tried_in;
    ag_graph_free(g);
    ag_test_story_close(&fx);
}
END_TEST

/* The frozen VJP's batched attention step equals B separate per-sequence calls: a unit's row
 * computed alone (expansion, B = 1) equals its row inside a 256-target batch. Covered by
 * test_batch_invariance and test_expand_node; here: the read directions' values. */
START_TEST(test_read_directions) {
    ag_test_story fx;
    ag_test_story_open(&fx, "models/stories260K.bin", 5);
    const agi_config *c = &fx.m->cfg;
    float *d = malloc(sizeof(float) * (size_t)c->dim);
    for (int l = 0; l < c->n_layers; l++)
        for (int p = 0; p < 5; p++)
            for (int i = 0; i < c->hidden_dim; i += 17) {
                agi_frozen_neuron_dir(fx.tr, l, p, i, d);
                const float *xm = AGI_LROW(&fx.tr->acts, xmid, l, c->dim) + (size_t)p * c->dim;
                double v = 0.0;
                for (int k = 0; k < c->dim; k++) v += (double)d[k] * xm[k];
                double n = AGI_LROW(&fx.tr->acts, n, l, c->hidden_dim)[(size_t)p * c->hidden_dim + i], sc = 0.0;
                for (int k = 0; k < c->dim; k++) sc += fabs((double)d[k] * xm[k]);
                ck_assert_msg(fabs(v - n) <= 1e-5 * fmax(fabs(n), sc), "read dir (%d,%d,%d): %.9g vs %.9g", l, p, i, v, n);
            }
    free(d);
    ag_test_story_close(&fx);
}
END_TEST

/* ---- ag_attribute --method decomposition ------------------------------------------------------------ */

typedef struct zero_pos {
    int pos;
} zero_pos;

static void zero_hook(void *user, nl_site site, int layer, int T, int width, double *data) {
    zero_pos *z = user;
    (void)T;
    if (site == NL_SITE_RESID && layer == 0)
        for (int d = 0; d < width; d++) data[(size_t)z->pos * width + d] = 0.0;
}

START_TEST(test_attribute_decomposition) {
    static const char *files[2] = {"models/stories260K.bin", "models/llama2xs_model.bin"};
    for (int fi = 0; fi < (ag_test_under_valgrind() ? 1 : 2); fi++) {
        ag_test_story fx;
        int T = 6;
        ag_test_story_open(&fx, files[fi], T);
        static const char *sites[] = {"embed", "resid.2", "mid.1", "mlp.1", "attn.3", "resid.5", "mlp.4"};
        for (size_t si = 0; si < (ag_test_under_valgrind() ? 4 : sizeof sites / sizeof sites[0]); si++) {
            ag_attribute_options o;
            AG_ATTRIBUTE_OPTIONS_INIT(o);
            o.method = AG_METHOD_DECOMPOSITION;
            ck_assert_int_eq(ag_site_parse(sites[si], &o.site_kind, &o.site_layer), AG_OK);
            ag_attribution *r = NULL;
            ag_status st = ag_attribute(fx.tr, &o, &r);
            ck_assert_msg(st == AG_OK, "%s %s: %s", files[fi], sites[si], ag_last_error());
            double v = ag_attribution_target_value(r), b = ag_attribution_baseline_value(r), sum = ag_attribution_sum(r);
            const float *a = ag_attribution_values(r);
            double sabs = 0.0;
            for (size_t i = 0; i < ag_attribution_size(r); i++) sabs += fabs(a[i]);
            ck_assert_msg(fabs(sum + b - v) <= 1e-5 * fmax(fabs(v), sabs), "%s %s: sum %.9g + rest %.9g vs value %.9g", files[fi],
                          sites[si], sum, b, v);
            ck_assert(fabs(ag_attribution_completeness_error(r)) <= 1e-5 * fmax(fabs(v), sabs));
            if (o.site_kind == AG_SITE_EMBED || o.site_kind == AG_SITE_RESID || o.site_kind == AG_SITE_MID) ck_assert(b == 0.0);
            ck_assert_ptr_nonnull(ag_attribution_gradient(r));
            if (o.site_kind == AG_SITE_EMBED) {
                /* per position against the oracle's frozen linear model: the contribution of
                 * position p is f - f(x_0[p] := 0) */
                nl_model *nm = nl_load_bin(ag_test_fixture(files[fi]));
                int tok[64];
                for (int i = 0; i < T; i++) tok[i] = fx.tok[i];
                nl_cache *clean = nl_cache_new(nm, T), *pc = nl_cache_new(nm, T);
                nl_forward(nm, tok, T, NULL, clean);
                int32_t kind, token, pos;
                ag_attribution_target(r, &kind, &token, &pos);
                int V = nm->c.vocab_size, D = nm->c.dim;
                double f0 = clean->logits[(size_t)pos * V + token], mx = 0.0, err = 0.0;
                for (int p = 0; p < T; p++) {
                    zero_pos z = {p};
                    nl_forward_opts fo;
                    memset(&fo, 0, sizeof fo);
                    fo.hook = zero_hook;
                    fo.user = &z;
                    fo.frozen = clean;
                    fo.freeze = NL_FREEZE_LINEAR;
                    nl_forward_ex(nm, tok, T, &fo, NULL, pc);
                    double want = f0 - pc->logits[(size_t)pos * V + token], got = 0.0;
                    for (int d = 0; d < D; d++) got += a[(size_t)p * D + d];
                    mx = fmax(mx, fabs(want));
                    err = fmax(err, fabs(got - want));
                }
                ck_assert_msg(err <= 1e-4 * mx, "%s embed: per-position contributions off by %.3g of %.3g", files[fi], err, mx);
                nl_cache_free(clean);
                nl_cache_free(pc);
                nl_free(nm);
            }
            ag_attribution_free(r);
        }
        /* a target that is not linear in the frozen model */
        ag_attribute_options o;
        AG_ATTRIBUTE_OPTIONS_INIT(o);
        o.method = AG_METHOD_DECOMPOSITION;
        o.target_kind = AG_TARGET_PROB;
        ag_attribution *r = NULL;
        ck_assert_int_eq(ag_attribute(fx.tr, &o, &r), AG_ERR_UNSUPPORTED);
        ck_assert_ptr_null(r);
        ag_test_story_close(&fx);
    }
}
END_TEST

/* ---- the ig edge method: the gradient edges averaged along alpha · embeddings ---------------------- */

typedef struct path_hook {
    double alpha;      /* the embeddings are scaled by alpha */
    perturb *pt;       /* then this is added (NULL: nothing) */
} path_hook;

static void path_hook_fn(void *user, nl_site site, int layer, int T, int width, double *data) {
    path_hook *h = user;
    if (site == NL_SITE_RESID && layer == 0)
        for (size_t i = 0; i < (size_t)T * width; i++) data[i] *= h->alpha;
    if (h->pt) add_hook(h->pt, site, layer, T, width, data);
}

/* The change of every row target per unit of `add` at the alpha-scaled input, by central
 * differences with the MLP outputs frozen at that input's own values, averaged over the
 * midpoint nodes: the ig column of the source. */
static void check_ig_column(const ag_graph *g, const nl_model *nm, const int *tok, int T, size_t src, perturb *pt, int M,
                            const char *what) {
    int V = nm->c.vocab_size, Hd = nm->c.hidden_dim, D = nm->c.dim;
    size_t N = ag_graph_n_nodes(g);
    double *got = calloc(N, sizeof(double)), *want = calloc(N, sizeof(double));
    double eps = 1e-3, *scaled = malloc(sizeof(double) * (size_t)D);
    const double *orig = pt->add;
    for (int k = 0; k < M; k++) {
        path_hook h = {(k + 0.5) / M, NULL};
        nl_cache *ck = nl_cache_new(nm, T), *cp = nl_cache_new(nm, T), *cm = nl_cache_new(nm, T);
        nl_forward_opts o;
        memset(&o, 0, sizeof o);
        o.hook = path_hook_fn;
        o.user = &h;
        ck_assert_int_eq(nl_forward_ex(nm, tok, T, &o, NULL, ck), 0);
        o.frozen = ck;
        o.freeze = NL_FREEZE_MLP_OUT;
        h.pt = pt;
        pt->add = scaled;
        for (int d = 0; d < D; d++) scaled[d] = eps * orig[d];
        ck_assert_int_eq(nl_forward_ex(nm, tok, T, &o, NULL, cp), 0);
        for (int d = 0; d < D; d++) scaled[d] = -eps * orig[d];
        ck_assert_int_eq(nl_forward_ex(nm, tok, T, &o, NULL, cm), 0);
        pt->add = orig;
        for (size_t i = 0; i < N; i++) {
            ag_node_info ni;
            ni.struct_size = sizeof ni;
            ag_graph_node_info(g, i, &ni);
            if (isnan(ni.value)) continue;
            double d;
            if (ni.kind == AG_NODE_UNIT) {
                size_t q = ((size_t)ni.layer * T + ni.position) * Hd + ni.index;
                d = cp->neurons[q] - cm->neurons[q];
            } else {
                const double *l1 = cp->logits + (size_t)(T - 1) * V, *l0 = cm->logits + (size_t)(T - 1) * V;
                double m1 = 0.0, m0 = 0.0;
                for (int v = 0; v < V; v++) m1 += l1[v], m0 += l0[v];
                d = (l1[ni.token] - m1 / V) - (l0[ni.token] - m0 / V);
            }
            want[i] += d / (2.0 * eps) / M;
        }
        nl_cache_free(ck);
        nl_cache_free(cp);
        nl_cache_free(cm);
    }
    size_t n = 0;
    ag_graph_node_edges(g, src, AG_EDGES_OUT, 0, NULL, 0, &n);
    ag_edge *col = malloc((n ? n : 1) * sizeof *col);
    ck_assert_int_eq(ag_graph_node_edges(g, src, AG_EDGES_OUT, 0, col, n, &n), AG_OK);
    for (size_t k = 0; k < n; k++) got[col[k].target] = col[k].weight;
    double mx = 0.0, err = 0.0;
    for (size_t i = 0; i < N; i++) mx = fmax(mx, fabs(want[i])), err = fmax(err, fabs(got[i] - want[i]));
    ck_assert_msg(mx > 0.0, "%s: nothing changed", what);
    ck_assert_msg(err <= 2e-3 * mx, "%s: ig column vs averaged differences: max error %.3g of %.3g", what, err, mx);
    free(col);
    free(got);
    free(want);
    free(scaled);
}

START_TEST(test_ig_edges) {
    const char *file = "models/stories260K.bin";
    int T = 5, M = 4;
    ag_test_story fx;
    ag_test_story_open(&fx, file, T);
    nl_model *nm = nl_load_bin(ag_test_fixture(file));
    int tok[8];
    for (int i = 0; i < T; i++) tok[i] = fx.tok[i];
    nl_cache *clean = nl_cache_new(nm, T);
    nl_forward(nm, tok, T, NULL, clean);
    ag_graph_options go;
    AG_GRAPH_OPTIONS_INIT(go);
    go.method = AG_METHOD_IG;
    go.ig_steps = M;
    go.max_feature_nodes = 25;
    ag_graph *g = NULL;
    ck_assert_msg(ag_graph_build(&g, fx.tr, &go) == AG_OK, "%s", ag_last_error());
    int D = nm->c.dim, Hd = nm->c.hidden_dim;
    double *add = malloc(sizeof(double) * (size_t)D);
    size_t N = ag_graph_n_nodes(g);
    int units = 0, embs = 0;
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni;
        ni.struct_size = sizeof ni;
        ag_graph_node_info(g, i, &ni);
        perturb pt;
        char what[96];
        if (ni.kind == AG_NODE_UNIT && units < (ag_test_under_valgrind() ? 1 : 2) && ni.layer < 3) {
            for (int d = 0; d < D; d++)
                add[d] = clean->neurons[((size_t)ni.layer * T + ni.position) * Hd + ni.index] *
                         nm->w2[(size_t)ni.layer * D * Hd + (size_t)d * Hd + ni.index];
            pt = (perturb){NL_SITE_MLP_OUT, ni.layer, ni.position, D, add};
            snprintf(what, sizeof what, "ig unit %s", ni.id);
            check_ig_column(g, nm, tok, T, i, &pt, M, what);
            units++;
        } else if (ni.kind == AG_NODE_EMBEDDING && embs < 1 && ni.position == 2) {
            for (int d = 0; d < D; d++) add[d] = nm->emb[(size_t)ni.token * D + d];
            pt = (perturb){NL_SITE_RESID, 0, ni.position, D, add};
            snprintf(what, sizeof what, "ig embedding %s", ni.id);
            check_ig_column(g, nm, tok, T, i, &pt, M, what);
            embs++;
        }
    }
    ck_assert_int_gt(units, 0);
    ck_assert_int_gt(embs, 0);
    go.ig_steps = 0;
    ag_graph *g2 = (ag_graph *)1;
    ck_assert_int_eq(ag_graph_build(&g2, fx.tr, &go), AG_ERR_INVALID_ARGUMENT);
    free(add);
    ag_graph_free(g);
    nl_cache_free(clean);
    nl_free(nm);
    ag_test_story_close(&fx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("frozen");
    TCase *tc = tcase_create("frozen");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_read_directions);
    tcase_add_test(tc, test_vectors_frozen_rows);
    tcase_add_test(tc, test_identity1_stories);
    tcase_add_test(tc, test_identity1_xs);
    tcase_add_test(tc, test_identity2_stories);
    tcase_add_test(tc, test_identity2_xs);
    tcase_add_test(tc, test_gradient_edges_stories);
    tcase_add_test(tc, test_gradient_edges_xs);
    tcase_add_test(tc, test_ig_edges);
    tcase_add_test(tc, test_batch_invariance);
    tcase_add_test(tc, test_expand_node);
    tcase_add_test(tc, test_attribute_decomposition);
    suite_add_tcase(s, tc);
    int failed = ag_test_run_suite(s, CK_NORMAL);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
