/* attrgraph info | tokenize | generate | logits (DESIGN §4). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- info ---------------------------------------------------------------------------- */

static int run_info(cli_args *a) {
    const char *cmd = "info";
    ag_model *m;
    if (cli_load_model(a, cmd, 0, &m)) return 1;
    if (cli_check_unused(a, cmd)) {
        ag_model_free(m);
        return 1;
    }
    ag_model_info in;
    in.struct_size = sizeof in;
    ag_status st = ag_model_get_info(m, &in);
    if (st != AG_OK) {
        ag_model_free(m);
        return cli_fail_status(cmd, st);
    }
    json_out j;
    json_begin(&j, stdout);
    json_obj_open(&j);
    json_key(&j, "format"); json_str(&j, in.format == AG_FORMAT_GGUF ? "gguf" : "llama2c");
    json_key(&j, "arch"); json_str(&j, "llama");
    json_key(&j, "dim"); json_int(&j, in.dim);
    json_key(&j, "hidden_dim"); json_int(&j, in.hidden_dim);
    json_key(&j, "n_layers"); json_int(&j, in.n_layers);
    json_key(&j, "n_heads"); json_int(&j, in.n_heads);
    json_key(&j, "n_kv_heads"); json_int(&j, in.n_kv_heads);
    json_key(&j, "vocab_size"); json_int(&j, in.vocab_size);
    json_key(&j, "seq_len"); json_int(&j, in.seq_len);
    json_key(&j, "n_params"); json_int(&j, (long long)in.n_params);
    json_obj_close(&j);
    json_end(&j);
    ag_model_free(m);
    return 0;
}

const cli_command cli_cmd_info = {
    "info", "print a model's shapes as JSON",
    "usage: attrgraph info -m MODEL\n\n"
    "Prints {\"format\",\"arch\",\"dim\",\"hidden_dim\",\"n_layers\",\"n_heads\",\"n_kv_heads\",\n"
    "\"vocab_size\",\"seq_len\",\"n_params\"}. n_params counts weights only (no RoPE tables),\n"
    "the classifier once when it is shared with the embedding.\n",
    run_info};

/* ---- tokenize -------------------------------------------------------------------------- */

static int run_tokenize(cli_args *a) {
    const char *cmd = "tokenize";
    ag_model *m;
    if (cli_load_model(a, cmd, 1, &m)) return 1;
    int32_t *toks = NULL;
    size_t n = 0;
    int rc = cli_prompt_tokens(a, cmd, m, &toks, &n) || cli_check_unused(a, cmd);
    if (!rc) {
        json_out j;
        json_begin(&j, stdout);
        json_obj_open(&j);
        json_key(&j, "tokens");
        json_arr_open(&j);
        for (size_t i = 0; i < n; i++) json_int(&j, toks[i]);
        json_arr_close(&j);
        json_key(&j, "pieces");
        json_arr_open(&j);
        for (size_t i = 0; i < n; i++) {
            char *p = cli_piece(m, toks, i);
            json_str(&j, p);
            free(p);
        }
        json_arr_close(&j);
        json_obj_close(&j);
        json_end(&j);
    }
    free(toks);
    ag_model_free(m);
    return rc;
}

const cli_command cli_cmd_tokenize = {
    "tokenize", "encode a prompt: token ids and one decoded piece per token",
    "usage: attrgraph tokenize -m MODEL [-z TOKENIZER] (-p TEXT | -t IDS)\n\n"
    "Prints {\"tokens\":[...],\"pieces\":[...]}: -p is encoded with BOS prepended; -t ids are\n"
    "decoded as given. Each piece is the token's text after the previous token.\n",
    run_tokenize};

/* ---- generate -------------------------------------------------------------------------- */

