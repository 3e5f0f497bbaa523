/* bench_forward: forward-pass (ag_trace_create) throughput against the machine's sgemm peak.
 *
 *   bench_forward [-m MODEL.bin|.gguf] [-T TOKENS] [-n RUNS] [--no-file] [--no-random]
 *
 * 1. cblas_sgemm peak: median GFLOP/s of 1024x1024x1024 (NN) and of a model-shaped product
 *    (T x hidden x dim, B transposed, as the MLP gate/up projections of the random model).
 * 2. The forward pass over a T-token prompt (default 256; BOS then random ids), timed as
 *    ag_trace_create (one pass that also caches every activation), median of RUNS after one
 *    warm-up, on (a) MODEL (default: stories260K.bin from AG_SHARED_DIR) and (b) a random
 *    model of dim 512, 8 layers, hidden 1376, 8 heads, vocab 4096 built in memory in the
 *    llama2.c layout and loaded with ag_model_load_memory.
 * Reports tokens/s, achieved GFLOP/s (bench_forward_flops) and the ratio to the 1024^3 peak.
 * OpenBLAS threads follow OPENBLAS_NUM_THREADS (the library never changes them). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "bench_util.h"

#ifndef AG_SHARED_DIR
#define AG_SHARED_DIR "../shared"
#endif

/* Median GFLOP/s of C[M][N] = A[M][K] · op(B), row-major. */
static double sgemm_gflops(int M, int N, int K, int transB, int runs) {
    float *A = malloc(sizeof(float) * (size_t)M * (size_t)K);
    float *B = malloc(sizeof(float) * (size_t)K * (size_t)N);
    float *C = malloc(sizeof(float) * (size_t)M * (size_t)N);
    double *t = malloc(sizeof(double) * (size_t)runs);
    double g = 0.0;
    if (A && B && C && t) {
        bench_rng r = {7};
        for (size_t i = 0; i < (size_t)M * (size_t)K; i++) A[i] = bench_rng_sym(&r, 1.0f);
        for (size_t i = 0; i < (size_t)K * (size_t)N; i++) B[i] = bench_rng_sym(&r, 1.0f);
        int ldb = transB ? K : N;
        for (int i = -2; i < runs; i++) { /* two warm-up calls start OpenBLAS's threads */
            double t0 = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, K, B, ldb,
                        0.0f, C, N);
            double dt = bench_now() - t0;
            if (i >= 0) t[i] = dt;
        }
        g = 2.0 * M * N * K / bench_median(t, (size_t)runs) * 1e-9;
    }
    free(A);
    free(B);
    free(C);
    free(t);
    return g;
}

typedef struct fwd_result {
    double median_s, tokens_per_s, gflops, ratio;
    int T;
} fwd_result;

/* Time ag_trace_create over T tokens. Returns 0 on success. */
static int bench_model(const char *label, const ag_model *m, int T, int runs, double peak, fwd_result *res) {
    ag_model_info in;
    in.struct_size = sizeof in;
    if (ag_model_get_info(m, &in) != AG_OK) {
        fprintf(stderr, "bench_forward: %s\n", ag_last_error());
        return 1;
    }
    if (T > in.seq_len) T = in.seq_len;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)T);
    double *t = malloc(sizeof(double) * (size_t)runs);
    if (!tok || !t) {
        free(tok);
        free(t);
        fprintf(stderr, "bench_forward: out of memory\n");
        return 1;
    }
    bench_rng r = {12345};
    tok[0] = in.bos_id >= 0 ? in.bos_id : 1;
    for (int i = 1; i < T; i++) tok[i] = bench_rng_int(&r, 3, in.vocab_size);
    int rc = 0;
    for (int i = -1; i < runs && !rc; i++) { /* one warm-up */
        ag_trace *tr = NULL;
        double t0 = bench_now();
        ag_status st = ag_trace_create(&tr, m, tok, (size_t)T, NULL);
        double dt = bench_now() - t0;
        if (st != AG_OK) {
            fprintf(stderr, "bench_forward: %s: %s\n", label, ag_last_error());
            rc = 1;
        }
        ag_trace_free(tr);
        if (i >= 0) t[i] = dt;
    }
    if (!rc) {
        bench_cfg c;
        bench_cfg_from_info(&c, &in);
        double flops = bench_forward_flops(&c, T);
        res->T = T;
        res->median_s = bench_median(t, (size_t)runs);
        res->tokens_per_s = T / res->median_s;
        res->gflops = flops / res->median_s * 1e-9;
        res->ratio = peak > 0 ? res->gflops / peak : 0.0;
        printf("%-22s dim %4d  layers %2d  hidden %5d  heads %2d/%-2d  vocab %5d  T %4d  %8.3f GFLOP/pass\n", label,
               in.dim, in.n_layers, in.hidden_dim, in.n_heads, in.n_kv_heads, in.vocab_size, T, flops * 1e-9);
        printf("%-22s median %9.3f ms   %10.0f tokens/s   %7.2f GFLOP/s   %5.1f%% of sgemm peak\n", "",
               res->median_s * 1e3, res->tokens_per_s, res->gflops, 100.0 * res->ratio);
    }
    free(tok);
    free(t);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_forward [-m MODEL] [-T TOKENS] [-n RUNS] [--no-file] [--no-random]\n"
               "  -m MODEL     llama2.c .bin or .gguf (default %s/models/stories260K.bin)\n"
               "  -T TOKENS    prompt length (default 256, capped at the model's seq_len)\n"
               "  -n RUNS      timed runs per measurement; the median is reported (default 11)\n",
            AG_SHARED_DIR);
}

