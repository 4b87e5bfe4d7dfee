/*
 * Parallel execution through libgomp, with one parallel region per kernel call.
 *
 * When a kernel has a parallel loop (and is not compiled with --threads 1), its whole body is
 * outlined into "NAME_ws.omp(void *data)", which every thread of the team runs (SPMD), and
 * NAME_ws calls GOMP_parallel(fn, data, nthreads, 0) once. "data" is an array of 64-bit slots:
 * the buffer pointers, the three words of a barrier, a counter per op. Inside the region:
 *
 *   - a loop under a "parallel" mark runs one contiguous block of its iterations per thread
 *     (as gcc compiles "omp for schedule(static)"), or, for a pack, fill or copy-back that
 *     runs once per call, chunks taken from the op's counter ("schedule(dynamic)"); then all
 *     threads meet at a barrier;
 *   - a subtree without a parallel loop (a small pack, a serial op) runs on thread 0 only,
 *     then all threads meet at a barrier;
 *   - loops and branches that contain a parallel loop run on every thread (their bounds do
 *     not depend on the thread), so a parallel loop nested in them splits at each iteration.
 *
 * The barrier is brick's own: an arrival counter and a generation word, waited for by
 * spinning (x86 "pause", with a sched_yield now and then) for a few hundred us of the cycle
 * counter, then sleeping on the generation word (a Linux futex; elsewhere yields and 50 us
 * sleeps), so that a thread
 * waiting for a long serial section or for a preempted thread gives its CPU back; with more
 * threads than CPUs (omp_get_num_procs) it does not spin at all. libgomp's barriers and the
 * start of a region put waiting threads to sleep when OMP_WAIT_POLICY=passive, and waking one
 * costs 15-40 us on the 2-core VMs (measured: a region 45 us, a barrier 28 us, against 1-2 us
 * when waiting actively); a kernel whose pack, BRGEMM and copy-back each forked once paid that
 * per op. The barrier after the last op also keeps thread 0 spinning, not sleeping, until the
 * others are done. "nthreads" is 0 (libgomp's default team, from OMP_NUM_THREADS) or the
 * --threads count; a call from inside another parallel region gets a team of one.
 */
#include "codegen.h"

#include <isl/ast.h>
#include <isl/id.h>
#include <string.h>

/* Cycle-counter ticks a waiting thread spins before it sleeps (none when the team has more
 * threads than the process has CPUs): ~200-400 us at the 1-3 GHz the counter runs at. Waking
 * a sleeping thread costs 15-40 us on these VMs and sometimes over 1 ms (its virtual CPU
 * halted): with 50 us, a 2-image 3x3 conv on 2 threads ran at 1-thread speed in half the
 * calls. While spinning it yields now and then, so that a team thread queued on the same
 * CPU (another process holds the other core) still runs. A count of "pause" rounds would
 * not do: one pause takes 100 cycles on Zen 5, far fewer on older cores. */
#define BAR_SPIN_CYCLES (1 << 19)
#define BAR_YIELD_EVERY 512 /* pause rounds between two sched_yield while spinning */
#define BAR_SLEEP_US 50

/* The condition of for node "node" if it is "it <= e" or "it < e" (then *lt says which). */
static isl_ast_expr *bound_expr(isl_ast_node *node, bool *lt) {
  *lt = false;
  isl_ast_expr *ite = isl_ast_node_for_get_iterator(node);
  isl_id *it = isl_ast_expr_get_id(ite);
  isl_ast_expr_free(ite);
  isl_ast_expr *cond = isl_ast_node_for_get_cond(node), *rhs = NULL;
  if (isl_ast_expr_get_type(cond) == isl_ast_expr_op) {
    enum isl_ast_expr_op_type t = isl_ast_expr_op_get_type(cond);
    isl_ast_expr *lhs = isl_ast_expr_op_get_arg(cond, 0);
    isl_id *id = isl_ast_expr_get_type(lhs) == isl_ast_expr_id ? isl_ast_expr_get_id(lhs) : NULL;
    if ((t == isl_ast_expr_op_le || t == isl_ast_expr_op_lt) && id == it) {
      rhs = isl_ast_expr_op_get_arg(cond, 1);
      *lt = t == isl_ast_expr_op_lt;
    }
    isl_id_free(id);
    isl_ast_expr_free(lhs);
  }
  isl_ast_expr_free(cond);
  isl_id_free(it);
  return rhs;
}

