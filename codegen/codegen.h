/*
 * codegen: lowered kernels (scheduler/) -> LLVM IR through the LLVM 19 C API, and what is done
 * with the IR: JIT (ORC LLJIT), object / assembly / LLVM IR files, the C header.
 *
 * - target.c:      --target parsing, target machines, the BRGEMM ISA of a target.
 * - kernel.c:      the pipeline for one kernel (schedule -> lower -> legality -> isl tree ->
 *                  isl AST -> IR) and the C ABI entry points NAME, NAME_ws and their globals.
 * - ast_to_llvm.c: isl AST nodes and expressions -> IR (loops, ifs, blocks, marks).
 * - stmt.c:        the body of a plain op at one point (accesses, arithmetic, functions).
 * - brgemm_call.c: one BRGEMM call at a "brgemm" mark (pointers, tails, beta, batch tables).
 * - transpose.c:   tiles of transposing and stride-2 copies; dot.c: blocks of a tail's dot
 *                  products.
 * - parallel.c:    a "parallel" mark's loop outlined and run through libgomp's GOMP_parallel.
 * - emit.c:        optimisation pipeline, files, header; jit.c: the JIT.
 */
#ifndef BRICK_CODEGEN_H
#define BRICK_CODEGEN_H

#include "brgemm.h"
#include "scheduler.h"

#include <isl/ast.h>

#include <llvm-c/Core.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

/* ---- target.c ------------------------------------------------------------------------------ */

typedef struct cg_target {
  char *triple, *cpu, *features;
  brg_isa isa;
  int vlen; /* GENERIC ISA only */
} cg_target;

/* Parse "native", "x86-64-v3", "x86-64-v4" or "TRIPLE[:CPU]" (NULL = native). Returns 0, or
 * -1 with a message in *err (malloc'ed). */
/* Does "triple" name the x86-64 architecture (x86_64, x86_64h or amd64)? */
bool cg_triple_is_x86_64(const char *triple);
int cg_target_init(cg_target *t, const char *spec, char **err);
void cg_target_release(cg_target *t);
/* A target machine for "t" (dispose with LLVMDisposeTargetMachine), or NULL with *err. */
LLVMTargetMachineRef cg_target_machine(const cg_target *t, char **err);

/* ---- kernel.c -------------------------------------------------------------------------------- */

typedef struct cg_options {
  int threads;        /* 0: team size from OMP_NUM_THREADS at run time; 1: serial; N: N */
  const cg_target *target;
  int64_t l2;         /* bytes of L2 the schedules were blocked for (0: unknown) */
} cg_options;

/* A module being built: its thread-safe context (for the JIT), module and target. */
typedef struct cg_module {
  LLVMOrcThreadSafeContextRef tsc;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMTargetMachineRef tm;
  const cg_target *target;
} cg_module;

cg_module *cg_module_new(const char *name, const cg_target *t, char **err);
void cg_module_free(BK_TAKE cg_module *m);

/* Emit kernel "sk" (lowered from "k") into "m": NAME_ws(params..., ws), NAME(params...),
 * NAME_flops and NAME_workspace_bytes. "ctx" is the isl context of the domains. "*parallel"
 * says whether the code forks an OpenMP team (libgomp). Returns 0 or -1 with *err. */
int cg_kernel_emit(cg_module *m, const sched_kernel *sk, isl_ctx *ctx, const cg_options *o,
                   bool *parallel, char **err);

/* ---- ast_to_llvm.c (internal to codegen) ------------------------------------------------------- */

typedef struct cg_sym {
  isl_id *id;          /* the AST iterator */
  LLVMValueRef slot;   /* alloca i64 */
} cg_sym;

typedef struct cg_fn {
  cg_module *m;
  LLVMContextRef ctx;
  LLVMBuilderRef b;
  LLVMValueRef fn;
  const sched_kernel *sk;
  const cg_options *o;
  LLVMValueRef *buf;   /* base pointer of each buffer in the current function */
  BK_VEC(cg_sym) syms;
  bk_arena *arena;
  char *err;
  /* inside the parallel region (parallel.c): */
  bool spmd;           /* code here runs on every thread (false: on this thread only) */
  LLVMValueRef tid, nth;             /* i64 thread number and team size */
  LLVMValueRef bar_count, bar_gen, bar_sleepers; /* the barrier's words */
  LLVMValueRef bar_spins;            /* i64 cycle-counter ticks of spinning before yielding */
  LLVMValueRef counters;             /* one i64 per op: the chunks its dynamic loop dealt out */
  bool *counter_used;                /* per op: its counter serves a loop already (one per call) */
  int loop_depth;                    /* non-degenerate loops around the current node */
  LLVMBasicBlockRef serial_end;
  LLVMTypeRef i64, i32, f32, ptr, i1;
} cg_fn;

