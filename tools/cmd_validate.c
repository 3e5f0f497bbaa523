/* attrgraph validate (issue #7): build a prompt's attribution graph (neurons or transcoder
 * features), ablate its most influential nodes (and chosen groups) in direct, linear and free
 * mode, and compare the measured change of the target (a token's logit, a logit difference or
 * a direction read from a file) with the graph's direct effects (edges) and total effects
 * (path sums). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

#define MAX_GROUPS 256

static int parse_modes(const char *cmd, const char *s, int32_t *modes) {
    *modes = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 6 && strncmp(p, "direct", 6) == 0) *modes |= AG_VALIDATE_DIRECT;
        else if (n == 6 && strncmp(p, "linear", 6) == 0) *modes |= AG_VALIDATE_LINEAR;
        else if (n == 4 && strncmp(p, "free", 4) == 0) *modes |= AG_VALIDATE_FREE;
        else if (n == 21 && strncmp(p, "free_frozen_attention", 21) == 0) *modes |= AG_VALIDATE_FREE_FROZEN_ATTENTION;
        else if (n == 3 && strncmp(p, "all", 3) == 0) *modes |= AG_VALIDATE_ALL;
        else return cli_fail(cmd, "--modes '%s': expected a comma-separated list of direct, linear, free, free_frozen_attention, all", s);
        p += n;
        if (*p == ',') p++;
    }
    if (!*modes) return cli_fail(cmd, "--modes needs at least one mode");
    return 0;
}

/* "ID,ID,..." of node ids into node indices appended to *nodes. */
static int parse_group(const char *cmd, const ag_graph *g, const char *s, int64_t **nodes, size_t *n, size_t *cap, int32_t *size) {
    char *copy = strdup(s);
    if (!copy) return cli_fail(cmd, "out of memory");
    *size = 0;
    int rc = 0;
    for (char *tok = strtok(copy, ","); tok && !rc; tok = strtok(NULL, ",")) {
        size_t idx;
        ag_status st = ag_graph_find_node(g, tok, &idx);
        if (st != AG_OK) {
            rc = cli_fail(cmd, "--group '%s': no node '%s' in the graph (%s)", s, tok, ag_last_error());
            break;
        }
        if (*n == *cap) {
            size_t nc = *cap ? 2 * *cap : 16;
            int64_t *nn = realloc(*nodes, nc * sizeof *nn);
            if (!nn) {
                rc = cli_fail(cmd, "out of memory");
                break;
            }
            *nodes = nn;
            *cap = nc;
        }
        (*nodes)[(*n)++] = (int64_t)idx;
        (*size)++;
    }
    free(copy);
    if (!rc && *size == 0) rc = cli_fail(cmd, "--group '%s': no node ids", s);
    return rc;
}

/* --target-direction FILE: exactly `dim` finite numbers separated by white space or commas (a
 * JSON array works: '[' and ']' are skipped), e.g. one per line as printf("%.9g\n") writes them.
 * The vector is malloc'ed into *out. Every error names the file and what is wrong with it. */
