/*
 * One kernel, from its lowered ops to LLVM IR:
 *
 *   isl schedule tree (scheduler/tree.c) -> isl AST (isl_ast_build_node_from_schedule; at each
 *   "brgemm" mark an annotation records the values of the loops outside the call) -> IR of
 *
 *     void NAME_ws(const float *in..., float *out..., void *ws)   the kernel proper
 *     void NAME(const float *in..., float *out...)                 allocates ws, calls NAME_ws
 *     const double NAME_flops;  const uint64_t NAME_workspace_bytes;
 *
 * Tensor pointers are noalias; no alignment beyond float's is assumed.
 */
#include "codegen.h"

#include <isl/aff.h>
#include <isl/ast.h>
#include <isl/ast_build.h>
#include <isl/id.h>
#include <isl/space.h>
#include <stdlib.h>
#include <string.h>

static void free_bounds(void *p) {
  cg_mark_bounds *mb = p;
  isl_ast_expr_free(mb->lo);
  isl_ast_expr_free(mb->hi);
  free(mb);
}

/* At a "brgemm" mark: annotate it with the first and the last point of the call's tile,
 * "O<k>(lo...)" and "O<k>(hi...)": the lexicographic extremes of the domain points that the
 * loops outside the call leave to it (a box, so they are its corners). */
static isl_ast_node *after_mark(isl_ast_node *node, isl_ast_build *build, void *user) {
  isl_id *mark = isl_ast_node_mark_get_id(node);
  bool brg = strcmp(isl_id_get_name(mark), SCHED_MARK_BRGEMM) == 0 ||
             strcmp(isl_id_get_name(mark), SCHED_MARK_TRANSPOSE) == 0 ||
             strcmp(isl_id_get_name(mark), SCHED_MARK_SUBSAMPLE) == 0 ||
             strcmp(isl_id_get_name(mark), SCHED_MARK_DOT) == 0;
  isl_id_free(mark);
  if (!brg)
    return node;
  isl_map *inv = isl_map_reverse(isl_map_from_union_map(isl_ast_build_get_schedule(build)));
  cg_mark_bounds *mb = calloc(1, sizeof(*mb));
  isl_pw_multi_aff *lo = isl_map_lexmin_pw_multi_aff(isl_map_copy(inv));
  isl_pw_multi_aff *hi = isl_map_lexmax_pw_multi_aff(inv);
  mb->lo = isl_ast_build_call_from_pw_multi_aff(build, lo);
  mb->hi = isl_ast_build_call_from_pw_multi_aff(build, hi);
  isl_id *ann = isl_id_alloc(isl_ast_node_get_ctx(node), "bounds", mb);
  ann = isl_id_set_free_user(ann, free_bounds);
  return isl_ast_node_set_annotation(node, ann);
}

static isl_ast_node *build_ast(const sched_kernel *sk, isl_ctx *ctx, int threads) {
  isl_schedule *sch = sched_build_tree(sk, ctx, threads);
  isl_ast_build *build = isl_ast_build_from_context(isl_set_universe(isl_space_params_alloc(ctx, 0)));
  build = isl_ast_build_set_after_each_mark(build, after_mark, NULL);
  isl_ast_node *ast = isl_ast_build_node_from_schedule(build, sch);
  isl_ast_build_free(build);
  return ast;
}

static void add_attr(LLVMContextRef ctx, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(ctx, kind, 0));
}

static void add_str_attr(LLVMContextRef ctx, LLVMValueRef fn, const char *k, const char *v) {
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v)));
}

/* A function "name" taking "n" pointers (noalias, nocapture), returning void. */
static LLVMValueRef add_entry(cg_module *m, const char *name, int n, int noalias) {
  LLVMTypeRef ptr = LLVMPointerTypeInContext(m->ctx, 0);
  LLVMTypeRef *ps = calloc((size_t)n + 1, sizeof(LLVMTypeRef));
  for (int i = 0; i < n; i++)
    ps[i] = ptr;
  LLVMValueRef fn = LLVMAddFunction(m->mod, name, LLVMFunctionType(LLVMVoidTypeInContext(m->ctx), ps, (unsigned)n, 0));
  free(ps);
  for (int i = 0; i < noalias; i++) {
    add_attr(m->ctx, fn, (unsigned)i + 1, "noalias");
    add_attr(m->ctx, fn, (unsigned)i + 1, "nocapture");
  }
  add_attr(m->ctx, fn, LLVMAttributeFunctionIndex, "nounwind");
  add_str_attr(m->ctx, fn, "target-cpu", m->target->cpu);
  if (m->target->features[0])
    add_str_attr(m->ctx, fn, "target-features", m->target->features);
  return fn;
}

