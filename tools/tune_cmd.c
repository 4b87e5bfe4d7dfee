/*
 * `brick tune` and the hidden `brick __measure` that the tuner spawns as its worker. Both only
 * call the public API: brick_tune searches and records; __measure compiles one schedule, checks
 * it against the reference interpreter, times it and prints one machine-readable line.
 */
#include "cli_util.h"
#include "tune_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const usage_tune =
    "Usage: brick tune [OPTIONS] FILE.bk\n"
    "       brick tune --list [--db FILE] [-v]\n"
    "\n"
    "Search schedules for each kernel of FILE.bk (or the one --kernel names) on this machine.\n"
    "Candidates are ranked by a cost model; the promising ones are compiled, checked against\n"
    "the reference interpreter and timed in a worker process, and every measurement is\n"
    "recorded in the tuning database. At the end the default and the fastest few are\n"
    "measured twice more, interleaved, which confirms them; 'brick compile --db FILE' then\n"
    "uses the confirmed schedule of greatest median GFLOP/s, which the summary's last line\n"
    "names.\n"
    "\n"
    "  -D NAME=VALUE       override 'size NAME' (repeatable; the last of a NAME wins)\n"
    "  -k, --kernel K      tune only kernel K\n"
    "      --trials N      measure at most N candidates per kernel (default 50 unless\n"
    "                      --seconds is given)\n"
    "      --seconds S     stop after S seconds per kernel\n"
    "      --db FILE       the tuning database (default $XDG_CACHE_HOME/brick/tune.db,\n"
    "                      else ~/.cache/brick/tune.db)\n"
    "      --strategy S    auto (default: exhaustive when the pruned space is small, else\n"
    "                      evolutionary), exhaustive, random or evolutionary\n"
    "      --threads N     0 (default): OMP_NUM_THREADS; 1: serial; N: N threads (part of\n"
    "                      the key: compile with the same --threads to use the result)\n"
    "      --timeout S     kill a candidate's worker after S seconds (default: from the\n"
    "                      default schedule's time, 10 to 120 s)\n"
    "      --seed N        seed of the search (default 1)\n"
    "      --model-report  measure random candidates in random order and report how the cost\n"
    "                      model's ranking correlates with the measured times (Spearman;\n"
    "                      default 100 trials)\n"
    "      --list          show what the database holds\n"
    "  -v, --verbose       with --list: features and kernel texts too\n"
    "  -h, --help          show this help\n"
    "\n"
    "Unlike 'brick compile', tune takes no --target, --caches or --schedule: it searches the\n"
    "schedule itself, for this machine's CPU and caches (tune on the machine the code is for).\n"
    "\n"
    "A progress bar is drawn on a terminal, log lines otherwise. Ctrl-C stops the search;\n"
    "finished measurements stay recorded (exit status 130).\n";

typedef struct tune_cli {
  const char *file, *kernel, *db, *strategy;
  brick_options *opts;
  brick_tune_options *topts;
  int trials;
  double seconds;
  bool list, verbose, model_report, tty;
  int threads;
  double last_draw;
} tune_cli;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  interrupted = 1;
  signal(sig, SIG_DFL); /* a second Ctrl-C ends the process at once */
}

static int usage_error(const char *fmt, const char *arg) {
  return cli_usage_error("brick tune --help", fmt, arg);
}

static bool parse_number(const char *arg, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  *out = strtod(arg, &end);
  return !errno && *arg && !*end && *out >= lo && *out <= hi;
}

/* ---- progress ---------------------------------------------------------------------------- */

