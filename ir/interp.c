/*
 * The reference interpreter: the oracle every compiled kernel is compared with.
 *
 * It runs the statements in order with naive loops over each statement's whole domain, every
 * tensor held in double precision (inputs converted once, outputs rounded to float at the end).
 * Semantics, as DESIGN.md fixes them: a statement that first writes its target with '+='
 * ('max=') fills the target with 0 (-inf) first; a read outside a tensor yields +0.0; in a '+='
 * of a product, a term with an out-of-bounds factor is skipped entirely; max/min are fmax/fmin.
 */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct interp {
  const ir_kernel *k;
  double **buf; /* params, then locals */
  const ir_stmt *s;
  const int64_t *it; /* current iterator values */
  bool *is_factor;   /* per read: a direct factor of a '+=' product */
  bool skip;         /* an out-of-bounds factor was read */
} interp;

static int tensor_slot(const interp *in, const ir_tensor *t) {
  if (t->param_index >= 0)
    return t->param_index;
  for (int i = 0; i < in->k->locals.len; i++)
    if (in->k->locals.data[i] == t)
      return in->k->params.len + i;
  return -1;
}

/* Linear offset of access "e" at the current point, or -1 when out of bounds. */
static int64_t access_offset(const interp *in, const ir_expr *e) {
  int64_t off = 0;
  const ir_tensor *t = e->tensor;
  for (int d = 0; d < t->rank; d++) {
    int64_t x = ir_affine_eval(&e->index[d], in->s->niters, in->it);
    if (x < 0 || x >= t->dims[d])
      return -1;
    off = off * t->dims[d] + x;
  }
  return off;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double eval(interp *in, const ir_expr *e) {
  switch (e->kind) {
  case IR_EXPR_NUM:
  case IR_EXPR_NAME:
    return e->num;
  case IR_EXPR_ACCESS: {
    int64_t off = access_offset(in, e);
    if (off < 0) {
      if (in->is_factor[e->read_id])
        in->skip = true;
      return 0.0;
    }
    return in->buf[tensor_slot(in, e->tensor)][off];
  }
  case IR_EXPR_OP:
    break;
  }
  double a = eval(in, e->args[0]);
  double b = e->nargs > 1 ? eval(in, e->args[1]) : 0.0;
  switch (e->op) {
  case IR_OP_NEG: return -a;
  case IR_OP_ADD: return a + b;
  case IR_OP_SUB: return a - b;
  case IR_OP_MUL: return a * b;
  case IR_OP_DIV: return a / b;
  case IR_OP_RELU: return fmax(a, 0.0);
  case IR_OP_SIGMOID: return sigmoid(a);
  case IR_OP_TANH: return tanh(a);
  case IR_OP_EXP: return exp(a);
  case IR_OP_SQRT: return sqrt(a);
  case IR_OP_MAX: return fmax(a, b);
  case IR_OP_MIN: return fmin(a, b);
  default: return NAN;
  }
}

/* Advance the odometer "it" over the ranges [lo, hi) of iterators "from".. of "s"; false when
 * done. */
static bool next_point(const ir_stmt *s, int64_t *it, int from, const int64_t *lo,
                       const int64_t *hi) {
  for (int i = s->niters - 1; i >= from; i--) {
    if (++it[i] < hi[i])
      return true;
    it[i] = lo[i];
  }
  return false;
}

/* Run the points of statement "s" whose first "nfixed" iterators (the left side's, when
 * nfixed > 0) have the values "fixed": the whole statement when nfixed is 0, one output
 * element otherwise. False when out of memory. */
static bool run_points(interp *in, const ir_stmt *s, const int64_t *fixed, int nfixed) {
  int64_t *it = calloc(3 * ((size_t)s->niters + 1), sizeof(*it)); /* and lo, hi after it */
  bool *factor = calloc((size_t)s->nreads + 1, sizeof(*factor));
  if (!it || !factor) {
    free(it);
    free(factor);
    return false;
  }
  in->s = s;
  in->it = it;
  in->is_factor = factor;
  int64_t *lo = it + s->niters + 1, *hi = lo + s->niters + 1;
  for (int i = 0; i < s->niters; i++) {
    lo[i] = s->iters[i].lo;
    hi[i] = s->iters[i].hi;
  }
  bool any = true;
  if (s->product_of_reads) {
    ir_product_factors(s, factor);
    any = ir_clip_skipped(s, factor, lo, hi);
  }
  for (int i = 0; i < s->niters; i++)
    it[i] = i < nfixed ? fixed[i] : lo[i];
  double *target = in->buf[tensor_slot(in, s->lhs->tensor)];
  if (s->inits_target) {
    double init = s->assign == IR_ASSIGN_ADD ? 0.0 : -INFINITY;
    int64_t first = nfixed ? access_offset(in, s->lhs) : 0;
    int64_t n = nfixed ? 1 : s->lhs->tensor->nelems;
    for (int64_t i = first; i < first + n; i++)
      target[i] = init;
  }
  do {
    if (!any)
      break;
    in->skip = false;
    double v = eval(in, s->rhs);
    int64_t off = access_offset(in, s->lhs);
    if (s->assign == IR_ASSIGN_SET)
      target[off] = v;
    else if (s->assign == IR_ASSIGN_MAX)
      target[off] = fmax(target[off], v);
    else if (!in->skip)
      target[off] += v;
  } while (next_point(s, it, nfixed, lo, hi));
  free(it);
  free(factor);
  return true;
}

static bool run_stmt(interp *in, const ir_stmt *s) { return run_points(in, s, NULL, 0); }

/* Run the kernel on double buffers "buf" (params then locals, all allocated); false when out
 * of memory. */
static bool run_kernel(const ir_kernel *k, double **buf) {
  interp in = {.k = k, .buf = buf};
  for (int i = 0; i < k->stmts.len; i++)
    if (!run_stmt(&in, k->stmts.data[i]))
      return false;
  return true;
}

static double **alloc_buffers(const ir_kernel *k, float *const *inputs) {
  int n = k->params.len + k->locals.len;
  double **buf = calloc((size_t)n, sizeof(double *));
  if (!buf)
    return NULL;
  for (int i = 0; i < n; i++) {
    const ir_tensor *t = i < k->params.len ? k->params.data[i] : k->locals.data[i - k->params.len];
    buf[i] = malloc(sizeof(double) * (size_t)t->nelems);
    if (!buf[i]) {
      for (int j = 0; j < i; j++)
        free(buf[j]);
      free(buf);
      return NULL;
    }
    for (int64_t e = 0; e < t->nelems; e++)
      buf[i][e] = t->role == IR_ROLE_INPUT ? (double)inputs[i][e] : NAN;
  }
  return buf;
}

static void free_buffers(const ir_kernel *k, double **buf) {
  for (int i = 0; i < k->params.len + k->locals.len; i++)
    free(buf[i]);
  free(buf);
}

int ir_interp_run_double(const ir_kernel *k, float *const *inputs, double **outputs) {
  double **buf = alloc_buffers(k, inputs);
  if (!buf)
    return -1;
  if (!run_kernel(k, buf)) {
    free_buffers(k, buf);
    return -1;
  }
  for (int i = k->ninputs; i < k->params.len; i++)
    memcpy(outputs[i - k->ninputs], buf[i], sizeof(double) * (size_t)k->params.data[i]->nelems);
  free_buffers(k, buf);
  return 0;
}

int ir_interp_run(const ir_kernel *k, float *const *args) {
  double **buf = alloc_buffers(k, args);
  if (!buf)
    return -1;
  if (!run_kernel(k, buf)) {
    free_buffers(k, buf);
    return -1;
  }
  for (int i = k->ninputs; i < k->params.len; i++)
    for (int64_t e = 0; e < k->params.data[i]->nelems; e++)
      args[i][e] = (float)buf[i][e];
  free_buffers(k, buf);
  return 0;
}

/* ---- sampling: single output elements, exactly -------------------------------------------- */

struct ir_sampler {
  const ir_kernel *k;
  double **buf;
};

ir_sampler *ir_sampler_new(const ir_kernel *k, float *const *inputs) {
  ir_sampler *sm = calloc(1, sizeof(*sm));
  if (!sm)
    return NULL;
  sm->k = k;
  sm->buf = alloc_buffers(k, inputs);
  if (!sm->buf) {
    free(sm);
    return NULL;
  }
  return sm;
}

void ir_sampler_free(ir_sampler *sm) {
  if (!sm)
    return;
  free_buffers(sm->k, sm->buf);
  free(sm);
}

/* Do the statements writing output "t" read nothing but inputs, and "t" only where they
 * write it? Then each element of "t" is computable on its own. */
bool ir_sampler_can(const ir_sampler *sm, int param) {
  const ir_tensor *t = sm->k->params.data[param];
  for (int i = 0; i < sm->k->stmts.len; i++) {
    const ir_stmt *s = sm->k->stmts.data[i];
    if (s->lhs->tensor != t)
      continue;
    for (int r = 0; r < s->nreads; r++) {
      const ir_tensor *u = s->reads[r]->tensor;
      if (u->role != IR_ROLE_INPUT && u != t)
        return false;
    }
  }
  return true;
}

double ir_sampler_element(ir_sampler *sm, int param, int64_t elem) {
  const ir_tensor *t = sm->k->params.data[param];
  int64_t idx[IR_MAX_RANK];
  for (int d = t->rank - 1; d >= 0; d--) {
    idx[d] = elem % t->dims[d];
    elem /= t->dims[d];
  }
  interp in = {.k = sm->k, .buf = sm->buf};
  int64_t off = 0;
  for (int i = 0; i < sm->k->stmts.len; i++) {
    const ir_stmt *s = sm->k->stmts.data[i];
    if (s->lhs->tensor != t)
      continue;
    int64_t fixed[64] = {0};
    for (int d = 0; d < s->nlhs_iters; d++)
      for (int j = 0; j < s->nlhs_iters; j++)
        if (s->lhs->index[d].coef[j])
          fixed[j] = idx[d];
    if (!run_points(&in, s, fixed, s->nlhs_iters))
      return NAN;
    in.it = fixed;
    in.s = s;
    off = access_offset(&in, s->lhs);
  }
  return sm->buf[param][off];
}