bool cg_splittable_mark(isl_ast_node *node) {
  isl_id *mark = isl_ast_node_mark_get_id(node);
  bool par = strcmp(isl_id_get_name(mark), SCHED_MARK_PARALLEL) == 0;
  isl_id_free(mark);
  if (!par)
    return false;
  isl_ast_node *child = isl_ast_node_mark_get_node(node);
  bool ok = false;
  if (isl_ast_node_get_type(child) == isl_ast_node_for &&
      isl_ast_node_for_is_degenerate(child) != isl_bool_true) {
    bool lt;
    isl_ast_expr *rhs = bound_expr(child, &lt);
    ok = rhs != NULL;
    isl_ast_expr_free(rhs);
  }
  isl_ast_node_free(child);
  return ok;
}

static isl_bool find_split(__isl_keep isl_ast_node *node, void *user) {
  if (isl_ast_node_get_type(node) == isl_ast_node_mark && cg_splittable_mark(node)) {
    *(bool *)user = true;
    return isl_bool_error; /* stop the walk */
  }
  return isl_bool_true;
}

bool cg_has_parallel(isl_ast_node *node) {
  bool found = false;
  isl_ast_node_foreach_descendant_top_down(node, find_split, &found);
  return found;
}

/* ---- the barrier ----------------------------------------------------------------------------- */

static LLVMValueRef slot_ptr(cg_fn *g, LLVMValueRef data, int i) {
  LLVMValueRef idx = cg_i64(g, i);
  return LLVMBuildGEP2(g->b, g->i64, data, &idx, 1, "");
}

static LLVMValueRef atomic_load(cg_fn *g, LLVMValueRef p, LLVMAtomicOrdering order) {
  LLVMValueRef v = LLVMBuildLoad2(g->b, g->i64, p, "");
  LLVMSetOrdering(v, order);
  LLVMSetAlignment(v, 8);
  return v;
}

/* The futex system call number for the target, or 0 (then a waiting thread sleeps in
 * BAR_SLEEP_US steps instead). */
static int64_t futex_nr(const cg_fn *g) {
  const char *t = g->m->target->triple;
  if (!strstr(t, "linux"))
    return 0;
  return strncmp(t, "x86_64", 6) == 0 ? 202 : strncmp(t, "aarch64", 7) == 0 ? 98 : 0;
}

/* syscall(nr, word, op, val, 0) through libc's variadic syscall(). */
static void futex(cg_fn *g, int64_t nr, LLVMValueRef word, int64_t op, LLVMValueRef val) {
  LLVMTypeRef first = g->i64;
  LLVMTypeRef fty = LLVMFunctionType(g->i64, &first, 1, 1);
  LLVMValueRef args[5] = {cg_i64(g, nr), word, cg_i64(g, op), val, cg_i64(g, 0)};
  LLVMBuildCall2(g->b, fty, cg_declare(g, "syscall", fty), args, 5, "");
}

/* All threads of the team wait here until each has arrived. The last to arrive resets the
 * count and starts the next generation, waking sleepers if there are any; the others spin
 * on the generation word for BAR_SPIN_CYCLES, then sleep on it (a futex; sleeping threads
 * are counted, so that the common case makes no system call), or where there is no futex,
 * yield and sleep in steps. */
