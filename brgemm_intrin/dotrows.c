/* The last rows of a tile as dot products along B's rows (brg_desc.dot_rows).
 *
 *   at entry:  for b < batch, k < K, t < r:              (r = dot_rows, Mv = M - r)
 *                buf[t*L + pos(b) + k*ldb_k] = A_b[Mv + t + k*lda]        (L = batch*K)
 *              (0 where implicit padding, pad_q, puts the shifted pixel outside the
 *              image) with pos(b) = b*stride_b or offs_b[b].  The caller promises that these
 *              positions are 0 .. L-1 (brgemm.h), so buf holds A's rows in the order of
 *              every row of B.
 *   after each register block of the last M chunk, for its columns in groups of g:
 *              acc[t][j] = sum_p buf[t*L + p] * B[(n0+j)*ldb_n + p]  (vectors, masked end)
 *              C[Mv + t + (n0+j)*ldc] = epilogue(beta*C + lane sum of acc[t][j])
 *
 * The block's broadcasts have just brought its columns of B into L1.  The same dot products
 * after the call (scheduler/lower.c, lower_tail) read them from L2 again: on a 3x3 C512 layer
 * on 7x7 (49 = 3 x 16 + 1 pixels) that pass took 8% of the time for 2% of the FLOPs.
 */
#include "brg_private.h"

#define DOT_MAX_ACC 16 /* accumulators of one group of columns (AVX-512; 8 with 16 registers) */
#define DOT_MAX_COLS 8

/* &base[idx] for float array "base" and i64 "idx". */
static LLVMValueRef fptr(brg_cg *cg, LLVMValueRef base, LLVMValueRef idx)
{
  return LLVMBuildGEP2(cg->bld, cg->f32, base, &idx, 1, "");
}

static LLVMValueRef add(brg_cg *cg, LLVMValueRef a, LLVMValueRef b)
{
  return LLVMBuildAdd(cg->bld, a, b, "");
}

static LLVMValueRef mul(brg_cg *cg, LLVMValueRef a, int64_t k)
{
  return LLVMBuildMul(cg->bld, a, brg_i64(cg, k), "");
}

/* Implicit padding (brg_desc.pad_q): in "inside", for the "r" rows from row "mv" of the tile,
 * whether batch element "b" reads them inside the image (i1 values). */
static void pad_rows_inside(brg_cg *cg, LLVMValueRef b, int mv, int r, LLVMValueRef *inside)
{
  const brg_desc *d = cg->d;
  LLVMValueRef sh[2];
  brg_pad_shift(cg, b, sh);
  LLVMValueRef q = LLVMConstInt(cg->i32, (unsigned long long)d->pad_q, 0);
  LLVMValueRef len = LLVMConstInt(cg->i32, (unsigned long long)d->pad_len, 0);
  LLVMValueRef first = LLVMBuildTrunc(cg->bld, cg->pad_m, cg->i32, "");
  for (int t = 0; t < r; t++) {
    LLVMValueRef pix = LLVMBuildAdd(cg->bld, first, LLVMConstInt(cg->i32, (unsigned long long)(mv + t), 0), "");
    LLVMValueRef row = LLVMBuildAdd(cg->bld, pix, LLVMBuildMul(cg->bld, sh[0], q, ""), "");
    LLVMValueRef col = LLVMBuildAdd(cg->bld, LLVMBuildURem(cg->bld, pix, q, ""), sh[1], "");
    inside[t] = LLVMBuildAnd(cg->bld, LLVMBuildICmp(cg->bld, LLVMIntULT, row, len, ""),
                             LLVMBuildICmp(cg->bld, LLVMIntULT, col, q, ""), "inside");
  }
}

void brg_dot_gather(brg_cg *cg)
{
  const brg_desc *d = cg->d;
  int r = d->dot_rows, mv = d->M - r;
  cg->dot_len = mul(cg, cg->batch, d->K);
  cg->dot_buf = LLVMBuildArrayAlloca(cg->bld, cg->f32, mul(cg, cg->dot_len, r), "dot.buf");
  LLVMSetAlignment(cg->dot_buf, 64);
  brg_loop lb, lk;
  LLVMValueRef b = brg_loop_open(cg, &lb, "dot.b", cg->batch, 1, 0, NULL);
  LLVMValueRef ab = brg_block_ptr(cg, cg->a, cg->offs_a, d->stride_a, b), pos;
  if (d->mode == BRG_BATCH_STRIDE) {
    pos = mul(cg, b, d->stride_b);
  } else {
    pos = LLVMBuildLoad2(cg->bld, cg->i64, LLVMBuildGEP2(cg->bld, cg->i64, cg->offs_b, &b, 1, ""), "");
    LLVMSetAlignment(pos, 8);
  }
  LLVMValueRef inside[BRG_MAX_DOT_ROWS] = {NULL};
  if (d->pad_q)
    pad_rows_inside(cg, b, mv, r, inside);
  LLVMValueRef k = brg_loop_open(cg, &lk, "dot.k", brg_i64(cg, d->K), 1, 0, NULL);
  LLVMValueRef src = mul(cg, k, d->lda), dst = add(cg, pos, mul(cg, k, d->ldb_k));
  for (int t = 0; t < r; t++) {
    LLVMValueRef p = fptr(cg, ab, add(cg, src, brg_i64(cg, mv + t)));
    if (inside[t]) /* outside the image: load B's first float (always there) and drop it */
      p = LLVMBuildSelect(cg->bld, inside[t], p, cg->b, "");
    LLVMValueRef v = LLVMBuildLoad2(cg->bld, cg->f32, p, "");
    LLVMSetAlignment(v, 4);
    if (inside[t])
      v = LLVMBuildSelect(cg->bld, inside[t], v, LLVMConstReal(cg->f32, 0.0), "");
    LLVMValueRef at = add(cg, dst, LLVMBuildMul(cg->bld, cg->dot_len, brg_i64(cg, t), ""));
    LLVMSetAlignment(LLVMBuildStore(cg->bld, v, fptr(cg, cg->dot_buf, at)), 4);
  }
  brg_loop_close(cg, &lk, NULL);
  brg_loop_close(cg, &lb, NULL);
}

