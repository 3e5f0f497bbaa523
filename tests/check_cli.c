/*
 * check_cli — the `attrgraph` command-line tool (DESIGN §4), run as a child process
 * (posix_spawn) with stdout and stderr captured separately; JSON output parsed with cJSON.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attrgraph.h"
#include "naive_llama.h"
#include "suite_run.h"

/* AG_CLI_PATH is defined only when the tool is built (AG_BUILD_TOOLS=ON); without it this
 * suite compiles to a no-op that reports the skip. */
#ifdef AG_CLI_PATH

extern char **environ;

#define STORIES_BIN "models/stories260K.bin"
#define STORIES_GGUF "models/stories260K.gguf"
#define XS_BIN "models/llama2xs_model.bin"
#define TOK512 "models/tok512.bin"
#define VECTORS "vectors/stories260K-once-upon-a-time.json"

/* ---- running the tool ------------------------------------------------------------------- */

typedef struct cli_run {
    int code; /* exit status, or 128 + signal */
    char *out, *err;
    size_t out_len, err_len;
} cli_run;

static void cli_run_free(cli_run *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? *cap : 4096);
        while (nc < *len + n + 1) nc *= 2;
        char *g = realloc(*buf, nc);
        ck_assert_ptr_nonnull(g);
        *buf = g;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* Run AG_CLI_PATH with args (NULL-terminated, without argv[0]); stdin is /dev/null. */
static void run_cli(cli_run *r, const char *const *args) {
    memset(r, 0, sizeof *r);
    const char *argv[64];
    int n = 0;
    argv[n++] = AG_CLI_PATH;
    for (; args[n - 1] && n < 63; n++) argv[n] = args[n - 1];
    argv[n] = NULL;

    int po[2], pe[2];
    ck_assert_int_eq(pipe(po), 0);
    ck_assert_int_eq(pipe(pe), 0);
    posix_spawn_file_actions_t fa;
    ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclose(&fa, po[0]);
    posix_spawn_file_actions_addclose(&fa, pe[0]);
    posix_spawn_file_actions_addclose(&fa, po[1]);
    posix_spawn_file_actions_addclose(&fa, pe[1]);
    pid_t pid;
    int rc = posix_spawn(&pid, AG_CLI_PATH, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    ck_assert_msg(rc == 0, "posix_spawn(%s) failed: %s", AG_CLI_PATH, strerror(rc));

    size_t cap_o = 0, cap_e = 0;
    append(&r->out, &r->out_len, &cap_o, "", 0);
    append(&r->err, &r->err_len, &cap_e, "", 0);
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    char buf[8192];
    while (open_fds > 0) {
        int k = poll(fds, 2, -1);
        if (k < 0 && errno == EINTR) continue;
        ck_assert_int_ge(k, 0);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 0) append(&r->out, &r->out_len, &cap_o, buf, (size_t)got);
            else append(&r->err, &r->err_len, &cap_e, buf, (size_t)got);
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) ck_assert_int_eq(errno, EINTR);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Run and require success; returns the parsed stdout JSON (one document, nothing after). */
static cJSON *run_json(const char *const *args) {
    cli_run r;
    run_cli(&r, args);
    ck_assert_msg(r.code == 0, "%s %s ... exited %d, stderr: %s", args[0], args[1] ? args[1] : "", r.code, r.err);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(r.out, &end, 0);
    ck_assert_msg(j != NULL, "stdout of '%s' is not JSON: %.200s", args[0], r.out);
    while (end && (*end == '\n' || *end == ' ' || *end == '\r' || *end == '\t')) end++;
    ck_assert_msg(end && *end == '\0', "trailing output after the JSON document: %.100s", end ? end : "");
    cli_run_free(&r);
    return j;
}

/* Bad input: non-zero exit, nothing on stdout, exactly one non-empty line on stderr. */
static void expect_bad(const char *what, const char *const *args) {
    cli_run r;
    run_cli(&r, args);
    ck_assert_msg(r.code != 0, "%s: exit code 0 (stdout: %.200s)", what, r.out);
    ck_assert_msg(r.code < 128, "%s: killed by signal %d (stderr: %s)", what, r.code - 128, r.err);
    ck_assert_msg(r.out_len == 0, "%s: stdout not empty: %.200s", what, r.out);
    size_t newlines = 0;
    for (size_t i = 0; i < r.err_len; i++) newlines += r.err[i] == '\n';
    ck_assert_msg(r.err_len > 1 && newlines == 1 && r.err[r.err_len - 1] == '\n',
                  "%s: stderr must be exactly one line, got %zu bytes / %zu newlines: '%s'", what, r.err_len,
                  newlines, r.err);
    cli_run_free(&r);
}

static const cJSON *member(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(v != NULL, "JSON has no '%s'", key);
    return v;
}

static long long json_int(const cJSON *o, const char *key) {
    const cJSON *v = member(o, key);
    ck_assert_msg(cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble), "'%s' is not an integer", key);
    return (long long)v->valuedouble;
}

