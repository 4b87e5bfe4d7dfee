/* Helpers the `brick` driver's commands share (cli_util.c): exit codes, usage errors, -D,
 * timing, reproducible inputs and calling a JIT-compiled kernel. */
#ifndef BRICK_TOOLS_CLI_UTIL_H
#define BRICK_TOOLS_CLI_UTIL_H

#include "brick/brick.h"

#include <stdbool.h>
#include <stdint.h>

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_CHECK = 3, EXIT_INTERRUPTED = 130 };

/* "brick: error: " + fmt(arg) on stderr, then "Try '<help>' for more information."; returns
 * EXIT_USAGE. */
int cli_usage_error(const char *help, const char *fmt, const char *arg);
struct option;
/* Parse the options of 'brick "command"' with getopt_long (GNU conventions; "shortopts"
 * without the leading ':' and 'h', which this adds): -h/--help prints "usage" on stdout and
 * returns 0; a missing argument, an unknown option or an option of other commands only is a
 * usage error ("brick: error: --emit is an option of 'brick compile'", then "Try 'brick
 * COMMAND --help' ..."); every other option goes to "handle", whose return value >= 0 ends the
 * parse as the exit code. Returns -1 when every option was taken (optind is then the first
 * operand). */
int cli_parse_options(int argc, char **argv, const char *command, const char *shortopts,
                      const struct option *longs, const char *usage,
                      int (*handle)(void *ctx, int ch, const char *arg), void *ctx);
/* The name of input "path" in messages: "<stdin>" for "-" (read from the standard input). */
const char *cli_input_name(const char *path);
/* -D NAME=VALUE into "opts"; false when "arg" is not NAME=INTEGER with |INTEGER| <= 2^40. */
bool cli_parse_define(brick_options *opts, const char *arg);
/* Monotonic seconds. */
double cli_now_seconds(void);
/* splitmix64: seeded, reproducible inputs in [-1, 1). */
float cli_next_random(uint64_t *state);
/* Most parameters (tensors) of a kernel that brick run and brick tune can call. */
#define CLI_MAX_PARAMS 32
/* Call the JIT-compiled kernel "fn" with "np" (up to CLI_MAX_PARAMS) arrays. */
void cli_call_kernel(void *fn, int np, float **a);
/* Can cli_call_kernel call kernel "k"? Else says so ("brick: error: ...") on stderr. */
bool cli_callable(const brick_program *prog, int k);
/* The tensors of kernel "k" of "prog", in signature order: inputs random from "seed"
 * (cli_next_random), outputs "fill". NULL, after "brick: error: ..." on stderr, when one
 * cannot be allocated. */
float **cli_alloc_args(const brick_program *prog, int k, uint64_t seed, float fill);
void cli_free_args(float **args, int np);
/* qsort comparison of doubles. */
int cli_cmp_double(const void *a, const void *b);

#endif
