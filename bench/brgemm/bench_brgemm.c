/* bench_brgemm: brick's BRGEMM bodies against libxsmm 1.17, in one process.
 *
 * First the in-process FMA peak of one core (AVX-512: 16 zmm chains; AVX2:
 * 12 ymm chains), then for each shape of ../shared/anchors/brgemm.c plus tail
 * shapes, each batch mode (stride, offsets, addresses) and 1 and 2 threads:
 * brick's body for the host ISA and libxsmm's kernel of the same mode, timed
 * in interleaved pairs of samples (GFLOP/s: median of SAMPLES; ratio: median
 * of the per-pair ratios, robust to load from other processes), data hot in cache (A, B, C
 * reused every call; each thread has private data, as a parallel conv does).
 * Both are checked once against a naive double loop.  Finally brick's AVX2
 * body on 64x56x64 b9 against the AVX2 peak.
 *
 * Output: a human table, "CSV,..." lines, and last the summary line
 *   geomean_ratio_vs_libxsmm=<x> min_ratio=<y> pct_peak_64x56x64_b9=<z>
 * (ratio = brick GFLOP/s / libxsmm GFLOP/s over every row; pct_peak of the
 * stride body, 1 thread, each sample paired with a peak sample taken right
 * after it).  Usage: bench_brgemm [quick]   ("quick": 1 thread,
 * stride mode only).  Env BRICK_PEAK_GFLOPS pins the per-core peak.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "brgemm.h"
#include "fma_peak.h"
#include "xsmm_peer.h"

#define SAMPLES 11

typedef struct shape {
  int m, n, k, batch;
  const char *note;
} shape;

static const shape shapes[] = {
    {64, 56, 64, 9, "3x3 conv, W=56"}, {64, 28, 64, 9, "3x3 conv, W=28"},
    {64, 14, 64, 9, "3x3 conv, W=14"}, {64, 7, 64, 9, "3x3 conv, W=7"},
    {64, 56, 64, 1, "1x1 conv"},       {64, 56, 64, 2, ""},
    {64, 56, 64, 4, ""},               {64, 56, 64, 8, ""},
    {64, 56, 64, 16, ""},              {64, 64, 64, 16, "square 64"},
    {32, 32, 32, 32, "square 32"},     {33, 13, 19, 9, "tails"},
    {17, 7, 64, 9, "tails"},           {67, 29, 35, 4, "tails"},
};

static double now(void)
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

/* Median of the "n" (<= 64) values "v". */
static double median(const double *v, int n)
{
  double t[64];
  memcpy(t, v, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmp_dbl);
  return n & 1 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* In-process per-core peak of "isa": the best of 7 samples after a warm-up
 * (the best, not the median: other processes only ever slow a sample down). */
static double peak_gflops(brg_isa isa)
{
  const char *e = getenv("BRICK_PEAK_GFLOPS");
  if (e && *e && isa != BRG_ISA_AVX2)
    return atof(e);
  return bench_fma_peak(isa == BRG_ISA_AVX512, 7, 5000000L);
}

/* Per-thread data of one shape: blocks A_i, B_i, C, and the batch tables. */
typedef struct bufs {
  float *a, *b, *c;
  const float **ap, **bp, **bp0;   /* address arrays (bp0: pristine copy for libxsmm) */
  int64_t *oa, *ob;                /* element offsets (brick) */
  unsigned long long *oab, *obb;   /* byte offsets (libxsmm) */
} bufs;

/* Fill "x" with "n" values in [-0.5, 0.5) from "seed". */
static void fill(float *x, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
  }
}

