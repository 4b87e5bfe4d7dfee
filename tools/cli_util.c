/* Helpers the `brick` driver's commands share; see cli_util.h. */
#include "cli_util.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_usage_error(const char *help, const char *fmt, const char *arg) {
  fputs("brick: error: ", stderr);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry '%s' for more information.\n", help);
  return EXIT_USAGE;
}

const char *cli_input_name(const char *path) { return strcmp(path, "-") ? path : "<stdin>"; }

bool cli_parse_define(brick_options *opts, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return false;
  char *end;
  errno = 0;
  long long v = strtoll(eq + 1, &end, 10);
  if (errno || *end || end == eq + 1 || v > ((long long)1 << 40) || v < -((long long)1 << 40))
    return false; /* the bound of integer literals in a file */
  char name[256];
  size_t n = (size_t)(eq - arg);
  if (n >= sizeof name)
    return false;
  memcpy(name, arg, n);
  name[n] = '\0';
  brick_options_define(opts, name, v);
  return true;
}

double cli_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

float cli_next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

void cli_call_kernel(void *fn, int np, float **a) {
  typedef void f32args(float *, float *, float *, float *, float *, float *, float *, float *,
                       float *, float *, float *, float *, float *, float *, float *, float *,
                       float *, float *, float *, float *, float *, float *, float *, float *,
                       float *, float *, float *, float *, float *, float *, float *, float *);
  float *p[CLI_MAX_PARAMS] = {0};
  for (int i = 0; i < np && i < CLI_MAX_PARAMS; i++)
    p[i] = a[i];
  /* the extra arguments are ignored (x86-64 and AArch64 pass them in registers or on the
   * caller's stack) */
  ((f32args *)fn)(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11],
                  p[12], p[13], p[14], p[15], p[16], p[17], p[18], p[19], p[20], p[21], p[22],
                  p[23], p[24], p[25], p[26], p[27], p[28], p[29], p[30], p[31]);
}

bool cli_callable(const brick_program *prog, int k) {
  int np = brick_kernel_param_count(prog, k);
  if (np <= CLI_MAX_PARAMS)
    return true;
  fprintf(stderr, "brick: error: kernel %s has %d tensors; brick run and brick tune call "
          "kernels of at most %d (brick compile and run --interp have no limit)\n",
          brick_kernel_name(prog, k), np, CLI_MAX_PARAMS);
  return false;
}

float **cli_alloc_args(const brick_program *prog, int k, uint64_t seed, float fill) {
  int np = brick_kernel_param_count(prog, k), ni = brick_kernel_input_count(prog, k);
  float **args = calloc((size_t)np + 1, sizeof(float *));
  for (int i = 0; args && i < np; i++) {
    int64_t n = brick_kernel_param_elems(prog, k, i);
    args[i] = (uint64_t)n <= SIZE_MAX / sizeof(float) ? malloc(sizeof(float) * (size_t)n) : NULL;
    if (!args[i]) {
      fprintf(stderr, "brick: error: cannot allocate %.3g GB for tensor %s of kernel %s\n",
              4e-9 * (double)n, brick_kernel_param_name(prog, k, i), brick_kernel_name(prog, k));
      cli_free_args(args, np);
      return NULL;
    }
    for (int64_t e = 0; e < n; e++)
      args[i][e] = i < ni ? cli_next_random(&seed) : fill;
  }
  return args;
}

void cli_free_args(float **args, int np) {
  for (int i = 0; args && i < np; i++)
    free(args[i]);
  free(args);
}

int cli_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Which commands take each option (the "Commands:" of their --help texts): an option given to
 * another command is a usage error that names the commands taking it. */
static const struct {
  char short_name;
  const char *long_name;
  const char *commands; /* space-separated */
} option_commands[] = {
    {'D', NULL, "run compile show tune"},  {'k', "kernel", "run compile show tune"},
    {'o', NULL, "compile"},                {'v', "verbose", "run compile tune"},
    {0, "interp", "run"},                  {0, "seed", "run tune"},
    {0, "full-check", "run"},              {0, "schedule", "run compile show"},
    {0, "target", "run compile show"},     {0, "threads", "run compile show tune"},
    {0, "db", "run compile show tune"},    {0, "caches", "run compile show"},
    {0, "emit", "compile"},                {0, "name", "compile"},
    {0, "ir", "show"},                     {0, "loops", "show"},
    {0, "llvm", "show"},                   {0, "with-schedule", "show"},
    {0, "trials", "tune"},                 {0, "seconds", "tune"},
    {0, "strategy", "tune"},               {0, "timeout", "tune"},
    {0, "list", "tune"},                   {0, "model-report", "tune"},
};

