/*
 * Semantic analysis of one kernel: resolve tensor names, turn index expressions into affine
 * forms over the statement's iterators, enforce the language's rules of use, and infer every
 * iterator's range. Each statement is checked on its own (iterators are local to a statement);
 * the order of statements matters only for "read before written" and for initialisation.
 *
 * Range inference: an iterator's range is [0, extent) of every place where it stands alone as
 * an index; two different extents are an error naming both places; a `where` clause gives the
 * range explicitly (and may narrow an inferred one); an iterator with neither is an error.
 */
#include "ir.h"

#include <math.h>
#include <string.h>

/* Indices and iterator bounds stay within +-2^62, so no 64-bit index arithmetic overflows. */
#define INDEX_LIMIT ((int64_t)1 << 62)

typedef struct sema {
  ir_program *p;
  ir_kernel *k;
  ir_stmt *s;
  BK_VEC(ir_iter) iters;
  BK_VEC(ir_expr *) reads;
  bool ok;
} sema;

/* Report a diagnostic of severity "sev"; an error makes the statement fail. */
static void report_at(sema *c, bk_severity sev, bk_loc loc, const char *fmt, ...) BK_PRINTF(4, 5);
static void report_at(sema *c, bk_severity sev, bk_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bk_diag_vreport(c->p->diag, sev, loc, fmt, ap);
  va_end(ap);
  if (sev == BK_SEV_ERROR)
    c->ok = false;
}
#define error_at(c, ...) report_at(c, BK_SEV_ERROR, __VA_ARGS__)

/* ---- integer expressions over sizes -------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Report an integer overflow in "e" (the 64-bit result does not fit). */
static bool overflow(ir_program *p, const ir_expr *e) {
  bk_error(p->diag, e->loc, "integer overflow: the value of this expression does not fit in "
           "64 bits");
  return false;
}

bool ir_eval_int(ir_program *p, const ir_expr *e, int64_t *out) {
  int64_t a = 0, b = 0;
  switch (e->kind) {
  case IR_EXPR_NUM:
    if (!e->is_int) {
      bk_error(p->diag, e->loc, "expected an integer, not a floating-point literal");
      return false;
    }
    *out = e->inum;
    return true;
  case IR_EXPR_NAME: {
    ir_size *s = ir_program_find_size(p, e->name);
    if (!s) {
      bk_error(p->diag, e->loc, "unknown size '%s'", e->name);
      return false;
    }
    *out = s->value;
    return !s->invalid;
  }
  case IR_EXPR_ACCESS:
    bk_error(p->diag, e->loc, "a tensor access cannot appear in a size expression");
    return false;
  case IR_EXPR_OP:
    break;
  }
  if (e->op == IR_OP_NEG) {
    if (!ir_eval_int(p, e->args[0], &a))
      return false;
    if (__builtin_sub_overflow((int64_t)0, a, out))
      return overflow(p, e);
    return true;
  }
  if (e->op < IR_OP_ADD || e->op > IR_OP_DIV) {
    bk_error(p->diag, e->loc, "'%s' cannot appear in a size expression", ir_op_spelling(e->op));
    return false;
  }
  if (!ir_eval_int(p, e->args[0], &a) || !ir_eval_int(p, e->args[1], &b))
    return false;
  switch (e->op) {
  case IR_OP_ADD: return !__builtin_add_overflow(a, b, out) || overflow(p, e);
  case IR_OP_SUB: return !__builtin_sub_overflow(a, b, out) || overflow(p, e);
  case IR_OP_MUL: return !__builtin_mul_overflow(a, b, out) || overflow(p, e);
  default:
    if (b <= 0) {
      bk_error(p->diag, e->args[1]->loc, "division by %lld; the divisor must be positive",
               (long long)b);
      return false;
    }
    *out = floordiv(a, b);
    return true;
  }
}

void ir_affine_range(const ir_affine *a, int n, const ir_iter *iters, int64_t *lo, int64_t *hi) {
  *lo = *hi = a->c;
  for (int i = 0; i < n; i++) {
    int64_t x = a->coef[i] * iters[i].lo, y = a->coef[i] * (iters[i].hi - 1);
    *lo += x < y ? x : y;
    *hi += x < y ? y : x;
  }
}

