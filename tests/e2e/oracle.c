/* See oracle.h. */
#include "oracle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void oracle_fill(float *x, int64_t n, uint64_t *seed) {
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)((double)(next(seed) >> 11) * 0x1p-52 - 1.0);
}

void oracle_fill_nan(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    x[i] = NAN;
}

double oracle_error(const float *x, const double *ref, int64_t n) {
  double err = 0, mag = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(ref[i]))
      continue;
    if (!isfinite(x[i]))
      return INFINITY;
    double d = fabs((double)x[i] - ref[i]);
    err = d > err ? d : err;
    mag = fabs(ref[i]) > mag ? fabs(ref[i]) : mag;
  }
  return mag > 0 ? err / mag : err;
}

double **oracle_reference(const ir_kernel *k, float *const *args) {
  double **ref = calloc((size_t)k->noutputs + 1, sizeof(double *));
  for (int o = 0; o < k->noutputs; o++)
    ref[o] = malloc(sizeof(double) * (size_t)k->params.data[k->ninputs + o]->nelems);
  if (ir_interp_run_double(k, args, ref) != 0) {
    oracle_reference_free(k, ref);
    return NULL;
  }
  return ref;
}

void oracle_reference_free(const ir_kernel *k, double **ref) {
  for (int o = 0; ref && o < k->noutputs; o++)
    free(ref[o]);
  free(ref);
}

double oracle_check(const ir_kernel *k, float *const *args, double *const *ref, const char *what) {
  double worst = 0;
  for (int o = 0; o < k->noutputs; o++) {
    const ir_tensor *t = k->params.data[k->ninputs + o];
    double e = oracle_error(args[k->ninputs + o], ref[o], t->nelems);
    if (!(e <= ORACLE_TOLERANCE))
      fprintf(stderr, "%s: output '%s' differs from the interpreter: max|x - ref| / max|ref| = "
              "%.3g (tolerance %g)\n", what, t->name, e, ORACLE_TOLERANCE);
    worst = e > worst || isnan(e) ? e : worst;
  }
  return worst;
}
