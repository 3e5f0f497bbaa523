/* bench_graph: attribution-graph building (ag_graph_build) against the machine's sgemm peak.
 *
 * 1. cblas_sgemm peak: median GFLOP/s of 1024x1024x1024.
 * 2. The case: a generated llama2.c model of dim 512, 8 layers, hidden 1376 (8 heads,
 *    vocab 512), a 64-token prompt, max_feature_nodes 2048, batch 256: seconds per phase
 *    (trace, ranking pass, exact rows, pruning, JSON export), rows/s, achieved GFLOP/s of the
 *    edge phases (ranking + exact rows) and its ratio to the sgemm peak, peak RSS.
 * 3. A long prompt on stories260K (1024 tokens by default; its context is 512, so the model's
 *    seq_len is raised in a copy of the file: RoPE has no table, so any length is valid)
 *    with max_feature_nodes 512 (--long-nodes): the same figures and peak memory. At
 *    T = 1024 the frozen attention step (2·T²·D FLOPs per target and layer) dominates.
 *
 * With --dump DIR it also writes, for bench/torch_graph.py (the straightforward PyTorch
 * autograd version of the same rows, run side by side): DIR/model.bin (the generated model),
 * DIR/rows.json (tokens, logit targets and weights, the expanded units, our wall time for
 * the rows, and a sample of our edges for cross-checking).
 *
 * Peak RSS is a process high-water mark: run the cases separately (--no-long / --no-gen) to
 * read each one's peak.
 *
 * usage: bench_graph [--quick] [--dump DIR] [--long-T N] [--long-nodes N] [--no-long] [--no-gen] */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "attrgraph.h"
#include "bench_util.h"

/* GFLOP per CPU-second of the peak sgemm: the peak per core-second, a fair yardstick when the
 * machine is shared (wall-clock ratios then depend on what else runs). */
static double g_peak_cpu = 0.0;

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

typedef struct run_result {
    double t_trace, t_rank, t_rows, t_prune, t_json, t_total;
    double gflops, ratio;
    int64_t rows;
} run_result;