/* ---- info ------------------------------------------------------------------------------- */

static void check_info(const char *rel, const char *format, long long hidden, long long seq_len, long long n_params) {
    const char *args[] = {"info", "-m", ag_test_fixture(rel), NULL};
    cJSON *j = run_json(args);
    ck_assert(cJSON_IsObject(j));
    static const char *const keys[] = {"format",     "arch",       "dim",     "hidden_dim", "n_layers",
                                       "n_heads",    "n_kv_heads", "vocab_size", "seq_len", "n_params"};
    const size_t nkeys = sizeof keys / sizeof keys[0];
    ck_assert_int_eq(cJSON_GetArraySize(j), (int)nkeys);
    size_t i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        ck_assert_msg(i < nkeys && strcmp(e->string, keys[i]) == 0, "info key %zu is '%s', want '%s'", i, e->string,
                      i < nkeys ? keys[i] : "(none)");
    }
    ck_assert_str_eq(cJSON_GetStringValue(member(j, "format")), format);
    ck_assert_str_eq(cJSON_GetStringValue(member(j, "arch")), "llama");
    ck_assert_int_eq(json_int(j, "dim"), 64);
    ck_assert_int_eq(json_int(j, "hidden_dim"), hidden);
    ck_assert_int_eq(json_int(j, "n_layers"), 5);
    ck_assert_int_eq(json_int(j, "n_heads"), 8);
    ck_assert_int_eq(json_int(j, "n_kv_heads"), 4);
    ck_assert_int_eq(json_int(j, "vocab_size"), 512);
    ck_assert_int_eq(json_int(j, "seq_len"), seq_len);
    if (n_params > 0) ck_assert_int_eq(json_int(j, "n_params"), n_params);
    cJSON_Delete(j);
}

START_TEST(test_info) {
    check_info(STORIES_BIN, "llama2c", 172, 512, 260032);
    check_info(XS_BIN, "llama2c", 192, 256, 279232);
    /* GGUF: explicit output tensor; n_params = 260032 when shared, + V*D when counted apart */
    check_info(STORIES_GGUF, "gguf", 172, 2048, -1);
    const char *args[] = {"info", "-m", ag_test_fixture(STORIES_GGUF), NULL};
    cJSON *j = run_json(args);
    long long np = json_int(j, "n_params");
    ck_assert_msg(np == 260032 || np == 260032 + 512 * 64, "gguf n_params %lld", np);
    cJSON_Delete(j);
    /* --model=PATH works like -m PATH */
    char eq[4200];
    snprintf(eq, sizeof eq, "--model=%s", ag_test_fixture(STORIES_BIN));
    const char *args2[] = {"info", eq, NULL};
    j = run_json(args2);
    ck_assert_int_eq(json_int(j, "n_params"), 260032);
    cJSON_Delete(j);
}
END_TEST

/* ---- tokenize --------------------------------------------------------------------------- */

/* first_piece: index of the first piece compared (the GGUF's BOS piece is "<s>", llama2.c's
 * tokenizer writes "\n<s>\n"). */
static void check_tokens_pieces(const cJSON *j, const cJSON *vec, int first_piece) {
    size_t nt = 0, nv = 0;
    int32_t *got = ag_json_ints(member(j, "tokens"), &nt);
    int32_t *want = ag_json_ints(member(vec, "tokens"), &nv);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(nt, nv);
    ck_assert_mem_eq(got, want, nt * sizeof *got);
    const cJSON *gp = member(j, "pieces"), *wp = member(vec, "pieces");
    ck_assert_int_eq(cJSON_GetArraySize(gp), cJSON_GetArraySize(wp));
    for (int i = first_piece; i < cJSON_GetArraySize(wp); i++) {
        const char *a = cJSON_GetStringValue(cJSON_GetArrayItem(gp, i));
        const char *b = cJSON_GetStringValue(cJSON_GetArrayItem(wp, i));
        ck_assert_ptr_nonnull(a);
        ck_assert_msg(strcmp(a, b) == 0, "piece %d: '%s', want '%s'", i, a, b);
    }
    free(got);
    free(want);
}