static void barrier(cg_fn *g) {
  int64_t nr = futex_nr(g);
  LLVMValueRef gen0 = atomic_load(g, g->bar_gen, LLVMAtomicOrderingAcquire);
  LLVMValueRef old = LLVMBuildAtomicRMW(g->b, LLVMAtomicRMWBinOpAdd, g->bar_count, cg_i64(g, 1),
                                        LLVMAtomicOrderingAcquireRelease, 0);
  LLVMValueRef last = LLVMBuildICmp(g->b, LLVMIntEQ, old, LLVMBuildSub(g->b, g->nth, cg_i64(g, 1), ""), "");
  LLVMBasicBlockRef release = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.release");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.start");
  LLVMBasicBlockRef wait = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.wait");
  LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.slow");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.done");
  LLVMValueRef rounds = cg_alloca_i64(g, "bar.rounds");
  LLVMBuildCondBr(g->b, last, release, start);
  LLVMPositionBuilderAtEnd(g->b, release);
  LLVMValueRef st = LLVMBuildStore(g->b, cg_i64(g, 0), g->bar_count);
  LLVMSetOrdering(st, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(st, 8);
  LLVMBuildAtomicRMW(g->b, LLVMAtomicRMWBinOpAdd, g->bar_gen, cg_i64(g, 1),
                     LLVMAtomicOrderingSequentiallyConsistent, 0);
  if (nr) {
    LLVMBasicBlockRef wake = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.wake");
    LLVMValueRef any = LLVMBuildICmp(g->b, LLVMIntNE, atomic_load(g, g->bar_sleepers, LLVMAtomicOrderingSequentiallyConsistent), cg_i64(g, 0), "");
    LLVMBuildCondBr(g->b, any, wake, done);
    LLVMPositionBuilderAtEnd(g->b, wake);
    futex(g, nr, g->bar_gen, 129 /* FUTEX_WAKE_PRIVATE */, cg_i64(g, 0x7fffffff));
  }
  LLVMBuildBr(g->b, done);
  /* the others spin until the generation changes, for BAR_SPIN_CYCLES of the cycle counter */
  LLVMPositionBuilderAtEnd(g->b, start);
  LLVMBuildStore(g->b, cg_i64(g, 0), rounds);
  LLVMValueRef t0 = cg_intrinsic(g, "llvm.readcyclecounter", NULL, 0, NULL, 0);
  LLVMBuildBr(g->b, wait);
  LLVMPositionBuilderAtEnd(g->b, wait);
  LLVMValueRef moved = LLVMBuildICmp(g->b, LLVMIntNE, atomic_load(g, g->bar_gen, LLVMAtomicOrderingAcquire), gen0, "");
  LLVMBasicBlockRef pause = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.pause");
  LLVMBuildCondBr(g->b, moved, done, pause);
  LLVMPositionBuilderAtEnd(g->b, pause);
  if (strncmp(g->m->target->triple, "x86_64", 6) == 0)
    cg_intrinsic(g, "llvm.x86.sse2.pause", NULL, 0, NULL, 0);
  /* every BAR_YIELD_EVERY rounds, yield: free when this CPU has nothing else to run, and it
   * lets a thread of the team that waits on this CPU (a core taken by another process) run */
  LLVMValueRef r = LLVMBuildAdd(g->b, LLVMBuildLoad2(g->b, g->i64, rounds, ""), cg_i64(g, 1), "");
  LLVMBuildStore(g->b, r, rounds);
  LLVMBasicBlockRef yield0 = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.yield0");
  LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.check");
  LLVMValueRef every = LLVMBuildAnd(g->b, r, cg_i64(g, BAR_YIELD_EVERY - 1), "");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, every, cg_i64(g, 0), ""), yield0, check);
  LLVMPositionBuilderAtEnd(g->b, yield0);
  LLVMTypeRef y0ty = LLVMFunctionType(g->i32, NULL, 0, 0);
  LLVMBuildCall2(g->b, y0ty, cg_declare(g, "sched_yield", y0ty), NULL, 0, "");
  LLVMBuildBr(g->b, check);
  LLVMPositionBuilderAtEnd(g->b, check);
  LLVMValueRef el = LLVMBuildSub(g->b, cg_intrinsic(g, "llvm.readcyclecounter", NULL, 0, NULL, 0), t0, "");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntULE, el, g->bar_spins, ""), wait, slow);
  LLVMPositionBuilderAtEnd(g->b, slow);
  if (nr) {
    /* sleep on the generation word while it still holds gen0 (the kernel checks that
     * atomically); counted in "sleepers" so that the releaser knows to wake */
    LLVMBuildAtomicRMW(g->b, LLVMAtomicRMWBinOpAdd, g->bar_sleepers, cg_i64(g, 1),
                       LLVMAtomicOrderingSequentiallyConsistent, 0);
    LLVMBasicBlockRef sleep = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.futex");
    LLVMBasicBlockRef woke = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "bar.woke");
    LLVMValueRef same = LLVMBuildICmp(g->b, LLVMIntEQ, atomic_load(g, g->bar_gen, LLVMAtomicOrderingSequentiallyConsistent), gen0, "");
    LLVMBuildCondBr(g->b, same, sleep, woke);
    LLVMPositionBuilderAtEnd(g->b, sleep);
    futex(g, nr, g->bar_gen, 128 /* FUTEX_WAIT_PRIVATE */,
          LLVMBuildAnd(g->b, gen0, cg_i64(g, 0xffffffff), ""));
    LLVMBuildBr(g->b, woke);
    LLVMPositionBuilderAtEnd(g->b, woke);
    LLVMBuildAtomicRMW(g->b, LLVMAtomicRMWBinOpSub, g->bar_sleepers, cg_i64(g, 1),
                       LLVMAtomicOrderingSequentiallyConsistent, 0);
    LLVMBuildBr(g->b, wait);
  } else { /* no futex: sleep BAR_SLEEP_US per round */
    LLVMTypeRef sty = LLVMFunctionType(g->i32, &g->i32, 1, 0);
    LLVMValueRef us = LLVMConstInt(g->i32, BAR_SLEEP_US, 0);
    LLVMBuildCall2(g->b, sty, cg_declare(g, "usleep", sty), &us, 1, "");
    LLVMBuildBr(g->b, wait);
  }
  LLVMPositionBuilderAtEnd(g->b, done);
}

