/* attrgraph train | world: train a model on the synthetic world (the built-in model's recipe
 * by default), and show or score the world's tasks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

static const char *const TASK_NAMES[AG_WORLD_N_TASKS] = {"induction", "retrieval", "one_hop", "two_hop", "city"};

/* ---- train ------------------------------------------------------------------------------- */

typedef struct train_ui {
    cli_progress bar;
    int64_t log_every;
} train_ui;

static int on_progress(const ag_train_progress *p, void *user) {
    train_ui *ui = user;
    if (ui->bar.mode != CLI_PROGRESS_QUIET && (p->step % ui->log_every == 0 || p->step == p->total_steps)) {
        char el[24];
        cli_progress_format_time(p->elapsed_seconds, el, sizeof el);
        /* a log line above the bar: clear the bar's line, print, the bar redraws below */
        fprintf(stderr, "%sattrgraph train: step %lld/%lld  loss %.4f (avg %.4f)  lr %.2e  grad %.3f  %.0f tok/s  %s\n",
                ui->bar.mode == CLI_PROGRESS_BAR ? "\r\033[K" : "", (long long)p->step, (long long)p->total_steps,
                (double)p->loss, (double)p->loss_avg, (double)p->learning_rate, (double)p->grad_norm,
                p->tokens_per_second, el);
        ui->bar.drawn = 0;
    }
    return cli_progress_update(&ui->bar, "train", (double)p->step, (double)p->total_steps);
}

static void print_eval(json_out *j, const ag_world_eval *e) {
    json_obj_open(j);
    for (int t = 0; t < AG_WORLD_N_TASKS; t++) {
        json_key(j, TASK_NAMES[t]);
        json_obj_open(j);
        json_key(j, "accuracy");
        json_num(j, e->accuracy[t]);
        json_key(j, "correct");
        json_int(j, e->n_correct[t]);
        json_key(j, "scored");
        json_int(j, e->n_scored[t]);
        json_key(j, "prompts");
        json_int(j, e->n_prompts[t]);
        json_obj_close(j);
    }
    json_obj_close(j);
}

