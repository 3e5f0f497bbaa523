/* attrgraph graph (DESIGN §4): build, prune and export an attribution graph. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "progress.h"

static int run_graph(cli_args *a) {
    const char *cmd = "graph";
    ag_graph_options go;
    AG_GRAPH_OPTIONS_INIT(go);
    if (cli_opt_i32(a, "--max-feature-nodes", 0, INT32_MAX, &go.max_feature_nodes) ||
        cli_opt_i32(a, "--max-logits", 1, INT32_MAX, &go.max_logits) || cli_opt_i32(a, "--batch-size", 1, 1 << 20, &go.batch_size) ||
        cli_opt_i32(a, "--ig-steps", 1, 1 << 16, &go.ig_steps) || cli_opt_f64(a, "--logit-prob", &go.logit_prob) ||
        cli_opt_f64(a, "--node-threshold", &go.node_threshold) || cli_opt_f64(a, "--edge-threshold", &go.edge_threshold))
        return 1;
    const char *s;
    if ((s = cli_opt(a, NULL, "--method"))) {
        if (strcmp(s, "decomposition") == 0) go.method = AG_METHOD_DECOMPOSITION;
        else if (strcmp(s, "gradient") == 0) go.method = AG_METHOD_GRADIENT;
        else if (strcmp(s, "ig") == 0) go.method = AG_METHOD_IG;
        else return cli_fail(cmd, "--method '%s' must be decomposition, gradient or ig", s);
    }
    if ((s = cli_opt(a, NULL, "--basis"))) {
        if (strcmp(s, "neurons") == 0) go.basis = AG_BASIS_NEURONS;
        else if (strcmp(s, "transcoders") == 0) go.basis = AG_BASIS_TRANSCODERS;
        else return cli_fail(cmd, "--basis '%s' must be neurons or transcoders", s);
    }
    const char *transcoders = cli_opt(a, NULL, "--transcoders");
    if (transcoders && go.basis != AG_BASIS_TRANSCODERS) return cli_fail(cmd, "--transcoders needs --basis transcoders");
    const char *targets_s = cli_opt(a, NULL, "--targets");
    const char *out_json = cli_opt(a, "-o", "--output");
    const char *out_dot = cli_opt(a, NULL, "--dot");
    const char *out_html = cli_opt(a, NULL, "--html");
    const char *slug = cli_opt(a, NULL, "--slug");
    int quiet = cli_flag(a, "-q", "--quiet");
    int no_timings = cli_flag(a, NULL, "--no-timings");
    int all = cli_flag(a, NULL, "--unpruned");
    if (!out_json && !out_dot && !out_html) return cli_fail(cmd, "no output: give -o G.json (and/or --dot G.dot, --html G.html)");
    const char *prompt = NULL;
    for (int i = 1; i < a->argc - 1; i++)
        if (strcmp(a->argv[i], "-p") == 0 || strcmp(a->argv[i], "--prompt") == 0) prompt = a->argv[i + 1];

    ag_model *m;
    if (cli_load_model(a, cmd, 0, &m)) return 1;
    int32_t *toks = NULL, *tids = NULL;
    size_t n = 0, nt = 0;
    ag_graph_target *tg = NULL;
    ag_trace *t = NULL;
    ag_graph *g = NULL;
    int rc = cli_prompt_tokens(a, cmd, m, &toks, &n);
    if (!rc && targets_s) {
        rc = cli_parse_int_list(targets_s, "--targets", &tids, &nt);
        if (!rc) {
            tg = calloc(nt, sizeof *tg);
            if (!tg) rc = cli_fail(cmd, "out of memory");
            for (size_t i = 0; !rc && i < nt; i++) {
                tg[i].kind = AG_GRAPH_TARGET_TOKEN;
                tg[i].token = tids[i];
            }
            go.targets = tg;
            go.n_targets = (int32_t)nt;
        }
    }
    if (!rc) rc = cli_check_unused(a, cmd);
    ag_transcoder *tcs = NULL; /* --basis transcoders --transcoders DIR (issue #6) */
    if (!rc && go.basis == AG_BASIS_TRANSCODERS) {
        ag_status st = transcoders ? ag_transcoder_load(&tcs, transcoders, m, NULL) : AG_ERR_INVALID_ARGUMENT;
        if (!transcoders) rc = cli_fail(cmd, "--basis transcoders needs --transcoders DIR");
        else if (st != AG_OK) rc = cli_fail_status(cmd, st);
        go.transcoders = tcs;
    }
    if (!rc) {
        ag_status st = ag_trace_create(&t, m, toks, n, NULL);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        /* a bar with ETA on a terminal, plain lines otherwise, nothing with -q; Ctrl-C cancels */
        cli_progress pr;
        cli_progress_begin(&pr, cmd, quiet);
        go.progress = cli_progress_cb;
        go.user_data = &pr;
        ag_status st = ag_graph_build(&g, t, &go);
        cli_progress_end(&pr, st);
        if (st == AG_ERR_CANCELLED) rc = 130;
        else if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        ag_export_options eo;
        AG_EXPORT_OPTIONS_INIT(eo);
        eo.slug = slug;
        eo.prompt = prompt;
        eo.include_timings = !no_timings;
        eo.pruned = !all;
        ag_status st = AG_OK;
        if (out_json) st = ag_graph_write_json(g, out_json, &eo);
        if (st == AG_OK && out_dot) st = ag_graph_write_dot(g, out_dot, &eo);
        if (st == AG_OK && out_html) st = ag_graph_write_html(g, out_html, &eo);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc && !quiet) {
        ag_graph_info gi;
        gi.struct_size = sizeof gi;
        ag_graph_get_info(g, &gi);
        fprintf(stderr,
                "attrgraph graph: %lld nodes (%lld units expanded of %lld), %lld edges; kept %lld nodes, %lld edges; "
                "replacement %.4f, completeness %.4f (units only %.4f); %.2f s\n",
                (long long)gi.n_nodes, (long long)gi.n_units, (long long)gi.n_unit_candidates, (long long)gi.n_edges,
                (long long)gi.n_kept_nodes, (long long)gi.n_kept_edges, gi.replacement_score, gi.completeness_score,
                gi.completeness_score_units_only, gi.seconds_total);
    }
    /* the answer in text: the 3 strongest paths to each target (attrgraph show G.json has more) */
    if (!rc && !quiet && out_json) rc = cli_show_top_paths(stdout, cmd, out_json, 3);
    ag_graph_free(g);
    ag_transcoder_free(tcs);
    ag_trace_free(t);
    free(tg);
    free(tids);
    free(toks);
    ag_model_free(m);
    return rc;
}

