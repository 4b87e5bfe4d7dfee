/*
 * The `brick` command-line driver. It parses arguments (GNU conventions, getopt_long) and
 * calls the public API; it holds no compiler logic of its own.
 *
 * Exit status: 0 ok, 1 errors in the input, 2 bad usage, 3 a result that fails its check.
 */
#include "brick/brick.h"
#include "cli_util.h"
#include "tune_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct cli {
  const char *command;
  const char *file;
  const char *kernel;
  brick_options *opts;
  bool interp;
  uint64_t seed;
  bool show_ir, show_schedule, show_loops, show_llvm;
  const char *output;
  const char *emit;
  bool verbose;
  int threads;
  bool full_check;
  const char *db;
  const char *name; /* compile --name */
} cli;

static const char *const usage_main =
    "Usage: brick COMMAND [OPTIONS] FILE.bk\n"
    "\n"
    "brick compiles tensor contractions written in the .bk language into kernels whose\n"
    "innermost level is one batch-reduce GEMM call. FILE.bk '-' reads the standard input.\n"
    "\n"
    "Commands:\n"
    "  compile   compile FILE.bk into an object file and a C header\n"
    "  run       JIT each kernel, check it against the reference interpreter, time it\n"
    "  tune      search schedules on this machine and record the best in a database\n"
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
    "Compile each kernel of FILE.bk (or the one --kernel names) with the JIT, run it on seeded\n"
    "random inputs, check every output against the reference interpreter (exit 3 if one\n"
    "differs), then print the time, GFLOP/s and % of the FMA peak measured in this process.\n"
    "\n"
    "  -D NAME=VALUE     override 'size NAME' (repeatable; the last of a NAME wins)\n"
    "  -k, --kernel K    run only kernel K\n"
    "      --interp      only run the reference interpreter (time and output checksums)\n"
    "      --seed N      seed of the random inputs (default 1)\n"
    "      --schedule S  use schedule S (see scheduler/README.md) instead of the default\n"
    "      --threads N   0 (default): OMP_NUM_THREADS; 1: serial; N: N threads\n"
    "      --target T    native (default), x86-64-v3, x86-64-v4 or TRIPLE[:CPU]; the JIT runs\n"
    "                    the code here, so T must be a CPU this machine can run code for\n"
    "      --db FILE     use the best schedules 'brick tune' recorded in FILE\n"
    "  -v, --verbose     with --db: say which record (or the default) each kernel uses\n"
    "      --caches L1[,L2[,L3]]  cache sizes the default schedule blocks for, e.g.\n"
    "                    32K,1M,32M (default: this machine's, from sysfs or CPUID)\n"
    "      --full-check  interpret big kernels in full (default: above 5e7 flops, check 2000\n"
    "                    random elements per output, each computed exactly)\n"
    "  -h, --help        show this help\n";

static const char *const usage_compile =
    "Usage: brick compile [OPTIONS] FILE.bk\n"
    "\n"
    "Compile the kernels of FILE.bk into one object file and a C header.\n"
    "\n"
    "  -o OUT              output path (default: FILE's base name in the current directory);\n"
    "                      the header goes beside the object, with the extension .h\n"
    "      --emit LIST     what to write, from obj,asm,llvm,header (default: obj,header)\n"
    "  -D NAME=VALUE       override 'size NAME' (repeatable; the last of a NAME wins)\n"
    "  -k, --kernel K      compile only kernel K\n"
    "      --name NAME     name the (one) kernel NAME in the object and the header, e.g. to\n"
    "                      link the same kernel compiled at two sizes into one program\n"
    "      --target T      native (default), x86-64-v3, x86-64-v4 or TRIPLE[:CPU]\n"
    "      --schedule S    use schedule S instead of the default heuristic\n"
    "      --threads N     0 (default): team size from OMP_NUM_THREADS at run time;\n"
    "                      1: serial code with no OpenMP dependency; N: N threads\n"
    "      --db FILE       use the best schedule recorded by 'brick tune' in FILE for each\n"
    "                      kernel that --schedule does not name (same target and --threads)\n"
    "      --caches L1[,L2[,L3]]\n"
    "                      data cache sizes the default schedule blocks for, in bytes or\n"
    "                      with K, M or G, e.g. 32K,1M,32M; an empty size keeps the\n"
    "                      detected one (default: this machine's caches from sysfs or\n"
    "                      CPUID with --target native, else 32K,1M,32M)\n"
    "  -v, --verbose       say what was written and which tuning record was used\n"
    "  -h, --help          show this help\n";

