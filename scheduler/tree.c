/*
 * isl schedule trees. Each op contributes a subtree below one sequence:
 *
 *   LOOPS:  band(order) [split at the parallel loop, with a "parallel" mark above it]
 *   BRGEMM: band(order ++ batch ++ untiled roles), tiled with isl_schedule_node_band_tile
 *           (tile size T for the M/N/K roles, 1 for the other loops), split after the order:
 *             band(order: tile indices and full loops)    [parallel mark as above]
 *               mark "brgemm"                              <- codegen emits one call here
 *                 band(batch)  band(points of M, N, K)     <- never generated as loops
 *
 * Tile loops count tiles (tile_scale_tile_loops = 0), so codegen reads tile indices. A tail
 * loop nest (lower_tail) that can run inside its BRGEMM's loops shares their band instead
 * (fused_schedule), its copy and fill placed before.
 */
#include "scheduler.h"

#include <isl/aff.h>
#include <isl/id.h>
#include <isl/schedule_node.h>
#include <isl/space.h>
#include <isl/val.h>
#include <stdlib.h>

/* The iterators of the band of "op" in order, and their tile sizes (1 = untiled loop). */
static int band_members(const sched_op *op, int *iters, int64_t *tiles) {
  const sched_stmt *ss = &op->sched;
  int n = 0;
  for (int pass = 0; pass < 3; pass++) {
    int cnt = pass == 0 ? ss->norder : pass == 1 ? ss->nbatch : 3;
    for (int i = 0; i < cnt; i++) {
      int it, r = -1;
      if (pass < 2) {
        sched_loop l = pass == 0 ? ss->order[i] : ss->batch[i];
        it = l.iter;
        for (int q = 0; q < 3 && l.tile; q++)
          if (ss->role[q] == it)
            r = q;
      } else {
        if (!ss->brgemm || ss->role[i] < 0 || ss->tile[i] != 0)
          continue;
        it = ss->role[i];
        r = i;
      }
      iters[n] = it;
      tiles[n++] = r < 0 ? 1
                   : ss->tile[r] ? ss->tile[r]
                                 : op->iters[it].hi - op->iters[it].lo;
    }
  }
  return n;
}

/* { O[i] -> [i_{iters[0]}, ..., i_{iters[n-1]}] } as a multi_union_pw_aff. */
static isl_multi_union_pw_aff *permutation(const sched_op *op, const int *iters, int n) {
  isl_space *dom = isl_set_get_space(op->domain);
  isl_space *sp = isl_space_map_from_domain_and_range(
      isl_space_copy(dom), isl_space_set_alloc(isl_set_get_ctx(op->domain), 0, (unsigned)n));
  isl_multi_aff *ma = isl_multi_aff_zero(sp);
  isl_local_space *ls = isl_local_space_from_space(dom);
  for (int i = 0; i < n; i++) {
    isl_aff *a = isl_aff_var_on_domain(isl_local_space_copy(ls), isl_dim_set, (unsigned)iters[i]);
    ma = isl_multi_aff_set_aff(ma, i, a);
  }
  isl_local_space_free(ls);
  return isl_multi_union_pw_aff_from_multi_aff(ma);
}

static isl_multi_val *tile_sizes(isl_schedule_node *band, const int64_t *tiles, int n) {
  isl_space *sp = isl_schedule_node_band_get_space(band);
  isl_multi_val *mv = isl_multi_val_zero(sp);
  for (int i = 0; i < n; i++)
    mv = isl_multi_val_set_val(mv, i, isl_val_int_from_si(isl_schedule_node_get_ctx(band), tiles[i]));
  return mv;
}

