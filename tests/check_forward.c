/*
 * check_forward — the forward pass, the trace cache, GGUF/.bin agreement and generation.
 *
 * Oracles: the float64 vectors of an independent PyTorch implementation (../shared/vectors),
 * tests/support/naive_llama (an independent double-precision implementation with plain loops),
 * and the documented greedy story of stories260K (DESIGN §5).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "naive_llama.h"
#include "trace_setup.h"
#include "suite_run.h"

#define STORIES_BIN "models/stories260K.bin"
#define STORIES_GGUF "models/stories260K.gguf"
#define XS_BIN "models/llama2xs_model.bin"
#define TOK512 "models/tok512.bin"
#define VECTORS "vectors/stories260K-once-upon-a-time.json"

static const int32_t ONCE[5] = {1, 403, 407, 261, 378};
static const char *const GREEDY_STORY =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

/* ---- helpers -------------------------------------------------------------------------- */

static nl_model *load_oracle(const char *rel) {
    nl_model *m = nl_load_bin(ag_test_fixture(rel));
    ck_assert_msg(m != NULL, "nl_load_bin(%s) failed", rel);
    return m;
}

static const float *logits_of(const ag_trace *t) { return ag_test_trace_tensor(t, AG_TENSOR_LOGITS, 0, NULL, NULL); }

static int argmax_f(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int argmax_d(const double *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Concatenate the decoded pieces of toks (skipping a leading BOS) into a malloc'ed string. */
static char *decode_all(const ag_model *m, const int32_t *toks, size_t n) {
    size_t cap = 64 + 32 * n, len = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i == 0 && toks[0] == 1) continue;
        char piece[256];
        size_t pl = 0;
        ag_status st = ag_token_decode(m, i > 0 ? toks[i - 1] : -1, toks[i], piece, sizeof piece, &pl);
        ck_assert_msg(st == AG_OK, "ag_token_decode(%d) = %d: %s", (int)toks[i], (int)st, ag_last_error());
        ck_assert_uint_eq(pl, strlen(piece));
        if (len + pl + 1 > cap) {
            cap = 2 * (len + pl + 1);
            s = realloc(s, cap);
            ck_assert_ptr_nonnull(s);
        }
        memcpy(s + len, piece, pl + 1);
        len += pl;
    }
    return s;
}

/* Compare the library's logits for toks with the oracle's; returns the relative error. */
static double logits_rel_err(const ag_model *m, const nl_model *nm, const int32_t *toks, int T) {
    ag_trace *t = ag_test_trace(m, toks, (size_t)T);
    size_t n = (size_t)T * (size_t)nm->c.vocab_size;
    double *want = malloc(n * sizeof *want);
    ck_assert_ptr_nonnull(want);
    ck_assert_int_eq(nl_forward_i32(nm, toks, T, want, NULL), 0);
    int64_t sh[3];
    int32_t nd;
    const float *got = ag_test_trace_tensor(t, AG_TENSOR_LOGITS, 0, sh, &nd);
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(sh[0], T);
    ck_assert_int_eq(sh[1], nm->c.vocab_size);
    double e = ag_rel_err_fd(got, want, n);
    free(want);
    ag_trace_free(t);
    return e;
}

/* ---- (a) the independent PyTorch vectors ------------------------------------------------ */

START_TEST(test_logits_match_vectors) {
    cJSON *j = ag_test_load_json(ag_test_fixture(VECTORS));
    ck_assert_ptr_nonnull(j);
    size_t nt = 0, nl = 0;
    int32_t *toks = ag_json_ints(ag_json_get(j, "tokens", NULL), &nt);
    double *want = ag_json_doubles(ag_json_get(j, "logits_all_positions", NULL), &nl);
    ck_assert_ptr_nonnull(toks);
    ck_assert_ptr_nonnull(want);
    ck_assert_uint_eq(nt, 5);
    for (size_t i = 0; i < nt; i++) ck_assert_int_eq(toks[i], ONCE[i]);
    ck_assert_uint_eq(nl, 5 * 512);

    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_trace *t = ag_test_trace(m, toks, nt);
    ck_assert_uint_eq(ag_trace_n_tokens(t), 5);
    ck_assert_ptr_eq(ag_trace_model(t), m);
    const int32_t *tt = ag_trace_tokens(t);
    ck_assert_ptr_nonnull(tt);
    ck_assert_mem_eq(tt, ONCE, sizeof ONCE);
    const float *got = logits_of(t);
    double diff = ag_max_diff_fd(got, want, nl), scale = ag_max_abs_d(want, nl);
    ck_assert_msg(diff <= 1e-4 * scale, "logits vs vectors: max abs diff %g > 1e-4 x %g", diff, scale);

    /* the top token at the last position is the vectors' default target */
    const cJSON *tg = cJSON_GetArrayItem(ag_json_get(j, "default_logit_targets", NULL), 0);
    ck_assert_ptr_nonnull(tg);
    ck_assert_int_eq(argmax_f(got + 4 * 512, 512), (int)cJSON_GetObjectItem(tg, "token")->valuedouble);

    /* the oracle agrees with the vectors too (it is double precision on the same weights) */
    nl_model *nm = load_oracle(STORIES_BIN);
    double *mine = malloc(nl * sizeof *mine);
    ck_assert_int_eq(nl_forward_i32(nm, toks, 5, mine, NULL), 0);
    double od = ag_max_diff_dd(mine, want, nl);
    ck_assert_msg(od <= 1e-9 * scale + 1e-6, "oracle vs vectors: %g", od);
    free(mine);
    nl_free(nm);

    ag_trace_free(t);
    ag_model_free(m);
    free(toks);
    free(want);
    cJSON_Delete(j);
}
END_TEST