int64_t ir_affine_eval(const ir_affine *a, int niters, const int64_t *it) {
  int64_t v = a->c;
  for (int i = 0; i < niters; i++)
    v += a->coef[i] * it[i];
  return v;
}

/* ---- iterators ---------------------------------------------------------------------- */

static int find_iter(sema *c, const char *name) {
  for (int i = 0; i < c->iters.len; i++)
    if (strcmp(c->iters.data[i].name, name) == 0)
      return i;
  return -1;
}

static int add_iter(sema *c, const char *name, bk_loc loc, bool reduction) {
  ir_iter it = {.name = name, .reduction = reduction, .loc = loc, .lo = 0, .hi = -1};
  bk_vec_push(c->p->arena, &c->iters, it);
  return c->iters.len - 1;
}

/* Register the iterators named inside index expression "e". */
static void collect_index_iters(sema *c, const ir_expr *e) {
  if (e->kind == IR_EXPR_NAME) {
    if (!ir_program_find_size(c->p, e->name) && find_iter(c, e->name) < 0)
      add_iter(c, e->name, e->loc, true);
    return;
  }
  for (int i = 0; i < e->nargs; i++)
    collect_index_iters(c, e->args[i]);
}

/* Register the iterators of every access in value expression "e". */
static void collect_value_iters(sema *c, const ir_expr *e) {
  if (e->kind == IR_EXPR_ACCESS) {
    for (int i = 0; i < e->nargs; i++)
      collect_index_iters(c, e->args[i]);
    return;
  }
  for (int i = 0; i < e->nargs; i++)
    collect_value_iters(c, e->args[i]);
}

/* ---- affine index expressions ------------------------------------------------------- */

static ir_affine *affine_new(sema *c) {
  ir_affine *a = bk_arena_alloc(c->p->arena, sizeof(*a));
  a->coef = bk_arena_alloc(c->p->arena, sizeof(int64_t) * (size_t)(c->iters.len + 1));
  return a;
}

static bool affine_is_const(const ir_affine *a, int n) {
  for (int i = 0; i < n; i++)
    if (a->coef[i])
      return false;
  return true;
}

/* Multiply "a" by "f"; false on overflow. */
static bool affine_scale(ir_affine *a, int n, int64_t f) {
  bool ok = !__builtin_mul_overflow(a->c, f, &a->c);
  for (int i = 0; i < n; i++)
    ok &= !__builtin_mul_overflow(a->coef[i], f, &a->coef[i]);
  return ok;
}

/* "out" = "a" + "sign" * "b"; false on overflow. */
static bool affine_add(ir_affine *out, const ir_affine *a, const ir_affine *b, int n,
                       int64_t sign) {
  int64_t t;
  bool ok = !__builtin_mul_overflow(sign, b->c, &t) && !__builtin_add_overflow(a->c, t, &out->c);
  for (int i = 0; i < n; i++)
    ok &= !__builtin_mul_overflow(sign, b->coef[i], &t) &&
          !__builtin_add_overflow(a->coef[i], t, &out->coef[i]);
  return ok;
}

static bool index_overflow(sema *c, const ir_expr *e) {
  error_at(c, e->loc, "integer overflow: this index does not fit in 64 bits");
  return false;
}

