/*
 * The body of a plain op at one point: the value (the statement's right side, a copied
 * element for packs, or a constant for fills) combined into the target with '=', '+=' or
 * 'max='. A read that can fall outside its buffer is loaded only in bounds and yields +0.0
 * outside; in a '+=' of a product, a term with an out-of-bounds factor adds nothing (so 0 * Inf
 * never appears), as the interpreter does. Float operations carry only the 'reassoc' and
 * 'contract' fast-math flags; max/min/relu are llvm.maxnum/minnum (C's fmaxf/fminf); exp,
 * tanh and sigmoid are brick's own polynomials, so objects need no libm and loops vectorize.
 */
#include "codegen.h"

#include <math.h>

typedef struct point {
  cg_fn *f;
  const sched_op *op;
  LLVMValueRef *it;
  LLVMValueRef term_ok; /* i1: no direct factor of the product was out of bounds */
} point;

/* Pointer to access "a" at the point, and (if it may be out of bounds) its in-bounds flag. */
static LLVMValueRef access_ptr(point *P, const sched_access *a, LLVMValueRef *inb) {
  cg_fn *f = P->f;
  LLVMValueRef lin = cg_i64(f, 0), ok = LLVMConstInt(f->i1, 1, 0);
  for (int d = 0; d < sched_access_rank(f->sk, a); d++) {
    int64_t dim = sched_access_dim(f->sk, a, d);
    LLVMValueRef x = cg_i64(f, a->index[d].c);
    for (int i = 0; i < P->op->niters; i++)
      if (a->index[d].coef[i])
        x = LLVMBuildAdd(f->b, x, LLVMBuildMul(f->b, P->it[i], cg_i64(f, a->index[d].coef[i]), ""), "");
    if (a->may_oob)
      ok = LLVMBuildAnd(f->b, ok, LLVMBuildICmp(f->b, LLVMIntULT, x, cg_i64(f, dim), ""), "");
    lin = LLVMBuildAdd(f->b, LLVMBuildMul(f->b, lin, cg_i64(f, dim), ""), x, "");
  }
  *inb = ok;
  return LLVMBuildGEP2(f->b, f->f32, f->buf[a->buf], &lin, 1, ""); /* not inbounds: may be OOB */
}

/* The value of read "a" at the point. A read that may fall outside its buffer is a load in a
 * branch taken only in bounds, else 0: the loop vectorizer turns it into a masked load of
 * consecutive elements (a padded copy runs at copy speed), where an address select would
 * become a gather. */
static LLVMValueRef load_access(point *P, const sched_access *a, bool factor) {
  cg_fn *f = P->f;
  LLVMValueRef inb;
  LLVMValueRef ptr = access_ptr(P, a, &inb);
  if (!a->may_oob)
    return LLVMBuildLoad2(f->b, f->f32, ptr, "");
  if (factor)
    P->term_ok = LLVMBuildAnd(f->b, P->term_ok, inb, "");
  LLVMBasicBlockRef from = LLVMGetInsertBlock(f->b);
  LLVMBasicBlockRef in = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "read.in");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "read.done");
  LLVMBuildCondBr(f->b, inb, in, done);
  LLVMPositionBuilderAtEnd(f->b, in);
  LLVMValueRef v = LLVMBuildLoad2(f->b, f->f32, ptr, "");
  LLVMBuildBr(f->b, done);
  LLVMPositionBuilderAtEnd(f->b, done);
  LLVMValueRef phi = LLVMBuildPhi(f->b, f->f32, "");
  LLVMValueRef vals[2] = {v, LLVMConstReal(f->f32, 0.0)};
  LLVMBasicBlockRef from_blocks[2] = {in, from};
  LLVMAddIncoming(phi, vals, from_blocks, 2);
  return phi;
}