/* ---- (b) library vs the oracle on several prompts --------------------------------------- */

static void check_prompts(const char *rel) {
    const int vg = ag_test_under_valgrind();
    ag_model *m = ag_test_load_model(rel, TOK512);
    nl_model *nm = load_oracle(rel);
    ag_model_info in = ag_test_model_info(m);
    ck_assert_int_eq(in.seq_len, nm->c.seq_len);
    ck_assert_int_eq(in.vocab_size, nm->c.vocab_size);

    /* BOS alone */
    const int32_t bos[1] = {1};
    double e = logits_rel_err(m, nm, bos, 1);
    ck_assert_msg(e <= 1e-4, "%s BOS: rel err %g", rel, e);
    /* "Once upon a time" */
    e = logits_rel_err(m, nm, ONCE, 5);
    ck_assert_msg(e <= 1e-4, "%s once-upon: rel err %g", rel, e);
    /* a tokenized sentence */
    int32_t toks[600];
    size_t n = 0;
    ck_assert_int_eq(ag_tokenize(m, "Lily and Ben went to the park. They saw a big red ball!", 1, toks, 600, &n), AG_OK);
    ck_assert_uint_ge(n, 10);
    e = logits_rel_err(m, nm, toks, (int)n);
    ck_assert_msg(e <= 1e-4, "%s sentence: rel err %g", rel, e);
    /* a long pseudo-random prompt (200 tokens; shorter under valgrind) */
    int Tlong = vg ? 24 : 200;
    ag_test_random_tokens(toks, Tlong, in.vocab_size, 12345);
    e = logits_rel_err(m, nm, toks, Tlong);
    ck_assert_msg(e <= 1e-4, "%s random %d: rel err %g", rel, Tlong, e);
    /* the full context (exactly seq_len positions is allowed) */
    if (!vg) {
        ck_assert_int_le(in.seq_len, 600);
        ag_test_random_tokens(toks, in.seq_len, in.vocab_size, 777);
        e = logits_rel_err(m, nm, toks, in.seq_len);
        ck_assert_msg(e <= 1e-4, "%s random seq_len=%d: rel err %g", rel, in.seq_len, e);
    }
    nl_free(nm);
    ag_model_free(m);
}

START_TEST(test_logits_match_oracle_stories) { check_prompts(STORIES_BIN); }
END_TEST

START_TEST(test_logits_match_oracle_xs) { check_prompts(XS_BIN); }
END_TEST

/* Each position's logits depend only on the prefix (causality): the trace of a prefix equals
 * the first rows of the trace of the whole prompt. */
START_TEST(test_prefix_consistency) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    int32_t toks[40];
    ag_test_random_tokens(toks, 40, 512, 99);
    ag_trace *full = ag_test_trace(m, toks, 40);
    ag_trace *pre = ag_test_trace(m, toks, 17);
    double e = ag_rel_err_ff(logits_of(pre), logits_of(full), 17 * 512);
    ck_assert_msg(e <= 1e-5, "prefix logits differ from the full trace: %g", e);
    /* and a repeated trace is bit-identical */
    ag_trace *again = ag_test_trace(m, toks, 40);
    ck_assert_mem_eq(logits_of(again), logits_of(full), 40 * 512 * sizeof(float));
    ag_trace_free(again);
    ag_trace_free(pre);
    ag_trace_free(full);
    ag_model_free(m);
}
END_TEST

/* ---- (c) every cached tensor ------------------------------------------------------------ */

typedef struct cmp_case {
    ag_tensor_kind kind;
    const char *name;
} cmp_case;

