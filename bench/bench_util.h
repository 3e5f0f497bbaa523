/* bench_util.h: small helpers shared by the benchmarks in bench/ (header-only).
 *
 *   bench_now()                  monotonic wall clock in seconds
 *   bench_cpu_now()              process CPU seconds, every thread (OpenBLAS's included)
 *   bench_median()               median of n doubles (does not reorder the input)
 *   bench_rng / bench_rng_*      splitmix64 generator (deterministic, seedable)
 *   bench_llama2c_model()        a random llama2.c legacy checkpoint built in memory, for
 *                                ag_model_load_memory (the exact .bin layout of
 *                                ../shared/models/README.md)
 *   bench_forward_flops()        the matmul FLOPs of one forward pass over T positions
 *   bench_cfg_from_info()        fill a bench_cfg from a loaded model's ag_model_info
 *   bench_sgemm_gflops()         median GFLOP/s of one cblas_sgemm shape (the peak yardstick),
 *                                and optionally its GFLOP per CPU-second
 *   bench_opts / bench_opts_arg() the command-line options the model benchmarks share
 *   bench_print_machine()        the banner: version, BLAS threads, load average
 *   bench_random_prompt()        BOS then random token ids
 *   bench_load_file_model()      a model file, or NULL with the error on stderr
 *   bench_load_random_model()    the benchmarks' random 512x8 model, built and loaded
 *
 * Benchmarks are not part of the library: they may call cblas directly (for the sgemm peak)
 * and use POSIX clocks. Compile with _POSIX_C_SOURCE >= 199309L. */
#ifndef AG_BENCH_UTIL_H
#define AG_BENCH_UTIL_H

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attrgraph.h"

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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

/* ---- the sgemm peak --------------------------------------------------------------------- */

/* Median GFLOP/s over `runs` calls (after two warm-up calls that start OpenBLAS's threads) of
 * C[M][N] = A[M][K] · op(B), row-major, op = transpose when transB; 0 when out of memory.
 * When per_cpu is not NULL it gets the median GFLOP per CPU-second of the same calls: the peak
 * per core-second, a fair yardstick when the machine is shared. */
static inline double bench_sgemm_gflops(int M, int N, int K, int transB, int runs, double *per_cpu) {
    float *A = malloc(sizeof(float) * (size_t)M * (size_t)K);
    float *B = malloc(sizeof(float) * (size_t)K * (size_t)N);
    float *C = malloc(sizeof(float) * (size_t)M * (size_t)N);
    double *t = malloc(sizeof(double) * (size_t)runs), *tc = malloc(sizeof(double) * (size_t)runs);
    double g = 0.0;
    if (per_cpu) *per_cpu = 0.0;
    if (A && B && C && t && tc) {
        bench_rng r = {7};
        for (size_t i = 0; i < (size_t)M * (size_t)K; i++) A[i] = bench_rng_sym(&r, 1.0f);
        for (size_t i = 0; i < (size_t)K * (size_t)N; i++) B[i] = bench_rng_sym(&r, 1.0f);
        int ldb = transB ? K : N;
        for (int i = -2; i < runs; i++) {
            double t0 = bench_now(), c0 = bench_cpu_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, K, B, ldb,
                        0.0f, C, N);
            double dt = bench_now() - t0, dc = bench_cpu_now() - c0;
            if (i >= 0) {
                t[i] = dt;
                tc[i] = dc;
            }
        }
        g = 2.0 * M * N * K / bench_median(t, (size_t)runs) * 1e-9;
        if (per_cpu) *per_cpu = 2.0 * M * N * K / bench_median(tc, (size_t)runs) * 1e-9;
    }
    free(A);
    free(B);
    free(C);
    free(t);
    free(tc);
    return g;
}

/* ---- what every benchmark prints and loads ------------------------------------------------ */

/* The options bench_forward and bench_attribute share: -m MODEL, -T TOKENS, -n RUNS,
 * --no-file, --no-random. */
typedef struct bench_opts {
    const char *path; /* the model file */
    int T, runs;      /* prompt length; timed runs per measurement (the median is reported) */
    int do_file, do_random;
} bench_opts;

/* When argv[*i] is one of the shared options, apply it (moving *i past its value) and return 1;
 * 0 otherwise (the caller's own options, -h, or an error). */
static inline int bench_opts_arg(bench_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "-m") && *i + 1 < argc) o->path = argv[++*i];
    else if (!strcmp(a, "-T") && *i + 1 < argc) o->T = atoi(argv[++*i]);
    else if (!strcmp(a, "-n") && *i + 1 < argc) o->runs = atoi(argv[++*i]);
    else if (!strcmp(a, "--no-file")) o->do_file = 0;
    else if (!strcmp(a, "--no-random")) o->do_random = 0;
    else return 0;
    return 1;
}

/* "attrgraph <version> <name>", the BLAS configuration and threads (OpenBLAS), and the load
 * average before the run (a busy machine makes every number meaningless). */
static inline void bench_print_machine(const char *name) {
    printf("attrgraph %s %s\n", ag_version_string(), name);
#ifdef OPENBLAS_VERSION
    printf("BLAS: %s, %d threads (OPENBLAS_NUM_THREADS=%s)\n", openblas_get_config(), openblas_get_num_threads(),
           getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "unset");
#endif
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "";
    if (la) {
        if (!fgets(load, sizeof load, la)) load[0] = '\0';
        fclose(la);
        load[strcspn(load, "\n")] = '\0';
        printf("load average before the run: %s\n", load);
    }
}

/* tok[0] = the model's BOS (1 when it has none), tok[1..T) uniform in [3, vocab) from `seed`. */
static inline void bench_random_prompt(int32_t *tok, int T, const ag_model_info *in, uint64_t seed) {
    bench_rng r = {seed};
    tok[0] = in->bos_id >= 0 ? in->bos_id : 1;
    for (int i = 1; i < T; i++) tok[i] = bench_rng_int(&r, 3, in->vocab_size);
}

/* ag_model_load(path); NULL with "<prog>: <error>" on stderr when it fails. */
static inline ag_model *bench_load_file_model(const char *path, const char *prog) {
    ag_model *m = NULL;
    if (ag_model_load(&m, path, NULL) != AG_OK) {
        fprintf(stderr, "%s: %s\n", prog, ag_last_error());
        return NULL;
    }
    return m;
}

/* The benchmarks' random model: dim 512, 8 layers, hidden 1376, 8 heads, vocab 4096, context
 * max(T, 256), built in memory (bench_llama2c_model, seed 2024) and loaded without a copy as
 * "random-512x8". *bytes gets the buffer it borrows: free it after ag_model_free. NULL with
 * "<prog>: <reason>" on stderr when it cannot be built or loaded. */
static inline ag_model *bench_load_random_model(int T, void **bytes, const char *prog) {
    bench_cfg c = {512, 1376, 8, 8, 8, 4096, T > 256 ? T : 256};
    size_t size = 0;
    *bytes = bench_llama2c_model(&c, 2024, &size);
    ag_model *m = NULL;
    if (!*bytes) {
        fprintf(stderr, "%s: cannot build the random model (out of memory)\n", prog);
        return NULL;
    }
    if (ag_model_load_memory(&m, *bytes, size, 0, "random-512x8", NULL) != AG_OK) {
        fprintf(stderr, "%s: %s\n", prog, ag_last_error());
        return NULL;
    }
    return m;
}

#endif /* AG_BENCH_UTIL_H */
