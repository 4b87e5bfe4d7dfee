/* The kernels of one compiled example, as the generated glue (glue.cmake) lists them. */
#ifndef BRICK_TESTS_E2E_H
#define BRICK_TESTS_E2E_H

#include <stdint.h>

typedef struct e2e_kernel {
  const char *name;
  int nparams;
  void (*call)(float *const *args);              /* NAME(args...) */
  void (*call_ws)(float *const *args, void *ws); /* NAME_ws(args..., ws) */
  const uint64_t *workspace_bytes;
  const double *flops;
} e2e_kernel;

/* Terminated by an entry with a NULL name. */
extern const e2e_kernel e2e_kernels[];

#endif
