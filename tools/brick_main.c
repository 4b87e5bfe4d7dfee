/*
 * The `brick` command-line driver. It parses arguments (GNU conventions, getopt_long) and
 * calls the public API; it holds no compiler logic of its own.
 *
 * Exit status: 0 ok, 1 errors in the input, 2 bad usage, 3 a result that fails its check.
 */
#include "brick/brick.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_CHECK = 3 };

typedef struct cli {
  const char *command;
  const char *file;
  const char *kernel;
  brick_options *opts;
  bool interp;
  uint64_t seed;
  bool show_ir, show_schedule, show_loops, show_llvm;
} cli;

static const char *const usage_main =
    "Usage: brick COMMAND [OPTIONS] FILE.bk\n"
    "\n"
    "brick compiles tensor contractions written in the .bk language into kernels whose\n"
    "innermost level is one batch-reduce GEMM call.\n"
    "\n"
    "Commands:\n"
    "  compile   compile FILE.bk into an object file and a C header   (not yet available)\n"
    "  run       run each kernel on seeded random inputs and check it\n"
    "  tune      search schedules and record the best                  (not yet available)\n"
    "  show      print the IR, the schedule, the loop nest or the LLVM IR\n"
    "\n"
    "Options:\n"
    "  -h, --help      show this help (or a command's, after the command)\n"
    "  -V, --version   print the version\n"
    "\n"
    "Exit status: 0 ok, 1 errors in the input, 2 bad usage, 3 a result that fails its check.\n";

static const char *const usage_run =
    "Usage: brick run [OPTIONS] FILE.bk\n"
    "\n"
    "Run each kernel of FILE.bk (or the one --kernel names) on seeded random inputs, print\n"
    "the time and a checksum of every output.\n"
    "\n"
    "  -D NAME=VALUE   override 'size NAME' (repeatable)\n"
    "  -k, --kernel K  run only kernel K\n"
    "      --interp    use the reference interpreter (currently the only engine)\n"
    "      --seed N    seed of the random inputs (default 1)\n"
    "  -h, --help      show this help\n";

static const char *const usage_show =
    "Usage: brick show [OPTIONS] FILE.bk\n"
    "\n"
    "  --ir            the checked IR: tensors, statements, inferred ranges, isl domains and\n"
    "                  accesses (the default)\n"
    "  -D NAME=VALUE   override 'size NAME' (repeatable)\n"
    "  -h, --help      show this help\n";

static int usage_error(const char *fmt, const char *arg) {
  fputs("brick: error: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\nTry 'brick --help' for more information.\n", stderr);
  return EXIT_USAGE;
}

