/*
 * Checking a compiled kernel's outputs against the reference interpreter. Small kernels are
 * interpreted in full; big ones, when each output element can be computed on its own, on a
 * random sample of elements, each exact (the interpreter is naive: a 1024^3 matmul takes it
 * tens of seconds, a sample of a thousand elements milliseconds).
 */
#include "api_private.h"

#include <math.h>
#include <stdlib.h>

static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Update running max|x - ref| and max|ref| with one element. The reference, computed in
 * double, is first rounded to f32 as the kernel's result is: a final result past f32's range
 * is +-inf on both sides (then equal), and only finite references count in max|ref|. (An
 * intermediate value that overflows f32 but not double still differs.) */
static void account(double x, double ref, double *diff, double *mag) {
  double r = (double)(float)ref, d;
  if (isnan(x) || isnan(r))
    d = isnan(x) == isnan(r) ? 0 : INFINITY;
  else if (isinf(x) || isinf(r))
    d = x == r ? 0 : INFINITY;
  else
    d = fabs(x - r);
  *diff = d > *diff ? d : *diff;
  if (isfinite(r) && fabs(r) > *mag)
    *mag = fabs(r);
}

static double ratio(double diff, double mag) { return mag > 0 ? diff / mag : diff; }

static int check_full(const ir_kernel *k, float *const *args, double *err) {
  int no = k->noutputs;
  double **out = calloc((size_t)no, sizeof(double *));
  int st = out ? 0 : -1;
  for (int i = 0; i < no && st == 0; i++)
    if (!(out[i] = malloc(sizeof(double) * (size_t)k->params.data[k->ninputs + i]->nelems)))
      st = -1;
  if (st == 0)
    st = ir_interp_run_double(k, args, out);
  for (int i = 0; i < no && st == 0; i++) {
    double diff = 0, mag = 0;
    const float *x = args[k->ninputs + i];
    for (int64_t e = 0; e < k->params.data[k->ninputs + i]->nelems; e++)
      account(x[e], out[i][e], &diff, &mag);
    *err = fmax(*err, ratio(diff, mag));
  }
  for (int i = 0; out && i < no; i++)
    free(out[i]);
  free(out);
  return st;
}

static void check_sampled(ir_sampler *sm, const ir_kernel *k, float *const *args, int samples,
                          uint64_t seed, double *err) {
  for (int p = k->ninputs; p < k->params.len; p++) {
    int64_t n = k->params.data[p]->nelems;
    double diff = 0, mag = 0;
    for (int i = 0; i < samples + 2; i++) {
      int64_t e = i == 0 ? 0 : i == 1 ? n - 1 : (int64_t)(next(&seed) % (uint64_t)n);
      account(args[p][e], ir_sampler_element(sm, p, e), &diff, &mag);
    }
    *err = fmax(*err, ratio(diff, mag));
  }
}

int brick_kernel_check(brick_ctx *ctx, const brick_program *prog, int kernel, float *const *args,
                       double full_flops, int samples, uint64_t seed, double *err, int *sampled) {
  brick_begin(ctx);
  *err = 0;
  if (sampled)
    *sampled = 0;
  if (brick_check_kernel(ctx, prog, kernel, false) != BRICK_OK)
    return BRICK_ERR_USAGE;
  const ir_kernel *k = prog->ir->kernels.data[kernel];
  if (sampled)
    *sampled = 0;
  if (k->flops > full_flops && samples > 0) {
    ir_sampler *sm = ir_sampler_new(k, args);
    bool can = sm != NULL;
    for (int p = k->ninputs; can && p < k->params.len; p++)
      can = ir_sampler_can(sm, p);
    if (can) {
      check_sampled(sm, k, args, samples, seed, err);
      ir_sampler_free(sm);
      if (sampled)
        *sampled = 1;
      return BRICK_OK;
    }
    ir_sampler_free(sm);
  }
  if (check_full(k, args, err) != 0)
    return brick_fail(ctx, BRICK_ERR_INTERNAL, "out of memory in the interpreter");
  return BRICK_OK;
}