/* ---- inside the region ------------------------------------------------------------------------ */

void cg_spmd_serial_begin(cg_fn *g) {
  LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "serial");
  g->serial_end = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "serial.end");
  LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, g->tid, cg_i64(g, 0), ""), run, g->serial_end);
  LLVMPositionBuilderAtEnd(g->b, run);
  g->spmd = false;
}

void cg_spmd_serial_end(cg_fn *g) {
  LLVMBuildBr(g->b, g->serial_end);
  LLVMPositionBuilderAtEnd(g->b, g->serial_end);
  g->spmd = true;
  barrier(g);
}

/* The iterations [t0, t1) of the loop "node" (lower bound "lb", step "inc") in this thread:
 * the loop's body with iterator "it" = lb + t * inc. */
static void run_block(cg_fn *g, isl_ast_node *node, isl_id *it, LLVMValueRef lb, LLVMValueRef inc,
                      LLVMValueRef t0, LLVMValueRef t1) {
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
  g->spmd = false; /* the body is this thread's own */
  cg_ast_gen(g, b);
  g->spmd = true;
  isl_ast_node_free(b);
  LLVMBuildStore(g->b, LLVMBuildAdd(g->b, LLVMBuildLoad2(g->b, g->i64, t, ""), cg_i64(g, 1), ""), t);
  LLVMBuildBr(g->b, head);
  LLVMPositionBuilderAtEnd(g->b, exit);
  g->syms.len--;
}

/* The loop "node" of a "parallel" mark of op "op". BRGEMM loops give each thread one
 * contiguous block of their iterations (the blocks the packs were aligned with). The loop of
 * a plain op (a pack, a fill, a copy-back) that runs once per call is dealt out dynamically
 * in chunks of about 1/8 of a thread's share from a counter: the worker of a call starts
 * 15-40 us after thread 0 (it was asleep), and thread 0 packs more rows meanwhile instead of
 * waiting for it at the next barrier. The last thread takes its chunks from the back, the
 * others from the front (chunks counted in one word, front and back halves, claimed with
 * compare-and-swap), so that on 2 threads each packs (mostly) the rows its own calls read:
 * when the VM's two CPUs sit on different CCDs (no shared L3; 350-380 ns for a cache line
 * there and back, against 80-110 ns on one CCD), rows packed by the other thread came
 * from memory, and the 3x3 C128 conv on 28x28 took 0.72 ms on 2 threads with chunks from the
 * front only, 0.57 with these (0.46-0.49 on one CCD). */
