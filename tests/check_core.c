/*
 * check_core — the conventions every public function follows (attrgraph.h CONVENTIONS):
 * pinned status codes and their strings, the thread-local last error, *_free(NULL),
 * options structs across struct sizes, ag_model_get_info, version queries, model facts of
 * both fixture models, and sharing one model between threads.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attrgraph.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "suite_run.h"

#define STORIES_BIN "models/stories260K.bin"
#define STORIES_GGUF "models/stories260K.gguf"
#define XS_BIN "models/llama2xs_model.bin"
#define TOK512 "models/tok512.bin"

/* ---- status codes ---------------------------------------------------------------------- */

START_TEST(test_status_values_and_strings) {
    /* the values are pinned forever */
    ck_assert_int_eq(AG_OK, 0);
    ck_assert_int_eq(AG_ERR_INVALID_ARGUMENT, -1);
    ck_assert_int_eq(AG_ERR_OUT_OF_MEMORY, -2);
    ck_assert_int_eq(AG_ERR_IO, -3);
    ck_assert_int_eq(AG_ERR_FORMAT, -4);
    ck_assert_int_eq(AG_ERR_UNSUPPORTED, -5);
    ck_assert_int_eq(AG_ERR_STATE, -6);
    ck_assert_int_eq(AG_ERR_VERSION, -7);
    ck_assert_int_eq(AG_ERR_NOT_FOUND, -8);
    ck_assert_int_eq(AG_ERR_BUFFER_TOO_SMALL, -9);
    ck_assert_int_eq(AG_ERR_CANCELLED, -10);
    ck_assert_int_eq(AG_ERR_NUMERIC, -11);
    ck_assert_int_eq(AG_ERR_INTERNAL, -12);
    ck_assert_int_eq(AG_FORMAT_LLAMA2C, 1);
    ck_assert_int_eq(AG_FORMAT_GGUF, 2);
    ck_assert_int_eq(AG_ARCH_LLAMA, 1);

    /* every known code has its own non-empty text; unknown codes share "unknown status" */
    const char *unknown = ag_status_string((ag_status)-13);
    ck_assert_ptr_nonnull(unknown);
    ck_assert_str_eq(unknown, "unknown status");
    ck_assert_str_eq(ag_status_string((ag_status)1), "unknown status");
    ck_assert_str_eq(ag_status_string((ag_status)-1000), "unknown status");
    ck_assert_str_eq(ag_status_string((ag_status)12345), "unknown status");
    const char *s[13];
    for (int c = 0; c >= -12; c--) {
        s[-c] = ag_status_string((ag_status)c);
        ck_assert_ptr_nonnull(s[-c]);
        ck_assert_msg(strlen(s[-c]) > 0, "status %d has an empty string", c);
        ck_assert_msg(strcmp(s[-c], unknown) != 0, "status %d is 'unknown status'", c);
        ck_assert_msg(strchr(s[-c], '\n') == NULL, "status %d string has a newline", c);
        for (int d = 0; d < -c; d++) ck_assert_msg(strcmp(s[d], s[-c]) != 0, "statuses %d and %d share '%s'", -d, c, s[d]);
    }
    /* static storage: the same pointer every time */
    ck_assert_ptr_eq(ag_status_string(AG_ERR_IO), ag_status_string(AG_ERR_IO));
}
END_TEST

/* ---- last error ------------------------------------------------------------------------- */

/* Trigger a failure that names `func` on the calling thread. */
static void fail_trace_options_init(void) { ck_assert_int_eq(ag_trace_options_init(NULL, 16), AG_ERR_INVALID_ARGUMENT); }
static void fail_model_load_missing(void) {
    ag_model *m = (ag_model *)0x1;
    ck_assert_int_eq(ag_model_load(&m, "/nonexistent/dir/model-xyz.bin", NULL), AG_ERR_IO);
    ck_assert_ptr_null(m);
}

typedef struct thread_err {
    char at_start[64];
    char after_own[1024];
    int ok;
} thread_err;

