/* The graph writers (src/export/export.c): the viewer JSON parses back with a real JSON
 * library (cJSON) and satisfies the schema essentials (DESIGN §4; circuit-tracer-notes §5,
 * Neuronpedia's graph-schema.json: required fields and types, id formats per feature type,
 * influence as a cumulative rank fraction, links between listed nodes with the graph's
 * signed raw weights, scores and settings under metadata.attrgraph); DOT has layers as ranks
 * and colours by sign; both are deterministic (same graph -> same bytes; two builds of the
 * same trace -> same bytes without timings) and the file and memory variants agree. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "suite_run.h"

static const int32_t PROMPT[] = {1, 403, 407, 261, 378, 365, 283};

typedef struct fixture {
    ag_model *m;
    ag_trace *tr;
    ag_graph *g;
} fixture;

static void fx_open(fixture *fx, int max_nodes) {
    ag_model_options mo;
    AG_MODEL_OPTIONS_INIT(mo);
    mo.tokenizer_path = ag_test_fixture("models/tok512.bin");
    ck_assert_int_eq(ag_model_load(&fx->m, ag_test_fixture("models/stories260K.bin"), &mo), AG_OK);
    ck_assert_int_eq(ag_trace_create(&fx->tr, fx->m, PROMPT, 7, NULL), AG_OK);
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_feature_nodes = max_nodes;
    ck_assert_int_eq(ag_graph_build(&fx->g, fx->tr, &o), AG_OK);
}

static void fx_close(fixture *fx) {
    ag_graph_free(fx->g);
    ag_trace_free(fx->tr);
    ag_model_free(fx->m);
}

static const cJSON *field(const cJSON *o, const char *k) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(f != NULL, "missing field '%s'", k);
    return f;
}

static void check_json(const ag_graph *g, const char *text, int pruned) {
    cJSON *js = cJSON_Parse(text);
    ck_assert_msg(js != NULL, "the JSON does not parse");
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ag_graph_get_info(g, &gi);
    /* metadata */
    const cJSON *md = field(js, "metadata");
    ck_assert(cJSON_IsString(field(md, "slug")));
    ck_assert_str_eq(field(md, "scan")->valuestring, "stories260K.bin");
    ck_assert(cJSON_IsString(field(md, "prompt")));
    const cJSON *pt = field(md, "prompt_tokens");
    ck_assert_int_eq(cJSON_GetArraySize(pt), 7);
    ck_assert_str_eq(cJSON_GetArrayItem(pt, 1)->valuestring, "Once");
    ck_assert_int_eq(field(md, "schema_version")->valueint, 1);
    ck_assert(fabs(field(md, "node_threshold")->valuedouble - 0.8) < 1e-12);
    const cJSON *ag = field(md, "attrgraph");
    ck_assert_str_eq(field(ag, "method")->valuestring, "decomposition");
    ck_assert_str_eq(field(ag, "basis")->valuestring, "neurons");
    ck_assert(fabs(field(ag, "replacement_score")->valuedouble - gi.replacement_score) < 1e-12);
    ck_assert(fabs(field(ag, "completeness_score")->valuedouble - gi.completeness_score) < 1e-12);
    ck_assert(fabs(field(ag, "completeness_score_units_only")->valuedouble - gi.completeness_score_units_only) < 1e-12);
    ck_assert_int_eq((int)field(ag, "n_nodes_total")->valuedouble, (int)gi.n_nodes);
    ck_assert_int_eq((int)field(ag, "n_units_expanded")->valuedouble, (int)gi.n_units);
    /* qParams */
    const cJSON *q = field(js, "qParams");
    ck_assert(cJSON_IsArray(field(q, "pinnedIds")) && cJSON_IsArray(field(q, "supernodes")));
    ck_assert_str_eq(field(q, "linkType")->valuestring, "both");
    /* nodes */
    const cJSON *nodes = field(js, "nodes"), *n;
    int n_nodes = 0, n_logit = 0, n_emb = 0, first_logit_target = -1;
    cJSON *ids = cJSON_CreateObject();
    cJSON_ArrayForEach(n, nodes) {
        const char *id = field(n, "node_id")->valuestring;
        ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(ids, id)); /* unique */
        cJSON_AddTrueToObject(ids, id);
        const cJSON *feat = field(n, "feature"), *layer = field(n, "layer");
        ck_assert(cJSON_IsNumber(feat) && cJSON_IsString(layer) && cJSON_IsNumber(field(n, "ctx_idx")));
        ck_assert(cJSON_IsString(field(n, "jsNodeId")) && cJSON_IsString(field(n, "clerp")));
        const char *ft = field(n, "feature_type")->valuestring;
        double infl = field(n, "influence")->valuedouble;
        ck_assert(infl >= 0.0 && infl <= 1.0 + 1e-9);
        int ctx = field(n, "ctx_idx")->valueint;
        ck_assert(ctx >= 0 && ctx < 7);
        char want[64];
        size_t idx;
        ck_assert_msg(ag_graph_find_node(g, id, &idx) == AG_OK, "node %s is not in the graph", id);
        /* the values are the query API's (written with 9 significant digits) */
        ag_node_info qi = ag_test_node_info(g, idx);
        ck_assert_msg(fabs(infl - qi.influence) <= 1e-8 * fmax(1e-3, qi.influence), "node %s: influence %.9g vs %.9g", id, infl,
                      qi.influence);
        ck_assert_int_eq(ctx, qi.position);
        if (strcmp(ft, "mlp neuron") == 0) {
            int l = atoi(layer->valuestring), i;
            ck_assert_int_eq(sscanf(id, "%*d_%d_%*d", &i), 1);
            snprintf(want, sizeof want, "%d_%d_%d", l, i, ctx);
            ck_assert_str_eq(id, want);
            ck_assert_int_eq((long long)feat->valuedouble, (long long)(l + i) * (l + i + 1) / 2 + i);
            ck_assert(cJSON_IsNumber(field(n, "activation")));
            double act = field(n, "activation")->valuedouble;
            ck_assert_msg(fabs(act - qi.activation) <= 1e-8 * fabs(qi.activation), "node %s: activation %.9g vs %.9g", id, act,
                          qi.activation);
        } else if (strcmp(ft, "mlp reconstruction error") == 0) {
            snprintf(want, sizeof want, "%s_-1_%d", layer->valuestring, ctx);
            ck_assert_str_eq(id, want);
            ck_assert_int_eq(feat->valueint, -1);
        } else if (strcmp(ft, "embedding") == 0) {
            ck_assert_str_eq(layer->valuestring, "E");
            snprintf(want, sizeof want, "E_%d_%d", (int)PROMPT[ctx], ctx);
            ck_assert_str_eq(id, want);
            n_emb++;
        } else {
            ck_assert_str_eq(ft, "logit");
            ck_assert_str_eq(layer->valuestring, "6");
            ck_assert_int_eq(ctx, 6);
            ck_assert(cJSON_IsNumber(field(n, "token_prob")));
            ck_assert_msg(fabs(field(n, "token_prob")->valuedouble - qi.weight) <= 1e-8 * qi.weight, "node %s: token_prob %.9g vs %.9g",
                          id, field(n, "token_prob")->valuedouble, qi.weight);
            if (cJSON_IsTrue(field(n, "is_target_logit"))) {
                ck_assert_int_eq(first_logit_target, -1);
                first_logit_target = n_logit;
            }
            ck_assert(strncmp(field(n, "clerp")->valuestring, "Output \"", 8) == 0);
            n_logit++;
        }
        n_nodes++;
    }
    ck_assert_int_eq(n_emb, 7); /* embeddings and logits are always listed */
    ck_assert_int_eq(n_logit, (int)gi.n_logits);
    ck_assert_int_eq(first_logit_target, 0);
    ck_assert_int_eq(n_nodes, pruned ? (int)gi.n_kept_nodes : (int)gi.n_nodes);
    /* links: between listed nodes, weights = the graph's A[t, s] */
    const cJSON *links = field(js, "links"), *lk;
    int n_links = 0;
    cJSON_ArrayForEach(lk, links) {
        const char *src = field(lk, "source")->valuestring, *tgt = field(lk, "target")->valuestring;
        ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(ids, src));
        ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(ids, tgt));
        double w = field(lk, "weight")->valuedouble;
        if (n_links % 97 == 0) { /* spot-check the weight against the query API */
            size_t s, t, ne = 0;
            ag_graph_find_node(g, src, &s);
            ag_graph_find_node(g, tgt, &t);
            ag_graph_node_edges(g, t, AG_EDGES_IN, 0, NULL, 0, &ne);
            ag_edge *e = malloc(ne * sizeof *e);
            ag_graph_node_edges(g, t, AG_EDGES_IN, 0, e, ne, &ne);
            int found = 0;
            for (size_t k = 0; k < ne; k++)
                if (e[k].source == (int64_t)s) {
                    ck_assert(fabs(e[k].weight - w) <= 1e-7 * fabs(w));
                    ck_assert(!pruned || e[k].kept);
                    found = 1;
                }
            ck_assert(found);
            free(e);
        }
        n_links++;
    }
    ck_assert_int_eq(n_links, pruned ? (int)gi.n_kept_edges : (int)gi.n_edges);
    cJSON_Delete(ids);
    cJSON_Delete(js);
}

