/*
 * Tiles of copies that LLVM's loop vectorizer would make of gathers.
 *
 * A 16 x 16 tile of a 2-D transposing copy (the "transpose" mark of scheduler/tree.c), e.g. the
 * pack of a fully connected layer's W[k,c] into [c][k]: T[c][k] = W[k][c]. A full tile is 16
 * vector loads of 16 floats along c (one per k), a transposition in registers, and 16 vector
 * stores of 16 floats along k (one per c). LLVM's loop vectorizer makes gathers of the same
 * loops, 3x slower on these machines. Border tiles run the point loops below the mark.
 *
 * The transposition: 4 rounds over the rows R[0..15]; the round with h = 8, 4, 2, 1 pairs
 * rows i and i + h (i & h == 0) and swaps the h x h blocks across the diagonal:
 *   R[i][p]     = p & h ? R[i + h][p - h] : R[i][p]
 *   R[i + h][p] = p & h ? R[i + h][p]     : R[i][p + h]
 * (one two-source shuffle each: vpermt2ps on AVX-512, pairs of ymm shuffles on AVX2).
 *
 * A 16-wide (8 for rows under 16) tile of a copy that reads every other element (the
 * subsampled input of a stride-2 convolution, "subsample" mark): two vector loads and one
 * shuffle of the even lanes, when the tile is full and all the loaded elements lie in bounds
 * in one row of the read.
 */
#include "codegen.h"

#include <isl/ast.h>

#define T SCHED_TRANSPOSE_TILE

/* The full-tile body at corner "lo": rows along the read's contiguous loop "ic", one per
 * value of the write's contiguous loop "ik". */
static void full_tile(cg_fn *f, const sched_op *op, LLVMValueRef *lo, int ic, int ik) {
  LLVMTypeRef vty = LLVMVectorType(f->f32, T);
  int64_t lr[64], lw[64];
  LLVMValueRef roff = cg_access_offset(f, op, &op->reads[0], lo, lr);
  LLVMValueRef woff = cg_access_offset(f, op, &op->write, lo, lw);
  LLVMValueRef r[T];
  for (int i = 0; i < T; i++) {
    LLVMValueRef v = LLVMBuildLoad2(f->b, vty, cg_elem_ptr(f, op->reads[0].buf,
                                    LLVMBuildAdd(f->b, roff, cg_i64(f, (int64_t)i * lr[ik]), "")), "row");
    LLVMSetAlignment(v, 4);
    r[i] = v;
  }
  for (int h = T / 2; h >= 1; h /= 2)
    for (int i = 0; i < T; i++) {
      if (i & h)
        continue;
      LLVMValueRef lo_mask[T], hi_mask[T];
      for (int p = 0; p < T; p++) {
        lo_mask[p] = LLVMConstInt(f->i32, (unsigned)((p & h) ? T + p - h : p), 0);
        hi_mask[p] = LLVMConstInt(f->i32, (unsigned)((p & h) ? T + p : p + h), 0);
      }
      LLVMValueRef a = r[i], b = r[i + h];
      r[i] = LLVMBuildShuffleVector(f->b, a, b, LLVMConstVector(lo_mask, T), "");
      r[i + h] = LLVMBuildShuffleVector(f->b, a, b, LLVMConstVector(hi_mask, T), "");
    }
  for (int j = 0; j < T; j++) {
    LLVMValueRef off = LLVMBuildAdd(f->b, woff, cg_i64(f, (int64_t)j * lw[ic]), "");
    LLVMSetAlignment(LLVMBuildStore(f->b, r[j], cg_elem_ptr(f, op->write.buf, off)), 4);
  }
}

void cg_transpose_gen(cg_fn *f, const sched_op *op, LLVMValueRef *lo, LLVMValueRef *hi,
                      isl_ast_node *points) {
  /* tree.c marks 2-D copies whose read is contiguous along one iterator (ic) and whose
   * write is contiguous along the other (ik) */
  int64_t lr[64], lw[64], c0;
  sched_access_linearize(f->sk, op, &op->reads[0], lr, &c0);
  sched_access_linearize(f->sk, op, &op->write, lw, &c0);
  int ic = lr[0] == 1 ? 0 : 1, ik = 1 - ic;
  if (op->niters != 2 || lr[ic] != 1 || lw[ik] != 1 || op->reads[0].may_oob) {
    cg_ast_gen(f, points);
    return;
  }
  LLVMValueRef full = LLVMConstInt(f->i1, 1, 0);
  for (int d = 0; d < 2; d++) {
    LLVMValueRef span = LLVMBuildSub(f->b, hi[d], lo[d], "");
    full = LLVMBuildAnd(f->b, full, LLVMBuildICmp(f->b, LLVMIntEQ, span, cg_i64(f, T - 1), ""), "");
  }
  LLVMBasicBlockRef vec = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "tr.full");
  LLVMBasicBlockRef loops = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "tr.border");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "tr.done");
  LLVMBuildCondBr(f->b, full, vec, loops);
  LLVMPositionBuilderAtEnd(f->b, vec);
  full_tile(f, op, lo, ic, ik);
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, loops);
  cg_ast_gen(f, points);
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, done);
}

