/* bench_perf - brick's default schedules against oneDNN and OpenBLAS.
 *
 * For every shape of perf_kernels.c (ResNet-50 convolutions and GEMMs, each
 * compiled by brick from plain .bk text with default settings) and every
 * thread count asked for: set the OpenMP team size (brick's kernels and
 * oneDNN read it at run time) and OpenBLAS's thread count, check brick's result
 * and the peer's against a double-precision reference on sampled elements,
 * then time both in interleaved samples (measure.c) and print a row
 * (report.c). The in-process FMA peak, measured first, is the basis of %peak.
 *
 * Usage: bench_perf [OPTIONS]     (bench_perf --help lists them)
 * Exit status: 0 ok, 1 setup failure, 2 bad usage, 3 a brick result failed its check.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "fma_peak.h"
#include "perf.h"

#define TOLERANCE 1e-4
#define MAX_THREAD_COUNTS 8
#define MAX_FILTERS 32

typedef struct bench_opts {
  const char *filters[MAX_FILTERS];
  int nfilters;
  int threads[MAX_THREAD_COUNTS];
  int nthreads;
  perf_timing_opts timing;
  int check_points;
  bool no_peer, list;
  const char *csv_path;
} bench_opts;

/* The arrays of one shape, shared by every thread count. */
typedef struct bench_data {
  float *in0, *in1, *out, *peer_out;
  float *in1_brick; /* the weights brick reads: in1, or their prepacked copy (perf_shape.pack) */
  void *ws;
  perf_sample *sample;
} bench_data;

/* What brick's runner calls: NAME_ws(in0, in1, out, ws). */
typedef struct brick_call {
  perf_kernel_fn fn;
  const bench_data *d;
} brick_call;

static void brick_run(void *ctx)
{
  const brick_call *b = ctx;
  b->fn(b->d->in0, b->d->in1_brick, b->d->out, b->d->ws);
}

static void usage(FILE *f)
{
  fprintf(f,
          "Usage: bench_perf [OPTIONS]\n"
          "Time brick's kernels (default schedules) against oneDNN (convs) and OpenBLAS (GEMMs).\n\n"
          "  -f, --filter S      only shapes whose name contains S, or of kind S (conv, gemm);\n"
          "                      repeatable or comma-separated (default: all)\n"
          "  -t, --threads LIST  thread counts, in order (default: 1,2)\n"
          "  -n, --samples N     samples of each library per row, median kept (default: 7)\n"
          "      --min-time MS   milliseconds a sample lasts at least (default: 40)\n"
          "      --settle MS     sleep before each sample, so the other library's threads\n"
          "                      stop spinning (default: 0)\n"
          "      --check-points N  output elements checked in double (default: 4096)\n"
          "      --csv FILE      CSV output (default: %s/perf.csv; '-' for none)\n"
          "      --no-peer       time brick only\n"
          "      --list          list the shapes and exit\n"
          "      --keep-coretype  keep OPENBLAS_CORETYPE (by default bench_perf re-executes\n"
          "                      itself without it, so OpenBLAS picks its AVX-512 kernels)\n"
          "  -h, --help          this help\n"
          "Env: BRICK_PEAK_GFLOPS pins the per-core peak.\n",
          PERF_RESULTS_DIR);
}

/* Parse the comma-separated thread counts "s" into "o". Returns -1 if malformed. */
static int parse_threads(bench_opts *o, const char *s)
{
  o->nthreads = 0;
  while (*s) {
    char *end;
    long t = strtol(s, &end, 10);
    if (end == s || t < 1 || t > 1024 || o->nthreads == MAX_THREAD_COUNTS)
      return -1;
    o->threads[o->nthreads++] = (int)t;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',')
      return -1;
  }
  return o->nthreads ? 0 : -1;
}

/* Split "s" at commas into filters of "o". */
static int add_filters(bench_opts *o, char *s)
{
  for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
    if (o->nfilters == MAX_FILTERS)
      return -1;
    else
      o->filters[o->nfilters++] = tok;
  return 0;
}

/* The value of option "argv[*i]": after '=' or the next argument. */
static char *opt_value(int argc, char **argv, int *i, const char *eq)
{
  if (eq)
    return (char *)eq + 1;
  if (*i + 1 >= argc)
    return NULL;
  return argv[++*i];
}