static const char *const usage_show =
    "Usage: brick show [OPTIONS] FILE.bk\n"
    "\n"
    "  --ir            the checked IR: tensors, statements, inferred ranges, isl domains and\n"
    "                  accesses (the default)\n"
    "  --schedule      the complete schedule of each kernel (given or default)\n"
    "  --loops         the scheduled loop nest as C, with the BRGEMM marks\n"
    "  --llvm          the optimised LLVM IR\n"
    "  -D NAME=VALUE   override 'size NAME' (repeatable; the last of a NAME wins)\n"
    "  -k, --kernel K  show only kernel K\n"
    "      --with-schedule S, --threads N, --target T, --db FILE, --caches L1[,L2[,L3]]:\n"
    "                  as for 'brick compile'\n"
    "  -h, --help      show this help\n";

/* A usage error of 'brick "c->command"': the hint names that command's help. */
static int usage_error(const cli *c, const char *fmt, const char *arg) {
  char help[64];
  snprintf(help, sizeof help, "brick %s --help", c->command);
  return cli_usage_error(help, fmt, arg);
}

enum {
  OPT_INTERP = 256, OPT_SEED, OPT_IR, OPT_SHOW_SCHEDULE, OPT_LOOPS, OPT_LLVM, OPT_SCHEDULE,
  OPT_EMIT, OPT_TARGET, OPT_THREADS, OPT_FULL_CHECK, OPT_DB, OPT_CACHES, OPT_NAME
};

static int parse_int_arg(const cli *c, const char *opt, const char *arg, long *out, long lo,
                         long hi) {
  char *end;
  errno = 0;
  *out = strtol(arg, &end, 10);
  if (errno || *end || !*arg || *out < lo || *out > hi) {
    char fmt[128];
    snprintf(fmt, sizeof fmt, "%s expects an integer in %ld..%ld, got '%%s'", opt, lo, hi);
    return usage_error(c, fmt, arg);
  }
  return -1;
}

/* One size of --caches: bytes, or KiB / MiB / GiB with a K, M or G suffix; "" is 0 (detect). */
static bool parse_cache_size(const char *s, size_t n, int64_t *out) {
  *out = 0;
  if (n == 0)
    return true;
  int64_t v = 0;
  size_t i = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    v = v * 10 + (s[i] - '0');
    if (v > (1LL << 40))
      return false;
  }
  if (i == 0)
    return false;
  if (i + 1 == n) {
    const char *units = "KkMmGg", *u = strchr(units, s[i]);
    if (!u || !s[i])
      return false;
    v <<= 10 * (1 + (u - units) / 2);
  } else if (i != n) {
    return false;
  }
  *out = v;
  return v >= 1024 && v <= (1LL << 40);
}

/* --caches L1[,L2[,L3]] */
static bool parse_caches(brick_options *opts, const char *arg) {
  int64_t size[3] = {0, 0, 0};
  const char *p = arg;
  for (int level = 0; level < 3; level++) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if (!parse_cache_size(p, n, &size[level]))
      return false;
    if (!comma) {
      brick_options_set_caches(opts, size[0], size[1], size[2]);
      return *arg != '\0';
    }
    p = comma + 1;
  }
  return false; /* a fourth size */
}