LLVMValueRef cg_access_offset(cg_fn *f, const sched_op *op, const sched_access *a,
                              LLVMValueRef *it, int64_t *lin) {
  int64_t c0;
  sched_access_linearize(f->sk, op, a, lin, &c0);
  LLVMValueRef off = cg_i64(f, c0);
  for (int i = 0; i < op->niters; i++)
    if (lin[i])
      off = LLVMBuildAdd(f->b, off, LLVMBuildMul(f->b, it[i], cg_i64(f, lin[i]), ""), "");
  return off;
}

LLVMValueRef cg_elem_ptr(cg_fn *f, int buf, LLVMValueRef off) {
  return LLVMBuildGEP2(f->b, f->f32, f->buf[buf], &off, 1, "");
}

static LLVMValueRef fmath(cg_fn *f, LLVMValueRef v) {
  if (LLVMIsAInstruction(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  return v;
}

static LLVMValueRef call1(cg_fn *f, const char *name, LLVMValueRef x) {
  return cg_intrinsic(f, name, &f->f32, 1, &x, 1);
}

static LLVMValueRef call2(cg_fn *f, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef a[2] = {x, y};
  return cg_intrinsic(f, name, &f->f32, 1, a, 2);
}

static LLVMValueRef fconst(cg_fn *f, double v) { return LLVMConstReal(f->f32, v); }

/* p(x) by Horner's rule over the coefficients "c" (highest degree first). */
static LLVMValueRef horner(cg_fn *f, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef p = fconst(f, c[0]);
  for (int i = 1; i < n; i++)
    p = LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, p, x, ""), fconst(f, c[i]), "");
  return p;
}

/* exp(x) as brick's own polynomial (Cephes expf): x = n ln2 + r, |r| <= ln2/2, exp(r) by a
 * degree-6 polynomial, times 2^n built in the exponent bits of two factors 2^(n/2) and
 * 2^(n - n/2), each a normal float for n in [-151, 128], so that the last product rounds once
 * to a denormal or to +inf. Relative error <= 2 ulp on [-87.33, 88.72] (checked against libm
 * by tests/codegen), denormal results below (gradual underflow, 0 below -103.97), +inf above,
 * NaN stays NaN. Straight-line code: loops vectorize. */
static LLVMValueRef gen_exp(cg_fn *f, LLVMValueRef x) {
  static const double poly[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef isnan = LLVMBuildFCmp(f->b, LLVMRealUNO, x, x, "");
  LLVMValueRef c = call2(f, "llvm.minnum", call2(f, "llvm.maxnum", x, fconst(f, -104.0)),
                         fconst(f, 88.75));
  LLVMValueRef n = call1(f, "llvm.floor", LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, c, fconst(f, 1.44269504088896341), ""),
                                                        fconst(f, 0.5), ""));
  LLVMValueRef r = LLVMBuildFSub(f->b, c, LLVMBuildFMul(f->b, n, fconst(f, 0.693359375), ""), "");
  r = LLVMBuildFSub(f->b, r, LLVMBuildFMul(f->b, n, fconst(f, -2.12194440e-4), ""), "");
  LLVMValueRef r2 = LLVMBuildFMul(f->b, r, r, "");
  LLVMValueRef y = LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, horner(f, r, poly, 6), r2, ""), r, "");
  y = LLVMBuildFAdd(f->b, y, fconst(f, 1.0), "");
  LLVMValueRef ni = LLVMBuildFPToSI(f->b, n, f->i32, "");
  LLVMValueRef n1 = LLVMBuildAShr(f->b, ni, LLVMConstInt(f->i32, 1, 0), "");
  LLVMValueRef n2 = LLVMBuildSub(f->b, ni, n1, "");
  for (int i = 0; i < 2; i++) {
    LLVMValueRef e = LLVMBuildAdd(f->b, i ? n2 : n1, LLVMConstInt(f->i32, 127, 0), "");
    LLVMValueRef scale = LLVMBuildBitCast(f->b, LLVMBuildShl(f->b, e, LLVMConstInt(f->i32, 23, 0), ""), f->f32, "");
    y = LLVMBuildFMul(f->b, y, scale, "");
  }
  y = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, x, fconst(f, 88.75), ""),
                      fconst(f, INFINITY), y, "");
  return LLVMBuildSelect(f->b, isnan, x, y, "");
}