/* Convert index expression "e" into "out"; false (reported) if it is not affine. */
static bool to_affine(sema *c, const ir_expr *e, ir_affine *out) {
  int n = c->iters.len;
  if (e->kind == IR_EXPR_NUM) {
    if (!e->is_int) {
      error_at(c, e->loc, "an index must be an integer expression");
      return false;
    }
    out->c = e->inum;
    return true;
  }
  if (e->kind == IR_EXPR_NAME) {
    ir_size *sz = ir_program_find_size(c->p, e->name);
    if (sz)
      out->c = sz->value;
    else
      out->coef[find_iter(c, e->name)] = 1;
    return true;
  }
  if (e->kind == IR_EXPR_ACCESS) {
    error_at(c, e->loc, "an index cannot read a tensor (indirect indexing is not supported)");
    return false;
  }
  if (ir_op_arity(e->op) == 1 && e->op != IR_OP_NEG) {
    error_at(c, e->loc, "'%s' cannot appear in an index", ir_op_spelling(e->op));
    return false;
  }
  ir_affine *a = affine_new(c), *b = affine_new(c);
  if (!to_affine(c, e->args[0], a))
    return false;
  if (e->op == IR_OP_NEG) {
    if (!affine_scale(a, n, -1))
      return index_overflow(c, e);
    *out = *a;
    return true;
  }
  if (e->op == IR_OP_MAX || e->op == IR_OP_MIN) {
    error_at(c, e->loc, "'%s' cannot appear in an index", ir_op_spelling(e->op));
    return false;
  }
  if (!to_affine(c, e->args[1], b))
    return false;
  switch (e->op) {
  case IR_OP_ADD:
  case IR_OP_SUB:
    return affine_add(out, a, b, n, e->op == IR_OP_ADD ? 1 : -1) || index_overflow(c, e);
  case IR_OP_MUL:
    if (!affine_is_const(a, n) && !affine_is_const(b, n)) {
      error_at(c, e->loc, "index is not affine: it multiplies two iterators");
      return false;
    }
    if (affine_is_const(a, n)) {
      if (!affine_scale(b, n, a->c))
        return index_overflow(c, e);
      *out = *b;
    } else {
      if (!affine_scale(a, n, b->c))
        return index_overflow(c, e);
      *out = *a;
    }
    return true;
  default: /* DIV */
    if (!affine_is_const(a, n) || !affine_is_const(b, n)) {
      error_at(c, e->loc, "index is not affine: division of an iterator expression");
      return false;
    }
    if (b->c <= 0) {
      error_at(c, e->args[1]->loc, "division by %lld; the divisor must be positive",
               (long long)b->c);
      return false;
    }
    out->c = floordiv(a->c, b->c);
    return true;
  }
}

/* ---- accesses ------------------------------------------------------------------------ */

/* Resolve the tensor of access "e" and check its rank. */
static bool resolve_tensor(sema *c, ir_expr *e) {
  e->tensor = ir_kernel_find_tensor(c->k, e->name);
  if (!e->tensor) {
    if (ir_program_find_size(c->p, e->name))
      error_at(c, e->loc, "'%s' is a size, not a tensor", e->name);
    else
      error_at(c, e->loc, "unknown tensor '%s'", e->name);
    return false;
  }
  if (e->nargs != e->tensor->rank) {
    error_at(c, e->loc, "tensor '%s' has rank %d but is indexed with %d ind%s", e->name,
             e->tensor->rank, e->nargs, e->nargs == 1 ? "ex" : "ices");
    bk_note(c->p->diag, e->tensor->loc, "'%s' is declared here", e->name);
    return false;
  }
  return true;
}

static bool resolve_access_index(sema *c, ir_expr *e) {
  e->index = bk_arena_alloc(c->p->arena, sizeof(ir_affine) * (size_t)(e->nargs + 1));
  bool ok = true;
  for (int i = 0; i < e->nargs; i++) {
    ir_affine *a = affine_new(c);
    ok &= to_affine(c, e->args[i], a);
    e->index[i] = *a;
  }
  return ok;
}

/* Resolve value expression "e": accesses, sizes as constants, iterators are not values. */
static void resolve_value(sema *c, ir_expr *e) {
  if (e->kind == IR_EXPR_ACCESS) {
    e->read_id = c->reads.len;
    bk_vec_push(c->p->arena, &c->reads, e);
    if (resolve_tensor(c, e))
      resolve_access_index(c, e);
    return;
  }
  if (e->kind == IR_EXPR_NAME) {
    ir_size *sz = ir_program_find_size(c->p, e->name);
    if (!sz) {
      const ir_tensor *t = ir_kernel_find_tensor(c->k, e->name);
      if (t && t->rank == 0)
        error_at(c, e->loc, "'%s' is a scalar tensor: write '%s[]'", e->name, e->name);
      else if (t)
        error_at(c, e->loc, "'%s' is a tensor of rank %d: index it, as in '%s[...]'", e->name,
                 t->rank, e->name);
      else
        error_at(c, e->loc, "'%s' is not a tensor or a size; iterators cannot be used as values",
                 e->name);
      return;
    }
    e->num = (double)(float)sz->value; /* an f32 in the kernel, as literals are */
    return;
  }
  for (int i = 0; i < e->nargs; i++)
    resolve_value(c, e->args[i]);
}

