/*
 * scheduler: schedules as data, their text form, lowering of a kernel into ops (BRGEMM
 * contractions, plain loop nests, packs), isl schedule trees with BRGEMM marks, the legality
 * check against isl's dataflow dependences, and the default heuristic.
 *
 * - schedule.c:  the schedule type and its round-trippable text form (scheduler/README.md).
 * - classify.c:  contraction classification: which statements are C += A * B, and the roles
 *                (M side, N side, reductions, independent batch) of their iterators.
 * - heuristic.c: the default schedule of a kernel.
 * - lower.c:     kernel + schedule -> ops (validating the schedule on the way).
 * - tree.c:      ops -> isl schedule tree (permuted, tiled bands; "brgemm" and "parallel" marks).
 * - legality.c:  dependences (isl_union_access_info_compute_flow) and the legality check.
 */
#ifndef BRICK_SCHEDULER_H
#define BRICK_SCHEDULER_H

#include "ir.h"

#include <isl/schedule.h>
#include <isl/union_map.h>
#include <isl/union_set.h>

#define SCHED_MAX_LOOPS 16
#define SCHED_FORMAT_VERSION 2

/* ---- schedule.c: schedules as data --------------------------------------------------- */

typedef enum sched_role { SCHED_M, SCHED_N, SCHED_K } sched_role;

/* How a read operand is repacked before a BRGEMM statement runs (a scratch buffer the kernel
 * owns; the cost is inside the call).
 * PAD:    a zero-padded copy covering every index the statement reads, so no read is out of
 *         bounds and the domain stays rectangular.
 * IM2COL: the operand materialised over the iterators it depends on, the M iterator last, so
 *         that M is unit-stride (strided convolutions, transposed weights).
 * IM2ROW: only the one dimension that M indexes is expanded, over its iterators with M last;
 *         the other dimensions stay (zero-padded) as they are: for a 7x7/2 convolution the
 *         rows are not copied once per filter row, a copy R times smaller than IM2COL's.
 * MASK:   no copy: a convolution's input read in place, its rows flattened into M ("flatten",
 *         at the input's own row pitch), the lanes that fall into the zero padding masked off
 *         inside the BRGEMM (brg_desc.pad_q); the taps that shift the image must be batch loops. */
typedef enum sched_pack {
  SCHED_PACK_NONE,
  SCHED_PACK_PAD,
  SCHED_PACK_IM2COL,
  SCHED_PACK_IM2ROW,
  SCHED_PACK_MASK
} sched_pack;

/* The name of a packing in the schedule text ("pad", "im2col", "im2row", "mask"). */
const char *sched_pack_name(sched_pack kind);
/* Elements of the packed copy of read "r" of "s" with M = "m" (0 if it cannot be laid out). */
int64_t sched_pack_elems(const ir_stmt *s, int r, int m, sched_pack kind);

/* One loop: the full loop of an iterator, or the loop over the tiles of a role iterator. */
typedef struct sched_loop {
  int iter;
  bool tile;
} sched_loop;

/* The schedule of one statement. */
typedef struct sched_stmt {
  int stmt;                 /* statement index */
  bool brgemm;              /* lowered to BRGEMM calls; else a plain loop nest */
  int role[3];              /* iterator of M, N, K (-1: absent; M is required) */
  int64_t tile[3];          /* tile size of each role; 0 = the whole range */
  sched_loop order[SCHED_MAX_LOOPS]; /* loops outside the call, outermost first */
  int norder;
  sched_loop batch[SCHED_MAX_LOOPS]; /* reduction loops inside the call (the batch) */
  int nbatch;
  int parallel;             /* index in "order" of the parallel loop, -1 for none */
  bool flatten;             /* fuse iterator "flatten_iter" (p) into M (q): see lower.c */
  int flatten_iter;
  bool epilogue;            /* statement "epilogue_stmt" runs as this BRGEMM's epilogue */
  int epilogue_stmt;
  bool fused;               /* this statement runs as another statement's epilogue */
  int64_t tail;             /* the last "tail" iterations of M run as dot products (lower.c) */
  bool tail_call;           /* "tail=T:call": inside the BRGEMM calls (brg_desc.dot_rows),
                               not as a loop nest after them */
  BK_VEC(struct sched_pack_rec { int read; sched_pack kind; }) packs;
  bool out_transpose;       /* "pack=Y:transpose" on the target Y: the calls write a copy of Y
                               with M's dimension innermost, copied back after them (lower.c) */
  bk_loc loc;               /* the section in the schedule text, for messages */
  bk_loc tail_loc;          /* the "tail" item, for messages */
  bk_loc out_loc;           /* the "Y:transpose" pack, for messages */
  bk_loc role_loc[3];       /* the "m=", "n=", "k=" items, for messages */
  bk_loc flatten_loc;       /* the "flatten" item, for messages */
  bk_loc epilogue_loc;      /* the "epilogue" item, for messages */
} sched_stmt;

