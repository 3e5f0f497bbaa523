/* The graph builder's public API (src/graph): logit targets (the default salient choice
 * against ../shared/vectors, explicit tokens, logit differences, custom directions), the node
 * budget (greedy expansion, folding into error nodes), pruning invariants on real graphs,
 * queries (node info, ids, edges sorted by |weight|, top-k, buffer sizes), progress and
 * cancellation, bad options with clear errors, and the `attrgraph graph` command. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "attrgraph.h"
#include "graph_paths.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "suite_run.h"

/* ---- targets ------------------------------------------------------------------------------ */

START_TEST(test_default_targets) {
    cJSON *js = ag_test_load_json(ag_test_fixture("vectors/stories260K-once-upon-a-time.json"));
    ck_assert_ptr_nonnull(js);
    ag_test_story fx;
    ag_test_story_open(&fx, "models/stories260K.bin", 5);
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_feature_nodes = 20;
    ag_graph *g;
    ck_assert_int_eq(ag_graph_build(&g, fx.tr, &o), AG_OK);
    const cJSON *want = ag_json_get(js, "default_logit_targets", NULL);
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ck_assert_int_eq(ag_graph_get_info(g, &gi), AG_OK);
    ck_assert_int_eq((int)gi.n_logits, cJSON_GetArraySize(want));
    size_t first_logit = (size_t)(gi.n_nodes - gi.n_logits);
    for (int k = 0; k < (int)gi.n_logits; k++) {
        const cJSON *w = cJSON_GetArrayItem(want, k);
        ag_node_info ni = ag_test_node_info(g, first_logit + (size_t)k);
        ck_assert_int_eq(ni.kind, AG_NODE_LOGIT);
        ck_assert_int_eq(ni.token, cJSON_GetObjectItem(w, "token")->valueint);
        ck_assert(fabs(ni.weight - cJSON_GetObjectItem(w, "prob")->valuedouble) < 1e-5);
        double dl = cJSON_GetObjectItem(w, "demeaned_logit")->valuedouble;
        ck_assert_msg(fabs(ni.activation - dl) < 1e-4 * fabs(dl), "%.9g vs %.9g", ni.activation, dl);
        ck_assert_int_eq(ni.layer, 6);
        ck_assert_int_eq(ni.position, 4);
        ck_assert(strstr(ni.label, "Output \"") == ni.label);
    }
    ag_graph_free(g);
    /* max_logits and logit_prob shape the default set */
    o.max_logits = 3;
    o.logit_prob = 1.0;
    ck_assert_int_eq(ag_graph_build(&g, fx.tr, &o), AG_OK);
    ck_assert_int_eq(ag_graph_get_info(g, &gi), AG_OK);
    ck_assert_int_eq((int)gi.n_logits, 3);
    double prev = 2.0;
    for (int k = 0; k < 3; k++) {
        ag_node_info ni = ag_test_node_info(g, (size_t)(gi.n_nodes - 3 + k));
        ck_assert(ni.weight <= prev);
        prev = ni.weight;
    }
    ag_graph_free(g);
    ag_test_story_close(&fx);
    cJSON_Delete(js);
}
END_TEST

