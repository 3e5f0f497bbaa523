/* The built-in model (issue 5) and its known circuits.
 *
 *  - it is compiled in, loads through ag_model_load_builtin, uses the world's vocabulary, and
 *    the CLI uses it when -m is absent;
 *  - held-out greedy accuracy (ag_world_evaluate) on the tasks it has learned;
 *  - induction: in the attribution graph of a repeated sequence, the predicted token's logit
 *    gets the most influence through the earlier occurrence of that token (the copy source of
 *    the induction head): graph influence summed over the nodes at each position;
 *  - recall: gradient x input and integrated gradients at `embed` put the most weight on the
 *    subject (the country in "the capital of K is"; see embed_attribution for the measure);
 *  - retrieval + fact ("P lives in C. ... P lives in the country of"): the graph's influence
 *    runs through the city's position, units there or downstream promote the country through
 *    the unembedding, ablating them changes the answer, and gradient/IG weight the city most.
 *  The accuracy target (>= 95 % held-out on induction, retrieval + fact and one-hop) is
 *  asserted; two-hop (a stretch goal the model does not learn) is only reported.
 * Heavy parts shrink under valgrind (AG_UNDER_VALGRIND). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "model/model.h"
#include "naive_llama.h"
#include "world/world.h"

#define MAXT 128

static ag_model *builtin(void) {
    ag_model *m = NULL;
    ag_status st = ag_model_load_builtin(&m);
    ck_assert_msg(st == AG_OK, "ag_model_load_builtin: %s (%s)", ag_last_error(), ag_status_string(st));
    return m;
}

static agi_world *world(void) {
    agi_world *w;
    ck_assert_int_eq(agi_world_create(&w, AG_BUILTIN_WORLD_SEED, "test"), AG_OK);
    return w;
}

/* How much weight gradient x input or IG at `embed` puts on each position, for the contrast
 * "answer rather than the runner-up" (the logit difference of `token` and `token_b`, the most
 * likely other answer of the same kind): the L2 norm of each position's attribution row.
 *
 * Why this form (measured on the committed model; README "The built-in model" has the
 * figures): the signed sum of a row cancels, and a single logit with a zero baseline
 * credits BOS and the function words ("the", "of"), which every answer of the kind needs
 * alike; the contrast removes what all answers share, and the magnitude does not cancel.
 * IG's baseline is the blank prompt: BOS, then <unk> at every other position (BOS kept, since
 * zeroing the attention sink moves every position's output, not just one token's). */
static void embed_attribution(const ag_trace *tr, int32_t method, int32_t token, int32_t token_b, const int32_t *tok,
                              int n, double *per_pos) {
    ag_attribute_options o;
    AG_ATTRIBUTE_OPTIONS_INIT(o);
    o.method = method;
    o.site_kind = AG_SITE_EMBED;
    o.target_kind = AG_TARGET_LOGIT_DIFF;
    o.target_token = token;
    o.target_token_b = token_b;
    int32_t blank[MAXT];
    if (method == AG_METHOD_IG) { /* adaptive: at embed fixed rules miss completeness by far */
        o.quadrature = ag_test_under_valgrind() ? AG_QUAD_GAUSS_LEGENDRE : AG_QUAD_ADAPTIVE;
        o.steps = ag_test_under_valgrind() ? 4 : 8;
        blank[0] = tok[0];
        for (int i = 1; i < n; i++) blank[i] = AGI_TOK_UNK;
        o.baseline_kind = AG_BASELINE_TOKENS;
        o.baseline_tokens = blank;
    }
    ag_attribution *a;
    ck_assert_msg(ag_attribute(tr, &o, &a) == AG_OK, "%s", ag_last_error());
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_attribution_shape(a, sh, &nd), AG_OK);
    ck_assert_int_eq(sh[0], n);
    const float *v = ag_attribution_values(a);
    for (int64_t p = 0; p < sh[0]; p++) {
        double s = 0;
        for (int64_t i = 0; i < sh[1]; i++) s += (double)v[p * sh[1] + i] * v[p * sh[1] + i];
        per_pos[p] = sqrt(s);
    }
    ag_attribution_free(a);
}

