/*
 * naive_llama — an independent reference implementation of the llama2.c model for tests.
 *
 * Written from the math in DESIGN §1.1 and models/README.md only (no attrgraph code): its own
 * llama2.c .bin parser (fread), double precision everywhere, plain loops, no BLAS. Slow but
 * obviously correct; use it as an oracle for the library's forward pass and, through the
 * hooks/freeze options, for backward passes, decompositions and interventions.
 *
 * Also: small helpers shared by the Check suites (fixture paths, error comparators, a JSON
 * file loader for ../shared/vectors).
 *
 * Layouts (all row-major, double):
 *   resid     [L+1][T][D]   input of block l; resid[L] = final residual x_L
 *   mid       [L][T][D]     x_l^mid = x_l + W_O·Attn(a)
 *   r_att     [L][T]        1/sqrt(mean(x_l^2)+eps)
 *   attn_in   [L][T][D]     a = RMSNorm(x_l) ⊙ g_att
 *   q         [L][T][D]     after RoPE
 *   k, v      [L][T][KV]    k after RoPE
 *   att       [L][H][T][T]  softmax probabilities (query, key); 0 above the diagonal
 *   heads     [L][T][D]     per-head attention outputs (before W_O), heads concatenated
 *   attn_out  [L][T][D]     W_O · heads
 *   r_ffn     [L][T]
 *   mlp_in    [L][T][D]     u = RMSNorm(x_mid) ⊙ g_ffn
 *   gate, up  [L][T][Hd]    W1 u, W3 u
 *   neurons   [L][T][Hd]    silu(gate) ⊙ up
 *   mlp_out   [L][T][D]     W2 n
 *   r_fin     [T]
 *   final_out [T][D]        RMSNorm(x_L) ⊙ g_final
 *   logits    [T][V]
 */
#ifndef NAIVE_LLAMA_H
#define NAIVE_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- model ----------------------------------------------------------------------------- */

typedef struct nl_config {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int head_dim, kv_dim;
    int shared_classifier; /* 1 when wcls is the token embedding */
    double rms_eps;        /* 1e-5 */
    double rope_theta;     /* 10000 */
} nl_config;

typedef struct nl_model {
    nl_config c;
    double *emb;      /* [V][D] */
    double *rms_att;  /* [L][D] */
    double *wq;       /* [L][D][D] */
    double *wk;       /* [L][KV][D] */
    double *wv;       /* [L][KV][D] */
    double *wo;       /* [L][D][D] */
    double *rms_ffn;  /* [L][D] */
    double *w1;       /* [L][Hd][D] gate */
    double *w2;       /* [L][D][Hd] down */
    double *w3;       /* [L][Hd][D] up */
    double *rms_final;/* [D] */
    double *wcls;     /* [V][D]; == emb when shared */
    int64_t n_params; /* weights only, shared classifier once (computed from the shapes) */
} nl_model;

/* Read a llama2.c legacy .bin (header 7 x int32, float32 arrays). NULL on any error (the
 * reason is printed to stderr). */
nl_model *nl_load_bin(const char *path);
void nl_free(nl_model *m);

/* ---- cache ------------------------------------------------------------------------------- */

typedef struct nl_cache {
    int T; /* positions */
    int L, D, KV, Hd, H, V;
    double *resid, *mid, *r_att, *attn_in, *q, *k, *v, *att, *heads, *attn_out;
    double *r_ffn, *mlp_in, *gate, *up, *neurons, *mlp_out;
    double *r_fin, *final_out, *logits;
} nl_cache;

/* Zeroed cache for T positions of model m (NULL on OOM). */
nl_cache *nl_cache_new(const nl_model *m, int T);
void nl_cache_free(nl_cache *c);

/* Pointers into a cache: layer l's slice, e.g. nl_at(c->resid, l, T*D). */
static inline double *nl_at(double *base, int layer, size_t per_layer) { return base + (size_t)layer * per_layer; }

/* ---- forward ----------------------------------------------------------------------------- */

/* Sites where a hook is called (after the value is computed, before it is used downstream;
 * the hook may modify it in place). */
typedef enum nl_site {
    NL_SITE_RESID = 0,    /* [T][D] input of block `layer` (layer 0 = embeddings, layer L = final residual) */
    NL_SITE_ATTN_HEADS,   /* [T][D] per-head outputs, before W_O */
    NL_SITE_ATTN_OUT,     /* [T][D] W_O·heads, before it is added to the residual */
    NL_SITE_MID,          /* [T][D] residual after attention */
    NL_SITE_GATE,         /* [T][Hd] W1 u */
    NL_SITE_UP,           /* [T][Hd] W3 u */
    NL_SITE_NEURONS,      /* [T][Hd] silu(gate)*up */
    NL_SITE_MLP_OUT,      /* [T][D] W2 n, before it is added to the residual */
    NL_SITE_LOGITS        /* [T][V] (layer = n_layers) */
} nl_site;

