/*
 * suite_run.c — runs a Check suite (see the header).
 */
#include "suite_run.h"

int ag_test_run_suite(Suite *s, enum print_output mode) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, mode);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