/* Split band "node" at "pos" (0 < pos < members) and return the inner band. */
static isl_schedule_node *split_inner(isl_schedule_node *node, int pos) {
  node = isl_schedule_node_band_split(node, pos);
  return isl_schedule_node_child(node, 0);
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* The iterations of loop "l" of "op": the same at every outer point, the domain being a box. */
static int64_t loop_trips(const sched_op *op, sched_loop l) {
  int64_t t = 1;
  for (int r = 0; r < 3 && l.tile; r++)
    if (op->sched.role[r] == l.iter)
      t = op->sched.tile[r];
  return floor_div(op->iters[l.iter].hi - 1, t) - floor_div(op->iters[l.iter].lo, t) + 1;
}

/* Mark the parallel loop of "op", unless it runs once: isl generates no loop for it then, and
 * the mark would end up above the next loop, which may carry a reduction. */
static isl_schedule_node *insert_parallel(isl_schedule_node *band, const sched_op *op,
                                          int threads) {
  int p = op->sched.parallel;
  if (threads == 1 || p < 0 || loop_trips(op, op->sched.order[p]) < 2)
    return band;
  if (p > 0)
    band = split_inner(band, p);
  isl_id *id = isl_id_alloc(isl_schedule_node_get_ctx(band), SCHED_MARK_PARALLEL, (void *)op);
  band = isl_schedule_node_insert_mark(band, id);
  return isl_schedule_node_child(band, 0);
}

#define TRANSPOSE_BLOCK 32

/* If "op" is a plain copy (a pack, or a statement "Y[..] = X[..]" of another tensor: a layout
 * change such as weights packed once, examples/conv2d_prepacked.bk), the linear strides of its
 * write and of its read over its iterators, into "lw" and "lr". */
static bool copy_strides(const sched_kernel *sk, const sched_op *op, int64_t *lw, int64_t *lr) {
  bool stmt_copy = op->value == SCHED_VAL_EXPR && op->stmt && op->assign == IR_ASSIGN_SET &&
                   op->stmt->rhs->kind == IR_EXPR_ACCESS && op->write.buf != op->reads[0].buf;
  if (op->kind != SCHED_OP_LOOPS || (op->value != SCHED_VAL_COPY && !stmt_copy) || op->nreads != 1)
    return false;
  int64_t c0;
  sched_access_linearize(sk, op, &op->write, lw, &c0);
  sched_access_linearize(sk, op, &op->reads[0], lr, &c0);
  return true;
}

/* Transposing copies. A copy whose innermost loop is contiguous in the write but reads across
 * rows (stride >= 16 floats) of a read that another loop walks contiguously (T[c][k] =
 * W[k][c], conv weights [c][r][s][k] from [k][c][r][s]) touches another cache line per step
 * on one side and, walked in full, another page per step on the other: a 4096 x 4096
 * transpose took 92 ms (0.7 GB/s). It runs over 2-D blocks instead: 32 of the innermost loop
 * by about 32 elements of the read's contiguous run (the loop walked contiguously and the
 * loops inside it, the outermost of them blocked), the blocks' loops outermost.
 * Returns 1 and fills "bl" (block loop position) and "bsize" when "op" is such a copy. */
static int transpose_blocks(const sched_kernel *sk, const sched_op *op, const int *iters, int n,
                            int *bl, int64_t *bsize) {
  int64_t lw[64], lr[64];
  if (n < 2 || !copy_strides(sk, op, lw, lr))
    return 0;
  int in = iters[n - 1], j = -1;
  for (int i = 0; i < n - 1; i++)
    if (lr[iters[i]] == 1)
      j = i;
  int64_t extent = op->iters[in].hi - op->iters[in].lo;
  if (lw[in] != 1 || (lr[in] < 16 && lr[in] > -16) || j < 0 || extent <= TRANSPOSE_BLOCK)
    return 0;
  int64_t run = 1; /* elements of the contiguous run inside loop q */
  for (int q = j; q >= 0; q--) {
    int64_t e = op->iters[iters[q]].hi - op->iters[iters[q]].lo;
    if (run * e >= TRANSPOSE_BLOCK) {
      *bl = q;
      *bsize = (TRANSPOSE_BLOCK + run - 1) / run;
      return 1;
    }
    run *= e;
  }
  *bl = -1; /* the whole run is short: block the innermost loop only */
  *bsize = 1;
  return 1;
}

/* floor(iters[pos] / size) as a union_pw_aff of "op"'s domain. */
static isl_union_pw_aff *block_of(const sched_op *op, const int *iters, int pos, int64_t size) {
  isl_multi_union_pw_aff *one = permutation(op, iters + pos, 1);
  isl_union_pw_aff *u = isl_multi_union_pw_aff_get_union_pw_aff(one, 0);
  isl_multi_union_pw_aff_free(one);
  isl_val *v = isl_val_int_from_si(isl_set_get_ctx(op->domain), size);
  return isl_union_pw_aff_floor(isl_union_pw_aff_scale_down_val(u, v));
}

/* Band of "op": the block loops of transpose_blocks, then "iters" (n members); the parallel
 * mark on the innermost loop's block loop when "op" runs in parallel. A 2-D transpose whose
 * contiguous read loop is blocked by 32 gets 16 x 16 tiles inside the blocks instead, with a
 * "transpose" mark above their point loops:
 *   band(k/32, c/32, k/16, c/16)  mark "transpose"  band(c, k)                           */
static isl_schedule_node *blocked_band(isl_schedule_node *node, const sched_op *op,
                                       const int *iters, int n, int bl, int64_t bsize,
                                       int threads) {
  isl_multi_union_pw_aff *band =
      isl_multi_union_pw_aff_from_union_pw_aff(block_of(op, iters, n - 1, TRANSPOSE_BLOCK));
  if (bl >= 0) {
    isl_multi_union_pw_aff *b2 = isl_multi_union_pw_aff_from_union_pw_aff(block_of(op, iters, bl, bsize));
    band = isl_multi_union_pw_aff_flat_range_product(band, b2);
  }
  if (n == 2 && bl == 0 && bsize == TRANSPOSE_BLOCK) {
    const int64_t t = SCHED_TRANSPOSE_TILE;
    isl_multi_union_pw_aff *tk = isl_multi_union_pw_aff_from_union_pw_aff(block_of(op, iters, 1, t));
    isl_multi_union_pw_aff *tc = isl_multi_union_pw_aff_from_union_pw_aff(block_of(op, iters, 0, t));
    band = isl_multi_union_pw_aff_flat_range_product(band, isl_multi_union_pw_aff_flat_range_product(tk, tc));
    node = isl_schedule_node_insert_partial_schedule(node, permutation(op, iters, n));
    isl_id *mark = isl_id_alloc(isl_schedule_node_get_ctx(node), SCHED_MARK_TRANSPOSE, (void *)op);
    node = isl_schedule_node_insert_mark(node, mark);
  } else {
    band = isl_multi_union_pw_aff_flat_range_product(band, permutation(op, iters, n));
  }
  node = isl_schedule_node_insert_partial_schedule(node, band);
  if (threads == 1 || op->sched.parallel < 0)
    return node;
  node = isl_schedule_node_band_split(node, 1);
  isl_id *id = isl_id_alloc(isl_schedule_node_get_ctx(node), SCHED_MARK_PARALLEL, (void *)op);
  node = isl_schedule_node_insert_mark(node, id);
  return isl_schedule_node_child(node, 0);
}

/* Whether "op" copies with its innermost loop contiguous in the write and reading every other
 * element (im2col of a stride-2 1x1 convolution, im2row of a 7x7/2 one): LLVM makes that loop
 * of gathers, so it gets 16-wide tiles under a "subsample" mark instead (codegen/transpose.c). */
static bool subsample_copy(const sched_kernel *sk, const sched_op *op, const int *iters, int n) {
  int64_t lw[64], lr[64];
  if (n < 1 || op->sched.parallel == n - 1 || !copy_strides(sk, op, lw, lr))
    return false;
  int in = iters[n - 1];
  return lw[in] == 1 && lr[in] == 2 && op->iters[in].hi - op->iters[in].lo >= 8;
}

/* band(iters[0..n-2], floor(iters[n-1] / w))  mark "subsample"  band(iters[n-1]), w the
 * tile width for the innermost loop's extent (16, or 8 below 16) */
static isl_schedule_node *subsample_band(isl_schedule_node *node, const sched_op *op,
                                         const int *iters, int n) {
  node = isl_schedule_node_insert_partial_schedule(node, permutation(op, iters + n - 1, 1));
  isl_id *mark = isl_id_alloc(isl_schedule_node_get_ctx(node), SCHED_MARK_SUBSAMPLE, (void *)op);
  node = isl_schedule_node_insert_mark(node, mark);
  int in = iters[n - 1];
  int w = sched_subsample_width(op->iters[in].hi - op->iters[in].lo);
  isl_multi_union_pw_aff *outer = isl_multi_union_pw_aff_from_union_pw_aff(block_of(op, iters, n - 1, w));
  if (n > 1)
    outer = isl_multi_union_pw_aff_flat_range_product(permutation(op, iters, n - 1), outer);
  return isl_schedule_node_insert_partial_schedule(node, outer);
}

/* ---- dot-product blocks of a tail ------------------------------------------------------------ */

#define DOT_MAX_A_BYTES 32768 /* A's part of a block: the smallest L1 brick targets */
#define DOT_MAX_POINTS 16      /* points of M in a block (codegen unrolls passes of 8) */
#define DOT_MIN_SPAN 16        /* a vector of the reduction per block, at least */

/* Rows per block: 2 up to 4 points (then 8 accumulators at most: AVX2 has 16 registers), else
 * 1. Each row streams from L2; more rows at once ran slower: rows of 1024 floats, 8 rows by
 * one vector 59-88 GFLOP/s, 2 rows by 4 vectors 62-124 (Zen 5, one core). */
static int64_t dot_rows(int64_t points) { return points <= 4 ? 2 : 1; }

static int64_t extent(const sched_op *op, int it) { return op->iters[it].hi - op->iters[it].lo; }

/* A tail loop nest (lower_tail) of "O += A * B" whose loops end with M and the reductions, one
 * loop of them (merged or not) left, which both factors read contiguously and in bounds; the
 * rows are the innermost loop that indexes B and the output but not A. At least 2 points of
 * M: the blocks read each row of B once for all of them, where LLVM's loop reads it once per
 * point. For one point, LLVM's loop (4 chains of FMAs along one row) is as fast: blocks of 8
 * rows or of 2 rows by 4 vectors measured x0.97-1.01 on the tails of one pixel of ResNet-50's
 * layers on 7x7. And A's part at most DOT_MAX_A_BYTES, so that it stays in L1 while the rows
 * go by: an FC layer W[k,c] of 4096 x 4096 on 16 images (the dot products of "loops;
 * order=k,n,c") took 10.3 ms in blocks, 7.9 in LLVM's loops. At most DOT_MAX_POINTS points
 * (codegen unrolls the passes over them: 4000 points took 11 s to compile) and at least a
 * vector of the reduction, which must come after M (inside the blocks). */
bool sched_dot_tile(const sched_kernel *sk, const sched_op *op, sched_dot *d) {
  const sched_stmt *ss = &op->sched;
  const ir_expr *e = op->stmt ? op->stmt->rhs : NULL;
  if (op->kind != SCHED_OP_LOOPS || op->value != SCHED_VAL_EXPR || op->assign != IR_ASSIGN_ADD ||
      op->starts_target || op->nreads != 2 || !e || e->kind != IR_EXPR_OP || e->op != IR_OP_MUL ||
      e->nargs != 2 || e->args[0]->kind != IR_EXPR_ACCESS || e->args[1]->kind != IR_EXPR_ACCESS ||
      e->args[0]->read_id == e->args[1]->read_id)
    return false;
  int pm = -1, red = -1, pred = -1;
  for (int o = 0; o < ss->norder; o++) {
    int it = ss->order[o].iter;
    if (ss->order[o].tile)
      return false;
    if (!op->stmt->iters[it].reduction)
      pm = o;
    else if (extent(op, it) > 1 && red >= 0)
      return false;
    else if (extent(op, it) > 1)
      red = it, pred = o;
  }
  if (pm < 1 || red < 0 || pred < pm || (op->merged >= 0 && red != op->merged))
    return false;
  for (int o = pm + 1; o < ss->norder; o++)
    if (!op->stmt->iters[ss->order[o].iter].reduction)
      return false;
  int m = ss->order[pm].iter;
  int64_t lin[2][64], lw[64], c0;
  for (int r = 0; r < 2; r++) {
    const sched_access *a = &op->reads[r];
    if (a->may_oob)
      return false;
    sched_access_linearize(sk, op, a, lin[r], &c0);
    if (lin[r][red] != 1)
      return false;
  }
  sched_access_linearize(sk, op, &op->write, lw, &c0);
  int ra = lin[0][m] != 0 ? 0 : 1, rb = 1 - ra;
  if (lin[ra][m] == 0 || lin[rb][m] != 0 || lw[red] != 0 || lw[m] == 0)
    return false;
  int row = -1;
  for (int o = pm - 1; o >= 0 && row < 0; o--) {
    int it = ss->order[o].iter;
    if (lin[rb][it] != 0 && lin[ra][it] == 0 && lw[it] != 0 && extent(op, it) > 1)
      row = it;
  }
  if (row < 0)
    return false;
  *d = (sched_dot){.row = row, .m = m, .red = red, .pm = pm, .a = ra, .b = rb,
                   .rows = dot_rows(extent(op, m))};
  /* a tail inside the calls' loops (fused_schedule) runs over one K tile of them at a time */
  int64_t span = extent(op, red);
  if (op->fuse_into >= 0) {
    const sched_op *b = sk->ops.data[op->fuse_into];
    for (int o = 0; o < b->sched.norder; o++)
      if (b->sched.order[o].tile && b->sched.order[o].iter == b->sched.role[SCHED_K] &&
          b->sched.order[o].iter == red && b->sched.tile[SCHED_K] > 0)
        span = b->sched.tile[SCHED_K] * (op->merged == red ? op->merged_inner : 1);
  }
  if (span > extent(op, red))
    span = extent(op, red);
  return extent(op, m) >= 2 && extent(op, m) <= DOT_MAX_POINTS && span >= DOT_MIN_SPAN &&
         extent(op, row) >= d->rows && 4 * extent(op, m) * span <= DOT_MAX_A_BYTES;
}

/* The band of tail op "op" (sched_dot_tile "d") with its rows in blocks: the loops before M,
 * the row loop as floor(row / rows) in its place, then a "dot" mark above the points:
 *   band(.., k/8, ..)  mark "dot"  band(k, q, c)                                            */
static isl_schedule_node *dot_band(isl_schedule_node *node, const sched_op *op, const sched_dot *d) {
  const sched_stmt *ss = &op->sched;
  int inner[SCHED_MAX_LOOPS + 2], ni = 0;
  inner[ni++] = d->row;
  for (int o = d->pm; o < ss->norder; o++)
    inner[ni++] = ss->order[o].iter;
  node = isl_schedule_node_insert_partial_schedule(node, permutation(op, inner, ni));
  isl_id *mark = isl_id_alloc(isl_schedule_node_get_ctx(node), SCHED_MARK_DOT, (void *)op);
  node = isl_schedule_node_insert_mark(node, mark);
  isl_multi_union_pw_aff *outer = NULL;
  for (int o = 0; o < d->pm; o++) {
    int it = ss->order[o].iter;
    isl_multi_union_pw_aff *l = it == d->row
        ? isl_multi_union_pw_aff_from_union_pw_aff(block_of(op, &it, 0, d->rows))
        : permutation(op, &it, 1);
    outer = outer ? isl_multi_union_pw_aff_flat_range_product(outer, l) : l;
  }
  return isl_schedule_node_insert_partial_schedule(node, outer);
}

/* The schedule of one op, rooted at its domain. */
static isl_schedule *op_schedule(const sched_kernel *sk, const sched_op *op, int threads) {
  int iters[2 * SCHED_MAX_LOOPS + 3];
  int64_t tiles[2 * SCHED_MAX_LOOPS + 3];
  int n = band_members(op, iters, tiles);
  isl_schedule *sch = isl_schedule_from_domain(isl_union_set_from_set(isl_set_copy(op->domain)));
  if (n == 0)
    return sch;
  isl_schedule_node *node = isl_schedule_get_root(sch);
  isl_schedule_free(sch);
  node = isl_schedule_node_child(node, 0);
  int bl;
  int64_t bsize;
  if (transpose_blocks(sk, op, iters, n, &bl, &bsize)) {
    node = blocked_band(node, op, iters, n, bl, bsize, threads); /* with its parallel mark */
  } else if (op->kind == SCHED_OP_BRGEMM) {
    node = isl_schedule_node_insert_partial_schedule(node, permutation(op, iters, n));
    node = isl_schedule_node_band_tile(node, tile_sizes(node, tiles, n));
    int norder = op->sched.norder;
    isl_id *mark = isl_id_alloc(isl_schedule_node_get_ctx(node), SCHED_MARK_BRGEMM, (void *)op);
    if (norder == 0) {
      node = isl_schedule_node_insert_mark(node, mark);
    } else {
      if (norder < n)
        node = isl_schedule_node_band_split(node, norder);
      node = isl_schedule_node_child(node, 0);
      node = isl_schedule_node_insert_mark(node, mark);
      node = isl_schedule_node_parent(node);
      node = insert_parallel(node, op, threads);
    }
  } else {
    sched_dot d;
    int p = op->sched.parallel;
    /* the parallel loop must stay in the band outside the blocks, and run more than once */
    bool dot = sched_dot_tile(sk, op, &d) &&
               (threads == 1 || p < 0 ||
                (p < d.pm && (op->sched.order[p].iter != d.row || extent(op, d.row) > d.rows)));
    if (dot)
      node = dot_band(node, op, &d);
    else if (subsample_copy(sk, op, iters, n))
      node = subsample_band(node, op, iters, n);
    else
      node = isl_schedule_node_insert_partial_schedule(node, permutation(op, iters, n));
    node = insert_parallel(node, op, threads);
  }
  sch = isl_schedule_node_get_schedule(node);
  isl_schedule_node_free(node);
  return sch;
}

/* Loop "it" with tiles of "tile" (1: the full loop) over the domain of "op", as its tile
 * index floor(it / tile); for a tail op's merged reductions (from 0, "merged_inner" values per
 * value of the outermost of them), the tile index of that outermost one. */
/* "a" (on the space of op's domain) restricted to that domain, as a union_pw_aff. */
static isl_union_pw_aff *on_domain(const sched_op *op, isl_aff *a) {
  isl_pw_aff *pa = isl_pw_aff_intersect_domain(isl_pw_aff_from_aff(a), isl_set_copy(op->domain));
  return isl_union_pw_aff_from_pw_aff(pa);
}

static isl_union_pw_aff *loop_of(const sched_op *op, int it, int64_t tile) {
  isl_local_space *ls = isl_local_space_from_space(isl_set_get_space(op->domain));
  isl_aff *a = isl_aff_var_on_domain(ls, isl_dim_set, (unsigned)it);
  if (it == op->merged) {
    a = isl_aff_add_constant_val(a, ir_isl_val(isl_aff_get_ctx(a), op->merged_lo * op->merged_inner));
    tile *= op->merged_inner;
  }
  if (tile > 1)
    a = isl_aff_floor(isl_aff_scale_down_val(a, ir_isl_val(isl_aff_get_ctx(a), tile)));
  return on_domain(op, a);
}

/* BRGEMM op "b" with the tail loop nest "t" inside its loops (lower_tail):
 *
 *   band(b's loops outside the call, t's iterators mapped onto them)  [parallel mark as b's]
 *     sequence
 *       filter b: mark "brgemm"  band(b's iterators)      <- one call, as op_schedule's
 *       filter t: band(t's loops)                          <- t's part of this block
 *
 * so that t reads the block of B each call has just read, from L2 instead of L3. */
static isl_schedule *fused_schedule(const sched_kernel *sk, const sched_op *b, const sched_op *t,
                                     int threads) {
  int iters[2 * SCHED_MAX_LOOPS + 3], titers[SCHED_MAX_LOOPS + 1];
  int64_t tiles[2 * SCHED_MAX_LOOPS + 3];
  int n = band_members(b, iters, tiles), norder = b->sched.norder;
  isl_ctx *ctx = isl_set_get_ctx(b->domain);
  isl_union_set *bd = isl_union_set_from_set(isl_set_copy(b->domain));
  isl_union_set *td = isl_union_set_from_set(isl_set_copy(t->domain));
  isl_schedule *sch = isl_schedule_from_domain(isl_union_set_union(isl_union_set_copy(bd),
                                                                   isl_union_set_copy(td)));
  isl_union_pw_aff_list *outer = isl_union_pw_aff_list_alloc(ctx, norder);
  int m = b->sched.role[SCHED_M];
  for (int j = 0; j < norder; j++) {
    isl_union_pw_aff *tl;
    if (iters[j] == m) { /* the tail is past b's M range: it joins b's last M tile, so that
                          * every iteration has a call (an empty one would have no bounds) */
      isl_aff *last = isl_aff_zero_on_domain(isl_local_space_from_space(isl_set_get_space(t->domain)));
      tl = on_domain(t, isl_aff_set_constant_val(last, ir_isl_val(ctx, (b->iters[m].hi - 1) / tiles[j])));
    } else {
      tl = loop_of(t, iters[j], tiles[j]);
    }
    outer = isl_union_pw_aff_list_add(outer, isl_union_pw_aff_union_add(loop_of(b, iters[j], tiles[j]), tl));
  }
  isl_multi_union_pw_aff *band = isl_multi_union_pw_aff_from_union_pw_aff_list(
      isl_space_set_alloc(ctx, 0, (unsigned)norder), outer);
  isl_schedule_node *node = isl_schedule_node_child(isl_schedule_get_root(sch), 0);
  isl_schedule_free(sch);
  node = isl_schedule_node_insert_partial_schedule(node, band);
  node = insert_parallel(node, b, threads);
  node = isl_schedule_node_child(node, 0);
  isl_union_set_list *filters = isl_union_set_list_from_union_set(bd);
  filters = isl_union_set_list_add(filters, td);
  node = isl_schedule_node_insert_sequence(node, filters);
  node = isl_schedule_node_child(isl_schedule_node_child(node, 0), 0);
  node = isl_schedule_node_insert_partial_schedule(node, permutation(b, iters, n));
  isl_id *mark = isl_id_alloc(ctx, SCHED_MARK_BRGEMM, (void *)b);
  node = isl_schedule_node_insert_mark(node, mark);
  node = isl_schedule_node_parent(isl_schedule_node_parent(node));
  node = isl_schedule_node_child(isl_schedule_node_child(node, 1), 0);
  sched_dot d;
  if (sched_dot_tile(sk, t, &d)) {
    node = dot_band(node, t, &d);
  } else {
    for (int o = 0; o < t->sched.norder; o++)
      titers[o] = t->sched.order[o].iter;
    node = isl_schedule_node_insert_partial_schedule(node, permutation(t, titers, t->sched.norder));
  }
  sch = isl_schedule_node_get_schedule(node);
  isl_schedule_node_free(node);
  return sch;
}

/* The ops' schedules in order, to be put in sequence at the end (sequence_all). */
typedef struct schedules {
  isl_schedule **s;
  int n, cap;
} schedules;

static void then(schedules *all, isl_schedule *s) {
  if (all->n == all->cap) {
    all->cap = all->cap ? 2 * all->cap : 16;
    all->s = realloc(all->s, sizeof(isl_schedule *) * (size_t)all->cap);
    if (!all->s)
      abort();
  }
  all->s[all->n++] = s;
}

/* One sequence of all the schedules, joined pairwise: joined one after another, each join
 * copied the whole sequence so far (800 statements took 18 s to schedule; found by a trial). */
static isl_schedule *sequence_all(schedules *all) {
  int n = all->n;
  while (n > 1) {
    int m = 0;
    for (int i = 0; i < n; i += 2)
      all->s[m++] = i + 1 < n ? isl_schedule_sequence(all->s[i], all->s[i + 1]) : all->s[i];
    n = m;
  }
  isl_schedule *sch = n ? all->s[0] : NULL;
  free(all->s);
  return sch;
}

isl_schedule *sched_build_tree(const sched_kernel *sk, isl_ctx *ctx, int threads) {
  isl_options_set_tile_scale_tile_loops(ctx, 0);
  isl_options_set_tile_shift_point_loops(ctx, 1);
  schedules all = {NULL, 0, 0};
  for (int i = 0; i < sk->ops.len; i++) {
    const sched_op *op = sk->ops.data[i];
    int t = -1;
    for (int j = i + 1; j < sk->ops.len && t < 0; j++)
      if (sk->ops.data[j]->fuse_into == op->index)
        t = j;
    if (t < 0) {
      then(&all, op_schedule(sk, op, threads));
      continue;
    }
    for (int j = i + 1; j < t; j++) /* the tail's copy and fill go first */
      then(&all, op_schedule(sk, sk->ops.data[j], threads));
    then(&all, fused_schedule(sk, op, sk->ops.data[t], threads));
    i = t;
  }
  return sequence_all(&all);
}

isl_map *sched_op_loop_map(const sched_op *op, isl_ctx *ctx) {
  const sched_stmt *ss = &op->sched;
  isl_space *dom = isl_set_get_space(op->domain);
  isl_space *sp = isl_space_map_from_domain_and_range(
      isl_space_copy(dom), isl_space_set_alloc(ctx, 0, (unsigned)ss->norder));
  isl_multi_aff *ma = isl_multi_aff_zero(sp);
  isl_local_space *ls = isl_local_space_from_space(dom);
  for (int i = 0; i < ss->norder; i++) {
    sched_loop l = ss->order[i];
    isl_aff *a = isl_aff_var_on_domain(isl_local_space_copy(ls), isl_dim_set, (unsigned)l.iter);
    for (int r = 0; r < 3 && l.tile; r++)
      if (ss->role[r] == l.iter)
        a = isl_aff_floor(isl_aff_scale_down_val(a, ir_isl_val(isl_aff_get_ctx(a), ss->tile[r])));
    ma = isl_multi_aff_set_aff(ma, i, a);
  }
  isl_local_space_free(ls);
  return isl_map_intersect_domain(isl_map_from_multi_aff(ma), isl_set_copy(op->domain));
}
