/* report.c - the human table, the CSV file and the summary lines.
 *
 * One row per (shape, thread count). GFLOP/s are the nominal FLOPs of the
 * shape (2*N*K*P*Q*C*R*S, 2*M*N*K) over the median wall time; %peak divides
 * by the in-process per-core FMA peak times the thread count; ratio is brick's
 * median GFLOP/s over the peer's (samples interleaved); spread is the worse of
 * the two (fastest - slowest sample) / median, a measure of the noise.
 * A row whose brick result failed its check shows FAIL and counts in no
 * geomean, nor does a row with prepacked weights (perf_shape.pack). The summary prints, per thread count, in the order the threads were
 * run, the line
 *   geomean_vs_onednn=<x> geomean_vs_openblas=<y> min_ratio=<z> threads=<t>
 * ("na" where nothing was measured).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

/* The column titles of the table and of the CSV file. */
void perf_report_header(const perf_report *r)
{
  printf("%-17s %-27s %3s | %8s %6s | %-8s %8s %6s | %6s | %6s %-14s %s\n", "shape",
         "description", "thr", "brick", "%peak", "peer", "GFLOP/s", "%peak", "ratio", "spread",
         "check", "load");
  if (r->csv)
    fprintf(r->csv, "shape,kind,desc,threads,gflop,brick_gflops,brick_pct_peak,brick_err,brick_check,"
                    "peer,peer_gflops,peer_pct_peak,peer_err,ratio,pair_ratio,spread,peak_gflops_per_core,"
                    "load1,note,brick_best_gflops,peer_best_gflops\n");
}

/* "x" with "fmt", or "-" when "x" is NAN, into "buf". */
static const char *num(char *buf, size_t size, const char *fmt, double x)
{
  if (isnan(x))
    snprintf(buf, size, "-");
  else
    snprintf(buf, size, fmt, x);
  return buf;
}

static const char *check_word(bool ok, double err)
{
  return ok ? "ok" : isnan(err) ? "-" : "FAIL";
}

/* Print "x", the newest row of "r"; its note only if the row before (same shape) had another. */
static void print_row(const perf_report *r, const perf_result *x)
{
  const perf_result *prev = r->nrows > 1 ? &r->rows[r->nrows - 2] : NULL;
  const bool same_note = prev && prev->shape == x->shape && !strcmp(prev->note, x->note);
  const double pk = r->peak * x->threads;
  char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
  char chk[40];
  snprintf(chk, sizeof chk, "%s %.0e", check_word(x->brick_ok, x->brick_err), x->brick_err);
  printf("%-17s %-27.27s %3d | %8s %6s | %-8s %8s %6s | %6s | %6s %-14s %.1f\n", x->shape->name,
         x->shape->desc, x->threads, num(b1, 32, "%.1f", x->brick_gflops),
         num(b2, 32, "%.1f%%", 100 * x->brick_gflops / pk), x->peer ? x->peer : "-",
         num(b3, 32, "%.1f", x->peer_gflops), num(b4, 32, "%.1f%%", 100 * x->peer_gflops / pk),
         num(b5, 32, "%.3f", x->ratio), num(b6, 32, "%.0f%%", 100 * x->spread), chk, x->load1);
  if (x->note[0] && !same_note)
    printf("%-17s   note: %s\n", "", x->note);
}

/* Write "row" to the CSV file (commas in the note become semicolons). */
static void csv_row(const perf_report *r, const perf_result *x)
{
  const double pk = r->peak * x->threads;
  char note[sizeof x->note];
  snprintf(note, sizeof note, "%s", x->note);
  for (char *c = strchr(note, ','); c; c = strchr(c, ','))
    *c = ';';
  fprintf(r->csv,
          "%s,%s,\"%s\",%d,%.6f,%.3f,%.2f,%.3g,%s,%s,%.3f,%.2f,%.3g,%.4f,%.4f,%.3f,%.2f,%.2f,\"%s\","
          "%.3f,%.3f\n",
          x->shape->name, x->shape->kind == PERF_CONV ? "conv" : "gemm", x->shape->desc, x->threads,
          perf_shape_flops(x->shape) * 1e-9, x->brick_gflops, 100 * x->brick_gflops / pk,
          x->brick_err, check_word(x->brick_ok, x->brick_err), x->peer ? x->peer : "",
          x->peer_gflops, 100 * x->peer_gflops / pk, x->peer_err, x->ratio, x->pair_ratio,
          x->spread, r->peak, x->load1, note, x->brick_best, x->peer_best);
  fflush(r->csv);
}