/* Is "arg" the option "name" (alone, or followed by '=')? Sets "eq". */
static bool is_opt(const char *arg, const char *name, const char **eq)
{
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0 || (arg[n] && arg[n] != '='))
    return false;
  *eq = arg[n] ? arg + n : NULL;
  return true;
}

/* Apply the option "arg" with value "v" to "o". Returns -1 if it is bad. */
static int apply_opt(bench_opts *o, const char *arg, char *v)
{
  const char *eq;
  if (is_opt(arg, "-f", &eq) || is_opt(arg, "--filter", &eq))
    return add_filters(o, v);
  if (is_opt(arg, "-t", &eq) || is_opt(arg, "--threads", &eq))
    return parse_threads(o, v);
  if (is_opt(arg, "-n", &eq) || is_opt(arg, "--samples", &eq))
    return (o->timing.samples = atoi(v)) >= 1 && o->timing.samples <= PERF_MAX_SAMPLES ? 0 : -1;
  if (is_opt(arg, "--min-time", &eq))
    return (o->timing.min_sample = atof(v) * 1e-3) > 0 ? 0 : -1;
  if (is_opt(arg, "--settle", &eq))
    return (o->timing.settle = atof(v) * 1e-3) >= 0 ? 0 : -1;
  if (is_opt(arg, "--check-points", &eq))
    return (o->check_points = atoi(v)) >= 2 ? 0 : -1;
  if (is_opt(arg, "--csv", &eq))
    return o->csv_path = v, 0;
  return -1;
}

/* Parse the command line into "o". Returns -1 on bad usage, 1 after --help. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
  static const char *valued[] = {"-f", "--filter", "-t", "--threads", "-n", "--samples",
                                 "--min-time", "--settle", "--check-points", "--csv"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *eq = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return 1;
    if (!strcmp(a, "--no-peer") || !strcmp(a, "--list") || !strcmp(a, "--keep-coretype")) {
      o->no_peer |= !strcmp(a, "--no-peer");
      o->list |= !strcmp(a, "--list");
      continue;
    }
    bool known = false;
    for (size_t k = 0; k < sizeof valued / sizeof *valued && !known; k++)
      known = is_opt(a, valued[k], &eq);
    char *v = known ? opt_value(argc, argv, &i, eq) : NULL;
    if (!v || apply_opt(o, a, v) < 0) {
      fprintf(stderr, "bench_perf: bad option or value: %s\n", a);
      return -1;
    }
  }
  return 0;
}

/* Is shape "s" selected by the filters of "o"? */
static bool selected(const bench_opts *o, const perf_shape *s)
{
  if (!o->nfilters)
    return true;
  const char *kind = s->kind == PERF_CONV ? "conv" : "gemm";
  for (int i = 0; i < o->nfilters; i++)
    if (strstr(s->name, o->filters[i]) || strstr(kind, o->filters[i]))
      return true;
  return false;
}

static double load1(void)
{
  double l[1];
  return getloadavg(l, 1) == 1 ? l[0] : NAN;
}

/* Allocate and fill the arrays of "s"; sample its reference. */
static void data_new(bench_data *d, const perf_shape *s, const bench_opts *o, unsigned seed)
{
  const size_t n0 = perf_shape_in0_size(s), n1 = perf_shape_in1_size(s);
  const size_t no = perf_shape_out_size(s);
  d->in0 = perf_alloc(n0 * sizeof(float));
  d->in1 = perf_alloc(n1 * sizeof(float));
  d->out = perf_alloc(no * sizeof(float));
  d->peer_out = perf_alloc(no * sizeof(float));
  d->ws = perf_alloc((size_t)*s->ws_bytes);
  perf_fill(d->in0, n0, seed);
  perf_fill(d->in1, n1, seed * 7 + 3);
  d->sample = perf_sample_new(s, d->in0, d->in1, o->check_points, seed ^ 0x9e3779b9u);
  d->in1_brick = d->in1;
  if (s->pack) {
    d->in1_brick = perf_alloc(n1 * sizeof(float));
    s->pack(d->in1, d->in1_brick);
  }
}

static void data_free(bench_data *d)
{
  if (d->in1_brick != d->in1)
    free(d->in1_brick);
  free(d->in0), free(d->in1), free(d->out), free(d->peer_out), free(d->ws);
  perf_sample_free(d->sample);
}

/* The check of brick's result on "d" at the current thread count, into "row". */
static void check_brick(const perf_shape *s, bench_data *d, perf_result *row)
{
  perf_fill_nan(d->out, perf_shape_out_size(s));
  s->fn(d->in0, d->in1_brick, d->out, d->ws);
  row->brick_err = perf_sample_error(d->sample, d->out);
  row->brick_ok = row->brick_err <= TOLERANCE;
}

