/*
 * scratch_dir — one temporary directory per test program for the files its tests write
 * ($TMPDIR/ag_<tag>_XXXXXX, /tmp when TMPDIR is unset). Create it in main() before the
 * runner forks the tests; remove it (it must then be empty) after they ran.
 */
#ifndef AG_TEST_SCRATCH_DIR_H
#define AG_TEST_SCRATCH_DIR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Create the directory; 0, or -1 when it cannot be made. */
int ag_test_scratch_create(const char *tag);
/* "<scratch>/<name>" in one of 4 rotating buffers (no free needed). */
const char *ag_test_scratch_path(const char *name);
/* rmdir the directory. */
void ag_test_scratch_remove(void);

#ifdef __cplusplus
}
#endif

#endif
