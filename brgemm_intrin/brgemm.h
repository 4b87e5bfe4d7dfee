/* brgemm_intrin: the batch-reduce GEMM (BRGEMM) contract and its generator.
 *
 * One specialization, described by a brg_desc, computes for an M x N tile of C
 * (column-major, vectorized along M):
 *
 *   C[m + n*ldc] = beta*C[m + n*ldc]
 *                + sum_{b<batch} sum_{k<K} A_b[m + k*lda] * B_b[k*ldb_k + n*ldb_n]
 *   then C = epilogue(C)     (bias along m or n, then ReLU; see brg_epilogue)
 *
 * brg_emit() writes the body as LLVM IR (vector types, accumulators in
 * registers across the whole batch and K loop, masked M tails, broadcast B)
 * into a caller's module as a private `noinline` function with a stable
 * mangled name; equal descriptors reuse one function.  brg_jit_* compiles
 * specializations standalone through ORC LLJIT, for tests and benchmarks.
 *
 * Every generated function has the same C signature, whatever its batch mode:
 *
 *   void f(const void *a, const void *b, float *c, int64_t batch,
 *          const float *bias, const int64_t *offs_a, const int64_t *offs_b,
 *          int64_t pad_m, const int32_t *pad_shift);
 *
 *   BRG_BATCH_STRIDE:  a, b are `const float *`; A_b = a + b*stride_a,
 *                      B_b = b + b*stride_b; offs_a, offs_b are ignored (NULL).
 *   BRG_BATCH_OFFSETS: a, b are `const float *`; A_b = a + offs_a[b],
 *                      B_b = b + offs_b[b] (element offsets, int64).
 *   BRG_BATCH_ADDR:    a, b are `const float *const *` (arrays of batch
 *                      pointers); A_b = a[b], B_b = b[b]; offs ignored.
 *   batch:  run-time count >= 0 (0 gives beta*C then the epilogue).
 *   bias:   M floats (BRG_EPI_BIAS_M) or N floats (BRG_EPI_BIAS_N), else ignored.
 *   pad_m, pad_shift: implicit zero padding of A (brg_desc.pad_q > 0), else ignored:
 *           row m of the tile is pixel pad_m + m of the image, and batch element b is
 *           shifted by pad_shift[2b] rows and pad_shift[2b+1] columns (see pad_q).
 *
 * The function reads the pointer arrays / offset tables only at indices
 * [0, batch); no alignment beyond that of float is assumed; c must not
 * overlap a, b, bias or the tables (the arguments are `noalias`).  With
 * beta == 0, C is write-only (never read, so NaN/garbage in it is fine).
 */
#ifndef BRICK_BRGEMM_H
#define BRICK_BRGEMM_H

#include <stddef.h>
#include <stdint.h>

#include <llvm-c/Core.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How the batch's blocks A_b, B_b are found (see the file comment). */
typedef enum brg_batch_mode {
  BRG_BATCH_STRIDE = 0,  /* base + b*stride (elements) */
  BRG_BATCH_OFFSETS = 1, /* base + offs[b] (run-time int64 element-offset tables) */
  BRG_BATCH_ADDR = 2,    /* arrays of batch pointers */
} brg_batch_mode;

/* Software prefetch (brg_desc.prefetch), flags:
 *   BRG_PREFETCH_BATCH: A_b+1 and B_b+1 while computing A_b, B_b (for batches streaming from
 *     memory; bench/brgemm measured 3-5% slower with it when the blocks are in L1/L2).
 *   BRG_PREFETCH_ROWS: at each K step of a register block, B's elements of that step in the
 *     next register block's columns (n0 + n .. n0 + 2n - 1; past N they are the next rows
 *     of B's buffer, or nothing: a prefetch never faults). For B rows far apart that stream
 *     from memory, one short stream per column (NCHW weights broadcast in a convolution):
 *     the 3x3 C512 7x7 layer's calls with the weights out of the caches ran at 176 GFLOP/s
 *     without it, 214-230 with it, and unchanged (239-245) with them in L3. */
typedef enum brg_prefetch {
  BRG_PREFETCH_NONE = 0,
  BRG_PREFETCH_BATCH = 1,
  BRG_PREFETCH_ROWS = 2,
} brg_prefetch;

/* Epilogue flags, applied after the reduction, in this order: bias, then ReLU.
 * At most one of BRG_EPI_BIAS_M / BRG_EPI_BIAS_N.  ReLU is x > 0 ? x : 0
 * (so NaN becomes 0). */