/* A vector at "p": a plain load, or a masked one (0 in the masked-off lanes). */
static LLVMValueRef vload(brg_cg *cg, LLVMValueRef p, LLVMValueRef mask)
{
  if (!mask) {
    LLVMValueRef v = LLVMBuildLoad2(cg->bld, cg->vty, p, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMValueRef args[4] = {p, LLVMConstInt(cg->i32, 4, 0), mask, LLVMConstNull(cg->vty)};
  return LLVMBuildCall2(cg->bld, cg->mload_ty, cg->mload, args, 4, "");
}

/* One vector step at position "p" of the "r" x "g" dot products "acc" of the columns
 * whose rows of B start at "brow". */
static void dot_step(brg_cg *cg, int r, int g, LLVMValueRef *brow, LLVMValueRef p,
                     LLVMValueRef mask, LLVMValueRef *acc)
{
  LLVMValueRef av[BRG_MAX_DOT_ROWS];
  for (int t = 0; t < r; t++)
    av[t] = vload(cg, fptr(cg, cg->dot_buf, add(cg, p, LLVMBuildMul(cg->bld, cg->dot_len, brg_i64(cg, t), ""))), mask);
  for (int j = 0; j < g; j++) {
    LLVMValueRef bv = vload(cg, fptr(cg, brow[j], p), mask);
    for (int t = 0; t < r; t++) {
      LLVMValueRef args[3] = {av[t], bv, acc[t * g + j]};
      acc[t * g + j] = LLVMBuildCall2(cg->bld, cg->fma_ty, cg->fma, args, 3, "dot");
    }
  }
}

/* Shuffle of "a" and "b": lane i takes, from "a" for i < vlen/2 else from "b", the lane
 * "(i mod vlen/2) / h * 2h + (i mod h) + off" (segments of 2h lanes cut to their half). */
static LLVMValueRef halves(brg_cg *cg, LLVMValueRef a, LLVMValueRef b, int h, int off)
{
  LLVMValueRef idx[64];
  int half = cg->vlen / 2;
  for (int i = 0; i < cg->vlen; i++) {
    int k = i % half, lane = k / h * 2 * h + k % h + off;
    idx[i] = LLVMConstInt(cg->i32, (unsigned long long)(lane + (i < half ? 0 : cg->vlen)), 0);
  }
  return LLVMBuildShuffleVector(cg->bld, a, b, LLVMConstVector(idx, (unsigned)cg->vlen), "");
}

/* The lane sums of the "n" vectors "v" into "out", vlen vectors at a time by a tree that
 * halves segments: two vectors whose accumulators hold segments of 2h lanes become one whose
 * accumulators (those of the first, then those of the second) hold h, until one vector holds
 * them all; then each segment is summed in place.  A group of 8 sums takes ~30 instructions,
 * not the ~70 of 8 separate reductions. */
static void lane_sums(brg_cg *cg, LLVMValueRef *v, int n, LLVMValueRef *out)
{
  for (int c0 = 0; c0 < n; c0 += cg->vlen) {
    int cnt = n - c0 < cg->vlen ? n - c0 : cg->vlen, p = 1;
    while (p < cnt)
      p *= 2;
    LLVMValueRef t[64];
    for (int i = 0; i < p; i++)
      t[i] = i < cnt ? v[c0 + i] : LLVMConstNull(cg->vty);
    int seg = cg->vlen;
    for (int m = p; m > 1; m /= 2, seg /= 2)
      for (int i = 0; i < m / 2; i++)
        t[i] = LLVMBuildFAdd(cg->bld, halves(cg, t[2 * i], t[2 * i + 1], seg / 2, 0),
                             halves(cg, t[2 * i], t[2 * i + 1], seg / 2, seg / 2), "");
    LLVMValueRef x = t[0];
    for (int h = seg / 2; h >= 1; h /= 2) { /* lane l += lane l + h within each segment */
      LLVMValueRef idx[64];
      for (int i = 0; i < cg->vlen; i++)
        idx[i] = LLVMConstInt(cg->i32, (unsigned long long)(i % seg + h < seg ? i + h : i), 0);
      x = LLVMBuildFAdd(cg->bld, x, LLVMBuildShuffleVector(cg->bld, x, LLVMGetPoison(cg->vty),
                                                            LLVMConstVector(idx, (unsigned)cg->vlen), ""), "");
    }
    for (int i = 0; i < cnt; i++)
      out[c0 + i] = LLVMBuildExtractElement(cg->bld, x, LLVMConstInt(cg->i32, (unsigned long long)(i * seg), 0), "");
  }
}

/* C[row + col*ldc] = epilogue(beta*C + s) for i64 "row" and "col". */
static void store_c(brg_cg *cg, LLVMValueRef row, LLVMValueRef col, LLVMValueRef s)
{
  const brg_desc *d = cg->d;
  LLVMValueRef p = fptr(cg, cg->c, add(cg, row, mul(cg, col, d->ldc)));
  if (d->beta) {
    LLVMValueRef c = LLVMBuildLoad2(cg->bld, cg->f32, p, "");
    LLVMSetAlignment(c, 4);
    s = LLVMBuildFAdd(cg->bld, c, s, "");
  }
  if (d->epilogue & (BRG_EPI_BIAS_M | BRG_EPI_BIAS_N)) {
    LLVMValueRef i = d->epilogue & BRG_EPI_BIAS_M ? row : col;
    LLVMValueRef bias = LLVMBuildLoad2(cg->bld, cg->f32, fptr(cg, cg->bias, i), "");
    LLVMSetAlignment(bias, 4);
    s = LLVMBuildFAdd(cg->bld, s, bias, "");
  }
  if (d->epilogue & BRG_EPI_RELU) {
    LLVMValueRef zero = LLVMConstNull(cg->f32);
    s = LLVMBuildSelect(cg->bld, LLVMBuildFCmp(cg->bld, LLVMRealOGT, s, zero, ""), s, zero, "relu");
  }
  LLVMSetAlignment(LLVMBuildStore(cg->bld, s, p), 4);
}

/* The mask of the lanes below "n" (i64). */
static LLVMValueRef lanes_below(brg_cg *cg, LLVMValueRef n)
{
  LLVMValueRef idx[64], splat[64];
  for (int i = 0; i < cg->vlen; i++)
    idx[i] = brg_i64(cg, i);
  LLVMTypeRef vi = LLVMVectorType(cg->i64, (unsigned)cg->vlen);
  LLVMValueRef v = LLVMBuildInsertElement(cg->bld, LLVMGetPoison(vi), n, LLVMConstInt(cg->i32, 0, 0), "");
  for (int i = 0; i < cg->vlen; i++)
    splat[i] = LLVMConstInt(cg->i32, 0, 0);
  v = LLVMBuildShuffleVector(cg->bld, v, LLVMGetPoison(vi), LLVMConstVector(splat, (unsigned)cg->vlen), "");
  return LLVMBuildICmp(cg->bld, LLVMIntSLT, LLVMConstVector(idx, (unsigned)cg->vlen), v, "");
}

void brg_dot_columns(brg_cg *cg, LLVMValueRef n0, int n)
{
  const brg_desc *d = cg->d;
  int r = d->dot_rows, mv = d->M - r;
  int budget = cg->plan.info.nregs >= 32 ? DOT_MAX_ACC : DOT_MAX_ACC / 2;
  int g = budget / r > DOT_MAX_COLS ? DOT_MAX_COLS : budget / r;
  LLVMValueRef nfull = LLVMBuildSDiv(cg->bld, cg->dot_len, brg_i64(cg, cg->vlen), "");
  LLVMValueRef pend = mul(cg, nfull, cg->vlen);
  LLVMValueRef mask = lanes_below(cg, LLVMBuildSub(cg->bld, cg->dot_len, pend, ""));
  for (int j0 = 0; j0 < n; j0 += g) {
    int gn = n - j0 < g ? n - j0 : g;
    LLVMValueRef brow[DOT_MAX_COLS], acc[DOT_MAX_ACC];
    for (int j = 0; j < gn; j++)
      brow[j] = fptr(cg, cg->b, mul(cg, add(cg, n0, brg_i64(cg, j0 + j)), d->ldb_n));
    for (int i = 0; i < r * gn; i++)
      acc[i] = LLVMConstNull(cg->vty);
    brg_loop l;
    LLVMValueRef i = brg_loop_open(cg, &l, "dot.i", nfull, 1, r * gn, acc);
    dot_step(cg, r, gn, brow, mul(cg, i, cg->vlen), NULL, acc);
    brg_loop_close(cg, &l, acc);
    dot_step(cg, r, gn, brow, pend, mask, acc); /* the last L mod vlen (none: no lane loads) */
    LLVMValueRef sum[DOT_MAX_ACC];
    lane_sums(cg, acc, r * gn, sum);
    for (int t = 0; t < r; t++)
      for (int j = 0; j < gn; j++)
        store_c(cg, brg_i64(cg, mv + t), add(cg, n0, brg_i64(cg, j0 + j)), sum[t * gn + j]);
  }
}
