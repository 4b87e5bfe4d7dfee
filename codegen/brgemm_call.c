/*
 * One BRGEMM call at a "brgemm" mark. From the values of the loops outside the call (tile
 * indices of the M/N/K roles, values of the other loops) it computes where the tile starts
 * (C, A and B base pointers), how big it is (M, N, K: the full tile, or the border tile when a
 * tile size does not divide the range: at most a few distinct sizes, each its own
 * specialization, chosen by comparing the run-time size), the batch (stride or a constant
 * table of element offsets over the batch loops) and beta: 0 on the first visit of an output
 * tile when this statement starts the accumulation (so no separate zeroing pass), else 1.
 */
#include "codegen.h"

#include <stdlib.h>
#include <string.h>

#define MAX_VARIANTS 4
/* Stack floats a body's dot-product rows may copy A into (brg_desc.dot_rows): 64 KiB, well
 * inside any thread's stack (the default schedules use at most 2 KiB). */
#define DOT_ROWS_MAX_FLOATS 16384

_Static_assert(SCHED_MAX_CALL_TAIL == BRG_MAX_DOT_ROWS, "the scheduler's limit is the body's");

typedef struct call {
  cg_fn *f;
  const sched_op *op;
  int64_t lin_c[64], lin_a[64], lin_b[64];
  LLVMValueRef size[3];           /* run-time M, N, K */
  int64_t variant[3][MAX_VARIANTS];
  int nvariant[3];
  LLVMValueRef first;             /* i1: first visit of this output tile (beta = 0 allowed) */
  bool can_beta0;
  LLVMValueRef last;              /* i1: last visit of this output tile (the epilogue runs) */
  bool always_last;               /* no reduction loop outside the call */
  LLVMValueRef bias;
  LLVMValueRef a, b, c, offs_a, offs_b;
  LLVMValueRef pad_m, pad_shift;  /* implicit padding: the tile's first pixel, the tap shifts */
  int64_t batch;                  /* the whole batch */
  LLVMValueRef nbatch;            /* the batch of this call: "batch", or its run of taps */
  int64_t *tb;                    /* B's batch offsets (offset mode), else NULL */
  brg_desc d;
} call;

static int64_t ext(const sched_op *op, int it) { return op->iters[it].hi - op->iters[it].lo; }

static int role_of(const sched_stmt *ss, int it) {
  for (int r = 0; r < 3; r++)
    if (ss->role[r] == it)
      return r;
  return -1;
}

static bool role_tile_in(const sched_loop *loops, int n, int it) {
  for (int i = 0; i < n; i++)
    if (loops[i].iter == it && loops[i].tile)
      return true;
  return false;
}
static bool role_tile_in_batch(const sched_stmt *ss, int it) {
  return role_tile_in(ss->batch, ss->nbatch, it);
}

static void add_variant(call *C, int r, int64_t v) {
  for (int i = 0; i < C->nvariant[r]; i++)
    if (C->variant[r][i] == v)
      return;
  if (C->nvariant[r] < MAX_VARIANTS)
    C->variant[r][C->nvariant[r]++] = v;
}

/* Sizes of the roles for the tile [lo, hi], their possible values, and whether this is the
 * first visit of the output tile (every reduction loop outside the call at its start). */
