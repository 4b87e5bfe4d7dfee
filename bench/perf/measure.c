/* measure.c - the clock, the in-process FMA peak, and interleaved timing.
 *
 * The peak is measured in the benchmark's own process at start, because the
 * VM's clock and its neighbours change from run to run: 16 independent chains
 * of zmm FMAs (12 of ymm FMAs without AVX-512; bench/common/fma_peak.c, shared with
 * bench_brgemm), the best of 40 short samples
 * (about 2 ms each) after a warm-up. Load from other processes only ever slows
 * a sample down, and on a busy machine a short sample is likelier to find the
 * core to itself.
 *
 * Two runners (brick and its peer) are timed in interleaved samples, a b a b ...,
 * so that a change of load or clock hits both alike. Each sample repeats the
 * call until it lasts "min_sample" seconds; its rate is FLOPs / seconds. We keep
 * the median rate of each runner, its slowest and fastest sample, and the
 * median of the per-pair ratios.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fma_peak.h"
#include "perf.h"

double perf_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of the "n" (<= PERF_MAX_SAMPLES) values "v"; "v" is left as it is. */
double perf_median(const double *v, int n)
{
  double t[PERF_MAX_SAMPLES];
  memcpy(t, v, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmp_dbl);
  return n & 1 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* The per-core FP32 peak in GFLOP/s, and in "isa" the kind of FMA that gave it.
 * The environment variable BRICK_PEAK_GFLOPS pins it instead. */
double perf_peak_gflops(const char **isa)
{
  const char *e = getenv("BRICK_PEAK_GFLOPS");
  if (e && *e) {
    *isa = "BRICK_PEAK_GFLOPS";
    return atof(e);
  }
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  *isa = avx512 ? "AVX-512, 16 zmm FMA chains" : "AVX2, 12 ymm FMA chains";
  return bench_fma_peak(avx512, 40, 1000000L);
}

/* Seconds of "reps" calls of "r". */
static double time_calls(const perf_runner *r, int reps)
{
  double t0 = perf_now();
  for (int i = 0; i < reps; i++)
    r->run(r->ctx);
  return perf_now() - t0;
}

static void sleep_seconds(double s)
{
  if (s <= 0)
    return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Warm "r" up for about "seconds" and return how many calls make a sample of
 * at least that long. */
static int warm_and_calibrate(const perf_runner *r, double seconds)
{
  double t = time_calls(r, 1), spent = t;
  while (spent < seconds) {
    t = time_calls(r, 1);
    spent += t;
  }
  t = time_calls(r, 1); /* once more, warm */
  double reps = ceil(seconds / (t > 1e-9 ? t : 1e-9));
  return reps > 1e6 ? 1000000 : (int)reps;
}

/* Time "a" and "b" (either may be NULL) in interleaved samples as "o" says. */
perf_timing perf_time_pair(const perf_runner *a, const perf_runner *b, const perf_timing_opts *o)
{
  const perf_runner *rs[2] = {a, b};
  double v[2][PERF_MAX_SAMPLES], ratio[PERF_MAX_SAMPLES];
  const int n = o->samples < PERF_MAX_SAMPLES ? o->samples : PERF_MAX_SAMPLES;
  perf_timing t = {{NAN, NAN}, {NAN, NAN}, {NAN, NAN}, NAN, {0, 0}};
  for (int j = 0; j < 2; j++)
    if (rs[j])
      t.reps[j] = warm_and_calibrate(rs[j], o->min_sample);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2; j++) {
      if (!rs[j])
        continue;
      if (a && b)
        sleep_seconds(o->settle);
      v[j][i] = rs[j]->flops * t.reps[j] / time_calls(rs[j], t.reps[j]) * 1e-9;
    }
  for (int j = 0; j < 2; j++)
    if (rs[j]) {
      t.gflops[j] = perf_median(v[j], n);
      t.lo[j] = t.hi[j] = v[j][0];
      for (int i = 1; i < n; i++)
        t.lo[j] = fmin(t.lo[j], v[j][i]), t.hi[j] = fmax(t.hi[j], v[j][i]);
    }
  if (a && b) {
    for (int i = 0; i < n; i++)
      ratio[i] = v[0][i] / v[1][i];
    t.pair_ratio = perf_median(ratio, n);
  }
  return t;
}