static void init_fn(cg_fn *f, cg_module *m, const sched_kernel *sk, const cg_options *o) {
  *f = (cg_fn){.m = m, .ctx = m->ctx, .sk = sk, .o = o, .arena = bk_arena_new()};
  f->i64 = LLVMInt64TypeInContext(m->ctx);
  f->i32 = LLVMInt32TypeInContext(m->ctx);
  f->i1 = LLVMInt1TypeInContext(m->ctx);
  f->f32 = LLVMFloatTypeInContext(m->ctx);
  f->ptr = LLVMPointerTypeInContext(m->ctx, 0);
  f->b = LLVMCreateBuilderInContext(m->ctx);
}

/* The loop nest "ast" of a serial kernel as NAME_ws.body(buffers...), called from NAME_ws
 * (f) and inlined there: each buffer a noalias parameter, as the parallel region's body has
 * them (parallel.c), so that LLVM knows the workspace's slices apart. Without it a statement
 * that reads one local and writes another stayed scalar (exp(X - m) into a local: 16.8 ms
 * against 1.2 ms into an output). */
static void serial_body(cg_fn *f, const char *name, isl_ast_node *ast) {
  cg_fn g = cg_body_fn(f, bk_arena_printf(f->arena, "%s.body", name), NULL, 0);
  LLVMBuildCall2(f->b, LLVMGlobalGetValueType(g.fn), g.fn, f->buf, (unsigned)f->sk->bufs.len, "");
  cg_ast_gen(&g, ast);
  LLVMBuildRetVoid(g.b);
  LLVMDisposeBuilder(g.b);
  if (g.err && !f->err)
    f->err = g.err;
}

/* NAME_ws: buffers are the parameters and slices of the workspace. */
static int emit_body(cg_module *m, const sched_kernel *sk, isl_ctx *ctx, const cg_options *o,
                     bool *parallel, char **err) {
  int np = sk->k->params.len;
  char *name = bk_arena_printf(sk->arena, "%s_ws", sk->k->name);
  cg_fn f;
  init_fn(&f, m, sk, o);
  f.fn = add_entry(m, name, np + 1, np);
  LLVMPositionBuilderAtEnd(f.b, LLVMAppendBasicBlockInContext(m->ctx, f.fn, "entry"));
  f.buf = bk_arena_alloc(f.arena, sizeof(LLVMValueRef) * (size_t)(sk->bufs.len + 1));
  LLVMValueRef ws = LLVMGetParam(f.fn, (unsigned)np);
  for (int i = 0; i < sk->bufs.len; i++) {
    const sched_buf *b = &sk->bufs.data[i];
    LLVMValueRef off = cg_i64(&f, b->ws_offset);
    f.buf[i] = b->param >= 0 ? LLVMGetParam(f.fn, (unsigned)b->param)
                             : LLVMBuildGEP2(f.b, LLVMInt8TypeInContext(m->ctx), ws, &off, 1, b->name);
  }
  isl_ast_node *ast = build_ast(sk, ctx, o->threads);
  *parallel = ast && o->threads != 1 && cg_has_parallel(ast);
  if (*parallel)
    cg_spmd_region(&f, ast);
  else if (ast)
    serial_body(&f, name, ast);
  isl_ast_node_free(ast);
  LLVMBuildRetVoid(f.b);
  LLVMDisposeBuilder(f.b);
  bk_arena_free(f.arena);
  if (!ast && !f.err)
    f.err = strdup("internal: isl could not generate the loop nest");
  if (f.err) {
    *err = f.err;
    return -1;
  }
  return 0;
}

#define BIG_WS (32ll << 20) /* glibc's largest mmap threshold: bigger blocks are mapped per call */
#define HUGE_PAGE (2ll << 20)

