/*
 * isl AST -> LLVM IR, in the manner of Polly's IslExprBuilder and IslNodeBuilder.
 *
 * Expressions are i64. Loop iterators live in allocas (SROA/mem2reg turn them into phis).
 * fdiv_q is floor division and pdiv_q/pdiv_r divide non-negative values, so C's truncating
 * '/' is used only where isl guarantees it is right. Nodes:
 *   for     a loop (a degenerate one runs its body once)
 *   if      a branch;  block: its children in order
 *   user    "O<k>(i...)": op k at one point (stmt.c)
 *   mark    "brgemm": one BRGEMM call (brgemm_call.c); "transpose", "subsample": a tile of
 *           a transposing or stride-2 copy (transpose.c); "dot": a block of a tail's dot
 *           products (dot.c); "parallel": the loop below runs across
 *           the threads of the kernel's parallel region (parallel.c), which runs everything
 *           else on thread 0 or on all threads alike; "brgemm" subtrees are not generated.
 */
#include "codegen.h"

#include <math.h>

#include <isl/ast.h>
#include <isl/id.h>
#include <isl/val.h>
#include <stdlib.h>
#include <string.h>

LLVMValueRef cg_i64(cg_fn *f, int64_t v) { return LLVMConstInt(f->i64, (unsigned long long)v, 1); }

LLVMValueRef cg_entry_alloca(cg_fn *f, LLVMTypeRef ty, const char *name) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(f->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(f->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first)
    LLVMPositionBuilderBefore(f->b, first);
  else
    LLVMPositionBuilderAtEnd(f->b, entry);
  LLVMValueRef slot = LLVMBuildAlloca(f->b, ty, name);
  LLVMPositionBuilderAtEnd(f->b, cur);
  return slot;
}

LLVMValueRef cg_alloca_i64(cg_fn *f, const char *name) { return cg_entry_alloca(f, f->i64, name); }

void cg_sym_push(cg_fn *f, isl_id *id, LLVMValueRef slot) {
  cg_sym s = {id, slot};
  bk_vec_push(f->arena, &f->syms, s);
}

LLVMValueRef cg_sym_lookup(cg_fn *f, isl_id *id) {
  for (int i = f->syms.len - 1; i >= 0; i--)
    if (f->syms.data[i].id == id)
      return f->syms.data[i].slot;
  return NULL;
}

LLVMValueRef cg_declare(cg_fn *f, const char *name, LLVMTypeRef ty) {
  LLVMValueRef fn = LLVMGetNamedFunction(f->m->mod, name);
  return fn ? fn : LLVMAddFunction(f->m->mod, name, ty);
}

LLVMValueRef cg_intrinsic(cg_fn *f, const char *name, LLVMTypeRef *types, int ntypes,
                          LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(f->m->mod, id, types, (size_t)ntypes);
  LLVMTypeRef ty = LLVMIntrinsicGetType(f->ctx, id, types, (size_t)ntypes);
  return LLVMBuildCall2(f->b, ty, fn, args, (unsigned)nargs, "");
}

/* ---- expressions ------------------------------------------------------------------------- */

LLVMValueRef cg_floor_div(cg_fn *f, LLVMValueRef a, LLVMValueRef b) {
  /* q = a / b (truncating); q - 1 when the remainder is non-zero and the signs differ. */
  LLVMValueRef q = LLVMBuildSDiv(f->b, a, b, "");
  LLVMValueRef r = LLVMBuildSRem(f->b, a, b, "");
  LLVMValueRef nz = LLVMBuildICmp(f->b, LLVMIntNE, r, cg_i64(f, 0), "");
  LLVMValueRef sx = LLVMBuildICmp(f->b, LLVMIntSLT, LLVMBuildXor(f->b, r, b, ""), cg_i64(f, 0), "");
  LLVMValueRef adj = LLVMBuildAnd(f->b, nz, sx, "");
  return LLVMBuildSub(f->b, q, LLVMBuildZExt(f->b, adj, f->i64, ""), "");
}

