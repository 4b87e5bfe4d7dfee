/* The function of a BRGEMM specialization: signature, attributes, and the
 * loops over its register blocks.
 *
 * brg_emit() looks the mangled name up in the module and returns the
 * function if it is there.  Otherwise it creates it with private linkage,
 * `noinline nounwind`, `noalias nocapture` pointer arguments, the vector-width
 * attributes of the ISA and, for AVX2/AVX-512, a target-features attribute
 * that enables (or, for AVX2, disables) AVX-512 whatever the module's target.
 * The body walks the plan of desc.c: for each run of equal M chunks and, in
 * it, each run of equal N blocks, a counted loop (none when the run has one
 * block) around the code of one register block (block.c), and after each block of the
 * last chunk the rows of dot products of its columns (dotrows.c).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "brg_private.h"

LLVMTypeRef brg_fn_type(LLVMContextRef ctx)
{
  LLVMTypeRef p = LLVMPointerTypeInContext(ctx, 0), i64 = LLVMInt64TypeInContext(ctx);
  LLVMTypeRef params[9] = {p, p, p, i64, p, p, p, i64, p};
  return LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 9, 0);
}

LLVMValueRef brg_i64(brg_cg *cg, int64_t v)
{
  return LLVMConstInt(cg->i64, (unsigned long long)v, 1);
}

/* Add the enum attribute "name" to "fn" at attribute index "idx". */
static void add_enum_attr(LLVMContextRef ctx, LLVMValueRef fn, unsigned idx, const char *name)
{
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(ctx, kind, 0));
}

/* Add the string attribute "key"="val" to function "fn". */
static void add_str_attr(LLVMContextRef ctx, LLVMValueRef fn, const char *key, const char *val)
{
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(ctx, key, strlen(key), val, strlen(val)));
}

/* The target-features attribute value of "isa", or NULL for none. */
static const char *isa_features(brg_isa isa)
{
  if (isa == BRG_ISA_AVX512)
    return "+avx,+avx2,+fma,+f16c,+avx512f,+avx512vl,+avx512bw,+avx512dq,+evex512";
  if (isa == BRG_ISA_AVX2)
    return "+avx,+avx2,+fma,+f16c,-avx512f,-evex512";
  return NULL;
}

/* Set the function and argument attributes of "fn" for descriptor "d". */
static void set_attributes(LLVMContextRef ctx, LLVMValueRef fn, const brg_desc *d, int vlen)
{
  add_enum_attr(ctx, fn, LLVMAttributeFunctionIndex, "noinline");
  add_enum_attr(ctx, fn, LLVMAttributeFunctionIndex, "nounwind");
  static const int ptr_args[7] = {0, 1, 2, 4, 5, 6, 8};
  for (int i = 0; i < 7; i++) {
    unsigned idx = 1 + (unsigned)ptr_args[i]; /* argument i has index i+1 */
    add_enum_attr(ctx, fn, idx, "noalias");
    add_enum_attr(ctx, fn, idx, "nocapture");
    if (ptr_args[i] != 2)
      add_enum_attr(ctx, fn, idx, "readonly");
  }
  char width[16];
  snprintf(width, sizeof width, "%d", vlen * 32);
  add_str_attr(ctx, fn, "prefer-vector-width", width);
  add_str_attr(ctx, fn, "min-legal-vector-width", width);
  const char *feat = isa_features(d->isa);
  if (feat)
    add_str_attr(ctx, fn, "target-features", feat);
}

/* Declare the overloaded intrinsic "name" with types "tys" in "cg"'s module;
 * store its function type in "fty". */
static LLVMValueRef intrinsic(brg_cg *cg, const char *name, LLVMTypeRef *tys, size_t n,
                              LLVMTypeRef *fty)
{
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  *fty = LLVMIntrinsicGetType(cg->ctx, id, tys, n);
  return LLVMGetIntrinsicDeclaration(cg->mod, id, tys, n);
}

