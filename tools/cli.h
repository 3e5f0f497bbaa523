/* Shared pieces of the attrgraph command-line tool: argument parsing, model/prompt set-up,
 * a small deterministic JSON writer, and the command table. The tool uses the public API
 * only (attrgraph.h). */
#ifndef ATTRGRAPH_CLI_H
#define ATTRGRAPH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "attrgraph.h"

/* ---- arguments ------------------------------------------------------------------------ */

typedef struct cli_args {
    int argc;
    char **argv;
    unsigned char *used; /* which argv entries a command consumed */
} cli_args;

/* The value of the last `--long VALUE` / `-s VALUE` (or --long=VALUE), or NULL. Marks it used. */
const char *cli_opt(cli_args *a, const char *shortname, const char *longname);
/* Every occurrence, in order: fills vals (up to cap) and returns the count. */
int cli_opt_all(cli_args *a, const char *shortname, const char *longname, const char **vals, int cap);
/* 1 when the flag is present (no value). */
int cli_flag(cli_args *a, const char *shortname, const char *longname);
/* Fail (return nonzero, message printed) if any argument was not consumed. */
int cli_check_unused(cli_args *a, const char *cmd);

/* Number parsing that rejects garbage: return 0 on success, print a message otherwise. */
int cli_parse_int(const char *s, const char *what, long long lo, long long hi, long long *out);
int cli_parse_float(const char *s, const char *what, double *out);
/* Parse "1,403,407" into a malloc'ed array. */
int cli_parse_int_list(const char *s, const char *what, int32_t **out, size_t *n);

/* Typed options by long name: when `name` is given, parse its value into *dst (integers
 * range-checked, numbers finite) and return 0, or print a message and return 1; when it is
 * absent, leave *dst as it is and return 0. cli_opt_u64 takes [0, INT64_MAX]. */
int cli_opt_i64(cli_args *a, const char *name, long long lo, long long hi, int64_t *dst);
int cli_opt_i32(cli_args *a, const char *name, long long lo, long long hi, int32_t *dst);
int cli_opt_u64(cli_args *a, const char *name, uint64_t *dst);
int cli_opt_f64(cli_args *a, const char *name, double *dst);
int cli_opt_f32(cli_args *a, const char *name, float *dst);

/* Print "attrgraph CMD: message" to stderr; returns 1 (the failure exit code). */
int cli_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Report an ag_status failure with ag_last_error(); returns 1. */
int cli_fail_status(const char *cmd, ag_status st);

/* Load the model from -m/--model and -z/--tokenizer (or the built-in model when -m is
 * absent and one is compiled in). Returns 0 or prints and returns 1. */
int cli_load_model(cli_args *a, const char *cmd, int need_tokenizer, ag_model **out);
/* Tokens from -p/--prompt (encoded, BOS prepended) or -t/--tokens (as given). */
int cli_prompt_tokens(cli_args *a, const char *cmd, const ag_model *m, int32_t **tokens, size_t *n);
/* The whole file, malloc'ed and NUL-terminated (its length in *len when len is not NULL), or
 * NULL when it cannot be opened or read (no message: the caller names the file). */
char *cli_read_file(const char *path, size_t *len);
/* The decoded piece of tokens[i] after tokens[i-1], malloc'ed (or "<id>" without a tokenizer). */
char *cli_piece(const ag_model *m, const int32_t *tokens, size_t i);

/* ---- JSON writer (deterministic: same values, same bytes) ------------------------------ */

typedef struct json_out {
    FILE *f;
    int depth;
    int need_comma[64];
    int after_key;
} json_out;

void json_begin(json_out *j, FILE *f);
void json_end(json_out *j); /* newline */
void json_obj_open(json_out *j);
void json_obj_close(json_out *j);
void json_arr_open(json_out *j);
void json_arr_close(json_out *j);
void json_key(json_out *j, const char *key);
void json_str(json_out *j, const char *s);
void json_int(json_out *j, long long v);
void json_num(json_out *j, double v); /* %.9g (exact for float32); non-finite -> null */
void json_bool(json_out *j, int v);
void json_null(json_out *j);
/* A row-major float array of `ndim` dims as nested arrays. */
void json_nested(json_out *j, const float *data, const int64_t *shape, int ndim);

/* ---- commands ---------------------------------------------------------------------------- */

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* full --help text */
    int (*run)(cli_args *a);
} cli_command;

extern const cli_command cli_cmd_info, cli_cmd_tokenize, cli_cmd_generate, cli_cmd_logits;
extern const cli_command cli_cmd_intervene, cli_cmd_validate;
extern const cli_command cli_cmd_show;
/* cmd_show.c: print the n_paths strongest paths to each target logit of a graph JSON file. */
int cli_show_top_paths(FILE *f, const char *cmd, const char *path, int n_paths);
extern const cli_command cli_cmd_graph;
extern const cli_command cli_cmd_transcoder;
extern const cli_command cli_cmd_attribute;
extern const cli_command cli_cmd_train, cli_cmd_world;

#endif