/* The left side: a non-input tensor indexed by distinct plain iterators. */
static bool resolve_lhs(sema *c, ir_expr *lhs) {
  if (!resolve_tensor(c, lhs))
    return false;
  if (lhs->tensor->role == IR_ROLE_INPUT) {
    error_at(c, lhs->loc, "cannot write to input '%s'", lhs->name);
    bk_note(c->p->diag, lhs->tensor->loc, "'%s' is declared as an input here", lhs->name);
    return false;
  }
  bool ok = true;
  for (int i = 0; i < lhs->nargs; i++) {
    ir_expr *ix = lhs->args[i];
    if (ix->kind != IR_EXPR_NAME || ir_program_find_size(c->p, ix->name)) {
      error_at(c, ix->loc, "a left-side index must be a plain iterator");
      ok = false;
    } else if (find_iter(c, ix->name) >= 0) {
      error_at(c, ix->loc, "iterator '%s' appears twice on the left side", ix->name);
      ok = false;
    } else {
      add_iter(c, ix->name, ix->loc, false);
    }
  }
  return ok;
}

/* ---- ranges ---------------------------------------------------------------------------- */

/* The iterator that index "a" is exactly (coefficient 1, nothing else), or -1. */
static int plain_iter(const ir_affine *a, int n) {
  int found = -1;
  if (a->c != 0)
    return -1;
  for (int i = 0; i < n; i++) {
    if (a->coef[i] == 0)
      continue;
    if (a->coef[i] != 1 || found >= 0)
      return -1;
    found = i;
  }
  return found;
}

/* Is "a" the index at "loc"? Then say so in a note about the range of "it". */
static bool note_if_range_source(sema *c, const ir_expr *a, const ir_iter *it) {
  for (int d = 0; d < a->nargs; d++) {
    bk_loc l = a->args[d]->loc;
    if (l.offset == it->range_loc.offset && l.len == it->range_loc.len) {
      bk_note(c->p->diag, l, "but 0..%lld here (dimension %d of '%s')", (long long)it->hi, d,
              a->name);
      return true;
    }
  }
  return false;
}

/* Point at the index that gave "it" its inferred range. */
static void note_range_source(sema *c, const ir_iter *it) {
  if (note_if_range_source(c, c->s->lhs, it))
    return;
  for (int r = 0; r < c->reads.len; r++)
    if (note_if_range_source(c, c->reads.data[r], it))
      return;
}

/* Give iterator "it" the extent of dim "d" of access "e", or report a conflict. */
static void infer_from_access(sema *c, const ir_expr *e) {
  for (int d = 0; d < e->nargs; d++) {
    int i = plain_iter(&e->index[d], c->iters.len);
    if (i < 0)
      continue;
    ir_iter *it = &c->iters.data[i];
    int64_t extent = e->tensor->dims[d];
    if (it->from_where)
      continue;
    if (it->hi < 0) {
      it->hi = extent;
      it->range_loc = e->args[d]->loc;
    } else if (it->hi != extent) {
      error_at(c, e->args[d]->loc,
               "conflicting ranges for iterator '%s': 0..%lld here (dimension %d of '%s')",
               it->name, (long long)extent, d, e->name);
      note_range_source(c, it);
    }
  }
}