LLVMValueRef cg_smax(cg_fn *f, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, a, b, ""), a, b, "");
}

LLVMValueRef cg_smin(cg_fn *f, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef to_i64(cg_fn *f, LLVMValueRef v) {
  return LLVMTypeOf(v) == f->i1 ? LLVMBuildZExt(f->b, v, f->i64, "") : v;
}

static LLVMValueRef to_i1(cg_fn *f, LLVMValueRef v) {
  return LLVMTypeOf(v) == f->i1 ? v : LLVMBuildICmp(f->b, LLVMIntNE, v, cg_i64(f, 0), "");
}

static LLVMValueRef binary(cg_fn *f, enum isl_ast_expr_op_type t, LLVMValueRef a, LLVMValueRef b) {
  static const LLVMIntPredicate preds[] = {
      [isl_ast_expr_op_eq] = LLVMIntEQ, [isl_ast_expr_op_le] = LLVMIntSLE,
      [isl_ast_expr_op_lt] = LLVMIntSLT, [isl_ast_expr_op_ge] = LLVMIntSGE,
      [isl_ast_expr_op_gt] = LLVMIntSGT};
  switch (t) {
  case isl_ast_expr_op_add: return LLVMBuildAdd(f->b, a, b, "");
  case isl_ast_expr_op_sub: return LLVMBuildSub(f->b, a, b, "");
  case isl_ast_expr_op_mul: return LLVMBuildMul(f->b, a, b, "");
  case isl_ast_expr_op_div: return LLVMBuildSDiv(f->b, a, b, "");
  case isl_ast_expr_op_pdiv_q: return LLVMBuildSDiv(f->b, a, b, "");
  case isl_ast_expr_op_fdiv_q: return cg_floor_div(f, a, b);
  case isl_ast_expr_op_pdiv_r:
  case isl_ast_expr_op_zdiv_r: return LLVMBuildSRem(f->b, a, b, "");
  case isl_ast_expr_op_max: return cg_smax(f, a, b);
  case isl_ast_expr_op_min: return cg_smin(f, a, b);
  case isl_ast_expr_op_and:
  case isl_ast_expr_op_and_then: return LLVMBuildAnd(f->b, to_i1(f, a), to_i1(f, b), "");
  case isl_ast_expr_op_or:
  case isl_ast_expr_op_or_else: return LLVMBuildOr(f->b, to_i1(f, a), to_i1(f, b), "");
  case isl_ast_expr_op_eq:
  case isl_ast_expr_op_le:
  case isl_ast_expr_op_lt:
  case isl_ast_expr_op_ge:
  case isl_ast_expr_op_gt: return LLVMBuildICmp(f->b, preds[t], a, b, "");
  default: return NULL;
  }
}

/* Operation "e" with n arguments: n-ary min/max fold left; and_then/or_else evaluate both
 * sides, which is safe because isl's conditions have no side effects or traps. */
static LLVMValueRef op_expr(cg_fn *f, isl_ast_expr *e) {
  enum isl_ast_expr_op_type t = isl_ast_expr_op_get_type(e);
  int n = (int)isl_ast_expr_op_get_n_arg(e);
  LLVMValueRef v[3] = {0};
  if (t == isl_ast_expr_op_minus || t == isl_ast_expr_op_cond || t == isl_ast_expr_op_select) {
    for (int i = 0; i < n && i < 3; i++) {
      isl_ast_expr *a = isl_ast_expr_op_get_arg(e, i);
      v[i] = cg_ast_expr(f, a);
      isl_ast_expr_free(a);
    }
    if (t == isl_ast_expr_op_minus)
      return LLVMBuildNeg(f->b, to_i64(f, v[0]), "");
    return LLVMBuildSelect(f->b, to_i1(f, v[0]), to_i64(f, v[1]), to_i64(f, v[2]), "");
  }
  isl_ast_expr *a0 = isl_ast_expr_op_get_arg(e, 0);
  LLVMValueRef acc = cg_ast_expr(f, a0);
  isl_ast_expr_free(a0);
  for (int i = 1; i < n; i++) {
    isl_ast_expr *a = isl_ast_expr_op_get_arg(e, i);
    LLVMValueRef x = cg_ast_expr(f, a);
    isl_ast_expr_free(a);
    bool logical = t == isl_ast_expr_op_and || t == isl_ast_expr_op_and_then ||
                   t == isl_ast_expr_op_or || t == isl_ast_expr_op_or_else;
    acc = binary(f, t, logical ? acc : to_i64(f, acc), logical ? x : to_i64(f, x));
    if (!acc) {
      f->err = strdup("internal: unsupported isl AST operation");
      return cg_i64(f, 0);
    }
  }
  return acc;
}

LLVMValueRef cg_ast_expr(cg_fn *f, isl_ast_expr *e) {
  switch (isl_ast_expr_get_type(e)) {
  case isl_ast_expr_int: {
    isl_val *v = isl_ast_expr_get_val(e);
    long x = isl_val_get_num_si(v);
    isl_val_free(v);
    return cg_i64(f, x);
  }
  case isl_ast_expr_id: {
    isl_id *id = isl_ast_expr_get_id(e);
    LLVMValueRef slot = cg_sym_lookup(f, id);
    isl_id_free(id);
    if (!slot) {
      f->err = strdup("internal: unknown iterator in the isl AST");
      return cg_i64(f, 0);
    }
    return LLVMBuildLoad2(f->b, f->i64, slot, "");
  }
  case isl_ast_expr_op: return op_expr(f, e);
  default: f->err = strdup("internal: bad isl AST expression"); return cg_i64(f, 0);
  }
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static LLVMBasicBlockRef new_block(cg_fn *f, const char *name) {
  return LLVMAppendBasicBlockInContext(f->ctx, f->fn, name);
}

static LLVMValueRef gen_sub_expr(cg_fn *f, isl_ast_expr *e) {
  LLVMValueRef v = cg_ast_expr(f, e);
  isl_ast_expr_free(e);
  return v;
}

static const sched_op *op_of_call(cg_fn *f, isl_ast_expr *call);
static int call_args(cg_fn *f, isl_ast_expr *call, LLVMValueRef *out);

/* Does expression "e" read iterator "id"? */
static bool uses_id(isl_ast_expr *e, isl_id *id) {
  if (isl_ast_expr_get_type(e) == isl_ast_expr_id) {
    isl_id *x = isl_ast_expr_get_id(e);
    bool same = x == id;
    isl_id_free(x);
    return same;
  }
  if (isl_ast_expr_get_type(e) != isl_ast_expr_op)
    return false;
  bool used = false;
  for (isl_size i = 0, n = isl_ast_expr_op_get_n_arg(e); i < n && !used; i++) {
    isl_ast_expr *a = isl_ast_expr_op_get_arg(e, i);
    used = uses_id(a, id);
    isl_ast_expr_free(a);
  }
  return used;
}

#define MAX_LANES 16 /* the maxima of gen_max_for */

/* The op of a loop over "id" with step 1 whose body is one point of a max= op, when "id" is
 * one of the op's reductions (an argument of its own, absent from the target's index) and
 * every read is in bounds (a value without branches); else NULL. */
static const sched_op *max_reduction_loop(cg_fn *f, isl_ast_node *node, isl_id *id) {
  isl_ast_node *body = isl_ast_node_for_get_body(node);
  isl_ast_expr *inc = isl_ast_node_for_get_inc(node);
  isl_val *step = isl_ast_expr_get_type(inc) == isl_ast_expr_int ? isl_ast_expr_get_val(inc) : NULL;
  bool ok = step && isl_val_is_one(step) == isl_bool_true &&
            isl_ast_node_get_type(body) == isl_ast_node_user;
  isl_val_free(step);
  isl_ast_expr_free(inc);
  const sched_op *op = NULL;
  if (ok) {
    isl_ast_expr *call = isl_ast_node_user_get_expr(body);
    op = op_of_call(f, call);
    ok = op->kind == SCHED_OP_LOOPS && op->assign == IR_ASSIGN_MAX;
    for (int r = 0; ok && r < op->nreads; r++)
      ok = !op->reads[r].may_oob;
    int pos = -1;
    for (isl_size i = 1, n = isl_ast_expr_op_get_n_arg(call); ok && i < n; i++) {
      isl_ast_expr *a = isl_ast_expr_op_get_arg(call, i);
      bool self = isl_ast_expr_get_type(a) == isl_ast_expr_id && uses_id(a, id);
      if (self && pos < 0)
        pos = (int)i - 1;
      else
        ok = !uses_id(a, id);
      isl_ast_expr_free(a);
    }
    /* a short loop (a 3x3 window) would only run the plain loop after the NaN-started maxima */
    ok = ok && pos >= 0 && pos < op->niters && op->iters[pos].hi - op->iters[pos].lo >= MAX_LANES;
    for (int d = 0; ok && d < sched_access_rank(f->sk, &op->write); d++)
      ok = op->write.index[d].coef[pos] == 0;
    isl_ast_expr_free(call);
  }
  isl_ast_node_free(body);
  return ok ? op : NULL;
}

/* The loop of max_reduction_loop: LLVM keeps a reduction through llvm.maxnum scalar (its
 * vectorizer wants no-NaNs), a chain of one maxnum per element (softmax's row maximum of
 * 256 x 1000: 0.31 ms). Steps of MAX_LANES points go into that many independent maxima, which
 * start as NaN (maxnum(NaN, x) = x) and are folded into the target after them (maxnum is
 * associative: the result is C's fmaxf over the same values, NaN only when every value is
 * NaN); the last points run as the plain loop. */
static void gen_max_for(cg_fn *f, isl_ast_node *node, LLVMValueRef slot, const sched_op *op) {
  LLVMTypeRef vty = LLVMVectorType(f->f32, MAX_LANES);
  LLVMValueRef lanes[MAX_LANES];
  for (int l = 0; l < MAX_LANES; l++)
    lanes[l] = LLVMConstReal(f->f32, NAN);
  LLVMValueRef acc = cg_entry_alloca(f, vty, "max.acc");
  LLVMBuildStore(f->b, LLVMConstVector(lanes, MAX_LANES), acc);
  isl_ast_node *body = isl_ast_node_for_get_body(node);
  isl_ast_expr *call = isl_ast_node_user_get_expr(body);
  LLVMValueRef it[64];
  LLVMBasicBlockRef head = new_block(f, "max.head"), loop = new_block(f, "max.body"),
                    done = new_block(f, "max.done");
  LLVMBuildBr(f->b, head);
  LLVMPositionBuilderAtEnd(f->b, head); /* the loop's condition at the last point of the step */
  LLVMValueRef j = LLVMBuildLoad2(f->b, f->i64, slot, "");
  LLVMBuildStore(f->b, LLVMBuildAdd(f->b, j, cg_i64(f, MAX_LANES - 1), ""), slot);
  LLVMValueRef c = gen_sub_expr(f, isl_ast_node_for_get_cond(node));
  LLVMBuildStore(f->b, j, slot);
  LLVMBuildCondBr(f->b, to_i1(f, c), loop, done);
  LLVMPositionBuilderAtEnd(f->b, loop);
  LLVMValueRef v = LLVMGetUndef(vty);
  for (int l = 0; l < MAX_LANES; l++) {
    LLVMBuildStore(f->b, LLVMBuildAdd(f->b, j, cg_i64(f, l), ""), slot);
    call_args(f, call, it);
    v = LLVMBuildInsertElement(f->b, v, cg_stmt_value(f, op, it), LLVMConstInt(f->i32, (unsigned)l, 0), "");
  }
  LLVMValueRef args[2] = {LLVMBuildLoad2(f->b, vty, acc, ""), v};
  LLVMBuildStore(f->b, cg_intrinsic(f, "llvm.maxnum", &vty, 1, args, 2), acc);
  LLVMBuildStore(f->b, LLVMBuildAdd(f->b, j, cg_i64(f, MAX_LANES), ""), slot);
  LLVMBuildBr(f->b, head);
  LLVMPositionBuilderAtEnd(f->b, done);
  LLVMValueRef all = LLVMBuildLoad2(f->b, vty, acc, "");
  LLVMValueRef m = cg_intrinsic(f, "llvm.vector.reduce.fmax", &vty, 1, &all, 1);
  call_args(f, call, it); /* the target's index does not depend on the loop */
  cg_stmt_max_into(f, op, it, m);
  isl_ast_expr_free(call);
  isl_ast_node_free(body);
}

/* for (it = init; cond; it += inc) body */
static void gen_for(cg_fn *f, isl_ast_node *node) {
  isl_ast_expr *it_expr = isl_ast_node_for_get_iterator(node);
  isl_id *id = isl_ast_expr_get_id(it_expr);
  isl_ast_expr_free(it_expr);
  LLVMValueRef slot = cg_alloca_i64(f, isl_id_get_name(id));
  LLVMBuildStore(f->b, gen_sub_expr(f, isl_ast_node_for_get_init(node)), slot);
  cg_sym_push(f, id, slot);
  isl_ast_node *body = isl_ast_node_for_get_body(node);
  if (isl_ast_node_for_is_degenerate(node) == isl_bool_true) {
    cg_ast_gen(f, body);
  } else {
    f->loop_depth++;
    const sched_op *max_op = max_reduction_loop(f, node, id);
    if (max_op)
      gen_max_for(f, node, slot, max_op); /* then the rest of the points, below */
    LLVMBasicBlockRef head = new_block(f, "for.head"), loop = new_block(f, "for.body"),
                      exit = new_block(f, "for.exit");
    LLVMBuildBr(f->b, head);
    LLVMPositionBuilderAtEnd(f->b, head);
    LLVMValueRef c = gen_sub_expr(f, isl_ast_node_for_get_cond(node));
    LLVMBuildCondBr(f->b, to_i1(f, c), loop, exit);
    LLVMPositionBuilderAtEnd(f->b, loop);
    cg_ast_gen(f, body);
    LLVMValueRef inc = gen_sub_expr(f, isl_ast_node_for_get_inc(node));
    LLVMValueRef cur = LLVMBuildLoad2(f->b, f->i64, slot, "");
    LLVMBuildStore(f->b, LLVMBuildAdd(f->b, cur, inc, ""), slot);
    LLVMBuildBr(f->b, head);
    LLVMPositionBuilderAtEnd(f->b, exit);
    f->loop_depth--;
  }
  isl_ast_node_free(body);
  f->syms.len--;
  isl_id_free(id);
}

static void gen_if(cg_fn *f, isl_ast_node *node) {
  LLVMValueRef c = gen_sub_expr(f, isl_ast_node_if_get_cond(node));
  LLVMBasicBlockRef then = new_block(f, "if.then"), els = new_block(f, "if.else"),
                    done = new_block(f, "if.end");
  LLVMBuildCondBr(f->b, to_i1(f, c), then, els);
  LLVMPositionBuilderAtEnd(f->b, then);
  isl_ast_node *t = isl_ast_node_if_get_then_node(node);
  cg_ast_gen(f, t);
  isl_ast_node_free(t);
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, els);
  if (isl_ast_node_if_has_else_node(node) == isl_bool_true) {
    isl_ast_node *e = isl_ast_node_if_get_else_node(node);
    cg_ast_gen(f, e);
    isl_ast_node_free(e);
  }
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, done);
}

