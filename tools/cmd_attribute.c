/* attrgraph attribute (DESIGN §4): one method, one site, one target; JSON on stdout. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const METHODS[] = {NULL, "gradient", "ig", "path", "decomposition"};
static const char *const KINDS[] = {NULL, "logit", "demeaned-logit", "logprob", "prob", "logit-diff"};
static const char *const RULES[] = {NULL, "riemann", "trapezoid", "gauss-legendre", "adaptive"};

static int lookup(const char *s, const char *const *names, int n) {
    for (int i = 1; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return 0;
}

/* ---- the --waypoints file --------------------------------------------------------------------
 * A JSON array of waypoints; each is a nested array of numbers with the site's shape (flattened
 * in row-major order), or one of the strings "input" (the prompt's own values at the site),
 * "zero", or "tokens:ID,ID,..." (the site's values for another token sequence of the prompt's
 * length). A small parser: arrays, numbers and strings only. */

typedef struct wp_parser {
    const char *s;
    size_t pos;
    float *vals;
    size_t n, cap;
    int err;
} wp_parser;

static void wp_ws(wp_parser *p) {
    while (p->s[p->pos] && isspace((unsigned char)p->s[p->pos])) p->pos++;
}

static int wp_push(wp_parser *p, double v) {
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 1024;
        float *q = realloc(p->vals, nc * sizeof *q);
        if (!q) return 1;
        p->vals = q, p->cap = nc;
    }
    p->vals[p->n++] = (float)v;
    return 0;
}

/* Numbers of a nested array, flattened. */
static int wp_numbers(wp_parser *p) {
    wp_ws(p);
    if (p->s[p->pos] == '[') {
        p->pos++;
        wp_ws(p);
        if (p->s[p->pos] == ']') {
            p->pos++;
            return 0;
        }
        for (;;) {
            if (wp_numbers(p)) return 1;
            wp_ws(p);
            if (p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->s[p->pos] == ']') {
                p->pos++;
                return 0;
            }
            return 1;
        }
    }
    char *end;
    double v = strtod(p->s + p->pos, &end);
    if (end == p->s + p->pos || !isfinite(v)) return 1;
    p->pos = (size_t)(end - p->s);
    return wp_push(p, v);
}

/* The site's values for `tokens` (n = the prompt's length) through a trace. */
static int site_values_of_tokens(const char *cmd, const ag_model *m, const int32_t *tokens, size_t n, int32_t kind,
                                 int32_t layer, float *dst, size_t size) {
    ag_trace *t = NULL;
    ag_status st = ag_trace_create(&t, m, tokens, n, NULL);
    if (st != AG_OK) return cli_fail_status(cmd, st);
    static const int tensor_of[] = {0, AG_TENSOR_RESID, AG_TENSOR_RESID, AG_TENSOR_MID, AG_TENSOR_NEURONS, AG_TENSOR_ATTN_HEADS};
    const float *data;
    int64_t shape[3];
    int32_t nd;
    st = ag_trace_tensor(t, (ag_tensor_kind)tensor_of[kind], kind == AG_SITE_EMBED ? 0 : layer, &data, shape, &nd);
    if (st == AG_OK) memcpy(dst, data, size * sizeof(float));
    ag_trace_free(t);
    return st == AG_OK ? 0 : cli_fail_status(cmd, st);
}