static void *thread_errors(void *arg) {
    thread_err *te = arg;
    snprintf(te->at_start, sizeof te->at_start, "%s", ag_last_error());
    ag_model *m = (ag_model *)0x1;
    te->ok = ag_model_load(&m, "/nonexistent/other-thread.bin", NULL) == AG_ERR_IO && m == NULL;
    snprintf(te->after_own, sizeof te->after_own, "%s", ag_last_error());
    return NULL;
}

START_TEST(test_last_error_semantics) {
    /* a fresh thread starts with "" (Check may run this test in a forked child after other
     * calls, so test that on a new thread) */
    fail_trace_options_init();
    const char *e = ag_last_error();
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(e, "ag_trace_options_init"));
    ck_assert_ptr_nonnull(strstr(e, "opts"));
    ck_assert_ptr_null(strchr(e, '\n')); /* one line */

    /* overwritten by the next failure */
    fail_model_load_missing();
    e = ag_last_error();
    ck_assert_ptr_nonnull(strstr(e, "ag_model_load"));
    ck_assert_ptr_nonnull(strstr(e, "/nonexistent/dir/model-xyz.bin"));
    ck_assert_ptr_null(strstr(e, "ag_trace_options_init"));
    ck_assert_ptr_null(strchr(e, '\n'));
    char main_msg[1024];
    snprintf(main_msg, sizeof main_msg, "%s", e);

    /* thread-local: another thread sees "" and its own failure, and does not disturb ours */
    thread_err te;
    memset(&te, 0, sizeof te);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_errors, &te), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_str_eq(te.at_start, "");
    ck_assert(te.ok);
    ck_assert_ptr_nonnull(strstr(te.after_own, "other-thread.bin"));
    ck_assert_str_eq(ag_last_error(), main_msg);

    /* calls that never fail leave it alone */
    (void)ag_status_string(AG_ERR_IO);
    (void)ag_version_number();
    (void)ag_version_string();
    ag_model_free(NULL);
    ag_trace_free(NULL);
    ag_free(NULL);
    ck_assert_str_eq(ag_last_error(), main_msg);

    /* a successful load / trace clears it */
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ck_assert_str_eq(ag_last_error(), "");
    fail_trace_options_init();
    ck_assert_str_ne(ag_last_error(), "");
    const int32_t toks[3] = {1, 403, 407};
    ag_trace *t = NULL;
    ck_assert_int_eq(ag_trace_create(&t, m, toks, 3, NULL), AG_OK);
    ck_assert_str_eq(ag_last_error(), "");
    ag_trace_free(t);
    ag_model_free(m);
}
END_TEST

/* ---- free(NULL) ------------------------------------------------------------------------- */

START_TEST(test_free_null) {
    ag_model_free(NULL);
    ag_trace_free(NULL);
    ag_free(NULL);
}
END_TEST

/* ---- options structs -------------------------------------------------------------------- */

/* An older caller's ag_model_options: only the first two fields. */
typedef struct old_model_options {
    size_t struct_size;
    const char *tokenizer_path;
} old_model_options;

/* A newer caller's: ours plus a field this library does not know. */
typedef struct new_model_options {
    ag_model_options base;
    uint64_t future_field;
} new_model_options;