static int run_case(const char *label, const ag_model *m, const int32_t *tok, int T, int max_nodes, double peak,
                    const char *dump_dir, run_result *res) {
    double t0 = bench_now();
    ag_trace *tr = NULL;
    double c_start;
    ag_status st = ag_trace_create(&tr, m, tok, (size_t)T, NULL);
    if (st != AG_OK) {
        fprintf(stderr, "%s: trace: %s\n", label, ag_last_error());
        return 1;
    }
    double t1 = bench_now();
    c_start = bench_cpu_now();
    ag_graph_options o;
    AG_GRAPH_OPTIONS_INIT(o);
    o.max_feature_nodes = max_nodes;
    o.batch_size = 256;
    ag_graph *g = NULL;
    st = ag_graph_build(&g, tr, &o);
    if (st != AG_OK) {
        fprintf(stderr, "%s: graph: %s\n", label, ag_last_error());
        ag_trace_free(tr);
        return 1;
    }
    double t2 = bench_now(), c_graph = bench_cpu_now() - c_start;
    char *js = NULL;
    size_t len = 0;
    ag_graph_json(g, NULL, &js, &len);
    double t3 = bench_now();
    ag_graph_info gi;
    gi.struct_size = sizeof gi;
    ag_graph_get_info(g, &gi);
    res->t_trace = t1 - t0;
    res->t_rank = gi.seconds_rank;
    res->t_rows = gi.seconds_rows;
    res->t_prune = gi.seconds_prune;
    res->t_json = t3 - t2;
    res->t_total = t3 - t0;
    res->rows = gi.rows_computed;
    double edge_s = gi.seconds_rank + gi.seconds_rows;
    res->gflops = edge_s > 0 ? gi.flops / edge_s / 1e9 : 0.0;
    res->ratio = peak > 0 ? res->gflops / peak : 0.0;
    printf("%s: T = %d, %lld units expanded of %lld, %lld logits, %lld nodes, %lld edges (kept %lld / %lld)\n", label, T,
           (long long)gi.n_units, (long long)gi.n_unit_candidates, (long long)gi.n_logits, (long long)gi.n_nodes,
           (long long)gi.n_edges, (long long)gi.n_kept_nodes, (long long)gi.n_kept_edges);
    printf("  trace %.3f s | ranking pass %.3f s | exact rows %.3f s | prune %.3f s | JSON %.3f s (%.1f MiB) | total %.3f s\n",
           res->t_trace, res->t_rank, res->t_rows, res->t_prune, res->t_json, len / 1048576.0, res->t_total);
    printf("  %lld target rows through the frozen VJP: %.0f rows/s; edge phases %.2f GFLOP/s = %.1f%% of sgemm peak\n",
           (long long)res->rows, res->rows / edge_s, res->gflops, 100.0 * res->ratio);
    printf("  CPU time of the build %.3f s (wall %.3f s): %.2f GFLOP per CPU-second = %.1f%% of sgemm's %.2f\n", c_graph,
           t2 - t1, gi.flops / c_graph / 1e9, 100.0 * gi.flops / c_graph / 1e9 / g_peak_cpu, g_peak_cpu);
    printf("  replacement %.4f, completeness %.4f (units only %.4f); peak RSS so far %.0f MiB\n", gi.replacement_score,
           gi.completeness_score, gi.completeness_score_units_only, peak_rss_mib());
    if (dump_dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/rows.json", dump_dir);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "cannot write %s\n", path);
        } else {
            fprintf(f, "{\"T\":%d,\"batch_size\":256,\"tokens\":[", T);
            for (int i = 0; i < T; i++) fprintf(f, "%s%d", i ? "," : "", (int)tok[i]);
            fprintf(f, "],\"ours_seconds\":{\"rank\":%.6f,\"rows\":%.6f,\"edges_total\":%.6f,\"build_cpu\":%.6f,\"build_wall\":%.6f,\"rows_computed\":%lld},",
                    gi.seconds_rank, gi.seconds_rows, edge_s, c_graph, t2 - t1, (long long)gi.rows_computed);
            size_t N = ag_graph_n_nodes(g);
            fprintf(f, "\"logits\":[");
            int first = 1;
            for (size_t i = 0; i < N; i++) {
                ag_node_info ni;
                ni.struct_size = sizeof ni;
                ag_graph_node_info(g, i, &ni);
                if (ni.kind != AG_NODE_LOGIT) continue;
                fprintf(f, "%s[%d,%.9g,%.9g]", first ? "" : ",", (int)ni.token, ni.weight, ni.value);
                first = 0;
            }
            fprintf(f, "],\"units\":[");
            first = 1;
            for (size_t i = 0; i < N; i++) {
                ag_node_info ni;
                ni.struct_size = sizeof ni;
                ag_graph_node_info(g, i, &ni);
                if (ni.kind != AG_NODE_UNIT) continue;
                fprintf(f, "%s[%d,%d,%d,%.9g]", first ? "" : ",", ni.layer, ni.position, ni.index, ni.value);
                first = 0;
            }
            /* a sample of our edges: every 7th target row, its edges from unit nodes */
            fprintf(f, "],\"sample_edges\":[");
            first = 1;
            for (size_t i = 0; i < N; i += 7) {
                ag_node_info ti;
                ti.struct_size = sizeof ti;
                ag_graph_node_info(g, i, &ti);
                if (ti.kind != AG_NODE_UNIT && ti.kind != AG_NODE_LOGIT) continue;
                size_t n = 0;
                ag_graph_node_edges(g, i, AG_EDGES_IN, 20, NULL, 0, &n);
                ag_edge e[20];
                ag_graph_node_edges(g, i, AG_EDGES_IN, 20, e, 20, &n);
                for (size_t k = 0; k < n; k++) {
                    ag_node_info si;
                    si.struct_size = sizeof si;
                    ag_graph_node_info(g, (size_t)e[k].source, &si);
                    if (si.kind != AG_NODE_UNIT && si.kind != AG_NODE_EMBEDDING) continue;
                    /* target: [kind(0 unit,1 logit), layer, pos, index or token]; source: [kind(0 unit, 2 emb), layer, pos, index] */
                    fprintf(f, "%s[[%d,%d,%d,%d],[%d,%d,%d,%d],%.9g]", first ? "" : ",", ti.kind == AG_NODE_LOGIT,
                            ti.layer, ti.position, ti.kind == AG_NODE_LOGIT ? ti.token : ti.index,
                            si.kind == AG_NODE_EMBEDDING ? 2 : 0, si.layer, si.position, si.index, e[k].weight);
                    first = 0;
                }
            }
            fprintf(f, "]}\n");
            fclose(f);
            printf("  wrote %s\n", path);
        }
    }
    ag_free(js);
    ag_graph_free(g);
    ag_trace_free(tr);
    return 0;
}