START_TEST(test_json_schema) {
    fixture fx;
    fx_open(&fx, 120);
    char *s = NULL;
    size_t len = 0;
    ck_assert_int_eq(ag_graph_json(fx.g, NULL, &s, &len), AG_OK);
    ck_assert_int_eq((int)len, (int)strlen(s));
    check_json(fx.g, s, 1);
    ag_free(s);
    ag_export_options eo;
    AG_EXPORT_OPTIONS_INIT(eo);
    eo.pruned = 0;
    eo.slug = "my-graph";
    eo.prompt = "Once upon a time \"quoted\"\n";
    ck_assert_int_eq(ag_graph_json(fx.g, &eo, &s, &len), AG_OK);
    check_json(fx.g, s, 0);
    cJSON *js = cJSON_Parse(s);
    const cJSON *md = cJSON_GetObjectItem(js, "metadata");
    ck_assert_str_eq(cJSON_GetObjectItem(md, "slug")->valuestring, "my-graph");
    ck_assert_str_eq(cJSON_GetObjectItem(md, "prompt")->valuestring, "Once upon a time \"quoted\"\n");
    cJSON_Delete(js);
    ag_free(s);
    fx_close(&fx);
}
END_TEST

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_int_eq((int)fread(s, 1, (size_t)n, f), (int)n);
    s[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return s;
}

