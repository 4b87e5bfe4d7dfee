/* The code of one register block: nvec vectors of C along M by n columns.
 *
 *   acc = beta ? C : 0                       (masked load for the M tail)
 *   for b < batch:                           (acc are phi values)
 *     A_b, B_b from the batch mode; A_b+1, B_b+1 if prefetching the batch
 *     with implicit padding (pad_q): the lanes of each vector inside the image
 *     for k < K step kunroll:                (acc are phi values again)
 *       a[v] = A_b[m0 + v*vlen + k*lda]      (vector loads, masked tail or padding)
 *       prefetch B_b[k*ldb_k + (n0+n+j)*ldb_n], j < n, if prefetching rows
 *       for j < n (with skipped column taps, the block's columns of b's tap):
 *                  s = splat(B_b[k*ldb_k + (n0+j)*ldb_n])
 *                  acc[v][j] = fma(a[v], s, acc[v][j])
 *     the K % kunroll remaining steps, straight
 *   acc = epilogue(acc); C = acc             (masked store for the M tail)
 *
 * A block of fewer than KSPLIT_ACC accumulators (M <= 32 with N = 1, say)
 * would wait for the FMA latency at every K step; it gets "ksplit" sets of
 * accumulators instead, K step k adding into set k mod ksplit, summed before
 * the epilogue (a 16 x 1 x 4096 GEMV: one dependent chain became 8).
 *
 * Broadcasts are a scalar load + insertelement + zero shufflevector, which
 * LLVM turns into vbroadcastss or an embedded {1to16} operand.  Nothing reads
 * past the ends of the pointer arrays or offset tables: the prefetch address
 * of the last batch step is the last block again.
 */
#include <stdbool.h>

#include "brg_private.h"

/* Independent accumulators that keep the FMA pipes busy: 2 pipes x 4 cycles
 * of latency on the AVX-512 and AVX2 machines brick targets. */
#define KSPLIT_ACC 8

/* Everything a K step needs to find its operands. */
typedef struct kptrs {
  LLVMValueRef ab, bb; /* &A_b[m0] and &B_b[n0*ldb_n]: the block's corner */
  LLVMValueRef an, bn; /* the same in A_b+1 and B_b+1 (prefetch only), or NULL */
  LLVMValueRef mask[BRG_MAX_VEC]; /* implicit padding: the lanes of A_b's vectors to load */
  int jlo, jhi;                   /* the block's columns that add A_b x B_b (col_period) */
} kptrs;

/* A vector mask with the first "lanes" of "cg->vlen" lanes set. */
static LLVMValueRef tail_mask(brg_cg *cg, int lanes)
{
  LLVMValueRef bits[64];
  for (int i = 0; i < cg->vlen; i++)
    bits[i] = LLVMConstInt(cg->i1, i < lanes, 0);
  return LLVMConstVector(bits, (unsigned)cg->vlen);
}

/* Element "idx" (i64) of float array "base".  With implicit padding A_b may point outside
 * its buffer, so the address is not "inbounds" there. */
static LLVMValueRef elem_ptr(brg_cg *cg, LLVMValueRef base, LLVMValueRef idx)
{
  if (cg->d->pad_q)
    return LLVMBuildGEP2(cg->bld, cg->f32, base, &idx, 1, "");
  return LLVMBuildInBoundsGEP2(cg->bld, cg->f32, base, &idx, 1, "");
}