int main(int argc, char **argv) {
    int quick = 0, long_T = 1024, do_long = 1, do_gen = 1, long_nodes = 512;
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--no-long") == 0) do_long = 0;
        else if (strcmp(argv[i], "--no-gen") == 0) do_gen = 0;
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) dump = argv[++i];
        else if (strcmp(argv[i], "--long-T") == 0 && i + 1 < argc) long_T = atoi(argv[++i]);
        else if (strcmp(argv[i], "--long-nodes") == 0 && i + 1 < argc) long_nodes = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_graph [--quick] [--dump DIR] [--long-T N] [--long-nodes N] [--no-long] [--no-gen]\n");
            return 2;
        }
    }
    int runs = quick ? 3 : 7;
    double peak = bench_sgemm_gflops(1024, 1024, 1024, 0, runs, &g_peak_cpu);
    printf("sgemm 1024x1024x1024: %.2f GFLOP/s (median of %d) <- peak used for ratios; %.2f GFLOP per CPU-second\n", peak,
           runs, g_peak_cpu);
    int rc = 0;

    /* the generated model */
    bench_cfg c = {512, 1376, 8, 8, 8, 512, 256};
    if (!do_gen) goto long_case;
    size_t size;
    void *bin = bench_llama2c_model(&c, 1234, &size);
    if (!bin) return 1;
    if (dump) {
        if (mkdir(dump, 0777) != 0 && errno != EEXIST) { /* the directory is created if missing */
            fprintf(stderr, "cannot create %s: %s\n", dump, strerror(errno));
            return 1;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/model.bin", dump);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(bin, 1, size, f) != size) {
            fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
            if (f) fclose(f);
            return 1;
        }
        fclose(f);
    }
    ag_model *m = NULL;
    if (ag_model_load_memory(&m, bin, size, 0, "random-512x8", NULL) != AG_OK) {
        fprintf(stderr, "load: %s\n", ag_last_error());
        return 1;
    }
    int T = 64;
    int32_t tok[64];
    bench_rng r = {99};
    tok[0] = 1;
    for (int i = 1; i < T; i++) tok[i] = bench_rng_int(&r, 3, c.vocab_size);
    run_result res;
    rc |= run_case("generated dim 512, 8 layers, hidden 1376", m, tok, T, 2048, peak, dump, &res);
    ag_model_free(m);
    free(bin);
    printf("peak RSS after the generated-model graph: %.0f MiB\n", peak_rss_mib());
long_case:

    if (do_long) {
        /* stories260K with a raised context for a long prompt */
        FILE *f = fopen(AG_SHARED_DIR "/models/stories260K.bin", "rb");
        if (!f) {
            fprintf(stderr, "no stories260K.bin under %s\n", AG_SHARED_DIR);
            return rc | 1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        unsigned char *b = malloc((size_t)n);
        if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) return 1;
        fclose(f);
        int32_t hdr[7];
        memcpy(hdr, b, sizeof hdr);
        if (hdr[6] < long_T) hdr[6] = long_T; /* seq_len: only a limit (RoPE is computed) */
        /* the legacy RoPE tables follow the weights and are sized by seq_len: rebuild the
         * file with tables of the new length (zeros; readers ignore them) */
        int32_t D = hdr[0], H = hdr[3], old_S;
        memcpy(&old_S, b + 24, 4);
        size_t hs = (size_t)(D / H), tables_old = (size_t)old_S * hs * 4, tables_new = (size_t)hdr[6] * hs * 4;
        size_t V = (size_t)(hdr[5] < 0 ? -hdr[5] : hdr[5]);
        size_t wcls = hdr[5] < 0 ? V * (size_t)D * 4 : 0;
        size_t before = (size_t)n - tables_old - wcls;
        size_t nn = before + tables_new + wcls;
        unsigned char *nb = calloc(1, nn);
        memcpy(nb, b, before);
        memcpy(nb, hdr, sizeof hdr);
        if (wcls) memcpy(nb + before + tables_new, b + before + tables_old, wcls);
        free(b);
        ag_model *sm = NULL;
        if (ag_model_load_memory(&sm, nb, nn, 0, "stories260K (long context)", NULL) != AG_OK) {
            fprintf(stderr, "load stories260K: %s\n", ag_last_error());
            return rc | 1;
        }
        int32_t *lt = malloc(sizeof(int32_t) * (size_t)long_T);
        bench_rng r2 = {5};
        lt[0] = 1;
        for (int i = 1; i < long_T; i++) lt[i] = bench_rng_int(&r2, 3, 512);
        run_result lr;
        rc |= run_case("stories260K long prompt", sm, lt, long_T, long_nodes, peak, NULL, &lr);
        printf("peak RSS after the long-prompt graph: %.0f MiB\n", peak_rss_mib());
        free(lt);
        ag_model_free(sm);
        free(nb);
    }
    return rc;
}