typedef struct sched_schedule {
  bk_arena *arena;
  BK_VEC(sched_stmt) stmts; /* at most one per statement; missing ones use the heuristic */
} sched_schedule;

sched_schedule *sched_schedule_new(void);
void sched_schedule_free(BK_TAKE sched_schedule *s);
/* The section of statement "stmt", or NULL. */
sched_stmt *sched_schedule_find(sched_schedule *s, int stmt);
/* Drop the locations of "ss" into the text it was parsed from ("loc", "tail_loc", "out_loc"),
 * for a section that outlives that text (diagnostics then carry no caret). */
void sched_stmt_forget_source(sched_stmt *ss);
sched_stmt *sched_schedule_add(sched_schedule *s, int stmt);

/* Parse "text" for kernel "k". Errors go to "diag" as "<schedule>:1:COL: error: ..." (the
 * text is kept by "src", which must outlive the schedule's locations). NULL on error. */
sched_schedule *sched_schedule_parse(const ir_kernel *k, const bk_source *src, bk_diag *diag);
/* As sched_schedule_parse, for kernel "k" of "prog": a text of parts "KERNEL: sections" (as
 * 'brick show --schedule' prints them, one a line) gives "k" the sections of its part (none:
 * an empty schedule, the default), and a part naming no kernel of "prog" is an error. */
sched_schedule *sched_schedule_parse_in(const ir_program *prog, const ir_kernel *k,
                                        const bk_source *src, bk_diag *diag);
/* Is "text" a schedule of parts "KERNEL: sections", one per kernel? (Else all of it is for one
 * kernel.) */
bool sched_text_names_kernels(const char *text);
/* Does such a text have a part for kernel "name"? */
bool sched_text_has_part(const char *text, const char *name);
/* The text form of "s" (malloc'ed): sections "sN{...}" separated by spaces. */
char *sched_schedule_to_str(const ir_kernel *k, const sched_schedule *s);
int sched_format_version(void);

/* ---- classify.c: contractions ------------------------------------------------------------ */

/* Iterator classes of a contraction C[..] += X[..] * Y[..]. */
typedef enum sched_class {
  SCHED_CLASS_X_SIDE,   /* in C and X only */
  SCHED_CLASS_Y_SIDE,   /* in C and Y only */
  SCHED_CLASS_REDUCE,   /* in X and Y only (K or batch) */
  SCHED_CLASS_BATCH,    /* in C, X and Y: independent GEMMs */
  SCHED_CLASS_OTHER,    /* anything else (only in C, or only in one operand) */
} sched_class;

typedef struct sched_contraction {
  int x, y;            /* read ids of the two factors */
  int64_t lin_c[64], lin_x[64], lin_y[64]; /* linear element stride of each iterator */
  sched_class cls[64];
} sched_contraction;

/* Is statement "s" a contraction (a '+=' of exactly two reads)? Fill "c" if so. */
bool sched_classify(const ir_stmt *s, sched_contraction *c);
/* Linear element offset coefficients of access "e" over the iterators of "s". */
void sched_linearize(const ir_stmt *s, const ir_expr *e, int64_t *lin, int64_t *c0);

/* ---- heuristic.c --------------------------------------------------------------------------- */