static void sizes(call *C, LLVMValueRef *lo, LLVMValueRef *hi) {
  cg_fn *f = C->f;
  const sched_op *op = C->op;
  const sched_stmt *ss = &op->sched;
  C->first = C->last = LLVMConstInt(f->i1, 1, 0);
  C->always_last = true;
  for (int p = 0; p < ss->norder; p++) {
    int i = ss->order[p].iter;
    const ir_iter *it = &op->iters[i];
    if (!it->reduction)
      continue;
    C->first = LLVMBuildAnd(f->b, C->first, LLVMBuildICmp(f->b, LLVMIntEQ, lo[i], cg_i64(f, it->lo), ""), "");
    C->last = LLVMBuildAnd(f->b, C->last, LLVMBuildICmp(f->b, LLVMIntEQ, hi[i], cg_i64(f, it->hi - 1), ""), "");
    C->always_last = false;
  }
  for (int r = 0; r < 3; r++) {
    int i = ss->role[r];
    if (i < 0) {
      C->size[r] = cg_i64(f, 1);
      add_variant(C, r, 1);
      continue;
    }
    int64_t T = ss->tile[r], l = op->iters[i].lo, h = op->iters[i].hi;
    if (T && role_tile_in_batch(ss, i)) {
      C->size[r] = cg_i64(f, T);
      add_variant(C, r, T);
      continue;
    }
    C->size[r] = LLVMBuildAdd(f->b, LLVMBuildSub(f->b, hi[i], lo[i], ""), cg_i64(f, 1), "");
    if (T == 0) {
      add_variant(C, r, h - l);
      continue;
    }
    /* Tiles are aligned to multiples of T (isl tiles floor(i / T)), not to the range's start:
     * a range that starts off a multiple of T, even one shorter than T, spans partial tiles. */
    for (int64_t t = l >= 0 ? l / T : -((-l + T - 1) / T); t * T < h; t++) {
      int64_t s = t * T > l ? t * T : l, e = (t + 1) * T < h ? (t + 1) * T : h;
      add_variant(C, r, e - s);
    }
  }
}

/* base + c0 + sum lin[i] * start[i] (elements of float). */
static LLVMValueRef tile_ptr(call *C, int buf, const int64_t *lin, int64_t c0, LLVMValueRef *start) {
  cg_fn *f = C->f;
  LLVMValueRef off = cg_i64(f, c0);
  for (int i = 0; i < C->op->niters; i++)
    if (lin[i])
      off = LLVMBuildAdd(f->b, off, LLVMBuildMul(f->b, start[i], cg_i64(f, lin[i]), ""), "");
  return LLVMBuildGEP2(f->b, f->f32, f->buf[buf], &off, 1, "");
}

/* A private constant array of the "n" values "v", of 64-bit integers (or 32-bit when "i32"). */
static LLVMValueRef const_table_of(call *C, const int64_t *v, int64_t n, const char *what, bool i32) {
  cg_fn *f = C->f;
  LLVMTypeRef ety = i32 ? LLVMInt32TypeInContext(f->ctx) : f->i64;
  LLVMValueRef *elems = malloc(sizeof(LLVMValueRef) * (size_t)n);
  for (int64_t i = 0; i < n; i++)
    elems[i] = LLVMConstInt(ety, (unsigned long long)v[i], 1);
  LLVMTypeRef ty = LLVMArrayType2(ety, (uint64_t)n);
  char name[64];
  snprintf(name, sizeof name, "brick.offs.%s", what);
  LLVMValueRef g = LLVMAddGlobal(f->m->mod, ty, name);
  LLVMSetInitializer(g, LLVMConstArray2(ety, elems, (uint64_t)n));
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  free(elems);
  return g;
}

static LLVMValueRef const_table(call *C, const int64_t *v, int64_t n, const char *what) {
  return const_table_of(C, v, n, what, false);
}

/* Iterations of batch loop "i" of "op" and the step of its iterator (a tile loop's tile). */
static int64_t batch_count(const sched_op *op, int i, int64_t *step) {
  const sched_stmt *ss = &op->sched;
  sched_loop l = ss->batch[i];
  *step = l.tile ? ss->tile[role_of(ss, l.iter)] : 1;
  return l.tile ? ext(op, l.iter) / *step : ext(op, l.iter);
}

/* Implicit padding (pack=A:mask): the rows and columns each batch element shifts the image
 * by, as (row, column) pairs in the order of the batch (the order of the offset tables). */