START_TEST(test_explicit_targets) {
    ag_test_story fx;
    ag_test_story_open(&fx, "models/stories260K.bin", 5);
    const float *lg, *xfin;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(fx.tr, AG_TENSOR_LOGITS, 0, &lg, sh, &nd), AG_OK);
    int V = (int)sh[1];
    lg += (size_t)4 * V;
    ck_assert_int_eq(ag_trace_tensor(fx.tr, AG_TENSOR_FINAL_OUT, 0, &xfin, sh, &nd), AG_OK);
    int D = (int)sh[1];
    xfin += (size_t)4 * D;
    float *dir = calloc((size_t)D, sizeof(float));
    for (int d = 0; d < D; d++) dir[d] = (float)((d % 5) - 2) * 0.25f;
    ag_graph_target t[3];
    memset(t, 0, sizeof t);
    t[0].kind = AG_GRAPH_TARGET_TOKEN;
    t[0].token = 100;
    t[1].kind = AG_GRAPH_TARGET_LOGIT_DIFF;
    t[1].token = 432;
    t[1].token_b = 100;
    t[1].weight = 0.5;
    t[1].label = "time vs other";
    t[2].kind = AG_GRAPH_TARGET_DIRECTION;
    t[2].direction = dir;
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.targets = t;
    o.n_targets = 3;
    o.max_feature_nodes = 30;
    ag_graph *g;
    ck_assert_msg(ag_graph_build(&g, fx.tr, &o) == AG_OK, "%s", ag_last_error());
    size_t N = ag_graph_n_nodes(g);
    ag_node_info a = ag_test_node_info(g, N - 3), b = ag_test_node_info(g, N - 2), c = ag_test_node_info(g, N - 1);
    double mean = 0.0;
    for (int v = 0; v < V; v++) mean += lg[v];
    mean /= V;
    ck_assert(fabs(a.activation - (lg[100] - mean)) < 1e-4 * fmax(1.0, fabs(a.activation)));
    ck_assert_int_eq(a.index, 100);
    ck_assert(a.weight > 0 && a.weight < 1); /* its probability */
    ck_assert(fabs(b.activation - (lg[432] - lg[100])) < 1e-4 * fmax(1.0, fabs(b.activation)));
    ck_assert_int_eq(b.index, V + 1); /* a virtual id */
    ck_assert_int_eq(b.token, -1);
    ck_assert(fabs(b.weight - 0.5) < 1e-12);
    ck_assert_str_eq(b.label, "time vs other");
    double dv = 0.0;
    for (int d = 0; d < D; d++) dv += (double)dir[d] * xfin[d];
    ck_assert(fabs(c.activation - dv) < 1e-4 * fmax(1.0, fabs(dv)));
    ck_assert(fabs(c.weight - 1.0) < 1e-12);
    char id[48];
    snprintf(id, sizeof id, "6_%d_4", V + 2);
    ck_assert_str_eq(c.id, id);
    size_t idx;
    ck_assert_int_eq(ag_graph_find_node(g, id, &idx), AG_OK);
    ck_assert_int_eq((int)idx, (int)(N - 1));
    /* every target row sums to its value */
    for (size_t i = N - 3; i < N; i++) {
        size_t n = 0;
        ag_graph_node_edges(g, i, AG_EDGES_IN, 0, NULL, 0, &n);
        ag_edge *e = malloc(n * sizeof *e);
        ck_assert_int_eq(ag_graph_node_edges(g, i, AG_EDGES_IN, 0, e, n, &n), AG_OK);
        double s = 0.0, sa = 0.0;
        for (size_t k = 0; k < n; k++) s += e[k].weight, sa += fabs(e[k].weight);
        ag_node_info ni = ag_test_node_info(g, i);
        ck_assert_msg(fabs(s - ni.value) <= 1e-5 * fmax(fabs(ni.value), sa), "%s: %.9g vs %.9g", ni.id, s, ni.value);
        free(e);
    }
    ag_graph_free(g);
    free(dir);
    ag_test_story_close(&fx);
}
END_TEST

/* ---- bad options -------------------------------------------------------------------------- */

static void expect_bad(const ag_trace *tr, const ag_graph_options *o, ag_status want, const char *needle) {
    ag_graph *g = (ag_graph *)1;
    ag_status st = ag_graph_build(&g, tr, o);
    ck_assert_msg(st == want, "status %d (%s), want %d", st, ag_last_error(), want);
    ck_assert_ptr_null(g);
    ck_assert_msg(strstr(ag_last_error(), needle) != NULL, "message '%s' lacks '%s'", ag_last_error(), needle);
}