/* Apply the where clauses of the statement. */
static void apply_wheres(sema *c) {
  for (int w = 0; w < c->s->wheres.len; w++) {
    ir_where *wh = &c->s->wheres.data[w];
    int i = find_iter(c, wh->name);
    if (ir_program_find_size(c->p, wh->name)) {
      error_at(c, wh->loc, "'%s' is a size, not an iterator", wh->name);
      continue;
    }
    if (i < 0) {
      error_at(c, wh->loc, "iterator '%s' in 'where' is not used by the statement", wh->name);
      continue;
    }
    ir_iter *it = &c->iters.data[i];
    if (!it->reduction) {
      error_at(c, wh->loc, "'where' cannot restrict '%s': it is a left-side iterator, whose range "
               "is the extent of '%s'", wh->name, c->s->lhs->name);
      continue;
    }
    if (it->from_where) {
      error_at(c, wh->loc, "iterator '%s' has two 'where' ranges", wh->name);
      continue;
    }
    int64_t lo, hi;
    if (!ir_eval_int(c->p, wh->lo, &lo) || !ir_eval_int(c->p, wh->hi, &hi)) {
      c->ok = false;
      continue;
    }
    if (hi <= lo) {
      error_at(c, wh->loc, "empty range %lld..%lld for iterator '%s'", (long long)lo,
               (long long)hi, wh->name);
      continue;
    }
    if (lo < -INDEX_LIMIT || hi > INDEX_LIMIT) {
      error_at(c, wh->loc, "range %lld..%lld of iterator '%s' is too large (bounds must lie "
               "within -2^62..2^62)", (long long)lo, (long long)hi, wh->name);
      continue;
    }
    it->lo = lo;
    it->hi = hi;
    it->from_where = true;
    it->range_loc = wh->loc;
  }
}

/* Report every index of access "e" that can leave -2^62..2^62 over the statement's ranges. */
static void check_index_range(sema *c, const ir_expr *e) {
  for (int d = 0; d < e->nargs; d++) {
    const ir_affine *a = &e->index[d];
    double bound = fabs((double)a->c);
    for (int i = 0; i < c->iters.len; i++) {
      const ir_iter *it = &c->iters.data[i];
      double extreme = fmax(fabs((double)it->lo), fabs((double)(it->hi - 1)));
      bound += fabs((double)a->coef[i]) * extreme;
    }
    if (bound > (double)INDEX_LIMIT)
      error_at(c, e->args[d]->loc, "this index can reach %.3g, beyond the supported range "
               "(-2^62..2^62)", bound);
  }
}

static void infer_ranges(sema *c) {
  apply_wheres(c);
  infer_from_access(c, c->s->lhs);
  for (int r = 0; r < c->reads.len; r++)
    if (c->reads.data[r]->index)
      infer_from_access(c, c->reads.data[r]);
  for (int i = 0; i < c->iters.len; i++) {
    ir_iter *it = &c->iters.data[i];
    if (it->hi >= 0 || it->from_where) /* a where range may end at or below 0 */
      continue;
    error_at(c, it->loc, "cannot infer the range of iterator '%s': it never stands alone as an "
             "index", it->name);
    bk_note(c->p->diag, c->s->loc, "add 'where %s in LO..HI' at the end of the statement",
            it->name);
    it->hi = it->lo + 1;
  }
  for (int r = 0; r < c->reads.len; r++)
    if (c->reads.data[r]->index)
      check_index_range(c, c->reads.data[r]);
}

/* ---- rules of use ----------------------------------------------------------------------- */

typedef BK_VEC(const ir_tensor *) written_set;

static bool written_has(const written_set *w, const ir_tensor *t) {
  for (int i = 0; i < w->len; i++)
    if (w->data[i] == t)
      return true;
  return false;
}

static bool same_index(const ir_expr *a, const ir_expr *b, int n) {
  for (int d = 0; d < a->nargs; d++) {
    if (a->index[d].c != b->index[d].c)
      return false;
    for (int i = 0; i < n; i++)
      if (a->index[d].coef[i] != b->index[d].coef[i])
        return false;
  }
  return true;
}

