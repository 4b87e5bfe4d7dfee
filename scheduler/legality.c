/*
 * Legality of a lowered kernel against its dependences, computed with isl.
 *
 * Ops run in sequence, in the statements' order, so a dependence between two ops is always
 * respected; what a schedule can break is inside one op. (The one exception, a tail loop nest
 * run inside its BRGEMM's loops, shares no element with the BRGEMM: it writes the outputs
 * the calls leave out and reads its own copy, written before.) There, the only dependences are those
 * between instances that write the same element (a reduction: reorderable, so any loop order
 * is legal), and a parallel loop must not carry one. For each parallel loop we map the
 * write-write self-dependence through the op's loop schedule and check that no distance vector
 * is zero on the outer loops and non-zero on the parallel one.
 *
 * As a check of the lowering itself, isl's dataflow analysis (isl_union_access_info_compute_flow
 * over the op sequence) must find a source for every read of a workspace buffer or output.
 */
#include "scheduler.h"

#include <isl/aff.h>
#include <isl/constraint.h>
#include <isl/flow.h>
#include <isl/schedule.h>
#include <isl/local_space.h>
#include <isl/space.h>
#include <stdlib.h>

/* { O<op>[i] -> B<buf>[offset] } over the op's domain: every access as its linear element
 * offset, so per-dimension and flat accesses of one buffer meet in one space. */
static isl_map *access_map(const sched_kernel *sk, const sched_op *op, const sched_access *a,
                           isl_ctx *ctx) {
  char name[32];
  snprintf(name, sizeof name, "B%d", a->buf);
  int64_t lin[64], c0;
  sched_access_linearize(sk, op, a, lin, &c0);
  isl_space *dom = isl_set_get_space(op->domain);
  isl_space *sp = isl_space_map_from_domain_and_range(isl_space_copy(dom), isl_space_set_alloc(ctx, 0, 1));
  sp = isl_space_set_tuple_name(sp, isl_dim_out, name);
  isl_local_space *ls = isl_local_space_from_space(dom);
  isl_aff *f = isl_aff_zero_on_domain(ls);
  f = isl_aff_set_constant_val(f, ir_isl_val(isl_aff_get_ctx(f), c0));
  for (int i = 0; i < op->niters; i++)
    f = isl_aff_set_coefficient_val(f, isl_dim_in, i, ir_isl_val(isl_aff_get_ctx(f), lin[i]));
  isl_multi_aff *ma = isl_multi_aff_from_aff_list(sp, isl_aff_list_from_aff(f));
  return isl_map_intersect_domain(isl_map_from_multi_aff(ma), isl_set_copy(op->domain));
}

/* Distance vectors zero on loops [0, p) and non-zero on loop p, of the set "deltas". */
static isl_set *carried_at(isl_set *deltas, int p) {
  isl_space *sp = isl_set_get_space(deltas);
  isl_set *eq = isl_set_universe(isl_space_copy(sp));
  isl_local_space *ls = isl_local_space_from_space(sp);
  for (int i = 0; i < p; i++) {
    isl_constraint *c = isl_constraint_alloc_equality(isl_local_space_copy(ls));
    eq = isl_set_add_constraint(eq, isl_constraint_set_coefficient_si(c, isl_dim_set, i, 1));
  }
  isl_set *pos = isl_set_copy(eq), *neg = eq;
  isl_constraint *c = isl_constraint_alloc_inequality(isl_local_space_copy(ls));
  c = isl_constraint_set_coefficient_si(c, isl_dim_set, p, 1);
  pos = isl_set_add_constraint(pos, isl_constraint_set_constant_si(c, -1));
  c = isl_constraint_alloc_inequality(ls);
  c = isl_constraint_set_coefficient_si(c, isl_dim_set, p, -1);
  neg = isl_set_add_constraint(neg, isl_constraint_set_constant_si(c, -1));
  return isl_set_intersect(deltas, isl_set_union(pos, neg));
}

/* Does the parallel loop of "op" carry a dependence? */
static bool parallel_carries(const sched_kernel *sk, const sched_op *op, isl_ctx *ctx) {
  isl_map *w = access_map(sk, op, &op->write, ctx);
  isl_map *rev = isl_map_reverse(isl_map_copy(w));
  isl_map *same = isl_map_apply_range(w, rev);
  isl_map *id = isl_map_identity(isl_space_map_from_set(isl_set_get_space(op->domain)));
  same = isl_map_subtract(same, id);
  isl_map *loops = sched_op_loop_map(op, ctx);
  isl_map *rloops = isl_map_reverse(isl_map_copy(loops));
  isl_map *ld = isl_map_apply_range(isl_map_apply_range(rloops, same), loops);
  isl_set *bad = carried_at(isl_map_deltas(ld), op->sched.parallel);
  isl_bool empty = isl_set_is_empty(bad);
  isl_set_free(bad);
  return empty != isl_bool_true;
}

