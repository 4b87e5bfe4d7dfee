/*
 * Parallel loops through libgomp, the way gcc compiles "#pragma omp parallel for
 * schedule(static)": the loop below a "parallel" mark is outlined into a function
 * "NAME.omp.N(void *data)" that runs one contiguous block of iterations per thread, and the
 * kernel calls GOMP_parallel(fn, data, nthreads, 0). "data" is an array of 64-bit slots with
 * the iterators in scope, the buffer pointers and the loop bounds. nthreads is 0 (libgomp's
 * default team, from OMP_NUM_THREADS) or the --threads count.
 */
#include "codegen.h"

#include <isl/ast.h>
#include <isl/id.h>
#include <string.h>

static LLVMValueRef get_fn(cg_fn *f, const char *name, LLVMTypeRef ty) {
  LLVMValueRef fn = LLVMGetNamedFunction(f->m->mod, name);
  return fn ? fn : LLVMAddFunction(f->m->mod, name, ty);
}

/* The upper bound (inclusive) of "node" if its condition is "it <= e" or "it < e". */
static bool loop_bounds(cg_fn *f, isl_ast_node *node, isl_id *it, LLVMValueRef *ub) {
  isl_ast_expr *cond = isl_ast_node_for_get_cond(node);
  bool ok = false;
  if (isl_ast_expr_get_type(cond) == isl_ast_expr_op) {
    enum isl_ast_expr_op_type t = isl_ast_expr_op_get_type(cond);
    isl_ast_expr *lhs = isl_ast_expr_op_get_arg(cond, 0);
    isl_id *id = isl_ast_expr_get_type(lhs) == isl_ast_expr_id ? isl_ast_expr_get_id(lhs) : NULL;
    if ((t == isl_ast_expr_op_le || t == isl_ast_expr_op_lt) && id == it) {
      isl_ast_expr *rhs = isl_ast_expr_op_get_arg(cond, 1);
      *ub = cg_ast_expr(f, rhs);
      if (t == isl_ast_expr_op_lt)
        *ub = LLVMBuildSub(f->b, *ub, cg_i64(f, 1), "");
      isl_ast_expr_free(rhs);
      ok = true;
    }
    isl_id_free(id);
    isl_ast_expr_free(lhs);
  }
  isl_ast_expr_free(cond);
  return ok;
}

/* Store every captured value into the slots of "data". */
static LLVMValueRef pack_data(cg_fn *f, LLVMValueRef *vals, int n) {
  LLVMTypeRef arr = LLVMArrayType2(f->i64, (uint64_t)n);
  LLVMValueRef data = cg_entry_alloca(f, arr, "omp.data");
  for (int i = 0; i < n; i++) {
    LLVMValueRef idx = cg_i64(f, i);
    LLVMValueRef p = LLVMBuildGEP2(f->b, f->i64, data, &idx, 1, "");
    LLVMValueRef v = LLVMTypeOf(vals[i]) == f->ptr ? LLVMBuildPtrToInt(f->b, vals[i], f->i64, "") : vals[i];
    LLVMBuildStore(f->b, v, p);
  }
  return data;
}

static LLVMValueRef slot_value(cg_fn *g, LLVMValueRef data, int i) {
  LLVMValueRef idx = cg_i64(g, i);
  return LLVMBuildLoad2(g->b, g->i64, LLVMBuildGEP2(g->b, g->i64, data, &idx, 1, ""), "");
}

/* The body of the outlined function: this thread's block of iterations of "node". */
static void outlined_body(cg_fn *g, isl_ast_node *node, isl_id *it, LLVMValueRef lb,
                          LLVMValueRef ub, LLVMValueRef inc) {
  LLVMTypeRef i32fn = LLVMFunctionType(g->i32, NULL, 0, 0);
  LLVMValueRef tid = LLVMBuildCall2(g->b, i32fn, get_fn(g, "omp_get_thread_num", i32fn), NULL, 0, "");
  LLVMValueRef nth = LLVMBuildCall2(g->b, i32fn, get_fn(g, "omp_get_num_threads", i32fn), NULL, 0, "");
  tid = LLVMBuildSExt(g->b, tid, g->i64, "");
  nth = LLVMBuildSExt(g->b, nth, g->i64, "");
  LLVMValueRef trips = LLVMBuildAdd(g->b, LLVMBuildSDiv(g->b, LLVMBuildSub(g->b, ub, lb, ""), inc, ""),
                                    cg_i64(g, 1), "");
  LLVMValueRef chunk = LLVMBuildSDiv(g->b, LLVMBuildAdd(g->b, trips, LLVMBuildSub(g->b, nth, cg_i64(g, 1), ""), ""), nth, "");
  LLVMValueRef t0 = LLVMBuildMul(g->b, tid, chunk, "");
  LLVMValueRef t1 = LLVMBuildAdd(g->b, t0, chunk, "");
  t1 = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, t1, trips, ""), t1, trips, "");
  LLVMValueRef t = cg_alloca_i64(g, "omp.t"), iv = cg_alloca_i64(g, isl_id_get_name(it));
  LLVMBuildStore(g->b, t0, t);
  cg_sym_push(g, it, iv);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "omp.head");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "omp.body");
  LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "omp.exit");
  LLVMBuildBr(g->b, head);
  LLVMPositionBuilderAtEnd(g->b, head);
  LLVMValueRef tv = LLVMBuildLoad2(g->b, g->i64, t, "");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, tv, t1, ""), body, exit);
  LLVMPositionBuilderAtEnd(g->b, body);
  LLVMBuildStore(g->b, LLVMBuildAdd(g->b, lb, LLVMBuildMul(g->b, tv, inc, ""), ""), iv);
  isl_ast_node *b = isl_ast_node_for_get_body(node);
  cg_ast_gen(g, b);
  isl_ast_node_free(b);
  LLVMBuildStore(g->b, LLVMBuildAdd(g->b, LLVMBuildLoad2(g->b, g->i64, t, ""), cg_i64(g, 1), ""), t);
  LLVMBuildBr(g->b, head);
  LLVMPositionBuilderAtEnd(g->b, exit);
  LLVMBuildRetVoid(g->b);
}