START_TEST(test_model_options_sizes) {
    /* defaults */
    ag_model_options o;
    memset(&o, 0xAB, sizeof o);
    ck_assert_int_eq(ag_model_options_init(&o, sizeof o), AG_OK);
    ck_assert_uint_eq(o.struct_size, sizeof o);
    ck_assert_ptr_null(o.tokenizer_path);
    ck_assert(o.rms_eps == 1e-5f);
    ck_assert(o.rope_theta == 10000.0f);
    ck_assert_int_eq(ag_model_options_init(NULL, sizeof o), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_model_options_init"));
    ck_assert_int_eq(ag_model_options_init(&o, 0), AG_ERR_VERSION);
    ck_assert_int_eq(ag_model_options_init(&o, sizeof(size_t) - 1), AG_ERR_VERSION);

    /* an older, smaller struct: init writes only its bytes; load defaults the rest */
    struct {
        old_model_options old;
        unsigned char guard[32];
    } g;
    memset(&g, 0xCD, sizeof g);
    ck_assert_int_eq(ag_model_options_init((ag_model_options *)(void *)&g.old, sizeof g.old), AG_OK);
    ck_assert_uint_eq(g.old.struct_size, sizeof g.old);
    ck_assert_ptr_null(g.old.tokenizer_path);
    for (size_t i = 0; i < sizeof g.guard; i++) ck_assert_uint_eq(g.guard[i], 0xCD);
    g.old.tokenizer_path = ag_test_fixture(TOK512);
    ag_model *m = NULL;
    ck_assert_int_eq(ag_model_load(&m, ag_test_fixture(STORIES_BIN), (const ag_model_options *)(void *)&g.old), AG_OK);
    ag_model_info in = ag_test_model_info(m);
    ck_assert_int_eq(in.has_tokenizer, 1);
    ck_assert(in.rms_eps == 1e-5f);
    ck_assert(in.rope_theta == 10000.0f);
    ag_model_free(m);

    /* a newer, larger struct: zero tail accepted, non-zero tail rejected */
    new_model_options n;
    memset(&n, 0xEE, sizeof n);
    ck_assert_int_eq(ag_model_options_init(&n.base, sizeof n), AG_OK);
    ck_assert_uint_eq(n.base.struct_size, sizeof n);
    ck_assert_uint_eq(n.future_field, 0);
    ck_assert(n.base.rms_eps == 1e-5f);
    m = NULL;
    ck_assert_int_eq(ag_model_load(&m, ag_test_fixture(STORIES_BIN), &n.base), AG_OK);
    ag_model_free(m);
    n.future_field = 1;
    m = (ag_model *)0x1;
    ck_assert_int_eq(ag_model_load(&m, ag_test_fixture(STORIES_BIN), &n.base), AG_ERR_VERSION);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "struct_size"));

    /* a struct_size that is not even a size_t */
    ag_model_options z;
    ck_assert_int_eq(AG_MODEL_OPTIONS_INIT(z), AG_OK);
    z.struct_size = 0;
    m = (ag_model *)0x1;
    ck_assert_int_eq(ag_model_load(&m, ag_test_fixture(STORIES_BIN), &z), AG_ERR_VERSION);
    ck_assert_ptr_null(m);

    /* options reach the model: a different eps and theta for a llama2.c file */
    ck_assert_int_eq(AG_MODEL_OPTIONS_INIT(z), AG_OK);
    z.rms_eps = 1e-6f;
    z.rope_theta = 500000.0f;
    ck_assert_int_eq(ag_model_load(&m, ag_test_fixture(STORIES_BIN), &z), AG_OK);
    in = ag_test_model_info(m);
    ck_assert(in.rms_eps == 1e-6f);
    ck_assert(in.rope_theta == 500000.0f);
    /* ... and the forward uses them: logits equal the double-precision oracle run with the same
     * eps and theta, and differ from the oracle at the file's defaults */
    {
        enum { T = 24 };
        int32_t tok[T];
        for (int i = 0; i < T; i++) tok[i] = i == 0 ? 1 : (int32_t)((i * 37 + 11) % 512);
        nl_model *nm = nl_load_bin(ag_test_fixture(STORIES_BIN));
        ck_assert_ptr_nonnull(nm);
        size_t nv = (size_t)T * (size_t)nm->c.vocab_size;
        double *ref = malloc(sizeof(double) * nv), *dflt = malloc(sizeof(double) * nv);
        ck_assert_int_eq(nl_forward_i32(nm, tok, T, dflt, NULL), 0);
        nm->c.rms_eps = 1e-6;
        nm->c.rope_theta = 500000.0;
        ck_assert_int_eq(nl_forward_i32(nm, tok, T, ref, NULL), 0);
        ag_trace *tr;
        ck_assert_int_eq(ag_trace_create(&tr, m, tok, T, NULL), AG_OK);
        const float *lg;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_trace_tensor(tr, AG_TENSOR_LOGITS, 0, &lg, sh, &nd), AG_OK);
        double err = ag_rel_err_fd(lg, ref, nv), err_default = ag_rel_err_fd(lg, dflt, nv);
        ck_assert_msg(err < 1e-4, "eps 1e-6, theta 5e5: relative logit error %g against the oracle", err);
        ck_assert_msg(err_default > 100 * err, "the options change nothing: error %g vs %g at the defaults", err, err_default);
        ag_trace_free(tr);
        free(ref);
        free(dflt);
        nl_free(nm);
    }
    ag_model_free(m);
}
END_TEST