/* One option "ch" with argument "arg"; returns -1 to go on, else an exit status. */
static int handle_option(void *ctx, int ch, const char *arg) {
  cli *c = ctx;
  long v;
  int rc;
  switch (ch) {
  case 'D':
    if (!cli_parse_define(c->opts, arg))
      return usage_error(c, "-D expects NAME=INTEGER (at most 2^40 in magnitude), got '%s'", arg);
    return -1;
  case 'k': c->kernel = arg; return -1;
  case 'o': c->output = arg; return -1;
  case 'v': c->verbose = true; return -1;
  case OPT_INTERP: c->interp = true; return -1;
  case OPT_SEED:
    if ((rc = parse_int_arg(c, "--seed", arg, &v, 0, 0x7fffffff)) >= 0)
      return rc;
    c->seed = (uint64_t)v;
    return -1;
  case OPT_IR: c->show_ir = true; return -1;
  case OPT_SHOW_SCHEDULE: c->show_schedule = true; return -1;
  case OPT_LOOPS: c->show_loops = true; return -1;
  case OPT_LLVM: c->show_llvm = true; return -1;
  case OPT_SCHEDULE: brick_options_set_schedule(c->opts, arg); return -1;
  case OPT_EMIT: c->emit = arg; return -1;
  case OPT_NAME:
    c->name = arg;
    return -1;
  case OPT_FULL_CHECK: c->full_check = true; return -1;
  case OPT_TARGET: brick_options_set_target(c->opts, arg); return -1;
  case OPT_CACHES:
    if (!parse_caches(c->opts, arg))
      return usage_error(c, "--caches expects L1[,L2[,L3]] sizes in bytes or with a K, M or G "
                         "suffix (at least 1K; an empty size keeps the detected one), got '%s'",
                         arg);
    return -1;
  case OPT_DB:
    brick_options_set_db(c->opts, arg);
    c->db = arg;
    return -1;
  case OPT_THREADS:
    if ((rc = parse_int_arg(c, "--threads", arg, &v, 0, 1024)) >= 0)
      return rc;
    brick_options_set_threads(c->opts, (int)v);
    c->threads = (int)v;
    return -1;
  default: return EXIT_USAGE;
  }
}

/* Parse the options after the command; returns -1 to go on, else an exit status. */
static int parse_options(cli *c, int argc, char **argv) {
  bool show = strcmp(c->command, "show") == 0;
  const struct option longs[] = {
      {"help", no_argument, 0, 'h'},
      {"kernel", required_argument, 0, 'k'},
      {"interp", no_argument, 0, OPT_INTERP},
      {"seed", required_argument, 0, OPT_SEED},
      {"ir", no_argument, 0, OPT_IR},
      {"schedule", show ? no_argument : required_argument, 0, show ? OPT_SHOW_SCHEDULE : OPT_SCHEDULE},
      {"with-schedule", required_argument, 0, OPT_SCHEDULE},
      {"loops", no_argument, 0, OPT_LOOPS},
      {"llvm", no_argument, 0, OPT_LLVM},
      {"emit", required_argument, 0, OPT_EMIT},
      {"target", required_argument, 0, OPT_TARGET},
      {"threads", required_argument, 0, OPT_THREADS},
      {"verbose", no_argument, 0, 'v'},
      {"full-check", no_argument, 0, OPT_FULL_CHECK},
      {"db", required_argument, 0, OPT_DB},
      {"caches", required_argument, 0, OPT_CACHES},
      {"name", required_argument, 0, OPT_NAME},
      {0, 0, 0, 0},
  };
  const char *help = strcmp(c->command, "run") == 0 ? usage_run : show ? usage_show : usage_compile;
  int rc = cli_parse_options(argc, argv, c->command, "D:k:o:v", longs, help, handle_option, c);
  if (rc >= 0)
    return rc;
  if (optind >= argc)
    return usage_error(c, "%s: no input file", c->command);
  for (int i = optind; optind + 1 < argc && show && i < argc; i++)
    if (strchr(argv[i], '{'))
      return usage_error(c, "unexpected argument '%s' ('brick show --schedule' prints the "
                         "schedule; to show a given one, use --with-schedule S)", argv[i]);
  if (optind + 1 < argc)
    return usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
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
  float **args = cli_alloc_args(prog, k, seed, 0.0f);
  if (!args)
    return BRICK_ERR_IO;
  double t0 = cli_now_seconds();
  int status = brick_kernel_interpret(ctx, prog, k, args);
  double dt = cli_now_seconds() - t0;
  if (status == BRICK_OK) {
    double flops = brick_kernel_flops(prog, k);
    printf("kernel %s: %.0f flops, interpreter %.3f ms (%.3f GFLOP/s; reference, not compiled)\n",
           brick_kernel_name(prog, k), flops, dt * 1e3, flops / dt * 1e-9);
    for (int i = ni; i < np; i++)
      print_output(prog, k, i, args[i]);
  } else {
    fprintf(stderr, "brick: error: %s\n", brick_ctx_last_error(ctx));
  }
  cli_free_args(args, np);
  return status;
}