START_TEST(test_tokenize) {
    cJSON *vec = ag_test_load_json(ag_test_fixture(VECTORS));
    ck_assert_ptr_nonnull(vec);
    const char *args[] = {"tokenize", "-m", ag_test_fixture(STORIES_BIN), "-z", ag_test_fixture(TOK512),
                          "-p", "Once upon a time", NULL};
    cJSON *j = run_json(args);
    ck_assert_int_eq(cJSON_GetArraySize(j), 2);
    check_tokens_pieces(j, vec, 0);
    cJSON_Delete(j);
    /* the GGUF carries its own vocabulary */
    const char *args2[] = {"tokenize", "-m", ag_test_fixture(STORIES_GGUF), "--prompt", "Once upon a time", NULL};
    j = run_json(args2);
    check_tokens_pieces(j, vec, 1);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(member(j, "pieces"), 0)), "<s>");
    cJSON_Delete(j);
    /* -t ids are decoded as given */
    const char *args3[] = {"tokenize", "-m", ag_test_fixture(STORIES_BIN), "-z", ag_test_fixture(TOK512),
                           "-t", "1,403,407,261,378", NULL};
    j = run_json(args3);
    check_tokens_pieces(j, vec, 0);
    cJSON_Delete(j);
    cJSON_Delete(vec);
}
END_TEST

/* ---- logits ----------------------------------------------------------------------------- */

START_TEST(test_logits) {
    cJSON *vec = ag_test_load_json(ag_test_fixture(VECTORS));
    ck_assert_ptr_nonnull(vec);
    size_t nw = 0;
    double *want = ag_json_doubles(member(vec, "logits_all_positions"), &nw);
    ck_assert_uint_eq(nw, 5 * 512);
    const double scale = ag_max_abs_d(want, nw);

    const char *args[] = {"logits", "-m", ag_test_fixture(STORIES_BIN), "-t", "1,403,407,261,378", "--all-positions",
                          NULL};
    cJSON *j = run_json(args);
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    size_t n = 0;
    int32_t *toks = ag_json_ints(member(j, "tokens"), &n);
    ck_assert_uint_eq(n, 5);
    const int32_t once[5] = {1, 403, 407, 261, 378};
    ck_assert_mem_eq(toks, once, sizeof once);
    free(toks);
    int32_t *pos = ag_json_ints(member(j, "positions"), &n);
    ck_assert_uint_eq(n, 5);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(pos[i], i);
    free(pos);
    const cJSON *lg = member(j, "logits");
    ck_assert_int_eq(cJSON_GetArraySize(lg), 5);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(lg, i)), 512);
    double *got = ag_json_doubles(lg, &n);
    ck_assert_uint_eq(n, 5 * 512);
    double d = ag_max_diff_dd(got, want, n);
    ck_assert_msg(d <= 1e-4 * scale, "--all-positions logits: max diff %g (scale %g)", d, scale);
    free(got);
    cJSON_Delete(j);

    /* without --all-positions: the last position only */
    const char *args2[] = {"logits", "-m", ag_test_fixture(STORIES_BIN), "--tokens", "1,403,407,261,378", NULL};
    j = run_json(args2);
    pos = ag_json_ints(member(j, "positions"), &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(pos[0], 4);
    free(pos);
    lg = member(j, "logits");
    ck_assert_int_eq(cJSON_GetArraySize(lg), 1);
    got = ag_json_doubles(lg, &n);
    ck_assert_uint_eq(n, 512);
    d = ag_max_diff_dd(got, want + 4 * 512, 512);
    ck_assert_msg(d <= 1e-4 * scale, "last-position logits: max diff %g", d);
    free(got);
    cJSON_Delete(j);

    /* -p gives the same as the vectors' tokens */
    const char *args3[] = {"logits", "-m", ag_test_fixture(STORIES_BIN), "-z", ag_test_fixture(TOK512), "-p",
                           "Once upon a time", NULL};
    j = run_json(args3);
    toks = ag_json_ints(member(j, "tokens"), &n);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(toks, once, sizeof once);
    free(toks);
    got = ag_json_doubles(member(j, "logits"), &n);
    ck_assert_uint_eq(n, 512);
    d = ag_max_diff_dd(got, want + 4 * 512, 512);
    ck_assert_msg(d <= 1e-4 * scale, "-p logits: max diff %g", d);
    free(got);
    cJSON_Delete(j);

    free(want);
    cJSON_Delete(vec);
}
END_TEST

/* ---- generate --------------------------------------------------------------------------- */

