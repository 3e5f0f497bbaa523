/* bench_util.h: small helpers shared by the benchmarks in bench/ (header-only).
 *
 *   bench_now()                  monotonic wall clock in seconds
 *   bench_median()               median of n doubles (does not reorder the input)
 *   bench_rng / bench_rng_*      splitmix64 generator (deterministic, seedable)
 *   bench_llama2c_model()        a random llama2.c legacy checkpoint built in memory, for
 *                                ag_model_load_memory (the exact .bin layout of
 *                                ../shared/models/README.md)
 *   bench_forward_flops()        the matmul FLOPs of one forward pass over T positions
 *   bench_cfg_from_info()        fill a bench_cfg from a loaded model's ag_model_info
 *
 * Benchmarks are not part of the library: they may call cblas directly (for the sgemm peak)
 * and use POSIX clocks. Compile with _POSIX_C_SOURCE >= 199309L. */
#ifndef AG_BENCH_UTIL_H
#define AG_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attrgraph.h"

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n); 0 when n == 0. Sorts a copy (falls back to v's first entry if the
 * copy cannot be allocated). */
static inline double bench_median(const double *v, size_t n) {
    if (n == 0) return 0.0;
    double *c = malloc(n * sizeof *c);
    if (!c) return v[0];
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, bench_cmp_double);
    double m = (n % 2) ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* ---- random numbers (splitmix64) ------------------------------------------------------- */

typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint64_t bench_rng_u64(bench_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline float bench_rng_unit(bench_rng *r) { return (float)(bench_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

/* Uniform in [-a, a). */
static inline float bench_rng_sym(bench_rng *r, float a) { return a * (2.0f * bench_rng_unit(r) - 1.0f); }

/* Uniform integer in [lo, hi). */
static inline int32_t bench_rng_int(bench_rng *r, int32_t lo, int32_t hi) {
    return lo + (int32_t)(bench_rng_u64(r) % (uint64_t)(hi - lo));
}

/* ---- model shapes and FLOPs ------------------------------------------------------------ */

typedef struct bench_cfg {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} bench_cfg;

static inline void bench_cfg_from_info(bench_cfg *c, const ag_model_info *in) {
    c->dim = in->dim;
    c->hidden_dim = in->hidden_dim;
    c->n_layers = in->n_layers;
    c->n_heads = in->n_heads;
    c->n_kv_heads = in->n_kv_heads;
    c->vocab_size = in->vocab_size;
    c->seq_len = in->seq_len;
}

/* Matmul FLOPs of one forward pass over T positions (multiply-add = 2 FLOPs):
 *   per layer: projections 2·T·(D·D·2 [q,o] + 2·D·KV [k,v] + 3·D·Hd [w1,w2,w3])
 *              + attention 2·2·T²·D/2 (scores and weighted sum, causal half)
 *   classifier over every position: 2·T·D·V. */
static inline double bench_forward_flops(const bench_cfg *c, int T) {
    double D = c->dim, Hd = c->hidden_dim, V = c->vocab_size, t = T;
    double KV = (double)c->n_kv_heads * (D / c->n_heads);
    double per_layer = 2.0 * t * (2.0 * D * D + 2.0 * D * KV + 3.0 * D * Hd) + 2.0 * 2.0 * t * t * D / 2.0;
    return c->n_layers * per_layer + 2.0 * t * D * V;
}

/* ---- a random llama2.c checkpoint in memory ------------------------------------------- */

/* Build a llama2.c legacy float32 checkpoint with shared classifier and random weights:
 * embeddings uniform in [-1,1), matrices uniform with variance 1/fan_in (so activations
 * stay O(1) through the layers), norm gains 1, RoPE tables 0 (ignored by readers).
 * Returns a malloc'd buffer (free with free()) and its size in *size, or NULL on bad shapes
 * or out of memory. */
static inline void *bench_llama2c_model(const bench_cfg *c, uint64_t seed, size_t *size) {
    *size = 0;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->vocab_size <= 0 || c->seq_len <= 0 || c->dim % c->n_heads || c->n_heads % c->n_kv_heads)
        return NULL;
    size_t D = (size_t)c->dim, Hd = (size_t)c->hidden_dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size;
    size_t hs = D / (size_t)c->n_heads, KV = (size_t)c->n_kv_heads * hs, S = (size_t)c->seq_len;
    size_t n = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 3 * L * Hd * D + D + S * hs;
    size_t bytes = 28 + 4 * n;
    unsigned char *buf = malloc(bytes);
    if (!buf) return NULL;
    int32_t h[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
    memcpy(buf, h, sizeof h); /* little-endian hosts only, like the format */
    float *p = (float *)(void *)(buf + 28);
    bench_rng r = {seed};
#define BENCH_FILL(count, expr)                                                                \
    do {                                                                                       \
        size_t bench_n_ = (count);                                                             \
        for (size_t bench_i_ = 0; bench_i_ < bench_n_; bench_i_++) *p++ = (expr);              \
    } while (0)
    float aD = sqrtf(3.0f / (float)D), aH = sqrtf(3.0f / (float)Hd);
    BENCH_FILL(V * D, bench_rng_sym(&r, 1.0f));     /* token_embedding [V][D] */
    BENCH_FILL(L * D, 1.0f);                        /* rms_att [L][D] */
    BENCH_FILL(L * D * D, bench_rng_sym(&r, aD));   /* wq [L][D][D] */
    BENCH_FILL(L * KV * D, bench_rng_sym(&r, aD));  /* wk [L][KV][D] */
    BENCH_FILL(L * KV * D, bench_rng_sym(&r, aD));  /* wv [L][KV][D] */
    BENCH_FILL(L * D * D, bench_rng_sym(&r, aD));   /* wo [L][D][D] */
    BENCH_FILL(L * D, 1.0f);                        /* rms_ffn [L][D] */
    BENCH_FILL(L * Hd * D, bench_rng_sym(&r, aD));  /* w1 [L][Hd][D] */
    BENCH_FILL(L * D * Hd, bench_rng_sym(&r, aH));  /* w2 [L][D][Hd] */
    BENCH_FILL(L * Hd * D, bench_rng_sym(&r, aD));  /* w3 [L][Hd][D] */
    BENCH_FILL(D, 1.0f);                            /* rms_final [D] */
    BENCH_FILL(S * hs, 0.0f);                       /* freq_cis_real + freq_cis_imag */
#undef BENCH_FILL
    *size = bytes;
    return buf;
}

#endif /* AG_BENCH_UTIL_H */