static void check_all_tensors(const char *rel, int T) {
    ag_model *m = ag_test_load_model(rel, NULL);
    nl_model *nm = load_oracle(rel);
    int32_t toks[64];
    ck_assert_int_le(T, 64);
    ag_test_random_tokens(toks, T, nm->c.vocab_size, 4242);
    toks[1] = 403; /* a little story-like start, then noise */
    ag_trace *t = ag_test_trace(m, toks, (size_t)T);
    nl_cache *c = nl_cache_new(nm, T);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(nl_forward_i32(nm, toks, T, NULL, c), 0);

    const int L = nm->c.n_layers, D = nm->c.dim, KV = nm->c.kv_dim, Hd = nm->c.hidden_dim, H = nm->c.n_heads,
              V = nm->c.vocab_size;
    const size_t t_ = (size_t)T;
    char worst_name[64] = "";
    double worst = 0.0;
    int bad_shape = 0;
    char bad_shape_msg[160] = "";
    double above_diag = 0.0, row_sum_err = 0.0;

#define CMP(KIND, LAYER, NDIM, S0, S1, S2, WANT, COUNT)                                                  \
    do {                                                                                                  \
        int64_t sh_[3];                                                                                   \
        int32_t nd_;                                                                                      \
        const float *got_ = ag_test_trace_tensor(t, (KIND), (LAYER), sh_, &nd_);                          \
        int64_t w_[3] = {(S0), (S1), (S2)};                                                               \
        int okshape_ = nd_ == (NDIM);                                                                     \
        for (int d_ = 0; d_ < (NDIM) && okshape_; d_++) okshape_ = sh_[d_] == w_[d_];                     \
        if (!okshape_ && !bad_shape) {                                                                    \
            bad_shape = 1;                                                                                \
            snprintf(bad_shape_msg, sizeof bad_shape_msg,                                                 \
                     "%s layer %d: ndim %d shape [%lld,%lld,%lld], want ndim %d [%lld,%lld,%lld]", #KIND, \
                     (int)(LAYER), (int)nd_, (long long)sh_[0], (long long)sh_[1], (long long)sh_[2],     \
                     (int)(NDIM), (long long)w_[0], (long long)w_[1], (long long)w_[2]);                  \
        }                                                                                                 \
        if (okshape_) {                                                                                   \
            double e_ = ag_rel_err_fd(got_, (WANT), (COUNT));                                             \
            if (!(e_ <= worst)) {                                                                         \
                worst = e_;                                                                               \
                snprintf(worst_name, sizeof worst_name, "%s layer %d", #KIND, (int)(LAYER));              \
            }                                                                                             \
        }                                                                                                 \
    } while (0)

    for (int l = 0; l <= L; l++) CMP(AG_TENSOR_RESID, l, 2, T, D, 0, c->resid + (size_t)l * t_ * D, t_ * D);
    for (int l = 0; l < L; l++) {
        size_t sD = t_ * (size_t)D, sKV = t_ * (size_t)KV, sH = t_ * (size_t)Hd;
        CMP(AG_TENSOR_MID, l, 2, T, D, 0, c->mid + l * sD, sD);
        CMP(AG_TENSOR_ATTN_NORM_SCALE, l, 1, T, 0, 0, c->r_att + l * t_, t_);
        CMP(AG_TENSOR_ATTN_IN, l, 2, T, D, 0, c->attn_in + l * sD, sD);
        CMP(AG_TENSOR_Q, l, 2, T, D, 0, c->q + l * sD, sD);
        CMP(AG_TENSOR_K, l, 2, T, KV, 0, c->k + l * sKV, sKV);
        CMP(AG_TENSOR_V, l, 2, T, KV, 0, c->v + l * sKV, sKV);
        CMP(AG_TENSOR_ATTN_PATTERN, l, 3, H, T, T, c->att + (size_t)l * H * t_ * t_, (size_t)H * t_ * t_);
        CMP(AG_TENSOR_ATTN_HEADS, l, 2, T, D, 0, c->heads + l * sD, sD);
        CMP(AG_TENSOR_FFN_NORM_SCALE, l, 1, T, 0, 0, c->r_ffn + l * t_, t_);
        CMP(AG_TENSOR_MLP_IN, l, 2, T, D, 0, c->mlp_in + l * sD, sD);
        CMP(AG_TENSOR_GATE, l, 2, T, Hd, 0, c->gate + l * sH, sH);
        CMP(AG_TENSOR_UP, l, 2, T, Hd, 0, c->up + l * sH, sH);
        CMP(AG_TENSOR_NEURONS, l, 2, T, Hd, 0, c->neurons + l * sH, sH);
        CMP(AG_TENSOR_MLP_OUT, l, 2, T, D, 0, c->mlp_out + l * sD, sD);

        /* the pattern is causal (exactly 0 above the diagonal) and rows sum to 1 */
        const float *P = ag_test_trace_tensor(t, AG_TENSOR_ATTN_PATTERN, l, NULL, NULL);
        for (int h = 0; h < H; h++)
            for (int q = 0; q < T; q++) {
                double s = 0.0;
                for (int k = 0; k < T; k++) {
                    float pv = P[((size_t)h * t_ + (size_t)q) * t_ + (size_t)k];
                    if (k > q && fabs(pv) > above_diag) above_diag = fabs(pv);
                    s += pv;
                }
                if (fabs(s - 1.0) > row_sum_err) row_sum_err = fabs(s - 1.0);
            }
    }
    /* tensors without a layer: the layer argument is ignored */
    CMP(AG_TENSOR_FINAL_NORM_SCALE, 0, 1, T, 0, 0, c->r_fin, t_);
    CMP(AG_TENSOR_FINAL_OUT, 0, 2, T, D, 0, c->final_out, t_ * D);
    CMP(AG_TENSOR_LOGITS, 0, 2, T, V, 0, c->logits, t_ * V);
    CMP(AG_TENSOR_LOGITS, L - 1, 2, T, V, 0, c->logits, t_ * V);
#undef CMP

    ck_assert_msg(!bad_shape, "%s: %s", rel, bad_shape_msg);
    ck_assert_msg(worst <= 1e-4, "%s: worst tensor %s: rel err %g", rel, worst_name, worst);
    ck_assert_msg(above_diag == 0.0, "%s: attention pattern above the diagonal: %g", rel, above_diag);
    ck_assert_msg(row_sum_err <= 1e-5, "%s: attention rows do not sum to 1: %g", rel, row_sum_err);

    /* out-of-range layers and kinds */
    const float *d = (const float *)0x1;
    int64_t sh[3];
    int32_t nd;
    ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_MID, L, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_MID, -1, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_RESID, L + 1, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_trace_tensor(t, (ag_tensor_kind)99, 0, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_trace_tensor(t, (ag_tensor_kind)-1, 0, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_trace_tensor(NULL, AG_TENSOR_MID, 0, &d, sh, &nd), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_trace_tensor(t, AG_TENSOR_MID, 0, NULL, sh, &nd), AG_ERR_INVALID_ARGUMENT);

    nl_cache_free(c);
    ag_trace_free(t);
    nl_free(nm);
    ag_model_free(m);
}

START_TEST(test_trace_tensors_stories) { check_all_tensors(STORIES_BIN, ag_test_under_valgrind() ? 9 : 33); }
END_TEST

START_TEST(test_trace_tensors_xs) { check_all_tensors(XS_BIN, ag_test_under_valgrind() ? 7 : 21); }
END_TEST

/* ---- (d) GGUF equals .bin ------------------------------------------------------------------ */

START_TEST(test_gguf_equals_bin) {
    ag_model *mb = ag_test_load_model(STORIES_BIN, NULL);
    ag_model *mg = ag_test_load_model(STORIES_GGUF, NULL);
    ag_model_info ib = ag_test_model_info(mb), ig = ag_test_model_info(mg);
    ck_assert_int_eq(ib.format, AG_FORMAT_LLAMA2C);
    ck_assert_int_eq(ig.format, AG_FORMAT_GGUF);
    ck_assert_int_eq(ig.dim, ib.dim);
    ck_assert_int_eq(ig.hidden_dim, ib.hidden_dim);
    ck_assert_int_eq(ig.n_layers, ib.n_layers);
    ck_assert_int_eq(ig.n_heads, ib.n_heads);
    ck_assert_int_eq(ig.n_kv_heads, ib.n_kv_heads);
    ck_assert_int_eq(ig.head_dim, ib.head_dim);
    ck_assert_int_eq(ig.vocab_size, ib.vocab_size);
    ck_assert_int_eq(ig.seq_len, 2048); /* llama.context_length, the converter's default */
    ck_assert(fabsf(ig.rms_eps - 1e-5f) <= 1e-9f);
    ck_assert_int_eq(ig.has_tokenizer, 1); /* GGUF carries its own vocabulary */
    ck_assert_int_eq(ig.bos_id, 1);
    ck_assert_int_eq(ig.eos_id, 2);
    /* the GGUF stores `output` explicitly (a copy of token_embd): counted as a classifier */
    ck_assert_int_eq(ib.n_params, 260032);
    ck_assert_int_eq(ig.n_params, ig.shared_classifier ? 260032 : 260032 + 512 * 64);

    int32_t toks[48];
    const int n = ag_test_under_valgrind() ? 12 : 48;
    ag_test_random_tokens(toks, n, 512, 5);
    const int32_t *prompts[2] = {ONCE, toks};
    const int lens[2] = {5, n};
    for (int k = 0; k < 2; k++) {
        ag_trace *tb = ag_test_trace(mb, prompts[k], (size_t)lens[k]);
        ag_trace *tg = ag_test_trace(mg, prompts[k], (size_t)lens[k]);
        double e = ag_rel_err_ff(logits_of(tg), logits_of(tb), (size_t)lens[k] * 512);
        ck_assert_msg(e <= 1e-5, "gguf vs bin logits (prompt %d): rel err %g", k, e);
        ag_trace_free(tb);
        ag_trace_free(tg);
    }

    /* its own vocabulary encodes the vectors' prompt the same way */
    int32_t enc[16];
    size_t ne = 0;
    ck_assert_int_eq(ag_tokenize(mg, "Once upon a time", 1, enc, 16, &ne), AG_OK);
    ck_assert_uint_eq(ne, 5);
    ck_assert_mem_eq(enc, ONCE, sizeof ONCE);
    ag_model_free(mg);
    ag_model_free(mb);
}
END_TEST

/* ---- (e) generation ------------------------------------------------------------------------ */

START_TEST(test_generate_greedy_story) {
    ag_model *m = ag_test_load_model(STORIES_BIN, TOK512);
    ag_generate_options go;
    ck_assert_int_eq(AG_GENERATE_OPTIONS_INIT(go), AG_OK);
    ck_assert_int_eq(go.max_new_tokens, 256);
    ck_assert(go.temperature == 0.0f);
    ck_assert(go.top_p == 1.0f);
    ck_assert_uint_eq(go.seed, 42);
    go.max_new_tokens = 40;
    const int32_t bos[1] = {1};
    int32_t out[41];
    out[0] = 1;
    size_t n = 0;
    ag_status st = ag_generate(m, bos, 1, &go, out + 1, 40, &n);
    ck_assert_msg(st == AG_OK, "ag_generate = %d: %s", (int)st, ag_last_error());
    ck_assert_uint_eq(n, 40);
    char *text = decode_all(m, out, n + 1);
    ck_assert_msg(strncmp(text, GREEDY_STORY, strlen(GREEDY_STORY)) == 0, "greedy text: '%s'", text);
    free(text);

    /* the same tokens as the oracle's greedy decoding (independent implementation) */
    nl_model *nm = load_oracle(STORIES_BIN);
    int steps = ag_test_under_valgrind() ? 8 : 25;
    int seq[64] = {1};
    double *lg = malloc((size_t)(steps + 1) * 512 * sizeof *lg);
    ck_assert_ptr_nonnull(lg);
    int mismatch = -1;
    for (int i = 1; i <= steps; i++) {
        ck_assert_int_eq(nl_forward(nm, seq, i, lg, NULL), 0);
        seq[i] = argmax_d(lg + (size_t)(i - 1) * 512, 512);
        if (seq[i] != out[i] && mismatch < 0) mismatch = i;
    }
    ck_assert_msg(mismatch < 0, "library greedy token %d = %d, oracle %d", mismatch, mismatch < 0 ? 0 : out[mismatch],
                  mismatch < 0 ? 0 : seq[mismatch]);
    free(lg);
    nl_free(nm);

    /* greedy ignores the seed; a shorter run is a prefix of the longer one */
    int32_t out2[20];
    go.max_new_tokens = 20;
    go.seed = 999;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, out2, 20, &n), AG_OK);
    ck_assert_uint_eq(n, 20);
    ck_assert_mem_eq(out2, out + 1, 20 * sizeof(int32_t));
    ag_model_free(m);
}
END_TEST

