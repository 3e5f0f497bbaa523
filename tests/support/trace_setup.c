/*
 * trace_setup.c — set-up through the public API for the Check suites (see the header).
 */
#include "trace_setup.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "naive_llama.h"

/* ---- models and traces ----------------------------------------------------------------- */

ag_model *ag_test_load_model(const char *rel, const char *tokenizer_rel) {
    ag_model_options o;
    ck_assert_int_eq(AG_MODEL_OPTIONS_INIT(o), AG_OK);
    if (tokenizer_rel) o.tokenizer_path = ag_test_fixture(tokenizer_rel);
    ag_model *m = NULL;
    ag_status st = ag_model_load(&m, ag_test_fixture(rel), &o);
    ck_assert_msg(st == AG_OK, "ag_model_load(%s) = %d: %s", rel, (int)st, ag_last_error());
    ck_assert_ptr_nonnull(m);
    return m;
}

ag_model_info ag_test_model_info(const ag_model *m) {
    ag_model_info in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    ck_assert_int_eq(ag_model_get_info(m, &in), AG_OK);
    return in;
}

ag_trace *ag_test_trace(const ag_model *m, const int32_t *toks, size_t n) {
    ag_trace *t = NULL;
    ag_status st = ag_trace_create(&t, m, toks, n, NULL);
    ck_assert_msg(st == AG_OK, "ag_trace_create(T=%zu) = %d: %s", n, (int)st, ag_last_error());
    ck_assert_ptr_nonnull(t);
    return t;
}

const float *ag_test_trace_tensor(const ag_trace *t, ag_tensor_kind k, int32_t layer, int64_t *shape, int32_t *ndim) {
    const float *d = NULL;
    int64_t sh[3] = {0, 0, 0};
    int32_t nd = 0;
    ag_status st = ag_trace_tensor(t, k, layer, &d, sh, &nd);
    ck_assert_msg(st == AG_OK, "ag_trace_tensor(kind %d, layer %d) = %d: %s", (int)k, (int)layer, (int)st, ag_last_error());
    ck_assert_ptr_nonnull(d);
    if (shape) memcpy(shape, sh, sizeof sh);
    if (ndim) *ndim = nd;
    return d;
}

void ag_test_random_tokens(int32_t *toks, int n, int V, uint64_t seed) {
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    toks[0] = 1;
    for (int i = 1; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        toks[i] = 3 + (int32_t)((s >> 33) % (uint64_t)(V - 3));
    }
}

void ag_test_story_open(ag_test_story *fx, const char *model_rel, int T) {
    static const int32_t once[5] = {1, 403, 407, 261, 378}; /* "Once upon a time" */
    fx->m = ag_test_load_model(model_rel, NULL);
    for (int i = 0; i < T; i++) fx->tok[i] = i < 5 ? once[i] : (int32_t)((100 + 37 * i) % 512);
    fx->T = T;
    fx->tr = ag_test_trace(fx->m, fx->tok, (size_t)T);
}

void ag_test_story_close(ag_test_story *fx) {
    ag_trace_free(fx->tr);
    ag_model_free(fx->m);
}

/* ---- graphs ---------------------------------------------------------------------------- */

ag_node_info ag_test_node_info(const ag_graph *g, size_t i) {
    ag_node_info ni;
    memset(&ni, 0, sizeof ni);
    ni.struct_size = sizeof ni;
    ck_assert_int_eq(ag_graph_node_info(g, i, &ni), AG_OK);
    return ni;
}

ag_edge *ag_test_node_edges(const ag_graph *g, size_t i, int32_t flags, size_t *n) {
    ag_status st = ag_graph_node_edges(g, i, flags, 0, NULL, 0, n);
    ck_assert_msg(st == AG_OK || (st == AG_ERR_BUFFER_TOO_SMALL && *n > 0), "ag_graph_node_edges(%zu) = %d: %s", i, (int)st,
                  ag_last_error());
    ag_edge *e = malloc((*n ? *n : 1) * sizeof *e);
    ck_assert_ptr_nonnull(e);
    if (*n) ck_assert_int_eq(ag_graph_node_edges(g, i, flags, 0, e, *n, n), AG_OK);
    return e;
}

/* ---- interventions ------------------------------------------------------------------------ */

ag_intervention ag_test_intervention(int32_t kind, int32_t site, int32_t layer, int32_t pos, int32_t index, float value) {
    ag_intervention iv = {.kind = kind, .site = site, .layer = layer, .position = pos, .index = index, .value = value};
    return iv;
}

ag_intervene_options ag_test_intervene_options(int32_t mode, int32_t freeze_attention, int32_t freeze_norms, int32_t freeze_gates) {
    ag_intervene_options o;
    ck_assert_int_eq(AG_INTERVENE_OPTIONS_INIT(o), AG_OK);
    o.mode = mode;
    o.freeze_attention = freeze_attention;
    o.freeze_norms = freeze_norms;
    o.freeze_gates = freeze_gates;
    return o;
}

ag_intervention_result *ag_test_intervene(const ag_trace *t, const ag_intervention *iv, size_t n, const ag_intervene_options *o) {
    ag_intervention_result *r = NULL;
    ag_status st = ag_intervene(&r, t, iv, n, o);
    ck_assert_msg(st == AG_OK, "ag_intervene = %d: %s", (int)st, ag_last_error());
    ck_assert_ptr_nonnull(r);
    return r;
}

const float *ag_test_result_tensor(const ag_intervention_result *r, ag_tensor_kind k, int32_t layer, int32_t delta) {
    const float *d = NULL;
    int64_t sh[3];
    int32_t nd;
    ag_status st = ag_intervention_result_tensor(r, k, layer, delta, &d, sh, &nd);
    ck_assert_msg(st == AG_OK, "ag_intervention_result_tensor = %d: %s", (int)st, ag_last_error());
    return d;
}
