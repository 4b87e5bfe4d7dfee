/*
 * The polyhedral view of a checked kernel: for statement k with iterators i0..in-1,
 *
 *   domain  { Sk[i0, ..., in-1] : lo_j <= i_j < hi_j }
 *   write   { Sk[...] -> T[lhs index] }
 *   read r  { Sk[...] -> U[index of read r] }   (not limited to U's bounds)
 *
 * built through isl's API (never by printing and parsing strings, so any tensor name works).
 */
#include "ir.h"

#include <isl/aff.h>
#include <isl/constraint.h>
#include <isl/id.h>
#include <isl/local_space.h>
#include <isl/space.h>
#include <isl/val.h>

/* The space of statement "s": a set space named "Sk" with its iterators as dim names. */
static isl_space *stmt_space(isl_ctx *ctx, const ir_stmt *s) {
  char name[32];
  snprintf(name, sizeof name, "S%d", s->index);
  isl_space *sp = isl_space_set_alloc(ctx, 0, (unsigned)s->niters);
  sp = isl_space_set_tuple_name(sp, isl_dim_set, name);
  for (int i = 0; i < s->niters; i++)
    sp = isl_space_set_dim_name(sp, isl_dim_set, (unsigned)i, s->iters[i].name);
  return sp;
}

/* "v" as an isl_val (every integer of the IR is 64-bit; isl's *_si setters take an int). */
isl_val *ir_isl_val(isl_ctx *ctx, int64_t v) { return isl_val_int_from_si(ctx, (long)v); }

static isl_val *val(isl_ctx *ctx, int64_t v) { return ir_isl_val(ctx, v); }

static isl_set *stmt_domain(isl_ctx *ctx, const ir_stmt *s) {
  isl_space *sp = stmt_space(ctx, s);
  isl_set *dom = isl_set_universe(isl_space_copy(sp));
  isl_local_space *ls = isl_local_space_from_space(sp);
  for (int i = 0; i < s->niters; i++) {
    isl_constraint *lo = isl_constraint_alloc_inequality(isl_local_space_copy(ls));
    lo = isl_constraint_set_coefficient_si(lo, isl_dim_set, i, 1);
    lo = isl_constraint_set_constant_val(lo, val(ctx, -s->iters[i].lo));
    isl_constraint *hi = isl_constraint_alloc_inequality(isl_local_space_copy(ls));
    hi = isl_constraint_set_coefficient_si(hi, isl_dim_set, i, -1);
    hi = isl_constraint_set_constant_val(hi, val(ctx, s->iters[i].hi - 1));
    dom = isl_set_add_constraint(dom, lo);
    dom = isl_set_add_constraint(dom, hi);
  }
  isl_local_space_free(ls);
  return dom;
}

/* The map from the domain of "s" to the elements of tensor "t" accessed through "index". */
static isl_map *access_map(isl_ctx *ctx, const ir_stmt *s, const ir_tensor *t,
                           const ir_affine *index) {
  isl_space *dom_sp = stmt_space(ctx, s);
  isl_space *sp = isl_space_map_from_domain_and_range(
      isl_space_copy(dom_sp), isl_space_set_alloc(ctx, 0, (unsigned)t->rank));
  sp = isl_space_set_tuple_name(sp, isl_dim_out, t->name);
  isl_aff_list *list = isl_aff_list_alloc(ctx, t->rank);
  isl_local_space *ls = isl_local_space_from_space(dom_sp);
  for (int d = 0; d < t->rank; d++) {
    isl_aff *a = isl_aff_zero_on_domain(isl_local_space_copy(ls));
    a = isl_aff_set_constant_val(a, val(ctx, index[d].c));
    for (int i = 0; i < s->niters; i++)
      a = isl_aff_set_coefficient_val(a, isl_dim_in, i, val(ctx, index[d].coef[i]));
    list = isl_aff_list_add(list, a);
  }
  isl_local_space_free(ls);
  isl_multi_aff *ma = isl_multi_aff_from_aff_list(sp, list);
  return isl_map_from_multi_aff(ma);
}

static void stmt_build_isl(isl_ctx *ctx, bk_arena *arena, ir_stmt *s) {
  s->domain = stmt_domain(ctx, s);
  s->write = access_map(ctx, s, s->lhs->tensor, s->lhs->index);
  s->write = isl_map_intersect_domain(s->write, isl_set_copy(s->domain));
  s->read = bk_arena_alloc(arena, sizeof(isl_map *) * (size_t)(s->nreads + 1));
  for (int r = 0; r < s->nreads; r++) {
    const ir_expr *e = s->reads[r];
    s->read[r] = access_map(ctx, s, e->tensor, e->index);
    s->read[r] = isl_map_intersect_domain(s->read[r], isl_set_copy(s->domain));
  }
}

void ir_program_build_isl(ir_program *p) {
  for (int k = 0; k < p->kernels.len; k++)
    for (int i = 0; i < p->kernels.data[k]->stmts.len; i++) {
      ir_stmt *s = p->kernels.data[k]->stmts.data[i];
      if (!s->domain && s->lhs->tensor) /* every statement passed sema, iterators or not */
        stmt_build_isl(p->isl, p->arena, s);
    }
}

/* The box of tensor "t" as a set { T[x] : 0 <= x_d < dims_d }. */
static isl_set *tensor_box(isl_ctx *ctx, const ir_tensor *t) {
  isl_space *sp = isl_space_set_alloc(ctx, 0, (unsigned)t->rank);
  sp = isl_space_set_tuple_name(sp, isl_dim_set, t->name);
  isl_set *box = isl_set_universe(isl_space_copy(sp));
  isl_local_space *ls = isl_local_space_from_space(sp);
  for (int d = 0; d < t->rank; d++) {
    isl_constraint *lo = isl_constraint_alloc_inequality(isl_local_space_copy(ls));
    lo = isl_constraint_set_coefficient_si(lo, isl_dim_set, d, 1);
    isl_constraint *hi = isl_constraint_alloc_inequality(isl_local_space_copy(ls));
    hi = isl_constraint_set_coefficient_si(hi, isl_dim_set, d, -1);
    hi = isl_constraint_set_constant_val(hi, val(ctx, t->dims[d] - 1));
    box = isl_set_add_constraint(isl_set_add_constraint(box, lo), hi);
  }
  isl_local_space_free(ls);
  return box;
}

isl_set *ir_stmt_inbounds_domain(const ir_stmt *s) {
  isl_set *dom = isl_set_copy(s->domain);
  for (int r = 0; r < s->nreads; r++) {
    isl_set *box = tensor_box(isl_set_get_ctx(dom), s->reads[r]->tensor);
    isl_map *m = isl_map_copy(s->read[r]);
    dom = isl_set_intersect(dom, isl_map_domain(isl_map_intersect_range(m, box)));
  }
  return dom;
}