void cg_ast_gen(cg_fn *f, isl_ast_node *node);
LLVMValueRef cg_ast_expr(cg_fn *f, isl_ast_expr *e);
LLVMValueRef cg_sym_lookup(cg_fn *f, isl_id *id);
void cg_sym_push(cg_fn *f, isl_id *id, LLVMValueRef slot);
LLVMValueRef cg_alloca_i64(cg_fn *f, const char *name);
/* An alloca of "ty" at the top of the current function's entry block. */
LLVMValueRef cg_entry_alloca(cg_fn *f, LLVMTypeRef ty, const char *name);
LLVMValueRef cg_i64(cg_fn *f, int64_t v);
/* floor(a / b), and the signed maximum and minimum, of i64 values. */
LLVMValueRef cg_floor_div(cg_fn *f, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_smax(cg_fn *f, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_smin(cg_fn *f, LLVMValueRef a, LLVMValueRef b);
/* The function "name" of type "ty" in the module, declared if it is not there yet. */
LLVMValueRef cg_declare(cg_fn *f, const char *name, LLVMTypeRef ty);
LLVMValueRef cg_intrinsic(cg_fn *f, const char *name, LLVMTypeRef *types, int ntypes,
                          LLVMValueRef *args, int nargs);

/* stmt.c: the op "op" at the point whose iterator values are "it". */
/* A function "name"(buffers..., extra...) for the code of "f", always inlined into its caller,
 * each buffer a noalias parameter (the buffers are distinct tensors and disjoint slices of the
 * workspace), and "f" for it: its builder at the entry, its buffers the parameters. */
cg_fn cg_body_fn(cg_fn *f, const char *name, const LLVMTypeRef *extra, int nextra);
void cg_stmt_gen(cg_fn *f, const sched_op *op, LLVMValueRef *it);
/* The right side of op "op" at point "it", without writing it anywhere. */
LLVMValueRef cg_stmt_value(cg_fn *f, const sched_op *op, LLVMValueRef *it);
/* Target of "op" at "it" = maxnum(target, v). */
void cg_stmt_max_into(cg_fn *f, const sched_op *op, LLVMValueRef *it, LLVMValueRef v);
/* stmt.c: the element offset of access "a" of "op" at the iterator values "it" (i64), and its
 * strides over the iterators into "lin"; a pointer to element "off" of buffer "buf". */
LLVMValueRef cg_access_offset(cg_fn *f, const sched_op *op, const sched_access *a,
                              LLVMValueRef *it, int64_t *lin);
LLVMValueRef cg_elem_ptr(cg_fn *f, int buf, LLVMValueRef off);
/* The annotation of a "brgemm" mark: the first and last point of the call's tile. */
typedef struct cg_mark_bounds {
  isl_ast_expr *lo, *hi;
} cg_mark_bounds;
/* brgemm_call.c: the call of "op" for the tile from "lo" to "hi" (iterator values). */
void cg_brgemm_gen(cg_fn *f, const sched_op *op, LLVMValueRef *lo, LLVMValueRef *hi);
/* transpose.c: the 16 x 16 tile of 2-D transposing copy "op" from "lo" to "hi" (iterator
 * values): vector loads, shuffles and stores when full, else the point loops "points". */
void cg_transpose_gen(cg_fn *f, const sched_op *op, LLVMValueRef *lo, LLVMValueRef *hi,
                      isl_ast_node *points);
/* transpose.c: the 16-wide tile of stride-2 copy "op" from "lo" to "hi": two vector loads
 * and a shuffle when full and in bounds, else the loop "points". */
void cg_subsample_gen(cg_fn *f, const sched_op *op, LLVMValueRef *lo, LLVMValueRef *hi,
                      isl_ast_node *points);
/* dot.c: the block of tail dot products "op" from "lo" to "hi" (iterator values): vector
 * accumulators per row and point when full, else the point loops "points". */
void cg_dot_gen(cg_fn *f, const sched_op *op, LLVMValueRef *lo, LLVMValueRef *hi,
                isl_ast_node *points);
/* parallel.c. Whether "node" holds a loop that runs across threads. */
bool cg_has_parallel(isl_ast_node *node);
/* Whether mark node "node" is a "parallel" mark on a loop that can be split across threads. */
bool cg_splittable_mark(isl_ast_node *node);
/* The kernel body "ast" as one parallel region: every thread runs it (see parallel.c). */
void cg_spmd_region(cg_fn *f, isl_ast_node *ast);
/* Inside the region: the loop "node" of a parallel mark of op "op", split across the threads. */
void cg_parallel_gen(cg_fn *f, isl_ast_node *node, const sched_op *op);
/* Inside the region: code between begin and end runs on thread 0, then a barrier. */
void cg_spmd_serial_begin(cg_fn *f);
void cg_spmd_serial_end(cg_fn *f);

/* ---- emit.c, jit.c ------------------------------------------------------------------------- */

typedef enum cg_file_kind { CG_FILE_OBJ, CG_FILE_ASM, CG_FILE_LLVM } cg_file_kind;

/* Run the optimisation pipeline over "m". Returns 0 or -1 with *err. */
int cg_module_optimize(cg_module *m, char **err);
int cg_module_write(cg_module *m, const char *path, cg_file_kind kind, char **err);
/* Write the C header declaring the kernels "ks" (lowered as "sks") of one object, under the
 * C names "names" they were compiled with; "parallel[i]": kernel i forks an OpenMP team. */
int cg_header_write(const char *path, const char *guard, const ir_kernel *const *ks,
                    const char *const *names, const bool *parallel,
                    const sched_kernel *const *sks, int n, char **err);

typedef struct cg_jit cg_jit;
cg_jit *cg_jit_new(char **err);
void cg_jit_free(BK_TAKE cg_jit *j);
/* Add module "m" (consumed, even on error) to the JIT. */
int cg_jit_add(cg_jit *j, BK_TAKE cg_module *m, char **err);
void *cg_jit_lookup(cg_jit *j, const char *name, char **err);

#endif