/* -D NAME=VALUE */
static bool parse_define(brick_options *opts, const char *arg) {
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

enum { OPT_INTERP = 256, OPT_SEED, OPT_IR, OPT_SCHEDULE, OPT_LOOPS, OPT_LLVM };

/* Parse the options after the command; returns -1 to go on, else an exit status. */
static int parse_options(cli *c, int argc, char **argv) {
  static const struct option longs[] = {
      {"help", no_argument, 0, 'h'},        {"kernel", required_argument, 0, 'k'},
      {"interp", no_argument, 0, OPT_INTERP}, {"seed", required_argument, 0, OPT_SEED},
      {"ir", no_argument, 0, OPT_IR},       {"schedule", no_argument, 0, OPT_SCHEDULE},
      {"loops", no_argument, 0, OPT_LOOPS}, {"llvm", no_argument, 0, OPT_LLVM},
      {0, 0, 0, 0},
  };
  bool is_run = strcmp(c->command, "run") == 0;
  int ch;
  opterr = 0;
  optind = 1;
  while ((ch = getopt_long(argc, argv, ":hD:k:", longs, NULL)) != -1) {
    switch (ch) {
    case 'h': fputs(is_run ? usage_run : usage_show, stdout); return 0;
    case 'D':
      if (!parse_define(c->opts, optarg))
        return usage_error("-D expects NAME=INTEGER, got '%s'", optarg);
      break;
    case 'k': c->kernel = optarg; break;
    case OPT_INTERP: c->interp = true; break;
    case OPT_SEED: {
      char *end;
      c->seed = strtoull(optarg, &end, 10);
      if (*end || !*optarg)
        return usage_error("--seed expects an integer, got '%s'", optarg);
      break;
    }
    case OPT_IR: c->show_ir = true; break;
    case OPT_SCHEDULE: c->show_schedule = true; break;
    case OPT_LOOPS: c->show_loops = true; break;
    case OPT_LLVM: c->show_llvm = true; break;
    case ':': return usage_error("option '%s' needs an argument", argv[optind - 1]);
    default: return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc)
    return usage_error("%s: no input file", c->command);
  if (optind + 1 < argc)
    return usage_error("unexpected argument '%s'", argv[optind + 1]);
  c->file = argv[optind];
  return -1;
}

static int status_to_exit(int status) {
  switch (status) {
  case BRICK_OK: return 0;
  case BRICK_ERR_USAGE: return EXIT_USAGE;
  case BRICK_ERR_CHECK: return EXIT_CHECK;
  default: return EXIT_INPUT;
  }
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: seeded, reproducible inputs in [-1, 1). */
static float next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

static void print_output(const brick_program *prog, int k, int i, const float *data) {
  double sum = 0, asum = 0;
  int64_t n = brick_kernel_param_elems(prog, k, i);
  for (int64_t e = 0; e < n; e++) {
    sum += data[e];
    asum += data[e] < 0 ? -(double)data[e] : data[e];
  }
  printf("  output %s[", brick_kernel_param_name(prog, k, i));
  for (int d = 0; d < brick_kernel_param_rank(prog, k, i); d++)
    printf("%s%" PRId64, d ? ", " : "", brick_kernel_param_dim(prog, k, i, d));
  printf("]: sum %.9g, sum|x| %.9g\n", sum, asum);
}

/* Interpret kernel "k" on random inputs; print time and output checksums. */
static int run_kernel_interp(brick_ctx *ctx, const brick_program *prog, int k, uint64_t seed) {
  int np = brick_kernel_param_count(prog, k), ni = brick_kernel_input_count(prog, k);
  float **args = calloc((size_t)np, sizeof(float *));
  int status = BRICK_OK;
  for (int i = 0; i < np && status == BRICK_OK; i++) {
    int64_t n = brick_kernel_param_elems(prog, k, i);
    args[i] = malloc(sizeof(float) * (size_t)n);
    if (!args[i])
      status = BRICK_ERR_INTERNAL;
    for (int64_t e = 0; args[i] && e < n; e++)
      args[i][e] = i < ni ? next_random(&seed) : 0.0f;
  }
  double t0 = now_seconds();
  if (status == BRICK_OK)
    status = brick_kernel_interpret(ctx, prog, k, args);
  double dt = now_seconds() - t0;
  if (status == BRICK_OK) {
    double flops = brick_kernel_flops(prog, k);
    printf("kernel %s: %.0f flops, interpreter %.3f ms (%.3f GFLOP/s; reference, not compiled)\n",
           brick_kernel_name(prog, k), flops, dt * 1e3, flops / dt * 1e-9);
    for (int i = ni; i < np; i++)
      print_output(prog, k, i, args[i]);
  } else {
    fprintf(stderr, "brick: error: %s\n", brick_ctx_last_error(ctx));
  }
  for (int i = 0; i < np; i++)
    free(args[i]);
  free(args);
  return status;
}

/* The kernels to act on: all, or the one --kernel names. */
static int select_kernels(const cli *c, const brick_program *prog, int *first, int *last) {
  *first = 0;
  *last = brick_program_kernel_count(prog) - 1;
  if (!c->kernel)
    return 0;
  int k = brick_program_find_kernel(prog, c->kernel);
  if (k < 0) {
    fprintf(stderr, "brick: error: %s has no kernel named '%s'\n", c->file, c->kernel);
    return EXIT_USAGE;
  }
  *first = *last = k;
  return 0;
}

static int cmd_run(cli *c, brick_ctx *ctx, brick_program *prog) {
  if (!c->interp)
    return usage_error("%s", "the compiled path is not available yet; use 'brick run --interp'");
  int first, last, rc = select_kernels(c, prog, &first, &last);
  for (int k = first; rc == 0 && k <= last; k++)
    rc = status_to_exit(run_kernel_interp(ctx, prog, k, c->seed));
  return rc;
}

static int cmd_show(cli *c, brick_program *prog) {
  if (c->show_schedule || c->show_loops || c->show_llvm)
    return usage_error("%s", "only 'brick show --ir' is available yet");
  brick_program_print_ir(prog, stdout);
  return 0;
}

static int run_command(cli *c, int argc, char **argv) {
  int rc = parse_options(c, argc, argv);
  if (rc >= 0)
    return rc;
  brick_ctx *ctx = brick_ctx_new();
  brick_program *prog = NULL;
  int status = brick_program_parse_file(ctx, c->file, c->opts, &prog);
  if (status == BRICK_OK)
    rc = strcmp(c->command, "run") == 0 ? cmd_run(c, ctx, prog) : cmd_show(c, prog);
  else
    rc = status_to_exit(status);
  brick_program_free(prog);
  brick_ctx_free(ctx);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error("%s", "no command given");
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
    fputs(usage_main, stdout);
    return 0;
  }
  if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
    printf("brick %s\n", brick_version());
    return 0;
  }
  if (strcmp(cmd, "compile") == 0 || strcmp(cmd, "tune") == 0)
    return usage_error("'%s' is not available yet in this version", cmd);
  if (strcmp(cmd, "run") != 0 && strcmp(cmd, "show") != 0)
    return usage_error("unknown command '%s'", cmd);
  cli c = {.command = cmd, .opts = brick_options_new(), .seed = 1};
  int rc = run_command(&c, argc - 1, argv + 1);
  brick_options_free(c.opts);
  return rc;
}