static void pad_shifts(call *C, LLVMValueRef *start) {
  const sched_op *op = C->op;
  const sched_stmt *ss = &op->sched;
  C->d.pad_q = (int)op->pad_q;
  C->d.pad_len = op->pad_len;
  C->pad_m = start[ss->role[SCHED_M]];
  int64_t *t = malloc(sizeof(int64_t) * 2 * (size_t)C->batch);
  for (int64_t b = 0; b < C->batch; b++) {
    int64_t rest = b, val[64] = {0};
    for (int i = ss->nbatch - 1; i >= 0; i--) { /* in the order of the offset tables */
      int64_t step, count = batch_count(op, i, &step);
      int it = ss->batch[i].iter;
      val[it] = op->iters[it].lo + rest % count * step;
      rest /= count;
    }
    t[2 * b] = op->pad_row.c;
    t[2 * b + 1] = op->pad_col.c;
    for (int i = 0; i < op->niters; i++) {
      t[2 * b] += op->pad_row.coef[i] * val[i];
      t[2 * b + 1] += op->pad_col.coef[i] * val[i];
    }
  }
  C->pad_shift = const_table_of(C, t, 2 * C->batch, "pad", true);
  free(t);
}

/* The batch: a stride when it is one loop with non-negative steps, else offset tables. */
static void batch(call *C) {
  const sched_op *op = C->op;
  const sched_stmt *ss = &op->sched;
  int64_t count[SCHED_MAX_LOOPS], sa[SCHED_MAX_LOOPS], sb[SCHED_MAX_LOOPS];
  C->batch = 1;
  for (int i = 0; i < ss->nbatch; i++) {
    sched_loop l = ss->batch[i];
    int64_t step;
    count[i] = batch_count(op, i, &step);
    sa[i] = C->lin_a[l.iter] * step;
    sb[i] = C->lin_b[l.iter] * step;
    C->batch *= count[i];
  }
  C->d.mode = BRG_BATCH_STRIDE;
  C->d.stride_a = ss->nbatch == 1 ? sa[0] : 0;
  C->d.stride_b = ss->nbatch == 1 ? sb[0] : 0;
  C->offs_a = C->offs_b = LLVMConstPointerNull(C->f->ptr);
  if (ss->nbatch <= 1 && C->d.stride_a >= 0 && C->d.stride_b >= 0)
    return;
  int64_t *ta = malloc(sizeof(int64_t) * (size_t)C->batch), *tb = malloc(sizeof(int64_t) * (size_t)C->batch);
  for (int64_t b = 0; b < C->batch; b++) {
    int64_t rest = b, oa = 0, ob = 0;
    for (int i = ss->nbatch - 1; i >= 0; i--) {
      oa += (rest % count[i]) * sa[i];
      ob += (rest % count[i]) * sb[i];
      rest /= count[i];
    }
    ta[b] = oa;
    tb[b] = ob;
  }
  C->d.mode = BRG_BATCH_OFFSETS;
  C->d.stride_a = C->d.stride_b = 0;
  C->offs_a = const_table(C, ta, C->batch, "a");
  C->offs_b = const_table(C, tb, C->batch, "b");
  free(ta);
  C->tb = tb;
}

/* Does the call prefetch the next register block's columns of B (BRG_PREFETCH_ROWS)? When B's
 * columns are rows of a tensor bigger than L2 that the batch interleaves (NCHW weights
 * W[k][c][r][s] broadcast over the taps of a convolution): each column is then its own short
 * stream from L3 or memory, which the hardware prefetchers follow late. The 3x3 C512 7x7
 * layer, 1 thread: x1.06-1.09 against oneDNN, and x1.2-1.3 with its weights out of the
 * caches. Not without a batch: on 1x1 convolutions and fully connected layers (K-long runs
 * per column) the prefetches, 16 per line, cost 5-40%. */
static bool prefetch_rows(const call *C) {
  const sched_buf *b = &C->f->sk->bufs.data[C->op->reads[C->op->b_read].buf];
  return C->batch > 1 && C->d.ldb_n >= 16 && C->f->o->l2 > 0 && b->nelems * 4 > C->f->o->l2;
}