void cg_parallel_gen(cg_fn *g, isl_ast_node *node, const sched_op *op) {
  bool lt;
  isl_ast_expr *rhs = bound_expr(node, &lt);
  LLVMValueRef ub = cg_ast_expr(g, rhs);
  isl_ast_expr_free(rhs);
  if (lt)
    ub = LLVMBuildSub(g->b, ub, cg_i64(g, 1), "");
  isl_ast_expr *e = isl_ast_node_for_get_init(node);
  LLVMValueRef lb = cg_ast_expr(g, e);
  isl_ast_expr_free(e);
  e = isl_ast_node_for_get_inc(node);
  LLVMValueRef inc = cg_ast_expr(g, e);
  isl_ast_expr_free(e);
  isl_ast_expr *ite = isl_ast_node_for_get_iterator(node);
  isl_id *it = isl_ast_expr_get_id(ite);
  isl_ast_expr_free(ite);

  LLVMValueRef trips = LLVMBuildAdd(g->b, LLVMBuildSDiv(g->b, LLVMBuildSub(g->b, ub, lb, ""), inc, ""),
                                    cg_i64(g, 1), "");
  /* a counter is zeroed once per call: a second loop of the same op would find it spent */
  if (op && op->kind == SCHED_OP_LOOPS && g->loop_depth == 0 && !g->counter_used[op->index]) {
    g->counter_used[op->index] = true;
    LLVMValueRef idx = cg_i64(g, op->index);
    LLVMValueRef ctr = LLVMBuildGEP2(g->b, g->i64, g->counters, &idx, 1, "");
    LLVMValueRef chunk = LLVMBuildSDiv(g->b, trips, LLVMBuildMul(g->b, g->nth, cg_i64(g, 8), ""), "");
    chunk = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, chunk, cg_i64(g, 1), ""),
                            cg_i64(g, 1), chunk, "chunk");
    /* the counter: chunks taken from the front (low 32 bits) and from the back (high 32);
     * there are at most about 16 x nth + 1 chunks */
    LLVMValueRef nchunks = LLVMBuildSDiv(g->b, LLVMBuildAdd(g->b, trips, LLVMBuildSub(g->b, chunk, cg_i64(g, 1), ""), ""),
                                         chunk, "nchunks");
    LLVMBasicBlockRef grab = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "dyn.grab");
    LLVMBasicBlockRef take = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "dyn.take");
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "dyn.run");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, g->fn, "dyn.done");
    LLVMValueRef back = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, g->nth, cg_i64(g, 1), ""),
                                     LLVMBuildICmp(g->b, LLVMIntEQ, g->tid, LLVMBuildSub(g->b, g->nth, cg_i64(g, 1), ""), ""),
                                     "back");
    LLVMBuildBr(g->b, grab);
    LLVMPositionBuilderAtEnd(g->b, grab);
    LLVMValueRef old = LLVMBuildLoad2(g->b, g->i64, ctr, "");
    LLVMSetOrdering(old, LLVMAtomicOrderingMonotonic);
    LLVMSetAlignment(old, 8);
    LLVMValueRef front = LLVMBuildAnd(g->b, old, cg_i64(g, 0xffffffff), "");
    LLVMValueRef taken = LLVMBuildLShr(g->b, old, cg_i64(g, 32), "");
    LLVMValueRef left = LLVMBuildSub(g->b, LLVMBuildSub(g->b, nchunks, front, ""), taken, "");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSGT, left, cg_i64(g, 0), ""), take, done);
    LLVMPositionBuilderAtEnd(g->b, take);
    LLVMValueRef upd = LLVMBuildAdd(g->b, old, LLVMBuildSelect(g->b, back, cg_i64(g, (int64_t)1 << 32), cg_i64(g, 1), ""), "");
    LLVMValueRef cx = LLVMBuildAtomicCmpXchg(g->b, ctr, old, upd, LLVMAtomicOrderingMonotonic,
                                             LLVMAtomicOrderingMonotonic, 0);
    LLVMBuildCondBr(g->b, LLVMBuildExtractValue(g->b, cx, 1, ""), run, grab);
    LLVMPositionBuilderAtEnd(g->b, run);
    LLVMValueRef which = LLVMBuildSelect(g->b, back, LLVMBuildSub(g->b, LLVMBuildSub(g->b, nchunks, taken, ""),
                                                                  cg_i64(g, 1), ""), front, "");
    LLVMValueRef t0 = LLVMBuildMul(g->b, which, chunk, "");
    LLVMValueRef t1 = LLVMBuildAdd(g->b, t0, chunk, "");
    t1 = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, t1, trips, ""), t1, trips, "");
    run_block(g, node, it, lb, inc, t0, t1);
    LLVMBuildBr(g->b, grab);
    LLVMPositionBuilderAtEnd(g->b, done);
  } else {
    LLVMValueRef chunk = LLVMBuildSDiv(g->b, LLVMBuildAdd(g->b, trips, LLVMBuildSub(g->b, g->nth, cg_i64(g, 1), ""), ""), g->nth, "");
    LLVMValueRef t0 = LLVMBuildMul(g->b, g->tid, chunk, "");
    LLVMValueRef t1 = LLVMBuildAdd(g->b, t0, chunk, "");
    t1 = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, t1, trips, ""), t1, trips, "");
    run_block(g, node, it, lb, inc, t0, t1);
  }
  isl_id_free(it);
  barrier(g);
}