/* Reads of the target, of unwritten outputs and locals; reductions with '='. */
static void check_rules(sema *c, const written_set *written) {
  ir_stmt *s = c->s;
  for (int r = 0; r < c->reads.len; r++) {
    ir_expr *e = c->reads.data[r];
    if (!e->index)
      continue;
    if (e->tensor == s->lhs->tensor && s->assign != IR_ASSIGN_SET)
      error_at(c, e->loc, "the right side of '%s' cannot read its own target '%s'",
               s->assign == IR_ASSIGN_ADD ? "+=" : "max=", e->name);
    else if (e->tensor == s->lhs->tensor && !same_index(e, s->lhs, c->iters.len))
      error_at(c, e->loc, "'=' may read its target '%s' only at its left-side indices",
               e->name);
    else if (e->tensor->role != IR_ROLE_INPUT && !written_has(written, e->tensor))
      error_at(c, e->loc, "%s '%s' is read before any statement writes it",
               e->tensor->role == IR_ROLE_OUTPUT ? "output" : "local", e->name);
  }
  for (int i = 0; i < c->iters.len && s->assign == IR_ASSIGN_SET; i++)
    if (c->iters.data[i].reduction)
      error_at(c, c->iters.data[i].loc,
               "iterator '%s' appears only on the right side, so it is a reduction; use '+=' "
               "or 'max=' to reduce over it", c->iters.data[i].name);
  /* A reduction whose result does not depend on a left-side iterator is legal but usually a
   * typo ("B[k, jj]" for "B[k, j]": jj became one more reduction, j no index at all). Not when
   * the statement continues an accumulation (the target's earlier values differ along it) or
   * the iterator has one value. */
  bool starts = !written_has(written, s->lhs->tensor);
  for (int i = 0; i < c->iters.len && s->assign != IR_ASSIGN_SET && starts && c->ok; i++) {
    bool used = c->iters.data[i].reduction || c->iters.data[i].hi - c->iters.data[i].lo <= 1;
    for (int r = 0; r < c->reads.len && !used; r++)
      for (int d = 0; c->reads.data[r]->index && d < c->reads.data[r]->nargs; d++)
        used |= c->reads.data[r]->index[d].coef[i] != 0;
    if (!used)
      report_at(c, BK_SEV_WARNING, c->iters.data[i].loc,
                 "left-side iterator '%s' is used by no read on the right side, so every "
                 "element of '%s' along it gets the same value", c->iters.data[i].name,
                 s->lhs->name);
  }
}

/* A read index that falls outside its dimension at every point of the statement reads only
 * zeros: legal (zero padding), but a typo, most often a size named like the iterator that was
 * meant ("size k = 4" with A[i, k]: found by a user trial, C came out all zeros). */
static void check_always_outside(sema *c) {
  for (int i = 0; i < c->iters.len; i++)
    if (c->iters.data[i].hi <= c->iters.data[i].lo) /* an empty range: nothing is read */
      return;
  for (int r = 0; r < c->reads.len && c->ok; r++) {
    const ir_expr *e = c->reads.data[r];
    for (int d = 0; e->index && d < e->nargs; d++) {
      int64_t lo, hi, dim = e->tensor->dims[d];
      ir_affine_range(&e->index[d], c->iters.len, c->iters.data, &lo, &hi);
      if (hi >= 0 && lo < dim)
        continue;
      report_at(c, BK_SEV_WARNING, e->args[d]->loc, "this index of '%s' is always outside its "
                "dimension %d (0..%lld), so the read is always 0", e->name, d + 1,
                (long long)dim - 1);
      const ir_expr *x = e->args[d];
      const ir_size *sz = x->kind == IR_EXPR_NAME ? ir_program_find_size(c->p, x->name) : NULL;
      if (sz)
        bk_note(c->p->diag, x->loc, "'%s' is the size %s = %lld here, not an iterator; rename "
                "the size to index with an iterator '%s'", x->name, x->name,
                (long long)sz->value, x->name);
    }
  }
}

/* ---- statements and kernels ------------------------------------------------------------- */

/* Number of arithmetic operations in value expression "e". */
static int count_ops(const ir_expr *e) {
  int n = e->kind == IR_EXPR_OP ? 1 : 0;
  if (e->kind == IR_EXPR_ACCESS)
    return 0;
  for (int i = 0; i < e->nargs; i++)
    n += count_ops(e->args[i]);
  return n;
}

/* Is "e" a product (a tree of '*') with at least one access among its factors? */
static bool is_product_of_reads(const ir_expr *e) {
  if (e->kind == IR_EXPR_ACCESS)
    return true;
  if (e->kind != IR_EXPR_OP || e->op != IR_OP_MUL)
    return false;
  return is_product_of_reads(e->args[0]) || is_product_of_reads(e->args[1]);
}