/* 64-byte aligned, cache-line-rounded allocation of "bytes". */
static void *alloc64(size_t bytes)
{
  return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static void bufs_init(bufs *q, const shape *s, unsigned seed)
{
  size_t asz = (size_t)s->m * s->k, bsz = (size_t)s->k * s->n, nb = (size_t)s->batch;
  q->a = alloc64(asz * nb * 4);
  q->b = alloc64(bsz * nb * 4);
  q->c = alloc64((size_t)s->m * s->n * 4);
  q->ap = alloc64(nb * 8);
  q->bp = alloc64(nb * 8);
  q->bp0 = alloc64(nb * 8);
  q->oa = alloc64(nb * 8);
  q->ob = alloc64(nb * 8);
  q->oab = alloc64(nb * 8);
  q->obb = alloc64(nb * 8);
  fill(q->a, asz * nb, seed);
  fill(q->b, bsz * nb, seed + 7);
  memset(q->c, 0, (size_t)s->m * s->n * 4);
  for (size_t i = 0; i < nb; i++) {
    q->ap[i] = q->a + i * asz;
    q->bp[i] = q->bp0[i] = q->b + i * bsz;
    q->oa[i] = (int64_t)(i * asz);
    q->ob[i] = (int64_t)(i * bsz);
    q->oab[i] = i * asz * 4;
    q->obb[i] = i * bsz * 4;
  }
}

static void bufs_free(bufs *q)
{
  free(q->a), free(q->b), free(q->c), free(q->ap), free(q->bp), free((void *)q->bp0);
  free(q->oa), free(q->ob), free(q->oab), free(q->obb);
}

/* max |C - naive| / max |naive| for C computed from C = 0 by one call. */
static double check(const shape *s, const bufs *q)
{
  int M = s->m, N = s->n, K = s->k;
  double maxerr = 0, maxref = 0;
  for (int j = 0; j < N; j++)
    for (int i = 0; i < M; i++) {
      double acc = 0;
      for (int b = 0; b < s->batch; b++)
        for (int p = 0; p < K; p++)
          acc += (double)q->a[(size_t)b * M * K + i + (size_t)p * M] *
                 (double)q->b[(size_t)b * K * N + p + (size_t)j * K];
      maxerr = fmax(maxerr, fabs(acc - (double)q->c[i + (size_t)j * M]));
      maxref = fmax(maxref, fabs(acc));
    }
  return maxerr / (maxref + 1e-30);
}

/* The kernel under test: brick's function or the libxsmm peer, in "mode". */
typedef struct kernel {
  brg_fn fn;          /* brick, or NULL */
  xsmm_peer *peer;    /* libxsmm, or NULL */
  brg_batch_mode mode;
} kernel;

/* One call of "k" on "q" with "batch" blocks. */
static void call(const kernel *k, bufs *q, int batch)
{
  if (k->fn) {
    if (k->mode == BRG_BATCH_STRIDE)
      k->fn(q->a, q->b, q->c, batch, NULL, NULL, NULL, 0, NULL);
    else if (k->mode == BRG_BATCH_OFFSETS)
      k->fn(q->a, q->b, q->c, batch, NULL, q->oa, q->ob, 0, NULL);
    else
      k->fn(q->ap, q->bp, q->c, batch, NULL, NULL, NULL, 0, NULL);
    return;
  }
  xsmm_peer_call(k->peer, q->a, q->b, q->ap, q->bp, q->bp0, q->oab, q->obb, q->c, batch);
}

/* Aggregate GFLOP/s of "calls" calls of "k" on each of "thr" threads. */
static double run(const kernel *k, const shape *s, bufs *q, int thr, long calls)
{
  double t0 = 0, t1 = 0;
#pragma omp parallel num_threads(thr)
  {
    bufs *my = &q[omp_get_thread_num()];
#pragma omp barrier
#pragma omp master
    t0 = now();
    for (long i = 0; i < calls; i++)
      call(k, my, s->batch);
#pragma omp barrier
#pragma omp master
    t1 = now();
  }
  return 2.0 * s->m * s->n * s->k * s->batch * (double)calls * thr / (t1 - t0) * 1e-9;
}

/* Relative error of one call of "k" on "q" from C = 0. */
static double check_kernel(const kernel *k, const shape *s, bufs *q)
{
  memset(q->c, 0, (size_t)s->m * s->n * 4);
  call(k, q, s->batch);
  return check(s, q);
}

/* Accumulated ratios for the summary line. */
typedef struct summary {
  double log_sum, min_ratio;
  int count;
} summary;

static const char *mode_name[3] = {"strd", "offs", "addr"};

/* Time "kb" (brick) and "kx" (libxsmm, kx->peer may be NULL) interleaved on
 * "thr" threads; print one table row and one CSV line. */
static void measure(const shape *s, const kernel *kb, const kernel *kx, bufs *q, int thr,
                    double peak, double err, summary *sum)
{
  double flop = 2.0 * s->m * s->n * s->k * s->batch;
  long calls = (long)(0.02 * 150e9 / flop);
  calls = calls < 10 ? 10 : calls;
  double vb[SAMPLES], vx[SAMPLES], vr[SAMPLES], gx = NAN, ratio = NAN;
  run(kb, s, q, thr, calls / 4);
  if (kx->peer)
    run(kx, s, q, thr, calls / 4);
  for (int r = 0; r < SAMPLES; r++) { /* pairs, alternating which goes first */
    if (kx->peer && r % 2)
      vx[r] = run(kx, s, q, thr, calls);
    vb[r] = run(kb, s, q, thr, calls);
    if (kx->peer && r % 2 == 0)
      vx[r] = run(kx, s, q, thr, calls);
    vr[r] = kx->peer ? vb[r] / vx[r] : NAN;
  }
  double gb = median(vb, SAMPLES), pct = 100.0 * gb / (peak * thr);
  if (kx->peer) {
    gx = median(vx, SAMPLES);
    ratio = median(vr, SAMPLES); /* paired: both saw the same load on the machine */
  }
  printf("%-4d %-4d %-4d %-5d %-4s %3d %9.1f %9.1f %6.3f %6.1f%% %8.1e  %s\n", s->m, s->n, s->k,
         s->batch, mode_name[kb->mode], thr, gb, gx, ratio, pct, err,
         thr == 1 && kb->mode == BRG_BATCH_STRIDE ? s->note : "");
  printf("CSV,brgemm,%d,%d,%d,%d,%s,%d,%.2f,%.2f,%.4f,%.2f\n", s->m, s->n, s->k, s->batch,
         mode_name[kb->mode], thr, gb, gx, ratio, pct);
  if (kx->peer && ratio > 0) {
    sum->log_sum += log(ratio);
    sum->min_ratio = sum->count ? fmin(sum->min_ratio, ratio) : ratio;
    sum->count++;
  }
}

/* Percentage of the "isa" FMA peak that "k" reaches on "s", 1 thread: the
 * median of the ratios of each kernel sample to the peak sample right after
 * it, so that load from other processes cancels out. */
static double paired_pct(const kernel *k, const shape *s, bufs *q, brg_isa isa)
{
  double flop = 2.0 * s->m * s->n * s->k * s->batch, v[SAMPLES];
  long calls = (long)(0.01 * 150e9 / flop);
  run(k, s, q, 1, calls);
  for (int r = 0; r < SAMPLES; r++) {
    double g = run(k, s, q, 1, calls);
    v[r] = 100.0 * g / bench_fma_gflops(isa == BRG_ISA_AVX512, 4000000L);
  }
  return median(v, SAMPLES);
}

/* The paired percentage of peak of brick's "isa" body on 64x56x64 b9 (stride). */
static double pct_peak_b9(brg_jit *jit, brg_isa isa)
{
  shape s = {64, 56, 64, 9, ""};
  bufs q[1];
  bufs_init(&q[0], &s, 42u);
  brg_desc d;
  brg_desc_init(&d, 64, 56, 64, isa);
  kernel kb = {brg_jit_get(jit, &d), NULL, BRG_BATCH_STRIDE};
  double pct = kb.fn ? paired_pct(&kb, &s, q, isa) : NAN;
  bufs_free(&q[0]);
  return pct;
}

/* Benchmark shape "s" in every mode on 1 and "maxthr" threads. */
static void bench_shape(brg_jit *jit, brg_isa isa, const shape *s, int nmodes, int maxthr,
                        double peak, summary *sum)
{
  bufs q[2];
  bufs_init(&q[0], s, 1234u);
  bufs_init(&q[1], s, 999u);
  for (int mode = 0; mode < nmodes; mode++) {
    brg_desc d;
    brg_desc_init(&d, s->m, s->n, s->k, isa);
    d.mode = (brg_batch_mode)mode;
    kernel kb = {brg_jit_get(jit, &d), NULL, d.mode};
    kernel kx = {NULL, xsmm_peer_new(s->m, s->n, s->k, mode), d.mode};
    if (!kb.fn) {
      printf("brick: %s\n", brg_jit_error(jit));
      continue;
    }
    double err = check_kernel(&kb, s, &q[0]);
    if (kx.peer && check_kernel(&kx, s, &q[0]) > 1e-4)
      printf("warning: libxsmm result differs from the naive loop\n");
    for (int thr = 1; thr <= maxthr; thr++)
      measure(s, &kb, &kx, q, thr, peak, err, sum);
    xsmm_peer_free(kx.peer);
  }
  bufs_free(&q[0]);
  bufs_free(&q[1]);
}

/* brick's AVX2 body on 64x56x64 b9 against the AVX2 peak: a table row, and
 * the paired percentage of peak as the result. */
static double bench_avx2(brg_jit *jit)
{
  double peak2 = peak_gflops(BRG_ISA_AVX2);
  shape s = {64, 56, 64, 9, "AVX2 body"};
  summary dummy = {0};
  bufs q[1];
  bufs_init(&q[0], &s, 42u);
  brg_desc d;
  brg_desc_init(&d, 64, 56, 64, BRG_ISA_AVX2);
  kernel kb = {brg_jit_get(jit, &d), NULL, BRG_BATCH_STRIDE}, kx = {NULL, NULL, BRG_BATCH_STRIDE};
  printf("\nAVX2 body (in-process AVX2 FMA peak %.1f GFLOP/s per core):\n", peak2);
  printf("CSV,peak_avx2,%.2f\n", peak2);
  measure(&s, &kb, &kx, q, 1, peak2, check_kernel(&kb, &s, &q[0]), &dummy);
  bufs_free(&q[0]);
  return pct_peak_b9(jit, BRG_ISA_AVX2);
}

int main(int argc, char **argv)
{
  int quick = argc > 1 && !strcmp(argv[1], "quick");
  brg_isa isa = brg_isa_host();
  if (isa == BRG_ISA_GENERIC) {
    printf("bench_brgemm: the host has neither AVX-512 nor AVX2\n");
    return 0;
  }
  brg_jit *jit = brg_jit_new();
  if (!jit)
    return 1;
  xsmm_peer_init();
  double peak = peak_gflops(isa);
  printf("in-process %s FMA peak: %.1f GFLOP/s per core; libxsmm: %s\n",
         isa == BRG_ISA_AVX512 ? "AVX-512" : "AVX2", peak, xsmm_peer_version());
  printf("CSV,peak,%.2f\n", peak);
  printf("%-4s %-4s %-4s %-5s %-4s %3s %9s %9s %6s %7s %8s  %s\n", "M", "N", "K", "batch", "mode",
         "thr", "brick", "libxsmm", "ratio", "%peak", "relerr", "note");
  summary sum = {0, 0, 0};
  int nshape = (int)(sizeof shapes / sizeof shapes[0]);
  for (int i = 0; i < nshape; i++)
    bench_shape(jit, isa, &shapes[i], quick ? 1 : 3, quick ? 1 : 2, peak, &sum);
  double pct512 = pct_peak_b9(jit, isa);
  double pct2 = bench_avx2(jit);
  xsmm_peer_finalize();
  brg_jit_free(jit);
  printf("pct_avx2_peak_64x56x64_b9=%.1f\n", pct2);
  printf("geomean_ratio_vs_libxsmm=%.3f min_ratio=%.3f pct_peak_64x56x64_b9=%.1f\n",
         sum.count ? exp(sum.log_sum / sum.count) : NAN, sum.count ? sum.min_ratio : NAN,
         pct512);
  return 0;
}