/* The candidate (other than `answer`) with the largest logit at position `pos`. */
static int32_t runner_up(const ag_trace *tr, int pos, const int32_t *cands, int n_cands, int32_t answer) {
    const float *lg;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(tr, AG_TENSOR_LOGITS, 0, &lg, sh, &nd), AG_OK);
    const float *r = lg + (size_t)pos * (size_t)sh[1];
    int32_t b = -1;
    for (int i = 0; i < n_cands; i++)
        if (cands[i] != answer && (b < 0 || r[cands[i]] > r[b])) b = cands[i];
    return b;
}

/* Graph influence summed over the nodes at each position (logit nodes left out). */
static void influence_by_position(const ag_graph *g, double *per_pos, int T) {
    for (int p = 0; p < T; p++) per_pos[p] = 0;
    size_t nn = ag_graph_n_nodes(g);
    for (size_t i = 0; i < nn; i++) {
        ag_node_info ni;
        ni.struct_size = sizeof ni;
        ck_assert_int_eq(ag_graph_node_info(g, i, &ni), AG_OK);
        if (ni.kind != AG_NODE_LOGIT && ni.position >= 0 && ni.position < T && isfinite(ni.influence_raw))
            per_pos[ni.position] += ni.influence_raw;
    }
}

/* argmax over positions [from, to) */
static int argmax(const double *x, int from, int to) {
    int b = from;
    for (int i = from; i < to; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static ag_graph *graph_for(const ag_trace *tr, int32_t token) {
    ag_graph_options go;
    AG_GRAPH_OPTIONS_INIT(go);
    ag_graph_target tg;
    memset(&tg, 0, sizeof tg);
    tg.kind = AG_GRAPH_TARGET_TOKEN;
    tg.token = token;
    go.targets = &tg;
    go.n_targets = 1;
    go.max_feature_nodes = ag_test_under_valgrind() ? 64 : 2000;
    ag_graph *g;
    ck_assert_msg(ag_graph_build(&g, tr, &go) == AG_OK, "%s", ag_last_error());
    return g;
}

static int top_token(const ag_trace *tr, int pos) {
    const float *lg;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(tr, AG_TENSOR_LOGITS, 0, &lg, sh, &nd), AG_OK);
    const float *r = lg + (size_t)pos * (size_t)sh[1];
    int b = 0;
    for (int v = 1; v < sh[1]; v++)
        if (r[v] > r[b]) b = v;
    return b;
}

/* ---- the model is there ------------------------------------------------------------------- */

START_TEST(test_builtin_loads) {
    ag_model *m = builtin();
    agi_world *w = world();
    ag_model_info info;
    info.struct_size = sizeof info;
    ck_assert_int_eq(ag_model_get_info(m, &info), AG_OK);
    ck_assert_int_eq(info.format, AG_FORMAT_GGUF);
    ck_assert_int_eq(info.has_tokenizer, 1);
    ck_assert_int_eq(info.vocab_size, agi_world_vocab_size(w));
    ck_assert(info.dim >= 64 && info.dim <= 128);
    ck_assert(info.n_layers >= 2 && info.n_layers <= 4);
    ck_assert_str_eq(ag_model_name(m), "builtin");
    /* the text of a prompt tokenizes into world words */
    int32_t t[32];
    size_t n;
    ck_assert_int_eq(ag_tokenize(m, "Alice lives in the country of", 1, t, 32, &n), AG_OK);
    ck_assert_int_eq(n, 7);
    ck_assert_int_eq(t[2], AGI_W_LIVES);
    agi_world_free(w);
    ag_model_free(m);
    ck_assert_int_eq(ag_model_load_builtin(NULL), AG_ERR_INVALID_ARGUMENT);
}
END_TEST

/* The CLI's default model is the built-in one. */
START_TEST(test_cli_default_model) {
#ifdef AG_CLI_PATH
    FILE *f = popen(AG_CLI_PATH " info", "r");
    ck_assert_ptr_nonnull(f);
    char buf[512] = "";
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_msg(strstr(buf, "\"format\":\"gguf\"") != NULL, "attrgraph info without -m printed %s", buf);
    f = popen(AG_CLI_PATH " tokenize -p 'Alice lives in' 2>&1", "r");
    ck_assert_ptr_nonnull(f);
    k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_msg(strstr(buf, "\" lives\"") != NULL, "tokenize printed %s", buf);
#endif
}
END_TEST

/* Held-out greedy accuracy on the tasks the model has learned. */
START_TEST(test_accuracy) {
    ag_model *m = builtin();
    ag_world_eval e;
    e.struct_size = sizeof e;
    int n = ag_test_under_valgrind() ? 8 : 200;
    ck_assert_int_eq(ag_world_evaluate(m, AG_BUILTIN_WORLD_SEED, n, &e), AG_OK);
    fprintf(stderr, "built-in model, %d held-out prompts per task: induction %.3f retrieval %.3f one-hop %.3f two-hop %.3f city %.3f\n",
            n, e.accuracy[AG_WORLD_INDUCTION], e.accuracy[AG_WORLD_RETRIEVAL], e.accuracy[AG_WORLD_ONE_HOP],
            e.accuracy[AG_WORLD_TWO_HOP], e.accuracy[AG_WORLD_CITY]);
    /* Issue 5: >= 95 % on induction, retrieval + fact and one-hop, all held out. */
    const double bar = 0.95;
    ck_assert_msg(e.accuracy[AG_WORLD_INDUCTION] >= bar, "induction accuracy %.3f", e.accuracy[AG_WORLD_INDUCTION]);
    ck_assert_msg(e.accuracy[AG_WORLD_RETRIEVAL] >= bar, "retrieval accuracy %.3f", e.accuracy[AG_WORLD_RETRIEVAL]);
    ck_assert_msg(e.accuracy[AG_WORLD_ONE_HOP] >= bar, "one-hop accuracy %.3f", e.accuracy[AG_WORLD_ONE_HOP]);
    ag_model_free(m);
}
END_TEST

/* ---- induction ---------------------------------------------------------------------------- */

START_TEST(test_induction_circuit) {
    ag_model *m = builtin();
    agi_world *w = world();
    int n_prompts = ag_test_under_valgrind() ? 1 : 8, n_ok = 0, n_run = 0;
    for (int idx = 0; idx < n_prompts; idx++) {
        int32_t tok[MAXT], ans[MAXT], pos[MAXT], info[4];
        int n;
        int k = agi_world_eval_example(w, AGI_TASK_INDUCTION, (uint64_t)idx, tok, MAXT, &n, ans, pos, info);
        ck_assert_int_ge(k, 1);
        /* the last position (2k-1) holds seg[k-2] and predicts seg[k-1], whose earlier
         * occurrence is at position k */
        int seg = info[0], earlier = seg;
        ag_trace *tr;
        ck_assert_int_eq(ag_trace_create(&tr, m, tok, (size_t)n, NULL), AG_OK);
        if (top_token(tr, n - 1) != ans[k - 1]) { /* only explain predictions the model makes */
            ag_trace_free(tr);
            continue;
        }
        n_run++;
        ag_graph *g = graph_for(tr, ans[k - 1]);
        double by_pos[MAXT];
        influence_by_position(g, by_pos, n);
        /* among the context positions: BOS (the attention sink, a constant input) and the
         * last position (where every path lands) excluded */
        int best = argmax(by_pos, 1, n - 1);
        if (best == earlier) n_ok++;
        else
            fprintf(stderr, "induction prompt %d: most influence at position %d (%.3f), earlier occurrence %d (%.3f)\n", idx,
                    best, by_pos[best], earlier, by_pos[earlier]);
        ag_graph_free(g);
        ag_trace_free(tr);
    }
    ck_assert_int_ge(n_run, (n_prompts + 1) / 2);
    ck_assert_msg(n_ok == n_run, "%d of %d induction graphs have their most influential position at the earlier occurrence", n_ok, n_run);
    agi_world_free(w);
    ag_model_free(m);
}
END_TEST

/* ---- recall: gradient and IG weight the subject ------------------------------------------ */

START_TEST(test_recall_attribution) {
    ag_model *m = builtin();
    agi_world *w = world();
    int32_t cities[AGI_WORLD_CITIES];
    for (int c = 0; c < AGI_WORLD_CITIES; c++) cities[c] = agi_world_city_tok(w, c);
    /* the bare question for every country: BOS the capital of K is */
    int n_prompts = ag_test_under_valgrind() ? 1 : AGI_WORLD_COUNTRIES, n_run = 0, ok_g = 0, ok_ig = 0;
    for (int k = 0; k < n_prompts; k++) {
        int32_t tok[6] = {AGI_TOK_BOS, AGI_W_THE, AGI_W_CAPITAL, AGI_W_OF, agi_world_country_tok(w, k), AGI_W_IS};
        int32_t answer = agi_world_city_tok(w, agi_world_capital(w, k));
        int n = 6, subject = 4;
        ag_trace *tr;
        ck_assert_int_eq(ag_trace_create(&tr, m, tok, (size_t)n, NULL), AG_OK);
        if (top_token(tr, n - 1) != answer) {
            ag_trace_free(tr);
            continue;
        }
        n_run++;
        double g[MAXT], ig[MAXT];
        int32_t other = runner_up(tr, n - 1, cities, AGI_WORLD_CITIES, answer);
        embed_attribution(tr, AG_METHOD_GRADIENT, answer, other, tok, n, g);
        embed_attribution(tr, AG_METHOD_IG, answer, other, tok, n, ig);
        /* over the prompt's words before the last one (BOS excluded) */
        ok_g += argmax(g, 1, n - 1) == subject;
        ok_ig += argmax(ig, 1, n - 1) == subject;
        if (argmax(g, 1, n - 1) != subject || argmax(ig, 1, n - 1) != subject)
            fprintf(stderr, "recall prompt %d: gradient x input peaks at %d, IG at %d (subject at %d)\n", k, argmax(g, 1, n - 1),
                    argmax(ig, 1, n - 1), subject);
        ag_trace_free(tr);
    }
    fprintf(stderr, "recall: the subject gets the most weight in %d (gradient x input) and %d (IG) of %d prompts\n", ok_g,
            ok_ig, n_run);
    ck_assert_int_ge(n_run, (n_prompts + 1) / 2);
    ck_assert_msg(ok_g * 4 >= n_run * 3, "gradient x input peaks at the subject in %d of %d prompts", ok_g, n_run);
    ck_assert_msg(ok_ig * 4 >= n_run * 3, "IG peaks at the subject in %d of %d prompts", ok_ig, n_run);
    agi_world_free(w);
    ag_model_free(m);
}
END_TEST

/* ---- retrieval + fact ---------------------------------------------------------------------- */

START_TEST(test_retrieval_circuit) {
    ag_model *m = builtin();
    agi_world *w = world();
    int32_t countries[AGI_WORLD_COUNTRIES];
    for (int k = 0; k < AGI_WORLD_COUNTRIES; k++) countries[k] = agi_world_country_tok(w, k);
    const agi_config *c = &m->cfg;
    int D = c->dim, Hd = c->hidden_dim;
    int n_prompts = ag_test_under_valgrind() ? 1 : 6, n_run = 0;
    for (int idx = 0; idx < n_prompts; idx++) {
        int32_t tok[MAXT], ans[MAXT], pos[MAXT], info[4];
        int n;
        ck_assert_int_ge(agi_world_eval_example(w, AGI_TASK_RETRIEVAL, (uint64_t)idx, tok, MAXT, &n, ans, pos, info), 1);
        int city_pos = info[0], K = info[3];
        ag_trace *tr;
        ck_assert_int_eq(ag_trace_create(&tr, m, tok, (size_t)n, NULL), AG_OK);
        if (top_token(tr, n - 1) != ans[0]) {
            ag_trace_free(tr);
            continue;
        }
        n_run++;
        /* (1) influence: among the context positions (before the question), the city's */
        ag_graph *g = graph_for(tr, ans[0]);
        int q0 = n - 6; /* "P lives in the country of" */
        double infl[MAXT];
        influence_by_position(g, infl, n);
        size_t nn = ag_graph_n_nodes(g);
        ck_assert_msg(argmax(infl, 1, q0) == city_pos, "prompt %d: influence peaks at %d, city at %d", idx, argmax(infl, 1, q0),
                      city_pos);
        /* (2) the kept units at the city's position and at the last position, read through the
         * unembedding (final norm gain x classifier row), promote the country over the others */
        double score[AGI_WORLD_COUNTRIES] = {0};
        ag_intervention items[256];
        size_t n_items = 0;
        for (size_t i = 0; i < nn && n_items < 256; i++) {
            ag_node_info ni;
            ni.struct_size = sizeof ni;
            ck_assert_int_eq(ag_graph_node_info(g, i, &ni), AG_OK);
            if (ni.kind != AG_NODE_UNIT || !ni.kept || (ni.position != city_pos && ni.position != n - 1)) continue;
            const float *w2 = m->w.layers[ni.layer].w2;
            for (int k = 0; k < AGI_WORLD_COUNTRIES; k++) {
                const float *row = m->w.wcls + (size_t)agi_world_country_tok(w, k) * D;
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)w2[(size_t)d * Hd + ni.index] * m->w.rms_final[d] * row[d];
                score[k] += ni.activation * s;
            }
            memset(&items[n_items], 0, sizeof items[n_items]);
            items[n_items].kind = AG_INTERVENE_SCALE;
            items[n_items].site = AG_SITE_MLP;
            items[n_items].layer = ni.layer;
            items[n_items].position = ni.position;
            items[n_items].index = ni.index;
            items[n_items].value = 0.0f;
            n_items++;
        }
        int bestk = 0;
        for (int k = 1; k < AGI_WORLD_COUNTRIES; k++)
            if (score[k] > score[bestk]) bestk = k;
        ck_assert_msg(bestk == K, "prompt %d: the units promote country %d, the answer is %d", idx, bestk, K);
        /* (3) ablating them (free mode: the real model reruns) changes the answer */
        ag_intervention_result *res;
        ck_assert_msg(ag_intervene(&res, tr, items, n_items, NULL) == AG_OK, "%s", ag_last_error());
        const float *lg;
        ck_assert_int_eq(ag_intervention_result_logits(res, -1, 0, &lg), AG_OK);
        int top = 0;
        for (int v = 1; v < c->vocab_size; v++)
            if (lg[v] > lg[top]) top = v;
        ck_assert_msg(top != ans[0], "prompt %d: ablating %zu units leaves the answer", idx, n_items);
        ag_intervention_result_free(res);
        /* (4) gradient x input and IG at embed weight the city most among the context words */
        double gr[MAXT], ig[MAXT];
        int32_t other = runner_up(tr, n - 1, countries, AGI_WORLD_COUNTRIES, ans[0]);
        embed_attribution(tr, AG_METHOD_GRADIENT, ans[0], other, tok, n, gr);
        embed_attribution(tr, AG_METHOD_IG, ans[0], other, tok, n, ig);
        ck_assert_int_eq(argmax(gr, 1, q0), city_pos);
        ck_assert_int_eq(argmax(ig, 1, q0), city_pos);
        ag_graph_free(g);
        ag_trace_free(tr);
    }
    ck_assert_int_ge(n_run, (n_prompts + 1) / 2);
    agi_world_free(w);
    ag_model_free(m);
}
END_TEST

static Suite *builtin_suite(void) {
    Suite *s = suite_create("builtin");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_builtin_loads);
    tcase_add_test(tc, test_cli_default_model);
    tcase_add_test(tc, test_accuracy);
    tcase_add_test(tc, test_induction_circuit);
    tcase_add_test(tc, test_recall_attribution);
    tcase_add_test(tc, test_retrieval_circuit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(builtin_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
