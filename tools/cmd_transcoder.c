/* attrgraph transcoder train|eval|label (DESIGN §1.6, issue #6). JSON on stdout, progress on
 * stderr. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct tc_progress {
    int quiet;
    double t0;
    cli_progress bar; /* the shared bar on a terminal; also turns Ctrl-C into a cancel */
} tc_progress;

static int progress_cb(const ag_transcoder_progress *p, void *user) {
    tc_progress *tp = user;
    int stop = cli_progress_update(&tp->bar, p->phase, (double)p->step, (double)p->total_steps);
    if (tp->quiet || tp->bar.mode == CLI_PROGRESS_BAR) return stop;
    double el = mono_s() - tp->t0;
    if (strcmp(p->phase, "train") == 0) {
        double frac = p->total_steps ? (double)p->step / (double)p->total_steps : 0.0;
        int w = 20, k = (int)(frac * w + 0.5);
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < k ? '#' : '-';
        bar[w] = '\0';
        fprintf(stderr,
                "attrgraph transcoder: [%s] step %lld/%lld  loss %.4f  fvu %.4f  L0 %.1f  dead %.3f  lr %.2e  l1 %.2f  %.0f s\n",
                bar, (long long)p->step, (long long)p->total_steps, p->loss, p->fvu, p->l0, p->dead_fraction, p->learning_rate,
                p->sparsity_coefficient, el);
    } else if (p->total_steps > 1 && p->step > 0) {
        if (p->step == p->total_steps || p->step % 64 == 0)
            fprintf(stderr, "attrgraph transcoder: %s %lld/%lld windows  %.0f s\n", p->phase, (long long)p->step, (long long)p->total_steps, el);
    } else {
        fprintf(stderr, "attrgraph transcoder: %s ...  %.0f s\n", p->phase, el);
    }
    return stop;
}

static void json_info(json_out *j, const ag_transcoder *tc) {
    ag_transcoder_info ti;
    ti.struct_size = sizeof ti;
    ag_transcoder_get_info(tc, &ti);
    json_key(j, "kind");
    json_str(j, ti.kind == AG_TRANSCODER_CROSS_LAYER ? "clt" : "plt");
    json_key(j, "activation");
    json_str(j, ti.activation == AG_ACTIVATION_TOPK ? "topk" : ti.activation == AG_ACTIVATION_JUMPRELU ? "jumprelu" : "relu");
    json_key(j, "read_point");
    json_str(j, ti.read_point == AG_READ_RESID_MID ? "resid_mid" : "mlp_in");
    json_key(j, "n_layers");
    json_int(j, ti.n_layers);
    json_key(j, "d_model");
    json_int(j, ti.d_model);
    json_key(j, "n_features");
    json_int(j, ti.n_features);
    if (ti.k) {
        json_key(j, "k");
        json_int(j, ti.k);
    }
}