/* ---- the region ----------------------------------------------------------------------------- */

/* Copy the function attribute "key" (a string attribute) of "from" to "to", if it has one. */
static void copy_str_attr(LLVMValueRef from, LLVMValueRef to, const char *key) {
  LLVMAttributeRef a = LLVMGetStringAttributeAtIndex(from, LLVMAttributeFunctionIndex, key,
                                                     (unsigned)strlen(key));
  if (a)
    LLVMAddAttributeAtIndex(to, LLVMAttributeFunctionIndex, a);
}

static void add_enum_attr(LLVMContextRef ctx, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(ctx, kind, 0));
}

/* An internal function "name" of type "ty" with the target attributes of "like". */
static LLVMValueRef new_fn(cg_fn *f, const char *name, LLVMTypeRef ty) {
  LLVMValueRef fn = LLVMAddFunction(f->m->mod, name, ty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  copy_str_attr(f->fn, fn, "target-cpu");
  copy_str_attr(f->fn, fn, "target-features");
  add_enum_attr(f->ctx, fn, LLVMAttributeFunctionIndex, "nounwind");
  return fn;
}

cg_fn cg_body_fn(cg_fn *f, const char *name, const LLVMTypeRef *extra, int nextra) {
  int nbufs = f->sk->bufs.len, np = nbufs + nextra;
  LLVMTypeRef *pty = bk_arena_alloc(f->arena, sizeof(LLVMTypeRef) * (size_t)(np + 1));
  for (int i = 0; i < np; i++)
    pty[i] = i < nbufs ? f->ptr : extra[i - nbufs];
  cg_fn g = *f;
  g.fn = new_fn(f, name, LLVMFunctionType(LLVMVoidTypeInContext(f->ctx), pty, (unsigned)np, 0));
  add_enum_attr(f->ctx, g.fn, LLVMAttributeFunctionIndex, "alwaysinline");
  for (int i = 0; i < nbufs; i++) {
    add_enum_attr(f->ctx, g.fn, (unsigned)i + 1, "noalias");
    add_enum_attr(f->ctx, g.fn, (unsigned)i + 1, "nocapture");
  }
  g.b = LLVMCreateBuilderInContext(f->ctx);
  LLVMPositionBuilderAtEnd(g.b, LLVMAppendBasicBlockInContext(f->ctx, g.fn, "entry"));
  g.buf = bk_arena_alloc(f->arena, sizeof(LLVMValueRef) * (size_t)(nbufs + 1));
  for (int i = 0; i < nbufs; i++)
    g.buf[i] = LLVMGetParam(g.fn, (unsigned)i);
  return g;
}

/* The i32 result of libgomp's query "name" (omp_get_thread_num...), as an i64. */
static LLVMValueRef omp_query(cg_fn *g, const char *name) {
  LLVMTypeRef ty = LLVMFunctionType(g->i32, NULL, 0, 0);
  return LLVMBuildSExt(g->b, LLVMBuildCall2(g->b, ty, cg_declare(g, name, ty), NULL, 0, ""), g->i64, "");
}

/*
 * Two functions: "NAME_ws.body(buffers..., tid, nth, &count, &gen, spins, counters)" holds
 * the code (the barrier's third word, the sleepers, follows "gen"); its buffer parameters are
 * noalias, as NAME_ws's are (the buffers are distinct tensors and disjoint
 * slices of the workspace), so that the loops it runs vectorize as they would outside the
 * region, and it is always inlined into "NAME_ws.omp(data)", the function GOMP_parallel runs,
 * which reads the slots of "data". The barrier's atomics (acquire, release) order every
 * access to the buffers across the barrier, noalias or not.
 */
void cg_spmd_region(cg_fn *f, isl_ast_node *ast) {
  int nbufs = f->sk->bufs.len, n = nbufs + 3 + f->sk->ops.len;
  LLVMTypeRef arr = LLVMArrayType2(f->i64, (uint64_t)n);
  LLVMValueRef data = cg_entry_alloca(f, arr, "omp.data");
  for (int i = 0; i < n; i++) {
    LLVMValueRef v = i < nbufs ? LLVMBuildPtrToInt(f->b, f->buf[i], f->i64, "") : cg_i64(f, 0);
    LLVMBuildStore(f->b, v, slot_ptr(f, data, i));
  }
  const char *base = LLVMGetValueName(f->fn);
  char name[256];

  /* the body: buffers, tid, nth, &count, &gen, spins, &counters */
  LLVMTypeRef extra[6] = {f->i64, f->i64, f->ptr, f->ptr, f->i64, f->ptr};
  int np = nbufs + 6;
  snprintf(name, sizeof name, "%s.body", base);
  cg_fn g = cg_body_fn(f, name, extra, 6);
  g.tid = LLVMGetParam(g.fn, (unsigned)nbufs);
  g.nth = LLVMGetParam(g.fn, (unsigned)nbufs + 1);
  g.bar_count = LLVMGetParam(g.fn, (unsigned)nbufs + 2);
  g.bar_gen = LLVMGetParam(g.fn, (unsigned)nbufs + 3);
  g.bar_spins = LLVMGetParam(g.fn, (unsigned)nbufs + 4);
  g.counters = LLVMGetParam(g.fn, (unsigned)nbufs + 5);
  g.counter_used = bk_arena_alloc(f->arena, sizeof(bool) * (size_t)(f->sk->ops.len + 1));
  memset(g.counter_used, 0, sizeof(bool) * (size_t)(f->sk->ops.len + 1));
  LLVMValueRef one = cg_i64(&g, 1);
  g.bar_sleepers = LLVMBuildGEP2(g.b, g.i64, g.bar_gen, &one, 1, "sleepers");
  g.loop_depth = 0;
  g.spmd = true;
  cg_ast_gen(&g, ast);
  LLVMBuildRetVoid(g.b);
  if (g.err && !f->err)
    f->err = g.err;
  LLVMValueRef body = g.fn;

  /* the function each thread runs: unpack "data", call the body */
  snprintf(name, sizeof name, "%s.omp", base);
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(f->ctx), &f->ptr, 1, 0);
  LLVMValueRef omp = new_fn(f, name, fty);
  LLVMPositionBuilderAtEnd(g.b, LLVMAppendBasicBlockInContext(f->ctx, omp, "entry"));
  g.fn = omp;
  LLVMValueRef gdata = LLVMGetParam(omp, 0);
  LLVMValueRef *args = bk_arena_alloc(f->arena, sizeof(LLVMValueRef) * (size_t)np);
  for (int i = 0; i < nbufs; i++)
    args[i] = LLVMBuildIntToPtr(g.b, LLVMBuildLoad2(g.b, g.i64, slot_ptr(&g, gdata, i), ""), g.ptr, "");
  args[nbufs] = omp_query(&g, "omp_get_thread_num");
  args[nbufs + 1] = omp_query(&g, "omp_get_num_threads");
  args[nbufs + 2] = slot_ptr(&g, gdata, nbufs);
  args[nbufs + 3] = slot_ptr(&g, gdata, nbufs + 1);
  LLVMValueRef fits = LLVMBuildICmp(g.b, LLVMIntSLE, args[nbufs + 1], omp_query(&g, "omp_get_num_procs"), "");
  args[nbufs + 4] = LLVMBuildSelect(g.b, fits, cg_i64(&g, BAR_SPIN_CYCLES), cg_i64(&g, 0), "spins");
  args[nbufs + 5] = slot_ptr(&g, gdata, nbufs + 3);
  LLVMBuildCall2(g.b, LLVMGlobalGetValueType(body), body, args, (unsigned)np, "");
  LLVMBuildRetVoid(g.b);
  LLVMDisposeBuilder(g.b);

  LLVMTypeRef gomp_args[4] = {f->ptr, f->ptr, f->i32, f->i32};
  LLVMTypeRef gty = LLVMFunctionType(LLVMVoidTypeInContext(f->ctx), gomp_args, 4, 0);
  LLVMValueRef gargs[4] = {omp, data, LLVMConstInt(f->i32, (unsigned)f->o->threads, 0),
                           LLVMConstInt(f->i32, 0, 0)};
  LLVMBuildCall2(f->b, gty, cg_declare(f, "GOMP_parallel", gty), gargs, 4, "");
}
