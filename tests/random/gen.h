/*
 * Random kernels for the differential tests: .bk source text of one kernel drawn from a case
 * class (matmul-like with random layouts, batched, conv2d NCHW with random stride, padding,
 * dilation and kernel size, backward data, weight update, FC + bias + ReLU, elementwise and
 * reductions, multi-statement MLP, ...). Every case stays under about 2 MFLOP.
 */
#ifndef BRICK_TESTS_GEN_H
#define BRICK_TESTS_GEN_H

#include <stdint.h>

#define GEN_MAX_FLOPS 2.0e6

typedef struct gen_class {
  const char *name;
  /* Append the kernel "NAME" to "out" (a bk_strbuf *), drawing from "rng". */
  void (*gen)(void *out, uint64_t *rng);
} gen_class;

extern const gen_class gen_classes[];
extern const int gen_nclasses;

#endif