/* tanh(x): an odd polynomial for |x| < 0.625 (Cephes tanhf), else 1 - 2 / (exp(2|x|) + 1)
 * with the sign of x; saturates to +-1. */
static LLVMValueRef gen_tanh(cg_fn *f, LLVMValueRef x) {
  static const double poly[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                                1.33314422036E-1, -3.33332819422E-1};
  LLVMValueRef ax = call1(f, "llvm.fabs", x);
  LLVMValueRef z = LLVMBuildFMul(f->b, x, x, "");
  LLVMValueRef small = LLVMBuildFAdd(f->b, x, LLVMBuildFMul(f->b, LLVMBuildFMul(f->b, x, z, ""), horner(f, z, poly, 5), ""), "");
  LLVMValueRef e2 = gen_exp(f, LLVMBuildFAdd(f->b, ax, ax, ""));
  LLVMValueRef big = LLVMBuildFSub(f->b, fconst(f, 1.0),
                                   LLVMBuildFDiv(f->b, fconst(f, 2.0), LLVMBuildFAdd(f->b, e2, fconst(f, 1.0), ""), ""), "");
  big = call2(f, "llvm.copysign", big, x);
  return LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOLT, ax, fconst(f, 0.625), ""), small, big, "");
}

static LLVMValueRef gen_function(cg_fn *f, ir_op op, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef one = LLVMConstReal(f->f32, 1.0), zero = LLVMConstReal(f->f32, 0.0);
  switch (op) {
  case IR_OP_RELU: return call2(f, "llvm.maxnum", a, zero);
  case IR_OP_MAX: return call2(f, "llvm.maxnum", a, b);
  case IR_OP_MIN: return call2(f, "llvm.minnum", a, b);
  case IR_OP_SQRT: return call1(f, "llvm.sqrt", a);
  case IR_OP_EXP: return gen_exp(f, a);
  case IR_OP_SIGMOID: /* 1 / (1 + exp(-x)) */
    return LLVMBuildFDiv(f->b, one, LLVMBuildFAdd(f->b, one, gen_exp(f, LLVMBuildFNeg(f->b, a, "")), ""), "");
  case IR_OP_TANH: return gen_tanh(f, a);
  default: return zero;
  }
}

/* Value of expression "e"; "factor": e is a direct factor of a '+=' product. */
static LLVMValueRef eval(point *P, const ir_expr *e, bool factor) {
  cg_fn *f = P->f;
  switch (e->kind) {
  case IR_EXPR_NUM:
  case IR_EXPR_NAME: return LLVMConstReal(f->f32, e->num);
  case IR_EXPR_ACCESS: return load_access(P, &P->op->reads[e->read_id], factor);
  case IR_EXPR_OP: break;
  }
  bool mul = e->op == IR_OP_MUL;
  LLVMValueRef a = eval(P, e->args[0], factor && mul);
  LLVMValueRef b = e->nargs > 1 ? eval(P, e->args[1], factor && mul) : NULL;
  switch (e->op) {
  case IR_OP_NEG: return LLVMBuildFNeg(f->b, a, "");
  case IR_OP_ADD: return fmath(f, LLVMBuildFAdd(f->b, a, b, ""));
  case IR_OP_SUB: return fmath(f, LLVMBuildFSub(f->b, a, b, ""));
  case IR_OP_MUL: return fmath(f, LLVMBuildFMul(f->b, a, b, ""));
  case IR_OP_DIV: return fmath(f, LLVMBuildFDiv(f->b, a, b, ""));
  default: return gen_function(f, e->op, a, b);
  }
}