static void finish_stmt(sema *c, written_set *written) {
  ir_stmt *s = c->s;
  s->niters = c->iters.len;
  s->iters = c->iters.data;
  s->nlhs_iters = s->lhs->nargs;
  s->reads = c->reads.data;
  s->nreads = c->reads.len;
  s->inits_target = s->assign != IR_ASSIGN_SET && !written_has(written, s->lhs->tensor);
  s->product_of_reads = s->assign == IR_ASSIGN_ADD && is_product_of_reads(s->rhs);
  double points = 1;
  for (int i = 0; i < s->niters; i++)
    points *= (double)(s->iters[i].hi - s->iters[i].lo);
  s->flops = points * (count_ops(s->rhs) + (s->assign != IR_ASSIGN_SET ? 1 : 0));
  if (!written_has(written, s->lhs->tensor))
    bk_vec_push(c->p->arena, written, s->lhs->tensor);
}

/* Check statement "s"; "written" holds the tensors earlier statements wrote. */
static bool check_stmt(ir_program *p, ir_kernel *k, ir_stmt *s, written_set *written) {
  sema c = {.p = p, .k = k, .s = s, .ok = true};
  if (!resolve_lhs(&c, s->lhs))
    return false;
  collect_value_iters(&c, s->rhs);
  resolve_access_index(&c, s->lhs); /* now that every iterator is known */
  resolve_value(&c, s->rhs);
  if (!c.ok)
    return false;
  infer_ranges(&c);
  check_rules(&c, written);
  check_always_outside(&c);
  if (!c.ok)
    return false;
  finish_stmt(&c, written);
  return true;
}

/* Is "label" of the form sN, the name a schedule gives statement N, for an N other than
 * "index"? */
static bool label_is_other_index(const char *label, int index) {
  if (label[0] != 's' || !label[1])
    return false;
  for (const char *c = label + 1; *c; c++)
    if (*c < '0' || *c > '9')
      return false;
  char own[16];
  snprintf(own, sizeof own, "s%d", index);
  return strcmp(label, own) != 0;
}

/* Report statement labels of "k" that a schedule could not tell apart: used twice, or sN for
 * another statement than N. */
static bool check_labels(ir_program *p, const ir_kernel *k) {
  bool ok = true;
  for (int i = 0; i < k->stmts.len; i++) {
    const ir_stmt *s = k->stmts.data[i];
    if (s->label && label_is_other_index(s->label, i)) {
      bk_loc l = {s->loc.src, s->loc.offset, (uint32_t)strlen(s->label)};
      bk_error(p->diag, l, "label '%s' is ambiguous: in a schedule, '%s' means statement %s "
               "(this is statement %d)", s->label, s->label, s->label + 1, i);
      ok = false;
    }
  }
  for (int i = 0; i < k->stmts.len; i++)
    for (int j = 0; k->stmts.data[i]->label && j < i; j++) {
      const ir_stmt *a = k->stmts.data[j], *b = k->stmts.data[i];
      if (!a->label || strcmp(a->label, b->label) != 0)
        continue;
      bk_loc la = {a->loc.src, a->loc.offset, (uint32_t)strlen(a->label)};
      bk_loc lb = {b->loc.src, b->loc.offset, (uint32_t)strlen(b->label)};
      bk_error(p->diag, lb, "redefinition of label '%s'", b->label);
      bk_note(p->diag, la, "previous definition of label '%s' is here", a->label);
      ok = false;
      break;
    }
  return ok;
}

bool ir_kernel_check(ir_program *p, ir_kernel *k) {
  written_set written = {0};
  bool ok = check_labels(p, k);
  if (k->noutputs == 0) {
    bk_error(p->diag, k->loc, "kernel '%s' has no outputs", k->name);
    ok = false;
  }
  for (int i = 0; i < k->stmts.len; i++)
    if (!check_stmt(p, k, k->stmts.data[i], &written)) {
      ok = false;
      /* Count the target as written so one error does not cascade into others. */
      ir_expr *lhs = k->stmts.data[i]->lhs;
      if (lhs->tensor && !written_has(&written, lhs->tensor))
        bk_vec_push(p->arena, &written, lhs->tensor);
    }
  for (int i = 0; i < k->params.len; i++) {
    ir_tensor *t = k->params.data[i];
    if (t->role == IR_ROLE_OUTPUT && !written_has(&written, t)) {
      bk_error(p->diag, t->loc, "output '%s' is never written", t->name);
      ok = false;
    }
  }
  k->flops = 0;
  for (int i = 0; ok && i < k->stmts.len; i++)
    k->flops += k->stmts.data[i]->flops;
  return ok;
}