/* The kernels to act on: all, or the one --kernel names. */
static int select_kernels(const cli *c, const brick_program *prog, int *first, int *last) {
  *first = 0;
  *last = brick_program_kernel_count(prog) - 1;
  if (*last < 0) {
    fprintf(stderr, "brick: error: %s has no kernel (a file is sizes and 'kernel NAME(...) -> "
            "(...) { ... }' definitions)\n", cli_input_name(c->file));
    return EXIT_INPUT;
  }
  if (!c->kernel)
    return 0;
  int k = brick_program_find_kernel(prog, c->kernel);
  if (k < 0) {
    fprintf(stderr, "brick: error: %s has no kernel named '%s'\n", cli_input_name(c->file),
            c->kernel);
    return EXIT_USAGE;
  }
  *first = *last = k;
  return 0;
}

/* Print the context's last error unless it was a diagnostic, which the library printed. */
static void report_failure(const brick_ctx *ctx) {
  const char *msg = brick_ctx_last_error(ctx);
  if (*msg && !strstr(msg, "error: "))
    fprintf(stderr, "brick: error: %s\n", msg);
}

static int team_size(int threads) {
  if (threads > 0)
    return threads;
  const char *e = getenv("OMP_NUM_THREADS");
  long n = e ? strtol(e, NULL, 10) : 0;
  return n > 0 ? (int)n : (int)sysconf(_SC_NPROCESSORS_ONLN);
}

/* JIT kernel "k", check it against the interpreter, time it. */
static int run_kernel_compiled(cli *c, brick_ctx *ctx, const brick_program *prog, int k,
                               double peak) {
  int np = brick_kernel_param_count(prog, k);
  if (!cli_callable(prog, k))
    return EXIT_INPUT;
  brick_module *mod = NULL;
  double t0 = cli_now_seconds();
  int status = brick_compile(ctx, prog, k, c->opts, &mod);
  void *fn = status == BRICK_OK ? brick_module_lookup(ctx, mod, brick_kernel_name(prog, k)) : NULL;
  double tcompile = cli_now_seconds() - t0;
  if (!fn) {
    if (status == BRICK_OK) /* the lookup failed: a target this machine cannot run is a usage error */
      status = brick_ctx_last_status(ctx) != BRICK_OK ? brick_ctx_last_status(ctx) : BRICK_ERR_INTERNAL;
    report_failure(ctx);
    brick_module_free(mod);
    return status_to_exit(status);
  }
  float **args = cli_alloc_args(prog, k, c->seed, NAN);
  if (!args) {
    brick_module_free(mod);
    return EXIT_INPUT;
  }
  cli_call_kernel(fn, np, args);
  double ti = cli_now_seconds(), worst = 0;
  int sampled = 0, rc = 0;
  status = brick_kernel_check(ctx, prog, k, args, c->full_check ? INFINITY : 5e7, 2000, c->seed,
                              &worst, &sampled);
  ti = cli_now_seconds() - ti;
  if (status != BRICK_OK) {
    report_failure(ctx);
    rc = status_to_exit(status);
  } else if (!(worst <= 1e-4)) {
    fprintf(stderr, "brick: error: kernel %s differs from the reference (max|x-ref|/max|ref| = "
            "%.3g > 1e-4)\n", brick_kernel_name(prog, k), worst);
    rc = EXIT_CHECK;
  }
  double flops = brick_kernel_flops(prog, k), times[31];
  int reps = 0;
  double budget = cli_now_seconds() + 1.0;
  do {
    double s = cli_now_seconds();
    cli_call_kernel(fn, np, args);
    times[reps++] = cli_now_seconds() - s;
  } while (reps < 31 && (reps < 5 || cli_now_seconds() < budget));
  qsort(times, (size_t)reps, sizeof(double), cli_cmp_double);
  double med = times[reps / 2], gf = flops / med * 1e-9;
  int team = team_size(c->threads);
  printf("kernel %s: check %s (max rel. error %.2g vs. the interpreter%s, %.2f s)\n",
         brick_kernel_name(prog, k), rc ? "FAILED" : "ok", worst,
         sampled ? " on 2000 sampled elements per output" : "", ti);
  if (flops > 0) {
    printf("  %.3f ms, %.2f GFLOP/s, %.1f%% of peak (%.1f GFLOP/s x %d thread%s); compile %.0f ms\n",
           med * 1e3, gf, peak > 0 ? 100.0 * gf / (peak * team) : 0.0, peak, team,
           team == 1 ? "" : "s", tcompile * 1e3);
  } else { /* a copy (a layout change): no FLOPs, so the bytes of its parameters per second */
    double bytes = 0;
    for (int i = 0; i < np; i++)
      bytes += 4.0 * (double)brick_kernel_param_elems(prog, k, i);
    printf("  %.3f ms, %.2f GB/s of its parameters read or written once (%d thread%s); compile "
           "%.0f ms\n", med * 1e3, bytes / med * 1e-9, team, team == 1 ? "" : "s",
           tcompile * 1e3);
  }
  cli_free_args(args, np);
  brick_module_free(mod);
  return rc;
}