void cg_parallel_gen(cg_fn *f, isl_ast_node *node) {
  isl_ast_expr *ite = isl_ast_node_for_get_iterator(node);
  isl_id *it = isl_ast_expr_get_id(ite);
  isl_ast_expr_free(ite);
  LLVMValueRef ub;
  if (f->o->threads == 1 || isl_ast_node_for_is_degenerate(node) == isl_bool_true ||
      !loop_bounds(f, node, it, &ub)) {
    isl_id_free(it);
    cg_ast_gen(f, node);
    return;
  }
  isl_ast_expr *e = isl_ast_node_for_get_init(node);
  LLVMValueRef lb = cg_ast_expr(f, e);
  isl_ast_expr_free(e);
  e = isl_ast_node_for_get_inc(node);
  LLVMValueRef inc = cg_ast_expr(f, e);
  isl_ast_expr_free(e);
  int nsyms = f->syms.len, nbufs = f->sk->bufs.len, n = nsyms + nbufs + 3;
  LLVMValueRef *vals = bk_arena_alloc(f->arena, sizeof(LLVMValueRef) * (size_t)n);
  for (int i = 0; i < nsyms; i++)
    vals[i] = LLVMBuildLoad2(f->b, f->i64, f->syms.data[i].slot, "");
  for (int i = 0; i < nbufs; i++)
    vals[nsyms + i] = f->buf[i];
  vals[n - 3] = lb;
  vals[n - 2] = ub;
  vals[n - 1] = inc;
  LLVMValueRef data = pack_data(f, vals, n);

  char name[256];
  snprintf(name, sizeof name, "%s.omp.%d", LLVMGetValueName(f->fn), f->nparallel++);
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(f->ctx), &f->ptr, 1, 0);
  cg_fn g = *f;
  g.fn = LLVMAddFunction(f->m->mod, name, fty);
  LLVMSetLinkage(g.fn, LLVMInternalLinkage);
  g.b = LLVMCreateBuilderInContext(f->ctx);
  LLVMPositionBuilderAtEnd(g.b, LLVMAppendBasicBlockInContext(f->ctx, g.fn, "entry"));
  LLVMValueRef gdata = LLVMGetParam(g.fn, 0);
  memset(&g.syms, 0, sizeof g.syms);
  for (int i = 0; i < nsyms; i++) {
    LLVMValueRef slot = cg_alloca_i64(&g, "cap");
    LLVMBuildStore(g.b, slot_value(&g, gdata, i), slot);
    cg_sym_push(&g, f->syms.data[i].id, slot);
  }
  g.buf = bk_arena_alloc(f->arena, sizeof(LLVMValueRef) * (size_t)nbufs);
  for (int i = 0; i < nbufs; i++)
    g.buf[i] = LLVMBuildIntToPtr(g.b, slot_value(&g, gdata, nsyms + i), g.ptr, "");
  outlined_body(&g, node, it, slot_value(&g, gdata, n - 3), slot_value(&g, gdata, n - 2),
                slot_value(&g, gdata, n - 1));
  LLVMDisposeBuilder(g.b);
  f->nparallel = g.nparallel;
  if (g.err && !f->err)
    f->err = g.err;

  LLVMTypeRef gomp_args[4] = {f->ptr, f->ptr, f->i32, f->i32};
  LLVMTypeRef gty = LLVMFunctionType(LLVMVoidTypeInContext(f->ctx), gomp_args, 4, 0);
  LLVMValueRef args[4] = {g.fn, data, LLVMConstInt(f->i32, (unsigned)f->o->threads, 0),
                          LLVMConstInt(f->i32, 0, 0)};
  LLVMBuildCall2(f->b, gty, get_fn(f, "GOMP_parallel", gty), args, 4, "");
  isl_id_free(it);
}