/* The points of "op" where access "a" is inside its buffer, dimension by dimension. */
static isl_set *inbounds(const sched_kernel *sk, const sched_op *op, const sched_access *a,
                         isl_ctx *ctx) {
  isl_set *dom = isl_set_copy(op->domain);
  isl_local_space *ls = isl_local_space_from_space(isl_set_get_space(op->domain));
  for (int d = 0; d < sched_access_rank(sk, a); d++) {
    isl_aff *f = isl_aff_zero_on_domain(isl_local_space_copy(ls));
    f = isl_aff_set_constant_val(f, ir_isl_val(isl_aff_get_ctx(f), a->index[d].c));
    for (int i = 0; i < op->niters; i++)
      f = isl_aff_set_coefficient_val(f, isl_dim_in, i, ir_isl_val(isl_aff_get_ctx(f), a->index[d].coef[i]));
    isl_aff *hi = isl_aff_add_constant_val(isl_aff_neg(isl_aff_copy(f)),
                                           ir_isl_val(isl_aff_get_ctx(f), sched_access_dim(sk, a, d) - 1));
    dom = isl_set_intersect(dom, isl_pw_aff_nonneg_set(isl_pw_aff_from_aff(f)));
    dom = isl_set_intersect(dom, isl_pw_aff_nonneg_set(isl_pw_aff_from_aff(hi)));
  }
  isl_local_space_free(ls);
  return dom;
}

/* The ops in sequence, each over its own iterators in their original order (a schedule tree:
 * isl's dataflow analysis is several times faster on one than on a flat schedule map). */
static isl_schedule *op_sequence(const sched_kernel *sk) {
  isl_schedule *all = NULL;
  for (int i = 0; i < sk->ops.len; i++) {
    const sched_op *op = sk->ops.data[i];
    isl_schedule *s = isl_schedule_from_domain(isl_union_set_from_set(isl_set_copy(op->domain)));
    if (op->niters > 0) {
      isl_multi_aff *id = isl_multi_aff_identity(isl_space_map_from_set(isl_set_get_space(op->domain)));
      id = isl_multi_aff_reset_tuple_id(id, isl_dim_out);
      s = isl_schedule_insert_partial_schedule(s, isl_multi_union_pw_aff_from_multi_aff(id));
    }
    all = all ? isl_schedule_sequence(all, s) : s;
  }
  return all;
}

#define DATAFLOW_MAX_OPS 64 /* ops of a kernel from which unsourced_reads is skipped */

/* Reads of non-input buffers that isl's dataflow finds no writer for. */
static isl_union_map *unsourced_reads(const sched_kernel *sk, isl_ctx *ctx) {
  isl_union_map *reads = isl_union_map_empty(isl_space_params_alloc(ctx, 0));
  isl_union_map *writes = isl_union_map_empty(isl_space_params_alloc(ctx, 0));
  for (int i = 0; i < sk->ops.len; i++) {
    const sched_op *op = sk->ops.data[i];
    writes = isl_union_map_add_map(writes, access_map(sk, op, &op->write, ctx));
    for (int r = 0; r < op->nreads; r++) {
      const sched_buf *b = &sk->bufs.data[op->reads[r].buf];
      if (b->param >= 0 && b->param < sk->k->ninputs)
        continue;
      isl_map *m = access_map(sk, op, &op->reads[r], ctx);
      if (op->reads[r].may_oob) /* only in-bounds reads need a writer */
        m = isl_map_intersect_domain(m, inbounds(sk, op, &op->reads[r], ctx));
      reads = isl_union_map_add_map(reads, m);
    }
  }
  isl_union_access_info *ai = isl_union_access_info_from_sink(reads);
  ai = isl_union_access_info_set_must_source(ai, writes);
  ai = isl_union_access_info_set_schedule(ai, op_sequence(sk));
  isl_union_flow *flow = isl_union_access_info_compute_flow(ai);
  isl_union_map *none = isl_union_flow_get_may_no_source(flow);
  isl_union_flow_free(flow);
  return none;
}

bool sched_check_legality(const sched_kernel *sk, isl_ctx *ctx, bk_diag *diag) {
  bool ok = true;
  for (int i = 0; i < sk->ops.len; i++) {
    const sched_op *op = sk->ops.data[i];
    if (op->sched.parallel < 0 || !parallel_carries(sk, op, ctx))
      continue;
    const char *it = op->iters[op->sched.order[op->sched.parallel].iter].name;
    bk_error(diag, op->sched.loc, "the parallel loop over '%s' carries a dependence (two "
             "iterations write the same element)", it);
    ok = false;
  }
  /* An internal check of the lowering (every read of a scratch buffer or local has a writer
   * before it), not of the user's schedule: isl's dataflow over all ops grows with their
   * square (800 statements took 18 s to compile; found by a trial), so long kernels skip it;
   * the tests run it on every kernel they lower. */
  if (sk->ops.len > DATAFLOW_MAX_OPS)
    return ok;
  isl_union_map *none = unsourced_reads(sk, ctx);
  if (isl_union_map_is_empty(none) != isl_bool_true) {
    char *str = isl_union_map_to_str(none);
    bk_error(diag, BK_NO_LOC, "internal: reads with no writer after lowering: %s", str);
    free(str);
    ok = false;
  }
  isl_union_map_free(none);
  return ok;
}
