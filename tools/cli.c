/* Argument parsing, model/prompt set-up and the JSON writer of the CLI. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- arguments ------------------------------------------------------------------------ */

static int opt_matches(const char *arg, const char *shortname, const char *longname, const char **inline_val) {
    *inline_val = NULL;
    if (shortname && strcmp(arg, shortname) == 0) return 1;
    if (longname) {
        size_t n = strlen(longname);
        if (strncmp(arg, longname, n) == 0) {
            if (arg[n] == '\0') return 1;
            if (arg[n] == '=') {
                *inline_val = arg + n + 1;
                return 1;
            }
        }
    }
    return 0;
}

int cli_opt_all(cli_args *a, const char *shortname, const char *longname, const char **vals, int cap) {
    int k = 0;
    for (int i = 1; i < a->argc; i++) {
        const char *iv;
        if (a->used[i] == 2 || !opt_matches(a->argv[i], shortname, longname, &iv)) continue;
        a->used[i] = 1;
        const char *v = iv;
        if (!v) {
            if (i + 1 >= a->argc) {
                v = NULL; /* missing value: reported as "" so the caller's parser complains */
            } else {
                v = a->argv[++i];
                a->used[i] = 2; /* a value, never an option */
            }
        }
        if (k < cap) vals[k] = v ? v : "";
        k++;
    }
    return k;
}

const char *cli_opt(cli_args *a, const char *shortname, const char *longname) {
    const char *vals[64];
    int n = cli_opt_all(a, shortname, longname, vals, 64);
    if (n == 0) return NULL;
    return vals[(n > 64 ? 64 : n) - 1];
}

int cli_flag(cli_args *a, const char *shortname, const char *longname) {
    int found = 0;
    for (int i = 1; i < a->argc; i++)
        if (a->used[i] != 2 && ((shortname && strcmp(a->argv[i], shortname) == 0) || (longname && strcmp(a->argv[i], longname) == 0))) {
            a->used[i] = 1;
            found = 1;
        }
    return found;
}

int cli_check_unused(cli_args *a, const char *cmd) {
    for (int i = 2; i < a->argc; i++)
        if (!a->used[i]) return cli_fail(cmd, "unknown or misplaced argument '%s' (see attrgraph %s --help)", a->argv[i], cmd);
    return 0;
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "attrgraph %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_fail_status(const char *cmd, ag_status st) {
    const char *msg = ag_last_error();
    return cli_fail(cmd, "%s (%s)", msg && *msg ? msg : ag_status_string(st), ag_status_string(st));
}

int cli_parse_int(const char *s, const char *what, long long lo, long long hi, long long *out) {
    if (!s || !*s) {
        fprintf(stderr, "attrgraph: %s needs a value\n", what);
        return 1;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "attrgraph: %s = '%s' must be an integer in [%lld, %lld]\n", what, s, lo, hi);
        return 1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, const char *what, double *out) {
    if (!s || !*s) {
        fprintf(stderr, "attrgraph: %s needs a value\n", what);
        return 1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) {
        fprintf(stderr, "attrgraph: %s = '%s' must be a finite number\n", what, s);
        return 1;
    }
    *out = v;
    return 0;
}

int cli_parse_int_list(const char *s, const char *what, int32_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!s || !*s) {
        fprintf(stderr, "attrgraph: %s needs a comma-separated list of integers\n", what);
        return 1;
    }
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return 1;
    const char *p = s;
    size_t k = 0;
    while (1) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < INT32_MIN || x > INT32_MAX || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "attrgraph: %s = '%s' is not a comma-separated list of integers\n", what, s);
            free(v);
            return 1;
        }
        v[k++] = (int32_t)x;
        if (*end == '\0') break;
        p = end + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

int cli_opt_i64(cli_args *a, const char *name, long long lo, long long hi, int64_t *dst) {
    const char *s = cli_opt(a, NULL, name);
    long long v;
    if (!s) return 0;
    if (cli_parse_int(s, name, lo, hi, &v)) return 1;
    *dst = (int64_t)v;
    return 0;
}

int cli_opt_i32(cli_args *a, const char *name, long long lo, long long hi, int32_t *dst) {
    int64_t v = *dst;
    if (cli_opt_i64(a, name, lo, hi, &v)) return 1;
    *dst = (int32_t)v;
    return 0;
}

int cli_opt_u64(cli_args *a, const char *name, uint64_t *dst) {
    int64_t v = (int64_t)*dst;
    if (cli_opt_i64(a, name, 0, INT64_MAX, &v)) return 1;
    *dst = (uint64_t)v;
    return 0;
}

int cli_opt_f64(cli_args *a, const char *name, double *dst) {
    const char *s = cli_opt(a, NULL, name);
    if (!s) return 0;
    return cli_parse_float(s, name, dst);
}

int cli_opt_f32(cli_args *a, const char *name, float *dst) {
    double x = *dst;
    if (cli_opt_f64(a, name, &x)) return 1;
    *dst = (float)x;
    return 0;
}

/* ---- model and prompt ---------------------------------------------------------------- */