/* In a parallel region, consecutive children without a parallel loop run on thread 0 under one
 * guard and one barrier. */
static void gen_block(cg_fn *f, isl_ast_node *node) {
  isl_ast_node_list *list = isl_ast_node_block_get_children(node);
  isl_size n = isl_ast_node_list_n_ast_node(list);
  bool region = f->spmd, serial = false;
  for (int i = 0; i < n; i++) {
    isl_ast_node *c = isl_ast_node_list_get_ast_node(list, i);
    bool par = region && cg_has_parallel(c);
    if (region && !par && !serial)
      cg_spmd_serial_begin(f);
    else if (par && serial)
      cg_spmd_serial_end(f);
    serial = region && !par;
    cg_ast_gen(f, c);
    isl_ast_node_free(c);
  }
  if (serial)
    cg_spmd_serial_end(f);
  isl_ast_node_list_free(list);
}

/* The op named "O<k>" by the call expression "call". */
static const sched_op *op_of_call(cg_fn *f, isl_ast_expr *call) {
  isl_ast_expr *fn = isl_ast_expr_op_get_arg(call, 0);
  isl_id *id = isl_ast_expr_get_id(fn);
  int k = atoi(isl_id_get_name(id) + 1);
  isl_id_free(id);
  isl_ast_expr_free(fn);
  return f->sk->ops.data[k];
}