static int run_train(cli_args *a, const char *cmd) {
    ag_transcoder_train_options o;
    AG_TRANSCODER_TRAIN_OPTIONS_INIT(o);
    const char *s;
    if ((s = cli_opt(a, NULL, "--kind"))) {
        if (strcmp(s, "plt") == 0) o.kind = AG_TRANSCODER_PER_LAYER;
        else if (strcmp(s, "clt") == 0) o.kind = AG_TRANSCODER_CROSS_LAYER;
        else return cli_fail(cmd, "--kind '%s' must be plt or clt", s);
    }
    if ((s = cli_opt(a, NULL, "--activation"))) {
        if (strcmp(s, "relu") == 0) o.activation = AG_ACTIVATION_RELU;
        else if (strcmp(s, "topk") == 0) o.activation = AG_ACTIVATION_TOPK;
        else return cli_fail(cmd, "--activation '%s' must be relu or topk", s);
    }
    if ((s = cli_opt(a, NULL, "--read-point"))) {
        if (strcmp(s, "mlp_in") == 0) o.read_point = AG_READ_MLP_IN;
        else if (strcmp(s, "resid_mid") == 0) o.read_point = AG_READ_RESID_MID;
        else return cli_fail(cmd, "--read-point '%s' must be mlp_in or resid_mid", s);
    }
    if (cli_opt_i32(a, "--features", 1, 1 << 24, &o.n_features) || cli_opt_i32(a, "--k", 1, 1 << 24, &o.k) ||
        cli_opt_i64(a, "--corpus-tokens", 1, (long long)1 << 40, &o.corpus_tokens) || cli_opt_f32(a, "--temperature", &o.temperature) ||
        cli_opt_i32(a, "--context", 2, 1 << 20, &o.context) || cli_opt_i64(a, "--buffer", 2, (long long)1 << 40, &o.buffer_tokens) ||
        cli_opt_i64(a, "--steps", 1, (long long)1 << 40, &o.steps) || cli_opt_i32(a, "--batch-size", 1, 1 << 20, &o.batch_size) ||
        cli_opt_f32(a, "--lr", &o.learning_rate) || cli_opt_i64(a, "--warmup", 0, (long long)1 << 40, &o.warmup_steps) ||
        cli_opt_f32(a, "--l1", &o.sparsity_coefficient) || cli_opt_i64(a, "--dead-steps", 1, (long long)1 << 40, &o.dead_steps) ||
        cli_opt_i64(a, "--resample-every", 0, (long long)1 << 40, &o.resample_every) ||
        cli_opt_i64(a, "--checkpoint-every", 0, (long long)1 << 40, &o.checkpoint_every) ||
        cli_opt_i64(a, "--progress-every", 1, (long long)1 << 40, &o.progress_every))
        return 1;
    if (cli_opt_u64(a, "--seed", &o.seed)) return 1;
    if (cli_flag(a, NULL, "--skip")) o.skip = 1;
    if (cli_flag(a, NULL, "--keep-bos")) o.skip_bos = 0;
    o.corpus_path = cli_opt(a, NULL, "--corpus");
    o.checkpoint_path = cli_opt(a, NULL, "--checkpoint");
    o.resume_path = cli_opt(a, NULL, "--resume");
    const char *out = cli_opt(a, "-o", "--output");
    int quiet = cli_flag(a, "-q", "--quiet");
    if (!out) return cli_fail(cmd, "no output: give -o DIR (the transcoder directory to write)");
    ag_model *m;
    if (cli_load_model(a, cmd, o.corpus_path != NULL, &m)) return 1;
    if (cli_check_unused(a, "transcoder train")) {
        ag_model_free(m);
        return 1;
    }
    tc_progress tp = {quiet, mono_s(), {0}};
    cli_progress_begin(&tp.bar, "transcoder", quiet || !isatty(STDERR_FILENO));
    o.progress = progress_cb;
    o.user_data = &tp;
    double c0 = cpu_s(), t0 = mono_s();
    ag_transcoder *tc = NULL;
    ag_status st = ag_transcoder_train(&tc, m, &o);
    cli_progress_end(&tp.bar, st);
    double wall = mono_s() - t0, cpu = cpu_s() - c0;
    int rc = 0;
    if (st != AG_OK) rc = cli_fail_status(cmd, st);
    if (!rc) {
        st = ag_transcoder_save(tc, out);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        json_out j;
        json_begin(&j, stdout);
        json_obj_open(&j);
        json_key(&j, "output");
        json_str(&j, out);
        json_info(&j, tc);
        json_key(&j, "steps");
        json_int(&j, o.steps);
        json_key(&j, "batch_size");
        json_int(&j, o.batch_size);
        json_key(&j, "tokens_trained");
        json_int(&j, (long long)o.steps * o.batch_size);
        json_key(&j, "wall_seconds");
        json_num(&j, wall);
        json_key(&j, "cpu_seconds");
        json_num(&j, cpu);
        json_obj_close(&j);
        json_end(&j);
    }
    ag_transcoder_free(tc);
    ag_model_free(m);
    return rc;
}

