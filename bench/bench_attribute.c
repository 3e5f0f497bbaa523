/* bench_attribute: the attribution methods (ag_attribute) against the machine's sgemm peak.
 *
 *   bench_attribute [-m MODEL.bin|.gguf] [-T TOKENS] [-n RUNS] [--steps N] [--no-file] [--no-random]
 *
 * 1. cblas_sgemm peak: median GFLOP/s of 1024x1024x1024 (NN).
 * 2. On (a) MODEL (default: stories260K.bin from AG_SHARED_DIR) and (b) a random model of dim
 *    512, 8 layers, hidden 1376, 8 heads, vocab 4096 built in memory (llama2.c layout), over a
 *    T-token prompt (default 64; BOS then random ids), at the embeddings, target = the top logit
 *    at the last position:
 *      gradient  one backward pass over the trace;
 *      ig        integrated gradients with --steps Gauss-Legendre nodes (default 32): the nodes
 *                are batched through one forward and one backward pass (several if the
 *                automatic batch size is smaller).
 *    Median of RUNS after one warm-up. Reported: wall seconds, and for the forward and the
 *    backward phases separately (ag_attribution_get_stats) seconds, matmul GFLOP/s and the
 *    ratio to the sgemm peak.
 * OpenBLAS threads follow OPENBLAS_NUM_THREADS (the library never changes them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "bench_util.h"

#ifndef AG_SHARED_DIR
#define AG_SHARED_DIR "../shared"
#endif

typedef struct phase {
    double total_s, fwd_s, bwd_s, fwd_flops, bwd_flops;
    int64_t evals;
    int32_t batch;
} phase;

/* Median over runs of one ag_attribute configuration. */
static int bench_one(const ag_trace *t, const ag_attribute_options *o, int runs, phase *out) {
    double *tot = malloc(sizeof(double) * (size_t)runs), *fw = malloc(sizeof(double) * (size_t)runs),
           *bw = malloc(sizeof(double) * (size_t)runs);
    int rc = 0;
    memset(out, 0, sizeof *out);
    for (int i = -1; i < runs && !rc; i++) {
        ag_attribution *r = NULL;
        double t0 = bench_now();
        if (ag_attribute(t, o, &r) != AG_OK) {
            fprintf(stderr, "bench_attribute: %s\n", ag_last_error());
            rc = 1;
            break;
        }
        double dt = bench_now() - t0;
        ag_attribution_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        ag_attribution_get_stats(r, &st);
        if (i >= 0) {
            tot[i] = dt, fw[i] = st.forward_seconds, bw[i] = st.backward_seconds;
            out->fwd_flops = st.forward_flops, out->bwd_flops = st.backward_flops;
            out->evals = st.evaluations, out->batch = st.batch_size;
        }
        ag_attribution_free(r);
    }
    if (!rc) {
        out->total_s = bench_median(tot, (size_t)runs);
        out->fwd_s = bench_median(fw, (size_t)runs);
        out->bwd_s = bench_median(bw, (size_t)runs);
    }
    free(tot), free(fw), free(bw);
    return rc;
}

static void report(const char *what, const phase *p, double peak) {
    double gf = p->fwd_s > 0 ? p->fwd_flops / p->fwd_s * 1e-9 : 0, gb = p->bwd_s > 0 ? p->bwd_flops / p->bwd_s * 1e-9 : 0;
    printf("  %-10s %9.4f s total, %lld evaluations, batch %d\n", what, p->total_s, (long long)p->evals, p->batch);
    if (p->fwd_flops > 0)
        printf("  %-10s   forward  %9.4f s %8.3f GFLOP %7.2f GFLOP/s %5.1f%% of peak\n", "", p->fwd_s, p->fwd_flops * 1e-9, gf,
               100 * gf / peak);
    printf("  %-10s   backward %9.4f s %8.3f GFLOP %7.2f GFLOP/s %5.1f%% of peak\n", "", p->bwd_s, p->bwd_flops * 1e-9, gb,
           100 * gb / peak);
}

static int bench_model(const char *label, const ag_model *m, int T, int steps, int runs, double peak) {
    ag_model_info in;
    in.struct_size = sizeof in;
    ag_model_get_info(m, &in);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)T);
    bench_random_prompt(tok, T, &in, 99);
    ag_trace *t = NULL;
    if (ag_trace_create(&t, m, tok, (size_t)T, NULL) != AG_OK) {
        fprintf(stderr, "bench_attribute: %s\n", ag_last_error());
        free(tok);
        return 1;
    }
    printf("%s: dim %d, hidden %d, %d layers, %d heads, vocab %d, T = %d\n", label, in.dim, in.hidden_dim, in.n_layers,
           in.n_heads, in.vocab_size, T);
    ag_attribute_options o;
    AG_ATTRIBUTE_OPTIONS_INIT(o);
    o.site_kind = AG_SITE_EMBED;
    phase p;
    int rc = bench_one(t, &o, runs, &p);
    if (!rc) report("gradient", &p, peak);
    o.method = AG_METHOD_IG;
    o.quadrature = AG_QUAD_GAUSS_LEGENDRE;
    o.steps = steps;
    if (!rc && !(rc = bench_one(t, &o, runs, &p))) {
        char name[32];
        snprintf(name, sizeof name, "ig-%d", steps);
        report(name, &p, peak);
    }
    ag_trace_free(t);
    free(tok);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_attribute [-m MODEL] [-T TOKENS] [-n RUNS] [--steps N] [--no-file] [--no-random]\n");
}

int main(int argc, char **argv) {
    bench_opts o = {AG_SHARED_DIR "/models/stories260K.bin", 64, 5, 1, 1};
    int steps = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (bench_opts_arg(&o, argc, argv, &i)) continue;
        if (!strcmp(a, "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.T < 2 || o.runs < 1 || steps < 1) {
        usage(stderr);
        return 2;
    }
    bench_print_machine("bench_attribute");
    double peak = bench_sgemm_gflops(1024, 1024, 1024, 0, o.runs > 5 ? o.runs : 5, NULL);
    printf("sgemm 1024x1024x1024 NN %7.2f GFLOP/s   <- peak used for ratios\n", peak);
    int rc = 0;
    if (o.do_file) {
        ag_model *m = bench_load_file_model(o.path, "bench_attribute");
        if (!m) {
            rc = 1;
        } else {
            const char *base = strrchr(o.path, '/');
            rc |= bench_model(base ? base + 1 : o.path, m, o.T, steps, o.runs, peak);
        }
        ag_model_free(m);
    }
    if (o.do_random) {
        void *bytes = NULL;
        ag_model *m = bench_load_random_model(o.T, &bytes, "bench_attribute");
        if (!m) rc = 1;
        else rc |= bench_model("random-512x8 (memory)", m, o.T, steps, o.runs, peak);
        ag_model_free(m); /* before the bytes it borrows */
        free(bytes);
    }
    return rc;
}
