/*
 * ir: brick's tensor IR, its semantic checks, range inference, isl sets and maps, and the
 * reference interpreter. Every compiled kernel is compared with the interpreter.
 *
 * Sections, one per file:
 * - ir.c:     the program, kernels, tensors, statements, expressions, and the builder the
 *             front end calls (names are still unresolved strings at this point).
 * - sema.c:   name resolution, affine index conversion, the language's rules of use, and
 *             range inference; afterwards every statement has its iterators and ranges.
 * - isl.c:    each statement's iteration domain and accesses as isl sets and maps.
 * - interp.c: the reference interpreter (naive loops, double accumulation).
 * - print.c:  the textual dump behind `brick show --ir`.
 */
#ifndef BRICK_IR_H
#define BRICK_IR_H

#include "support.h"

#include <isl/ctx.h>
#include <isl/options.h>
#include <isl/map.h>
#include <isl/set.h>

#define IR_MAX_RANK 8

typedef enum ir_op {
#define IR_OP(name, spelling, arity) IR_OP_##name,
#include "ops.h"
  IR_OP_COUNT
} ir_op;

const char *ir_op_spelling(ir_op op);
int ir_op_arity(ir_op op);
/* The function named "name" (relu, max, ...), or -1. */
int ir_op_lookup_function(const char *name);

typedef enum ir_role { IR_ROLE_INPUT, IR_ROLE_OUTPUT, IR_ROLE_LOCAL } ir_role;
typedef enum ir_assign { IR_ASSIGN_SET, IR_ASSIGN_ADD, IR_ASSIGN_MAX } ir_assign;

typedef struct ir_expr ir_expr;
typedef struct ir_tensor ir_tensor;

/* ---- ir.c: the program and its builder ------------------------------------- */

typedef enum ir_expr_kind {
  IR_EXPR_NUM,    /* a literal; "is_int" when written without '.' or exponent */
  IR_EXPR_NAME,   /* an identifier inside an index or dim: a size or an iterator */
  IR_EXPR_ACCESS, /* tensor[index, ...] */
  IR_EXPR_OP,     /* operator or function application, "op" and "args" */
} ir_expr_kind;

struct ir_expr {
  ir_expr_kind kind;
  ir_op op;
  double num;
  int64_t inum;
  bool is_int;
  const char *name; /* NAME: identifier; ACCESS: tensor name */
  ir_expr **args;   /* OP: operands; ACCESS: index expressions */
  int nargs;
  bk_loc loc;
  /* Filled by sema for accesses. */
  ir_tensor *tensor;
  struct ir_affine *index; /* "nargs" affine indices */
  int read_id;             /* position among the statement's reads, -1 for the left side */
};

typedef struct ir_size {
  const char *name;
  ir_expr *expr;
  int64_t value;
  bool overridden; /* set by -D */
  bool invalid;    /* its expression failed (reported): uses of it fail without a message */
  bk_loc loc;
} ir_size;

struct ir_tensor {
  const char *name;
  ir_role role;
  int rank;
  ir_expr **dim_exprs;
  int64_t dims[IR_MAX_RANK];
  int64_t nelems;
  int param_index; /* position in the C signature (inputs then outputs); -1 for locals */
  bk_loc loc;
};

/* An affine form c + sum coef[i] * iterator_i over the iterators of one statement. */
typedef struct ir_affine {
  int64_t c;
  int64_t *coef; /* stmt->niters entries */
} ir_affine;

typedef struct ir_iter {
  const char *name;
  int64_t lo, hi;   /* half-open range */
  bool reduction;   /* stands only on the right side */
  bool from_where;  /* range given by a where clause */
  bk_loc loc;       /* first occurrence */
  bk_loc range_loc; /* the index (or where clause) that gave the range */
} ir_iter;

typedef struct ir_where {
  const char *name;
  ir_expr *lo, *hi;
  bk_loc loc;
} ir_where;

typedef struct ir_stmt {
  int index;
  const char *label; /* optional "label:" before the statement, else NULL */
  ir_expr *lhs;      /* an ACCESS */
  ir_assign assign;
  ir_expr *rhs;
  BK_VEC(ir_where) wheres;
  bk_loc loc, assign_loc;
  /* Filled by sema. */
  ir_iter *iters; /* the left-side iterators in order, then the reductions in order of use */
  int niters, nlhs_iters;
  ir_expr **reads; /* the right side's accesses in order of appearance */
  int nreads;
  bool inits_target;       /* first write of its target with += or max=: fill 0 / -inf first */
  bool product_of_reads;   /* rhs is a product of accesses (out-of-bounds terms are skipped) */
  double flops;            /* nominal FLOPs of one execution */
  /* Filled by ir_program_build_isl. */
  isl_set *domain;  /* { Sk[iters] : ranges } */
  isl_map *write;   /* { Sk[iters] -> T[lhs index] } */
  isl_map **read;   /* nreads maps { Sk[iters] -> T[index] } */
} ir_stmt;

typedef struct ir_kernel {
  const char *name;
  BK_VEC(ir_tensor *) params; /* inputs then outputs, as in the C signature */
  BK_VEC(ir_tensor *) locals;
  BK_VEC(ir_stmt *) stmts;
  int ninputs, noutputs;
  double flops;
  bk_loc loc;
} ir_kernel;

typedef struct ir_program {
  bk_arena *arena;
  bk_diag *diag;
  isl_ctx *isl; /* owned by the program unless given by the caller */
  bool owns_isl;
  BK_VEC(ir_size *) sizes;
  BK_VEC(ir_kernel *) kernels;
} ir_program;

/* A new, empty program reporting to "diag". "isl" may be NULL: the program makes its own. */
ir_program *ir_program_new(bk_diag *diag, isl_ctx *isl);
void ir_program_free(BK_TAKE ir_program *p);