static int eval_opts(cli_args *a, ag_transcoder_eval_options *o) {
    o->corpus_path = cli_opt(a, NULL, "--corpus");
    if (cli_opt_i64(a, "--tokens-eval", 1, (long long)1 << 40, &o->n_tokens) || cli_opt_i32(a, "--context", 2, 1 << 20, &o->context) ||
        cli_opt_f32(a, "--temperature", &o->temperature) || cli_opt_u64(a, "--seed", &o->seed) ||
        cli_opt_i32(a, "--top-contexts", 1, 1000, &o->top_contexts) || cli_opt_i32(a, "--top-tokens", 1, 1000, &o->top_tokens))
        return 1;
    return 0;
}

static int run_eval(cli_args *a, const char *cmd, int label) {
    ag_transcoder_eval_options o;
    AG_TRANSCODER_EVAL_OPTIONS_INIT(o);
    if (eval_opts(a, &o)) return 1;
    const char *dir = cli_opt(a, NULL, "--transcoders");
    const char *out = label ? cli_opt(a, "-o", "--output") : NULL;
    int quiet = cli_flag(a, "-q", "--quiet");
    if (!dir) return cli_fail(cmd, "give --transcoders DIR");
    ag_model *m;
    if (cli_load_model(a, cmd, o.corpus_path != NULL || label, &m)) return 1;
    if (cli_check_unused(a, label ? "transcoder label" : "transcoder eval")) {
        ag_model_free(m);
        return 1;
    }
    ag_transcoder *tc = NULL;
    ag_status st = ag_transcoder_load(&tc, dir, m, NULL);
    if (st != AG_OK) {
        ag_model_free(m);
        return cli_fail_status(cmd, st);
    }
    tc_progress tp = {quiet, mono_s(), {0}};
    cli_progress_begin(&tp.bar, "transcoder", quiet || !isatty(STDERR_FILENO));
    o.progress = progress_cb;
    o.user_data = &tp;
    ag_transcoder_info ti;
    ti.struct_size = sizeof ti;
    ag_transcoder_get_info(tc, &ti);
    int rc = 0;
    double t0 = mono_s();
    json_out j;
    if (label) {
        st = ag_transcoder_label(tc, m, &o);
        cli_progress_end(&tp.bar, st);
        if (st == AG_OK) st = ag_transcoder_save(tc, out ? out : dir);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
        else {
            json_begin(&j, stdout);
            json_obj_open(&j);
            json_key(&j, "output");
            json_str(&j, out ? out : dir);
            json_info(&j, tc);
            json_key(&j, "examples");
            json_arr_open(&j);
            for (int l = 0; l < ti.n_layers; l++)
                for (int i = 0; i < 3 && i < ti.n_features; i++) {
                    const char *lab = NULL;
                    ag_transcoder_feature_label(tc, l, i, &lab);
                    json_obj_open(&j);
                    json_key(&j, "layer");
                    json_int(&j, l);
                    json_key(&j, "feature");
                    json_int(&j, i);
                    json_key(&j, "label");
                    json_str(&j, lab ? lab : "");
                    json_obj_close(&j);
                }
            json_arr_close(&j);
            json_key(&j, "seconds");
            json_num(&j, mono_s() - t0);
            json_obj_close(&j);
            json_end(&j);
        }
    } else {
        ag_transcoder_layer_stats *ls = calloc((size_t)ti.n_layers, sizeof *ls);
        ag_transcoder_eval e;
        e.struct_size = sizeof e;
        if (!ls) st = AG_ERR_OUT_OF_MEMORY;
        if (st == AG_OK) st = ag_transcoder_evaluate(tc, m, &o, ls, &e);
        cli_progress_end(&tp.bar, st);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
        else {
            json_begin(&j, stdout);
            json_obj_open(&j);
            json_key(&j, "transcoders");
            json_str(&j, dir);
            json_info(&j, tc);
            json_key(&j, "n_tokens");
            json_int(&j, e.n_tokens);
            json_key(&j, "layers");
            json_arr_open(&j);
            for (int l = 0; l < ti.n_layers; l++) {
                json_obj_open(&j);
                json_key(&j, "layer");
                json_int(&j, l);
                json_key(&j, "fvu");
                json_num(&j, ls[l].fvu);
                json_key(&j, "mse");
                json_num(&j, ls[l].mse);
                json_key(&j, "l0");
                json_num(&j, ls[l].l0);
                json_key(&j, "dead_fraction");
                json_num(&j, ls[l].dead_fraction);
                json_obj_close(&j);
            }
            json_arr_close(&j);
            json_key(&j, "mean_fvu");
            json_num(&j, e.mean_fvu);
            json_key(&j, "mean_l0");
            json_num(&j, e.mean_l0);
            json_key(&j, "mean_dead_fraction");
            json_num(&j, e.mean_dead_fraction);
            json_key(&j, "loss_model");
            json_num(&j, e.loss_model);
            json_key(&j, "loss_replacement");
            json_num(&j, e.loss_replacement);
            json_key(&j, "loss_zero_ablation");
            json_num(&j, e.loss_zero_ablation);
            json_key(&j, "loss_recovered");
            json_num(&j, e.loss_recovered);
            json_key(&j, "loss_ratio");
            json_num(&j, e.loss_replacement / e.loss_model);
            json_key(&j, "seconds");
            json_num(&j, mono_s() - t0);
            json_obj_close(&j);
            json_end(&j);
        }
        free(ls);
    }
    ag_transcoder_free(tc);
    ag_model_free(m);
    return rc;
}