/* ---- stride-2 copies ------------------------------------------------------------------------ */

/* Index of dimension "d" of access "a" at the iterator values "it". */
static LLVMValueRef index_at(cg_fn *f, const sched_op *op, const sched_access *a, int d,
                             LLVMValueRef *it) {
  LLVMValueRef x = cg_i64(f, a->index[d].c);
  for (int i = 0; i < op->niters; i++)
    if (a->index[d].coef[i])
      x = LLVMBuildAdd(f->b, x, LLVMBuildMul(f->b, it[i], cg_i64(f, a->index[d].coef[i]), ""), "");
  return x;
}

void cg_subsample_gen(cg_fn *f, const sched_op *op, LLVMValueRef *lo, LLVMValueRef *hi,
                      isl_ast_node *points) {
  const sched_access *r = &op->reads[0];
  int64_t lr[64], lw[64], c0;
  sched_access_linearize(f->sk, op, r, lr, &c0);
  sched_access_linearize(f->sk, op, &op->write, lw, &c0);
  int in = -1;
  for (int i = 0; i < op->niters; i++)
    if (lw[i] == 1 && lr[i] == 2)
      in = i;
  if (in < 0) {
    cg_ast_gen(f, points);
    return;
  }
  /* A short last tile of a row at least w long moves as the full tile that ends where it
   * ends, overlapping the one before (a copy: the overlap is written twice with the same
   * values, by the same thread). Then the tile must be full, and every element the two loads
   * touch (the tile's 2w - 1 and one more) in bounds, in the same row of the read (no
   * padding, no other row, nothing past the end). */
  int w = sched_subsample_width(op->iters[in].hi - op->iters[in].lo);
  LLVMValueRef *at = bk_arena_alloc(f->arena, sizeof(LLVMValueRef) * (size_t)op->niters);
  for (int i = 0; i < op->niters; i++)
    at[i] = lo[i];
  LLVMValueRef span = LLVMBuildSub(f->b, hi[in], lo[in], "");
  LLVMValueRef shifted = LLVMBuildSub(f->b, hi[in], cg_i64(f, w - 1), "");
  LLVMValueRef can_shift = LLVMBuildICmp(f->b, LLVMIntSGE, shifted, cg_i64(f, op->iters[in].lo), "");
  at[in] = LLVMBuildSelect(f->b, can_shift, shifted, lo[in], "");
  LLVMValueRef ok = LLVMBuildOr(f->b, LLVMBuildICmp(f->b, LLVMIntEQ, span, cg_i64(f, w - 1), ""),
                                can_shift, "");
  for (int d = 0; d < sched_access_rank(f->sk, r); d++) {
    int64_t dim = sched_access_dim(f->sk, r, d);
    LLVMValueRef first = index_at(f, op, r, d, at), last = index_at(f, op, r, d, hi);
    if (r->index[d].coef[in])
      last = LLVMBuildAdd(f->b, last, cg_i64(f, r->index[d].coef[in] > 0 ? 1 : -1), "");
    /* both ends in [0, dim): one unsigned compare each (the index is monotonic in the tile) */
    ok = LLVMBuildAnd(f->b, ok, LLVMBuildICmp(f->b, LLVMIntULT, first, cg_i64(f, dim), ""), "");
    ok = LLVMBuildAnd(f->b, ok, LLVMBuildICmp(f->b, LLVMIntULT, last, cg_i64(f, dim), ""), "");
  }
  LLVMBasicBlockRef vec = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "sub.full");
  LLVMBasicBlockRef loops = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "sub.border");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "sub.done");
  LLVMBuildCondBr(f->b, ok, vec, loops);
  LLVMPositionBuilderAtEnd(f->b, vec);
  LLVMTypeRef vty = LLVMVectorType(f->f32, (unsigned)w);
  LLVMValueRef roff = cg_access_offset(f, op, r, at, lr), woff = cg_access_offset(f, op, &op->write, at, lw);
  LLVMValueRef v0 = LLVMBuildLoad2(f->b, vty, cg_elem_ptr(f, r->buf, roff), "");
  LLVMValueRef v1 = LLVMBuildLoad2(f->b, vty, cg_elem_ptr(f, r->buf, LLVMBuildAdd(f->b, roff, cg_i64(f, w), "")), "");
  LLVMSetAlignment(v0, 4);
  LLVMSetAlignment(v1, 4);
  LLVMValueRef mask[T];
  for (int p = 0; p < w; p++)
    mask[p] = LLVMConstInt(f->i32, (unsigned)(2 * p), 0);
  LLVMValueRef even = LLVMBuildShuffleVector(f->b, v0, v1, LLVMConstVector(mask, (unsigned)w), "even");
  LLVMSetAlignment(LLVMBuildStore(f->b, even, cg_elem_ptr(f, op->write.buf, woff)), 4);
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, loops);
  cg_ast_gen(f, points);
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, done);
}