/* Initialise "cg" for emitting "d" into function "fn" of "mod". */
static void cg_init(brg_cg *cg, LLVMModuleRef mod, LLVMValueRef fn, const brg_desc *d)
{
  memset(cg, 0, sizeof *cg);
  cg->ctx = LLVMGetModuleContext(mod);
  cg->mod = mod;
  cg->fn = fn;
  cg->d = d;
  cg->plan = brg_plan_make(d);
  cg->vlen = cg->plan.info.vlen;
  cg->f32 = LLVMFloatTypeInContext(cg->ctx);
  cg->i1 = LLVMInt1TypeInContext(cg->ctx);
  cg->i32 = LLVMInt32TypeInContext(cg->ctx);
  cg->i64 = LLVMInt64TypeInContext(cg->ctx);
  cg->ptr = LLVMPointerTypeInContext(cg->ctx, 0);
  cg->vty = LLVMVectorType(cg->f32, (unsigned)cg->vlen);
  LLVMValueRef *args[9] = {&cg->a,      &cg->b,      &cg->c,     &cg->batch,    &cg->bias,
                           &cg->offs_a, &cg->offs_b, &cg->pad_m, &cg->pad_shift};
  for (unsigned i = 0; i < 9; i++)
    *args[i] = LLVMGetParam(fn, i);
  LLVMTypeRef vp[2] = {cg->vty, cg->ptr};
  cg->fma = intrinsic(cg, "llvm.fma", &cg->vty, 1, &cg->fma_ty);
  cg->mload = intrinsic(cg, "llvm.masked.load", vp, 2, &cg->mload_ty);
  cg->mstore = intrinsic(cg, "llvm.masked.store", vp, 2, &cg->mstore_ty);
  cg->pf = intrinsic(cg, "llvm.prefetch", &cg->ptr, 1, &cg->pf_ty);
  cg->bld = LLVMCreateBuilderInContext(cg->ctx);
}

/* Mark "br", the back edge of a loop, `llvm.loop.unroll.disable`. */
static void loop_latch(brg_cg *cg, LLVMValueRef br)
{
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(cg->ctx, NULL, 0);
  const char *s = "llvm.loop.unroll.disable";
  LLVMMetadataRef dis = LLVMMDStringInContext2(cg->ctx, s, strlen(s));
  LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(cg->ctx, &dis, 1)};
  LLVMMetadataRef loop = LLVMMDNodeInContext2(cg->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, loop); /* the loop ID refers to itself; frees tmp */
  unsigned kind = LLVMGetMDKindIDInContext(cg->ctx, "llvm.loop", 9);
  LLVMSetMetadata(br, kind, LLVMMetadataAsValue(cg->ctx, loop));
}

LLVMValueRef brg_loop_open(brg_cg *cg, brg_loop *l, const char *name, LLVMValueRef count,
                           int64_t step, int n, LLVMValueRef *v)
{
  l->count = count;
  l->step = step;
  l->n = n;
  l->head = NULL;
  bool constant = LLVMIsAConstantInt(count);
  if (constant && LLVMConstIntGetSExtValue(count) <= step)
    return brg_i64(cg, 0);
  l->pre = LLVMGetInsertBlock(cg->bld);
  l->head = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
  l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "loop.end");
  if (constant)
    LLVMBuildBr(cg->bld, l->head);
  else /* skipped when count <= 0 */
    LLVMBuildCondBr(cg->bld, LLVMBuildICmp(cg->bld, LLVMIntSGT, count, brg_i64(cg, 0), ""), l->head,
                    l->exit);
  LLVMPositionBuilderAtEnd(cg->bld, l->head);
  LLVMValueRef zero = brg_i64(cg, 0);
  l->iv = LLVMBuildPhi(cg->bld, cg->i64, name);
  LLVMAddIncoming(l->iv, &zero, &l->pre, 1);
  for (int i = 0; i < n; i++) {
    l->init[i] = v[i];
    l->phi[i] = v[i] = LLVMBuildPhi(cg->bld, LLVMTypeOf(v[i]), "acc");
    LLVMAddIncoming(l->phi[i], &l->init[i], &l->pre, 1);
  }
  return l->iv;
}