static int run_transcoder(cli_args *a) {
    const char *cmd = "transcoder";
    if (a->argc < 3) return cli_fail(cmd, "give a subcommand: train, eval or label (attrgraph transcoder --help)");
    const char *sub = a->argv[2];
    a->used[2] = 1;
    if (strcmp(sub, "train") == 0) return run_train(a, "transcoder train");
    if (strcmp(sub, "eval") == 0) return run_eval(a, "transcoder eval", 0);
    if (strcmp(sub, "label") == 0) return run_eval(a, "transcoder label", 1);
    return cli_fail(cmd, "unknown subcommand '%s' (train, eval or label)", sub);
}

const cli_command cli_cmd_transcoder = {
    "transcoder", "train, evaluate and label transcoders (per-layer or cross-layer)",
    "usage: attrgraph transcoder train -m MODEL [-z TOK] -o DIR [--kind plt|clt] [--features N]\n"
    "                                  [--activation relu|topk] [--k K] [--read-point mlp_in|resid_mid]\n"
    "                                  [--skip] [--corpus FILE | --corpus-tokens N --temperature T]\n"
    "                                  [--context N] [--buffer TOKENS] [--seed S] [--steps N]\n"
    "                                  [--batch-size N] [--lr X] [--warmup N] [--l1 X] [--dead-steps N]\n"
    "                                  [--resample-every N] [--checkpoint DIR] [--checkpoint-every N]\n"
    "                                  [--resume DIR] [--keep-bos] [--progress-every N] [-q]\n"
    "       attrgraph transcoder eval  -m MODEL [-z TOK] --transcoders DIR [--corpus FILE]\n"
    "                                  [--tokens-eval N] [--context N] [--seed S] [-q]\n"
    "       attrgraph transcoder label -m MODEL -z TOK --transcoders DIR [-o DIR] [--corpus FILE]\n"
    "                                  [--tokens-eval N] [--top-contexts K] [--top-tokens K] [-q]\n\n"
    "train: collects the MLP inputs and outputs of every block over a corpus (a UTF-8 text file, or\n"
    "  --corpus-tokens of text sampled from the model with --seed) and trains a transcoder set with\n"
    "  Adam (L1 sparsity weighted by decoder norms, or TopK), dead-feature resampling and a\n"
    "  warm-up/decay schedule; writes DIR in the circuit-tracer safetensors layout. Progress with\n"
    "  loss, FVU, L0 and dead fraction goes to stderr; a JSON summary (wall and CPU seconds) to stdout.\n"
    "eval: per-layer fraction of variance unexplained, L0 and dead fraction on held-out text (default:\n"
    "  65536 sampled tokens, seed 12345), and next-token loss of the real model, of the replacement\n"
    "  model (every MLP output replaced by its reconstruction) and of the zero-ablated model.\n"
    "label: top-activating contexts and top output tokens of every feature, written to DIR/labels.json\n"
    "  (graphs on these transcoders use them as node labels).\n",
    run_transcoder};