typedef enum brg_epilogue {
  BRG_EPI_NONE = 0,
  BRG_EPI_BIAS_M = 1,   /* C[m + n*ldc] += bias[m] */
  BRG_EPI_BIAS_N = 2,   /* C[m + n*ldc] += bias[n] */
  BRG_EPI_RELU = 4,     /* C = max(C, 0) */
  BRG_EPI_BIAS_M_RELU = BRG_EPI_BIAS_M | BRG_EPI_RELU,
  BRG_EPI_BIAS_N_RELU = BRG_EPI_BIAS_N | BRG_EPI_RELU,
} brg_epilogue;

/* Instruction set of a body.  AVX512 and AVX2 bodies carry target-features
 * attributes, so they are what they say whatever the module's target;
 * GENERIC uses plain vectors of brg_desc.vlen floats and the module's target. */
typedef enum brg_isa {
  BRG_ISA_GENERIC = 0,
  BRG_ISA_AVX2 = 1,
  BRG_ISA_AVX512 = 2,
} brg_isa;

/* Most filter columns brg_desc.col_period may name (a 7x7 filter). */
#define BRG_MAX_COL_PERIOD 8

/* A specialization.  All sizes and strides are in elements (floats); every
 * field is a compile-time constant of the body except the batch count.
 * Initialise with brg_desc_init() and set what differs. */
typedef struct brg_desc {
  int M, N, K;            /* tile sizes, each >= 1 */
  int64_t lda;            /* A_b[m + k*lda];     >= M when K > 1 */
  int64_t ldb_k, ldb_n;   /* B_b[k*ldb_k + n*ldb_n]; >= 0 (>= 1 when K, N > 1) */
  int64_t ldc;            /* C[m + n*ldc];       >= M when N > 1 */
  brg_batch_mode mode;    /* how A_b, B_b are found */
  int64_t stride_a;       /* BRG_BATCH_STRIDE only: elements between A_b and A_b+1 */
  int64_t stride_b;       /* BRG_BATCH_STRIDE only: elements between B_b and B_b+1 */
  int beta;               /* 0 (C is overwritten, never read) or 1 (C accumulates) */
  unsigned epilogue;      /* brg_epilogue flags */
  brg_isa isa;            /* instruction set of the body */
  int vlen;               /* BRG_ISA_GENERIC only: floats per vector (2..64, power of 2);
                             0 = 4.  Ignored (and not in the name) for AVX2/AVX512. */
  int64_t batch_hint;     /* expected batch count, 0 = unknown.  Advisory only: the
                             body is correct for any run-time batch. */
  int prefetch;           /* brg_prefetch flags; 0 (the default): none */
  int dot_rows;           /* 0 (the default), or 1..BRG_MAX_DOT_ROWS and < M: the last
                             dot_rows rows of the tile (m >= M - dot_rows) are dot
                             products along B's rows instead of lanes of a masked
                             vector, which would cost a whole vector of FMAs per K
                             step (a 7x7 image: 49 = 3 x 16 + 1 pixels).  The caller
                             promises that each row of B, over the batch, is one
                             contiguous run from b: the elements at
                             offs_b[b] (stride mode: b*stride_b) + k*ldb_k, for
                             b < batch and k < K, are exactly 0 .. batch*K-1, each
                             once, in any order (NCHW weights over c, r, s; the k of
                             a row-major A).  Not in BRG_BATCH_ADDR mode.  The body
                             first copies those rows of A, in B's order, into
                             dot_rows*batch*K floats of stack (unprobed: keep it
                             small; brick's codegen allows 16384); then, after each
                             register block, it multiplies them with the block's
                             columns of B, which the block has just brought to L1. */
  int pad_q;              /* 0 (the default): A is read as it is.  > 0: implicit zero
                             padding, for a convolution whose M runs over the pixels of
                             an image flattened row by row (pixel p*pad_q + q), read in
                             place without a padded copy.  Row m of the tile is pixel
                             pad_m + m (run-time argument); batch element b reads A_b,
                             which points at the tap's shifted image, and a lane whose
                             shifted pixel (row p + pad_shift[2b], column q +
                             pad_shift[2b+1]) lies outside the image of pad_len pixels
                             in rows of pad_q reads 0 instead (a masked load: such lanes
                             are never accessed, so A_b may point before or past the
                             buffer). */
  int64_t pad_len;        /* pixels of the image (rows x pad_q), < 2^31, with pad_q > 0;
                             the caller keeps pad_m + M < 2^31 too (pixels are 32-bit) */
  int col_period;         /* 0 (the default): every batch element adds into every column.
                             1..BRG_MAX_COL_PERIOD: skipped column taps.  Batch element b
                             adds its terms only into the columns n with col_lo[b % P] <=
                             n < col_hi[b % P] (P = col_period); the others are skipped,
                             their FMAs and broadcasts not even emitted.  For a convolution
                             whose N runs over a whole output row and whose batch ends with
                             the filter column (P taps): the columns whose tap reads the
                             zero padding of B's copy.  The caller keeps the run-time batch
                             a multiple of P.  Not with pad_q nor dot_rows. */
  int col_lo[BRG_MAX_COL_PERIOD], col_hi[BRG_MAX_COL_PERIOD]; /* 0 <= lo <= hi <= N */
} brg_desc;