void brg_loop_close(brg_cg *cg, brg_loop *l, LLVMValueRef *v)
{
  if (!l->head)
    return;
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->bld);
  LLVMValueRef next = LLVMBuildAdd(cg->bld, l->iv, brg_i64(cg, l->step), "");
  LLVMValueRef more = LLVMBuildICmp(cg->bld, LLVMIntSLT, next, l->count, "");
  loop_latch(cg, LLVMBuildCondBr(cg->bld, more, l->head, l->exit));
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  for (int i = 0; i < l->n; i++)
    LLVMAddIncoming(l->phi[i], &v[i], &latch, 1);
  LLVMPositionBuilderAtEnd(cg->bld, l->exit);
  if (!LLVMIsAConstantInt(l->count)) { /* "pre" skips the loop when count <= 0 */
    for (int i = 0; i < l->n; i++) {
      LLVMValueRef out = LLVMBuildPhi(cg->bld, LLVMTypeOf(v[i]), "acc.out");
      LLVMValueRef vals[2] = {v[i], l->init[i]};
      LLVMBasicBlockRef from[2] = {latch, l->pre};
      LLVMAddIncoming(out, vals, from, 2);
      v[i] = out;
    }
  }
}

/* Skipped column taps (brg_desc.col_period): the columns [lo[t], hi[t]) of the block of "n"
 * columns from column "n0" that tap t adds into; returns whether any tap adds into only part
 * of the block (then it needs code of its own: blocks where each tap adds into all or none of
 * their columns share one loop). */
static bool tap_columns(const brg_desc *d, int n0, int n, int *lo, int *hi)
{
  bool partial = false;
  for (int t = 0; t < d->col_period; t++) {
    lo[t] = d->col_lo[t] - n0 > 0 ? d->col_lo[t] - n0 : 0;
    hi[t] = d->col_hi[t] - n0 < n ? d->col_hi[t] - n0 : n;
    if (hi[t] <= lo[t])
      lo[t] = hi[t] = 0;
    partial |= hi[t] > lo[t] && hi[t] - lo[t] < n;
  }
  return partial;
}

/* Emit "count" blocks of "ng" from block "first" (a loop unless one) for the chunk at row
 * "m0", their taps' columns "lo", "hi" (NULL: all); after each, the dot-product rows of its
 * columns when "dot" (i1) holds (NULL: never). */
static void emit_blocks(brg_cg *cg, const brg_mplan *mp, const brg_ngroup *ng, int first,
                        int count, const int *lo, const int *hi, LLVMValueRef m0, LLVMValueRef dot)
{
  brg_loop l;
  LLVMValueRef j = brg_loop_open(cg, &l, "blk.n", brg_i64(cg, count), 1, 0, NULL);
  brg_blk blk = {mp->m.nvec, mp->m.tail, ng->n, mp->kunroll, 1, m0, NULL};
  blk.tap_lo = lo;
  blk.tap_hi = hi;
  blk.n0 = LLVMBuildAdd(cg->bld, brg_i64(cg, ng->n0 + (int64_t)first * ng->n),
                        LLVMBuildMul(cg->bld, j, brg_i64(cg, ng->n), ""), "n0");
  brg_block_emit(cg, &blk);
  if (dot && LLVMIsAConstantInt(dot)) {
    brg_dot_columns(cg, blk.n0, ng->n);
  } else if (dot) {
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "dot.cols");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "dot.next");
    LLVMBuildCondBr(cg->bld, dot, then, next);
    LLVMPositionBuilderAtEnd(cg->bld, then);
    brg_dot_columns(cg, blk.n0, ng->n);
    LLVMBuildBr(cg->bld, next);
    LLVMPositionBuilderAtEnd(cg->bld, next);
  }
  brg_loop_close(cg, &l, NULL);
}