int cli_load_model(cli_args *a, const char *cmd, int need_tokenizer, ag_model **out) {
    *out = NULL;
    const char *path = cli_opt(a, "-m", "--model");
    const char *tok = cli_opt(a, "-z", "--tokenizer");
    ag_model_options o;
    AG_MODEL_OPTIONS_INIT(o);
    o.tokenizer_path = tok;
    if (!path) { /* the built-in model (issue 5); it carries its own tokenizer */
        if (tok) return cli_fail(cmd, "-z/--tokenizer needs -m/--model (the built-in model has its own tokenizer)");
        ag_status sb = ag_model_load_builtin(out);
        if (sb != AG_OK)
            return cli_fail(cmd, "no model given (-m PATH: a llama2.c .bin or a .gguf) and %s", ag_last_error());
        return 0;
    }
    ag_status st = ag_model_load(out, path, &o);
    if (st != AG_OK) return cli_fail_status(cmd, st);
    if (need_tokenizer) {
        ag_model_info info;
        info.struct_size = sizeof info;
        ag_model_get_info(*out, &info);
        if (!info.has_tokenizer) {
            ag_model_free(*out);
            *out = NULL;
            return cli_fail(cmd, "%s has no tokenizer: pass one with -z PATH (a llama2.c tokenizer .bin)", path);
        }
    }
    return 0;
}

int cli_prompt_tokens(cli_args *a, const char *cmd, const ag_model *m, int32_t **tokens, size_t *n) {
    *tokens = NULL;
    *n = 0;
    const char *prompt = cli_opt(a, "-p", "--prompt");
    const char *ids = cli_opt(a, "-t", "--tokens");
    if (prompt && ids) return cli_fail(cmd, "give either -p/--prompt or -t/--tokens, not both");
    if (ids) return cli_parse_int_list(ids, "--tokens", tokens, n);
    if (!prompt) return cli_fail(cmd, "no input: give -p TEXT or -t ID,ID,...");
    size_t need = 0;
    ag_status st = ag_tokenize(m, prompt, 1, NULL, 0, &need);
    if (st != AG_OK && st != AG_ERR_BUFFER_TOO_SMALL) return cli_fail_status(cmd, st);
    *tokens = malloc((need ? need : 1) * sizeof **tokens);
    if (!*tokens) return cli_fail(cmd, "out of memory");
    st = ag_tokenize(m, prompt, 1, *tokens, need, n);
    if (st != AG_OK) {
        free(*tokens);
        *tokens = NULL;
        return cli_fail_status(cmd, st);
    }
    return 0;
}

char *cli_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

char *cli_piece(const ag_model *m, const int32_t *tokens, size_t i) {
    size_t len = 0;
    int32_t prev = i > 0 ? tokens[i - 1] : -1;
    char small[64];
    ag_status st = ag_token_decode(m, prev, tokens[i], small, sizeof small, &len);
    if (st == AG_OK) return strdup(small);
    if (st == AG_ERR_BUFFER_TOO_SMALL) {
        char *buf = malloc(len + 1);
        if (buf && ag_token_decode(m, prev, tokens[i], buf, len + 1, &len) == AG_OK) return buf;
        free(buf);
    }
    char tmp[32];
    snprintf(tmp, sizeof tmp, "<%d>", (int)tokens[i]);
    return strdup(tmp);
}

/* ---- JSON writer ------------------------------------------------------------------------ */

void json_begin(json_out *j, FILE *f) {
    memset(j, 0, sizeof *j);
    j->f = f;
}

void json_end(json_out *j) { fputc('\n', j->f); }

static void json_sep(json_out *j) {
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->need_comma[j->depth]) fputc(',', j->f);
    j->need_comma[j->depth] = 1;
}

void json_obj_open(json_out *j) {
    json_sep(j);
    fputc('{', j->f);
    j->need_comma[++j->depth] = 0;
}
void json_obj_close(json_out *j) {
    j->depth--;
    fputc('}', j->f);
}
void json_arr_open(json_out *j) {
    json_sep(j);
    fputc('[', j->f);
    j->need_comma[++j->depth] = 0;
}
void json_arr_close(json_out *j) {
    j->depth--;
    fputc(']', j->f);
}

static void json_raw_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

void json_key(json_out *j, const char *key) {
    json_sep(j);
    json_raw_str(j->f, key);
    fputc(':', j->f);
    j->after_key = 1;
}
void json_str(json_out *j, const char *s) {
    json_sep(j);
    json_raw_str(j->f, s ? s : "");
}
void json_int(json_out *j, long long v) {
    json_sep(j);
    fprintf(j->f, "%lld", v);
}
void json_num(json_out *j, double v) {
    json_sep(j);
    if (!isfinite(v)) fputs("null", j->f);
    else fprintf(j->f, "%.9g", v);
}
void json_bool(json_out *j, int v) {
    json_sep(j);
    fputs(v ? "true" : "false", j->f);
}
void json_null(json_out *j) {
    json_sep(j);
    fputs("null", j->f);
}

void json_nested(json_out *j, const float *data, const int64_t *shape, int ndim) {
    if (ndim <= 0) {
        json_num(j, data[0]);
        return;
    }
    int64_t stride = 1;
    for (int d = 1; d < ndim; d++) stride *= shape[d];
    json_arr_open(j);
    for (int64_t i = 0; i < shape[0]; i++) {
        if (ndim == 1) json_num(j, data[i]);
        else json_nested(j, data + i * stride, shape + 1, ndim - 1);
    }
    json_arr_close(j);
}