const cli_command cli_cmd_graph = {
    "graph", "build, prune and export an attribution graph (viewer JSON, DOT)",
    "usage: attrgraph graph -m MODEL [-z TOKENIZER] (-p TEXT | -t IDS) -o G.json [--dot G.dot] [--html G.html]\n"
    "                       [--method decomposition|gradient|ig [--ig-steps N]] [--basis neurons | --basis transcoders --transcoders DIR]\n"
    "                       [--max-feature-nodes N] [--max-logits K] [--logit-prob P]\n"
    "                       [--node-threshold X] [--edge-threshold Y] [--targets ID,ID,...]\n"
    "                       [--batch-size B] [--slug NAME] [--unpruned] [--no-timings] [-q]\n\n"
    "Builds the attribution graph of the prompt (DESIGN §1.2): nodes are the token embeddings,\n"
    "the MLP neurons of every layer and position, one error node per (layer, position) and\n"
    "the logit targets (default: top tokens at the last position until their probability\n"
    "reaches --logit-prob 0.95, at most --max-logits 10). Every link weight is the direct\n"
    "effect of its source on its target in the frozen local replacement model, so a target's\n"
    "incoming links sum to its value. At most --max-feature-nodes (default 7500; 0 = all)\n"
    "neurons are expanded, greedily by influence; the rest fold into their error node.\n"
    "--method gradient gives attribution-patching edges instead (the real model's Jacobian,\n"
    "MLP outputs still held fixed: first-order direct effects, which do not sum exactly).\n"
    "--method ig averages those edges along alpha x the embeddings (alpha on --ig-steps 16\n"
    "midpoint nodes of [0,1]; EAP-IG's path-averaged edges).\n""With --basis transcoders the units are the features of a transcoder set (attrgraph transcoder\n"
    "train), error nodes carry MLP output minus reconstruction, and feature labels become clerps.\n"
    "The graph is pruned (--node-threshold 0.8, --edge-threshold 0.98; --unpruned writes\n"
    "everything) and written as the attribution-graph viewer JSON (-o) and Graphviz DOT\n"
    "(--dot, layers as ranks, blue = positive, red = negative), or as a self-contained\n"
    "interactive viewer page (--html). Output is deterministic;\n"
    "--no-timings also leaves the build's timings out so two runs give the same bytes.\n"
    "--html writes the interactive viewer: one self-contained HTML file (no network, opens\n"
    "from file://) with the same JSON embedded.\n"
    "Progress goes to stderr: a bar with ETA on a terminal, plain lines otherwise (-q: none);\n"
    "Ctrl-C stops the build cleanly (exit status 130). Then it prints the 3 strongest paths to each\n"
    "target logit on stdout (as attrgraph show G.json --paths 3 does; -q: not printed).\n",
    run_graph};