START_TEST(test_generate) {
    static const char *const story = "Once upon a time, there was a little girl named Lily.";
    const char *args[] = {"generate", "-m", ag_test_fixture(STORIES_BIN), "-z", ag_test_fixture(TOK512), "-n", "30",
                          NULL};
    cli_run r;
    run_cli(&r, args);
    ck_assert_msg(r.code == 0, "generate exited %d: %s", r.code, r.err);
    ck_assert_msg(strncmp(r.out, story, strlen(story)) == 0, "generate printed '%s'", r.out);
    cli_run_free(&r);

    /* with a prompt: the prompt is printed, then the continuation (greedy = the same story) */
    const char *args2[] = {"generate", "-m", ag_test_fixture(STORIES_BIN), "-z", ag_test_fixture(TOK512), "-p",
                           "Once upon a time", "-n", "12", "--temperature", "0", NULL};
    run_cli(&r, args2);
    ck_assert_msg(r.code == 0, "generate -p exited %d: %s", r.code, r.err);
    ck_assert_msg(strncmp(r.out, "Once upon a time, there was a little girl", 41) == 0, "generate -p printed '%s'",
                  r.out);
    cli_run_free(&r);

    /* sampling: the same seed gives the same text */
    const char *args3[] = {"generate", "-m", ag_test_fixture(STORIES_BIN), "-z", ag_test_fixture(TOK512), "-n", "20",
                           "--temperature", "0.8", "--seed", "17", NULL};
    cli_run a, b;
    run_cli(&a, args3);
    run_cli(&b, args3);
    ck_assert_int_eq(a.code, 0);
    ck_assert_int_eq(b.code, 0);
    ck_assert_str_eq(a.out, b.out);
    cli_run_free(&a);
    cli_run_free(&b);

    /* -n 0: the prompt alone */
    const char *args4[] = {"generate", "-m", ag_test_fixture(STORIES_BIN), "-z", ag_test_fixture(TOK512), "-p",
                           "Once upon a time", "-n", "0", NULL};
    run_cli(&r, args4);
    ck_assert_int_eq(r.code, 0);
    ck_assert_str_eq(r.out, "Once upon a time\n");
    cli_run_free(&r);
}
END_TEST

/* ---- help ------------------------------------------------------------------------------- */

static void expect_help(const char *cmd) {
    const char *args[] = {cmd, "--help", NULL};
    cli_run r;
    run_cli(&r, args);
    ck_assert_msg(r.code == 0, "'%s --help' exited %d: %s", cmd, r.code, r.err);
    ck_assert_msg(r.out_len > 0, "'%s --help' printed nothing on stdout", cmd);
    ck_assert_msg(strstr(r.out, cmd) != NULL, "'%s --help' does not mention the command", cmd);
    cli_run_free(&r);
    const char *args2[] = {cmd, "-h", NULL};
    run_cli(&r, args2);
    ck_assert_msg(r.code == 0, "'%s -h' exited %d", cmd, r.code);
    cli_run_free(&r);
}

START_TEST(test_help) {
    const char *top[] = {"--help", NULL};
    cli_run r;
    run_cli(&r, top);
    ck_assert_int_eq(r.code, 0);
    ck_assert_uint_gt(r.out_len, 0);
    /* every command listed under "commands:" has a working --help */
    static const char *const required[] = {"info", "tokenize", "generate", "logits"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        ck_assert_msg(strstr(r.out, required[i]) != NULL, "--help does not list '%s'", required[i]);
    const char *sec = strstr(r.out, "commands:");
    ck_assert_ptr_nonnull(sec);
    int listed = 0;
    for (const char *line = strchr(sec, '\n'); line && line[1] == ' ';) {
        line++;
        char name[64];
        if (sscanf(line, " %63s", name) == 1) {
            expect_help(name);
            listed++;
        }
        line = strchr(line, '\n');
    }
    ck_assert_int_ge(listed, 4);
    cli_run_free(&r);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) expect_help(required[i]);
    const char *ver[] = {"--version", NULL};
    run_cli(&r, ver);
    ck_assert_int_eq(r.code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, AG_VERSION_STRING));
    cli_run_free(&r);
}
END_TEST

/* ---- bad input -------------------------------------------------------------------------- */