START_TEST(test_generate_sampling) {
    ag_model *m = ag_test_load_model(STORIES_BIN, TOK512);
    ag_generate_options go;
    ck_assert_int_eq(AG_GENERATE_OPTIONS_INIT(go), AG_OK);
    go.max_new_tokens = 48;
    go.temperature = 0.8f;
    const int32_t bos[1] = {1};
    int32_t a[48], b[48], c[48], g[48];
    size_t na = 0, nb = 0, nc = 0, ngr = 0;
    go.seed = 1234;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, a, 48, &na), AG_OK);
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, b, 48, &nb), AG_OK);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_ge(na, 1);
    ck_assert_mem_eq(a, b, na * sizeof(int32_t));
    go.seed = 4321;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, c, 48, &nc), AG_OK);
    ck_assert_msg(nc != na || memcmp(a, c, na * sizeof(int32_t)) != 0, "seeds 1234 and 4321 gave the same text");
    /* temperature 0.8 differs from greedy somewhere in 48 tokens, for at least one seed */
    go.temperature = 0.0f;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, g, 48, &ngr), AG_OK);
    int differs = (ngr != na || memcmp(a, g, na * sizeof(int32_t)) != 0) ||
                  (ngr != nc || memcmp(c, g, nc * sizeof(int32_t)) != 0);
    ck_assert_msg(differs, "sampling at temperature 0.8 reproduced the greedy text for two seeds");
    for (size_t i = 0; i < na; i++) ck_assert(a[i] >= 0 && a[i] < 512);

    /* max_new_tokens 0: nothing, and OK */
    go.max_new_tokens = 0;
    size_t n0 = 77;
    int32_t dummy[1] = {-5};
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, dummy, 1, &n0), AG_OK);
    ck_assert_uint_eq(n0, 0);
    ck_assert_int_eq(dummy[0], -5);
    n0 = 77;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, NULL, 0, &n0), AG_OK);
    ck_assert_uint_eq(n0, 0);

    /* cap below max_new_tokens */
    go.max_new_tokens = 10;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, a, 5, &n0), AG_ERR_BUFFER_TOO_SMALL);

    /* top_p sampling is deterministic too */
    go.max_new_tokens = 24;
    go.temperature = 1.0f;
    go.top_p = 0.9f;
    go.seed = 7;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, a, 48, &na), AG_OK);
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, b, 48, &nb), AG_OK);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(a, b, na * sizeof(int32_t));
    ag_model_free(m);
}
END_TEST