static int read_direction(const char *cmd, const char *path, int dim, float **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail(cmd, "--target-direction '%s': cannot open the file: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *text = malloc(cap);
    int rc = 0;
    while (text) {
        if (n + 1 >= cap) {
            char *nt = cap < ((size_t)1 << 30) ? realloc(text, cap * 2) : NULL;
            if (!nt) {
                rc = cli_fail(cmd, "--target-direction '%s': the file is too large (%zu bytes read)", path, n);
                break;
            }
            text = nt;
            cap *= 2;
        }
        size_t got = fread(text + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!rc && !text) rc = cli_fail(cmd, "out of memory");
    if (!rc && ferror(f)) rc = cli_fail(cmd, "--target-direction '%s': cannot read the file: %s", path, strerror(errno));
    fclose(f);
    if (!rc) {
        text[n] = '\0';
        if (strlen(text) != n)
            rc = cli_fail(cmd, "--target-direction '%s': a NUL byte at offset %zu: expected text (%d numbers separated by white "
                               "space or commas)", path, strlen(text), dim);
    }
    float *v = rc ? NULL : malloc(sizeof(float) * (size_t)(dim > 0 ? dim : 1));
    if (!rc && !v) rc = cli_fail(cmd, "out of memory");
    static const char SEP[] = ", \t\n\r\f\v[]";
    size_t k = 0;
    int nonzero = 0;
    for (const char *p = rc ? "" : text; *p && !rc;) {
        if (strchr(SEP, *p)) {
            p++;
            continue;
        }
        size_t len = strcspn(p, SEP);
        char *e;
        errno = 0;
        double x = strtod(p, &e);
        if (e == p || (size_t)(e - p) != len || !isfinite(x) || isinf((float)x)) { /* underflow to 0 is fine */
            char shown[41];
            int binary = 0;
            size_t m = len > 40 ? 40 : len;
            for (size_t i = 0; i < m; i++) {
                unsigned char ch = (unsigned char)p[i];
                binary |= ch < 0x20 || ch >= 0x7f;
                shown[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
            }
            shown[m] = '\0';
            rc = cli_fail(cmd, "--target-direction '%s': number %zu ('%s%s') is not a finite float%s", path, k + 1, shown,
                          len > m ? "..." : "", binary ? " (the file must be text, not raw binary floats)" : "");
            break;
        }
        if (k < (size_t)dim) v[k] = (float)x;
        nonzero |= (float)x != 0.0f;
        k++;
        p += len;
    }
    if (!rc && k != (size_t)dim)
        rc = cli_fail(cmd, "--target-direction '%s': %zu numbers, but the model's dim is %d (one number per residual dimension, "
                           "separated by white space or commas)", path, k, dim);
    if (!rc && !nonzero) rc = cli_fail(cmd, "--target-direction '%s': every number is 0 (the direction must not be zero)", path);
    free(text);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    return 0;
}

static int run_validate(cli_args *a) {
    const char *cmd = "validate";
    cli_progress bar;
    long long top_k = 20, max_nodes = 0, max_logits = 10, target_tok = -1;
    const char *s;
    if ((s = cli_opt(a, "-k", "--top-k")) && cli_parse_int(s, "--top-k", 0, 1 << 20, &top_k)) return 1;
    if ((s = cli_opt(a, NULL, "--max-feature-nodes")) && cli_parse_int(s, "--max-feature-nodes", 0, INT32_MAX, &max_nodes)) return 1;
    if ((s = cli_opt(a, NULL, "--max-logits")) && cli_parse_int(s, "--max-logits", 1, INT32_MAX, &max_logits)) return 1;
    if ((s = cli_opt(a, NULL, "--target")) && cli_parse_int(s, "--target", 0, INT32_MAX, &target_tok)) return 1;
    const char *diff_s = cli_opt(a, NULL, "--target-diff");
    const char *dir_path = cli_opt(a, NULL, "--target-direction");
    if ((diff_s != NULL) + (target_tok >= 0) + (dir_path != NULL) > 1)
        return cli_fail(cmd, "give one of --target, --target-diff and --target-direction");
    const char *tc_dir = cli_opt(a, NULL, "--transcoders");
    int32_t modes = AG_VALIDATE_ALL;
    if ((s = cli_opt(a, NULL, "--modes")) && parse_modes(cmd, s, &modes)) return 1;
    int no_errors = cli_flag(a, NULL, "--no-errors"), no_embed = cli_flag(a, NULL, "--no-embeddings");
    int quiet = cli_flag(a, "-q", "--quiet");
    const char *groups_s[MAX_GROUPS];
    int n_groups = cli_opt_all(a, "-g", "--group", groups_s, MAX_GROUPS);
    if (n_groups > MAX_GROUPS) return cli_fail(cmd, "at most %d groups", MAX_GROUPS);
    const char *out_path = cli_opt(a, "-o", "--output");

    ag_model *m;
    if (cli_load_model(a, cmd, 0, &m)) return 1;
    int32_t *toks = NULL;
    size_t T = 0;
    int rc = cli_prompt_tokens(a, cmd, m, &toks, &T) || cli_check_unused(a, cmd);
    int32_t *diff = NULL;
    size_t n_diff = 0;
    if (!rc && diff_s && !(rc = cli_parse_int_list(diff_s, "--target-diff", &diff, &n_diff)) && n_diff != 2)
        rc = cli_fail(cmd, "--target-diff '%s': expected TOKEN,TOKEN_B (the target is logit(TOKEN) - logit(TOKEN_B))", diff_s);
    float *direction = NULL;
    if (!rc && dir_path) {
        ag_model_info info;
        info.struct_size = sizeof info;
        ag_status ist = ag_model_get_info(m, &info);
        if (ist != AG_OK) rc = cli_fail_status(cmd, ist);
        else rc = read_direction(cmd, dir_path, info.dim, &direction);
    }
    ag_transcoder *tc = NULL;
    if (!rc && tc_dir) {
        ag_status lst = ag_transcoder_load(&tc, tc_dir, m, NULL);
        if (lst != AG_OK) rc = cli_fail_status(cmd, lst);
    }
    ag_trace *t = NULL;
    ag_graph *g = NULL;
    ag_validation *v = NULL;
    ag_status st = AG_OK;
    int64_t *gnodes = NULL;
    size_t gn = 0, gcap = 0;
    int32_t gsizes[MAX_GROUPS];
    if (!rc && (st = ag_trace_create(&t, m, toks, T, NULL)) != AG_OK) rc = cli_fail_status(cmd, st);
    if (!rc) {
        ag_graph_options go;
        AG_GRAPH_OPTIONS_INIT(go);
        go.max_feature_nodes = (int32_t)max_nodes;
        go.max_logits = (int32_t)max_logits;
        go.progress = cli_progress_cb; /* a bar on a terminal, lines otherwise; Ctrl-C cancels */
        go.user_data = &bar;
        if (tc) {
            go.basis = AG_BASIS_TRANSCODERS;
            go.transcoders = tc;
        }
        ag_graph_target tg;
        if (target_tok >= 0 || diff || direction) {
            memset(&tg, 0, sizeof tg);
            tg.kind = direction ? AG_GRAPH_TARGET_DIRECTION : diff ? AG_GRAPH_TARGET_LOGIT_DIFF : AG_GRAPH_TARGET_TOKEN;
            tg.token = diff ? diff[0] : direction ? 0 : (int32_t)target_tok;
            tg.token_b = diff ? diff[1] : 0;
            tg.direction = direction;
            go.targets = &tg;
            go.n_targets = 1;
        }
        cli_progress_begin(&bar, cmd, quiet);
        st = ag_graph_build(&g, t, &go);
        cli_progress_end(&bar, st);
        if (st == AG_ERR_CANCELLED) rc = 130;
        else if (st != AG_OK) rc = cli_fail_status(cmd, st);
    }
    for (int i = 0; !rc && i < n_groups; i++) rc = parse_group(cmd, g, groups_s[i], &gnodes, &gn, &gcap, &gsizes[i]);
    if (!rc) {
        ag_validate_options vo;
        AG_VALIDATE_OPTIONS_INIT(vo);
        vo.top_k = (int32_t)top_k;
        vo.modes = modes;
        vo.include_errors = !no_errors;
        vo.include_embeddings = !no_embed;
        vo.group_nodes = gnodes;
        vo.group_sizes = gsizes;
        vo.n_groups = n_groups;
        vo.transcoder = tc;
        if ((st = ag_graph_validate(&v, g, t, &vo)) != AG_OK) rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        char *json = NULL;
        size_t len = 0;
        if ((st = ag_validation_json(v, &json, &len)) != AG_OK) {
            rc = cli_fail_status(cmd, st);
        } else {
            FILE *f = out_path ? fopen(out_path, "wb") : stdout;
            if (!f) {
                rc = cli_fail(cmd, "cannot open '%s' for writing", out_path);
            } else {
                if (fwrite(json, 1, len, f) != len || fputc('\n', f) == EOF) rc = cli_fail(cmd, "write failed");
                if (out_path && fclose(f) != 0) rc = cli_fail(cmd, "write failed: %s", out_path);
            }
            ag_free(json);
        }
        if (!rc && !quiet) { /* a short human summary on stderr */
            static const int32_t bits[4] = {AG_VALIDATE_DIRECT, AG_VALIDATE_LINEAR, AG_VALIDATE_FREE, AG_VALIDATE_FREE_FROZEN_ATTENTION};
            static const char *const names[4] = {"direct", "linear", "free", "free+frozen attention"};
            fprintf(stderr, "attrgraph validate: %zu rows\n", ag_validation_n_rows(v));
            for (int k = 0; k < 4; k++) {
                if (!(modes & bits[k])) continue;
                ag_validation_stats sd, stt;
                sd.struct_size = stt.struct_size = sizeof sd;
                ag_validation_get_stats(v, bits[k], 0, &sd);
                ag_validation_get_stats(v, bits[k], 1, &stt);
                fprintf(stderr,
                        "  %-22s vs direct effect: pearson %.4f rel.err %.2e | vs path sum: pearson %.4f spearman %.4f "
                        "sign %.2f rel.err %.2e\n",
                        names[k], sd.pearson, sd.rel_error, stt.pearson, stt.spearman, stt.sign_agreement, stt.rel_error);
            }
        }
    }
    free(gnodes);
    free(diff);
    free(direction);
    ag_validation_free(v);
    ag_graph_free(g);
    ag_transcoder_free(tc);
    ag_trace_free(t);
    free(toks);
    ag_model_free(m);
    return rc;
}

const cli_command cli_cmd_validate = {
    "validate", "check a prompt's attribution graph against interventions on the model",
    "usage: attrgraph validate -m MODEL [-z TOKENIZER] (-p TEXT | -t IDS) [-k N]\n"
    "                          [--modes direct,linear,free,free_frozen_attention|all]\n"
    "                          [--target TOKEN | --target-diff TOKEN,TOKEN_B | --target-direction FILE]\n"
    "                          [--transcoders DIR]\n"
    "                          [--max-feature-nodes N] [--max-logits K]\n"
    "                          [--group ID,ID,... ...] [--no-errors] [--no-embeddings]\n"
    "                          [-o REPORT.json] [-q]\n\n"
    "Builds the prompt's graph (decomposition; neurons, or with --transcoders DIR the features of\n"
    "that transcoder set; every unit expanded unless --max-feature-nodes N), ablates its N\n"
    "(default 20) most influential source nodes one at a time (units set to 0 - a feature by\n"
    "removing a x its decoder rows from every block it writes -, embeddings and error vectors\n"
    "removed from the residual stream) and every --group of node ids together, and compares the\n"
    "change of the target (default: the most probable token's demeaned logit; --target TOKEN that\n"
    "token's; --target-diff A,B the logit difference logit(A) - logit(B); --target-direction FILE\n"
    "the direction w . (final-norm output) at the last position, w = the file's dim numbers, in\n"
    "the space of the classifier rows: plain text, numbers separated by white space or commas,\n"
    "e.g. one per line; a JSON array works) with the graph's direct effect (the edge) and total\n"
    "effect (the sum over all paths of the unpruned graph):\n"
    "  direct  - norms, attention patterns, gates and other MLP outputs frozen: equals the edge\n"
    "  linear  - the local replacement model (with --transcoders the transcoder's: features\n"
    "            recomputed with frozen multipliers, reconstruction error held): equals the path sum\n"
    "  free    - the real model; free_frozen_attention - with attention patterns frozen.\n"
    "Prints JSON {\"target\":{\"node\",\"id\",\"kind\",\"token\",\"token_b\",\"value\"},\"modes\",\n"
    "\"nodes\":[{\"node\",\"id\",\"kind\",\"layer\",\"position\",\"index\",\"activation\",\"influence\",\n"
    "\"predicted_direct\",\"predicted_total\",\"measured\":{mode:change}}],\"groups\":[...],\n"
    "\"summary\":{mode:{\"vs_direct\":{stats},\"vs_total\":{stats}}}} (stats: n, pearson, spearman,\n"
    "sign_agreement, rel_error = max|measured-predicted|/max|predicted|, median_rel_error) to\n"
    "stdout or -o FILE, and a summary line per mode on stderr (-q: none).\n",
    run_validate};