typedef struct old_generate_options {
    size_t struct_size;
    int32_t max_new_tokens;
} old_generate_options;

typedef struct new_generate_options {
    ag_generate_options base;
    uint64_t future_field;
} new_generate_options;

typedef struct new_trace_options {
    ag_trace_options base;
    uint64_t future_field[2];
} new_trace_options;

START_TEST(test_trace_generate_options_sizes) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    const int32_t bos[1] = {1};

    /* trace options */
    ag_trace_options to;
    memset(&to, 0x5A, sizeof to);
    ck_assert_int_eq(ag_trace_options_init(&to, sizeof to), AG_OK);
    ck_assert_uint_eq(to.struct_size, sizeof to);
    ck_assert_int_eq(to.reserved, 0);
    ck_assert_int_eq(ag_trace_options_init(&to, 0), AG_ERR_VERSION);
    ck_assert_int_eq(ag_trace_options_init(NULL, sizeof to), AG_ERR_INVALID_ARGUMENT);
    new_trace_options nt;
    memset(&nt, 0x5A, sizeof nt);
    ck_assert_int_eq(ag_trace_options_init(&nt.base, sizeof nt), AG_OK);
    ck_assert_uint_eq(nt.future_field[0] | nt.future_field[1], 0);
    ag_trace *t = NULL;
    ck_assert_int_eq(ag_trace_create(&t, m, bos, 1, &nt.base), AG_OK);
    ag_trace_free(t);
    nt.future_field[1] = 7;
    t = (ag_trace *)0x1;
    ck_assert_int_eq(ag_trace_create(&t, m, bos, 1, &nt.base), AG_ERR_VERSION);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_trace_create"));
    /* the oldest possible trace options: struct_size only */
    size_t only_size;
    ck_assert_int_eq(ag_trace_options_init((ag_trace_options *)(void *)&only_size, sizeof only_size), AG_OK);
    ck_assert_uint_eq(only_size, sizeof only_size);
    ck_assert_int_eq(ag_trace_create(&t, m, bos, 1, (const ag_trace_options *)(void *)&only_size), AG_OK);
    ag_trace_free(t);

    /* generate options: an old struct (struct_size + max_new_tokens) gets greedy defaults */
    struct {
        old_generate_options old;
        unsigned char guard[16];
    } g;
    memset(&g, 0x77, sizeof g);
    ck_assert_int_eq(ag_generate_options_init((ag_generate_options *)(void *)&g.old, sizeof g.old), AG_OK);
    ck_assert_uint_eq(g.old.struct_size, sizeof g.old);
    ck_assert_int_eq(g.old.max_new_tokens, 256);
    for (size_t i = 0; i < sizeof g.guard; i++) ck_assert_uint_eq(g.guard[i], 0x77);
    g.old.max_new_tokens = 12;
    int32_t a[12], b[12];
    size_t na = 0, nb = 0;
    ck_assert_int_eq(ag_generate(m, bos, 1, (const ag_generate_options *)(void *)&g.old, a, 12, &na), AG_OK);
    ag_generate_options go;
    ck_assert_int_eq(AG_GENERATE_OPTIONS_INIT(go), AG_OK);
    go.max_new_tokens = 12;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, b, 12, &nb), AG_OK);
    ck_assert_uint_eq(na, 12);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(a, b, na * sizeof a[0]);
    /* NULL options = all defaults (256 new tokens: needs the room) */
    int32_t *big = malloc(256 * sizeof *big);
    ck_assert_ptr_nonnull(big);
    size_t nbig = 0;
    ck_assert_int_eq(ag_generate(m, bos, 1, NULL, big, 256, &nbig), AG_OK);
    ck_assert_uint_ge(nbig, 12);
    ck_assert_mem_eq(big, b, 12 * sizeof b[0]);
    ck_assert_int_eq(ag_generate(m, bos, 1, NULL, big, 255, &nbig), AG_ERR_BUFFER_TOO_SMALL);
    free(big);

    new_generate_options ng;
    memset(&ng, 0x33, sizeof ng);
    ck_assert_int_eq(ag_generate_options_init(&ng.base, sizeof ng), AG_OK);
    ck_assert_uint_eq(ng.future_field, 0);
    ng.base.max_new_tokens = 3;
    ck_assert_int_eq(ag_generate(m, bos, 1, &ng.base, a, 12, &na), AG_OK);
    ck_assert_uint_eq(na, 3);
    ng.future_field = 0xFF;
    ck_assert_int_eq(ag_generate(m, bos, 1, &ng.base, a, 12, &na), AG_ERR_VERSION);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_generate"));
    ck_assert_int_eq(ag_generate_options_init(&go, 3), AG_ERR_VERSION);
    ck_assert_int_eq(ag_generate_options_init(NULL, sizeof go), AG_ERR_INVALID_ARGUMENT);
    ag_model_free(m);
}
END_TEST

