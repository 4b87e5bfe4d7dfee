/* Test helpers for brgemm_intrin: guarded buffers and one checked call.
 *
 * A test case is a descriptor, a run-time batch count and a seed.  Its data
 * lives in buffers with PROT_NONE pages right after (or right before) them, so
 * any out-of-bounds access of the generated code faults; C is pre-filled with
 * NaN when beta = 0, so unwritten elements show.  The result is compared with
 * a naive loop accumulating in double.
 */
#ifndef BRICK_TEST_BRG_CHECK_H
#define BRICK_TEST_BRG_CHECK_H

#include <stddef.h>

#include "brgemm.h"

/* One call to check. */
typedef struct brg_case {
  brg_desc d;
  int batch;      /* run-time batch count (>= 0) */
  unsigned seed;  /* data and layout */
  int at_start;   /* 1: buffers touch the guard page before them, else the one after */
  /* implicit padding (d.pad_q > 0, offset mode): A is an image of d.pad_len pixels per
   * plane, K planes d.lda apart; the tile's row 0 is pixel pad_m, and batch element b
   * reads it shifted by shift[b][0] rows and shift[b][1] columns (0 outside the image) */
  int64_t pad_m;
  int shift[64][2];
} brg_case;

/* Run "fn" (compiled from "c->d") on fresh guarded data for case "c"; return
 * 0 if the result matches the reference, else -1 with a message in "msg". */
int brg_case_run(const brg_case *c, brg_fn fn, char *msg, size_t n);

/* Relative error tolerance for a reduction of "terms" products. */
double brg_case_tol(long terms);

/* Is BRICK_TEST_REDUCED set (sanitizer builds run a subset)? */
int brg_test_reduced(void);

#endif