/* Skipped taps (sched_op.tap): the taps t of the first batch loop with 0 <= a*t + g < E for
 * every constraint, g from the loops outside the call, are one run [lo, hi] of it, so one
 * contiguous run of the batch (the first loop is the outermost of the offset tables): move
 * the tables (or, in stride mode, A and B) to the run's start and pass its length. */
static void skip_taps(call *C, LLVMValueRef *start) {
  cg_fn *f = C->f;
  const sched_op *op = C->op;
  int t = op->tap_iter;
  int64_t step, count = batch_count(op, 0, &step), inner = C->batch / count;
  LLVMValueRef lo = cg_i64(f, op->iters[t].lo), hi = cg_i64(f, op->iters[t].hi - 1);
  for (int j = 0; j < op->ntap; j++) {
    const ir_affine *e = &op->tap[j];
    int64_t a = e->coef[t], E = op->tap_ext[j];
    LLVMValueRef g = cg_i64(f, e->c);
    for (int i = 0; i < op->niters; i++)
      if (i != t && e->coef[i])
        g = LLVMBuildAdd(f->b, g, LLVMBuildMul(f->b, start[i], cg_i64(f, e->coef[i]), ""), "");
    /* a > 0: -g/a <= t <= (E-1-g)/a; a < 0: (g-E+1)/|a| <= t <= g/|a| */
    LLVMValueRef top = LLVMBuildSub(f->b, cg_i64(f, E - 1), g, "");
    LLVMValueRef ad = cg_i64(f, a > 0 ? a : -a);
    LLVMValueRef l = LLVMBuildNeg(f->b, cg_floor_div(f, a > 0 ? g : top, ad), "");
    LLVMValueRef h = cg_floor_div(f, a > 0 ? top : g, ad);
    lo = cg_smax(f, lo, l);
    hi = cg_smin(f, hi, h);
  }
  LLVMValueRef n = cg_smax(f, LLVMBuildAdd(f->b, LLVMBuildSub(f->b, hi, lo, ""), cg_i64(f, 1), ""),
                        cg_i64(f, 0));
  LLVMValueRef first = LLVMBuildMul(f->b, LLVMBuildSub(f->b, lo, cg_i64(f, op->iters[t].lo), ""),
                                    cg_i64(f, inner), "");
  first = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntEQ, n, cg_i64(f, 0), ""), cg_i64(f, 0),
                          first, "");
  C->nbatch = LLVMBuildMul(f->b, n, cg_i64(f, inner), "taps");
  if (C->d.mode == BRG_BATCH_OFFSETS) {
    C->offs_a = LLVMBuildInBoundsGEP2(f->b, f->i64, C->offs_a, &first, 1, "");
    C->offs_b = LLVMBuildInBoundsGEP2(f->b, f->i64, C->offs_b, &first, 1, "");
  } else {
    LLVMValueRef oa = LLVMBuildMul(f->b, first, cg_i64(f, C->d.stride_a), "");
    LLVMValueRef ob = LLVMBuildMul(f->b, first, cg_i64(f, C->d.stride_b), "");
    C->a = LLVMBuildGEP2(f->b, f->f32, C->a, &oa, 1, "");
    C->b = LLVMBuildGEP2(f->b, f->f32, C->b, &ob, 1, "");
  }
}

/* Skipped column taps (sched_op.col): for each tap t of the last batch loop, the columns n of
 * the call's tile (the N iterator's whole range) with 0 <= col(n, t) < col_ext. Nothing when
 * every tap adds into every column, or for more taps than a body takes. */