/* Parse the waypoints file into n_out site-shaped arrays (malloc'ed). */
static int load_waypoints(const char *cmd, const char *path, const ag_model *m, const ag_trace *trace, int32_t kind,
                          int32_t layer, size_t size, float **out, int32_t *n_out) {
    char *text = cli_read_file(path, NULL);
    if (!text) return cli_fail(cmd, "--waypoints %s: cannot read the file", path);
    wp_parser p = {text, 0, NULL, 0, 0, 0};
    size_t n_tok = ag_trace_n_tokens(trace);
    int rc = 0, count = 0;
    wp_ws(&p);
    if (text[p.pos] != '[') rc = cli_fail(cmd, "--waypoints %s: expected a JSON array of waypoints", path);
    p.pos++;
    while (!rc) {
        wp_ws(&p);
        if (text[p.pos] == ']') break;
        size_t before = p.n;
        if (text[p.pos] == '"') {
            const char *q = strchr(text + p.pos + 1, '"');
            if (!q) {
                rc = cli_fail(cmd, "--waypoints %s: unterminated string", path);
                break;
            }
            size_t len = (size_t)(q - (text + p.pos + 1));
            char *word = malloc(len + 1);
            if (!word) {
                rc = cli_fail(cmd, "out of memory");
                break;
            }
            memcpy(word, text + p.pos + 1, len);
            word[len] = '\0';
            p.pos = (size_t)(q - text) + 1;
            for (size_t i = 0; i < size && !rc; i++)
                if (wp_push(&p, 0.0)) rc = cli_fail(cmd, "out of memory");
            if (rc) {
                free(word);
                break;
            }
            float *dst = p.vals + before;
            if (strcmp(word, "zero") == 0) {
                /* zeros already */
            } else if (strcmp(word, "input") == 0) {
                rc = site_values_of_tokens(cmd, m, ag_trace_tokens(trace), n_tok, kind, layer, dst, size);
            } else if (strncmp(word, "tokens:", 7) == 0) {
                int32_t *ids = NULL;
                size_t nid = 0;
                rc = cli_parse_int_list(word + 7, "--waypoints tokens", &ids, &nid);
                if (!rc && nid != n_tok)
                    rc = cli_fail(cmd, "--waypoints: %zu baseline tokens for a prompt of %zu", nid, n_tok);
                if (!rc) rc = site_values_of_tokens(cmd, m, ids, nid, kind, layer, dst, size);
                free(ids);
            } else {
                rc = cli_fail(cmd, "--waypoints %s: unknown waypoint \"%s\" (input, zero, tokens:IDS or numbers)", path, word);
            }
            free(word);
        } else if (wp_numbers(&p)) {
            rc = cli_fail(cmd, "--waypoints %s: bad number or array near byte %zu", path, p.pos);
        } else if (p.n - before != size) {
            rc = cli_fail(cmd, "--waypoints %s: waypoint %d has %zu numbers, the site has %zu", path, count, p.n - before, size);
        }
        if (rc) break;
        count++;
        wp_ws(&p);
        if (text[p.pos] == ',') p.pos++;
        else if (text[p.pos] != ']') rc = cli_fail(cmd, "--waypoints %s: expected ',' or ']' near byte %zu", path, p.pos);
    }
    free(text);
    if (!rc && count < 2) rc = cli_fail(cmd, "--waypoints %s: a path needs at least 2 waypoints, got %d", path, count);
    if (rc) {
        free(p.vals);
        return rc;
    }
    *out = p.vals;
    *n_out = count;
    return 0;
}

/* ---- the command -------------------------------------------------------------------------- */