/* What the heuristic knows of the target: data cache sizes in bytes (L1 per core), and
 * whether its vectors have mask registers (AVX-512), so that masking lanes off costs no
 * vector registers ("pack=A:mask"). */
typedef struct sched_target {
  int64_t l1, l2, l3;
  bool mask_registers;
} sched_target;
/* 32 KiB, 1 MiB, 32 MiB, mask registers: the smallest caches of the x86 machines brick targets. */
sched_target sched_target_default(void);

/* The "tail" the default gives BRGEMM schedule "ss" of "s" as it stands (M, flatten, packs):
 * 1 or 2 (up to 4 in statements of at least 20 MFLOP) when M ends that far past a multiple
 * of the vector and B has a long unit-stride run of reductions for the dot products; else 0. */
int64_t sched_default_tail(const ir_stmt *s, const sched_stmt *ss);
/* The default schedule of statement "s" (of kernel "k") with "threads" threads (0 = any). */
void sched_default_stmt(const ir_kernel *k, const ir_stmt *s, int threads, sched_stmt *out,
                        bk_arena *arena);
/* As sched_default_stmt, for the caches of "t". */
void sched_default_stmt_for(const ir_kernel *k, const ir_stmt *s, int threads,
                            const sched_target *t, sched_stmt *out, bk_arena *arena);
/* A complete schedule: "given" (may be NULL) completed by defaults for missing statements. */
sched_schedule *sched_complete(const ir_kernel *k, const sched_schedule *given, int threads);
sched_schedule *sched_complete_for(const ir_kernel *k, const sched_schedule *given, int threads,
                                   const sched_target *t);

/* ---- lower.c: a kernel lowered into ops ------------------------------------------------- */

/* A buffer the lowered kernel touches: a parameter, or a workspace buffer (local or pack). */
typedef struct sched_buf {
  const char *name;
  int param;      /* parameter index, or -1 */
  int rank;
  int64_t dims[IR_MAX_RANK];
  int64_t nelems;
  int64_t ws_offset; /* bytes into the workspace (64-byte aligned), -1 for parameters */
} sched_buf;

/* An access of an op: a buffer and an affine index per dimension over the op's iterators. */
typedef struct sched_access {
  int buf;
  ir_affine *index; /* one per dimension of the buffer, or one (flat) */
  bool flat;        /* "index" is a single element offset into the whole buffer */
  bool may_oob;     /* some index can fall outside the buffer (the read yields 0) */
} sched_access;

typedef enum sched_op_kind { SCHED_OP_LOOPS, SCHED_OP_BRGEMM } sched_op_kind;

/* What a LOOPS op computes at each point. */
typedef enum sched_value {
  SCHED_VAL_EXPR,  /* the statement's right side */
  SCHED_VAL_COPY,  /* reads[0] (packing) */
  SCHED_VAL_CONST, /* "constant" (initialisation of a += / max= target) */
} sched_value;

