/*
 * suite_run — the runner every suite's main() shares: runs a Check suite with the given
 * output mode and returns the number of failed tests.
 */
#ifndef AG_TEST_SUITE_RUN_H
#define AG_TEST_SUITE_RUN_H

#include <check.h>

#ifdef __cplusplus
extern "C" {
#endif

int ag_test_run_suite(Suite *s, enum print_output mode);

#ifdef __cplusplus
}
#endif

#endif
