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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "bench_util.h"

#ifndef AG_SHARED_DIR
#define AG_SHARED_DIR "../shared"
#endif

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
    bench_random_prompt(tok, T, &in, 12345);
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
    bench_opts o = {AG_SHARED_DIR "/models/stories260K.bin", 256, 11, 1, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (bench_opts_arg(&o, argc, argv, &i)) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.T < 1 || o.runs < 1) {
        usage(stderr);
        return 2;
    }

    bench_print_machine("bench_forward");

    /* 1. sgemm peak */
    double peak = bench_sgemm_gflops(1024, 1024, 1024, 0, o.runs, NULL);
    double shaped = bench_sgemm_gflops(o.T, 1376, 512, 1, o.runs, NULL);
    printf("sgemm 1024x1024x1024 NN          %7.2f GFLOP/s (median of %d)   <- peak used for ratios\n", peak, o.runs);
    printf("sgemm %4dx1376x512 NT (MLP-like) %7.2f GFLOP/s (median of %d)\n", o.T, shaped, o.runs);

    int rc = 0;
    fwd_result res;
    /* 2a. the model file */
    if (o.do_file) {
        ag_model *m = bench_load_file_model(o.path, "bench_forward");
        if (!m) {
            rc = 1;
        } else {
            const char *base = strrchr(o.path, '/');
            rc |= bench_model(base ? base + 1 : o.path, m, o.T, o.runs, peak, &res);
        }
        ag_model_free(m);
    }
    /* 2b. the random model in memory */
    if (o.do_random) {
        void *bytes = NULL;
        ag_model *m = bench_load_random_model(o.T, &bytes, "bench_forward");
        if (!m) rc = 1;
        else rc |= bench_model("random-512x8 (memory)", m, o.T, o.runs, peak, &res);
        ag_model_free(m); /* before the bytes it borrows */
        free(bytes);
    }
    return rc;
}