/* Evaluate the arguments 1..n of call "call" into "out". */
static int call_args(cg_fn *f, isl_ast_expr *call, LLVMValueRef *out) {
  int n = (int)isl_ast_expr_op_get_n_arg(call) - 1;
  for (int i = 0; i < n; i++)
    out[i] = to_i64(f, gen_sub_expr(f, isl_ast_expr_op_get_arg(call, i + 1)));
  return n;
}

static void gen_user(cg_fn *f, isl_ast_node *node) {
  isl_ast_expr *call = isl_ast_node_user_get_expr(node);
  const sched_op *op = op_of_call(f, call);
  LLVMValueRef it[64];
  call_args(f, call, it);
  isl_ast_expr_free(call);
  cg_stmt_gen(f, op, it);
}

static void gen_mark(cg_fn *f, isl_ast_node *node) {
  isl_id *mark = isl_ast_node_mark_get_id(node);
  isl_ast_node *child = isl_ast_node_mark_get_node(node);
  bool brgemm = strcmp(isl_id_get_name(mark), SCHED_MARK_BRGEMM) == 0;
  bool subsample = strcmp(isl_id_get_name(mark), SCHED_MARK_SUBSAMPLE) == 0;
  bool dot = strcmp(isl_id_get_name(mark), SCHED_MARK_DOT) == 0;
  if (brgemm || subsample || dot || strcmp(isl_id_get_name(mark), SCHED_MARK_TRANSPOSE) == 0) {
    isl_id *ann = isl_ast_node_get_annotation(node);
    cg_mark_bounds *mb = isl_id_get_user(ann);
    LLVMValueRef lo[64], hi[64];
    call_args(f, mb->lo, lo);
    call_args(f, mb->hi, hi);
    if (brgemm)
      cg_brgemm_gen(f, isl_id_get_user(mark), lo, hi);
    else if (subsample)
      cg_subsample_gen(f, isl_id_get_user(mark), lo, hi, child);
    else if (dot)
      cg_dot_gen(f, isl_id_get_user(mark), lo, hi, child);
    else
      cg_transpose_gen(f, isl_id_get_user(mark), lo, hi, child);
    isl_id_free(ann);
  } else if (f->spmd && cg_splittable_mark(node)) {
    cg_parallel_gen(f, child, isl_id_get_user(mark));
  } else {
    cg_ast_gen(f, child);
  }
  isl_ast_node_free(child);
  isl_id_free(mark);
}

void cg_ast_gen(cg_fn *f, isl_ast_node *node) {
  if (f->spmd && isl_ast_node_get_type(node) != isl_ast_node_block && !cg_has_parallel(node)) {
    cg_spmd_serial_begin(f);
    cg_ast_gen(f, node);
    cg_spmd_serial_end(f);
    return;
  }
  switch (isl_ast_node_get_type(node)) {
  case isl_ast_node_for: gen_for(f, node); break;
  case isl_ast_node_if: gen_if(f, node); break;
  case isl_ast_node_block: gen_block(f, node); break;
  case isl_ast_node_mark: gen_mark(f, node); break;
  case isl_ast_node_user: gen_user(f, node); break;
  default: break;
  }
}
