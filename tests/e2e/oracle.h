/*
 * The oracle side of the compiled-code tests (e2e and random): seeded inputs, NaN-filled
 * outputs, the reference interpreter (ir_interp_run_double), and the error of a result as
 * DESIGN.md defines it: per output tensor, max|x - ref| / max|ref|.
 */
#ifndef BRICK_TESTS_ORACLE_H
#define BRICK_TESTS_ORACLE_H

#include "ir.h"

#define ORACLE_TOLERANCE 1e-4

/* Uniform values in [-1, 1) from "seed" (splitmix64). */
void oracle_fill(float *x, int64_t n, uint64_t *seed);
void oracle_fill_nan(float *x, int64_t n);
/* max|x - ref| / max|ref| over "n" elements (max|x - ref| when ref is all zero); INFINITY when
 * some x is NaN or infinite while its reference is finite. */
double oracle_error(const float *x, const double *ref, int64_t n);

/* The reference outputs of "k" for the parameters "args" (inputs read; outputs untouched):
 * one malloc'ed array per output, in order. */
double **oracle_reference(const ir_kernel *k, float *const *args);
void oracle_reference_free(const ir_kernel *k, double **ref);

/* Compare every output of "k" in "args" with "ref"; print a line per failing output to
 * stderr prefixed by "what", and return the largest error. */
double oracle_check(const ir_kernel *k, float *const *args, double *const *ref, const char *what);

#endif