/* The value op "op" combines into its target at point "it" (its right side). */
static LLVMValueRef value_at(point *P) {
  const sched_op *op = P->op;
  if (op->value == SCHED_VAL_CONST)
    return LLVMConstReal(P->f->f32, op->constant);
  if (op->value == SCHED_VAL_COPY)
    return load_access(P, &op->reads[0], false);
  return eval(P, op->stmt->rhs, op->skip_oob_terms);
}

LLVMValueRef cg_stmt_value(cg_fn *f, const sched_op *op, LLVMValueRef *it) {
  point P = {.f = f, .op = op, .it = it, .term_ok = LLVMConstInt(f->i1, 1, 0)};
  return value_at(&P);
}

void cg_stmt_max_into(cg_fn *f, const sched_op *op, LLVMValueRef *it, LLVMValueRef v) {
  point P = {.f = f, .op = op, .it = it, .term_ok = LLVMConstInt(f->i1, 1, 0)};
  LLVMValueRef inb;
  LLVMValueRef dst = access_ptr(&P, &op->write, &inb);
  LLVMBuildStore(f->b, call2(f, "llvm.maxnum", LLVMBuildLoad2(f->b, f->f32, dst, ""), v), dst);
}

/* i1: is the point "it" of "op" the first of its output's reductions (each at its lower bound)? */
static LLVMValueRef first_point(cg_fn *f, const sched_op *op, LLVMValueRef *it) {
  LLVMValueRef first = LLVMConstInt(f->i1, 1, 0);
  for (int i = 0; i < op->niters; i++)
    if (op->iters[i].reduction)
      first = LLVMBuildAnd(f->b, first, LLVMBuildICmp(f->b, LLVMIntEQ, it[i], cg_i64(f, op->iters[i].lo), ""), "");
  return first;
}

void cg_stmt_gen(cg_fn *f, const sched_op *op, LLVMValueRef *it) {
  point P = {.f = f, .op = op, .it = it, .term_ok = LLVMConstInt(f->i1, 1, 0)};
  LLVMValueRef v = value_at(&P);
  LLVMValueRef inb;
  LLVMValueRef dst = access_ptr(&P, &op->write, &inb);
  if (op->starts_target) { /* no fill op: the first point sets what the fill would have */
    LLVMValueRef first = first_point(f, op, it);
    LLVMValueRef start = op->assign == IR_ASSIGN_MAX ? LLVMConstReal(f->f32, -INFINITY)
                                                     : LLVMConstReal(f->f32, 0.0);
    LLVMValueRef old = LLVMBuildLoad2(f->b, f->f32, dst, "");
    old = LLVMBuildSelect(f->b, first, start, old, "");
    if (op->assign == IR_ASSIGN_MAX) { /* as below: the target never holds NaN */
      v = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, v, old, ""), v, old, "");
    } else {
      if (op->skip_oob_terms)
        v = LLVMBuildSelect(f->b, P.term_ok, v, LLVMConstReal(f->f32, 0.0), "");
      v = fmath(f, LLVMBuildFAdd(f->b, old, v, ""));
    }
    LLVMBuildStore(f->b, v, dst);
    return;
  }
  if (op->assign != IR_ASSIGN_SET) {
    LLVMValueRef old = LLVMBuildLoad2(f->b, f->f32, dst, "");
    if (op->assign == IR_ASSIGN_MAX && op->stmt && op->stmt->inits_target) {
      /* The target started at -inf and only ever takes a value greater than its own, so it
       * is never NaN, and "v > old ? v : old" is fmaxf(old, v) (one vmaxps, not maxnum's
       * NaN fix-up around it) */
      v = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, v, old, ""), v, old, "");
    } else if (op->assign == IR_ASSIGN_MAX) {
      v = call2(f, "llvm.maxnum", old, v);
    } else {
      if (op->skip_oob_terms)
        v = LLVMBuildSelect(f->b, P.term_ok, v, LLVMConstReal(f->f32, 0.0), "");
      v = fmath(f, LLVMBuildFAdd(f->b, old, v, ""));
    }
  }
  LLVMBuildStore(f->b, v, dst);
}