static int run_train(cli_args *a) {
    const char *cmd = "train";
    ag_train_options o;
    AG_TRAIN_OPTIONS_INIT(o);
    (void)cli_flag(a, NULL, "--world"); /* the synthetic world is the corpus (the only one) */
    int64_t n_eval = 500;
    if (cli_opt_u64(a, "--world-seed", &o.world_seed) || cli_opt_u64(a, "--seed", &o.seed) ||
        cli_opt_i32(a, "--dim", 2, 4096, &o.dim) || cli_opt_i32(a, "--hidden", 1, 16384, &o.hidden_dim) ||
        cli_opt_i32(a, "--layers", 1, 64, &o.n_layers) || cli_opt_i32(a, "--heads", 1, 256, &o.n_heads) ||
        cli_opt_i32(a, "--kv-heads", 1, 256, &o.n_kv_heads) || cli_opt_i32(a, "--seq-len", 2, 4096, &o.seq_len) ||
        cli_opt_i32(a, "--batch", 1, 65536, &o.batch_size) || cli_opt_i64(a, "--steps", 1, 1000000000, &o.steps) ||
        cli_opt_i64(a, "--warmup", 0, 1000000000, &o.warmup_steps) || cli_opt_f32(a, "--lr", &o.learning_rate) ||
        cli_opt_f32(a, "--min-lr", &o.min_learning_rate) || cli_opt_f32(a, "--weight-decay", &o.weight_decay) ||
        cli_opt_f32(a, "--beta1", &o.beta1) || cli_opt_f32(a, "--beta2", &o.beta2) || cli_opt_f32(a, "--clip", &o.grad_clip) ||
        cli_opt_i64(a, "--checkpoint-every", 0, INT64_MAX, &o.checkpoint_every) || cli_opt_i64(a, "--eval", 0, 1000000, &n_eval))
        return 1;
    if (cli_flag(a, NULL, "--tied")) o.shared_classifier = 1;
    o.output_path = cli_opt(a, "-o", "--output");
    o.checkpoint_path = cli_opt(a, NULL, "--checkpoint");
    o.resume_path = cli_opt(a, NULL, "--resume");
    int quiet = cli_flag(a, "-q", "--quiet");
    if (cli_check_unused(a, cmd)) return 1;
    if (!o.output_path) return cli_fail(cmd, "no output file: give -o MODEL.gguf");
    /* the exact command, recorded in the model file */
    size_t len = 16;
    for (int i = 1; i < a->argc; i++) len += strlen(a->argv[i]) + 3;
    char *line = malloc(len);
    if (!line) return cli_fail(cmd, "out of memory");
    strcpy(line, "attrgraph");
    for (int i = 1; i < a->argc; i++) {
        int quote = strchr(a->argv[i], ' ') != NULL;
        strcat(line, quote ? " '" : " ");
        strcat(line, a->argv[i]);
        if (quote) strcat(line, "'");
    }
    o.command = line;
    train_ui ui;
    ui.log_every = o.steps >= 20 ? o.steps / 20 : 1;
    cli_progress_begin(&ui.bar, cmd, quiet);
    o.progress = on_progress;
    o.user_data = &ui;
    o.progress_every = 1;
    ag_model *m = NULL;
    ag_status st = ag_train(&m, &o);
    cli_progress_end(&ui.bar, st);
    free(line);
    if (st == AG_ERR_CANCELLED) return 130;
    if (st != AG_OK) return cli_fail_status(cmd, st);
    ag_world_eval e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    if (n_eval > 0) {
        st = ag_world_evaluate(m, o.world_seed, (int32_t)n_eval, &e);
        if (st != AG_OK) {
            ag_model_free(m);
            return cli_fail_status(cmd, st);
        }
    }
    json_out j;
    json_begin(&j, stdout);
    json_obj_open(&j);
    json_key(&j, "output");
    json_str(&j, o.output_path);
    json_key(&j, "steps");
    json_int(&j, o.steps);
    json_key(&j, "tokens");
    json_int(&j, (long long)o.steps * o.batch_size * o.seq_len);
    if (n_eval > 0) {
        json_key(&j, "accuracy");
        print_eval(&j, &e);
    }
    json_obj_close(&j);
    json_end(&j);
    ag_model_free(m);
    return 0;
}

const cli_command cli_cmd_train = {
    "train", "train a small Llama on the synthetic world (the built-in model's recipe)",
    "usage: attrgraph train [--world] -o MODEL.gguf [options]\n\n"
    "Trains a Llama-architecture model from scratch on the synthetic world of `attrgraph world`\n"
    "(AdamW, linear warm-up then cosine decay, gradient clipping; deterministic for a seed and\n"
    "an OpenBLAS thread count), writes it as GGUF with its tokenizer and the command line, then\n"
    "prints the held-out greedy accuracy per task as JSON. Progress (loss, tokens/s) on stderr.\n"
    "The defaults are the built-in model's recipe (README \"The built-in model\").\n\n"
    "  -o, --output PATH        the GGUF to write (required)\n"
    "  --world-seed S           the world (default 1)           --seed S   initialisation (default 1)\n"
    "  --dim D --hidden H --layers L --heads H --kv-heads K     (default 96, 256, 4, 8, 8)\n"
    "  --seq-len T              training context (default 64)   --tied     share embedding and classifier\n"
    "  --steps N --batch B      (default 4000, 32)              --warmup N (default 100)\n"
    "  --lr X --min-lr X        peak and final learning rate (default 2e-3, 1e-4)\n"
    "  --weight-decay X --beta1 X --beta2 X --clip X            (default 0.1, 0.9, 0.95, 1)\n"
    "  --checkpoint PATH [--checkpoint-every N]   save optimiser state (every N steps and at the end)\n"
    "  --resume PATH            continue a checkpoint (same options): the result equals an uninterrupted run\n"
    "  --eval N                 held-out prompts per task for the final accuracy (default 500, 0 = none)\n"
    "  -q, --quiet              no progress on stderr\n",
    run_train};

