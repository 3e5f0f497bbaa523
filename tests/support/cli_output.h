/*
 * cli_output — run the attrgraph command line (AG_CLI_PATH, defined when the tool is built)
 * from a suite and collect what it prints.
 */
#ifndef AG_TEST_CLI_OUTPUT_H
#define AG_TEST_CLI_OUTPUT_H

#ifdef __cplusplus
extern "C" {
#endif

#ifdef AG_CLI_PATH
/* Run `attrgraph <args>` through the shell (args are pasted as they are: quote paths; stderr
 * is discarded). Returns its stdout as a malloc'ed string (free()); its exit status in *code
 * (128 when it did not exit normally). */
char *ag_test_cli_output(const char *args, int *code);
/* The same, but returns what it printed on stderr (stdout is discarded): for checking error
 * messages. */
char *ag_test_cli_stderr(const char *args, int *code);
#endif

#ifdef __cplusplus
}
#endif

#endif