/* Print "row", write it to the CSV file and keep it for the summary. */
void perf_report_add(perf_report *r, const perf_result *row)
{
  if (r->nrows == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 64;
    r->rows = realloc(r->rows, (size_t)r->cap * sizeof *r->rows);
  }
  r->rows[r->nrows++] = *row;
  print_row(r, row);
  if (r->csv)
    csv_row(r, row);
  fflush(stdout);
}

typedef struct geomean {
  double logsum, best_logsum; /* of the median ratios, of the best-sample ratios */
  int n;
} geomean;

static void fmt_geomean(char *buf, size_t size, const geomean *g)
{
  if (g->n)
    snprintf(buf, size, "%.3f", exp(g->logsum / g->n));
  else
    snprintf(buf, size, "na");
}

/* Print the summary of the rows with "threads" threads. Returns the number of
 * failed checks among them. */
static int summary_line(const perf_report *r, int threads)
{
  geomean conv = {0, 0, 0}, gemm = {0, 0, 0};
  const perf_result *worst = NULL;
  int fails = 0, loaded = 0;
  for (int i = 0; i < r->nrows; i++) {
    const perf_result *x = &r->rows[i];
    if (x->threads != threads)
      continue;
    fails += !x->brick_ok;
    loaded += x->load1 > r->ncpus + 0.5;
    if (!x->brick_ok || !x->peer_ok || isnan(x->ratio) || x->shape->pack)
      continue;
    geomean *g = x->shape->kind == PERF_CONV ? &conv : &gemm;
    g->logsum += log(x->ratio);
    g->best_logsum += log(x->brick_best / x->peer_best);
    g->n++;
    if (!worst || x->ratio < worst->ratio)
      worst = x;
  }
  char c[32], b[32], m[32];
  fmt_geomean(c, sizeof c, &conv);
  fmt_geomean(b, sizeof b, &gemm);
  num(m, sizeof m, "%.3f", worst ? worst->ratio : NAN);
  printf("threads=%d: %d conv and %d GEMM ratios in the geomeans, %d failed checks; worst %s\n",
         threads, conv.n, gemm.n, fails, worst ? worst->shape->name : "-");
  if (conv.n || gemm.n)
    printf("threads=%d: ratios of the fastest samples instead of the medians: vs oneDNN %.3f, "
           "vs OpenBLAS %.3f\n", threads, conv.n ? exp(conv.best_logsum / conv.n) : NAN,
           gemm.n ? exp(gemm.best_logsum / gemm.n) : NAN);
  for (int i = 0; i < r->nrows; i++) {
    const perf_result *x = &r->rows[i];
    char q[32];
    if (x->threads == threads && x->shape->pack)
      printf("threads=%d: prepacked weights, not in the geomeans: %s ratio %s\n", threads,
             x->shape->name, x->brick_ok && x->peer_ok ? num(q, sizeof q, "%.3f", x->ratio) : "na");
  }
  if (loaded)
    printf("threads=%d: warning: %d rows ran with a load average above the %d cpus:"
           " other processes shared the cores\n", threads, loaded, r->ncpus);
  printf("geomean_vs_onednn=%s geomean_vs_openblas=%s min_ratio=%s threads=%d\n", c, b,
         m[0] == '-' ? "na" : m, threads);
  return fails;
}

/* Print one summary per entry of "threads", in that order: the last line is
 * the summary of the last thread count. Returns the number of failed checks. */
int perf_report_summary(const perf_report *r, const int *threads, int nthreads)
{
  int fails = 0;
  printf("\nsummary (ratio = brick / peer; > 1 means brick is faster)\n");
  for (int i = 0; i < nthreads; i++)
    fails += summary_line(r, threads[i]);
  fflush(stdout);
  return fails;
}