/* Set up, check and describe the peer of "s" for the current thread count.
 * Returns its runner context (NULL: no peer); "dnnl" receives oneDNN's state. */
static void *peer_setup(const perf_shape *s, bench_data *d, perf_blas *blas, perf_dnnl **dnnl,
                        perf_result *row)
{
  perf_fill_nan(d->peer_out, perf_shape_out_size(s));
  if (s->kind == PERF_CONV) {
    if (!perf_dnnl_version())
      return NULL;
    row->peer = "oneDNN";
    if (!(*dnnl = perf_dnnl_new(s, d->in0, d->in1))) {
      snprintf(row->note, sizeof row->note, "oneDNN could not create the convolution");
      return NULL;
    }
    snprintf(row->note, sizeof row->note, "oneDNN impl %s", perf_dnnl_impl(*dnnl));
    perf_dnnl_run(*dnnl);
    if (perf_dnnl_output(*dnnl, d->peer_out) < 0) {
      snprintf(row->note, sizeof row->note, "oneDNN reorder of the output failed");
      return NULL;
    }
  } else {
    if (!perf_openblas_version())
      return NULL;
    row->peer = "OpenBLAS";
    *blas = (perf_blas){s, d->in0, d->in1, d->peer_out};
    perf_openblas_run(blas);
  }
  row->peer_err = perf_sample_error(d->sample, d->peer_out);
  row->peer_ok = row->peer_err <= TOLERANCE;
  if (!row->peer_ok)
    return NULL;
  return s->kind == PERF_CONV ? (void *)*dnnl : (void *)blas;
}

/* Measure shape "s" on "d" with "threads" threads into "row". */
static void run_at(const perf_shape *s, bench_data *d, int threads, const bench_opts *o,
                   perf_result *row)
{
  omp_set_num_threads(threads);
  perf_openblas_set_threads(threads);
  *row = (perf_result){.shape = s, .threads = threads, .brick_gflops = NAN, .peer_gflops = NAN,
                       .ratio = NAN, .pair_ratio = NAN, .spread = NAN, .brick_best = NAN,
                       .peer_best = NAN, .brick_err = NAN, .peer_err = NAN};
  check_brick(s, d, row);
  perf_blas blas;
  perf_dnnl *dnnl = NULL;
  void *peer = o->no_peer ? NULL : peer_setup(s, d, &blas, &dnnl, row);
  brick_call bc = {s->fn, d};
  const double flops = perf_shape_flops(s);
  perf_runner a = {brick_run, &bc, flops};
  perf_runner b = {s->kind == PERF_CONV ? perf_dnnl_run : perf_openblas_run, peer, flops};
  row->load1 = load1();
  perf_timing t = perf_time_pair(row->brick_ok ? &a : NULL, peer ? &b : NULL, &o->timing);
  row->brick_gflops = t.gflops[0];
  row->peer_gflops = t.gflops[1];
  row->ratio = t.gflops[0] / t.gflops[1];
  row->pair_ratio = t.pair_ratio;
  row->brick_best = t.hi[0];
  row->peer_best = t.hi[1];
  row->spread = 0;
  for (int j = 0; j < 2; j++)
    if (!isnan(t.gflops[j]))
      row->spread = fmax(row->spread, (t.hi[j] - t.lo[j]) / t.gflops[j]);
  perf_dnnl_free(dnnl);
}

/* Check and time shape number "i" at every thread count of "o". */
static void run_shape(int i, const bench_opts *o, perf_report *rep)
{
  const perf_shape *s = &perf_shapes[i];
  const char *bad = perf_shape_check_dims(s);
  if (bad) {
    fprintf(stderr, "bench_perf: %s: %s (stale build?)\n", s->name, bad);
    exit(1);
  }
  if (fabs(*s->flops - perf_shape_flops(s)) > 1e-3 * perf_shape_flops(s))
    printf("%-16s   note: brick counts %.4g FLOPs, the table %.4g (the table's are used)\n",
           s->name, *s->flops, perf_shape_flops(s));
  bench_data d;
  data_new(&d, s, o, 1000u + (unsigned)i);
  for (int t = 0; t < o->nthreads; t++) {
    perf_result row;
    run_at(s, &d, o->threads[t], o, &row);
    perf_report_add(rep, &row);
  }
  data_free(&d);
}