START_TEST(test_files_and_determinism) {
    fixture a, b;
    fx_open(&a, 150);
    fx_open(&b, 150);
    ag_export_options eo;
    AG_EXPORT_OPTIONS_INIT(eo);
    eo.include_timings = 0;
    char *ja, *jb, *da, *db;
    size_t la, lb, lda, ldb;
    ck_assert_int_eq(ag_graph_json(a.g, &eo, &ja, &la), AG_OK);
    ck_assert_int_eq(ag_graph_json(b.g, &eo, &jb, &lb), AG_OK);
    ck_assert_int_eq((int)la, (int)lb);
    ck_assert(memcmp(ja, jb, la) == 0); /* two builds, same bytes */
    ck_assert(strstr(ja, "\"timings\"") == NULL);
    ck_assert_int_eq(ag_graph_dot(a.g, &eo, &da, &lda), AG_OK);
    ck_assert_int_eq(ag_graph_dot(b.g, &eo, &db, &ldb), AG_OK);
    ck_assert_int_eq((int)lda, (int)ldb);
    ck_assert(memcmp(da, db, lda) == 0);
    /* file = memory */
    char path[512], dpath[512];
    snprintf(path, sizeof path, "%s/check_export.json", AG_BINARY_DIR);
    snprintf(dpath, sizeof dpath, "%s/check_export.dot", AG_BINARY_DIR);
    ck_assert_int_eq(ag_graph_write_json(a.g, path, &eo), AG_OK);
    ck_assert_int_eq(ag_graph_write_dot(a.g, dpath, &eo), AG_OK);
    size_t lf;
    char *f = slurp(path, &lf);
    ck_assert(lf == la && memcmp(f, ja, la) == 0);
    free(f);
    f = slurp(dpath, &lf);
    ck_assert(lf == lda && memcmp(f, da, lda) == 0);
    free(f);
    /* with timings: the same graph written twice gives the same bytes */
    char *t1, *t2;
    ck_assert_int_eq(ag_graph_json(a.g, NULL, &t1, NULL), AG_OK);
    ck_assert_int_eq(ag_graph_json(a.g, NULL, &t2, NULL), AG_OK);
    ck_assert_str_eq(t1, t2);
    ck_assert(strstr(t1, "\"timings\"") != NULL);
    ag_free(t1);
    ag_free(t2);
    /* DOT essentials: ranks per layer, colours by sign, one edge line per kept edge */
    ck_assert(strncmp(da, "digraph attrgraph {", 19) == 0);
    ck_assert(strstr(da, "rankdir=BT") != NULL);
    ck_assert(strstr(da, "{ rank=same; /* layer 0 */") != NULL);
    ck_assert(strstr(da, "{ rank=same; /* layer 4 */") != NULL);
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ag_graph_get_info(a.g, &gi);
    int arrows = 0, blue = 0, red = 0;
    for (const char *p = da; (p = strstr(p, " -> ")) != NULL; p += 4) arrows++;
    for (const char *p = da; (p = strstr(p, "#1f5fbf")) != NULL; p += 7) blue++;
    for (const char *p = da; (p = strstr(p, "#c0392b")) != NULL; p += 7) red++;
    ck_assert_int_eq(arrows, (int)gi.n_kept_edges);
    ck_assert_int_eq(blue + red, arrows);
    ck_assert(blue > 0 && red > 0);
    /* errors */
    ck_assert_int_eq(ag_graph_write_json(a.g, "/nonexistent-dir/x.json", NULL), AG_ERR_IO);
    ck_assert(strstr(ag_last_error(), "/nonexistent-dir/x.json") != NULL);
    ck_assert_int_eq(ag_graph_write_json(NULL, path, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_graph_json(a.g, NULL, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
    remove(path);
    remove(dpath);
    ag_free(ja);
    ag_free(jb);
    ag_free(da);
    ag_free(db);
    fx_close(&a);
    fx_close(&b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_json_schema);
    tcase_add_test(tc, test_files_and_determinism);
    suite_add_tcase(s, tc);
    int failed = ag_test_run_suite(s, CK_NORMAL);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