static void col_taps(call *C) {
  const sched_op *op = C->op;
  const sched_stmt *ss = &op->sched;
  int n = ss->role[SCHED_N], t = op->col_iter;
  int64_t step, P = batch_count(op, ss->nbatch - 1, &step), N = ext(op, n);
  if (P > BRG_MAX_COL_PERIOD) /* (the batch is a multiple of P: P is its innermost loop) */
    return;
  bool skips = false;
  for (int64_t j = 0; j < P; j++) {
    int64_t lo = N, hi = 0; /* the valid columns of an affine index: one run */
    for (int64_t q = 0; q < N; q++) {
      int64_t v = op->col->c + op->col->coef[n] * (op->iters[n].lo + q) +
                  op->col->coef[t] * (op->iters[t].lo + j);
      if (v >= 0 && v < op->col_ext) {
        lo = q < lo ? q : lo;
        hi = q + 1;
      }
    }
    if (hi < lo)
      lo = hi = 0;
    C->d.col_lo[j] = (int)lo;
    C->d.col_hi[j] = (int)hi;
    skips |= lo > 0 || hi < N;
  }
  C->d.col_period = skips ? (int)P : 0;
}

/* Does each row of B, over the batch and K of the specialization in C->d, form one run from
 * the B pointer, each element once (the caller's promise of brg_desc.dot_rows)?  Checked
 * element by element: the scheduler's check (sched_call_b_run) is about the full tiles. */
static bool b_rows_contiguous(const call *C) {
  int64_t len = C->batch * C->d.K;
  if (len <= 0 || len * C->op->sched.tail > DOT_ROWS_MAX_FLOATS)
    return false;
  unsigned char *seen = calloc((size_t)len, 1);
  bool ok = seen != NULL; /* without memory, no dot rows: a masked vector is as correct */
  for (int64_t b = 0; b < C->batch && ok; b++)
    for (int64_t k = 0, ob = C->tb ? C->tb[b] : b * C->d.stride_b; k < C->d.K && ok; k++) {
      int64_t p = ob + k * C->d.ldb_k;
      ok = p >= 0 && p < len && !seen[p];
      if (ok)
        seen[p] = 1;
    }
  free(seen);
  return ok;
}

static void emit_call(call *C) {
  cg_fn *f = C->f;
  const sched_stmt *ss = &C->op->sched;
  C->d.dot_rows = ss->tail_call && C->d.M > ss->tail && b_rows_contiguous(C) ? (int)ss->tail : 0;
  const char *why = brg_desc_validate(&C->d);
  if (why) {
    if (!f->err) {
      bk_strbuf sb;
      bk_strbuf_init(&sb);
      bk_strbuf_printf(&sb, "BRGEMM of statement s%d: %s (M=%d N=%d K=%d lda=%lld ldb_k=%lld "
                       "ldb_n=%lld ldc=%lld)", C->op->stmt->index, why, C->d.M, C->d.N, C->d.K,
                       (long long)C->d.lda, (long long)C->d.ldb_k, (long long)C->d.ldb_n,
                       (long long)C->d.ldc);
      f->err = bk_strbuf_take(&sb);
    }
    return;
  }
  LLVMValueRef fn = brg_emit(f->m->mod, &C->d);
  LLVMValueRef args[9] = {C->a, C->b, C->c, C->nbatch,
                          C->d.epilogue & (BRG_EPI_BIAS_M | BRG_EPI_BIAS_N) ? C->bias : LLVMConstPointerNull(f->ptr),
                          C->offs_a, C->offs_b, C->pad_m, C->pad_shift};
  LLVMBuildCall2(f->b, brg_fn_type(f->ctx), fn, args, 9, "");
}

/* The choices of dimension "dim" (0..2: M, N, K sizes; 3: beta; 4: epilogue) and their
 * run-time conditions: beta 0 on the first visit of an output tile, the epilogue on the last. */
static int choices(const call *C, int dim, int64_t *val) {
  if (dim < 3) {
    for (int v = 0; v < C->nvariant[dim]; v++)
      val[v] = C->variant[dim][v];
    return C->nvariant[dim];
  }
  if (dim == 3) {
    val[0] = C->can_beta0 ? 0 : 1;
    val[1] = 1;
    return C->can_beta0 ? 2 : 1;
  }
  unsigned epi = C->op->epi;
  val[0] = epi;
  val[1] = 0;
  return epi && !C->always_last ? 2 : 1;
}

