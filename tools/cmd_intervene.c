/* attrgraph intervene (DESIGN §4): set, scale or shift MLP neurons or transcoder features and add
 * vectors to the residual stream, rerun the prompt in direct, linear or free mode, print the
 * logits before and after; optionally generate text with the interventions applied (steering). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_ITEMS 4096

/* ---- parsing ------------------------------------------------------------------------------ */

static int parse_long(const char *s, const char **end, long *out) {
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (e == s || errno) return 1;
    *end = e;
    *out = v;
    return 0;
}

/* POS, POS..Q (inclusive) or POS.. (to the end, generated tokens included); a negative POS or Q
 * counts from the end of the prompt (-1 = last). Fills position/position_end. */
static int parse_pos(const char *s, const char **end, long T, ag_intervention *iv) {
    long p, q;
    if (parse_long(s, &s, &p)) return 1;
    if (p < 0) p += T;
    iv->position = (int32_t)p;
    iv->position_end = 0;
    if (strncmp(s, "..", 2) == 0) {
        s += 2;
        if (*s == ':' || *s == '=' || *s == '\0') {
            iv->position_end = AG_POSITION_OPEN;
        } else {
            if (parse_long(s, &s, &q)) return 1;
            if (q < 0) q += T;
            if (q < p) return 1;
            iv->position_end = (int32_t)(q + 1);
        }
    }
    if (p < 0 || p > INT32_MAX - 1) return 1;
    *end = s;
    return 0;
}

/* [f]LAYER:POS:INDEX=NUMBER (NUMBER may be absent when want_value is 0); a leading 'f' makes it
 * a transcoder feature. The site may also be spelled out as ag_site_name writes it:
 * mlp.LAYER:POS:INDEX (neurons) or feature.LAYER:POS:INDEX (features). */
static int parse_unit(const char *cmd, const char *flag, const char *s, long T, int want_value, ag_intervention *iv) {
    const char *p = s;
    long layer = 0, index = 0;
    double v = 0.0;
    memset(iv, 0, sizeof *iv);
    iv->site = AG_SITE_MLP;
    int bad = 0, named = 0;
    const char *colon = strchr(p, ':');
    if (colon && colon - p < 32 && memchr(p, '.', (size_t)(colon - p))) { /* mlp.L / feature.L */
        char site[32];
        int32_t kind = 0, lay = 0;
        memcpy(site, p, (size_t)(colon - p));
        site[colon - p] = '\0';
        bad = ag_site_parse(site, &kind, &lay) != AG_OK || (kind != AG_SITE_MLP && kind != AG_SITE_FEATURE);
        if (!bad) {
            iv->site = kind;
            layer = lay;
            p = colon;
            named = 1;
        }
    } else if (*p == 'f' || *p == 'F') {
        iv->site = AG_SITE_FEATURE;
        p++;
    }
    if (!bad) bad = (!named && parse_long(p, &p, &layer)) || *p++ != ':' || parse_pos(p, &p, T, iv) || *p++ != ':' || parse_long(p, &p, &index);
    if (!bad && want_value) {
        char *e;
        bad = *p++ != '=';
        if (!bad) {
            errno = 0;
            v = strtod(p, &e);
            bad = e == p || *e || errno || !isfinite(v);
        }
    } else if (!bad) {
        bad = *p != '\0';
    }
    if (bad || layer < INT32_MIN || layer > INT32_MAX || index < INT32_MIN || index > INT32_MAX)
        return cli_fail(cmd, "%s '%s': expected [f]LAYER:POS:INDEX%s (f: a transcoder feature; or the site spelled out, "
                             "mlp.LAYER or feature.LAYER; POS: P, P..Q or P..; integers; a finite number)",
                        flag, s, want_value ? "=NUMBER" : "");
    iv->layer = (int32_t)layer;
    iv->index = (int32_t)index;
    iv->value = (float)v;
    return 0;
}

/* Numbers separated by commas or white space (JSON brackets allowed) into a malloc'ed array. */
static int parse_numbers(const char *s, float **out, size_t *n) {
    size_t cap = 16, k = 0;
    float *v = malloc(cap * sizeof *v);
    if (!v) return 1;
    while (*s) {
        if (*s == ',' || *s == '[' || *s == ']' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            s++;
            continue;
        }
        char *e;
        errno = 0;
        double x = strtod(s, &e);
        if (e == s || errno || !isfinite(x)) {
            free(v);
            return 1;
        }
        if (k == cap) {
            float *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                free(v);
                return 1;
            }
            v = nv;
            cap *= 2;
        }
        v[k++] = (float)x;
        s = e;
    }
    *out = v;
    *n = k;
    return 0;
}

