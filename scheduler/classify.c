/*
 * Contraction classification. A statement C[..] += X[..] * Y[..] is a contraction; each of its
 * iterators is classified by the accesses it appears in: C and X only (one side of the GEMM),
 * C and Y only (the other side), X and Y only (a reduction: K or batch), all three (independent
 * GEMMs), or anything else. The linear element strides of each iterator in each access decide
 * which iterator can be the BRGEMM's vector dimension M (unit stride in C and in its operand).
 */
#include "scheduler.h"

void sched_linearize(const ir_stmt *s, const ir_expr *e, int64_t *lin, int64_t *c0) {
  const ir_tensor *t = e->tensor;
  int64_t stride = 1;
  *c0 = 0;
  for (int i = 0; i < s->niters; i++)
    lin[i] = 0;
  for (int d = t->rank - 1; d >= 0; d--) {
    *c0 += stride * e->index[d].c;
    for (int i = 0; i < s->niters; i++)
      lin[i] += stride * e->index[d].coef[i];
    stride *= t->dims[d];
  }
}

static bool uses_iter(const ir_expr *e, int it) {
  for (int d = 0; d < e->nargs; d++)
    if (e->index[d].coef[it])
      return true;
  return false;
}

bool sched_classify(const ir_stmt *s, sched_contraction *c) {
  const ir_expr *r = s->rhs;
  if (s->assign != IR_ASSIGN_ADD || r->kind != IR_EXPR_OP || r->op != IR_OP_MUL ||
      r->args[0]->kind != IR_EXPR_ACCESS || r->args[1]->kind != IR_EXPR_ACCESS ||
      s->niters > 64)
    return false;
  const ir_expr *x = r->args[0], *y = r->args[1];
  if (x->tensor == s->lhs->tensor || y->tensor == s->lhs->tensor)
    return false;
  c->x = x->read_id;
  c->y = y->read_id;
  int64_t c0;
  sched_linearize(s, s->lhs, c->lin_c, &c0);
  sched_linearize(s, x, c->lin_x, &c0);
  sched_linearize(s, y, c->lin_y, &c0);
  for (int i = 0; i < s->niters; i++) {
    bool in_c = uses_iter(s->lhs, i), in_x = uses_iter(x, i), in_y = uses_iter(y, i);
    if (in_c && in_x && in_y)
      c->cls[i] = SCHED_CLASS_BATCH;
    else if (in_c && in_x && !in_y)
      c->cls[i] = SCHED_CLASS_X_SIDE;
    else if (in_c && in_y && !in_x)
      c->cls[i] = SCHED_CLASS_Y_SIDE;
    else if (!in_c && in_x && in_y)
      c->cls[i] = SCHED_CLASS_REDUCE;
    else
      c->cls[i] = SCHED_CLASS_OTHER;
  }
  return true;
}