/* NAME(params...): allocate a 64-byte aligned workspace, call NAME_ws, free it. A workspace
 * above BIG_WS on Linux is 2 MB aligned and advised into transparent huge pages. */
static void emit_wrapper(cg_module *m, const sched_kernel *sk, const cg_options *o) {
  int np = sk->k->params.len;
  cg_fn f;
  init_fn(&f, m, sk, o);
  f.fn = add_entry(m, sk->k->name, np, np);
  LLVMPositionBuilderAtEnd(f.b, LLVMAppendBasicBlockInContext(m->ctx, f.fn, "entry"));
  LLVMValueRef *args = calloc((size_t)np + 1, sizeof(LLVMValueRef));
  for (int i = 0; i < np; i++)
    args[i] = LLVMGetParam(f.fn, (unsigned)i);
  LLVMValueRef body = LLVMGetNamedFunction(m->mod, bk_arena_printf(sk->arena, "%s_ws", sk->k->name));
  LLVMTypeRef body_ty = LLVMGlobalGetValueType(body);
  if (sk->ws_bytes == 0) {
    args[np] = LLVMConstPointerNull(f.ptr);
    LLVMBuildCall2(f.b, body_ty, body, args, (unsigned)np + 1, "");
  } else {
    /* aligned_alloc(align, bytes), body, free; a big workspace is mapped fresh on every call
     * (above glibc's mmap threshold): on Linux in 2 MB pages, one fault each rather than 512 */
    bool huge = sk->ws_bytes > BIG_WS && strstr(m->target->triple, "linux");
    int64_t align = huge ? HUGE_PAGE : 64, bytes = (sk->ws_bytes + align - 1) / align * align;
    LLVMTypeRef aargs[2] = {f.i64, f.i64}, margs[3] = {f.ptr, f.i64, f.i32};
    LLVMTypeRef aty = LLVMFunctionType(f.ptr, aargs, 2, 0);
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(m->ctx), &f.ptr, 1, 0);
    LLVMValueRef a[2] = {cg_i64(&f, align), cg_i64(&f, bytes)};
    LLVMValueRef ws = LLVMBuildCall2(f.b, aty, cg_declare(&f, "aligned_alloc", aty), a, 2, "ws");
    if (huge) {
      LLVMTypeRef mty = LLVMFunctionType(f.i32, margs, 3, 0);
      LLVMValueRef ma[3] = {ws, cg_i64(&f, bytes), LLVMConstInt(f.i32, 14 /* MADV_HUGEPAGE */, 0)};
      LLVMBuildCall2(f.b, mty, cg_declare(&f, "madvise", mty), ma, 3, "");
    }
    args[np] = ws;
    LLVMBuildCall2(f.b, body_ty, body, args, (unsigned)np + 1, "");
    LLVMBuildCall2(f.b, fty, cg_declare(&f, "free", fty), &ws, 1, "");
  }
  LLVMBuildRetVoid(f.b);
  free(args);
  LLVMDisposeBuilder(f.b);
  bk_arena_free(f.arena);
}

static void emit_globals(cg_module *m, const sched_kernel *sk) {
  char name[512];
  snprintf(name, sizeof name, "%s_flops", sk->k->name);
  LLVMTypeRef dbl = LLVMDoubleTypeInContext(m->ctx), i64 = LLVMInt64TypeInContext(m->ctx);
  LLVMValueRef g = LLVMAddGlobal(m->mod, dbl, name);
  LLVMSetInitializer(g, LLVMConstReal(dbl, sk->k->flops));
  LLVMSetGlobalConstant(g, 1);
  snprintf(name, sizeof name, "%s_workspace_bytes", sk->k->name);
  g = LLVMAddGlobal(m->mod, i64, name);
  LLVMSetInitializer(g, LLVMConstInt(i64, (unsigned long long)sk->ws_bytes, 0));
  LLVMSetGlobalConstant(g, 1);
}

int cg_kernel_emit(cg_module *m, const sched_kernel *sk, isl_ctx *ctx, const cg_options *o,
                   bool *parallel, char **err) {
  if (emit_body(m, sk, ctx, o, parallel, err) != 0)
    return -1;
  emit_wrapper(m, sk, o);
  emit_globals(m, sk);
  return 0;
}