/* Emit the N blocks of M plan "mp" for the chunk starting at row "m0" (see emit_blocks). A
 * run of equal blocks is a loop; with skipped column taps, a run of blocks where the taps add
 * into the same columns (all or none of each block's: the middle of a row), and each block
 * where some tap adds into part of it (the row's ends) gets code of its own. */
static void emit_row(brg_cg *cg, const brg_mplan *mp, LLVMValueRef m0, LLVMValueRef dot)
{
  const brg_desc *d = cg->d;
  for (int g = 0; g < mp->nng; g++) {
    const brg_ngroup *ng = &mp->ng[g];
    if (!d->col_period) {
      emit_blocks(cg, mp, ng, 0, ng->count, NULL, NULL, m0, dot);
      continue;
    }
    int lo[BRG_MAX_COL_PERIOD], hi[BRG_MAX_COL_PERIOD], lo2[BRG_MAX_COL_PERIOD],
        hi2[BRG_MAX_COL_PERIOD];
    for (int rep = 0; rep < ng->count;) {
      bool partial = tap_columns(d, ng->n0 + rep * ng->n, ng->n, lo, hi);
      int end = rep + 1;
      while (!partial && end < ng->count &&
             !tap_columns(d, ng->n0 + end * ng->n, ng->n, lo2, hi2) &&
             memcmp(lo, lo2, sizeof(int) * (size_t)d->col_period) == 0 &&
             memcmp(hi, hi2, sizeof(int) * (size_t)d->col_period) == 0)
        end++;
      emit_blocks(cg, mp, ng, rep, end - rep, lo, hi, m0, dot);
      rep = end;
    }
  }
}

/* Emit the body of "cg"'s function: every register block, then return. */
static void emit_body(brg_cg *cg)
{
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "entry");
  LLVMPositionBuilderAtEnd(cg->bld, entry);
  if (cg->d->dot_rows)
    brg_dot_gather(cg);
  for (int g = 0; g < cg->plan.nmp; g++) {
    const brg_mplan *mp = &cg->plan.mp[g];
    brg_loop l;
    LLVMValueRef i = brg_loop_open(cg, &l, "blk.m", brg_i64(cg, mp->m.count), 1, 0, NULL);
    int64_t rows = (int64_t)mp->m.nvec * cg->vlen;
    LLVMValueRef m0 = LLVMBuildAdd(cg->bld, brg_i64(cg, mp->m.m0),
                                   LLVMBuildMul(cg->bld, i, brg_i64(cg, rows), ""), "m0");
    /* the dot-product rows go with the blocks of the last chunk */
    LLVMValueRef dot = NULL;
    if (cg->d->dot_rows && g == cg->plan.nmp - 1)
      dot = mp->m.count == 1 ? LLVMConstInt(cg->i1, 1, 0)
                             : LLVMBuildICmp(cg->bld, LLVMIntEQ, i, brg_i64(cg, mp->m.count - 1), "");
    emit_row(cg, mp, m0, dot);
    brg_loop_close(cg, &l, NULL);
  }
  LLVMBuildRetVoid(cg->bld);
}

LLVMValueRef brg_emit(LLVMModuleRef mod, const brg_desc *d)
{
  char name[512];
  if (brg_desc_validate(d) || brg_desc_name(d, name, sizeof name) >= (int)sizeof name)
    return NULL;
  LLVMValueRef fn = LLVMGetNamedFunction(mod, name);
  if (fn)
    return fn;
  LLVMContextRef ctx = LLVMGetModuleContext(mod);
  fn = LLVMAddFunction(mod, name, brg_fn_type(ctx));
  LLVMSetLinkage(fn, LLVMPrivateLinkage);
  brg_cg cg;
  cg_init(&cg, mod, fn, d);
  set_attributes(ctx, fn, d, cg.vlen);
  emit_body(&cg);
  LLVMDisposeBuilder(cg.bld);
  return fn;
}