START_TEST(test_bad_options) {
    ag_test_story fx;
    ag_test_story_open(&fx, "models/stories260K.bin", 5);
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.node_threshold = 1.5;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "node_threshold");
    AG_GRAPH_OPTIONS_INIT(o);
    o.edge_threshold = -0.01;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "edge_threshold");
    AG_GRAPH_OPTIONS_INIT(o);
    o.node_threshold = NAN;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "node_threshold");
    AG_GRAPH_OPTIONS_INIT(o);
    o.logit_prob = 0.0;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "logit_prob");
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_logits = 0;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "max_logits");
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_feature_nodes = -1;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "max_feature_nodes");
    AG_GRAPH_OPTIONS_INIT(o);
    o.batch_size = 0;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "batch_size");
    AG_GRAPH_OPTIONS_INIT(o);
    o.method = AG_METHOD_PATH;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "method");
    AG_GRAPH_OPTIONS_INIT(o);
    o.method = AG_METHOD_IG; /* gradient and ig edges: neuron basis only */
    o.basis = AG_BASIS_TRANSCODERS;
    expect_bad(fx.tr, &o, AG_ERR_UNSUPPORTED, "AG_METHOD_IG");
    AG_GRAPH_OPTIONS_INIT(o);
    o.method = AG_METHOD_IG;
    o.ig_steps = 0;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "ig_steps");
    AG_GRAPH_OPTIONS_INIT(o);
    o.basis = AG_BASIS_TRANSCODERS; /* without a transcoder set */
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "transcoders");
    AG_GRAPH_OPTIONS_INIT(o);
    o.basis = 77;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "basis");
    ag_graph_target t;
    memset(&t, 0, sizeof t);
    t.kind = AG_GRAPH_TARGET_TOKEN;
    t.token = 512; /* the vocabulary has 512 tokens */
    AG_GRAPH_OPTIONS_INIT(o);
    o.targets = &t;
    o.n_targets = 1;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "token = 512");
    t.kind = AG_GRAPH_TARGET_LOGIT_DIFF;
    t.token = 3;
    t.token_b = -4;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "token_b");
    t.kind = AG_GRAPH_TARGET_DIRECTION;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "direction is NULL");
    t.kind = 99;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "kind");
    o.targets = NULL;
    expect_bad(fx.tr, &o, AG_ERR_INVALID_ARGUMENT, "n_targets");
    /* NULLs, versions */
    ag_graph *g;
    ck_assert_int_eq(ag_graph_build(NULL, fx.tr, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_graph_build(&g, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(g);
    AG_GRAPH_OPTIONS_INIT(o);
    o.struct_size = 4;
    ck_assert_int_eq(ag_graph_build(&g, fx.tr, &o), AG_ERR_VERSION);
    ck_assert_int_eq(ag_graph_options_init(NULL, sizeof o), AG_ERR_INVALID_ARGUMENT);
    ag_graph_free(NULL);
    /* a prompt longer than the model's context is refused before any graph is built */
    int32_t *many = calloc(600, sizeof(int32_t));
    ag_trace *tr2 = NULL;
    ck_assert_int_eq(ag_trace_create(&tr2, fx.m, many, 600, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(ag_last_error(), "context") != NULL);
    free(many);
    ag_test_story_close(&fx);
}
END_TEST

/* ---- budget, pruning invariants, queries ---------------------------------------------------- */

START_TEST(test_budget_and_queries) {
    ag_test_story fx;
    ag_test_story_open(&fx, "models/llama2xs_model.bin", 8);
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_feature_nodes = 100;
    o.batch_size = 16;
    o.update_interval = 2;
    ag_graph *g;
    ck_assert_int_eq(ag_graph_build(&g, fx.tr, &o), AG_OK);
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ck_assert_int_eq(ag_graph_get_info(g, &gi), AG_OK);
    ck_assert_int_eq((int)gi.n_units, 100);
    ck_assert_int_eq((int)gi.n_unit_candidates, 5 * 8 * 192);
    ck_assert_int_eq((int)gi.n_errors, 5 * 8);
    ck_assert_int_eq((int)gi.n_embeddings, 8);
    ck_assert_int_eq(gi.n_nodes, gi.n_units + gi.n_errors + gi.n_embeddings + gi.n_logits);
    ck_assert(gi.rows_computed >= 2 * (gi.n_units + gi.n_logits) - 16); /* ranking + exact */
    ck_assert(gi.replacement_score > 0.0 && gi.replacement_score < 1.0);
    ck_assert(gi.completeness_score > 0.0 && gi.completeness_score <= 1.0);
    ck_assert(gi.completeness_score_units_only > 0.0 && gi.completeness_score_units_only <= gi.completeness_score + 1e-12);
    ck_assert(gi.n_kept_nodes > gi.n_embeddings + gi.n_logits && gi.n_kept_nodes < gi.n_nodes);
    /* the scores and every node's influence against their definitions, recomputed from the edges */
    ag_test_check_scores(g, 1e-9);
    size_t N = ag_graph_n_nodes(g);
    int64_t kept_edges = 0;
    for (size_t i = 0; i < N; i++) {
        ag_node_info ni = ag_test_node_info(g, i);
        /* ids round-trip */
        size_t back;
        ck_assert_msg(ag_graph_find_node(g, ni.id, &back) == AG_OK && back == i, "id %s", ni.id);
        ck_assert(ni.influence >= 0.0 && ni.influence <= 1.0 + 1e-12);
        if (ni.kind == AG_NODE_UNIT) {
            ck_assert(ni.layer >= 0 && ni.layer < 5 && ni.index >= 0 && ni.index < 192);
            ck_assert(ni.activation == ni.value);
            if (i > 0) { /* (layer, position, index) order */
                ag_node_info pv = ag_test_node_info(g, i - 1);
                ck_assert(pv.layer < ni.layer || (pv.layer == ni.layer && (pv.position < ni.position ||
                                                                            (pv.position == ni.position && pv.index < ni.index))));
            }
        }
        if (ni.kind == AG_NODE_EMBEDDING || ni.kind == AG_NODE_LOGIT) ck_assert_int_eq(ni.kept, 1);
        /* sorted edges, top-k, kept-only counts */
        size_t n_in = 0, n_out = 0, n_kin = 0, n_kout = 0;
        ag_graph_node_edges(g, i, AG_EDGES_IN, 0, NULL, 0, &n_in);
        ag_graph_node_edges(g, i, AG_EDGES_OUT, 0, NULL, 0, &n_out);
        ag_graph_node_edges(g, i, AG_EDGES_IN | AG_EDGES_KEPT_ONLY, 0, NULL, 0, &n_kin);
        ag_graph_node_edges(g, i, AG_EDGES_OUT | AG_EDGES_KEPT_ONLY, 0, NULL, 0, &n_kout);
        kept_edges += (int64_t)n_kin;
        if (ni.kind == AG_NODE_EMBEDDING || ni.kind == AG_NODE_ERROR) ck_assert_int_eq((int)n_in, 0);
        if (ni.kind == AG_NODE_LOGIT) ck_assert_int_eq((int)n_out, 0);
        if (ni.kept && ni.kind == AG_NODE_UNIT) ck_assert(n_kin > 0 && n_kout > 0);
        if (ni.kept && ni.kind == AG_NODE_ERROR) ck_assert(n_kout > 0);
        if (!ni.kept) ck_assert(n_kin == 0 && n_kout == 0);
        if (n_in) {
            ag_edge *e = malloc(n_in * sizeof *e);
            size_t got;
            if (n_in > 1) ck_assert_int_eq(ag_graph_node_edges(g, i, AG_EDGES_IN, 0, e, n_in - 1, &got), AG_ERR_BUFFER_TOO_SMALL);
            ck_assert_int_eq(ag_graph_node_edges(g, i, AG_EDGES_IN, 0, e, n_in, &got), AG_OK);
            for (size_t k = 1; k < got; k++) ck_assert(fabs(e[k].weight) <= fabs(e[k - 1].weight));
            for (size_t k = 0; k < got; k++) {
                ck_assert_int_eq((int)e[k].target, (int)i);
                ag_node_info si = ag_test_node_info(g, (size_t)e[k].source);
                ck_assert(si.kind != AG_NODE_LOGIT);
                if (si.kind == AG_NODE_UNIT) ck_assert(si.layer < (ni.kind == AG_NODE_LOGIT ? 5 : ni.layer));
                ck_assert(si.position <= ni.position);
            }
            ag_edge top[2];
            ck_assert_int_eq(ag_graph_node_edges(g, i, AG_EDGES_IN, 2, top, 2, &got), AG_OK);
            ck_assert_int_eq((int)got, n_in < 2 ? (int)n_in : 2);
            ck_assert(top[0].weight == e[0].weight);
            free(e);
        }
    }
    ck_assert_int_eq(kept_edges, gi.n_kept_edges);
    /* a unit that was not expanded is folded into its error node */
    int found_folded = 0;
    for (int l = 0; l < 5 && !found_folded; l++)
        for (int i = 0; i < 192 && !found_folded; i++) {
            char id[48];
            snprintf(id, sizeof id, "%d_%d_7", l, i);
            size_t idx;
            ag_status st = ag_graph_find_node(g, id, &idx);
            if (st == AG_ERR_NOT_FOUND) {
                found_folded = 1;
                ck_assert(strstr(ag_last_error(), "folded into error node") != NULL);
            }
        }
    ck_assert(found_folded);
    size_t idx;
    ck_assert_int_eq(ag_graph_find_node(g, "nonsense", &idx), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_graph_find_node(g, "E_5_0", &idx), AG_ERR_NOT_FOUND);
    ck_assert_int_eq(ag_graph_find_node(g, "9_1_1", &idx), AG_ERR_NOT_FOUND);
    ck_assert_int_eq(ag_graph_find_node(g, "E_1_0", &idx), AG_OK);
    ag_node_info ni;
    ni.struct_size = sizeof ni;
    ck_assert_int_eq(ag_graph_node_info(g, N, &ni), AG_ERR_NOT_FOUND);
    ni.struct_size = 8;
    ck_assert_int_eq(ag_graph_node_info(g, 0, &ni), AG_ERR_VERSION);
    size_t n;
    ck_assert_int_eq(ag_graph_node_edges(g, N, 0, 0, NULL, 0, &n), AG_ERR_NOT_FOUND);
    ck_assert_int_eq(ag_graph_node_edges(g, 0, 64, 0, NULL, 0, &n), AG_ERR_INVALID_ARGUMENT);
    ag_graph_free(g);
    ag_test_story_close(&fx);
}
END_TEST

/* ---- progress and cancellation ---------------------------------------------------------------- */

typedef struct prog {
    int calls, cancel_at;
    double last;
    char phases[8][16];
    int n_phases;
} prog;

static int prog_cb(const char *phase, double done, void *user) {
    prog *p = user;
    ck_assert(done >= 0.0 && done <= 1.0);
    if (p->n_phases == 0 || strcmp(p->phases[p->n_phases - 1], phase) != 0) {
        if (p->n_phases < 8) snprintf(p->phases[p->n_phases++], 16, "%s", phase);
    }
    p->calls++;
    return p->cancel_at && p->calls >= p->cancel_at;
}

START_TEST(test_progress_and_cancel) {
    ag_test_story fx;
    ag_test_story_open(&fx, "models/stories260K.bin", 6);
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_feature_nodes = 64;
    o.batch_size = 8;
    prog p;
    memset(&p, 0, sizeof p);
    o.progress = prog_cb;
    o.user_data = &p;
    ag_graph *g;
    ck_assert_int_eq(ag_graph_build(&g, fx.tr, &o), AG_OK);
    ck_assert_int_ge(p.n_phases, 3);
    ck_assert_str_eq(p.phases[0], "rank");
    ck_assert_str_eq(p.phases[1], "rows");
    ck_assert_str_eq(p.phases[2], "prune");
    int total = p.calls;
    ag_graph_free(g);
    for (int at = 1; at <= total; at += total / 5 > 0 ? total / 5 : 1) {
        memset(&p, 0, sizeof p);
        p.cancel_at = at;
        g = (ag_graph *)1;
        ck_assert_int_eq(ag_graph_build(&g, fx.tr, &o), AG_ERR_CANCELLED);
        ck_assert_ptr_null(g);
    }
    ag_test_story_close(&fx);
}
END_TEST

/* ---- the CLI -------------------------------------------------------------------------------- */

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

START_TEST(test_cli_graph) {
#ifdef AG_CLI_PATH
    char cmd[2048], out[256], dot[256];
    snprintf(out, sizeof out, "%s/check_graph_cli.json", AG_BINARY_DIR);
    snprintf(dot, sizeof dot, "%s/check_graph_cli.dot", AG_BINARY_DIR);
    snprintf(cmd, sizeof cmd, "'%s' graph -m '%s' -z '%s' -p 'Once upon a time, there was' -o '%s' --dot '%s' --max-feature-nodes 200 -q",
             AG_CLI_PATH, ag_test_fixture("models/stories260K.bin"), ag_test_fixture("models/tok512.bin"), out, dot);
    ck_assert_int_eq(run(cmd), 0);
    cJSON *js = ag_test_load_json(out);
    ck_assert_ptr_nonnull(js);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(js, "nodes"));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(js, "metadata"), "prompt")->valuestring, "Once upon a time, there was");
    cJSON_Delete(js);
    FILE *f = fopen(dot, "r");
    ck_assert_ptr_nonnull(f);
    char head[32] = {0};
    ck_assert(fgets(head, sizeof head, f) != NULL);
    fclose(f);
    ck_assert(strncmp(head, "digraph", 7) == 0);
    /* bad input: exit code != 0 */
    snprintf(cmd, sizeof cmd, "'%s' graph -m '%s' -t 1,403 -o '%s' --node-threshold 2 2>/dev/null", AG_CLI_PATH,
             ag_test_fixture("models/stories260K.bin"), out);
    ck_assert_int_ne(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' graph -m '%s' -t 1,403 2>/dev/null", AG_CLI_PATH, ag_test_fixture("models/stories260K.bin"));
    ck_assert_int_ne(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' graph -m '%s' -t 1,403 -o '%s' --targets 9999 2>/dev/null", AG_CLI_PATH,
             ag_test_fixture("models/stories260K.bin"), out);
    ck_assert_int_ne(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' graph -m '%s' -t 1,403 -o '%s' --bogus 2>/dev/null", AG_CLI_PATH,
             ag_test_fixture("models/stories260K.bin"), out);
    ck_assert_int_ne(run(cmd), 0);
    remove(out);
    remove(dot);
#endif
}
END_TEST

int main(void) {
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("graph");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_default_targets);
    tcase_add_test(tc, test_explicit_targets);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_budget_and_queries);
    tcase_add_test(tc, test_progress_and_cancel);
    if (!ag_test_under_valgrind()) tcase_add_test(tc, test_cli_graph);
    suite_add_tcase(s, tc);
    int failed = ag_test_run_suite(s, CK_NORMAL);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