static int say_records(const cli *c, brick_ctx *ctx, const brick_program *prog, int first,
                       int last);

/* Does the schedule given fit the kernels chosen? Else says why; returns an exit status. */
static int check_schedule(const cli *c, brick_ctx *ctx, const brick_program *prog, int first) {
  if (brick_options_check_schedule(ctx, prog, c->kernel ? first : -1, c->opts) == BRICK_OK)
    return 0;
  report_failure(ctx);
  return EXIT_USAGE;
}

static int cmd_run(cli *c, brick_ctx *ctx, brick_program *prog) {
  int first, last, rc = select_kernels(c, prog, &first, &last);
  if (rc == 0 && !c->interp)
    rc = check_schedule(c, ctx, prog, first);
  if (rc == 0 && c->verbose && c->db && !c->interp) {
    int st = say_records(c, ctx, prog, first, last);
    if (st != BRICK_OK) {
      report_failure(ctx);
      return status_to_exit(st);
    }
  }
  double peak = c->interp ? 0 : brick_measure_peak_gflops();
  for (int k = first; rc == 0 && k <= last; k++)
    rc = c->interp ? status_to_exit(run_kernel_interp(ctx, prog, k, c->seed))
                   : run_kernel_compiled(c, ctx, prog, k, peak);
  return rc;
}

/* Replace the extension of "path" (if any) with "ext". */
static char *with_ext(const char *path, const char *ext) {
  const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
  size_t n = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
  char *r = malloc(n + strlen(ext) + 1);
  memcpy(r, path, n);
  strcpy(r + n, ext);
  return r;
}

/* With -v and --db: say which tuning record each kernel is compiled with. */
static int say_records(const cli *c, brick_ctx *ctx, const brick_program *prog, int first,
                       int last) {
  for (int k = first; k <= last; k++) {
    char *schedule = NULL, *record = NULL;
    int st = brick_db_lookup(ctx, prog, k, c->opts, c->db, &schedule, &record);
    if (st != BRICK_OK)
      return st;
    if (schedule)
      fprintf(stderr, "brick: kernel %s: tuned schedule from %s\n  %s\n",
              brick_kernel_name(prog, k), record, schedule);
    else
      fprintf(stderr, "brick: kernel %s: no successful record in %s for this kernel text, its "
              "sizes, this target and --threads; default schedule\n", brick_kernel_name(prog, k),
              c->db);
    free(schedule);
    free(record);
  }
  return BRICK_OK;
}