ir_expr *ir_expr_num(ir_program *p, bk_loc loc, double v, bool is_int, int64_t iv);
ir_expr *ir_expr_name(ir_program *p, bk_loc loc, const char *name);
ir_expr *ir_expr_access(ir_program *p, bk_loc loc, const char *tensor, ir_expr **idx, int n);
ir_expr *ir_expr_op(ir_program *p, bk_loc loc, ir_op op, ir_expr **args, int n);

/* Declare "size NAME = expr"; evaluated at once (earlier sizes, -D overrides). */
ir_size *ir_program_add_size(ir_program *p, bk_loc loc, const char *name, ir_expr *e);
/* Override a size before it is declared ("-D NAME=VAL"); checked by ir_program_check_overrides. */
void ir_program_override_size(ir_program *p, const char *name, int64_t value);
/* Report -D overrides that name no declared size; false if any. */
bool ir_program_check_overrides(ir_program *p);
ir_size *ir_program_find_size(const ir_program *p, const char *name);

/* Why "name" cannot name a kernel ("external") or a parameter in the generated C, or NULL:
 * a C or C++ keyword or reserved identifier, a common C library macro (NULL, EOF, errno...),
 * a name of the generated header's own (brick_..., BRICK_...); for a kernel also a C library
 * function. */
const char *ir_c_name_problem(const char *name, bool external);
ir_kernel *ir_kernel_new(ir_program *p, bk_loc loc, const char *name);
ir_tensor *ir_kernel_add_tensor(ir_program *p, ir_kernel *k, bk_loc loc, const char *name,
                                ir_role role, ir_expr **dims, int rank);
ir_stmt *ir_kernel_add_stmt(ir_program *p, ir_kernel *k, bk_loc loc, const char *label,
                            ir_expr *lhs, ir_assign assign, bk_loc assign_loc, ir_expr *rhs);
void ir_stmt_add_where(ir_program *p, ir_stmt *s, bk_loc loc, const char *name, ir_expr *lo,
                       ir_expr *hi);
ir_tensor *ir_kernel_find_tensor(const ir_kernel *k, const char *name);
ir_kernel *ir_program_find_kernel(const ir_program *p, const char *name);

/* ---- sema.c: checks and range inference ------------------------------------ */

/* Check kernel "k" and infer its ranges; false (with diagnostics) on errors. */
bool ir_kernel_check(ir_program *p, ir_kernel *k);
/* Evaluate an integer expression over sizes; false (with a diagnostic) if it is not one. */
bool ir_eval_int(ir_program *p, const ir_expr *e, int64_t *out);
/* Value of affine "a" at iterator values "it". */
int64_t ir_affine_eval(const ir_affine *a, int niters, const int64_t *it);
/* Range [lo, hi] of affine "a" over the box of the "n" iterators "iters" ([lo, hi) each). */
void ir_affine_range(const ir_affine *a, int n, const ir_iter *iters, int64_t *lo, int64_t *hi);

/* Narrow [*lo, *hi) to the values v at which an index c * v + x, x in [rmin, rmax] (c != 0),
 * stays in [0, dim - 1] whatever x. */
void ir_inside_range(int64_t c, int64_t rmin, int64_t rmax, int64_t dim, int64_t *lo, int64_t *hi);
/* The reads of "s" that are direct factors of its product (a '+=' whose terms with an
 * out-of-bounds factor are skipped): is_factor[read id] ("nreads" entries). */
void ir_product_factors(const ir_stmt *s, bool *is_factor);
/* Narrow the ranges [lo[i], hi[i]) of the reductions of "s" to the values at which no factor
 * ("is_factor") leaves its tensor along a dimension indexed by that reduction alone: the
 * other values' terms are all skipped. False when a range becomes empty (no term at all). */
bool ir_clip_skipped(const ir_stmt *s, const bool *is_factor, int64_t *lo, int64_t *hi);

/* ---- isl.c: polyhedral view ------------------------------------------------ */


/* "v" as an isl_val: every integer of the IR is 64-bit, and isl's *_si setters take an int
 * (sizes of 2^31 and more were cut to 32 bits: found by a trial). */
isl_val *ir_isl_val(isl_ctx *ctx, int64_t v);
/* Build every statement's domain and access maps. */
void ir_program_build_isl(ir_program *p);
/* The subset of the domain of "s" where every read index is inside its tensor. */
BK_GIVE isl_set *ir_stmt_inbounds_domain(const ir_stmt *s);

/* ---- interp.c: reference interpreter --------------------------------------- */

/* Run kernel "k" on "args" (params in signature order, each nelems floats); outputs get
 * the results. Locals are allocated internally. Returns 0, or -1 on allocation failure. */
int ir_interp_run(const ir_kernel *k, float *const *args);
/* The same, but only into double-precision output buffers (exact oracle). */
int ir_interp_run_double(const ir_kernel *k, float *const *inputs, double **outputs);

/* Single output elements computed exactly, for checking big kernels by sampling. */
typedef struct ir_sampler ir_sampler;
ir_sampler *ir_sampler_new(const ir_kernel *k, float *const *inputs);
void ir_sampler_free(BK_TAKE ir_sampler *sm);
/* Can the elements of output parameter "param" be computed one at a time? */
bool ir_sampler_can(const ir_sampler *sm, int param);
/* Element "elem" (row-major linear index) of output parameter "param", in double. */
double ir_sampler_element(ir_sampler *sm, int param, int64_t elem);

/* ---- print.c ---------------------------------------------------------------- */

void ir_program_print(const ir_program *p, FILE *out);
void ir_kernel_print(const ir_kernel *k, FILE *out);
void ir_expr_print(const ir_expr *e, const ir_stmt *s, FILE *out);

#endif