/* OpenBLAS reads OPENBLAS_CORETYPE when it is loaded, before main: run again
 * without it, unless told to keep it. */
static void drop_openblas_coretype(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--keep-coretype"))
      return;
  if (!perf_openblas_version() || !getenv("OPENBLAS_CORETYPE"))
    return;
  unsetenv("OPENBLAS_CORETYPE");
  execv("/proc/self/exe", argv);
  perror("bench_perf: re-executing without OPENBLAS_CORETYPE failed; continuing");
}

/* The cache-line round trip between CPUs 0 and 1: the VM's two vCPUs share an L3 or not,
 * which moves brick's and oneDNN's 2-thread rows differently (bench/perf/README.md, Noise). */
static void print_c2c(const char *when)
{
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
    return;
  double ns = bench_c2c_round_trip_ns(0, 1);
  if (ns > 0)
    printf("cpus 0 and 1 at the %s: a cache line there and back in %.0f ns (%s)\n", when, ns,
           ns < 200 ? "one L3" : "no shared L3: 2-thread rows run slower");
}

static void print_setup(double peak, const char *isa)
{
  char host[256] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(host, sizeof host, "%s", strchr(line, ':') + 2);
      host[strcspn(host, "\n")] = 0;
      break;
    }
  if (f)
    fclose(f);
  time_t now = time(NULL);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  const char *wp = getenv("OMP_WAIT_POLICY");
  printf("bench_perf %s: %s, %ld cpus, OpenMP max threads %d, OMP_WAIT_POLICY %s, load %.2f\n",
         when, host, sysconf(_SC_NPROCESSORS_ONLN), omp_get_max_threads(), wp ? wp : "unset",
         load1());
  printf("peak %.1f GFLOP/s per core (%s, in-process); %%peak = GFLOP/s / (peak x threads)\n",
         peak, isa);
  print_c2c("start");
  const char *v = perf_openblas_version(), *w = perf_dnnl_version();
  const char *to = getenv("OPENBLAS_THREAD_TIMEOUT");
  printf("peers: %s; %s%s, OPENBLAS_THREAD_TIMEOUT %s\n", w ? w : "no oneDNN",
         v ? v : "no OpenBLAS", getenv("OPENBLAS_CORETYPE") ? " [OPENBLAS_CORETYPE kept]" : "",
         to ? to : "unset (its workers spin 2^28 cycles after a call)");
}

static void list_shapes(void)
{
  for (int i = 0; i < perf_nshapes; i++)
    printf("%-18s %-4s %-30s %8.3f GFLOP\n", perf_shapes[i].name,
           perf_shapes[i].kind == PERF_CONV ? "conv" : "gemm", perf_shapes[i].desc,
           perf_shape_flops(&perf_shapes[i]) * 1e-9);
}

/* Open the CSV file "path" ("-": none), making its directory if it is the default one. */
static FILE *open_csv(const char *path)
{
  if (!strcmp(path, "-"))
    return NULL;
  if (!strncmp(path, PERF_RESULTS_DIR, strlen(PERF_RESULTS_DIR)))
    mkdir(PERF_RESULTS_DIR, 0777);
  FILE *f = fopen(path, "w");
  if (!f)
    perror(path);
  return f;
}

int main(int argc, char **argv)
{
  drop_openblas_coretype(argc, argv);
  bench_opts o = {.threads = {1, 2}, .nthreads = 2, .timing = {7, 0.040, 0}, .check_points = 4096,
                  .csv_path = PERF_RESULTS_DIR "/perf.csv"};
  int pa = parse_args(argc, argv, &o);
  if (pa)
    usage(pa > 0 ? stdout : stderr);
  if (pa)
    return pa > 0 ? 0 : 2;
  if (o.list) {
    list_shapes();
    return 0;
  }
  const char *isa;
  perf_report rep = {.peak = perf_peak_gflops(&isa), .ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN),
                     .csv = open_csv(o.csv_path)};
  print_setup(rep.peak, isa);
  perf_report_header(&rep);
  for (int i = 0; i < perf_nshapes; i++)
    if (selected(&o, &perf_shapes[i]))
      run_shape(i, &o, &rep);
  print_c2c("end");
  int fails = perf_report_summary(&rep, o.threads, o.nthreads);
  if (rep.csv)
    fclose(rep.csv);
  free(rep.rows);
  return fails ? 3 : 0;
}
