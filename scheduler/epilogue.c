/*
 * Epilogue fusion: an elementwise statement that finishes a contraction's output,
 *
 *   Y[n, k] += X[n, c] * W[k, c]
 *   Y[n, k] = relu(Y[n, k] + b[k])        <- runs inside the BRGEMM call, on the tile in registers
 *
 * is computed by the BRGEMM's epilogue (bias along M or N, then ReLU) when the call completes
 * the reduction, instead of a second pass over memory. Recognised forms of the second
 * statement, with T its target (the contraction's) at the same indices: T + b[x], b[x] + T,
 * relu(T + b[x]), relu(b[x] + T), relu(T); x is the M or N iterator of the BRGEMM and b has unit
 * stride along x and depends on nothing else.
 */
#include "scheduler.h"

/* Is "e" the access of the target of "s" at exactly its left-side indices? */
static bool is_target(const ir_stmt *s, const ir_expr *e) {
  if (e->kind != IR_EXPR_ACCESS || e->tensor != s->lhs->tensor)
    return false;
  for (int d = 0; d < e->nargs; d++) {
    if (e->index[d].c != s->lhs->index[d].c)
      return false;
    for (int i = 0; i < s->niters; i++)
      if (e->index[d].coef[i] != s->lhs->index[d].coef[i])
        return false;
  }
  return true;
}

/* The iterator of "c" that stands at the same output dimension as iterator "j" of "e". */
static int map_iter(const ir_stmt *c, const ir_stmt *e, int j) {
  for (int d = 0; d < e->lhs->nargs; d++)
    if (e->lhs->index[d].coef[j])
      for (int i = 0; i < c->niters; i++)
        if (c->lhs->index[d].coef[i])
          return i;
  return -1;
}

/* The role (M or N) along which bias access "b" of "e" runs, or -1. */
static int bias_role(const ir_stmt *c, const sched_stmt *ss, const ir_stmt *e, const ir_expr *b) {
  int64_t lin[64], c0;
  sched_linearize(e, b, lin, &c0);
  int j = -1;
  for (int i = 0; i < e->niters; i++) {
    if (lin[i] == 0)
      continue;
    if (j >= 0 || lin[i] != 1)
      return -1;
    j = i;
  }
  int it = j >= 0 ? map_iter(c, e, j) : -1;
  if (it < 0)
    return -1;
  if (it == ss->role[SCHED_M] && !ss->flatten)
    return SCHED_M;
  return it == ss->role[SCHED_N] ? SCHED_N : -1;
}

/* Is every index of "b" inside its tensor over the ranges of "e"? */
static bool in_bounds(const ir_stmt *e, const ir_expr *b) {
  for (int d = 0; d < b->nargs; d++) {
    int64_t lo = b->index[d].c, hi = b->index[d].c;
    for (int i = 0; i < e->niters; i++) {
      int64_t x = b->index[d].coef[i] * e->iters[i].lo, y = b->index[d].coef[i] * (e->iters[i].hi - 1);
      lo += x < y ? x : y;
      hi += x < y ? y : x;
    }
    if (lo < 0 || hi >= b->tensor->dims[d])
      return false;
  }
  return true;
}

ir_affine *sched_epilogue_bias_index(const ir_stmt *c, const ir_stmt *e, int bias_read,
                                     bk_arena *arena) {
  const ir_expr *b = e->reads[bias_read];
  ir_affine *idx = bk_arena_alloc(arena, sizeof(ir_affine) * (size_t)(b->nargs + 1));
  for (int d = 0; d < b->nargs; d++) {
    idx[d].c = b->index[d].c;
    idx[d].coef = bk_arena_alloc(arena, sizeof(int64_t) * (size_t)(c->niters + 1));
    for (int j = 0; j < e->niters; j++)
      if (b->index[d].coef[j])
        idx[d].coef[map_iter(c, e, j)] += b->index[d].coef[j];
  }
  return idx;
}

unsigned sched_epilogue_match(const ir_stmt *c, const sched_stmt *ss, const ir_stmt *e,
                              int *bias_read) {
  *bias_read = -1;
  if (!ss->brgemm || e->assign != IR_ASSIGN_SET || e->lhs->tensor != c->lhs->tensor ||
      e->niters != e->nlhs_iters || e->index != c->index + 1)
    return 0;
  for (int d = 0; d < e->lhs->nargs; d++) /* same output dimensions, in the same places */
    for (int j = 0; j < e->niters; j++)
      if (e->lhs->index[d].coef[j] && map_iter(c, e, j) < 0)
        return 0;
  const ir_expr *x = e->rhs;
  unsigned flags = 0;
  if (x->kind == IR_EXPR_OP && x->op == IR_OP_RELU) {
    flags |= 4;
    x = x->args[0];
  }
  if (is_target(e, x))
    return flags; /* relu(T) */
  if (x->kind != IR_EXPR_OP || x->op != IR_OP_ADD)
    return 0;
  const ir_expr *t = x->args[0], *b = x->args[1];
  if (!is_target(e, t)) {
    t = x->args[1];
    b = x->args[0];
  }
  if (!is_target(e, t) || b->kind != IR_EXPR_ACCESS || b->tensor == e->lhs->tensor)
    return 0;
  int r = bias_role(c, ss, e, b);
  if (r < 0 || !in_bounds(e, b))
    return 0;
  *bias_read = b->read_id;
  return flags | (r == SCHED_M ? 1u : 2u);
}