/* Choose the specialization of dimension "dim" at run time (see choices). */
static void dispatch(call *C, int dim) {
  cg_fn *f = C->f;
  if (dim == 5) {
    emit_call(C);
    return;
  }
  int64_t vals[MAX_VARIANTS];
  int n = choices(C, dim, vals);
  LLVMBasicBlockRef done = n > 1 ? LLVMAppendBasicBlockInContext(f->ctx, f->fn, "brg.done") : NULL;
  for (int v = 0; v < n; v++) {
    int64_t val = vals[v];
    if (dim < 3)
      (&C->d.M)[dim] = (int)val;
    else if (dim == 3)
      C->d.beta = (int)val;
    else
      C->d.epilogue = (unsigned)val;
    if (v + 1 < n) {
      LLVMValueRef cond = dim < 3    ? LLVMBuildICmp(f->b, LLVMIntEQ, C->size[dim], cg_i64(f, val), "")
                          : dim == 3 ? C->first
                                     : C->last;
      LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "brg.case");
      LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "brg.next");
      LLVMBuildCondBr(f->b, cond, then, next);
      LLVMPositionBuilderAtEnd(f->b, then);
      dispatch(C, dim + 1);
      LLVMBuildBr(f->b, done);
      LLVMPositionBuilderAtEnd(f->b, next);
    } else {
      dispatch(C, dim + 1);
      if (done) {
        LLVMBuildBr(f->b, done);
        LLVMPositionBuilderAtEnd(f->b, done);
      }
    }
  }
}

void cg_brgemm_gen(cg_fn *f, const sched_op *op, LLVMValueRef *start, LLVMValueRef *hi) {
  call C = {.f = f, .op = op};
  const sched_stmt *ss = &op->sched;
  int64_t c0c, c0a, c0b;
  sched_access_linearize(f->sk, op, &op->write, C.lin_c, &c0c);
  sched_access_linearize(f->sk, op, &op->reads[op->a_read], C.lin_a, &c0a);
  sched_access_linearize(f->sk, op, &op->reads[op->b_read], C.lin_b, &c0b);
  sizes(&C, start, hi);
  C.can_beta0 = op->stmt->inits_target;
  C.c = tile_ptr(&C, op->write.buf, C.lin_c, c0c, start);
  C.a = tile_ptr(&C, op->reads[op->a_read].buf, C.lin_a, c0a, start);
  C.b = tile_ptr(&C, op->reads[op->b_read].buf, C.lin_b, c0b, start);
  brg_desc_init(&C.d, 1, 1, 1, f->o->target->isa);
  C.d.vlen = f->o->target->vlen;
  int m = ss->role[SCHED_M], n = ss->role[SCHED_N], k = ss->role[SCHED_K];
  C.d.lda = k >= 0 ? C.lin_a[k] : 0;
  C.d.ldb_k = k >= 0 ? C.lin_b[k] : 0;
  C.d.ldb_n = n >= 0 ? C.lin_b[n] : 0;
  C.d.ldc = n >= 0 ? C.lin_c[n] : ext(op, m);
  if (k < 0)
    C.d.lda = ext(op, m);
  batch(&C);
  C.d.batch_hint = C.batch;
  if (prefetch_rows(&C))
    C.d.prefetch = BRG_PREFETCH_ROWS;
  C.nbatch = cg_i64(f, C.batch);
  if (op->ntap)
    skip_taps(&C, start);
  if (op->col)
    col_taps(&C);
  C.pad_m = cg_i64(f, 0);
  C.pad_shift = LLVMConstPointerNull(f->ptr);
  if (op->pad_q)
    pad_shifts(&C, start);
  if (op->epi & (BRG_EPI_BIAS_M | BRG_EPI_BIAS_N)) {
    int64_t lbias[64], c0bias;
    sched_access_linearize(f->sk, op, &op->bias, lbias, &c0bias);
    C.bias = tile_ptr(&C, op->bias.buf, lbias, c0bias, start);
  }
  dispatch(&C, 0);
  free(C.tb);
}