typedef struct sched_op {
  int index;                 /* isl tuple name "O<index>" */
  sched_op_kind kind;
  const ir_stmt *stmt;       /* VAL_EXPR and BRGEMM: the statement */
  sched_value value;
  double constant;
  ir_assign assign;
  bool skip_oob_terms;       /* '+=' of a product: skip terms with an out-of-bounds factor */
  int niters;
  ir_iter *iters;            /* names and ranges */
  sched_access write;
  sched_access *reads;       /* by read id (VAL_EXPR, BRGEMM) or [0] (VAL_COPY) */
  int nreads;
  sched_stmt sched;          /* order, parallel; roles, tiles, batch for BRGEMM */
  int a_read, b_read;        /* BRGEMM: read ids of the vector (A) and broadcast (B) factors */
  unsigned epi;              /* BRGEMM: brg_epilogue flags of the fused statement (0: none) */
  sched_access bias;         /* BRGEMM with a bias epilogue: the bias, over the op's iterators */
  isl_set *domain;           /* { O<index>[iters] : ranges } */
  /* A tail loop nest (lower_tail) that runs inside the loops of BRGEMM op "fuse_into" (its
   * index; -1: none), after that op's call at each of their iterations, so that it reads B's
   * block while the calls have it in cache. Its iterator "merged" (-1: none) runs over
   * reductions merged into one loop, from 0; "merged_lo" and "merged_inner" are that
   * iterator's own first value and the span of the reductions merged inside it. */
  int fuse_into;
  int merged;
  /* A plain loop op that starts its target (a += or max= with no fill op before it): the first
   * point of each output's reductions (every reduction at its lower bound) sets the target to
   * its value (max=: that value or -inf, NaN counting as -inf), the others accumulate. */
  bool starts_target;
  int64_t merged_lo, merged_inner;
  /* BRGEMM with "pack=A:mask": A is read in place as an image of "pad_len" pixels in rows of
   * "pad_q" (brg_desc.pad_q); the tap of each call's batch element shifts it by "pad_row"
   * rows and "pad_col" columns (affine in the batch loops' iterators). pad_q 0: none. */
  int64_t pad_q, pad_len;
  ir_affine pad_row, pad_col;
  /* BRGEMM whose first batch loop (iterator "tap_iter", the filter row of a convolution)
   * indexes a zero-padded copy (pack=T:pad) together with loops outside the call only: each
   * call runs only the taps t with 0 <= tap[j](t, outer loops) < tap_ext[j] for every j <
   * "ntap" (the others read the copy's zero padding and add nothing), as one contiguous run
   * of its batch. ntap 0: every call runs the whole batch. */
  int tap_iter, ntap;
  ir_affine *tap;
  int64_t *tap_ext;
  /* BRGEMM whose last batch loop (iterator "col_iter", the filter column of a convolution)
   * indexes a dimension of the zero-padded copy of B together with the N iterator only, N
   * spanning its whole range in each call: a batch element of tap t adds only into the
   * columns n with 0 <= col(n, t) < col_ext (brg_desc.col_period; the others read the
   * copy's zero padding). "col" NULL: none. */
  int col_iter;
  ir_affine *col;
  int64_t col_ext;
} sched_op;

typedef struct sched_kernel {
  bk_arena *arena;
  const ir_kernel *k;
  BK_VEC(sched_buf) bufs;    /* parameters first (same order), then workspace buffers */
  BK_VEC(sched_op *) ops;    /* in execution order */
  int64_t ws_bytes;
} sched_kernel;

/* Lower kernel "k" with the complete schedule "s" (see sched_complete). Invalid schedules are
 * reported to "diag" at the sections' locations; NULL then. */
sched_kernel *sched_lower(const ir_kernel *k, const sched_schedule *s, isl_ctx *ctx,
                          bk_diag *diag);
void sched_kernel_free(BK_TAKE sched_kernel *sk);
/* Rank and dimension "d" of the buffer as access "a" sees it (flat: one dimension). */
int sched_access_rank(const sched_kernel *sk, const sched_access *a);
int64_t sched_access_dim(const sched_kernel *sk, const sched_access *a, int d);
/* The row pitch with which "flatten=p" would fuse p into the M iterator of "ss" (see
 * lower.c), or 0 when it cannot. */
int64_t sched_flatten_pitch(const ir_stmt *s, const sched_stmt *ss, int p);
/* The range of the M iterator of BRGEMM schedule "ss" as the lowering sees it: with flatten,
 * several rows; the BRGEMM calls cover all but the last "tail" of it. */
int64_t sched_call_m_extent(const ir_stmt *s, const sched_stmt *ss);
/* Can statement "e" run as the epilogue of the BRGEMM statement "c" scheduled by "ss"
 * (e is "T[..] = T[..] + b[x]", "b[x] + T[..]", "relu(...)" of those, or "relu(T[..])" on the
 * target of c, with x the M or N iterator, b unit-stride along it)? Returns the brg_epilogue
 * flags (bias along M = 1, along N = 2, ReLU = 4), 0 when it cannot; "*bias_read" gets the
 * read id of b in e (-1 without a bias). */
unsigned sched_epilogue_match(const ir_stmt *c, const sched_stmt *ss, const ir_stmt *e,
                              int *bias_read);