static void format_time(char *buf, size_t n, double s) {
  if (s < 0)
    snprintf(buf, n, "--:--");
  else
    snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void draw_bar(tune_cli *c, const brick_tune_event *ev) {
  char eta[16];
  format_time(eta, sizeof eta, ev->eta);
  double frac = ev->total > 0 ? (double)ev->done / ev->total : 0;
  if (c->seconds > 0 && ev->elapsed / c->seconds > frac)
    frac = ev->elapsed / c->seconds;
  frac = frac > 1 ? 1 : frac;
  char bar[25];
  int fill = (int)(frac * 24 + 0.5);
  for (int i = 0; i < 24; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[24] = '\0';
  fprintf(stderr, "\r\033[K[%s] %d%s%.0d trials  fastest %.1f GFLOP/s (default %.1f)  ETA %s", bar,
          ev->done, ev->total > 0 ? "/" : "", ev->total, ev->best_gflops, ev->default_gflops, eta);
  fflush(stderr);
}

static void log_event(const brick_tune_event *ev) {
  if (strcmp(ev->status, "ok") == 0)
    fprintf(stderr, "brick: tune: [%d] %.2f GFLOP/s (%.3f ms)  fastest %.2f  %s\n", ev->done,
            ev->gflops, ev->ms, ev->best_gflops, ev->schedule);
  else
    fprintf(stderr, "brick: tune: [%d] %s: %s  %s\n", ev->done, ev->status,
            ev->message && *ev->message ? ev->message : "-", ev->schedule);
}

static void on_progress(void *user, const brick_tune_event *ev) {
  tune_cli *c = user;
  if (ev->note) {
    fprintf(stderr, "%sbrick: tune: %s\n", c->tty ? "\r\033[K" : "", ev->note);
    return;
  }
  if (c->tty)
    draw_bar(c, ev);
  else
    log_event(ev);
}

/* ---- brick tune ------------------------------------------------------------------------------ */

/* Which record compile --db uses for the kernel of "r", and how it relates to the run's choice
 * (the final round's winner, else its fastest single measurement). */
static void print_db_choice(const brick_tune_result *r) {
  if (!r->db_best_schedule) {
    puts("  compile --db: no successful record for this key; it uses the default schedule");
    return;
  }
  char standing[64];
  snprintf(standing, sizeof standing, "%s%d measurement%s, %s",
           r->db_best_measurements == 1 ? "" : "median of ", r->db_best_measurements,
           r->db_best_measurements == 1 ? "" : "s",
           r->db_best_confirmed ? "confirmed" : "not confirmed");
  const char *run = r->confirmed ? "winner" : "fastest";
  if (r->best_schedule && strcmp(r->best_schedule, r->db_best_schedule) == 0)
    printf("  compile --db uses the %s: record %lld, %.2f GFLOP/s (%s)\n", run,
           (long long)r->db_best_record, r->db_best_gflops, standing);
  else
    printf("  compile --db uses record %lld, not this run's %s: the database's best over all "
           "runs, %.2f GFLOP/s (%s):\n           %s\n", (long long)r->db_best_record, run,
           r->db_best_gflops, standing, r->db_best_schedule);
}

static void print_result(const tune_cli *c, const char *kernel, const brick_tune_result *r) {
  if (c->tty)
    fputs("\r\033[K", stderr);
  printf("kernel %s: %d measured (%d failed) in %.1f s%s; database %s\n", kernel, r->measured,
         r->failed, r->seconds, r->interrupted ? ", interrupted" : "", r->db);
  if (r->default_gflops > 0 || r->fastest_gflops > 0)
    printf("  search, one measurement each: default %.2f GFLOP/s, fastest %.2f GFLOP/s\n",
           r->default_gflops, r->fastest_gflops);
  if (r->confirmed && r->confirm_default > 0)
    printf("  final round, median of 3 interleaved measurements each: default %.2f, winner %.2f "
           "GFLOP/s (x%.2f)\n", r->confirm_default, r->confirm_best,
           r->confirm_best / r->confirm_default);
  else if (r->confirmed)
    printf("  final round, median of 3 interleaved measurements each: winner %.2f GFLOP/s (the "
           "default failed)\n", r->confirm_best);
  if (r->default_schedule)
    printf("  default: %s\n", r->default_schedule);
  if (r->best_schedule)
    printf("  %s %s\n", r->confirmed ? "winner: " : "fastest:", r->best_schedule);
  print_db_choice(r);
  if (c->model_report)
    printf("  cost model vs measured time: Spearman %.3f over %d candidates; %.3f over the %d "
           "within 4x of the fastest\n", r->spearman, r->spearman_n, r->spearman_near,
           r->spearman_near_n);
}

static int tune_kernels(tune_cli *c, brick_ctx *ctx, brick_program *prog) {
  int first = 0, last = brick_program_kernel_count(prog) - 1;
  if (last < 0) {
    fprintf(stderr, "brick: error: %s has no kernel\n", cli_input_name(c->file));
    return EXIT_INPUT;
  }
  if (c->kernel) {
    first = last = brick_program_find_kernel(prog, c->kernel);
    if (first < 0) {
      fprintf(stderr, "brick: error: %s has no kernel named '%s'\n", cli_input_name(c->file),
              c->kernel);
      return EXIT_USAGE;
    }
  }
  int rc = 0;
  for (int k = first; k <= last && rc == 0 && !interrupted; k++) {
    if (!cli_callable(prog, k))
      return EXIT_INPUT;
    brick_tune_result r;
    int st = brick_tune(ctx, prog, k, c->opts, c->topts, &r);
    if (st != BRICK_OK) {
      if (c->tty)
        fputs("\r\033[K", stderr);
      fprintf(stderr, "brick: error: %s\n", brick_ctx_last_error(ctx));
      return st == BRICK_ERR_USAGE ? EXIT_USAGE : EXIT_INPUT;
    }
    print_result(c, brick_kernel_name(prog, k), &r);
    rc = r.interrupted ? EXIT_INTERRUPTED : 0;
    if (rc == 0 && r.measured > 0 && r.failed == r.measured) {
      fprintf(stderr, "brick: error: kernel %s: every candidate failed, the default schedule "
              "among them (see above); nothing usable was recorded\n", brick_kernel_name(prog, k));
      rc = EXIT_INPUT;
    }
    brick_tune_result_release(&r);
  }
  return interrupted ? EXIT_INTERRUPTED : rc;
}

enum { T_TRIALS = 256, T_SECONDS, T_DB, T_STRATEGY, T_THREADS, T_TIMEOUT, T_SEED, T_LIST,
       T_MODEL_REPORT };

static int tune_option(void *ctx, int ch, const char *arg) {
  tune_cli *c = ctx;
  double v;
  switch (ch) {
  case 'D':
    if (cli_parse_define(c->opts, arg))
      return -1;
    return usage_error("-D expects NAME=INTEGER (at most 2^40 in magnitude), got '%s'", arg);
  case 'k': c->kernel = arg; return -1;
  case 'v': c->verbose = true; return -1;
  case T_TRIALS:
    if (!parse_number(arg, 1, 1e7, &v) || v != floor(v))
      return usage_error("--trials expects a positive integer, got '%s'", arg);
    c->trials = (int)v;
    return -1;
  case T_SECONDS:
    if (!parse_number(arg, 0.001, 1e7, &v))
      return usage_error("--seconds expects a positive number, got '%s'", arg);
    c->seconds = v;
    return -1;
  case T_TIMEOUT:
    if (!parse_number(arg, 0.001, 1e7, &v))
      return usage_error("--timeout expects a positive number, got '%s'", arg);
    brick_tune_options_set_timeout(c->topts, v);
    return -1;
  case T_SEED:
    if (!parse_number(arg, 0, 4e18, &v) || v != floor(v))
      return usage_error("--seed expects a non-negative integer, got '%s'", arg);
    brick_tune_options_set_seed(c->topts, (uint64_t)v);
    return -1;
  case T_THREADS:
    if (!parse_number(arg, 0, 1024, &v) || v != floor(v))
      return usage_error("--threads expects an integer in 0..1024, got '%s'", arg);
    brick_options_set_threads(c->opts, (int)v);
    return -1;
  case T_DB: c->db = arg; return -1;
  case T_STRATEGY:
    if (strcmp(arg, "model-report") == 0 ||
        brick_tune_options_set_strategy(c->topts, arg) != BRICK_OK)
      return usage_error("--strategy takes auto, exhaustive, random or evolutionary; got '%s'", arg);
    c->strategy = arg;
    return -1;
  case T_LIST: c->list = true; return -1;
  case T_MODEL_REPORT: c->model_report = true; return -1;
  default: return EXIT_USAGE;
  }
}

static int parse_tune(tune_cli *c, int argc, char **argv) {
  static const struct option longs[] = {
      {"help", no_argument, 0, 'h'}, {"kernel", required_argument, 0, 'k'},
      {"verbose", no_argument, 0, 'v'}, {"trials", required_argument, 0, T_TRIALS},
      {"seconds", required_argument, 0, T_SECONDS}, {"db", required_argument, 0, T_DB},
      {"strategy", required_argument, 0, T_STRATEGY}, {"threads", required_argument, 0, T_THREADS},
      {"timeout", required_argument, 0, T_TIMEOUT}, {"seed", required_argument, 0, T_SEED},
      {"list", no_argument, 0, T_LIST}, {"model-report", no_argument, 0, T_MODEL_REPORT},
      {0, 0, 0, 0}};
  int rc = cli_parse_options(argc, argv, "tune", "D:k:v", longs, usage_tune, tune_option, c);
  if (rc >= 0)
    return rc;
  if (c->model_report && c->strategy)
    return usage_error("%s", "--model-report chooses its own candidates: drop --strategy");
  if (c->list && optind < argc)
    return usage_error("unexpected argument '%s' with --list", argv[optind]);
  if (!c->list && optind >= argc)
    return usage_error("%s", "tune: no input file");
  if (optind + 1 < argc)
    return usage_error("unexpected argument '%s'", argv[optind + 1]);
  c->file = c->list ? NULL : argv[optind];
  return -1;
}

/* The path of this executable, for the workers. */
static char *self_path(void) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  return strdup(buf);
}

static int list_db(tune_cli *c, brick_ctx *ctx) {
  char *def = c->db ? NULL : brick_tune_default_db();
  const char *path = c->db ? c->db : def;
  int rc = 0;
  if (!c->db && access(path, F_OK) != 0)
    printf("%s: no tuning database yet\n", path);
  else if (brick_db_list(ctx, path, c->verbose, stdout) != BRICK_OK) {
    fprintf(stderr, "brick: error: %s\n", brick_ctx_last_error(ctx));
    rc = EXIT_INPUT;
  }
  free(def);
  return rc;
}

static int run_tune(tune_cli *c) {
  brick_ctx *ctx = brick_ctx_new();
  if (c->list) {
    int rc = list_db(c, ctx);
    brick_ctx_free(ctx);
    return rc;
  }
  char *self = self_path();
  brick_tune_options_set_worker(c->topts, self ? self : "brick");
  free(self);
  brick_tune_options_set_db(c->topts, c->db);
  if (c->model_report)
    brick_tune_options_set_strategy(c->topts, "model-report");
  int trials = c->trials ? c->trials : c->seconds > 0 ? 0 : c->model_report ? 100 : 50;
  brick_tune_options_set_trials(c->topts, trials);
  brick_tune_options_set_seconds(c->topts, c->seconds);
  brick_tune_options_set_stop_flag(c->topts, &interrupted);
  brick_tune_options_set_progress(c->topts, on_progress, c);
  c->tty = isatty(2);
  struct sigaction sa = {.sa_handler = on_sigint};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  brick_program *prog = NULL;
  int st = brick_program_parse_file(ctx, c->file, c->opts, &prog), rc;
  rc = st == BRICK_OK ? tune_kernels(c, ctx, prog) : st == BRICK_ERR_USAGE ? EXIT_USAGE : EXIT_INPUT;
  brick_program_free(prog);
  brick_ctx_free(ctx);
  return rc;
}

int brick_cmd_tune(int argc, char **argv) {
  tune_cli c = {.opts = brick_options_new(), .topts = brick_tune_options_new()};
  int rc = parse_tune(&c, argc, argv);
  if (rc < 0)
    rc = run_tune(&c);
  brick_options_free(c.opts);
  brick_tune_options_free(c.topts);
  return rc;
}

/* ---- brick __measure ---------------------------------------------------------------------------- */

/* Check one call of "fn" against the interpreter, then time it for about "seconds". */
static int measure_fn(brick_ctx *ctx, const brick_program *prog, int k, void *fn, double seconds,
                      double slow_ms) {
  int np = brick_kernel_param_count(prog, k);
  float **args = cli_callable(prog, k) ? cli_alloc_args(prog, k, 1, NAN) : NULL;
  if (!args)
    return EXIT_INPUT;
  cli_call_kernel(fn, np, args);
  double err = 0;
  int rc = 0;
  if (brick_kernel_check(ctx, prog, k, args, 2e6, 1000, 1, &err, NULL) != BRICK_OK) {
    fprintf(stderr, "brick: error: %s\n", brick_ctx_last_error(ctx));
    rc = EXIT_INPUT;
  } else if (!(err <= 1e-4)) {
    printf("brick-measure wrong err=%.3g\n", err);
    rc = EXIT_CHECK;
  } else {
    static double times[1000];
    cli_call_kernel(fn, np, args); /* warm-up: caches, pages of the workspace, the thread team */
    double start = cli_now_seconds();
    int reps = 0;
    cli_call_kernel(fn, np, args);
    times[reps++] = cli_now_seconds() - start;
    bool slow = slow_ms > 0 && times[0] * 1e3 > slow_ms; /* far off the pace: once is enough */
    while (!slow && reps < 1000 && (reps < 3 || cli_now_seconds() - start < seconds)) {
      double s = cli_now_seconds();
      cli_call_kernel(fn, np, args);
      times[reps++] = cli_now_seconds() - s;
    }
    qsort(times, (size_t)reps, sizeof(double), cli_cmp_double);
    double med = times[reps / 2];
    printf("brick-measure ok ms=%.6f gflops=%.4f err=%.3g reps=%d\n", med * 1e3,
           brick_kernel_flops(prog, k) / med * 1e-9, err, reps);
  }
  cli_free_args(args, np);
  return rc;
}

int brick_cmd_measure(int argc, char **argv) {
  static const struct option longs[] = {
      {"kernel", required_argument, 0, 'k'}, {"schedule", required_argument, 0, 's'},
      {"threads", required_argument, 0, 't'}, {"seconds", required_argument, 0, 'S'},
      {"slow-ms", required_argument, 0, 'W'}, {0, 0, 0, 0}};
  brick_options *opts = brick_options_new();
  const char *kernel = NULL;
  double seconds = 0.3, slow_ms = 0, v;
  int ch, rc = -1;
  opterr = 0;
  optind = 1;
  while (rc < 0 && (ch = getopt_long(argc, argv, "D:", longs, NULL)) != -1) {
    if (ch == 'D' && cli_parse_define(opts, optarg))
      continue;
    if (ch == 'k')
      kernel = optarg;
    else if (ch == 's')
      brick_options_set_schedule(opts, optarg);
    else if (ch == 't' && parse_number(optarg, 0, 1024, &v))
      brick_options_set_threads(opts, (int)v);
    else if (ch == 'S' && parse_number(optarg, 0, 1e6, &v))
      seconds = v;
    else if (ch == 'W' && parse_number(optarg, 0, 1e12, &v))
      slow_ms = v;
    else
      rc = usage_error("__measure: bad option '%s'", argv[optind - 1]);
  }
  if (rc < 0 && (optind + 1 != argc || !kernel))
    rc = usage_error("%s", "__measure needs FILE.bk and --kernel");
  brick_ctx *ctx = brick_ctx_new();
  brick_program *prog = NULL;
  brick_module *mod = NULL;
  if (rc < 0) {
    int st = brick_program_parse_file(ctx, argv[optind], opts, &prog);
    int k = st == BRICK_OK ? brick_program_find_kernel(prog, kernel) : -1;
    if (st == BRICK_OK && k >= 0)
      st = brick_compile(ctx, prog, k, opts, &mod);
    else if (st == BRICK_OK) {
      fprintf(stderr, "brick: error: %s has no kernel named '%s'\n", argv[optind], kernel);
      st = BRICK_ERR_USAGE;
    }
    void *fn = st == BRICK_OK ? brick_module_lookup(ctx, mod, kernel) : NULL;
    if (fn)
      rc = measure_fn(ctx, prog, k, fn, seconds, slow_ms);
    else {
      const char *msg = brick_ctx_last_error(ctx);
      if (*msg && !strstr(msg, "error: "))
        fprintf(stderr, "brick: error: %s\n", msg);
      rc = st == BRICK_ERR_USAGE ? EXIT_USAGE : EXIT_INPUT;
    }
  }
  brick_module_free(mod);
  brick_program_free(prog);
  brick_ctx_free(ctx);
  brick_options_free(opts);
  return rc;
}