int main(int argc, char **argv) {
    const char *path = AG_SHARED_DIR "/models/stories260K.bin";
    int T = 256, runs = 11, do_file = 1, do_random = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(a, "-T") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(a, "-n") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(a, "--no-file")) do_file = 0;
        else if (!strcmp(a, "--no-random")) do_random = 0;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (T < 1 || runs < 1) {
        usage(stderr);
        return 2;
    }

    printf("attrgraph %s bench_forward\n", ag_version_string());
#ifdef OPENBLAS_VERSION
    printf("BLAS: %s, %d threads (OPENBLAS_NUM_THREADS=%s)\n", openblas_get_config(), openblas_get_num_threads(),
           getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "unset");
#endif

    FILE *la = fopen("/proc/loadavg", "r"); /* a busy machine makes every number below meaningless */
    char load[64] = "";
    if (la) {
        if (!fgets(load, sizeof load, la)) load[0] = '\0';
        fclose(la);
        load[strcspn(load, "\n")] = '\0';
        printf("load average before the run: %s\n", load);
    }

    /* 1. sgemm peak */
    double peak = sgemm_gflops(1024, 1024, 1024, 0, runs);
    double shaped = sgemm_gflops(T, 1376, 512, 1, runs);
    printf("sgemm 1024x1024x1024 NN          %7.2f GFLOP/s (median of %d)   <- peak used for ratios\n", peak, runs);
    printf("sgemm %4dx1376x512 NT (MLP-like) %7.2f GFLOP/s (median of %d)\n", T, shaped, runs);

    int rc = 0;
    fwd_result res;
    /* 2a. the model file */
    if (do_file) {
        ag_model *m = NULL;
        if (ag_model_load(&m, path, NULL) != AG_OK) {
            fprintf(stderr, "bench_forward: %s\n", ag_last_error());
            rc = 1;
        } else {
            const char *base = strrchr(path, '/');
            rc |= bench_model(base ? base + 1 : path, m, T, runs, peak, &res);
        }
        ag_model_free(m);
    }
    /* 2b. the random model in memory */
    if (do_random) {
        bench_cfg c = {512, 1376, 8, 8, 8, 4096, T > 256 ? T : 256};
        size_t size = 0;
        void *bytes = bench_llama2c_model(&c, 2024, &size);
        ag_model *m = NULL;
        if (!bytes) {
            fprintf(stderr, "bench_forward: cannot build the random model (out of memory)\n");
            rc = 1;
        } else if (ag_model_load_memory(&m, bytes, size, 0, "random-512x8", NULL) != AG_OK) {
            fprintf(stderr, "bench_forward: %s\n", ag_last_error());
            rc = 1;
        } else {
            rc |= bench_model("random-512x8 (memory)", m, T, runs, peak, &res);
        }
        ag_model_free(m); /* before the bytes it borrows */
        free(bytes);
    }
    return rc;
}