/* Stops at the model's context: prompt + new tokens never exceed seq_len; a stop token
 * (BOS/EOS) can only be the last one. */
START_TEST(test_generate_limits) {
    ag_model *m = ag_test_load_model(XS_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    ck_assert_int_eq(in.seq_len, 256);
    int32_t toks[256], out[64];
    ag_test_random_tokens(toks, 250, in.vocab_size, 31);
    toks[1] = 403;
    ag_generate_options go;
    ck_assert_int_eq(AG_GENERATE_OPTIONS_INIT(go), AG_OK);
    go.max_new_tokens = 64;
    size_t n = 0;
    ck_assert_int_eq(ag_generate(m, toks, 250, &go, out, 64, &n), AG_OK);
    ck_assert_uint_le(250 + n, 256);
    /* a prompt that fills the context leaves no room */
    ag_test_random_tokens(toks, 256, in.vocab_size, 32);
    n = 99;
    ag_status st = ag_generate(m, toks, 256, &go, out, 64, &n);
    ck_assert(st == AG_OK || st == AG_ERR_INVALID_ARGUMENT);
    if (st == AG_OK) ck_assert_uint_eq(n, 0);
    ag_model_free(m);

    /* a long greedy story from BOS: no BOS/EOS except possibly the last token */
    m = ag_test_load_model(STORIES_BIN, NULL);
    const int N = ag_test_under_valgrind() ? 64 : 400;
    int32_t *o = malloc((size_t)N * sizeof *o);
    ck_assert_ptr_nonnull(o);
    const int32_t bos[1] = {1};
    go.max_new_tokens = N;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, o, (size_t)N, &n), AG_OK);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, (size_t)N);
    int stop_inside = 0;
    for (size_t i = 0; i + 1 < n; i++) stop_inside |= o[i] == 1 || o[i] == 2;
    ck_assert_msg(!stop_inside, "generation continued past a BOS/EOS token");
    free(o);
    ag_model_free(m);
}
END_TEST

/* ---- (f) the KV-cache path agrees with the trace -------------------------------------------- */