/* Load a vector with "lanes" valid lanes from "p" (masked when partial). */
static LLVMValueRef load_vec(brg_cg *cg, LLVMValueRef p, int lanes)
{
  if (lanes == cg->vlen) {
    LLVMValueRef v = LLVMBuildLoad2(cg->bld, cg->vty, p, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMValueRef args[4] = {p, LLVMConstInt(cg->i32, 4, 0), tail_mask(cg, lanes),
                          LLVMConstNull(cg->vty)};
  return LLVMBuildCall2(cg->bld, cg->mload_ty, cg->mload, args, 4, "");
}

/* Load the lanes "mask" (a vector of i1) of a vector from "p", the others 0. */
static LLVMValueRef load_masked(brg_cg *cg, LLVMValueRef p, LLVMValueRef mask)
{
  LLVMValueRef args[4] = {p, LLVMConstInt(cg->i32, 4, 0), mask, LLVMConstNull(cg->vty)};
  return LLVMBuildCall2(cg->bld, cg->mload_ty, cg->mload, args, 4, "");
}

/* i32 "x" splat over a vector of vlen lanes. */
static LLVMValueRef splat_i32(brg_cg *cg, LLVMValueRef x)
{
  LLVMTypeRef vi = LLVMVectorType(cg->i32, (unsigned)cg->vlen);
  LLVMValueRef v = LLVMBuildInsertElement(cg->bld, LLVMGetPoison(vi), x, LLVMConstInt(cg->i32, 0, 0), "");
  return LLVMBuildShuffleVector(cg->bld, v, LLVMGetPoison(vi), LLVMConstNull(vi), "");
}

/* Implicit padding (brg_desc.pad_q): the pixel of each lane of the block's vectors and its
 * column in the image, once per block (the division is the costly part). */
static void pad_pixels(brg_cg *cg, brg_blk *blk)
{
  LLVMValueRef qv = splat_i32(cg, LLVMConstInt(cg->i32, (unsigned long long)cg->d->pad_q, 0));
  LLVMValueRef first = LLVMBuildTrunc(cg->bld, LLVMBuildAdd(cg->bld, cg->pad_m, blk->m0, ""), cg->i32, "");
  LLVMValueRef iota[64];
  for (int i = 0; i < cg->vlen; i++)
    iota[i] = LLVMConstInt(cg->i32, (unsigned long long)i, 0);
  LLVMValueRef lanes = LLVMConstVector(iota, (unsigned)cg->vlen);
  for (int v = 0; v < blk->nvec; v++) {
    LLVMValueRef start = LLVMBuildAdd(cg->bld, first, LLVMConstInt(cg->i32, (unsigned long long)v * (unsigned)cg->vlen, 0), "");
    blk->pix[v] = LLVMBuildAdd(cg->bld, splat_i32(cg, start), lanes, "pix");
    blk->col[v] = LLVMBuildURem(cg->bld, blk->pix[v], qv, "col");
  }
}

void brg_pad_shift(brg_cg *cg, LLVMValueRef b, LLVMValueRef sh[2])
{
  LLVMValueRef i2 = LLVMBuildMul(cg->bld, b, brg_i64(cg, 2), "");
  for (int t = 0; t < 2; t++) {
    LLVMValueRef idx = LLVMBuildAdd(cg->bld, i2, brg_i64(cg, t), "");
    sh[t] = LLVMBuildLoad2(cg->bld, cg->i32,
                           LLVMBuildInBoundsGEP2(cg->bld, cg->i32, cg->pad_shift, &idx, 1, ""), "");
    LLVMSetAlignment(sh[t], 4);
  }
}

/* Implicit padding: in "mask", for each vector of block "blk", the lanes whose pixel, shifted
 * as batch element "b" says (pad_shift), lies inside the image (and inside the tile: the M
 * tail's lanes are off).  Unsigned compares: a shifted row or column below 0 wraps past the
 * bound. */
static void pad_masks(brg_cg *cg, const brg_blk *blk, LLVMValueRef b, LLVMValueRef *mask)
{
  const brg_desc *d = cg->d;
  LLVMValueRef sh[2];
  brg_pad_shift(cg, b, sh);
  LLVMValueRef q = LLVMConstInt(cg->i32, (unsigned long long)d->pad_q, 0);
  LLVMValueRef rowsh = splat_i32(cg, LLVMBuildMul(cg->bld, sh[0], q, ""));
  LLVMValueRef colsh = splat_i32(cg, sh[1]);
  LLVMValueRef qv = splat_i32(cg, q);
  LLVMValueRef lenv = splat_i32(cg, LLVMConstInt(cg->i32, (unsigned long long)d->pad_len, 0));
  for (int v = 0; v < blk->nvec; v++) {
    LLVMValueRef rowok = LLVMBuildICmp(cg->bld, LLVMIntULT, LLVMBuildAdd(cg->bld, blk->pix[v], rowsh, ""), lenv, "");
    LLVMValueRef colok = LLVMBuildICmp(cg->bld, LLVMIntULT, LLVMBuildAdd(cg->bld, blk->col[v], colsh, ""), qv, "");
    mask[v] = LLVMBuildAnd(cg->bld, rowok, colok, "inside");
    if (v == blk->nvec - 1 && blk->tail < cg->vlen)
      mask[v] = LLVMBuildAnd(cg->bld, mask[v], tail_mask(cg, blk->tail), "");
  }
}

/* Store the "lanes" valid lanes of vector "v" to "p" (masked when partial). */
static void store_vec(brg_cg *cg, LLVMValueRef v, LLVMValueRef p, int lanes)
{
  if (lanes == cg->vlen) {
    LLVMSetAlignment(LLVMBuildStore(cg->bld, v, p), 4);
    return;
  }
  LLVMValueRef args[4] = {v, p, LLVMConstInt(cg->i32, 4, 0), tail_mask(cg, lanes)};
  LLVMBuildCall2(cg->bld, cg->mstore_ty, cg->mstore, args, 4, "");
}

/* The float at "p" splat over a vector. */
static LLVMValueRef load_splat(brg_cg *cg, LLVMValueRef p)
{
  LLVMValueRef s = LLVMBuildLoad2(cg->bld, cg->f32, p, "");
  LLVMSetAlignment(s, 4);
  LLVMValueRef v = LLVMBuildInsertElement(cg->bld, LLVMGetPoison(cg->vty), s,
                                          LLVMConstInt(cg->i32, 0, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)cg->vlen));
  return LLVMBuildShuffleVector(cg->bld, v, LLVMGetPoison(cg->vty), zeros, "bcast");
}

/* i64 "a" * "k" + "b", folded by the builder when constant. */
static LLVMValueRef mul_add(brg_cg *cg, LLVMValueRef a, int64_t k, LLVMValueRef b)
{
  return LLVMBuildAdd(cg->bld, LLVMBuildMul(cg->bld, a, brg_i64(cg, k), ""), b, "");
}

/* Prefetch element "idx" (i64) of float array "base" into all cache levels. */
static void prefetch(brg_cg *cg, LLVMValueRef base, LLVMValueRef idx)
{
  LLVMValueRef p = LLVMBuildGEP2(cg->bld, cg->f32, base, &idx, 1, "");
  LLVMValueRef args[4] = {p, LLVMConstInt(cg->i32, 0, 0), LLVMConstInt(cg->i32, 3, 0),
                          LLVMConstInt(cg->i32, 1, 0)};
  LLVMBuildCall2(cg->bld, cg->pf_ty, cg->pf, args, 4, "");
}

/* Prefetch, for K step "k", the next blocks' A column k (one line per vector)
 * and B element (k, n0 + k mod n): over n steps every column of the block. */
static void prefetch_next(brg_cg *cg, const brg_blk *blk, const kptrs *p, LLVMValueRef k,
                          LLVMValueRef acol)
{
  const brg_desc *d = cg->d;
  for (int v = 0; v < blk->nvec; v++)
    prefetch(cg, p->an, LLVMBuildAdd(cg->bld, acol, brg_i64(cg, (int64_t)v * cg->vlen), ""));
  LLVMValueRef j = LLVMBuildURem(cg->bld, k, brg_i64(cg, blk->n), "");
  prefetch(cg, p->bn, mul_add(cg, j, d->ldb_n, LLVMBuildMul(cg->bld, k, brg_i64(cg, d->ldb_k), "")));
}

/* Emit K step "k" (i64) of block "blk" on accumulators "acc". */
static void k_step(brg_cg *cg, const brg_blk *blk, const kptrs *p, LLVMValueRef k,
                   LLVMValueRef *acc)
{
  const brg_desc *d = cg->d;
  LLVMValueRef av[BRG_MAX_VEC];
  LLVMValueRef acol = LLVMBuildMul(cg->bld, k, brg_i64(cg, d->lda), "");
  for (int v = 0; v < blk->nvec; v++) {
    LLVMValueRef idx = LLVMBuildAdd(cg->bld, acol, brg_i64(cg, (int64_t)v * cg->vlen), "");
    LLVMValueRef ptr = elem_ptr(cg, p->ab, idx);
    av[v] = cg->d->pad_q ? load_masked(cg, ptr, p->mask[v])
                         : load_vec(cg, ptr, v == blk->nvec - 1 ? blk->tail : cg->vlen);
  }
  if (p->an)
    prefetch_next(cg, blk, p, k, acol);
  LLVMValueRef brow = LLVMBuildMul(cg->bld, k, brg_i64(cg, d->ldb_k), "");
  if (cg->plan.prefetch & BRG_PREFETCH_ROWS) /* the next register block's columns */
    for (int j = 0; j < blk->n; j++)
      prefetch(cg, p->bb, mul_add(cg, brg_i64(cg, blk->n + j), d->ldb_n, brow));
  for (int j = p->jlo; j < p->jhi; j++) {
    LLVMValueRef s = load_splat(cg, elem_ptr(cg, p->bb, mul_add(cg, brg_i64(cg, j), d->ldb_n, brow)));
    for (int v = 0; v < blk->nvec; v++) {
      LLVMValueRef *a = &acc[j * blk->nvec + v];
      LLVMValueRef args[3] = {av[v], s, *a};
      *a = LLVMBuildCall2(cg->bld, cg->fma_ty, cg->fma, args, 3, "acc");
    }
  }
}

/* Emit "count" straight K steps from "k0" (i64). */
static void k_steps(brg_cg *cg, const brg_blk *blk, const kptrs *p, LLVMValueRef k0, int count,
                    LLVMValueRef *acc)
{
  for (int u = 0; u < count; u++)
    k_step(cg, blk, p, LLVMBuildAdd(cg->bld, k0, brg_i64(cg, u), "k"),
           acc + (u % blk->ksplit) * blk->nvec * blk->n);
}

/* Emit the K loop (unrolled by the block's kunroll) and its remainder. */
static void k_loop(brg_cg *cg, const brg_blk *blk, const kptrs *p, LLVMValueRef *acc)
{
  int K = cg->d->K, u = blk->kunroll, iters = K / u, nacc = blk->nvec * blk->n * blk->ksplit;
  if (iters > 0) {
    brg_loop l;
    LLVMValueRef k = brg_loop_open(cg, &l, "k", brg_i64(cg, (int64_t)iters * u), u, nacc, acc);
    k_steps(cg, blk, p, k, u, acc);
    brg_loop_close(cg, &l, acc);
  }
  if (K % u)
    k_steps(cg, blk, p, brg_i64(cg, (int64_t)iters * u), K % u, acc);
}

/* Entry "idx" (i64) of the table or pointer array "base" of type "ty". */
static LLVMValueRef load_entry(brg_cg *cg, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx)
{
  LLVMValueRef v = LLVMBuildLoad2(cg->bld, ty, LLVMBuildInBoundsGEP2(cg->bld, ty, base, &idx, 1, ""), "");
  LLVMSetAlignment(v, 8);
  return v;
}

LLVMValueRef brg_block_ptr(brg_cg *cg, LLVMValueRef x, LLVMValueRef offs, int64_t stride,
                           LLVMValueRef b)
{
  switch (cg->d->mode) {
  case BRG_BATCH_ADDR:
    return load_entry(cg, cg->ptr, x, b);
  case BRG_BATCH_OFFSETS:
    return elem_ptr(cg, x, load_entry(cg, cg->i64, offs, b));
  default: {
    LLVMValueRef i = LLVMBuildMul(cg->bld, b, brg_i64(cg, stride), "");
    return LLVMBuildGEP2(cg->bld, cg->f32, x, &i, 1, "");
  }
  }
}

/* The corner of block "blk" in A block "x" and B block "y": &x[m0], &y[n0*ldb_n]. */
static void corners(brg_cg *cg, const brg_blk *blk, LLVMValueRef x, LLVMValueRef y,
                    LLVMValueRef *xc, LLVMValueRef *yc)
{
  LLVMValueRef boff = LLVMBuildMul(cg->bld, blk->n0, brg_i64(cg, cg->d->ldb_n), "");
  *xc = LLVMBuildGEP2(cg->bld, cg->f32, x, (LLVMValueRef *)&blk->m0, 1, "");
  *yc = LLVMBuildGEP2(cg->bld, cg->f32, y, &boff, 1, "");
}

/* Fill "p" for batch index "b" of block "blk": the block corners in A_b, B_b
 * and, when prefetching, in A_b+1, B_b+1. */
static void batch_ptrs(brg_cg *cg, const brg_blk *blk, LLVMValueRef b, kptrs *p)
{
  const brg_desc *d = cg->d;
  corners(cg, blk, brg_block_ptr(cg, cg->a, cg->offs_a, d->stride_a, b),
          brg_block_ptr(cg, cg->b, cg->offs_b, d->stride_b, b), &p->ab, &p->bb);
  if (d->pad_q)
    pad_masks(cg, blk, b, p->mask);
  p->jlo = 0;
  p->jhi = blk->n;
  p->an = p->bn = NULL;
  if (!(cg->plan.prefetch & BRG_PREFETCH_BATCH))
    return;
  LLVMValueRef next = LLVMBuildAdd(cg->bld, b, brg_i64(cg, 1), "");
  if (d->mode != BRG_BATCH_STRIDE) {
    LLVMValueRef in = LLVMBuildICmp(cg->bld, LLVMIntSLT, next, cg->batch, "");
    next = LLVMBuildSelect(cg->bld, in, next, b, "");
  }
  corners(cg, blk, brg_block_ptr(cg, cg->a, cg->offs_a, d->stride_a, next),
          brg_block_ptr(cg, cg->b, cg->offs_b, d->stride_b, next), &p->an, &p->bn);
}

/* Emit the batch loop around the K loop; "acc" holds the values before it
 * on entry and after it on return.  With skipped column taps that touch this block, the loop
 * steps over whole periods of taps, each with its own K loop over its own columns. */
static void batch_loop(brg_cg *cg, const brg_blk *blk, LLVMValueRef *acc)
{
  int period = blk->tap_lo ? cg->d->col_period : 0;
  const int *jlo = blk->tap_lo, *jhi = blk->tap_hi;
  bool skips = false;
  for (int t = 0; t < period; t++)
    skips |= jlo[t] > 0 || jhi[t] < blk->n;
  if (!skips)
    period = 1;
  brg_loop l;
  LLVMValueRef b0 = brg_loop_open(cg, &l, "b", cg->batch, period, blk->nvec * blk->n * blk->ksplit, acc);
  for (int t = 0; t < period; t++) {
    if (skips && jlo[t] == jhi[t])
      continue;
    kptrs p;
    batch_ptrs(cg, blk, LLVMBuildAdd(cg->bld, b0, brg_i64(cg, t), "b"), &p);
    if (skips) {
      p.jlo = jlo[t];
      p.jhi = jhi[t];
    }
    k_loop(cg, blk, &p, acc);
  }
  brg_loop_close(cg, &l, acc);
}

/* Address of vector "v" of column "j" from the block's corner "cc" in C. */
static LLVMValueRef c_ptr(brg_cg *cg, LLVMValueRef cc, int v, int j)
{
  return elem_ptr(cg, cc, brg_i64(cg, (int64_t)j * cg->d->ldc + (int64_t)v * cg->vlen));
}

/* Lanes of vector "v" of "blk". */
static int lanes(brg_cg *cg, const brg_blk *blk, int v)
{
  return v == blk->nvec - 1 ? blk->tail : cg->vlen;
}

/* Apply the epilogue (bias, then ReLU) to accumulator "a" of vector "v" of
 * column "j" of "blk" and return it.  Bias vectors are loaded at each use
 * (from L1) rather than held in registers through the whole store loop. */
static LLVMValueRef epilogue(brg_cg *cg, const brg_blk *blk, int v, int j, LLVMValueRef a)
{
  unsigned e = cg->d->epilogue;
  if (e & BRG_EPI_BIAS_M) {
    LLVMValueRef row = LLVMBuildAdd(cg->bld, blk->m0, brg_i64(cg, (int64_t)v * cg->vlen), "");
    a = LLVMBuildFAdd(cg->bld, a, load_vec(cg, elem_ptr(cg, cg->bias, row), lanes(cg, blk, v)), "");
  }
  if (e & BRG_EPI_BIAS_N) {
    LLVMValueRef col = LLVMBuildAdd(cg->bld, blk->n0, brg_i64(cg, j), "");
    a = LLVMBuildFAdd(cg->bld, a, load_splat(cg, elem_ptr(cg, cg->bias, col)), "");
  }
  if (e & BRG_EPI_RELU) {
    LLVMValueRef zero = LLVMConstNull(cg->vty);
    a = LLVMBuildSelect(cg->bld, LLVMBuildFCmp(cg->bld, LLVMRealOGT, a, zero, ""), a, zero, "relu");
  }
  return a;
}

/* The K split of block "b": enough accumulator sets for KSPLIT_ACC
 * accumulators, as many as the "nregs" vector registers hold besides the A
 * vectors, a broadcast, a tail mask and the epilogue's operands (what n_max
 * in desc.c leaves free), at most one per K step; the unroll becomes a
 * multiple of the split, so that each step keeps its set. */
static void plan_ksplit(brg_blk *b, int K, int nregs)
{
  int nacc = b->nvec * b->n, split = (KSPLIT_ACC + nacc - 1) / nacc;
  if (split > K)
    split = K;
  while (split > 1 && nacc * split + b->nvec + 3 + nregs / 16 > nregs)
    split--;
  if (split <= 1)
    return;
  b->ksplit = split;
  if (b->kunroll % split)
    b->kunroll = (b->kunroll + split - 1) / split * split;
  if (b->kunroll > K)
    b->kunroll = K;
}

void brg_block_emit(brg_cg *cg, const brg_blk *blk_in)
{
  brg_blk b = *blk_in, *blk = &b;
  plan_ksplit(blk, cg->d->K, cg->plan.info.nregs);
  int nacc = blk->nvec * blk->n;
  LLVMValueRef acc[BRG_MAX_ACC];
  LLVMValueRef cc = elem_ptr(cg, cg->c, mul_add(cg, blk->n0, cg->d->ldc, blk->m0));
  for (int j = 0; j < blk->n; j++)
    for (int v = 0; v < blk->nvec; v++)
      acc[j * blk->nvec + v] = cg->d->beta ? load_vec(cg, c_ptr(cg, cc, v, j), lanes(cg, blk, v))
                                           : LLVMConstNull(cg->vty);
  for (int i = nacc; i < nacc * blk->ksplit; i++)
    acc[i] = LLVMConstNull(cg->vty);
  if (cg->d->pad_q)
    pad_pixels(cg, blk);
  batch_loop(cg, blk, acc);
  for (int w = blk->ksplit; w > 1; w = (w + 1) / 2) /* pairwise: set i += set i + h */
    for (int i = 0; i + (w + 1) / 2 < w; i++)
      for (int a = 0; a < nacc; a++)
        acc[i * nacc + a] = LLVMBuildFAdd(cg->bld, acc[i * nacc + a],
                                          acc[(i + (w + 1) / 2) * nacc + a], "ksum");
  for (int j = 0; j < blk->n; j++)
    for (int v = 0; v < blk->nvec; v++)
      store_vec(cg, epilogue(cg, blk, v, j, acc[j * blk->nvec + v]), c_ptr(cg, cc, v, j),
                lanes(cg, blk, v));
}