/* ---- world ------------------------------------------------------------------------------ */

static int run_world(cli_args *a) {
    const char *cmd = "world";
    uint64_t seed = AG_BUILTIN_WORLD_SEED;
    int64_t n = 3, n_train = 0, n_eval = 0;
    if (cli_opt_u64(a, "--world-seed", &seed) || cli_opt_i64(a, "--n", 0, 100000, &n) || cli_opt_i64(a, "--train", 0, 100000, &n_train) ||
        cli_opt_i64(a, "--evaluate", 0, 1000000, &n_eval))
        return 1;
    const char *task_name = cli_opt(a, NULL, "--task");
    int only = -1;
    if (task_name) {
        for (int t = 0; t < AG_WORLD_N_TASKS; t++)
            if (strcmp(task_name, TASK_NAMES[t]) == 0 || (t == 2 && strcmp(task_name, "one-hop") == 0) ||
                (t == 3 && strcmp(task_name, "two-hop") == 0))
                only = t;
        if (only < 0) return cli_fail(cmd, "--task %s: expected induction, retrieval, one-hop, two-hop or city", task_name);
    }
    ag_model *m = NULL;
    if (n_eval > 0 && cli_load_model(a, cmd, 0, &m)) return 1;
    if (cli_check_unused(a, cmd)) {
        ag_model_free(m);
        return 1;
    }
    json_out j;
    json_begin(&j, stdout);
    json_obj_open(&j);
    json_key(&j, "world_seed");
    json_int(&j, (long long)seed);
    if (m) {
        ag_world_eval e;
        e.struct_size = sizeof e;
        ag_status st = ag_world_evaluate(m, seed, (int32_t)n_eval, &e);
        if (st != AG_OK) {
            ag_model_free(m);
            return cli_fail_status(cmd, st);
        }
        json_key(&j, "model");
        json_str(&j, ag_model_name(m));
        json_key(&j, "accuracy");
        print_eval(&j, &e);
        ag_model_free(m);
    }
    if (n > 0) {
        json_key(&j, "examples");
        json_obj_open(&j);
        for (int t = 0; t < AG_WORLD_N_TASKS; t++) {
            if (only >= 0 && t != only) continue;
            json_key(&j, TASK_NAMES[t]);
            json_arr_open(&j);
            for (int64_t i = 0; i < n; i++) {
                char *text, *answer;
                ag_status st = ag_world_prompt(seed, (ag_world_task)t, (uint64_t)i, &text, &answer);
                if (st != AG_OK) return cli_fail_status(cmd, st);
                json_obj_open(&j);
                json_key(&j, "prompt");
                json_str(&j, text);
                json_key(&j, "answer");
                json_str(&j, answer);
                json_obj_close(&j);
                ag_free(text);
                ag_free(answer);
            }
            json_arr_close(&j);
        }
        json_obj_close(&j);
    }
    if (n_train > 0) {
        json_key(&j, "training");
        json_arr_open(&j);
        for (int64_t i = 0; i < n_train; i++) {
            char *text;
            ag_status st = ag_world_training_text(seed, (uint64_t)i, 65, &text);
            if (st != AG_OK) return cli_fail_status(cmd, st);
            json_str(&j, text);
            ag_free(text);
        }
        json_arr_close(&j);
    }
    json_obj_close(&j);
    json_end(&j);
    return 0;
}

const cli_command cli_cmd_world = {
    "world", "show the synthetic world's tasks, or score a model on them",
    "usage: attrgraph world [--world-seed S] [--n N] [--task T] [--train N] [--evaluate N [-m MODEL]]\n\n"
    "Prints JSON: held-out example prompts with their expected answers (N per task, default 3;\n"
    "--task induction|retrieval|one-hop|two-hop|city for one task), the first N training\n"
    "sequences (--train N), and with --evaluate N the greedy accuracy of a model (default: the\n"
    "built-in model) on N held-out prompts per task. The built-in model's world seed is 1.\n",
    run_world};
