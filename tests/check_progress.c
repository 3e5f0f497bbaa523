/*
 * check_progress — the CLI's progress reporting (tools/progress.c, linked into this test by
 * cmake/viewer.cmake): plain lines per 10% step when stderr is not a terminal, a redrawn bar
 * on a terminal, nothing when quiet, and Ctrl-C: the first SIGINT makes the callback return
 * nonzero (so the library stops with AG_ERR_CANCELLED), the second one terminates.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "suite_run.h"

static char *read_all(FILE *f) {
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *b = calloc((size_t)n + 1, 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    return b;
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

START_TEST(test_format_time) {
    char b[32];
    cli_progress_format_time(0.04, b, sizeof b);
    ck_assert_str_eq(b, "0.0 s");
    cli_progress_format_time(3.26, b, sizeof b);
    ck_assert_str_eq(b, "3.3 s");
    cli_progress_format_time(42.4, b, sizeof b);
    ck_assert_str_eq(b, "42 s");
    cli_progress_format_time(125, b, sizeof b);
    ck_assert_str_eq(b, "2:05");
    cli_progress_format_time(3725, b, sizeof b);
    ck_assert_str_eq(b, "1:02:05");
    cli_progress_format_time(-1, b, sizeof b);
    ck_assert_str_eq(b, "?");
}
END_TEST

START_TEST(test_plain_lines) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    cli_progress p;
    cli_progress_begin_on(&p, "graph", f, CLI_PROGRESS_LINES);
    for (int i = 0; i <= 40; i++) ck_assert_int_eq(cli_progress_cb("rows", i / 40.0, &p), 0);
    for (int i = 0; i <= 4; i++) ck_assert_int_eq(cli_progress_update(&p, "prune", i, 4), 0);
    ck_assert_int_eq(cli_progress_fraction_cb(0.5, &p), 0); /* phase = the task */
    cli_progress_end(&p, AG_OK);
    char *out = read_all(f);
    /* one line per 10% step: 11 for rows, 5 for prune (0, 25, 50, 75, 100) */
    ck_assert_uint_eq(count(out, "attrgraph graph: rows "), 11);
    ck_assert_uint_eq(count(out, "attrgraph graph: prune "), 5);
    ck_assert_ptr_nonnull(strstr(out, "rows  40% ("));
    ck_assert_ptr_nonnull(strstr(out, "rows 100% ("));
    ck_assert_ptr_null(strchr(out, '\r'));
    ck_assert_ptr_null(strchr(out, '\033'));
    ck_assert_uint_eq(count(out, "attrgraph graph: graph  50%"), 1);
    ck_assert_uint_eq(count(out, "\n"), 17);
    free(out);
    fclose(f);
}
END_TEST

START_TEST(test_bar) {
    FILE *f = tmpfile();
    cli_progress p;
    cli_progress_begin_on(&p, "graph", f, CLI_PROGRESS_BAR);
    ck_assert_int_eq(cli_progress_update(&p, "rows", 0.5, 0), 0);
    ck_assert_int_eq(cli_progress_update(&p, "rows", 1.0, 0), 0);
    ck_assert_int_eq(cli_progress_update(&p, "prune", 3, 10), 0);
    cli_progress_end(&p, AG_OK);
    char *out = read_all(f);
    ck_assert_ptr_nonnull(strstr(out, "\rrows ["));
    ck_assert_ptr_nonnull(strstr(out, "] 100%"));
    ck_assert_ptr_nonnull(strstr(out, "\rprune ["));
    ck_assert_ptr_nonnull(strstr(out, "  30%"));
    ck_assert_uint_eq(count(out, "\n"), 2); /* each phase ends its line */
    ck_assert(out[strlen(out) - 1] == '\n');
    free(out);
    fclose(f);
}
END_TEST

START_TEST(test_quiet_and_cancelled_message) {
    FILE *f = tmpfile();
    cli_progress p;
    cli_progress_begin_on(&p, "graph", f, CLI_PROGRESS_QUIET);
    for (int i = 0; i <= 10; i++) ck_assert_int_eq(cli_progress_cb("rows", i / 10.0, &p), 0);
    cli_progress_end(&p, AG_ERR_CANCELLED);
    char *out = read_all(f);
    ck_assert_str_eq(out, "");
    free(out);
    fclose(f);
    f = tmpfile();
    cli_progress_begin_on(&p, "graph", f, CLI_PROGRESS_LINES);
    cli_progress_cb("rows", 0.3, &p);
    cli_progress_end(&p, AG_ERR_CANCELLED);
    out = read_all(f);
    ck_assert_ptr_nonnull(strstr(out, "attrgraph graph: cancelled\n"));
    free(out);
    fclose(f);
    /* a NULL progress is harmless, odd values are clamped */
    ck_assert_int_eq(cli_progress_update(NULL, "x", 1, 2), 0);
    f = tmpfile();
    cli_progress_begin_on(&p, "t", f, CLI_PROGRESS_LINES);
    cli_progress_update(&p, NULL, -5, 0);
    cli_progress_update(&p, NULL, 7, 2);
    cli_progress_end(&p, AG_OK);
    out = read_all(f);
    ck_assert_ptr_nonnull(strstr(out, "attrgraph t: t   0%"));
    ck_assert_ptr_nonnull(strstr(out, "attrgraph t: t 100%"));
    free(out);
    fclose(f);
}
END_TEST

