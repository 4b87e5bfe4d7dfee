/*
 * Helpers for tests that run the real `brick` binary ($BRICK_BINARY, set by CTest): run it in a
 * directory with arguments, capture its standard output, standard error and exit status.
 */
#ifndef BRICK_TESTS_RUN_CMD_H
#define BRICK_TESTS_RUN_CMD_H

#include <stdbool.h>

typedef struct cmd_result {
  int status; /* exit status; 128 + signal number if it was killed */
  char *out;  /* standard output, NUL-terminated (malloc'ed) */
  char *err;  /* standard error */
} cmd_result;

/* Path of the brick binary ($BRICK_BINARY) and of the source tree ($BRICK_SOURCE_DIR). */
const char *brick_binary(void);
const char *brick_source_dir(void);

/* Run brick with the NULL-terminated "args" (argv[1...]) in directory "dir" (NULL: the current
 * one), with nothing on its standard input. Fails the test if it cannot be started. */
cmd_result run_brick(const char *dir, const char *const *args);
/* As run_brick, with the standard input read from the file "in" (opened before the change to
 * "dir": an absolute path, or one relative to the test's directory). */
cmd_result run_brick_input(const char *dir, const char *const *args, const char *in);
void cmd_result_release(cmd_result *r);

/* Is BRICK_TEST_REDUCED set (the ASan/UBSan pass, where every run of the binary also costs a
 * LeakSanitizer pass)? Tests then run the binary on a sample of their cases. */
bool test_reduced(void);

/* A fresh temporary directory (removed by temp_dir_remove). */
char *temp_dir_new(void);
void temp_dir_remove(char *dir);
/* Write "text" to "dir"/"name". */
void write_file(const char *dir, const char *name, const char *text);
/* The contents of "dir"/"name" (malloc'ed, NUL-terminated), or NULL if it cannot be read. */
char *read_file(const char *dir, const char *name);

#endif
