/* reference.c - shape arithmetic, inputs, and the check every result passes
 * before it is timed.
 *
 * The check does not run a whole reference convolution (too slow for the big
 * layers in a benchmark): it picks a few thousand output elements at random,
 * always including the first and the last, computes each exactly in double from
 * the same inputs, and reports max|x - ref| / max|ref| over them. A NaN or an
 * unwritten element (outputs are filled with NaN before the checked call)
 * makes the error infinite.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

int perf_conv_p(const perf_conv_dims *d)
{
  return (d->h + 2 * d->pad - d->r) / d->stride + 1;
}

int perf_conv_q(const perf_conv_dims *d)
{
  return (d->w + 2 * d->pad - d->s) / d->stride + 1;
}

/* The nominal FLOPs of "s": 2*N*K*P*Q*C*R*S (padding taps included) or 2*M*N*K. */
double perf_shape_flops(const perf_shape *s)
{
  if (s->kind == PERF_GEMM)
    return 2.0 * s->gemm.m * s->gemm.n * (double)s->gemm.k;
  const perf_conv_dims *d = &s->conv;
  return 2.0 * d->n * d->k * (double)perf_conv_p(d) * perf_conv_q(d) * d->c * d->r * d->s;
}

/* Elements of the first input: I[N,C,H,W] or A[M,K]. */
size_t perf_shape_in0_size(const perf_shape *s)
{
  if (s->kind == PERF_GEMM)
    return (size_t)s->gemm.m * s->gemm.k;
  return (size_t)s->conv.n * s->conv.c * s->conv.h * s->conv.w;
}

/* Elements of the second input: Wt[K,C,R,S] or B[K,N]. */
size_t perf_shape_in1_size(const perf_shape *s)
{
  if (s->kind == PERF_GEMM)
    return (size_t)s->gemm.k * s->gemm.n;
  return (size_t)s->conv.k * s->conv.c * s->conv.r * s->conv.s;
}

/* Elements of the output: O[N,K,P,Q] or C[M,N]. */
size_t perf_shape_out_size(const perf_shape *s)
{
  if (s->kind == PERF_GEMM)
    return (size_t)s->gemm.m * s->gemm.n;
  const perf_conv_dims *d = &s->conv;
  return (size_t)d->n * d->k * perf_conv_p(d) * perf_conv_q(d);
}

/* Does the output shape brick's header declares for "s" match the table?
 * Return NULL if so, else a message. */
const char *perf_shape_check_dims(const perf_shape *s)
{
  const int64_t *o = s->out_dims;
  if (s->kind == PERF_GEMM)
    return o[0] == s->gemm.m && o[1] == s->gemm.n ? NULL : "output dims differ from the table";
  const perf_conv_dims *d = &s->conv;
  if (o[0] != d->n || o[1] != d->k || o[2] != perf_conv_p(d) || o[3] != perf_conv_q(d))
    return "output dims differ from the table";
  return NULL;
}

/* A 64-byte aligned block of at least "bytes" (and at least 64) bytes; exits when out of memory. */
void *perf_alloc(size_t bytes)
{
  void *p = aligned_alloc(64, (bytes + 127) / 64 * 64);
  if (!p) {
    fprintf(stderr, "bench_perf: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

/* Fill "x" with "n" values in [-0.5, 0.5) from "seed". */
void perf_fill(float *x, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
  }
}

void perf_fill_nan(float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    x[i] = NAN;
}

struct perf_sample {
  int count;
  size_t *index; /* output element */
  double *ref;   /* its exact value */
  double maxref;
};

/* Output element "idx" of the convolution "d", in double. */
static double conv_element(const perf_conv_dims *d, const float *in, const float *wt, size_t idx)
{
  const int P = perf_conv_p(d), Q = perf_conv_q(d);
  const int q = (int)(idx % Q), p = (int)(idx / Q % P);
  const int k = (int)(idx / Q / P % d->k), n = (int)(idx / Q / P / d->k);
  double acc = 0;
  for (int c = 0; c < d->c; c++)
    for (int r = 0; r < d->r; r++) {
      const int h = d->stride * p + r - d->pad;
      if (h < 0 || h >= d->h)
        continue;
      const float *irow = in + (((size_t)n * d->c + c) * d->h + h) * d->w;
      const float *wrow = wt + (((size_t)k * d->c + c) * d->r + r) * d->s;
      for (int s = 0; s < d->s; s++) {
        const int w = d->stride * q + s - d->pad;
        if (w >= 0 && w < d->w)
          acc += (double)irow[w] * (double)wrow[s];
      }
    }
  return acc;
}

/* Output element "idx" of the GEMM "g", in double. */
static double gemm_element(const perf_gemm_dims *g, const float *a, const float *b, size_t idx)
{
  const size_t i = idx / g->n, j = idx % g->n;
  double acc = 0;
  for (int k = 0; k < g->k; k++)
    acc += (double)a[i * g->k + k] * (double)b[g->bt ? j * g->k + k : (size_t)k * g->n + j];
  return acc;
}

/* Pick "count" output elements of "s" (all of them if there are fewer) with
 * "seed" and compute their exact values from "in0" and "in1". */
perf_sample *perf_sample_new(const perf_shape *s, const float *in0, const float *in1, int count,
                             unsigned seed)
{
  const size_t total = perf_shape_out_size(s);
  perf_sample *smp = calloc(1, sizeof *smp);
  smp->count = total < (size_t)count ? (int)total : count;
  smp->index = malloc((size_t)smp->count * sizeof *smp->index);
  smp->ref = malloc((size_t)smp->count * sizeof *smp->ref);
  for (int i = 0; i < smp->count; i++) {
    seed = seed * 1664525u + 1013904223u;
    size_t idx = (size_t)smp->count == total ? (size_t)i
                 : i == 0                     ? 0
                 : i == 1                     ? total - 1
                                              : ((size_t)seed << 16 ^ (seed >> 8)) % total;
    smp->index[i] = idx;
    smp->ref[i] = s->kind == PERF_CONV ? conv_element(&s->conv, in0, in1, idx)
                                       : gemm_element(&s->gemm, in0, in1, idx);
    smp->maxref = fmax(smp->maxref, fabs(smp->ref[i]));
  }
  return smp;
}

/* max|out - ref| / max|ref| over the sampled elements of "out"; INFINITY when
 * one of them is not a number. */
double perf_sample_error(const perf_sample *smp, const float *out)
{
  double maxerr = 0;
  for (int i = 0; i < smp->count; i++) {
    const double e = fabs((double)out[smp->index[i]] - smp->ref[i]);
    if (!(e <= HUGE_VAL))
      return INFINITY;
    maxerr = fmax(maxerr, e);
  }
  return maxerr / (smp->maxref > 0 ? smp->maxref : 1e-30);
}

void perf_sample_free(perf_sample *smp)
{
  if (!smp)
    return;
  free(smp->index);
  free(smp->ref);
  free(smp);
}