/* ---- model info ------------------------------------------------------------------------- */

START_TEST(test_model_info_struct_size) {
    ag_model *m = ag_test_load_model(STORIES_BIN, TOK512);
    ag_model_info in;
    memset(&in, 0, sizeof in);
    const size_t too_small[] = {0, 1, sizeof(size_t), offsetof(ag_model_info, format) + sizeof(int32_t),
                                offsetof(ag_model_info, dim)};
    for (size_t k = 0; k < sizeof too_small / sizeof too_small[0]; k++) {
        in.struct_size = too_small[k];
        ck_assert_msg(ag_model_get_info(m, &in) == AG_ERR_VERSION, "struct_size %zu accepted", too_small[k]);
        ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_model_get_info"));
        ck_assert_ptr_nonnull(strstr(ag_last_error(), "struct_size"));
    }
    in.struct_size = sizeof in;
    ck_assert_int_eq(ag_model_get_info(NULL, &in), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "model"));
    ck_assert_int_eq(ag_model_get_info(m, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "info"));

    /* an older caller's shorter struct: fields before bos_id are filled, nothing beyond */
    union {
        ag_model_info in;
        unsigned char bytes[sizeof(ag_model_info) + 16];
    } u;
    memset(&u, 0xC3, sizeof u);
    const size_t short_size = offsetof(ag_model_info, bos_id);
    u.in.struct_size = short_size;
    ck_assert_int_eq(ag_model_get_info(m, &u.in), AG_OK);
    ck_assert_int_eq(u.in.dim, 64);
    ck_assert_int_eq(u.in.n_params, 260032);
    ck_assert(u.in.rope_theta == 10000.0f);
    int untouched = 1;
    for (size_t i = short_size; i < sizeof u.bytes; i++) untouched &= u.bytes[i] == 0xC3;
    ck_assert_msg(untouched, "ag_model_get_info wrote past struct_size");

    /* a newer caller's larger struct works too */
    memset(&u, 0, sizeof u);
    u.in.struct_size = sizeof u.bytes;
    ck_assert_int_eq(ag_model_get_info(m, &u.in), AG_OK);
    ck_assert_int_eq(u.in.hidden_dim, 172);
    ck_assert_int_eq(u.in.eos_id, 2);
    ag_model_free(m);
}
END_TEST

/* n_params from the shapes (weights only; the classifier once when shared). */
static int64_t n_params_formula(int64_t D, int64_t Hd, int64_t L, int64_t H, int64_t KVH, int64_t V, int shared) {
    int64_t hs = D / H, KV = KVH * hs;
    int64_t per_layer = D /* rms_att */ + D * D /* wq */ + KV * D /* wk */ + KV * D /* wv */ + D * D /* wo */ +
                        D /* rms_ffn */ + Hd * D /* w1 */ + D * Hd /* w2 */ + Hd * D /* w3 */;
    return V * D /* embedding */ + L * per_layer + D /* rms_final */ + (shared ? 0 : V * D);
}

static long long file_size(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (long long)st.st_size;
}