static int parse_add(const char *cmd, const char *s, long T, int D, ag_intervention *iv, float **vec) {
    memset(iv, 0, sizeof *iv);
    *vec = NULL;
    iv->kind = AG_INTERVENE_ADD;
    const char *p = s;
    long layer = 0;
    int bad = 0;
    if (strncmp(p, "embed", 5) == 0) {
        iv->site = AG_SITE_EMBED;
        p += 5;
    } else if (strncmp(p, "resid.", 6) == 0 || strncmp(p, "mid.", 4) == 0) {
        iv->site = p[0] == 'r' ? AG_SITE_RESID : AG_SITE_MID;
        p += p[0] == 'r' ? 6 : 4;
        bad = parse_long(p, &p, &layer) || layer < 0 || layer > INT32_MAX;
    } else {
        bad = 1;
    }
    bad = bad || *p++ != ':' || parse_pos(p, &p, T, iv) || *p++ != '=';
    if (bad)
        return cli_fail(cmd, "--add '%s': expected SITE:POS=[COEF*]VECTOR with SITE embed, resid.L or mid.L "
                             "and VECTOR v1,v2,... or @FILE", s);
    iv->layer = (int32_t)layer;
    double coef = 1.0;
    const char *star = strchr(p, '*');
    if (star) {
        char *e;
        errno = 0;
        coef = strtod(p, &e);
        if (e != star || errno || !isfinite(coef)) return cli_fail(cmd, "--add '%s': the coefficient before '*' is not a finite number", s);
        p = star + 1;
    }
    iv->value = (float)coef;
    char *text = NULL;
    if (*p == '@') {
        text = cli_read_file(p + 1, NULL);
        if (!text) return cli_fail(cmd, "--add: cannot read the vector file '%s'", p + 1);
    }
    size_t n = 0;
    int perr = parse_numbers(text ? text : p, vec, &n);
    free(text);
    if (perr) return cli_fail(cmd, "--add '%s': the vector must be finite numbers separated by commas or spaces", s);
    if (n != (size_t)D) {
        free(*vec);
        *vec = NULL;
        return cli_fail(cmd, "--add '%s': the vector has %zu numbers; the model's dim is %d", s, n, D);
    }
    iv->vector = *vec;
    return 0;
}

static const char *mode_name(int32_t mode) {
    return mode == AG_INTERVENE_DIRECT ? "direct" : mode == AG_INTERVENE_LINEAR ? "linear" : "free";
}

static void json_logits(json_out *j, const float *lg, int V) {
    json_arr_open(j);
    for (int v = 0; v < V; v++) json_num(j, lg[v]);
    json_arr_close(j);
}

static void json_tokens_text(json_out *j, const ag_model *m, const int32_t *prompt, size_t n_prompt, const int32_t *gen,
                             size_t n_gen, const char *key_tokens, const char *key_text) {
    json_key(j, key_tokens);
    json_arr_open(j);
    for (size_t i = 0; i < n_gen; i++) json_int(j, gen[i]);
    json_arr_close(j);
    int32_t *all = malloc((n_prompt + n_gen) * sizeof *all);
    size_t len = 0, cap = 64;
    char *text = malloc(cap);
    if (all && text) {
        memcpy(all, prompt, n_prompt * sizeof *all);
        memcpy(all + n_prompt, gen, n_gen * sizeof *all);
        text[0] = '\0';
        for (size_t i = n_prompt; i < n_prompt + n_gen; i++) {
            char *piece = cli_piece(m, all, i);
            size_t pl = piece ? strlen(piece) : 0;
            if (len + pl + 1 > cap) {
                while (len + pl + 1 > cap) cap *= 2;
                char *nt = realloc(text, cap);
                if (!nt) {
                    free(piece);
                    break;
                }
                text = nt;
            }
            if (piece) memcpy(text + len, piece, pl + 1);
            len += pl;
            free(piece);
        }
    }
    json_key(j, key_text);
    json_str(j, text ? text : "");
    free(text);
    free(all);
}

/* ---- the command ------------------------------------------------------------------------------ */

