/*
 * scratch_dir.c — a temporary directory per test program (see the header).
 */
#include "scratch_dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char g_scratch[256];

int ag_test_scratch_create(const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(g_scratch, sizeof g_scratch, "%s/ag_%s_XXXXXX", base && *base ? base : "/tmp", tag);
    return mkdtemp(g_scratch) ? 0 : -1;
}

const char *ag_test_scratch_path(const char *name) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_scratch, name);
    return buf[k];
}

void ag_test_scratch_remove(void) { rmdir(g_scratch); }