START_TEST(test_model_info_values) {
    /* stories260K.bin */
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    ck_assert_uint_eq(in.struct_size, sizeof in);
    ck_assert_int_eq(in.format, AG_FORMAT_LLAMA2C);
    ck_assert_int_eq(in.arch, AG_ARCH_LLAMA);
    ck_assert_int_eq(in.dim, 64);
    ck_assert_int_eq(in.hidden_dim, 172);
    ck_assert_int_eq(in.n_layers, 5);
    ck_assert_int_eq(in.n_heads, 8);
    ck_assert_int_eq(in.n_kv_heads, 4);
    ck_assert_int_eq(in.head_dim, 8);
    ck_assert_int_eq(in.vocab_size, 512);
    ck_assert_int_eq(in.seq_len, 512);
    ck_assert_int_eq(in.shared_classifier, 1);
    ck_assert_int_eq(in.has_tokenizer, 0);
    ck_assert_int_eq(in.n_params, 260032);
    ck_assert_int_eq(n_params_formula(64, 172, 5, 8, 4, 512, 1), 260032);
    ck_assert(in.rms_eps == 1e-5f);
    ck_assert(in.rope_theta == 10000.0f);
    ck_assert_str_eq(ag_model_name(m), ag_test_fixture(STORIES_BIN));
    ag_model_free(m);
    /* with the tokenizer: BOS/EOS known */
    m = ag_test_load_model(STORIES_BIN, TOK512);
    in = ag_test_model_info(m);
    ck_assert_int_eq(in.has_tokenizer, 1);
    ck_assert_int_eq(in.bos_id, 1);
    ck_assert_int_eq(in.eos_id, 2);
    ag_model_free(m);

    /* llama2xs: dim 64, hidden 192, 5 layers, 8 heads, 4 kv heads, vocab 512, seq_len 256 */
    m = ag_test_load_model(XS_BIN, NULL);
    in = ag_test_model_info(m);
    ck_assert_int_eq(in.format, AG_FORMAT_LLAMA2C);
    ck_assert_int_eq(in.dim, 64);
    ck_assert_int_eq(in.hidden_dim, 192);
    ck_assert_int_eq(in.n_layers, 5);
    ck_assert_int_eq(in.n_heads, 8);
    ck_assert_int_eq(in.n_kv_heads, 4);
    ck_assert_int_eq(in.head_dim, 8);
    ck_assert_int_eq(in.vocab_size, 512);
    ck_assert_int_eq(in.seq_len, 256);
    ck_assert_int_eq(in.shared_classifier, 1);
    const int64_t want = n_params_formula(64, 192, 5, 8, 4, 512, 1);
    ck_assert_int_eq(want, 279232);
    ck_assert_int_eq(in.n_params, want);
    ag_model_free(m);

    /* cross-check against the files: 28-byte header + float32 weights + the legacy RoPE
     * tables (seq_len x head_size floats) */
    ck_assert_int_eq(file_size(ag_test_fixture(STORIES_BIN)), 28 + 4 * (260032 + 512 * 8));
    ck_assert_int_eq(file_size(ag_test_fixture(XS_BIN)), 28 + 4 * (want + 256 * 8));

    /* GGUF: same shapes; its explicit `output` tensor is the classifier */
    m = ag_test_load_model(STORIES_GGUF, NULL);
    in = ag_test_model_info(m);
    ck_assert_int_eq(in.format, AG_FORMAT_GGUF);
    ck_assert_int_eq(in.arch, AG_ARCH_LLAMA);
    ck_assert_int_eq(in.hidden_dim, 172);
    ck_assert_int_eq(in.n_params, n_params_formula(64, 172, 5, 8, 4, 512, in.shared_classifier));
    ck_assert_int_eq(in.has_tokenizer, 1);
    ag_model_free(m);
}
END_TEST