static int run_intervene(cli_args *a) {
    const char *cmd = "intervene";
    const char *sets[MAX_ITEMS], *scales[MAX_ITEMS], *adds[MAX_ITEMS], *ablates[MAX_ITEMS], *shifts[MAX_ITEMS];
    int n_set = cli_opt_all(a, NULL, "--set", sets, MAX_ITEMS);
    int n_scale = cli_opt_all(a, NULL, "--scale", scales, MAX_ITEMS);
    int n_ablate = cli_opt_all(a, NULL, "--ablate", ablates, MAX_ITEMS);
    int n_shift = cli_opt_all(a, NULL, "--shift", shifts, MAX_ITEMS);
    int n_add = cli_opt_all(a, NULL, "--add", adds, MAX_ITEMS);
    if (n_set + n_scale + n_ablate + n_shift + n_add > MAX_ITEMS)
        return cli_fail(cmd, "at most %d interventions", MAX_ITEMS);
    const char *mode_s = cli_opt(a, NULL, "--mode");
    int32_t mode = AG_INTERVENE_FREE;
    if (mode_s) {
        if (strcmp(mode_s, "direct") == 0) mode = AG_INTERVENE_DIRECT;
        else if (strcmp(mode_s, "linear") == 0) mode = AG_INTERVENE_LINEAR;
        else if (strcmp(mode_s, "free") == 0) mode = AG_INTERVENE_FREE;
        else return cli_fail(cmd, "--mode '%s': expected direct, linear or free", mode_s);
    }
    int fa = cli_flag(a, NULL, "--freeze-attention"), fnorm = cli_flag(a, NULL, "--freeze-norms");
    int fg = cli_flag(a, NULL, "--freeze-gates"), all_pos = cli_flag(a, NULL, "--all-positions");
    int frep = cli_flag(a, NULL, "--free-replacement");
    const char *tc_dir = cli_opt(a, NULL, "--transcoders");
    if ((fa || fnorm || fg || frep) && mode != AG_INTERVENE_FREE)
        return cli_fail(cmd, "--freeze-attention/--freeze-norms/--freeze-gates/--free-replacement apply to --mode free (direct and "
                             "linear freeze everything)");
    if (frep && !tc_dir) return cli_fail(cmd, "--free-replacement needs --transcoders DIR (the replacement model's set)");
    long long n_gen = 0, seed = 42;
    double temp = 0.0;
    const char *s;
    if ((s = cli_opt(a, NULL, "--generate")) && cli_parse_int(s, "--generate", 0, 1 << 20, &n_gen)) return 1;
    if ((s = cli_opt(a, NULL, "--temperature")) && cli_parse_float(s, "--temperature", &temp)) return 1;
    if ((s = cli_opt(a, NULL, "--seed")) && cli_parse_int(s, "--seed", 0, INT64_MAX, &seed)) return 1;

    ag_model *m;
    if (cli_load_model(a, cmd, 0, &m)) return 1;
    ag_model_info info;
    info.struct_size = sizeof info;
    ag_model_get_info(m, &info);
    int32_t *toks = NULL;
    size_t T = 0;
    int rc = cli_prompt_tokens(a, cmd, m, &toks, &T) || cli_check_unused(a, cmd);
    int n_items = n_set + n_scale + n_ablate + n_shift + n_add;
    ag_intervention *items = calloc((size_t)(n_items ? n_items : 1), sizeof *items);
    float **vecs = calloc((size_t)(n_add ? n_add : 1), sizeof *vecs);
    if (!rc && (!items || !vecs)) rc = cli_fail(cmd, "out of memory");
    if (!rc && n_items == 0) rc = cli_fail(cmd, "no interventions: give --set, --scale, --ablate, --shift or --add");
    int k = 0;
    for (int i = 0; !rc && i < n_set; i++, k++)
        if ((rc = parse_unit(cmd, "--set", sets[i], (long)T, 1, &items[k]))) break;
        else items[k].kind = AG_INTERVENE_SET;
    for (int i = 0; !rc && i < n_scale; i++, k++)
        if ((rc = parse_unit(cmd, "--scale", scales[i], (long)T, 1, &items[k]))) break;
        else items[k].kind = AG_INTERVENE_SCALE;
    for (int i = 0; !rc && i < n_ablate; i++, k++)
        if ((rc = parse_unit(cmd, "--ablate", ablates[i], (long)T, 0, &items[k]))) break;
        else items[k].kind = AG_INTERVENE_SET;
    for (int i = 0; !rc && i < n_shift; i++, k++)
        if ((rc = parse_unit(cmd, "--shift", shifts[i], (long)T, 1, &items[k]))) break;
        else items[k].kind = AG_INTERVENE_ADD;
    for (int i = 0; !rc && i < n_add; i++, k++) rc = parse_add(cmd, adds[i], (long)T, info.dim, &items[k], &vecs[i]);
    int any_feature = 0;
    for (int i = 0; !rc && i < n_items; i++) any_feature |= items[i].site == AG_SITE_FEATURE;
    if (!rc && any_feature && !tc_dir) rc = cli_fail(cmd, "feature interventions (f before the layer, or feature.L) need --transcoders DIR");
    ag_transcoder *tc = NULL;
    if (!rc && tc_dir) {
        ag_status lst = ag_transcoder_load(&tc, tc_dir, m, NULL);
        if (lst != AG_OK) rc = cli_fail_status(cmd, lst);
    }

    ag_trace *t = NULL;
    ag_intervention_result *r = NULL;
    ag_status st = AG_OK;
    if (!rc && (st = ag_trace_create(&t, m, toks, T, NULL)) != AG_OK) rc = cli_fail_status(cmd, st);
    if (!rc) {
        ag_intervene_options o;
        AG_INTERVENE_OPTIONS_INIT(o);
        o.mode = mode;
        o.freeze_attention = fa;
        o.freeze_norms = fnorm;
        o.freeze_gates = fg;
        o.transcoder = tc;
        o.free_replacement = frep;
        if ((st = ag_intervene(&r, t, items, (size_t)n_items, &o)) != AG_OK) {
            /* name the flag behind items[k] */
            const char *msg = ag_last_error(), *at = msg ? strstr(msg, "items[") : NULL;
            int bad = -1;
            if (at && sscanf(at, "items[%d]", &bad) == 1 && bad >= 0 && bad < n_items) {
                const char *flag = bad < n_set ? "--set" : bad < n_set + n_scale ? "--scale"
                                 : bad < n_set + n_scale + n_ablate ? "--ablate"
                                 : bad < n_set + n_scale + n_ablate + n_shift ? "--shift" : "--add";
                const char *text = bad < n_set ? sets[bad] : bad < n_set + n_scale ? scales[bad - n_set]
                                 : bad < n_set + n_scale + n_ablate ? ablates[bad - n_set - n_scale]
                                 : bad < n_set + n_scale + n_ablate + n_shift ? shifts[bad - n_set - n_scale - n_ablate]
                                 : adds[bad - n_set - n_scale - n_ablate - n_shift];
                rc = cli_fail(cmd, "%s %s: %s (%s)", flag, text, msg, ag_status_string(st));
            } else {
                rc = cli_fail_status(cmd, st);
            }
        }
    }
    int32_t *gen_clean = NULL, *gen_steer = NULL;
    size_t n_clean = 0, n_steer = 0;
    if (!rc && n_gen > 0) {
        ag_generate_options go;
        AG_GENERATE_OPTIONS_INIT(go);
        go.max_new_tokens = (int32_t)n_gen;
        go.temperature = (float)temp;
        go.seed = (uint64_t)seed;
        go.transcoder = tc;
        gen_clean = malloc((size_t)n_gen * sizeof *gen_clean);
        gen_steer = malloc((size_t)n_gen * sizeof *gen_steer);
        if (!gen_clean || !gen_steer) rc = cli_fail(cmd, "out of memory");
        else if ((st = ag_generate(m, toks, T, &go, gen_clean, (size_t)n_gen, &n_clean)) != AG_OK) rc = cli_fail_status(cmd, st);
        else if ((st = ag_generate_steered(m, toks, T, items, (size_t)n_items, &go, gen_steer, (size_t)n_gen, &n_steer)) != AG_OK)
            rc = cli_fail_status(cmd, st);
    }
    if (!rc) {
        const float *before, *after;
        int64_t sh[3];
        int32_t nd;
        ag_trace_tensor(t, AG_TENSOR_LOGITS, 0, &before, sh, &nd);
        int V = info.vocab_size;
        json_out j;
        json_begin(&j, stdout);
        json_obj_open(&j);
        json_key(&j, "mode");
        json_str(&j, mode_name(mode));
        if (mode == AG_INTERVENE_FREE) {
            json_key(&j, "freeze_attention");
            json_bool(&j, fa);
        }
        if (tc) {
            json_key(&j, "transcoders");
            json_str(&j, tc_dir);
            if (mode == AG_INTERVENE_FREE) {
                json_key(&j, "free_replacement");
                json_bool(&j, frep);
            }
        }
        json_key(&j, "position");
        json_int(&j, (long long)T - 1);
        json_key(&j, "interventions");
        json_arr_open(&j);
        for (int i = 0; i < n_items; i++) {
            const ag_intervention *iv = &items[i];
            if (iv->site != AG_SITE_MLP && iv->site != AG_SITE_FEATURE) continue;
            int end = iv->position_end == 0 ? iv->position + 1 : iv->position_end == AG_POSITION_OPEN ? (int)T : iv->position_end;
            for (int p = iv->position; p < end; p++) {
                float prev = NAN, val = NAN;
                ag_intervention_result_unit(r, (size_t)i, p, &prev, &val);
                if (iv->site == AG_SITE_FEATURE && isnan(prev)) continue; /* BOS: no features */
                json_obj_open(&j);
                json_key(&j, "unit");
                json_str(&j, iv->site == AG_SITE_FEATURE ? "feature" : "neuron");
                json_key(&j, "layer");
                json_int(&j, iv->layer);
                json_key(&j, "position");
                json_int(&j, p);
                json_key(&j, "index");
                json_int(&j, iv->index);
                json_key(&j, "previous");
                json_num(&j, prev);
                json_key(&j, "value");
                json_num(&j, val);
                json_obj_close(&j);
            }
        }
        json_arr_close(&j);
        if (n_add) {
            json_key(&j, "additions");
            json_arr_open(&j);
            for (int i = 0; i < n_items; i++) {
                const ag_intervention *iv = &items[i];
                if (iv->site == AG_SITE_MLP || iv->site == AG_SITE_FEATURE) continue;
                char site[32];
                if (iv->site == AG_SITE_EMBED) snprintf(site, sizeof site, "embed");
                else snprintf(site, sizeof site, "%s.%d", iv->site == AG_SITE_RESID ? "resid" : "mid", (int)iv->layer);
                double norm = 0;
                for (int d = 0; d < info.dim; d++) norm += (double)iv->vector[d] * iv->vector[d];
                json_obj_open(&j);
                json_key(&j, "site");
                json_str(&j, site);
                json_key(&j, "position");
                json_int(&j, iv->position);
                json_key(&j, "position_end");
                if (iv->position_end == AG_POSITION_OPEN) json_null(&j);
                else json_int(&j, iv->position_end ? iv->position_end : iv->position + 1);
                json_key(&j, "coefficient");
                json_num(&j, iv->value);
                json_key(&j, "vector_norm");
                json_num(&j, sqrt(norm));
                json_obj_close(&j);
            }
            json_arr_close(&j);
        }
        ag_intervention_result_logits(r, -1, 0, &after);
        json_key(&j, "logits_before");
        json_logits(&j, before + (T - 1) * (size_t)V, V);
        json_key(&j, "logits_after");
        json_logits(&j, after, V);
        if (all_pos) {
            json_key(&j, "positions");
            json_arr_open(&j);
            for (size_t p = 0; p < T; p++) json_int(&j, (long long)p);
            json_arr_close(&j);
            json_key(&j, "all_logits_before");
            json_arr_open(&j);
            for (size_t p = 0; p < T; p++) json_logits(&j, before + p * (size_t)V, V);
            json_arr_close(&j);
            json_key(&j, "all_logits_after");
            json_arr_open(&j);
            for (size_t p = 0; p < T; p++) {
                ag_intervention_result_logits(r, (int32_t)p, 0, &after);
                json_logits(&j, after, V);
            }
            json_arr_close(&j);
        }
        if (n_gen > 0) {
            json_key(&j, "generation");
            json_obj_open(&j);
            json_tokens_text(&j, m, toks, T, gen_clean, n_clean, "tokens_clean", "text_clean");
            json_tokens_text(&j, m, toks, T, gen_steer, n_steer, "tokens_steered", "text_steered");
            json_obj_close(&j);
        }
        json_obj_close(&j);
        json_end(&j);
    }
    free(gen_clean);
    free(gen_steer);
    for (int i = 0; vecs && i < n_add; i++) free(vecs[i]);
    free(vecs);
    free(items);
    ag_intervention_result_free(r);
    ag_transcoder_free(tc);
    ag_trace_free(t);
    free(toks);
    ag_model_free(m);
    return rc;
}

