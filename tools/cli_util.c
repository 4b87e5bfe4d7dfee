/* Helpers the `brick` driver's commands share; see cli_util.h. */
#include "cli_util.h"

#include <errno.h>
#include <getopt.h>
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

bool cli_parse_define(brick_options *opts, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return false;
  char *end;
  errno = 0;
  long long v = strtoll(eq + 1, &end, 10);
  if (errno || *end || end == eq + 1)
    return false;
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
  typedef void f16(float *, float *, float *, float *, float *, float *, float *, float *,
                   float *, float *, float *, float *, float *, float *, float *, float *);
  float *p[16] = {0};
  for (int i = 0; i < np && i < 16; i++)
    p[i] = a[i];
  ((f16 *)fn)(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12],
              p[13], p[14], p[15]);
}

int cli_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int cli_parse_options(int argc, char **argv, const char *shortopts, const struct option *longs,
                      const char *usage, const char *help,
                      int (*handle)(void *ctx, int ch, const char *arg), void *ctx) {
  char spec[64];
  snprintf(spec, sizeof spec, ":h%s", shortopts);
  int ch;
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, spec, longs, NULL)) != -1) {
    if (ch == 'h') {
      fputs(usage, stdout);
      return 0;
    }
    if (ch == ':')
      return cli_usage_error(help, "option '%s' needs an argument", argv[optind - 1]);
    if (ch == '?')
      return cli_usage_error(help, "unknown option '%s'", argv[optind - 1]);
    int rc = handle(ctx, ch, optarg);
    if (rc >= 0)
      return rc;
  }
  return -1;
}