/* The index of the bias of epilogue "e" over the iterators of its BRGEMM statement "c". */
ir_affine *sched_epilogue_bias_index(const ir_stmt *c, const ir_stmt *e, int bias_read,
                                     bk_arena *arena);
/* Most M iterations "tail=T:call" runs inside the calls (brgemm.h: BRG_MAX_DOT_ROWS). */
#define SCHED_MAX_CALL_TAIL 4
/* The length of the run of each row of B (read "b_read" of "s") that one call of "ss" reads,
 * when its K and batch loops cover the run contiguously, each element once (the c, r, s of
 * NCHW weights; a row-major A's k), as a tail inside the calls needs; else 0. */
int64_t sched_call_b_run(const ir_stmt *s, const sched_stmt *ss, int b_read);
/* Can read "r" of "s", the factor M runs along, be read in place with the padding masked off
 * ("pack=r:mask") under "ss" (flattened rows, the image's rows and columns indexed by them
 * and by batch loops, a tail after the calls no longer than a row)? */
bool sched_mask_ok(const ir_stmt *s, const sched_stmt *ss, int r);
/* Linear strides of read "r" of "s" once the packs of "ss" are applied. */
void sched_packed_strides(const ir_stmt *s, const sched_stmt *ss, int r, int64_t *lin);
/* Linear strides of the iterators of "s" in the copy of its target that "pack=Y:transpose"
 * writes with M = "m" (the dimension M indexes moved innermost, as the lowering lays it out);
 * false when "s" cannot have that copy (M innermost already, or "s" does not start the target). */
bool sched_transposed_strides(const ir_stmt *s, int m, int64_t *lin);
/* Zero padding of read "r" of "s" in dimension "d", as a PAD pack makes it. */
void sched_pad_extent(const ir_stmt *s, int r, int d, int64_t *padlo, int64_t *padded);
/* Linear element offset of "a" (over the op's iterators) into "lin" and "c0". */
void sched_access_linearize(const sched_kernel *sk, const sched_op *op, const sched_access *a,
                            int64_t *lin, int64_t *c0);

/* ---- tree.c: isl schedule trees --------------------------------------------------------- */

/* The mark names codegen looks for. A "brgemm" mark sits above the loops the BRGEMM call
 * covers (its id's user pointer is the sched_op); a "parallel" mark sits above the parallel
 * loop (only when "threads" != 1). */
#define SCHED_MARK_BRGEMM "brgemm"
#define SCHED_MARK_PARALLEL "parallel"
/* Above the point loops of a 16 x 16 block of a 2-D transposing copy (scheduler/tree.c);
 * codegen moves a full block with vector loads, shuffles and stores. */
#define SCHED_MARK_TRANSPOSE "transpose"
#define SCHED_TRANSPOSE_TILE 16
/* Above the innermost loop, tiled by sched_subsample_width, of a copy that reads every other
 * element (a stride-2 subsample); codegen moves a full tile with two vector loads and one
 * shuffle. */
#define SCHED_MARK_SUBSAMPLE "subsample"
static inline int sched_subsample_width(int64_t extent) { return extent >= 16 ? 16 : 8; }

/* Above the point loops of a block of rows of a tail loop nest (lower_tail) whose reductions
 * are one loop (merged or not) contiguous in both factors: codegen computes a full block's
 * dot products with one vector accumulator per row and point, summed across lanes once
 * (codegen/dot.c). */
#define SCHED_MARK_DOT "dot"
/* The shape of such a block: "rows" values of loop "row" (indexes the broadcast factor B and
 * the output, not A) by all of M (loop "m", at position "pm" of the op's order, every loop
 * after it a reduction) by the one reduction "red" of more than one value; reads "a"
 * (indexed by M) and "b". */
typedef struct sched_dot {
  int row, m, red, pm, a, b;
  int64_t rows;
} sched_dot;
/* Whether "op" is a tail loop nest that runs in dot-product blocks; fills "d". */
bool sched_dot_tile(const sched_kernel *sk, const sched_op *op, sched_dot *d);

