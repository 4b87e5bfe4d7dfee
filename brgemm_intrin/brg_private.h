/* Internal header of brgemm_intrin, one section per .c file.
 *
 * desc.c    descriptors: defaults, validation, mangled names, ISA facts,
 *           and the register-blocking plan (brg_plan) chosen from them.
 * emit.c    the function: signature, attributes, intrinsics, the loops over
 *           register blocks, loop metadata.
 * block.c   one register block: C in, batch loop, K loop, epilogue, C out.
 * dotrows.c the rows of C computed as dot products (brg_desc.dot_rows).
 * jit.c     the standalone ORC LLJIT session.
 */
#ifndef BRICK_BRG_PRIVATE_H
#define BRICK_BRG_PRIVATE_H

#include "brgemm.h"

/* Largest number of accumulators / vectors in one register block. */
#define BRG_MAX_ACC 64
#define BRG_MAX_VEC 8
#define BRG_MAX_N 32

/* ---- desc.c ---- */

/* A run of equal register-block rows along M: "count" chunks of "nvec"
 * vectors starting at element "m0", the chunks "vlen*nvec" apart.  "tail" is
 * the number of valid lanes of the last vector of each chunk (vlen if full). */
typedef struct brg_mgroup {
  int m0, nvec, count, tail;
} brg_mgroup;

/* A run of "count" equal register-block columns of width "n" from column "n0". */
typedef struct brg_ngroup {
  int n0, n, count;
} brg_ngroup;

/* The register blocking of one M group: the N groups that cover 0..N. */
typedef struct brg_mplan {
  brg_mgroup m;
  int nng;
  brg_ngroup ng[2];
  int kunroll;          /* K steps per K-loop iteration (== K: no K loop) */
} brg_mplan;

/* The whole blocking of a specialization. */
typedef struct brg_plan {
  brg_isa_info info;
  int nmp;              /* number of M groups */
  brg_mplan mp[3];
  int prefetch;         /* brg_prefetch flags (brg_desc.prefetch) */
} brg_plan;

/* Choose the register blocking of the valid descriptor "d". */
brg_plan brg_plan_make(const brg_desc *d);

/* ---- block.c ---- */

/* Code-generation state of one function. */
typedef struct brg_cg {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef bld;
  LLVMValueRef fn;
  const brg_desc *d;
  brg_plan plan;
  int vlen;
  LLVMTypeRef f32, i1, i32, i64, ptr, vty;
  LLVMValueRef a, b, c, batch, bias, offs_a, offs_b, pad_m, pad_shift; /* the arguments */
  LLVMTypeRef fma_ty, mload_ty, mstore_ty, pf_ty;    /* intrinsic types */
  LLVMValueRef fma, mload, mstore, pf;               /* intrinsic declarations */
  LLVMValueRef dot_buf, dot_len; /* dot_rows: A's rows in B's order, batch*K (i64) */
} brg_cg;

/* One register block: "nvec" vectors (the last with "tail" valid lanes) by
 * "n" columns, at run-time element row "m0" and column "n0" (i64 values),
 * its K loop unrolled "kunroll" times.  brg_block_emit sets "ksplit": the
 * number of accumulator sets that consecutive K steps rotate through. */
typedef struct brg_blk {
  int nvec, tail, n, kunroll, ksplit;
  LLVMValueRef m0, n0;
  LLVMValueRef pix[BRG_MAX_VEC], col[BRG_MAX_VEC]; /* implicit padding (block.c) */
  /* Skipped column taps (brg_desc.col_period): batch elements of tap t add into the block's
   * columns [tap_lo[t], tap_hi[t]) only; NULL: every tap into every column. */
  const int *tap_lo, *tap_hi;
} brg_blk;

/* Emit the code of register block "blk" at the builder's position. */
void brg_block_emit(brg_cg *cg, const brg_blk *blk);

/* Implicit padding (brg_desc.pad_q): the row and column shifts (i32) of batch element "b"
 * (i64), from the pad_shift argument. */
void brg_pad_shift(brg_cg *cg, LLVMValueRef b, LLVMValueRef sh[2]);

/* A_b or B_b (a pointer) for batch index "b" (i64) from base "x" and offset
 * table "offs" or "stride", as the batch mode says. */
LLVMValueRef brg_block_ptr(brg_cg *cg, LLVMValueRef x, LLVMValueRef offs, int64_t stride,
                           LLVMValueRef b);

/* ---- dotrows.c ---- */

/* At the function's entry: copy the dot_rows last rows of A over the batch
 * into a stack buffer in the order of B's rows (brg_desc.dot_rows); sets
 * cg->dot_buf and cg->dot_len. */
void brg_dot_gather(brg_cg *cg);

/* The dot-product rows of C for the "n" columns from column "n0" (i64). */
void brg_dot_columns(brg_cg *cg, LLVMValueRef n0, int n);

/* A counted loop "for (iv = 0; iv < count; iv += step)" that carries up to
 * BRG_MAX_ACC values (accumulators) from iteration to iteration.  Every loop
 * of a body is one: over register blocks, the batch, K, the dot rows. */
typedef struct brg_loop {
  LLVMBasicBlockRef pre, head, exit; /* head NULL: a single iteration, no loop */
  LLVMValueRef iv, count;
  int64_t step;
  int n;
  LLVMValueRef init[BRG_MAX_ACC], phi[BRG_MAX_ACC];
} brg_loop;

/* Open loop "l" of i64 "count" at the builder's position (named "name" in the
 * IR); return its induction variable.  A constant count must be > 0; one of
 * at most "step" is a single iteration: no loop, iv 0.  A count that is not
 * constant may be <= 0: the loop is then skipped.  The "n" values "v" become the
 * loop's phis (v is updated). */
LLVMValueRef brg_loop_open(brg_cg *cg, brg_loop *l, const char *name, LLVMValueRef count,
                           int64_t step, int n, LLVMValueRef *v);

/* Close loop "l"; "v" holds the values at the end of an iteration and, on
 * return, the values after the loop (the initial ones when it was skipped).
 * The back edge is marked `llvm.loop.unroll.disable`: the loops are unrolled
 * as the plan says, and a module pipeline such as default<O3> that unrolled
 * them further would make LLVM spill accumulators. */
void brg_loop_close(brg_cg *cg, brg_loop *l, LLVMValueRef *v);

/* i64 constant "v" in "cg"'s context. */
LLVMValueRef brg_i64(brg_cg *cg, int64_t v);

#endif