static void check_kv_vs_trace(const char *rel) {
    ag_model *m = ag_test_load_model(rel, NULL);
    ag_model_info in = ag_test_model_info(m);
    const int steps = ag_test_under_valgrind() ? 6 : 20;
    int32_t seq[64];
    memcpy(seq, ONCE, sizeof ONCE);
    int n = 5;
    /* one greedy run of `steps` tokens ... */
    ag_generate_options go;
    ck_assert_int_eq(AG_GENERATE_OPTIONS_INIT(go), AG_OK);
    go.max_new_tokens = steps;
    int32_t run[32];
    size_t nrun = 0;
    ck_assert_int_eq(ag_generate(m, ONCE, 5, &go, run, 32, &nrun), AG_OK);
    /* ... and step by step: generate one token from the growing prompt; compare with the trace */
    go.max_new_tokens = 1;
    int first_bad = -1, got_bad = 0, want_bad = 0;
    for (int s = 0; s < steps; s++) {
        int32_t next = -1;
        size_t k = 0;
        ck_assert_int_eq(ag_generate(m, seq, (size_t)n, &go, &next, 1, &k), AG_OK);
        ag_trace *t = ag_test_trace(m, seq, (size_t)n);
        int am = argmax_f(logits_of(t) + (size_t)(n - 1) * (size_t)in.vocab_size, in.vocab_size);
        ag_trace_free(t);
        if (k == 0) break; /* stopped: only allowed at a stop token */
        if ((next != am || (s < (int)nrun && run[s] != next)) && first_bad < 0) {
            first_bad = s;
            got_bad = next;
            want_bad = am;
        }
        seq[n++] = next;
    }
    ck_assert_msg(first_bad < 0, "%s step %d: generate gave %d, trace argmax %d", rel, first_bad, got_bad, want_bad);
    ck_assert_int_ge(n, 5 + ((int)nrun < steps ? (int)nrun : steps));
    ag_model_free(m);
}

START_TEST(test_kv_cache_matches_trace_stories) { check_kv_vs_trace(STORIES_BIN); }
END_TEST

START_TEST(test_kv_cache_matches_trace_xs) { check_kv_vs_trace(XS_BIN); }
END_TEST

/* ---- (g) bad arguments ---------------------------------------------------------------------- */

#define SENTINEL_TRACE ((ag_trace *)(uintptr_t)0x1234)

static void expect_trace_fail(const ag_model *m, const int32_t *toks, size_t n, const ag_trace_options *o,
                              const char *needle, const char *what) {
    ag_trace *t = SENTINEL_TRACE;
    ag_status st = ag_trace_create(&t, m, toks, n, o);
    ck_assert_msg(st == AG_ERR_INVALID_ARGUMENT, "%s: status %d, want AG_ERR_INVALID_ARGUMENT", what, (int)st);
    ck_assert_msg(t == NULL, "%s: *out not cleared", what);
    const char *e = ag_last_error();
    ck_assert_msg(strstr(e, "ag_trace_create") != NULL, "%s: message '%s' does not name the function", what, e);
    ck_assert_msg(strstr(e, needle) != NULL, "%s: message '%s' does not name '%s'", what, e, needle);
}

START_TEST(test_bad_arguments) {
    ag_model *m = ag_test_load_model(STORIES_BIN, NULL);
    ag_model_info in = ag_test_model_info(m);
    int32_t toks[520];
    ag_test_random_tokens(toks, 520, 512, 3);

    expect_trace_fail(m, toks, 0, NULL, "n_tokens", "0 tokens");
    expect_trace_fail(m, toks, (size_t)in.seq_len + 1, NULL, "n_tokens", "seq_len+1 tokens");
    int32_t bad[4] = {1, 403, 512, 261};
    expect_trace_fail(m, bad, 4, NULL, "tokens[2]", "token = vocab");
    bad[2] = -1;
    expect_trace_fail(m, bad, 4, NULL, "tokens[2]", "token = -1");
    expect_trace_fail(m, NULL, 4, NULL, "tokens", "NULL tokens");
    expect_trace_fail(NULL, toks, 4, NULL, "model", "NULL model");
    ag_trace_options to;
    ck_assert_int_eq(AG_TRACE_OPTIONS_INIT(to), AG_OK);
    to.reserved = 1;
    expect_trace_fail(m, toks, 4, &to, "reserved", "reserved != 0");

    /* NULL out: INVALID_ARGUMENT and the message names it */
    ck_assert_int_eq(ag_trace_create(NULL, m, toks, 4, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "out"));

    /* a good call still works afterwards and clears nothing it should not */
    ag_trace *t = ag_test_trace(m, toks, 4);
    ag_trace_free(t);

    /* ag_generate */
    ag_generate_options go;
    ck_assert_int_eq(AG_GENERATE_OPTIONS_INIT(go), AG_OK);
    go.max_new_tokens = 4;
    int32_t out[8];
    size_t n = 0;
    const int32_t bos[1] = {1};
    ck_assert_int_eq(ag_generate(NULL, bos, 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "model"));
    ck_assert_int_eq(ag_generate(m, NULL, 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "prompt"));
    ck_assert_int_eq(ag_generate(m, bos, 0, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "n_prompt"));
    ck_assert_int_eq(ag_generate(m, toks, (size_t)in.seq_len + 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "n_prompt"));
    int32_t badp[2] = {1, 600};
    ck_assert_int_eq(ag_generate(m, badp, 2, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "prompt[1]"));
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, out, 8, NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "n_out"));
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, NULL, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "out_tokens"));
    go.temperature = -1.0f;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "temperature"));
    go.temperature = NAN;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "temperature"));
    go.temperature = 0.8f;
    go.top_p = 0.0f;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "top_p"));
    go.top_p = 1.5f;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "top_p"));
    go.top_p = 1.0f;
    go.max_new_tokens = -5;
    ck_assert_int_eq(ag_generate(m, bos, 1, &go, out, 8, &n), AG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "max_new_tokens"));
    ag_model_free(m);
}
END_TEST