/* The schedule tree of "sk": a sequence of the ops, each a permuted, tiled band. */
BK_GIVE isl_schedule *sched_build_tree(const sched_kernel *sk, isl_ctx *ctx, int threads);
/* The loop schedule of "op": { O[i] -> [loop values in order] } (tile loops are tile indices). */
BK_GIVE isl_map *sched_op_loop_map(const sched_op *op, isl_ctx *ctx);

/* ---- legality.c --------------------------------------------------------------------------- */

/* Check "sk" against its dependences: every cross-op flow, anti and output dependence goes
 * forward in the op sequence, and no parallel loop carries a dependence (reduction
 * self-dependences included: they may be reordered, not run concurrently). Reports to "diag". */
bool sched_check_legality(const sched_kernel *sk, isl_ctx *ctx, bk_diag *diag);

/* ---- space.c: the schedule space ----------------------------------------------------------- */

/* Random numbers for sampling (splitmix64): the next value of "state", and one in [0, n). */
uint64_t sched_rng_next(uint64_t *state);
int64_t sched_rng_below(uint64_t *state, int64_t n);

/* A legal BRGEMM mapping of a contraction: the M iterator, which factor is A (holds M) and B,
 * the packing of each, and the strides (in elements) every iterator has after packing. */
typedef struct sched_mapping {
  int m;
  int a_read, b_read;
  sched_pack pack[2];       /* of A, of B (equal when both read one tensor) */
  bool out_transpose;       /* C is a copy of the target with M's dimension innermost
                               ("pack=Y:transpose"); lin_c are its strides */
  sched_class b_side;       /* the class of N candidates: in C and B only */
  int64_t lin_a[64], lin_b[64], lin_c[64];
  sched_class cls[64];
} sched_mapping;

/* The legal mappings of statement "s" (none if it is not a contraction), at most "max". */
int sched_space_mappings(const ir_kernel *k, const ir_stmt *s, sched_mapping *out, int max);
/* Can "n" (-1: none) be the N iterator of "mp" with tiles "m_tile" and "n_tile" (0: whole)? */
bool sched_mapping_n_ok(const sched_mapping *mp, const ir_stmt *s, int n, int64_t m_tile,
                        int64_t n_tile);
/* Can "k" (-1: none) be the K iterator of "mp" with tiles "m_tile" and "k_tile" (0: whole)? */
bool sched_mapping_k_ok(const sched_mapping *mp, const ir_stmt *s, int k, int64_t m_tile,
                        int64_t k_tile);
/* Pack read "r" (and every other read of its tensor) of "s" with "kind", in canonical order. */
void sched_stmt_add_pack(sched_stmt *ss, const ir_stmt *s, int r, sched_pack kind,
                         bk_arena *arena);
/* The packing of read "r" in "ss" (at most one per read), or NULL. */
struct sched_pack_rec *sched_stmt_pack(const sched_stmt *ss, int r);

/* A random legal schedule of statement "s" of "k" into "out" (packs in "arena"): a random
 * mapping, tiles (non-divisors included), batch, loop order and parallel loop; or a plain loop
 * nest in random order. Every sample lowers and passes the legality check. */
void sched_space_sample(const ir_kernel *k, const ir_stmt *s, uint64_t *rng, sched_stmt *out,
                        bk_arena *arena);
/* A random legal schedule of every statement of "k". */
sched_schedule *sched_space_random(const ir_kernel *k, uint64_t *rng);

/* Called for each schedule of an enumeration ("ss" is only valid during the call: copy it);
 * return false to stop. */
typedef bool sched_space_visit_fn(void *user, const sched_stmt *ss);
/* Visit the pruned space of statement "s": every minimal mapping (packs only where needed),
 * N and K choice, tile from {whole, 16, 32, 64, 128, 256} below the range, batch subset and K
 * tile placement, loops in the canonical order with the outermost useful parallel loop (none
 * when "threads" is 1); then the plain loop nest. Returns the number of schedules visited. */
int64_t sched_space_enumerate(const ir_kernel *k, const ir_stmt *s, int threads,
                              sched_space_visit_fn *visit, void *user);

/* Do "a" and "b" describe the same schedule (locations aside)? */
bool sched_stmt_is_equal(const sched_stmt *a, const sched_stmt *b);

#endif
