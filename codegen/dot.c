/*
 * Blocks of a tail's dot products (the "dot" mark of scheduler/tree.c).
 *
 * A tail loop nest (scheduler/lower.c, lower_tail) computes O[row, t] += sum_j A[t, j] * B[row, j]
 * for the last T points t of M, over one reduction loop j that both factors read contiguously
 * (c of a 1x1 convolution; c, r, s of NCHW weights merged). LLVM vectorizes it as one chain of FMAs
 * per output element and sums its lanes after every element: on the 1-pixel tail of a 7x7
 * image it ran at a fifth of the FMA rate, 8% of the whole 3x3 C512 layer's time. A full block
 * here has "rows" rows by the T points: one vector accumulator per (row, point), fed by one
 * load of each row of B and of each point of A per vector of j (the last one masked), then the
 * accumulators of a point summed across lanes together, a tree of two-source shuffles that
 * leaves one vector of the rows' sums. Border blocks run the point loops below the mark.
 */
#include "codegen.h"

#include <isl/ast.h>

/* A vector of "vl" floats at element "off" of buffer "buf"; with "mask" (NULL: none) only the
 * lanes it sets are read, the others are 0. */
static LLVMValueRef load_vec(cg_fn *f, int buf, LLVMValueRef off, unsigned vl, LLVMValueRef mask) {
  LLVMTypeRef vty = LLVMVectorType(f->f32, vl);
  LLVMValueRef p = cg_elem_ptr(f, buf, off);
  if (!mask) {
    LLVMValueRef v = LLVMBuildLoad2(f->b, vty, p, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMTypeRef tys[2] = {vty, f->ptr};
  LLVMValueRef args[4] = {p, LLVMConstInt(f->i32, 4, 0), mask, LLVMConstNull(vty)};
  return cg_intrinsic(f, "llvm.masked.load", tys, 2, args, 4);
}

/* The sums across lanes of the "n" (a power of 2, <= vl) vectors "v", as lanes 0..n-1 of a
 * vector of n floats: pairs of vectors holding groups of g lanes per row merge into one
 * holding groups of g/2 (the first halves of the groups plus the second halves), until one
 * vector remains; then neighbouring lanes are added until a group is one lane. */
static LLVMValueRef lane_sums(cg_fn *f, LLVMValueRef *v, int n, unsigned vl) {
  LLVMValueRef mask[64];
  unsigned g = vl;
  for (; n > 1; n /= 2, g /= 2) {
    for (int i = 0; i < n / 2; i++) {
      LLVMValueRef lo[64], hi[64];
      for (unsigned p = 0; p < vl; p++) {
        unsigned src = p < vl / 2 ? 0 : vl;         /* first or second vector of the pair */
        unsigned q = p % (vl / 2), grp = q / (g / 2), k = q % (g / 2);
        lo[p] = LLVMConstInt(f->i32, src + grp * g + k, 0);
        hi[p] = LLVMConstInt(f->i32, src + grp * g + g / 2 + k, 0);
      }
      LLVMValueRef a = v[2 * i], b = v[2 * i + 1];
      LLVMValueRef x = LLVMBuildShuffleVector(f->b, a, b, LLVMConstVector(lo, vl), "");
      LLVMValueRef y = LLVMBuildShuffleVector(f->b, a, b, LLVMConstVector(hi, vl), "");
      v[i] = LLVMBuildFAdd(f->b, x, y, "");
    }
  }
  LLVMValueRef s = v[0];
  for (unsigned len = vl; g > 1; g /= 2, len /= 2) {
    for (unsigned p = 0; p < len / 2; p++)
      mask[p] = LLVMConstInt(f->i32, 2 * p, 0);
    LLVMValueRef x = LLVMBuildShuffleVector(f->b, s, LLVMGetUndef(LLVMTypeOf(s)), LLVMConstVector(mask, len / 2), "");
    for (unsigned p = 0; p < len / 2; p++)
      mask[p] = LLVMConstInt(f->i32, 2 * p + 1, 0);
    LLVMValueRef y = LLVMBuildShuffleVector(f->b, s, LLVMGetUndef(LLVMTypeOf(s)), LLVMConstVector(mask, len / 2), "");
    s = LLVMBuildFAdd(f->b, x, y, "");
  }
  return s;
}

/* A block being generated: its shape and where its factors are. */
typedef struct block {
  cg_fn *f;
  const sched_op *op;
  const sched_dot *d;
  int rows, points, unroll, t0;
  unsigned vl;
  LLVMTypeRef vty;
  LLVMValueRef aoff, boff;
  int64_t la[64], lb[64];
  LLVMValueRef slot[64]; /* accumulators [row][point][u] */
} block;

/* The FMAs of "u" vectors (u <= unroll) from element "j" of the reduction: per vector, one load
 * of each point of A and of each row of B (only the lanes "mask" sets, if not NULL). */
static void step(block *k, LLVMValueRef j, int u, LLVMValueRef mask) {
  cg_fn *f = k->f;
  const sched_access *ra = &k->op->reads[k->d->a], *rb = &k->op->reads[k->d->b];
  for (int v = 0; v < u; v++) {
    LLVMValueRef jv = LLVMBuildAdd(f->b, j, cg_i64(f, (int64_t)v * k->vl), "");
    LLVMValueRef av[8], bv[8];
    for (int t = 0; t < k->points; t++)
      av[t] = load_vec(f, ra->buf, LLVMBuildAdd(f->b, k->aoff, LLVMBuildAdd(f->b, jv,
                       cg_i64(f, (k->t0 + t) * k->la[k->d->m]), ""), ""), k->vl, mask);
    for (int r = 0; r < k->rows; r++)
      bv[r] = load_vec(f, rb->buf, LLVMBuildAdd(f->b, k->boff, LLVMBuildAdd(f->b, jv,
                       cg_i64(f, r * k->lb[k->d->row]), ""), ""), k->vl, mask);
    for (int r = 0; r < k->rows; r++)
      for (int t = 0; t < k->points; t++) {
        LLVMValueRef slot = k->slot[(r * k->points + t) * k->unroll + v];
        LLVMValueRef args[3] = {bv[r], av[t], LLVMBuildLoad2(f->b, k->vty, slot, "")};
        LLVMBuildStore(f->b, cg_intrinsic(f, "llvm.fmuladd", &k->vty, 1, args, 3), slot);
      }
  }
}

/* for (; j < end; j += u * vl) step(j, u), j in the i64 alloca "jslot". */
static void step_loop(block *k, LLVMValueRef jslot, LLVMValueRef end, int u) {
  cg_fn *f = k->f;
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.head");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.body");
  LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.exit");
  LLVMBuildBr(f->b, head);
  LLVMPositionBuilderAtEnd(f->b, head);
  LLVMValueRef j = LLVMBuildLoad2(f->b, f->i64, jslot, "j");
  LLVMValueRef next = LLVMBuildAdd(f->b, j, cg_i64(f, (int64_t)u * k->vl), "");
  LLVMBuildCondBr(f->b, LLVMBuildICmp(f->b, LLVMIntSLE, next, end, ""), body, exit);
  LLVMPositionBuilderAtEnd(f->b, body);
  step(k, j, u, NULL);
  LLVMBuildStore(f->b, next, jslot);
  LLVMBuildBr(f->b, head);
  LLVMPositionBuilderAtEnd(f->b, exit);
}

/* One full block: rows lo[row] .. + rows - 1, points "t0" .. "t0 + points - 1" of M (offsets
 * from lo[m]), j over lo[red] .. hi[red]: "unroll" vectors per step, then single vectors, then
 * a masked one; per (row, point), the unrolled accumulators added, and the rows' sums of a
 * point added into O. */
static void full_block(cg_fn *f, const sched_op *op, const sched_dot *d, LLVMValueRef *lo,
                       LLVMValueRef *hi, int t0, int points, unsigned vl) {
  block k = {.f = f, .op = op, .d = d, .rows = (int)d->rows, .points = points, .t0 = t0, .vl = vl,
             .vty = LLVMVectorType(f->f32, vl)};
  /* 8 accumulators: 4 chains per row on one point (a latency of 4 at 2 FMAs per cycle would
   * want 8, but B streams in from L2 at about one vector per cycle) */
  k.unroll = 8 / (k.rows * points) > 4 ? 4 : 8 / (k.rows * points) > 1 ? 8 / (k.rows * points) : 1;
  int64_t lw[64];
  k.aoff = cg_access_offset(f, op, &op->reads[d->a], lo, k.la);
  k.boff = cg_access_offset(f, op, &op->reads[d->b], lo, k.lb);
  LLVMValueRef woff = cg_access_offset(f, op, &op->write, lo, lw);
  LLVMValueRef len = LLVMBuildAdd(f->b, LLVMBuildSub(f->b, hi[d->red], lo[d->red], ""), cg_i64(f, 1), "");
  int nacc = k.rows * points * k.unroll;
  for (int i = 0; i < nacc; i++) {
    k.slot[i] = cg_entry_alloca(f, k.vty, "dot.acc");
    LLVMBuildStore(f->b, LLVMConstNull(k.vty), k.slot[i]);
  }
  LLVMValueRef jslot = cg_alloca_i64(f, "dot.j");
  LLVMBuildStore(f->b, cg_i64(f, 0), jslot);
  if (k.unroll > 1)
    step_loop(&k, jslot, len, k.unroll);
  step_loop(&k, jslot, len, 1);
  /* the last, partial vector: lanes below len - j */
  LLVMValueRef j = LLVMBuildLoad2(f->b, f->i64, jslot, "");
  LLVMValueRef left = LLVMBuildSub(f->b, len, j, "");
  LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.part");
  LLVMBasicBlockRef sum = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.sum");
  LLVMBuildCondBr(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, left, cg_i64(f, 0), ""), part, sum);
  LLVMPositionBuilderAtEnd(f->b, part);
  LLVMValueRef lanes[64];
  for (unsigned p = 0; p < vl; p++)
    lanes[p] = LLVMConstInt(f->i64, p, 0);
  LLVMTypeRef ity = LLVMVectorType(f->i64, vl);
  LLVMValueRef one = LLVMBuildInsertElement(f->b, LLVMGetUndef(ity), left, LLVMConstInt(f->i32, 0, 0), "");
  LLVMValueRef splat = LLVMBuildShuffleVector(f->b, one, LLVMGetUndef(ity),
                                              LLVMConstNull(LLVMVectorType(f->i32, vl)), "");
  step(&k, j, 1, LLVMBuildICmp(f->b, LLVMIntULT, LLVMConstVector(lanes, vl), splat, ""));
  LLVMBuildBr(f->b, sum);
  LLVMPositionBuilderAtEnd(f->b, sum);
  /* O[row, t] += the lanes' sum, a vector of the rows' sums per point */
  for (int t = 0; t < points; t++) {
    LLVMValueRef v[8] = {0};
    for (int r = 0; r < k.rows; r++) {
      LLVMValueRef *sl = &k.slot[(r * points + t) * k.unroll];
      v[r] = LLVMBuildLoad2(f->b, k.vty, sl[0], "");
      for (int u = 1; u < k.unroll; u++)
        v[r] = LLVMBuildFAdd(f->b, v[r], LLVMBuildLoad2(f->b, k.vty, sl[u], ""), "");
    }
    LLVMValueRef s = lane_sums(f, v, k.rows, vl);
    for (int r = 0; r < k.rows; r++) {
      LLVMValueRef off = LLVMBuildAdd(f->b, woff, cg_i64(f, r * lw[d->row] + (t0 + t) * lw[d->m]), "");
      LLVMValueRef p = cg_elem_ptr(f, op->write.buf, off);
      LLVMValueRef x = LLVMBuildExtractElement(f->b, s, LLVMConstInt(f->i32, (unsigned)r, 0), "");
      LLVMValueRef total = LLVMBuildFAdd(f->b, LLVMBuildLoad2(f->b, f->f32, p, ""), x, "");
      LLVMSetFastMathFlags(total, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
      LLVMBuildStore(f->b, total, p);
    }
  }
}

void cg_dot_gen(cg_fn *f, const sched_op *op, LLVMValueRef *lo, LLVMValueRef *hi,
                isl_ast_node *points) {
  sched_dot d;
  if (!sched_dot_tile(f->sk, op, &d) || d.rows > 8) { /* 8: the arrays of full_block */
    cg_ast_gen(f, points);
    return;
  }
  /* 16 floats per vector on AVX-512, else 8 (two registers of AVX2 would double the
   * accumulators past its 16) */
  unsigned vl = f->o->target->isa == BRG_ISA_AVX512 ? 16 : 8;
  int T = (int)(op->iters[d.m].hi - op->iters[d.m].lo);
  /* full when it has all its rows (the T points of M are always all inside the mark) */
  LLVMValueRef span = LLVMBuildSub(f->b, hi[d.row], lo[d.row], "");
  LLVMValueRef full = LLVMBuildICmp(f->b, LLVMIntEQ, span, cg_i64(f, d.rows - 1), "");
  LLVMBasicBlockRef vec = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.full");
  LLVMBasicBlockRef loops = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.border");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "dot.done");
  LLVMBuildCondBr(f->b, full, vec, loops);
  LLVMPositionBuilderAtEnd(f->b, vec);
  int group = (int)(8 / d.rows) > 0 ? (int)(8 / d.rows) : 1; /* points per pass: 8 accumulators */
  for (int t0 = 0; t0 < T; t0 += group)
    full_block(f, op, &d, lo, hi, t0, T - t0 < group ? T - t0 : group, vl);
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, loops);
  cg_ast_gen(f, points);
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, done);
}