static int run_generate(cli_args *a) {
    const char *cmd = "generate";
    long long n_new = 256, seed = 42;
    double temp = 0.0, top_p = 1.0;
    const char *s;
    if ((s = cli_opt(a, "-n", "--n")) && cli_parse_int(s, "-n", 0, 1 << 20, &n_new)) return 1;
    if ((s = cli_opt(a, NULL, "--temperature")) && cli_parse_float(s, "--temperature", &temp)) return 1;
    if ((s = cli_opt(a, NULL, "--top-p")) && cli_parse_float(s, "--top-p", &top_p)) return 1;
    if ((s = cli_opt(a, NULL, "--seed")) && cli_parse_int(s, "--seed", 0, INT64_MAX, &seed)) return 1;
    ag_model *m;
    if (cli_load_model(a, cmd, 1, &m)) return 1;
    int32_t *toks = NULL;
    size_t n = 0;
    const char *prompt = cli_opt(a, "-p", "--prompt");
    const char *ids = cli_opt(a, "-t", "--tokens");
    int rc = 0;
    if (prompt && ids) rc = cli_fail(cmd, "give either -p/--prompt or -t/--tokens, not both");
    else if (ids) rc = cli_parse_int_list(ids, "--tokens", &toks, &n);
    else {
        /* no prompt: start from BOS alone */
        size_t need = 0;
        const char *text = prompt ? prompt : "";
        ag_status st = ag_tokenize(m, text, 1, NULL, 0, &need);
        toks = malloc((need ? need : 1) * sizeof *toks);
        if (!toks) rc = cli_fail(cmd, "out of memory");
        else if ((st = ag_tokenize(m, text, 1, toks, need, &n)) != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) rc = cli_check_unused(a, cmd);
    int32_t *out = NULL;
    size_t n_out = 0;
    if (!rc) {
        ag_generate_options go;
        AG_GENERATE_OPTIONS_INIT(go);
        go.max_new_tokens = (int32_t)n_new;
        go.temperature = (float)temp;
        go.top_p = (float)top_p;
        go.seed = (uint64_t)seed;
        out = malloc((size_t)(n_new ? n_new : 1) * sizeof *out);
        ag_status st = out ? ag_generate(m, toks, n, &go, out, (size_t)n_new, &n_out) : AG_ERR_OUT_OF_MEMORY;
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        size_t total = n + n_out;
        int32_t *all = malloc(total * sizeof *all);
        if (!all) rc = cli_fail(cmd, "out of memory");
        else {
            memcpy(all, toks, n * sizeof *all);
            memcpy(all + n, out, n_out * sizeof *all);
            for (size_t i = 0; i < total; i++) {
                if (i == 0 && all[0] == 1) continue; /* BOS prints nothing */
                char *p = cli_piece(m, all, i);
                fputs(p, stdout);
                free(p);
            }
            fputc('\n', stdout);
            free(all);
        }
    }
    free(out);
    free(toks);
    ag_model_free(m);
    return rc;
}

const cli_command cli_cmd_generate = {
    "generate", "continue a prompt (greedy or sampled)",
    "usage: attrgraph generate -m MODEL [-z TOKENIZER] [-p TEXT | -t IDS] [-n N]\n"
    "                          [--temperature X] [--top-p P] [--seed S]\n\n"
    "Prints the prompt followed by up to N new tokens (default 256; stops early at BOS/EOS or\n"
    "the model's context). --temperature 0 (default) is greedy; otherwise tokens are sampled\n"
    "(top-p nucleus, default 1 = off) with a seeded generator (default seed 42).\n"
    "Without -p/-t generation starts from BOS.\n",
    run_generate};

/* ---- logits ------------------------------------------------------------------------------ */

static int run_logits(cli_args *a) {
    const char *cmd = "logits";
    int all = cli_flag(a, NULL, "--all-positions");
    ag_model *m;
    if (cli_load_model(a, cmd, 0, &m)) return 1;
    int32_t *toks = NULL;
    size_t n = 0;
    int rc = cli_prompt_tokens(a, cmd, m, &toks, &n) || cli_check_unused(a, cmd);
    ag_trace *t = NULL;
    if (!rc) {
        ag_status st = ag_trace_create(&t, m, toks, n, NULL);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        const float *lg;
        int64_t shape[3];
        int32_t nd;
        ag_trace_tensor(t, AG_TENSOR_LOGITS, 0, &lg, shape, &nd);
        json_out j;
        json_begin(&j, stdout);
        json_obj_open(&j);
        json_key(&j, "tokens");
        json_arr_open(&j);
        for (size_t i = 0; i < n; i++) json_int(&j, toks[i]);
        json_arr_close(&j);
        size_t first = all ? 0 : n - 1;
        json_key(&j, "positions");
        json_arr_open(&j);
        for (size_t p = first; p < n; p++) json_int(&j, (long long)p);
        json_arr_close(&j);
        json_key(&j, "logits");
        int64_t sh[2] = {(int64_t)(n - first), shape[1]};
        json_nested(&j, lg + first * (size_t)shape[1], sh, 2);
        json_obj_close(&j);
        json_end(&j);
    }
    ag_trace_free(t);
    free(toks);
    ag_model_free(m);
    return rc;
}

const cli_command cli_cmd_logits = {
    "logits", "run the model and print logits as JSON",
    "usage: attrgraph logits -m MODEL [-z TOKENIZER] (-p TEXT | -t IDS) [--all-positions]\n\n"
    "Prints {\"tokens\":[...],\"positions\":[...],\"logits\":[[V floats],...]}: the last\n"
    "position only, or every position with --all-positions.\n",
    run_logits};