START_TEST(test_bad_input) {
    const char *M = ag_test_fixture(STORIES_BIN), *Z = ag_test_fixture(TOK512), *XS = ag_test_fixture(XS_BIN);
    /* Without -m the CLI uses the built-in model (issue 5; tests/check_builtin.c covers it);
     * a tokenizer without a model is still an error. */
    {
        const char *a[] = {"tokenize", "-z", Z, "-p", "Once", NULL};
        expect_bad("-z without -m", a);
    }
    {
        const char *a[] = {"info", "-m", "/nonexistent/dir/model.bin", NULL};
        expect_bad("nonexistent model", a);
    }
    {
        const char *a[] = {"logits", "-m", "/nonexistent/dir/model.bin", "-t", "1", NULL};
        expect_bad("nonexistent model (logits)", a);
    }
    {
        const char *a[] = {"info", "-m", Z, NULL};
        expect_bad("a tokenizer file as the model", a);
    }
    {
        const char *a[] = {"info", "-m", NULL};
        expect_bad("-m without a value", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,abc,3", NULL};
        expect_bad("bad -t list (letters)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,,3", NULL};
        expect_bad("bad -t list (empty item)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,2,", NULL};
        expect_bad("bad -t list (trailing comma)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "", NULL};
        expect_bad("bad -t list (empty)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,99999999999", NULL};
        expect_bad("bad -t list (overflow)", a);
    }
    {
        const char *a[] = {"info", "-m", M, "--bogus", NULL};
        expect_bad("unknown flag (info)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,403", "--frobnicate", NULL};
        expect_bad("unknown flag (logits)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,403", "stray", NULL};
        expect_bad("stray argument", a);
    }
    {
        const char *a[] = {"frobnicate", "-m", M, NULL};
        expect_bad("unknown command", a);
    }
    {
        const char *a[] = {"tokenize", "-m", M, "-z", Z, "-p", "hi", "-t", "1,2", NULL};
        expect_bad("-p and -t together (tokenize)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-z", Z, "-p", "hi", "-t", "1,2", NULL};
        expect_bad("-p and -t together (logits)", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-z", Z, "-p", "hi", "-t", "1,2", NULL};
        expect_bad("-p and -t together (generate)", a);
    }
    {
        const char *a[] = {"logits", "-m", M, NULL};
        expect_bad("logits without -p/-t", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,512", NULL};
        expect_bad("token id = vocab", a);
    }
    {
        const char *a[] = {"logits", "-m", M, "-t", "1,-1", NULL};
        expect_bad("token id = -1", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-z", Z, "-t", "1,600", "-n", "3", NULL};
        expect_bad("generate: token id out of range", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-z", Z, "-n", "-5", NULL};
        expect_bad("-n -5", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-z", Z, "-n", "ten", NULL};
        expect_bad("-n ten", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-z", Z, "-n", "5", "--temperature", "abc", NULL};
        expect_bad("--temperature abc", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-z", Z, "-n", "5", "--temperature", "-1", NULL};
        expect_bad("--temperature -1", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-z", Z, "-n", "5", "--seed", "-3", NULL};
        expect_bad("--seed -3", a);
    }
    {
        const char *a[] = {"generate", "-m", M, "-n", "5", NULL};
        expect_bad("generate without a tokenizer", a);
    }
    {
        const char *a[] = {"tokenize", "-m", M, "-p", "hi", NULL};
        expect_bad("tokenize without a tokenizer", a);
    }
    {
        const char *a[] = {"tokenize", "-m", M, "-z", "/nonexistent/tok.bin", "-p", "hi", NULL};
        expect_bad("nonexistent tokenizer", a);
    }
    {
        /* 257 tokens for a model with seq_len 256 */
        size_t cap = 257 * 4 + 8, len = 0;
        char *ids = malloc(cap);
        ck_assert_ptr_nonnull(ids);
        for (int i = 0; i < 257; i++) len += (size_t)snprintf(ids + len, cap - len, i ? ",%d" : "%d", i ? 300 : 1);
        const char *a[] = {"logits", "-m", XS, "-t", ids, NULL};
        expect_bad("more tokens than seq_len", a);
        free(ids);
    }
    /* no command at all: non-zero, nothing on stdout (usage goes to stderr) */
    const char *none[] = {NULL};
    cli_run r;
    run_cli(&r, none);
    ck_assert_int_ne(r.code, 0);
    ck_assert_uint_eq(r.out_len, 0);
    ck_assert_uint_gt(r.err_len, 0);
    cli_run_free(&r);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------ */

static Suite *cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("commands");
    tcase_add_test(tc, test_info);
    tcase_add_test(tc, test_tokenize);
    tcase_add_test(tc, test_logits);
    tcase_add_test(tc, test_generate);
    tcase_add_test(tc, test_help);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_bad_input);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(cli_suite(), CK_ENV);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#else /* !AG_CLI_PATH */

int main(void) {
    fputs("check_cli: the attrgraph tool is not built (AG_BUILD_TOOLS=OFF); nothing to test\n", stderr);
    return EXIT_SUCCESS;
}

#endif