/* Do two of the "n" output paths (NULL: not written) name the same file, or one the input
 * "in"? (Writing would destroy the source or an output just written.) Says so on stderr. */
static bool check_outputs(const cli *c, const char *in, char *const *paths, int n) {
  struct stat si, sp, sq;
  bool have_in = strcmp(in, "-") != 0 && stat(in, &si) == 0;
  for (int i = 0; i < n; i++) {
    if (!paths[i])
      continue;
    bool exists = stat(paths[i], &sp) == 0;
    if (strcmp(paths[i], in) == 0 || (exists && have_in && sp.st_dev == si.st_dev && sp.st_ino == si.st_ino)) {
      usage_error(c, "output '%s' is the input file; choose another -o", paths[i]);
      return false;
    }
    for (int j = 0; j < i; j++)
      if (paths[j] && (strcmp(paths[i], paths[j]) == 0 ||
                       (exists && stat(paths[j], &sq) == 0 && sp.st_dev == sq.st_dev && sp.st_ino == sq.st_ino))) {
        usage_error(c, "two outputs would both be written to '%s'; choose another -o", paths[i]);
        return false;
      }
  }
  return true;
}

static int cmd_compile(cli *c, brick_ctx *ctx, brick_program *prog) {
  int first, last, rc = select_kernels(c, prog, &first, &last);
  if (rc)
    return rc;
  if (c->name && first != last)
    return usage_error(c, "--name names one kernel; %s has several (add --kernel K)",
                       cli_input_name(c->file));
  if (c->name && brick_program_rename_kernel(ctx, prog, first, c->name) != BRICK_OK)
    return usage_error(c, "--name: %s", brick_ctx_last_error(ctx));
  const char *emit = c->emit ? c->emit : "obj,header";
  bool want[4] = {strstr(emit, "obj") != NULL, strstr(emit, "asm") != NULL,
                  strstr(emit, "llvm") != NULL, strstr(emit, "header") != NULL};
  for (const char *p = emit; *p;) {
    size_t n = strcspn(p, ",");
    if (!((n == 3 && (!strncmp(p, "obj", 3) || !strncmp(p, "asm", 3))) ||
          (n == 4 && !strncmp(p, "llvm", 4)) || (n == 6 && !strncmp(p, "header", 6))))
      return usage_error(c, "--emit takes a list of obj, asm, llvm, header; got '%s'", emit);
    p += n + (p[n] == ',');
  }
  if (!want[0] && !want[1] && !want[2] && !want[3])
    return usage_error(c, "--emit takes a list of obj, asm, llvm, header; got '%s'", emit);
  if (!c->output && strcmp(c->file, "-") == 0)
    return usage_error(c, "%s", "the source comes from the standard input ('-'): name the "
                       "output with -o");
  char *base;
  if (c->output) {
    base = strdup(c->output);
  } else {
    const char *slash = strrchr(c->file, '/');
    base = with_ext(slash ? slash + 1 : c->file, "");
  }
  static const char *const exts[4] = {".o", ".s", ".ll", ".h"};
  int nwant = want[0] + want[1] + want[2];
  char *paths[4] = {NULL, NULL, NULL, NULL};
  for (int kind = 0; kind < 4; kind++)
    if (want[kind])
      paths[kind] = c->output && nwant == 1 && kind < 3 ? strdup(c->output) : with_ext(base, exts[kind]);
  free(base);
  if (!check_outputs(c, c->file, paths, 4)) {
    for (int kind = 0; kind < 4; kind++)
      free(paths[kind]);
    return EXIT_USAGE;
  }
  brick_module *mod = NULL;
  int status = c->verbose && c->db ? say_records(c, ctx, prog, first, last) : BRICK_OK;
  if (status == BRICK_OK)
    status = brick_compile(ctx, prog, c->kernel ? first : -1, c->opts, &mod);
  for (int kind = 0; kind < 4 && status == BRICK_OK; kind++) {
    if (!paths[kind])
      continue;
    status = kind < 3 ? brick_module_emit(ctx, mod, (brick_emit_kind)kind, paths[kind])
                      : brick_module_write_header(ctx, mod, paths[kind]);
    if (status == BRICK_OK && c->verbose)
      fprintf(stderr, "brick: wrote %s\n", paths[kind]);
  }
  for (int kind = 0; kind < 4; kind++)
    free(paths[kind]);
  if (status != BRICK_OK)
    report_failure(ctx);
  brick_module_free(mod);
  return status_to_exit(status);
}