START_TEST(test_sigint_cancels_then_restores) {
    struct sigaction before, after;
    sigaction(SIGINT, NULL, &before);
    cli_progress p;
    cli_progress_begin_on(&p, "graph", NULL, CLI_PROGRESS_QUIET);
    ck_assert_int_eq(cli_progress_cb("rows", 0.1, &p), 0);
    ck_assert_int_eq(cli_progress_interrupted(), 0);
    raise(SIGINT); /* Ctrl-C: handled, the process goes on */
    ck_assert_int_eq(cli_progress_interrupted(), 1);
    ck_assert_int_ne(cli_progress_cb("rows", 0.2, &p), 0);
    ck_assert_int_ne(cli_progress_cb("rows", 0.3, &p), 0); /* and stays cancelled */
    cli_progress_end(&p, AG_ERR_CANCELLED);
    sigaction(SIGINT, NULL, &after);
    ck_assert(after.sa_handler == before.sa_handler);
    /* a new progress starts uncancelled */
    cli_progress_begin_on(&p, "graph", NULL, CLI_PROGRESS_QUIET);
    ck_assert_int_eq(cli_progress_cb("rows", 0.1, &p), 0);
    cli_progress_end(&p, AG_OK);
}
END_TEST

START_TEST(test_second_sigint_terminates) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        cli_progress p;
        cli_progress_begin_on(&p, "graph", NULL, CLI_PROGRESS_QUIET);
        raise(SIGINT);
        if (!cli_progress_cb("rows", 0.5, &p)) _exit(3);
        raise(SIGINT); /* the second Ctrl-C kills */
        _exit(4);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "child status %d", status);
}
END_TEST

START_TEST(test_ignored_sigint_stays_ignored) {
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old);
    cli_progress p;
    cli_progress_begin_on(&p, "graph", NULL, CLI_PROGRESS_QUIET);
    struct sigaction now;
    sigaction(SIGINT, NULL, &now);
    ck_assert(now.sa_handler == SIG_IGN); /* e.g. a background job: Ctrl-C is not ours */
    cli_progress_end(&p, AG_OK);
    sigaction(SIGINT, &old, NULL);
}
END_TEST

#ifdef AG_CLI_PATH
/* The CLI end to end: Ctrl-C during `attrgraph graph` stops the build cleanly (exit status
 * 130, "cancelled", no output file), through the library's progress callback. */
START_TEST(test_cli_graph_ctrl_c) {
    if (getenv("AG_UNDER_VALGRIND")) return; /* too slow there; the library side is check_graph's */
    char out[512];
    snprintf(out, sizeof out, "%s/check_progress_cancel.json", AG_BINARY_DIR);
    remove(out);
    int errpipe[2];
    ck_assert_int_eq(pipe(errpipe), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(errpipe[1], 2);
        close(errpipe[0]);
        signal(SIGINT, SIG_DFL);
        execl(AG_CLI_PATH, "attrgraph", "graph", "-m", AG_SHARED_DIR "/models/stories260K.bin", "-z",
              AG_SHARED_DIR "/models/tok512.bin", "-p",
              "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
              "One day, she saw a big dog with a red ball. The dog wanted to play with",
              "-o", out, (char *)NULL);
        _exit(127);
    }
    close(errpipe[1]);
    struct timespec wait = {1, 500000000L}; /* model loaded, the build running */
    nanosleep(&wait, NULL);
    kill(pid, SIGINT);
    char buf[8192];
    size_t n = 0;
    ssize_t r;
    while ((r = read(errpipe[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(errpipe[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d, stderr: %s", status, buf);
    ck_assert_msg(strstr(buf, "attrgraph graph: cancelled") != NULL, "stderr: %s", buf);
    ck_assert_int_ne(access(out, F_OK), 0);
}
END_TEST
#endif

static Suite *progress_suite(void) {
    Suite *s = suite_create("progress");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, test_format_time);
    tcase_add_test(tc, test_plain_lines);
    tcase_add_test(tc, test_bar);
    tcase_add_test(tc, test_quiet_and_cancelled_message);
    tcase_add_test(tc, test_sigint_cancels_then_restores);
    tcase_add_test(tc, test_second_sigint_terminates);
    tcase_add_test(tc, test_ignored_sigint_stays_ignored);
#ifdef AG_CLI_PATH
    tcase_add_test(tc, test_cli_graph_ctrl_c);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(progress_suite(), CK_ENV);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