START_TEST(test_load_memory) {
    const char *path = ag_test_fixture(STORIES_BIN);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    long long sz = file_size(path);
    unsigned char *buf = malloc((size_t)sz);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);

    const int32_t toks[5] = {1, 403, 407, 261, 378};
    ag_model *mf = ag_test_load_model(STORIES_BIN, NULL), *mb = NULL, *mc = NULL;
    ck_assert_int_eq(ag_model_load_memory(&mb, buf, (size_t)sz, 0, "borrowed", NULL), AG_OK);
    ck_assert_int_eq(ag_model_load_memory(&mc, buf, (size_t)sz, 1, NULL, NULL), AG_OK);
    ck_assert_str_eq(ag_model_name(mb), "borrowed");
    ck_assert_ptr_nonnull(ag_model_name(mc));
    memset(buf, 0xFF, (size_t)sz); /* the copy must not see this */
    free(buf);
    ag_model_free(mb); /* borrowed bytes are gone: free it first */
    ag_trace *tf = NULL, *tc = NULL;
    ck_assert_int_eq(ag_trace_create(&tf, mf, toks, 5, NULL), AG_OK);
    ck_assert_int_eq(ag_trace_create(&tc, mc, toks, 5, NULL), AG_OK);
    const float *lf, *lc;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(tf, AG_TENSOR_LOGITS, 0, &lf, sh, &nd), AG_OK);
    ck_assert_int_eq(ag_trace_tensor(tc, AG_TENSOR_LOGITS, 0, &lc, sh, &nd), AG_OK);
    ck_assert_mem_eq(lf, lc, 5 * 512 * sizeof(float));
    ag_trace_free(tf);
    ag_trace_free(tc);
    ag_model_free(mc);
    ag_model_free(mf);

    ag_model *m = (ag_model *)0x1;
    ck_assert_int_eq(ag_model_load_memory(&m, NULL, 100, 0, "x", NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(ag_model_load_memory(NULL, toks, sizeof toks, 0, "x", NULL), AG_ERR_INVALID_ARGUMENT);
    m = (ag_model *)0x1;
    ck_assert_int_eq(ag_model_load(&m, NULL, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "path"));
    ck_assert_int_eq(ag_model_load(NULL, path, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "out"));
}
END_TEST

/* ---- version ------------------------------------------------------------------------------ */

START_TEST(test_version) {
    ck_assert_uint_eq(ag_version_number(), AG_VERSION_NUMBER);
    ck_assert_str_eq(ag_version_string(), AG_VERSION_STRING);
    ck_assert_int_eq(AG_VERSION_NUMBER, AG_VERSION_MAJOR * 10000 + AG_VERSION_MINOR * 100 + AG_VERSION_PATCH);
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", AG_VERSION_MAJOR, AG_VERSION_MINOR, AG_VERSION_PATCH);
    ck_assert_str_eq(AG_VERSION_STRING, buf);
    ck_assert_ptr_eq(ag_version_string(), ag_version_string());
    ck_assert(AG_VERSION_CHECK(0, 1, 0));
    ck_assert(AG_VERSION_CHECK(AG_VERSION_MAJOR, AG_VERSION_MINOR, AG_VERSION_PATCH));
    ck_assert(!AG_VERSION_CHECK(AG_VERSION_MAJOR, AG_VERSION_MINOR, AG_VERSION_PATCH + 1));
    ck_assert(!AG_VERSION_CHECK(AG_VERSION_MAJOR + 1, 0, 0));
    ck_assert_int_eq(AG_ABI_VERSION, AG_VERSION_MAJOR);
}
END_TEST

/* ---- concurrency -------------------------------------------------------------------------- */

#define N_PROMPTS 4
#define PROMPT_LEN 24

typedef struct worker {
    const ag_model *m;
    const int32_t (*prompts)[PROMPT_LEN];
    int iters;
    float *logits; /* [N_PROMPTS][PROMPT_LEN][V] from the last iteration */
    int32_t gen[16];
    size_t n_gen;
    int mismatches; /* iterations whose logits differ from the first */
    int failures;
    char err[256];
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    const size_t per = (size_t)PROMPT_LEN * 512;
    for (int it = 0; it < w->iters; it++) {
        for (int p = 0; p < N_PROMPTS; p++) {
            ag_trace *t = NULL;
            if (ag_trace_create(&t, w->m, w->prompts[p], PROMPT_LEN, NULL) != AG_OK) {
                w->failures++;
                continue;
            }
            const float *lg;
            int64_t sh[3];
            int32_t nd;
            if (ag_trace_tensor(t, AG_TENSOR_LOGITS, 0, &lg, sh, &nd) != AG_OK) w->failures++;
            else if (it == 0) memcpy(w->logits + (size_t)p * per, lg, per * sizeof *lg);
            else if (memcmp(w->logits + (size_t)p * per, lg, per * sizeof *lg) != 0) w->mismatches++;
            ag_trace_free(t);
        }
        /* an error on this thread must not leak into the other one */
        ag_trace *bad = NULL;
        if (ag_trace_create(&bad, w->m, w->prompts[0], 0, NULL) != AG_ERR_INVALID_ARGUMENT) w->failures++;
        snprintf(w->err, sizeof w->err, "%s", ag_last_error());
    }
    ag_generate_options go;
    ag_generate_options_init(&go, sizeof go);
    go.max_new_tokens = 16;
    go.temperature = 0.9f;
    go.seed = 2024;
    if (ag_generate(w->m, w->prompts[0], 5, &go, w->gen, 16, &w->n_gen) != AG_OK) w->failures++;
    return NULL;
}

START_TEST(test_threads_share_model) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    int32_t prompts[N_PROMPTS][PROMPT_LEN];
    uint64_t s = 88172645463325252ULL;
    for (int p = 0; p < N_PROMPTS; p++) {
        prompts[p][0] = 1;
        for (int i = 1; i < PROMPT_LEN; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            prompts[p][i] = 3 + (int32_t)(s % 509);
        }
    }
    const int32_t once[5] = {1, 403, 407, 261, 378};
    memcpy(prompts[0], once, sizeof once);
    const int iters = ag_test_under_valgrind() ? 1 : 8;
    const size_t per = (size_t)PROMPT_LEN * 512;

    /* serial reference on this thread */
    float *ref = malloc(N_PROMPTS * per * sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    for (int p = 0; p < N_PROMPTS; p++) {
        ag_trace *t = NULL;
        ck_assert_int_eq(ag_trace_create(&t, m, prompts[p], PROMPT_LEN, NULL), AG_OK);
        const float *lg;
        int64_t sh[3];
        int32_t nd;
        ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_LOGITS, 0, &lg, sh, &nd), AG_OK);
        memcpy(ref + (size_t)p * per, lg, per * sizeof *lg);
        ag_trace_free(t);
    }

    worker w[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        memset(&w[k], 0, sizeof w[k]);
        w[k].m = m;
        w[k].prompts = (const int32_t(*)[PROMPT_LEN])prompts;
        w[k].iters = iters;
        w[k].logits = malloc(N_PROMPTS * per * sizeof(float));
        ck_assert_ptr_nonnull(w[k].logits);
    }
    for (int k = 0; k < 2; k++) ck_assert_int_eq(pthread_create(&th[k], NULL, run_worker, &w[k]), 0);
    for (int k = 0; k < 2; k++) ck_assert_int_eq(pthread_join(th[k], NULL), 0);

    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(w[k].failures, 0);
        ck_assert_int_eq(w[k].mismatches, 0);
        ck_assert_msg(memcmp(w[k].logits, ref, N_PROMPTS * per * sizeof(float)) == 0,
                      "thread %d logits differ from the serial run (max rel %g)", k,
                      ag_rel_err_ff(w[k].logits, ref, N_PROMPTS * per));
        ck_assert_ptr_nonnull(strstr(w[k].err, "ag_trace_create"));
        ck_assert_uint_eq(w[k].n_gen, 16);
    }
    ck_assert_mem_eq(w[0].gen, w[1].gen, 16 * sizeof(int32_t));
    for (int k = 0; k < 2; k++) free(w[k].logits);
    free(ref);
    ag_model_free(m);
}
END_TEST

/* ---- suite --------------------------------------------------------------------------------- */

static Suite *core_suite(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, test_status_values_and_strings);
    tcase_add_test(tc, test_last_error_semantics);
    tcase_add_test(tc, test_free_null);
    tcase_add_test(tc, test_version);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("options");
    tcase_add_test(tc, test_model_options_sizes);
    tcase_add_test(tc, test_trace_generate_options_sizes);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_add_test(tc, test_model_info_struct_size);
    tcase_add_test(tc, test_model_info_values);
    tcase_add_test(tc, test_load_memory);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, test_threads_share_model);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(core_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