static int cmd_show(cli *c, brick_ctx *ctx, brick_program *prog) {
  int first, last, rc = select_kernels(c, prog, &first, &last);
  if (rc)
    return rc;
  bool more = c->show_schedule || c->show_loops || c->show_llvm;
  if (more && (rc = check_schedule(c, ctx, prog, first)) != 0)
    return rc;
  if (c->show_ir || !more) /* the IR first, then what else was asked for */
    brick_program_print_ir(prog, stdout);
  if (!more)
    return 0;
  int status = BRICK_OK;
  for (int k = first; k <= last && status == BRICK_OK; k++) {
    char *text = NULL;
    if (c->show_schedule) {
      status = brick_kernel_schedule(ctx, prog, k, c->opts, &text);
      if (status == BRICK_OK)
        printf("%s: %s\n", brick_kernel_name(prog, k), text);
      free(text);
      text = NULL;
    }
    if (c->show_loops && status == BRICK_OK) {
      status = brick_kernel_loops(ctx, prog, k, c->opts, &text);
      if (status == BRICK_OK)
        printf("// kernel %s\n%s", brick_kernel_name(prog, k), text);
      free(text);
    }
  }
  if (c->show_llvm && status == BRICK_OK) {
    brick_module *mod = NULL;
    status = brick_compile(ctx, prog, c->kernel ? first : -1, c->opts, &mod);
    fflush(stdout);
    if (status == BRICK_OK)
      status = brick_module_emit(ctx, mod, BRICK_EMIT_LLVM, "/dev/stdout");
    brick_module_free(mod);
  }
  if (status != BRICK_OK)
    report_failure(ctx);
  return status_to_exit(status);
}

static int run_command(cli *c, int argc, char **argv) {
  int rc = parse_options(c, argc, argv);
  if (rc >= 0)
    return rc;
  brick_ctx *ctx = brick_ctx_new();
  brick_program *prog = NULL;
  int status = brick_program_parse_file(ctx, c->file, c->opts, &prog);
  if (status == BRICK_OK)
    rc = strcmp(c->command, "run") == 0     ? cmd_run(c, ctx, prog)
         : strcmp(c->command, "compile") == 0 ? cmd_compile(c, ctx, prog)
                                              : cmd_show(c, ctx, prog);
  else
    rc = status_to_exit(status);
  brick_program_free(prog);
  brick_ctx_free(ctx);
  return rc;
}

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer (BRICK_SANITIZE builds), a malloc too big to satisfy returns NULL as
 * glibc's does, so 'cannot allocate' is reported cleanly there too instead of aborting. */
const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *__asan_default_options(void) {
  return "allocator_may_return_null=1";
}
#endif

int main(int argc, char **argv) {
  if (argc < 2)
    return cli_usage_error("brick --help", "%s", "no command given");
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
    fputs(usage_main, stdout);
    return 0;
  }
  if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
    printf("brick %s\n", brick_version());
    return 0;
  }
  if (strcmp(cmd, "tune") == 0)
    return brick_cmd_tune(argc - 1, argv + 1);
  if (strcmp(cmd, "__measure") == 0)
    return brick_cmd_measure(argc - 1, argv + 1);
  if (cmd[0] == '-')
    return cli_usage_error("brick --help", "unknown option '%s'", cmd);
  if (strcmp(cmd, "run") != 0 && strcmp(cmd, "show") != 0 && strcmp(cmd, "compile") != 0)
    return cli_usage_error("brick --help", "unknown command '%s'", cmd);
  cli c = {.command = cmd, .opts = brick_options_new(), .seed = 1};
  int rc = run_command(&c, argc - 1, argv + 1);
  brick_options_free(c.opts);
  return rc;
}