const cli_command cli_cmd_intervene = {
    "intervene", "set, scale or ablate neurons or transcoder features / add residual vectors and compare the logits",
    "usage: attrgraph intervene -m MODEL [-z TOKENIZER] (-p TEXT | -t IDS)\n"
    "                           [--set [f]LAYER:POS:INDEX=VALUE ...] [--scale [f]LAYER:POS:INDEX=K ...]\n"
    "                           [--ablate [f]LAYER:POS:INDEX ...] [--shift [f]LAYER:POS:INDEX=DELTA ...]\n"
    "                           [--add SITE:POS=[COEF*]VECTOR ...] [--transcoders DIR]\n"
    "                           [--mode direct|linear|free] [--freeze-attention] [--freeze-norms]\n"
    "                           [--freeze-gates] [--free-replacement] [--all-positions]\n"
    "                           [--generate N [--temperature X] [--seed S]]\n\n"
    "Clamps MLP neurons (INDEX of block LAYER) or, with an f before LAYER, transcoder features\n"
    "(feature INDEX of block LAYER of the set in --transcoders DIR) at prompt position POS and\n"
    "reruns the prompt (the site may also be spelled out as in attrgraph attribute --at:\n"
    "mlp.LAYER:POS:INDEX, feature.LAYER:POS:INDEX):\n"
    "  --set      the unit keeps VALUE             --scale   K x its clean value\n"
    "  --ablate   the same as --set ...=0          --shift   its clean value + DELTA\n"
    "  --add      adds COEF x VECTOR (default COEF 1) to a residual SITE: embed (= resid.0),\n"
    "             resid.L (input of block L; L = n_layers: the final residual) or mid.L (after\n"
    "             the attention of block L). VECTOR is dim numbers 'v1,v2,...' or '@FILE' (numbers\n"
    "             separated by commas or white space; a JSON array works).\n"
    "POS is P, P..Q (P to Q inclusive) or P.. (P to the end; with --generate also every generated\n"
    "token); a negative P or Q counts from the end of the prompt (-1 = the last position).\n"
    "A feature acts through its decoder rows: clamped from activation a to a', it adds\n"
    "(a' - a) x W_dec to the MLP output of every block it writes (a cross-layer set: every later\n"
    "block). Position 0 (BOS) has no features.\n\n"
    "Modes (DESIGN §1.5): direct - norm scales, attention patterns, gates and every other MLP output\n"
    "frozen (changes equal the graph's adjacency columns); linear - the local replacement model,\n"
    "units recomputed with frozen gates (changes equal the graph's path sums; with --transcoders it\n"
    "is the transcoder's replacement model: every MLP output = its features' decoded output plus\n"
    "the held reconstruction error, features recomputed with frozen multipliers, so neurons cannot\n"
    "be clamped); free (default) - the real model, optionally with attention patterns\n"
    "(--freeze-attention), norm scales or gate factors frozen; clamped features add\n"
    "(a' - a) x W_dec with a from the encoder in that run. --free-replacement runs the\n"
    "transcoder's replacement model instead (features through their activation function;\n"
    "--freeze-gates freezes their multipliers; all three freezes = linear).\n\n"
    "Prints {\"mode\",\"position\",\"interventions\":[{\"unit\",\"layer\",\"position\",\"index\",\"previous\",\n"
    "\"value\"}],\"logits_before\":[V],\"logits_after\":[V]} (logits at the last position; one\n"
    "interventions entry per clamped unit and position, unit \"neuron\" or \"feature\"), plus\n"
    "\"freeze_attention\" in free mode, \"transcoders\" (and in free mode \"free_replacement\") with\n"
    "--transcoders, \"additions\":[{\"site\",\"position\",\"position_end\",\"coefficient\",\"vector_norm\"}]\n"
    "with --add, \"positions\",\"all_logits_before\",\"all_logits_after\" with --all-positions, and with\n"
    "--generate N \"generation\":{\"tokens_clean\",\"text_clean\",\"tokens_steered\",\"text_steered\"}: N new\n"
    "tokens without and with the interventions (the real model, KV cache; --scale/--shift relative\n"
    "to the unit's value in that run).\n",
    run_intervene};