/* Most rows of a tile that brg_desc.dot_rows may compute as dot products. */
#define BRG_MAX_DOT_ROWS 4

/* Register-blocking parameters of an ISA, the only machine facts the
 * generator chooses its blocking from (never the machine's speed). */
typedef struct brg_isa_info {
  int vlen;       /* floats per vector register */
  int nregs;      /* architectural vector registers */
  int has_opmask; /* 1: tail masks live in mask registers (AVX-512 k0-k7);
                     0: a tail mask takes a vector register (AVX2 vmaskmovps) */
} brg_isa_info;

/* The type of every generated function (see the file comment). */
typedef void (*brg_fn)(const void *a, const void *b, float *c, int64_t batch,
                       const float *bias, const int64_t *offs_a, const int64_t *offs_b,
                       int64_t pad_m, const int32_t *pad_shift);

/* Set "d" to M x N x K with tight leading dimensions (lda = ldc = M, ldb_k = 1,
 * ldb_n = K), stride mode with tight strides, beta 1, no epilogue, "isa". */
void brg_desc_init(brg_desc *d, int M, int N, int K, brg_isa isa);

/* Return NULL if "d" is valid, else a static string saying what is wrong. */
const char *brg_desc_validate(const brg_desc *d);

/* Write the mangled function name of "d" (e.g.
 * "brg_f32_m64n56k64_la64_lbk1_lbn64_lc64_str4096_3584_b1_none_avx512")
 * into "buf" of "n" bytes.  Return the length it needs (excluding the NUL),
 * as snprintf does, or -1 if "d" is invalid. */
int brg_desc_name(const brg_desc *d, char *buf, size_t n);

/* The best ISA of the host CPU (AVX512 needs avx512f/vl/bw/dq, AVX2 needs avx2+fma). */
brg_isa brg_isa_host(void);

/* Register-blocking parameters of "isa" ("vlen" matters for GENERIC only, 0 = 4). */
brg_isa_info brg_isa_get_info(brg_isa isa, int vlen);

/* The function type shared by all specializations, in "ctx". */
LLVMTypeRef brg_fn_type(LLVMContextRef ctx);

/* Emit the body of "d" into "mod" (private linkage, noinline, noalias pointer
 * arguments, vector-width and target-feature attributes), or return the
 * function already there under the same name.  Returns NULL if "d" is invalid
 * (see brg_desc_validate).  The IR is clean; a light pipeline such as
 * "function(instcombine,simplifycfg)" or nothing at all suffices. */
LLVMValueRef brg_emit(LLVMModuleRef mod, const brg_desc *d);

/* ---- standalone JIT (ORC LLJIT on the host), for tests and benchmarks ---- */

/* Initialise LLVM's targets (all of them, the host's first) once per process; thread-safe.
 * brg_jit_new calls it; so does every other user of LLVM's target registry in brick. */
void brg_llvm_init(void);

typedef struct brg_jit brg_jit;

/* A JIT session for the host, or NULL on failure.  Create sessions from one
 * thread (LLVM's target set-up is not thread-safe); a session may then be
 * used by one thread at a time, and sessions in different threads compile in
 * parallel. */
brg_jit *brg_jit_new(void);

/* Compile "d" (once; later calls return the cached address) and return its
 * entry point, or NULL on failure (brg_jit_error says why). */
brg_fn brg_jit_get(brg_jit *jit, const brg_desc *d);

/* Compile the "n" descriptors "d" in one module in one go and store their
 * entry points in "out".  Returns 0, or -1 on failure (brg_jit_error). */
int brg_jit_get_many(brg_jit *jit, const brg_desc *d, size_t n, brg_fn *out);

/* The message of the last failure of "jit" ("" if none). */
const char *brg_jit_error(const brg_jit *jit);

/* Write the host assembly of "d" (as the JIT would compile it) to "path";
 * returns 0 or -1.  For inspecting spills and blocking. */
int brg_jit_dump_asm(brg_jit *jit, const brg_desc *d, const char *path);

void brg_jit_free(brg_jit *jit);

#ifdef __cplusplus
}
#endif
#endif