typedef void (*nl_hook_fn)(void *user, nl_site site, int layer, int T, int width, double *data);

/* Freeze flags: take these quantities from `frozen` (a cache of the same T) instead of
 * recomputing them. Together they give DESIGN §1.2's local replacement model. */
enum {
    NL_FREEZE_NORMS = 1u << 0,   /* r_att, r_ffn, r_fin */
    NL_FREEZE_ATTN = 1u << 1,    /* attention patterns (softmax probabilities) */
    NL_FREEZE_GATES = 1u << 2,   /* SwiGLU multipliers silu(gate) (then n = silu(g_frozen) * up) */
    NL_FREEZE_MLP_OUT = 1u << 3, /* every MLP output (W2 n) held at its frozen value ("direct") */
    NL_FREEZE_LINEAR = NL_FREEZE_NORMS | NL_FREEZE_ATTN | NL_FREEZE_GATES,
    NL_FREEZE_DIRECT = NL_FREEZE_LINEAR | NL_FREEZE_MLP_OUT
};

typedef struct nl_forward_opts {
    nl_hook_fn hook;          /* optional */
    void *user;
    const nl_cache *frozen;   /* required when freeze != 0 */
    unsigned freeze;          /* NL_FREEZE_* */
    /* Start at block start_layer (0..L) from the given residual start_resid [T][D] instead of
     * the embeddings; blocks below start_layer are skipped (their cache slices stay zero).
     * The hook is still called for NL_SITE_RESID at start_layer. */
    int start_layer;
    const double *start_resid;
} nl_forward_opts;

/* Plain forward: logits [T][V] (may be NULL) and, when cache != NULL (made with
 * nl_cache_new(m, T)), every intermediate. tokens must be in [0, V), 1 <= T <= seq_len.
 * Returns 0, or -1 on a bad argument / OOM. */
int nl_forward(const nl_model *m, const int *tokens, int T, double *logits, nl_cache *cache);
/* Forward with hooks, freezing and a start residual (opts may be NULL). */
int nl_forward_ex(const nl_model *m, const int *tokens, int T, const nl_forward_opts *opts,
                  double *logits, nl_cache *cache);

/* Convenience: the logits of an int32 token array. */
int nl_forward_i32(const nl_model *m, const int32_t *tokens, int T, double *logits, nl_cache *cache);

/* ---- finite differences ------------------------------------------------------------------ */

/* A scalar function of a vector. */
typedef double (*nl_scalar_fn)(void *user, const double *x, size_t n);

/* Central differences: grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h). x is restored. */
void nl_fd_grad(nl_scalar_fn f, void *user, double *x, size_t n, double h, double *grad);
/* Fourth-order five-point stencil: (-f(+2h) + 8 f(+h) - 8 f(-h) + f(-2h)) / (12h). */
void nl_fd_grad5(nl_scalar_fn f, void *user, double *x, size_t n, double h, double *grad);
/* Directional derivative along dir (central): (f(x + h dir) - f(x - h dir)) / (2h). */
double nl_fd_dir(nl_scalar_fn f, void *user, const double *x, const double *dir, size_t n, double h);

/* ---- test helpers ------------------------------------------------------------------------- */

/* AG_SHARED_DIR "/" rel, in one of 8 rotating thread-local buffers (no free needed). */
const char *ag_test_fixture(const char *rel);
/* 1 when running under valgrind (AG_UNDER_VALGRIND set and not "0"). */
int ag_test_under_valgrind(void);

/* max |x| (non-finite values give INFINITY). */
double ag_max_abs_d(const double *x, size_t n);
double ag_max_abs_f(const float *x, size_t n);
/* max |a - b| (non-finite values give INFINITY). */
double ag_max_diff_fd(const float *a, const double *b, size_t n);
double ag_max_diff_ff(const float *a, const float *b, size_t n);
double ag_max_diff_dd(const double *a, const double *b, size_t n);
/* max |got - want| / max(max |want|, 1e-30): the error relative to the largest magnitude. */
double ag_rel_err_fd(const float *got, const double *want, size_t n);
double ag_rel_err_ff(const float *got, const float *want, size_t n);
double ag_rel_err_dd(const double *got, const double *want, size_t n);

/* Read and parse a JSON file (NULL on error, message on stderr); free with cJSON_Delete. */
cJSON *ag_test_load_json(const char *path);
/* Flatten a (nested) array of numbers into a malloc'ed double array; *n gets the count.
 * NULL when `arr` is not an array of numbers/arrays (or empty). */
double *ag_json_doubles(const cJSON *arr, size_t *n);
/* The same as int32 (values must be integral). */
int32_t *ag_json_ints(const cJSON *arr, size_t *n);
/* Object member lookup through a path of keys, e.g.
 * ag_json_get(root, "gradient_embed", "gradient", NULL). NULL-terminated key list. */
const cJSON *ag_json_get(const cJSON *root, ...);

#ifdef __cplusplus
}
#endif

#endif