/* ---- the oracle's own machinery (hooks, start residual, freezing, finite differences) --------
 * Future backward/decomposition tests build on these; check them against the vectors' float64
 * gradients and frozen edge rows. Pure oracle work (no library call): skipped under valgrind. */

typedef struct fd_ctx {
    const nl_model *m;
    const int *toks;
    int T, start_layer;
    const double *base; /* [T][D] residual at start_layer */
    double *x;          /* scratch [T][D] */
    double *logits;     /* scratch [T][V] */
    int pos, tok;
} fd_ctx;

/* f(delta) = logit[pos][tok] with the residual at start_layer = base + delta */
static double logit_from_resid(void *user, const double *delta, size_t n) {
    fd_ctx *c = user;
    for (size_t i = 0; i < n; i++) c->x[i] = c->base[i] + delta[i];
    nl_forward_opts o;
    memset(&o, 0, sizeof o);
    o.start_layer = c->start_layer;
    o.start_resid = c->x;
    ck_assert_int_eq(nl_forward_ex(c->m, c->toks, c->T, &o, c->logits, NULL), 0);
    return c->logits[(size_t)c->pos * (size_t)c->m->c.vocab_size + (size_t)c->tok];
}

static void check_vector_gradient(const nl_model *m, const cJSON *vec, const char *key, int layer) {
    const int T = 5, D = m->c.dim, V = m->c.vocab_size;
    const int toks[5] = {1, 403, 407, 261, 378};
    nl_cache *clean = nl_cache_new(m, T);
    ck_assert_int_eq(nl_forward(m, toks, T, NULL, clean), 0);
    size_t n = 0;
    double *want = ag_json_doubles(ag_json_get(vec, key, "gradient", NULL), &n);
    ck_assert_uint_eq(n, (size_t)T * D);
    fd_ctx c = {m, toks, T, layer, clean->resid + (size_t)layer * T * D, malloc((size_t)T * D * sizeof(double)),
                malloc((size_t)T * V * sizeof(double)), 4,
                (int)ag_json_get(vec, key, "target", "token", NULL)->valuedouble};
    double *delta = calloc((size_t)T * D, sizeof *delta), *grad = malloc((size_t)T * D * sizeof *grad);
    ck_assert(c.x && c.logits && delta && grad);
    ck_assert(fabs(logit_from_resid(&c, delta, n) - ag_json_get(vec, key, "target", "value", NULL)->valuedouble) < 1e-8);
    nl_fd_grad(logit_from_resid, &c, delta, n, 1e-4, grad);
    double e = ag_rel_err_dd(grad, want, n);
    ck_assert_msg(e <= 1e-6, "oracle FD gradient vs vectors %s: rel err %g", key, e);
    free(delta);
    free(grad);
    free(c.x);
    free(c.logits);
    free(want);
    nl_cache_free(clean);
}

/* Direct-mode perturbation: add eps*vec at (site, layer, pos). */
typedef struct perturb {
    nl_site site;
    int layer, pos;
    const double *dir; /* [D] */
    double eps;
} perturb;

static void perturb_hook(void *user, nl_site site, int layer, int T, int width, double *data) {
    const perturb *p = user;
    (void)T;
    if (site != p->site || layer != p->layer) return;
    for (int i = 0; i < width; i++) data[(size_t)p->pos * (size_t)width + (size_t)i] += p->eps * p->dir[i];
}

/* Target value in the frozen direct model. kind 0: demeaned logit (tok at pos); 1: neuron. */
typedef struct target {
    int kind, layer, index, pos;
} target;

static double target_value(const nl_model *m, const int *toks, int T, const nl_cache *clean, const target *tg,
                           perturb *pt, nl_cache *scratch) {
    nl_forward_opts o;
    memset(&o, 0, sizeof o);
    o.frozen = clean;
    o.freeze = NL_FREEZE_DIRECT;
    o.hook = pt ? perturb_hook : NULL;
    o.user = pt;
    ck_assert_int_eq(nl_forward_ex(m, toks, T, &o, NULL, scratch), 0);
    if (tg->kind == 1)
        return scratch->neurons[((size_t)tg->layer * T + (size_t)tg->pos) * (size_t)m->c.hidden_dim + (size_t)tg->index];
    const double *row = scratch->logits + (size_t)tg->pos * (size_t)m->c.vocab_size;
    double mean = 0.0;
    for (int v = 0; v < m->c.vocab_size; v++) mean += row[v];
    return row[tg->index] - mean / m->c.vocab_size;
}

static double edge_fd(const nl_model *m, const int *toks, int T, const nl_cache *clean, const target *tg,
                      perturb *pt, nl_cache *scratch) {
    pt->eps = 1e-2;
    double fp = target_value(m, toks, T, clean, tg, pt, scratch);
    pt->eps = -1e-2;
    double fm = target_value(m, toks, T, clean, tg, pt, scratch);
    return (fp - fm) / 2e-2;
}