/* The commands taking option "-short_name" or "--long_name" (long_name without "--", up to
 * "n" bytes), or NULL for an option of none. */
static const char *commands_of(char short_name, const char *long_name, size_t n) {
  for (size_t i = 0; i < sizeof option_commands / sizeof option_commands[0]; i++) {
    const char *l = option_commands[i].long_name;
    if (long_name ? l && strlen(l) == n && strncmp(l, long_name, n) == 0
                  : option_commands[i].short_name == short_name)
      return option_commands[i].commands;
  }
  return NULL;
}

/* Does the space-separated list "commands" hold "command"? */
static bool has_command(const char *commands, const char *command) {
  size_t n = strlen(command);
  for (const char *p = commands; *p;) {
    size_t m = strcspn(p, " ");
    if (m == n && strncmp(p, command, n) == 0)
      return true;
    p += m + (p[m] == ' ');
  }
  return false;
}

/* "OPT is an option of 'brick A', 'brick B' and 'brick C'" as a usage error. */
static int foreign_option(const char *help, const char *opt, const char *commands) {
  char list[160];
  size_t len = 0;
  for (const char *p = commands; *p && len < sizeof list;) {
    size_t m = strcspn(p, " ");
    const char *rest = p + m + (p[m] == ' ');
    len += (size_t)snprintf(list + len, sizeof list - len, "%s'brick %.*s'",
                            p == commands ? "" : *rest ? ", " : " and ", (int)m, p);
    p = rest;
  }
  fprintf(stderr, "brick: error: %s is an option of %s\nTry '%s' for more information.\n", opt,
          list, help);
  return EXIT_USAGE;
}

/* The option at "argv[optind - 1]" that getopt did not know, for command "command" (whose
 * long options are "longs"). A long one is told by its "--" first: glibc also sets optopt,
 * to the option's value, when a long option that takes no argument is given one
 * ("--interp=1"; found by a review: it printed "unknown option '-'"). */
static int unknown_option(const char *help, const char *command, const struct option *longs,
                          char **argv) {
  const char *arg = argv[optind - 1], *commands = NULL;
  char opt[128];
  if (strncmp(arg, "--", 2) == 0) {
    size_t n = strcspn(arg, "=");
    snprintf(opt, sizeof opt, "%.*s", (int)n, arg);
    commands = commands_of(0, arg + 2, n - 2);
    bool ours = !commands || has_command(commands, command);
    for (const struct option *o = longs; ours && arg[n] == '=' && o->name; o++)
      if (o->has_arg == no_argument && strlen(o->name) == n - 2 && strncmp(o->name, arg + 2, n - 2) == 0)
        return cli_usage_error(help, "option '%s' takes no argument", opt);
  } else {
    snprintf(opt, sizeof opt, "-%c", optopt ? optopt : '?');
    commands = optopt ? commands_of((char)optopt, NULL, 0) : NULL;
  }
  if (commands && !has_command(commands, command))
    return foreign_option(help, opt, commands);
  return cli_usage_error(help, "unknown option '%s'", opt);
}

int cli_parse_options(int argc, char **argv, const char *command, const char *shortopts,
                      const struct option *longs, const char *usage,
                      int (*handle)(void *ctx, int ch, const char *arg), void *ctx) {
  char spec[64], help[64];
  snprintf(spec, sizeof spec, ":h%s", shortopts);
  snprintf(help, sizeof help, "brick %s --help", command);
  int ch, li;
  opterr = 0;
  optind = 1;
  while (li = -1, (ch = getopt_long(argc, argv, spec, longs, &li)) != -1) {
    if (ch == 'h') {
      fputs(usage, stdout);
      return 0;
    }
    if (ch == ':')
      return cli_usage_error(help, "option '%s' needs an argument", argv[optind - 1]);
    if (ch == '?')
      return unknown_option(help, command, longs, argv);
    const char *name = li >= 0 ? longs[li].name : NULL;
    const char *commands = commands_of((char)ch, name, name ? strlen(name) : 0);
    if (commands && !has_command(commands, command)) {
      char opt[128];
      if (name)
        snprintf(opt, sizeof opt, "--%s", name);
      else
        snprintf(opt, sizeof opt, "-%c", ch);
      return foreign_option(help, opt, commands);
    }
    int rc = handle(ctx, ch, optarg);
    if (rc >= 0)
      return rc;
  }
  return -1;
}
