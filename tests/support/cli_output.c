/*
 * cli_output.c — run the attrgraph command line and collect its output (see the header).
 */
#include "cli_output.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#ifdef AG_CLI_PATH
/* Run the shell command `cmd` and collect what it writes to the pipe. */
static char *run_collect(const char *cmd, int *code) {
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    int st = pclose(p);
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return buf;
}

char *ag_test_cli_output(const char *args, int *code) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", AG_CLI_PATH, args);
    return run_collect(cmd, code);
}

char *ag_test_cli_stderr(const char *args, int *code) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1 >/dev/null", AG_CLI_PATH, args);
    return run_collect(cmd, code);
}
#endif