static int run_attribute(cli_args *a) {
    const char *cmd = "attribute";
    ag_attribute_options o;
    AG_ATTRIBUTE_OPTIONS_INIT(o);
    const char *s;
    double x;
    if ((s = cli_opt(a, NULL, "--method"))) {
        if (!(o.method = lookup(s, METHODS, 5)))
            return cli_fail(cmd, "--method '%s': expected gradient, ig, path or decomposition", s);
    }
    const char *site = cli_opt(a, NULL, "--at");
    if (!site) return cli_fail(cmd, "--at SITE is required (embed, resid.L, mid.L, mlp.L, attn.L)");
    if (ag_site_parse(site, &o.site_kind, &o.site_layer) != AG_OK)
        return cli_fail(cmd, "--at '%s': expected embed, resid.L, mid.L, mlp.L or attn.L", site);
    if (o.site_kind == AG_SITE_FEATURE)
        return cli_fail(cmd, "--at '%s': transcoder features are an intervention site (attrgraph intervene --transcoders DIR "
                             "--set fL:P:I=V), not an attribution site; use mlp.L, or attrgraph graph --basis transcoders", site);
    if (cli_opt_i32(a, "--target", 0, INT32_MAX, &o.target_token)) return 1;
    if (cli_opt_i32(a, "--target-b", 0, INT32_MAX, &o.target_token_b)) return 1;
    if (cli_opt_i32(a, "--target-position", 0, INT32_MAX, &o.target_position)) return 1;
    if ((s = cli_opt(a, NULL, "--target-kind"))) {
        if (!(o.target_kind = lookup(s, KINDS, 6)))
            return cli_fail(cmd, "--target-kind '%s': expected logit, demeaned-logit, logprob, prob or logit-diff", s);
    }
    if (cli_opt_i32(a, "--steps", 1, 100000, &o.steps)) return 1;
    if ((s = cli_opt(a, NULL, "--quadrature"))) {
        if (!(o.quadrature = lookup(s, RULES, 5)))
            return cli_fail(cmd, "--quadrature '%s': expected riemann, trapezoid, gauss-legendre or adaptive", s);
    }
    if ((s = cli_opt(a, NULL, "--tolerance"))) {
        if (cli_parse_float(s, "--tolerance", &x)) return 1;
        if (!(x > 0)) return cli_fail(cmd, "--tolerance %s must be positive", s);
        o.tolerance = x;
    }
    if (cli_opt_i32(a, "--max-evaluations", 1, INT32_MAX, &o.max_evaluations)) return 1;
    if (cli_opt_i32(a, "--batch-size", 0, 4096, &o.batch_size)) return 1;
    const char *baselines[64];
    int n_base = cli_opt_all(a, NULL, "--baseline", baselines, 64);
    if (n_base > 64) return cli_fail(cmd, "at most 64 --baseline options");
    const char *wp_path = cli_opt(a, NULL, "--waypoints");

    ag_model *m;
    if (cli_load_model(a, cmd, 0, &m)) return 1;
    int32_t *toks = NULL, *base_toks = NULL;
    float *waypoints = NULL;
    size_t n = 0;
    ag_trace *t = NULL;
    ag_attribution *r = NULL;
    int rc = cli_prompt_tokens(a, cmd, m, &toks, &n) || cli_check_unused(a, cmd);
    if (!rc) {
        ag_status st = ag_trace_create(&t, m, toks, n, NULL);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    /* baselines: zero | mean | tokens:IDS (repeatable: IG averaged over the token baselines) */
    for (int i = 0; i < n_base && !rc; i++) {
        const char *b = baselines[i];
        if (strcmp(b, "zero") == 0 || strcmp(b, "mean") == 0) {
            if (n_base > 1) rc = cli_fail(cmd, "--baseline %s cannot be combined with other baselines", b);
            o.baseline_kind = b[0] == 'z' ? AG_BASELINE_ZERO : AG_BASELINE_MEAN;
        } else if (strncmp(b, "tokens:", 7) == 0) {
            int32_t *ids = NULL;
            size_t nid = 0;
            if ((rc = cli_parse_int_list(b + 7, "--baseline tokens", &ids, &nid))) break;
            if (nid != n) {
                free(ids);
                rc = cli_fail(cmd, "--baseline tokens: %zu ids for a prompt of %zu tokens (lengths must match)", nid, n);
                break;
            }
            int32_t *q = realloc(base_toks, (size_t)(i + 1) * n * sizeof *q);
            if (!q) {
                free(ids);
                rc = cli_fail(cmd, "out of memory");
                break;
            }
            base_toks = q;
            memcpy(base_toks + (size_t)i * n, ids, n * sizeof *ids);
            free(ids);
            o.baseline_kind = AG_BASELINE_TOKENS;
            o.baseline_tokens = base_toks;
            o.n_baselines = i + 1;
        } else {
            rc = cli_fail(cmd, "--baseline '%s': expected zero, mean or tokens:ID,ID,...", b);
        }
    }
    if (!rc && wp_path) {
        if (o.method != AG_METHOD_PATH) rc = cli_fail(cmd, "--waypoints needs --method path");
        else {
            ag_model_info in;
            in.struct_size = sizeof in;
            ag_model_get_info(m, &in);
            size_t width = o.site_kind == AG_SITE_MLP ? (size_t)in.hidden_dim : (size_t)in.dim;
            rc = load_waypoints(cmd, wp_path, m, t, o.site_kind, o.site_layer, n * width, &waypoints, &o.n_waypoints);
            o.waypoints = waypoints;
        }
    }
    if (!rc) {
        ag_status st = ag_attribute(t, &o, &r);
        if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        int32_t kind, token, pos;
        ag_attribution_target(r, &kind, &token, &pos);
        int64_t shape[3];
        int32_t nd;
        ag_attribution_shape(r, shape, &nd);
        char site_name[32];
        ag_site_name(o.site_kind, o.site_layer, site_name, sizeof site_name, NULL);
        json_out j;
        json_begin(&j, stdout);
        json_obj_open(&j);
        json_key(&j, "method"); json_str(&j, METHODS[o.method]);
        json_key(&j, "site"); json_str(&j, site_name);
        json_key(&j, "target");
        json_obj_open(&j);
        json_key(&j, "token"); json_int(&j, token);
        json_key(&j, "position"); json_int(&j, pos);
        json_key(&j, "kind"); json_str(&j, KINDS[kind]);
        json_key(&j, "value"); json_num(&j, ag_attribution_target_value(r));
        json_obj_close(&j);
        json_key(&j, "baseline_value"); json_num(&j, ag_attribution_baseline_value(r));
        json_key(&j, "shape");
        json_arr_open(&j);
        for (int d = 0; d < nd; d++) json_int(&j, (long long)shape[d]);
        json_arr_close(&j);
        json_key(&j, "attributions"); json_nested(&j, ag_attribution_values(r), shape, nd);
        if (o.method == AG_METHOD_GRADIENT) {
            json_key(&j, "gradient"); json_nested(&j, ag_attribution_gradient(r), shape, nd);
        }
        json_key(&j, "sum"); json_num(&j, ag_attribution_sum(r));
        json_key(&j, "completeness_error"); json_num(&j, ag_attribution_completeness_error(r));
        json_key(&j, "evaluations"); json_int(&j, (long long)ag_attribution_evaluations(r));
        json_obj_close(&j);
        json_end(&j);
    }
    ag_attribution_free(r);
    ag_trace_free(t);
    free(waypoints);
    free(base_toks);
    free(toks);
    ag_model_free(m);
    return rc;
}

const cli_command cli_cmd_attribute = {
    "attribute", "attribute a target to a site (gradient, integrated gradients, path)",
    "usage: attrgraph attribute -m MODEL [-z TOKENIZER] (-p TEXT | -t IDS)\n"
    "           --method gradient|ig|path|decomposition --at SITE\n"
    "           [--target ID] [--target-position P]\n"
    "           [--target-kind logit|demeaned-logit|logprob|prob|logit-diff] [--target-b ID]\n"
    "           [--steps N] [--quadrature riemann|trapezoid|gauss-legendre|adaptive]\n"
    "           [--tolerance X] [--max-evaluations N] [--batch-size N]\n"
    "           [--baseline zero|mean|tokens:ID,ID,...] [--waypoints FILE]\n\n"
    "SITE: embed | resid.L (input of block L; resid.n_layers = final residual) | mid.L (after\n"
    "the attention of block L) | mlp.L (the neurons of block L) | attn.L (per-head outputs).\n"
    "Default target: the top token at the last position, kind logit (the raw logit value);\n"
    "logit-diff is logit(--target) - logit(--target-b) (default: the runner-up token).\n"
    "--method gradient (default) gives gradient x activation and the gradient; ig integrates\n"
    "the gradient from a baseline to the input; path along --waypoints, or averaged over\n"
    "several --baseline tokens:... options. --steps = quadrature nodes (default 32; adaptive:\n"
    "nodes per panel, default 8); adaptive subdivides until |completeness error| <=\n"
    "--tolerance (default 1e-3) x |value - baseline_value| or --max-evaluations (8192).\n"
    "The baseline replaces the site at every position. --waypoints FILE: a JSON array of\n"
    "waypoints, each a nested number array of the site's shape or \"input\", \"zero\" or\n"
    "\"tokens:ID,ID,...\".\n\n"
    "Prints {\"method\",\"site\",\"target\":{\"token\",\"position\",\"kind\",\"value\"},\n"
    "\"baseline_value\",\"shape\",\"attributions\" (nested, shape),\"gradient\" (gradient method),\n"
    "\"sum\",\"completeness_error\" (sum - (value - baseline_value)),\"evaluations\"}.\n",
    run_attribute};