START_TEST(test_oracle_against_vectors) {
    if (ag_test_under_valgrind()) return;
    nl_model *m = load_oracle(STORIES_BIN);
    cJSON *vec = ag_test_load_json(ag_test_fixture(VECTORS));
    ck_assert_ptr_nonnull(vec);
    check_vector_gradient(m, vec, "gradient_embed", 0);
    check_vector_gradient(m, vec, "gradient_resid.2", 2);

    const int T = 5, D = m->c.dim, Hd = m->c.hidden_dim;
    const int toks[5] = {1, 403, 407, 261, 378};
    nl_cache *clean = nl_cache_new(m, T), *scratch = nl_cache_new(m, T);
    ck_assert_int_eq(nl_forward(m, toks, T, NULL, clean), 0);
    double *w2col = malloc((size_t)D * sizeof *w2col);
    double worst = 0.0, worst_sum = 0.0, worst_val = 0.0;
    const cJSON *rows = ag_json_get(vec, "frozen_rows", NULL);
    for (const cJSON *r = rows ? rows->child : NULL; r; r = r->next) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(r, "target"));
        int a, b, c;
        ck_assert_int_eq(sscanf(name, "%d_%d_%d", &a, &b, &c), 3);
        target tg = {a == m->c.n_layers + 1 ? 0 : 1, a == m->c.n_layers + 1 ? 0 : a, b, c};
        double value = cJSON_GetObjectItem(r, "value")->valuedouble;
        /* the frozen model at the clean point reproduces the clean value */
        double v0 = target_value(m, toks, T, clean, &tg, NULL, scratch);
        if (fabs(v0 - value) > worst_val) worst_val = fabs(v0 - value);
        size_t ne = 0, nn = 0;
        double *emb = ag_json_doubles(cJSON_GetObjectItem(r, "from_embeddings"), &ne);
        double *neu = ag_json_doubles(cJSON_GetObjectItem(r, "from_neurons_layer_pos_index"), &nn);
        ck_assert_uint_eq(ne, (size_t)T);
        ck_assert_uint_eq(nn, (size_t)m->c.n_layers * T * Hd);
        double scale = fabs(value) + ag_max_abs_d(emb, ne) + ag_max_abs_d(neu, nn);
        double sum = 0.0;
        for (size_t i = 0; i < ne; i++) sum += emb[i];
        for (size_t i = 0; i < nn; i++) sum += neu[i];
        if (fabs(sum - value) / scale > worst_sum) worst_sum = fabs(sum - value) / scale;
        /* embedding edges: direction E[t_p] at position p of the residual input of block 0 */
        for (int p = 0; p < T; p++) {
            perturb pt = {NL_SITE_RESID, 0, p, m->emb + (size_t)toks[p] * D, 0.0};
            double e = fabs(edge_fd(m, toks, T, clean, &tg, &pt, scratch) - emb[p]) / scale;
            if (e > worst) worst = e;
        }
        /* neuron edges: direction n_i * W2[:, i] at (l, p); per (l, p) the largest or a fixed one */
        for (int l = 0; l < m->c.n_layers; l++)
            for (int p = 0; p < T; p++) {
                const double *row = neu + ((size_t)l * T + (size_t)p) * Hd;
                int best = 0;
                for (int i = 1; i < Hd; i++)
                    if (fabs(row[i]) > fabs(row[best])) best = i;
                const int i = (l + p) % 2 ? best : (l * 37 + p * 11) % Hd; /* largest, or a fixed one */
                const double n_i = clean->neurons[((size_t)l * T + (size_t)p) * Hd + (size_t)i];
                for (int d = 0; d < D; d++) w2col[d] = n_i * m->w2[((size_t)l * D + (size_t)d) * Hd + (size_t)i];
                perturb pt = {NL_SITE_MLP_OUT, l, p, w2col, 0.0};
                double e = fabs(edge_fd(m, toks, T, clean, &tg, &pt, scratch) - row[i]) / scale;
                if (e > worst) worst = e;
            }
        free(emb);
        free(neu);
    }
    ck_assert_msg(worst_val <= 1e-8, "frozen model value differs from the vectors' by %g", worst_val);
    ck_assert_msg(worst_sum <= 1e-8, "vectors' rows do not sum to their values: %g", worst_sum);
    ck_assert_msg(worst <= 1e-7, "oracle frozen edges vs vectors: rel err %g", worst);
    free(w2col);
    nl_cache_free(clean);
    nl_cache_free(scratch);
    cJSON_Delete(vec);
    nl_free(m);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------------ */

static Suite *forward_suite(void) {
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("vectors");
    tcase_add_test(tc, test_logits_match_vectors);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("oracle");
    tcase_add_test(tc, test_logits_match_oracle_stories);
    tcase_add_test(tc, test_logits_match_oracle_xs);
    tcase_add_test(tc, test_prefix_consistency);
    tcase_add_test(tc, test_trace_tensors_stories);
    tcase_add_test(tc, test_trace_tensors_xs);
    tcase_add_test(tc, test_oracle_against_vectors);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("gguf");
    tcase_add_test(tc, test_gguf_equals_bin);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("generate");
    tcase_add_test(tc, test_generate_greedy_story);
    tcase_add_test(tc, test_generate_sampling);
    tcase_add_test(tc, test_generate_limits);
    tcase_add_test(tc, test_kv_cache_matches_trace_stories);
    tcase_add_test(tc, test_kv_cache_matches_trace_xs);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_bad_arguments);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(forward_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
