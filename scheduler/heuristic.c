/*
 * The default schedule: a valid, reasonably fast BRGEMM schedule for any kernel, no tuning.
 *
 * For a contraction C += X * Y, among the legal mappings of the schedule space (space.c): M is
 * an iterator of unit stride in C that only one factor has (that factor becomes the BRGEMM's A;
 * unit stride in it too, else it is copied im2col- or im2row-style, the smaller), the longest
 * one that needs no such copy; the factors are padded only when they can be read out of
 * bounds. N is the largest iterator of C that only the other factor has; K is the largest
 * reduction iterator whose stride in A is at least the M tile; every other reduction iterator
 * forms the batch. Tiles are GotoBLAS blocks for the target's caches (block_for_cache). Loops
 * outside the call: the iterators common to all three (independent GEMMs), then the output's
 * iterators in its dimension order, then the M, N and K tile loops. The parallel loop is the
 * outermost loop with work for several threads outside the reduction loops. Narrow images
 * fuse their rows into M (flatten), with a copy that puts the rows at the image's own width
 * where that saves vectors (try_rows_copies), and the last 1-2 iterations of M past a
 * multiple of the vector run as dot products (sched_default_tail), inside the calls for one
 * pixel (tail_in_calls). When that M needs a copy of A far bigger than the statement's output
 * (PyTorch's W[k, c] of a fully connected layer), M may instead be an iterator that only
 * a transposed copy of the output has at unit stride (choose_transposed). Statements that are not
 * contractions, and contractions whose only mapping transposes A for few products per
 * element (dot_products_better), become plain loop nests.
 */
#include "scheduler.h"

#include <stdint.h>
#include <string.h>

#define M_TILE 64
#define N_TILE 64
#define K_WHOLE_MAX 512
#define K_TILE 256
#define MASK_KT 32             /* least K per batch element with pack=A:mask (block_for_cache) */
#define PARALLEL_MIN_FLOPS 4e6 /* ~15 us on one core: below, waking a second thread costs more than it gives */
#define PARALLEL_MIN_COPY 65536 /* elements of a copy from which it runs in parallel (~30 us) */
#define GEMM_KT 128
#define PITCH_PAD_MIN_N 1024 /* N range from which A is copied to break 1 KiB row aliasing */
#define K_WHOLE_SMALL 32 /* K ranges up to this stay whole in the call */
#define LONG_BATCH 32    /* ... and up to K_WHOLE_MAX under a batch this long */
#define M_CHUNK 64       /* rows of the microkernel's largest M chunk (4 zmm) */
#define PARALLEL_MIN_TILES 4
#define PARALLEL_MAX_EXCESS 0.03 /* 2-3 M tiles whose 2-thread split is this uneven get split */
#define PARALLEL_EVEN_TILES 16 /* from this many parallel tiles on, an odd count costs < 7% */
#define WINDOW_UNROLL 64       /* reductions of at most this many points in all stay innermost */
#define VEC 16                 /* floats per vector (AVX-512; AVX2's 8 divides it) */
#define TAIL_MAX 2             /* M remainders run as dot products up to this many (sched_default_tail) */
#define TAIL_MAX_BIG 4         /* ... in statements of at least: */
#define TAIL_BIG_MIN_FLOPS 2e7  /* (on 2 threads, a small kernel pays the tail's 3 ops' barriers) */
#define TAIL_MIN_DOT 64        /* ... when B's unit-stride reduction is at least this long */
#define STREAM_ROWS 8          /* rows of B per call when they stream (stream_rows) */
#define TRANSPOSE_MIN_GAIN 8   /* copies a transposed target must save (choose_transposed) */
#define CHANNELS_MAX_PIXELS 64 /* images below this many pixels may take M = channels ... */
#define CHANNELS_MIN 64        /* ... of at least this many (choose_channels), */
#define CHANNELS_M_TILE 48     /* in M tiles of this many on 1 thread (channels_m_tile) */
#define CHANNELS_COPY_POINTS 384 /* ... or copied so, for this many outputs per weight */
#define LONG_M_MIN 32          /* choose_long_m: M of at least this many, */
#define LONG_M_COPY_FLOPS 64   /* ... and this many FLOPs per element copied */
#define TAIL_CALL_MAX 1        /* tails inside the calls (tail_in_calls) up to this many */
#define TAIL_CALL_MAX_RUN 512  /* ... over runs of each row of B up to this long */
#define DOT_MAX_REUSE 8        /* outputs per element of A up to which a copied A does not pay */
#define DOT_MAX_REUSE_BIG 32   /* ... when the copy would not fit in half the L3 */
#define IM2COL_ROWS_MIN_N 128  /* output channels from which an im2col copy of a small image pays */

static int64_t extent(const ir_stmt *s, int it) { return s->iters[it].hi - s->iters[it].lo; }

static int64_t tile_for(int64_t ext, int64_t max_whole, int64_t tile) {
  return ext <= max_whole ? 0 : tile;
}

/* The mapping (M and packs) of the contraction: among the cheapest mapping of each M iterator
 * and packing of A (the space lists them cheapest first), one that needs no im2col / im2row
 * copy, then the longest M, then the smallest copy. */
static const sched_mapping *choose_mapping(const ir_stmt *s, const sched_mapping *maps, int n) {
  const sched_mapping *best = NULL;
  int64_t best_tier = -1, best_e = 0, best_copy = 0;
  for (int i = 0; i < n; i++) {
    if (maps[i].out_transpose)
      continue;
    bool seen = false;
    for (int j = 0; j < i; j++)
      seen |= maps[j].m == maps[i].m && maps[j].pack[0] == maps[i].pack[0];
    if (seen)
      continue;
    bool copy = maps[i].pack[0] == SCHED_PACK_IM2COL || maps[i].pack[0] == SCHED_PACK_IM2ROW;
    int64_t tier = copy ? 1 : 2, e = extent(s, maps[i].m);
    int64_t elems = copy ? sched_pack_elems(s, maps[i].a_read, maps[i].m, maps[i].pack[0]) : 0;
    if (tier > best_tier || (tier == best_tier && e > best_e) ||
        (tier == best_tier && e == best_e && copy && elems < best_copy)) {
      best = &maps[i];
      best_tier = tier;
      best_e = e;
      best_copy = elems;
    }
  }
  return best;
}

/* Elements that mapping "mp" copies on every call: A's im2col / im2row copy, the target's
 * transposed copy. */
static int64_t copied_elems(const ir_stmt *s, const sched_mapping *mp) {
  bool copy = mp->pack[0] == SCHED_PACK_IM2COL || mp->pack[0] == SCHED_PACK_IM2ROW;
  return (copy ? sched_pack_elems(s, mp->a_read, mp->m, mp->pack[0]) : 0) +
         (mp->out_transpose ? s->lhs->tensor->nelems : 0);
}

/* A mapping that writes a transposed copy of the target instead of "best", when "best" copies
 * A and the transposed one copies at most 1/TRANSPOSE_MIN_GAIN as much (or when there is no
 * other), with M of at least half a vector. That is the fully connected layer with PyTorch's W[k, c], Y[n, k] += X[n, c] *
 * W[k, c]: M = k transposes all of W on every call (16 M elements at 4096 x 4096), M = n copies
 * X and Y (64 K each at 16 images). 1 thread, 4096 x 4096: 16 images 10.4 ms (dot products) ->
 * 3.5 ms, 64 images 26.9 ms (W's copy) -> 9-11 ms; OpenBLAS (sgemm with B transposed) 6.4 and
 * 12.7 ms. */
static const sched_mapping *choose_transposed(const ir_stmt *s, const sched_mapping *maps, int n,
                                              const sched_mapping *best) {
  if (best && best->out_transpose)
    return best;
  int64_t limit = best ? copied_elems(s, best) / TRANSPOSE_MIN_GAIN : INT64_MAX, least = -1;
  const sched_mapping *pick = best;
  for (int i = 0; i < n; i++) {
    int64_t e = copied_elems(s, &maps[i]);
    if (maps[i].out_transpose && extent(s, maps[i].m) >= VEC / 2 && e <= limit && (least < 0 || e < least)) {
      pick = &maps[i];
      least = e;
    }
  }
  return pick;
}

static int choose_role(const ir_stmt *s, const sched_mapping *mp, bool is_k, int64_t m_tile);

/* The pixels of the image whose rows the M iterator of "mp" runs along, as flatten=p would
 * see them: when M indexes the target's last dimension, its extent times that of the iterator
 * of the dimension before if that one indexes A's factor too (a convolution's output row p;
 * not the channels of a 1-D convolution's O[n, k, q]), else M's extent alone. */
static int64_t image_pixels(const ir_stmt *s, const sched_mapping *mp) {
  const ir_expr *lhs = s->lhs;
  int rank = lhs->nargs;
  if (rank < 2 || !lhs->index[rank - 1].coef[mp->m])
    return extent(s, mp->m);
  for (int i = 0; i < s->niters; i++)
    if (i != mp->m && lhs->index[rank - 2].coef[i] == 1 && mp->lin_a[i])
      return extent(s, i) * extent(s, mp->m);
  return extent(s, mp->m);
}

/* M over a long output iterator through copies, when the one that needs none is shorter than
 * two vectors even with its row flattened: a weight update dW[k, c, r, s] += dO[n, k, p, q] *
 * I[n, c, p + r - 1, q + s - 1] would take M = s (3 of 16 lanes, 9 with r flattened). M = k
 * copies dO with k innermost and writes a transposed copy of dW, which pays where every copied
 * element feeds LONG_M_COPY_FLOPS FLOPs or more (a 3x3 weight update: 2 x 9 x C per element of
 * dO, 2 x N x H x W per element of dW); the copy that moves least wins, ties to the longer M.
 * 3x3 C256 K256 on 14x14, 1 thread: 42 -> 248 GFLOP/s (docs/design-notes.md, "Weight update"). */
static const sched_mapping *choose_long_m(const ir_stmt *s, const sched_mapping *maps, int n,
                                          const sched_mapping *best) {
  if (!best || image_pixels(s, best) >= 2 * VEC)
    return best;
  const sched_mapping *pick = best;
  int64_t least = -1;
  for (int i = 0; i < n; i++) {
    int64_t c = copied_elems(s, &maps[i]), e = extent(s, maps[i].m);
    if (e < LONG_M_MIN || (double)c * LONG_M_COPY_FLOPS > s->flops)
      continue;
    if (least < 0 || c < least || (c == least && e > extent(s, pick->m))) {
      pick = &maps[i];
      least = c;
    }
  }
  return pick;
}

/* M over the output channels instead of a small padded image's pixels, when the weights have
 * them at unit stride (a [C][R][S][K] layout: weights packed once, outside the call) and the
 * image has fewer pixels than CHANNELS_MAX_PIXELS: a 7x7 image is 3 vectors and a tail, which
 * fill the register blocks badly, while 7 pixels of a row broadcast against whole vectors of
 * channels, and the calls of the border rows skip the filter rows that read the padding
 * (sched_op.tap). The target is then a transposed copy (small next to the weights). 1 thread,
 * 3x3 C512 K512 on 7x7: 200 -> 260 GFLOP/s (the NCHW weights' default: 242). Not without
 * padding: a 1x1 C512 K2048 on 7x7 went 242 -> 204. */
static const sched_mapping *choose_channels(const ir_stmt *s, const sched_mapping *maps, int n,
                                            const sched_mapping *best) {
  if (!best || best->out_transpose || best->pack[0] != SCHED_PACK_PAD ||
      image_pixels(s, best) >= CHANNELS_MAX_PIXELS)
    return best;
  for (int i = 0; i < n; i++) {
    const sched_mapping *mp = &maps[i];
    /* NCHW weights too when each weight serves CHANNELS_COPY_POINTS outputs or more (8
     * images of 7x7), which pays for their transposed copy inside the call: 3x3 C512 K512 on
     * 7x7, 1 thread, 8 images 238 -> 248 GFLOP/s, 16 images 249 -> 269; 4 images lost 9% */
    int64_t points = 1;
    for (int j = 0; j < s->niters; j++)
      points *= j != mp->m && !s->iters[j].reduction ? extent(s, j) : 1;
    bool copy_pays = mp->pack[0] == SCHED_PACK_IM2COL && points >= CHANNELS_COPY_POINTS;
    if (!mp->out_transpose || (mp->pack[0] != SCHED_PACK_NONE && !copy_pays) ||
        extent(s, mp->m) % VEC || extent(s, mp->m) < CHANNELS_MIN)
      continue;
    /* only where the taps are a batch after a K of whole vectors of input channels (found by
     * a review: 3 input channels made the filter column K, the input channels the first
     * batch loop, and nothing was skipped) */
    int kk = choose_role(s, mp, true, CHANNELS_M_TILE);
    bool taps = false;
    for (int j = 0; j < s->niters; j++)
      taps |= j != kk && s->iters[j].reduction && extent(s, j) > 1 && mp->lin_b[j] != 0;
    if (kk >= 0 && extent(s, kk) >= VEC && taps)
      return mp;
  }
  return best;
}

/* The M tile of M over "e" output channels (choose_channels) against one output row of N.
 * On 1 thread 3 vectors: one register block by the row holds all of M of a call (7 pixels:
 * 21 accumulators), and the other tiles follow from that single chunk (3x3 C512 on 7x7: 128
 * or 256, which left blocks of 2 vectors, 258 -> 271-275 GFLOP/s). On more threads (or a
 * team chosen at run time) the smallest tile of blocks of 3 vectors (and at most a block of
 * 2; a block of 4 by 4 columns ran at 2/3 of the rate) whose loop splits into an even count
 * of near-equal tiles: on 2 threads, 11 tiles of 48 ran at 438, 4 of 128 at 490. */
static int64_t channels_m_tile(int64_t e, int threads) {
  if (threads == 1)
    return CHANNELS_M_TILE;
  for (int64_t t = CHANNELS_M_TILE; t <= 4 * CHANNELS_M_TILE; t += VEC) {
    int64_t got = (e + t - 1) / t, last = e - (got - 1) * t;
    if ((t / VEC) % 3 != 1 && got % 2 == 0 && 4 * last >= 3 * t)
      return t;
  }
  return CHANNELS_M_TILE;
}

/* A call of one vector along M (16 images of a fully connected layer, with the target
 * transposed) reads, in each register block, up to 28 rows of B that stream from memory, one
 * element per FMA: with 8 rows per call and all of K (A's block, M x K, in half of L2) the
 * rows stream without restarts. 1 thread, W 4096 x 4096, 8 and 16 images: N 64 by K 1024
 * 5.5-5.9 ms, N 8 3.3 ms; from 2 vectors on the blocks' 6-13 rows stream well enough (32
 * images: N 8 5.6 ms, N 16 by K 1024 5.0 ms). */
static void stream_rows(const ir_stmt *s, sched_stmt *ss, const sched_mapping *mp, const sched_target *t) {
  int m = ss->role[SCHED_M], n = ss->role[SCHED_N], k = ss->role[SCHED_K];
  if (!mp->out_transpose || n < 0 || extent(s, m) > VEC || extent(s, n) <= STREAM_ROWS)
    return;
  ss->tile[SCHED_N] = STREAM_ROWS;
  if (k >= 0 && 4 * VEC * extent(s, k) <= t->l2 / 2)
    ss->tile[SCHED_K] = 0;
}

/* The N (is_k false) or K iterator: the longest that "mp" allows with these tiles, or -1. */
static int choose_role(const ir_stmt *s, const sched_mapping *mp, bool is_k, int64_t m_tile) {
  int best = -1;
  int64_t best_score = -1;
  for (int i = 0; i < s->niters; i++) {
    int64_t t = is_k ? tile_for(extent(s, i), K_WHOLE_MAX, K_TILE) : tile_for(extent(s, i), N_TILE, N_TILE);
    bool ok = is_k ? sched_mapping_k_ok(mp, s, i, m_tile, t) : sched_mapping_n_ok(mp, s, i, m_tile, t);
    /* K: a reduction contiguous in B (the channels of a blocked layout, c in I[..][c]) comes
     * first when it is long enough to fill a K loop; else, and for N, the longest, ties to
     * the smaller stride (in B for K, in C for N). */
    int64_t e = extent(s, i), stride = is_k ? mp->lin_b[i] : mp->lin_c[i];
    int64_t score = (is_k && stride == 1 && e >= 8 ? 1LL << 40 : 0) + e * 4096 +
                    (stride < 4095 ? 4095 - stride : 0);
    if (ok && score > best_score) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

/* N of M over the output channels (choose_channels): the image column, the output iterator of
 * least stride in the input's copy, whatever the longest is. A row of 7 pixels broadcast from
 * one line against vectors of channels, not 8 images 25 KB apart (3x3 C512 on 7x7, 8 images, 1
 * thread: N over the images 215 GFLOP/s, over the row 255). */
static int channels_role_n(const ir_stmt *s, const sched_mapping *mp, int64_t m_tile) {
  int best = -1;
  for (int i = 0; i < s->niters; i++) {
    if (s->iters[i].reduction || i == mp->m || mp->lin_b[i] <= 0 ||
        !sched_mapping_n_ok(mp, s, i, m_tile, tile_for(extent(s, i), N_TILE, N_TILE)))
      continue;
    if (best < 0 || mp->lin_b[i] < mp->lin_b[best])
      best = i;
  }
  return best >= 0 ? best : choose_role(s, mp, false, m_tile);
}

static void add_loop(sched_loop *loops, int *n, int it, bool tile) {
  loops[(*n)++] = (sched_loop){it, tile};
}

/* The number of blocks one call reduces over: the reduction iterators other than K. */
static int64_t call_batch(const ir_stmt *s, const sched_stmt *ss) {
  int64_t batch = 1;
  for (int i = 0; i < s->niters; i++)
    if (s->iters[i].reduction && i != ss->role[SCHED_K])
      batch *= extent(s, i);
  return batch;
}

/* Loops outside the call, outermost first: the independent-GEMM iterators, the output's other
 * iterators that index A in its dimension order, then the M, N and K tile loops, so that one
 * block of A (M tile x K tile x batch, in L2) serves every N tile, and the C tile stays in L2
 * across the K tiles; then the output's iterators that do not index A (an image row when the
 * weights are A, in a pixel-major layout), so that each block of A also serves all of them
 * instead of being streamed again for each (3x3 C512 on 7x7 with [c][r][s][k] weights and a
 * pixel-major output: 194 -> 240 GFLOP/s). Every other reduction is in the batch. */
static void order_contraction(const ir_stmt *s, const sched_contraction *c, sched_stmt *ss) {
  int m = ss->role[SCHED_M];
  sched_class a_side = m >= 0 && c->cls[m] == SCHED_CLASS_Y_SIDE ? SCHED_CLASS_Y_SIDE : SCHED_CLASS_X_SIDE;
  int later[64], nlater = 0;
  for (int i = 0; i < s->niters; i++)
    if (c->cls[i] == SCHED_CLASS_BATCH)
      add_loop(ss->order, &ss->norder, i, false);
  for (int d = 0; d < s->lhs->nargs; d++) {
    int i = -1;
    for (int j = 0; j < s->niters; j++)
      if (s->lhs->index[d].coef[j])
        i = j;
    if (i < 0 || c->cls[i] == SCHED_CLASS_BATCH || i == ss->role[SCHED_M] || i == ss->role[SCHED_N])
      continue;
    if (m >= 0 && c->cls[i] != a_side && !(ss->flatten && i == ss->flatten_iter))
      later[nlater++] = i;
    else
      add_loop(ss->order, &ss->norder, i, false);
  }
  static const int tiled[3] = {SCHED_M, SCHED_N, SCHED_K};
  for (int t = 0; t < 3; t++)
    if (ss->role[tiled[t]] >= 0 && ss->tile[tiled[t]])
      add_loop(ss->order, &ss->norder, ss->role[tiled[t]], true);
  for (int j = 0; j < nlater; j++)
    add_loop(ss->order, &ss->norder, later[j], false);
  for (int i = 0; i < s->niters; i++)
    if (s->iters[i].reduction && i != ss->role[SCHED_K])
      add_loop(ss->batch, &ss->nbatch, i, false);
}

/* The range of "it" as the calls see it: with "flatten", M spans several rows; a "tail" of it
 * runs outside the calls. */
static int64_t call_extent(const ir_stmt *s, const sched_stmt *ss, int it) {
  if (it != ss->role[SCHED_M])
    return extent(s, it);
  return sched_call_m_extent(s, ss) - ss->tail;
}

/* When the M range is short (a narrow image), fuse the output rows into M ("flatten"), so each
 * call covers several rows: full vectors, and each broadcast of B feeds more FMAs. */
static void try_flatten(const ir_stmt *s, sched_stmt *ss) {
  int m = ss->role[SCHED_M], rank = s->lhs->nargs, p = -1;
  if (extent(s, m) >= M_TILE || rank < 2)
    return;
  for (int i = 0; i < s->niters; i++)
    if (s->lhs->index[rank - 2].coef[i])
      p = i;
  if (p < 0 || p == m || sched_flatten_pitch(s, ss, p) == 0)
    return;
  ss->flatten = true;
  ss->flatten_iter = p;
  int64_t mt = call_extent(s, ss, m), k = ss->role[SCHED_K], la[64];
  mt = mt > M_TILE ? M_TILE : mt;
  sched_contraction c;
  sched_classify(s, &c);
  sched_packed_strides(s, ss, c.cls[m] == SCHED_CLASS_X_SIDE ? c.x : c.y, la);
  if (k >= 0 && la[k] < mt) { /* the K stride must stay a leading dimension of A */
    ss->flatten = false;
    return;
  }
  ss->tile[SCHED_M] = tile_for(call_extent(s, ss, m), M_TILE, M_TILE);
}

/* "tail" (0: none): when M ends 1 or 2 iterations past a multiple of the vector (7x7 outputs: 49 pixels),
 * those run as dot products outside the calls (lower_tail). The last vector of every call
 * then goes away: 1/4 of the FMAs at M = 49, 1/8 at 113. The dot products read B once more,
 * contiguously along the reductions that B has one after the other from unit stride, at
 * least TAIL_MIN_DOT of them (the c, r, s of NCHW weights, the K of a row-major GEMM's A):
 * measured on the 1x1 convs on 7x7 of ResNet-50, 1 thread x1.18-1.22, 2 threads x1.16-1.20.
 * Tails of up to 4 pay in big statements, now that the tail runs inside the calls' loops
 * (reading each block of B from L2 right after its call) in blocks of dot products
 * (codegen/dot.c): 1x1 C256 K1024 on 14x14 (196 = 12 x 16 + 4) x1.03-1.05, 3x3 C256 on
 * 14x14 (B 2.4 MB, past L2) x1.03-1.07, on 1 and 2 threads. (The default orders keep only
 * K tile loops of the reductions outside the calls, so their tails always run inside the
 * calls' loops; a tail after them reads B from L3 again.) Not in small statements: the 97
 * x 131 x 263 GEMM (131 = 8 x 16 + 3, 6.7 MFLOP) gained 7% on 1 thread and lost 6% on 2. */
int64_t sched_default_tail(const ir_stmt *s, const sched_stmt *ss) {
  if (!ss->brgemm || ss->role[SCHED_M] < 0 || ss->epilogue)
    return 0;
  sched_contraction c;
  int m = ss->role[SCHED_M], copy_rank = 1;
  if (!sched_classify(s, &c))
    return 0;
  bool a_is_x = c.cls[m] == SCHED_CLASS_X_SIDE;
  int64_t em = sched_call_m_extent(s, ss), t = em % VEC;
  if (em < VEC || t == 0 || t > (s->flops >= TAIL_BIG_MIN_FLOPS ? TAIL_MAX_BIG : TAIL_MAX))
    return 0;
  int64_t lb[64];
  sched_packed_strides(s, ss, a_is_x ? c.y : c.x, lb);
  const ir_expr *a = s->reads[a_is_x ? c.x : c.y];
  for (int i = 0; i < s->niters; i++) {
    bool used = false;
    for (int d = 0; d < a->nargs; d++)
      used |= a->index[d].coef[i] != 0;
    copy_rank += used && i != m && extent(s, i) > 1;
  }
  /* the dot products run along the reductions that follow each other at unit stride in B */
  int64_t dot = 1, next = 1;
  for (bool grew = true; grew;) {
    grew = false;
    for (int i = 0; i < s->niters; i++)
      if (s->iters[i].reduction && extent(s, i) > 1 && lb[i] == next) {
        dot *= extent(s, i);
        next = lb[i] * extent(s, i);
        grew = true;
        break;
      }
  }
  return dot >= TAIL_MIN_DOT && copy_rank <= IR_MAX_RANK ? t : 0;
}

/* Whether the tail of "ss" runs inside the calls ("tail=T:call", brg_desc.dot_rows: after
 * each register block, along the rows of B that the block has just read) rather than as a
 * loop nest of dot products after each call (lower_tail; codegen/dot.c for 2+ points). Measured on 1 thread against the
 * latter: a 1-pixel tail over a run of B of 288 (3x3 C512 on 7x7, c/32) x1.03-1.04, of 512
 * (1x1 C512 on 7x7) x1.01, of 1024 (1x1 C1024 on 7x7) x0.97: past L1 the block's rows of B
 * are gone by the time the dot products run. Tails of 4 pixels (14x14) lost 1-2%: with 4
 * rows x 4 columns of accumulators over a run of 128-144, the lane sums and the scalar
 * updates of C take as long as the products. */
static bool tail_in_calls(const ir_stmt *s, const sched_stmt *ss, const sched_contraction *c) {
  int m = ss->role[SCHED_M];
  if (ss->tail > TAIL_CALL_MAX || (ss->tile[SCHED_M] && ss->tile[SCHED_M] < sched_call_m_extent(s, ss)))
    return false;
  int64_t run = sched_call_b_run(s, ss, c->cls[m] == SCHED_CLASS_X_SIDE ? c->y : c->x);
  return run > 0 && run <= TAIL_CALL_MAX_RUN;
}

/* Vectors of 16 that each call of "ss" spends along M. */
static int64_t m_vectors(const ir_stmt *s, const sched_stmt *ss) {
  return (sched_call_m_extent(s, ss) - ss->tail + VEC - 1) / VEC;
}

/* Pack A's read "pad" (a padded copy) as "kind" instead, with its rows next to each other
 * (lower.c: im2row_order, im2col_row), and the default tail; keep it when the calls then
 * need at most 24/25 of the vectors along M (an im2row copy, S times the input), or at most
 * 4/5 of them (an im2col copy, R x S times the input) for at least IM2COL_ROWS_MIN_N output
 * channels. */
static bool try_rows_copy(const ir_stmt *s, sched_stmt *ss, const sched_mapping *mp,
                          const sched_mapping *maps, int nmaps, struct sched_pack_rec *pad,
                          sched_pack kind, const sched_target *t) {
  bool legal = false;
  for (int j = 0; j < nmaps; j++)
    legal |= maps[j].m == mp->m && maps[j].a_read == mp->a_read && maps[j].pack[0] == kind &&
             maps[j].pack[1] == mp->pack[1];
  if (!legal)
    return false;
  int64_t vp = m_vectors(s, ss);
  sched_stmt col = *ss;
  pad->kind = kind; /* shared by "col" and "ss" */
  col.tail = 0;
  if (sched_flatten_pitch(s, &col, ss->flatten_iter) == extent(s, ss->role[SCHED_M])) {
    col.tail = sched_default_tail(s, &col);
    int64_t vc = m_vectors(s, &col);
    if (kind == SCHED_PACK_IM2ROW ? 25 * vc <= 24 * vp
                                  : 5 * vc <= 4 * vp && extent(s, ss->role[SCHED_N]) >= IM2COL_ROWS_MIN_N) {
      ss->tail = col.tail;
      return true;
    }
  }
  pad->kind = SCHED_PACK_PAD;
  return false;
}

/* A padded conv on an image narrower than M_TILE flattens its rows at the padded pitch and
 * copies them back: a 3x3 on 28x28 runs 838 lanes for 784 pixels, on 7x7 61 (4 vectors) for
 * 49. A copy of A with the rows at the image's own width makes M the pixels themselves:
 * im2row ([c][s][row][q], S x the input; no copy-back), else im2col ([c][r][s][p][q]). Measured
 * on the 3x3 convs of ResNet-50, 1 / 2 threads: 28x28 x1.07 / x1.0-1.07, 14x14 x1.08 /
 * x1.04-1.09, 7x7 (3 vectors and a tail instead of 4) x1.04 / x1.03 over im2col's 1.09-1.17
 * -> 1.00-1.04 ms; 56x56 (3.4% of the lanes) x1.01 / x0.97: kept padded. */
static void try_rows_copies(const ir_stmt *s, sched_stmt *ss, const sched_mapping *mp,
                            const sched_mapping *maps, int nmaps, const sched_target *t) {
  if (!ss->flatten || ss->role[SCHED_N] < 0)
    return;
  struct sched_pack_rec *pad = sched_stmt_pack(ss, mp->a_read);
  if (pad && pad->kind != SCHED_PACK_PAD)
    pad = NULL;
  if (pad && !try_rows_copy(s, ss, mp, maps, nmaps, pad, SCHED_PACK_IM2ROW, t))
    try_rows_copy(s, ss, mp, maps, nmaps, pad, SCHED_PACK_IM2COL, t);
}

/* A padded conv whose rows are flattened into M reads its input in place, the padding lanes
 * masked off inside the BRGEMM ("pack=A:mask", brg_desc.pad_q), instead of copying it (pad,
 * im2row or im2col): no copy inside the call, no copy-back of padding columns, M over the
 * image's own pixels, and on 2 threads no rows that the other core wrote (on a VM whose two
 * vCPUs sit on two CCDs, such rows come from the other CCD's cache). Only with mask registers
 * (on AVX2 each mask would take a vector register) and at the input's own pitch. Measured on
 * the 3x3 convs of ResNet-50 on one CCD, 1 / 2 threads: 56x56 x1.06 / x1.04, 28x28
 * x1.01-1.02 / x1.03, 14x14 and 7x7 x1.0 / x1.0 (the masks cost about what the copy did). */
typedef struct mask_undo {
  struct sched_pack_rec *copy; /* A's pack, now "mask" (NULL: not tried) */
  sched_pack kind;             /* what it was */
  int64_t tail;
} mask_undo;

/* Try "pack=A:mask" before the blocking (which sees M at the image's pixels); the batch loops
 * are not chosen yet, so mask_done checks them after the blocking. */
static mask_undo try_mask(const ir_stmt *s, sched_stmt *ss, const sched_mapping *mp,
                          const sched_target *t) {
  mask_undo u = {NULL, SCHED_PACK_NONE, ss->tail};
  if (!t->mask_registers || !ss->flatten)
    return u;
  u.copy = sched_stmt_pack(ss, mp->a_read);
  if (!u.copy || u.copy->kind == SCHED_PACK_NONE) {
    u.copy = NULL;
    return u;
  }
  u.kind = u.copy->kind;
  u.copy->kind = SCHED_PACK_MASK;
  ss->tail = 0;
  if (sched_flatten_pitch(s, ss, ss->flatten_iter) == extent(s, ss->role[SCHED_M])) {
    ss->tail = sched_default_tail(s, ss);
    return u;
  }
  u.copy->kind = u.kind;
  ss->tail = u.tail;
  u.copy = NULL;
  return u;
}

/* Keep the mask of try_mask if the finished schedule allows it, else the copy. */
static void mask_done(const ir_stmt *s, sched_stmt *ss, int a_read, const mask_undo *u) {
  if (u->copy && !sched_mask_ok(s, ss, a_read)) {
    u->copy->kind = u->kind;
    ss->tail = u->tail;
  }
}

/* A tile of at most about "t" that splits "e" into equal parts (64 = 32 + 32, not 56 + 8),
 * rounded up to a multiple of "q". */
static int64_t balanced(int64_t e, int64_t t, int64_t q) {
  if (t >= e)
    return t;
  int64_t parts = (e + t - 1) / t, b = (e + parts - 1) / parts;
  return (b + q - 1) / q * q;
}

/* Tiles of M, N and K, as GotoBLAS blocks for the call's reduction of K tile x batch
 * ("K_eff"): K tiles so that K_eff is about GEMM_KT (the whole K when it is at most a quarter
 * longer); B's block (N tile x K_eff) in three quarters of L1, broadcast from there for every
 * M chunk of the call (NCHW weights are read at stride R*S: from L1 that costs nothing); A's
 * block (M tile x K_eff) in a quarter of L2, read once per N tile. Measured against the
 * previous rules (N 16, M 64, K 256 without a batch; A + B blocks in L1 with one): GEMMs
 * 1024^2-2048^2 x1.2-1.6, 1x1 convolutions x1.05-1.2, 3x3 on 28x28 and 14x14 x1.07-1.1. */
static void block_for_cache(const ir_stmt *s, sched_stmt *ss, const sched_target *t,
                            int64_t m_tile) {
  int m = ss->role[SCHED_M], n = ss->role[SCHED_N], k = ss->role[SCHED_K];
  int64_t em = m_tile ? m_tile : call_extent(s, ss, m), en = n >= 0 ? extent(s, n) : 1;
  int64_t ek = k >= 0 ? extent(s, k) : 1, batch = call_batch(s, ss);
  /* A call that is a single M chunk reads B once (no M chunk reuses it): B's block then only
   * needs a quarter of L2 at N = N_TILE, and a longer K saves C reloads (3x3 C512 on 7x7:
   * K 64 instead of 16, x1.15). With a batch (the taps of a 3x3), the same block as N 128 by
   * half the K: A's block (M x K tile x batch) halves and serves twice the columns (3x3 C512
   * on 7x7 with M = 48: x1.02-1.05 on 1 and 2 threads). */
  bool single = em <= M_CHUNK;
  int64_t single_n = batch > 1 ? 2 * N_TILE : N_TILE;
  int64_t kt = single ? t->l2 / 4 / 4 / single_n / batch : GEMM_KT / batch;
  kt = kt >= 8 ? (kt + 4) / 8 * 8 : 8;
  /* With the padding masked off (pack=A:mask) every batch element computes the masks of each
   * register block again: a K of at least MASK_KT per element keeps that small (3x3 convs,
   * 16 -> 32 channels per call with the same N and M tiles: x1.01-1.03 on 1 thread) */
  bool masked = false;
  for (int i = 0; i < ss->packs.len; i++)
    masked |= ss->packs.data[i].kind == SCHED_PACK_MASK;
  int64_t keff = kt * batch; /* the N and M tiles are those of the unmasked K */
  /* So does a call over output channels (m_tile), whose body runs a K loop per filter column
   * when it skips the padding columns (brg_desc.col_period; 3x3 C512 on 7x7 with M = 128 on
   * 2 threads: K 16 -> 32 x1.04-1.1) */
  if ((masked || m_tile) && kt < MASK_KT)
    kt = MASK_KT;
  /* A long batch (a weight update's rows n, p with K = q) is a long reduction by itself: each
   * element keeps its whole K (3x3 C64 K64 on 56x56: K tiles of 8, 168 GFLOP/s; whole, 241) */
  if (ek <= kt + kt / 4 || ek <= K_WHOLE_SMALL || (batch >= LONG_BATCH && ek <= K_WHOLE_MAX))
    kt = ek; /* a short K stays whole: no reload of C */
  for (int64_t d = kt; d > kt / 2 && d < ek; d -= 8)
    if (ek % d == 0) { /* prefer a tile that divides the range: no border calls */
      kt = d;
      break;
    }
  if (!masked)
    keff = kt * batch;
  int64_t nt = t->l1 * 3 / 4 / 4 / keff / 8 * 8, mt = t->l2 / 4 / 4 / keff / 64 * 64;
  if (single && nt < single_n)
    nt = single_n;
  nt = balanced(en, nt < 8 ? 8 : nt, 8);
  mt = balanced(em, mt < 64 ? 64 : mt, 16);
  if (k >= 0) { /* the K stride must stay a leading dimension of A */
    sched_contraction c;
    int64_t la[64];
    sched_classify(s, &c);
    sched_packed_strides(s, ss, c.cls[m] == SCHED_CLASS_X_SIDE ? c.x : c.y, la);
    if (la[k] < mt && la[k] < em)
      mt = la[k] >= 16 ? la[k] / 16 * 16 : la[k];
  }
  if (k >= 0)
    ss->tile[SCHED_K] = kt >= ek ? 0 : kt;
  if (n >= 0)
    ss->tile[SCHED_N] = nt >= en ? 0 : nt;
  ss->tile[SCHED_M] = m_tile ? m_tile : mt >= em ? 0 : mt;
}

/* Does contraction "s" run better as a plain loop nest of dot products than with mapping
 * "mp"? When the mapping copies A (transposes it) although each element of A then feeds few
 * outputs ("reuse": a fully connected layer with PyTorch's W[k, c] has one per image), and
 * some reduction of at least VEC has unit stride in both factors. The copy is one more pass
 * over A, three when A comes from memory, against ~60 GFLOP/s for LLVM's dot products;
 * measured with W[k, c] (N images x C = K), 1 thread, GFLOP/s BRGEMM with the copy -> dots:
 * a GEMV with W 512 x 2048: 10 -> 60; 8 x 1024: 47 -> 62; 16 x 1024: 72 -> 63;
 * 16 x 2048: 39 -> 68; 16 x 4096: 28 -> 63; 32 x 1024: 112 -> 67; 32 x 4096: 48 -> 57;
 * 64 x 4096: 80 -> 54. So:
 * up to DOT_MAX_REUSE outputs per element, or up to DOT_MAX_REUSE_BIG when the copy would
 * not fit in half the L3. */
static bool dot_products_better(const ir_stmt *s, const sched_mapping *mp,
                                const sched_contraction *c, const sched_target *t) {
  if (mp->pack[0] != SCHED_PACK_IM2COL && mp->pack[0] != SCHED_PACK_IM2ROW)
    return false;
  int64_t reuse = 1;
  bool dot = false;
  for (int i = 0; i < s->niters; i++) {
    if (c->cls[i] == mp->b_side)
      reuse *= extent(s, i);
    dot |= c->cls[i] == SCHED_CLASS_REDUCE && c->lin_x[i] == 1 && c->lin_y[i] == 1 &&
           extent(s, i) >= VEC;
  }
  int64_t copy_bytes = 4 * sched_pack_elems(s, mp->a_read, mp->m, mp->pack[0]);
  return dot && (reuse <= DOT_MAX_REUSE || (reuse <= DOT_MAX_REUSE_BIG && 2 * copy_bytes >= t->l3));
}

/* The loop nest of dot products: the output iterators of A (each row of A then stays in L1
 * for all the products it takes part in), the other output iterators, the reductions, the
 * ones of unit stride in both factors innermost (vectorized). */
static void dot_loops(const ir_stmt *s, const sched_mapping *mp, const sched_contraction *c,
                      sched_stmt *ss) {
  ss->brgemm = false;
  for (int pass = 0; pass < 4; pass++)
    for (int i = 0; i < s->niters; i++) {
      bool red = s->iters[i].reduction, unit = c->lin_x[i] == 1 && c->lin_y[i] == 1;
      bool in_a = c->cls[i] != mp->b_side && c->cls[i] != SCHED_CLASS_REDUCE;
      int p = !red ? (in_a ? 0 : 1) : (unit ? 3 : 2);
      if (p == pass)
        add_loop(ss->order, &ss->norder, i, false);
    }
}

static int64_t sliding_window(const ir_stmt *s);
static void default_loops(const ir_stmt *s, sched_stmt *ss);

/* A strided convolution without output channels (depthwise, W[c, r, s]) maps to calls with
 * N = 1 over an im2row copy of its input, 3 times the input at stride 2; as a plain loop nest
 * its window is unrolled inside the vectorized output row instead, with the borders apart
 * (lower.c split_borders). From output rows of a vector on, that is faster: 3x3/2 depthwise,
 * 1 thread, 128 channels of 36 x 36 0.055 -> 0.017 ms, 56 x 56 0.125 -> 0.054, 96 of 112 x 112
 * 0.48 -> 0.12; with rows of 14 (28 x 28) the calls stay 2x faster. */
static bool window_loops_better(const ir_stmt *s, const sched_mapping *mp,
                                const sched_contraction *c) {
  if (mp->pack[0] != SCHED_PACK_IM2COL && mp->pack[0] != SCHED_PACK_IM2ROW)
    return false;
  for (int i = 0; i < s->niters; i++)
    if (c->cls[i] == mp->b_side)
      return false; /* a column of B: N > 1 */
  int64_t window = sliding_window(s);
  return extent(s, mp->m) >= VEC && window > 0 && window <= WINDOW_UNROLL;
}

/* Fill "ss" for contraction "s"; false if no BRGEMM mapping exists. */
static bool default_contraction(const ir_kernel *k, const ir_stmt *s, sched_stmt *ss,
                                bk_arena *arena, const sched_target *t, int threads) {
  sched_contraction c;
  sched_mapping maps[64];
  int nmaps = sched_space_mappings(k, s, maps, 64);
  const sched_mapping *mp = choose_transposed(s, maps, nmaps, choose_mapping(s, maps, nmaps));
  mp = choose_long_m(s, maps, nmaps, mp);
  const sched_mapping *unchanneled = mp;
  mp = choose_channels(s, maps, nmaps, mp);
  if (!mp || !sched_classify(s, &c))
    return false;
  if (dot_products_better(s, mp, &c, t)) {
    dot_loops(s, mp, &c, ss);
    return true;
  }
  if (window_loops_better(s, mp, &c)) {
    default_loops(s, ss);
    return true;
  }
  ss->brgemm = true;
  ss->role[SCHED_M] = mp->m;
  ss->tile[SCHED_M] = tile_for(extent(s, mp->m), M_TILE, M_TILE);
  int n = mp != unchanneled ? channels_role_n(s, mp, ss->tile[SCHED_M])
                            : choose_role(s, mp, false, ss->tile[SCHED_M]);
  ss->role[SCHED_N] = n;
  if (n >= 0)
    ss->tile[SCHED_N] = tile_for(extent(s, n), N_TILE, N_TILE);
  int kk = choose_role(s, mp, true, ss->tile[SCHED_M]);
  ss->role[SCHED_K] = kk;
  if (kk >= 0)
    ss->tile[SCHED_K] = tile_for(extent(s, kk), K_WHOLE_MAX, K_TILE);
  sched_stmt_add_pack(ss, s, mp->a_read, mp->pack[0], arena);
  sched_stmt_add_pack(ss, s, mp->b_read, mp->pack[1], arena);
  ss->out_transpose = mp->out_transpose;
  /* A's rows 1 KiB (or a multiple) apart alias in L1: a padded copy gets a pitch one cache
   * line longer (sched_pad_extent). The copy reads A once per call, so only when every
   * element of A then feeds many FMAs (N >= 1024: ~2% of the time of a square GEMM; at 256-512
   * the copy and its parallel region cost what the pitch gains). */
  if (mp->pack[0] == SCHED_PACK_NONE && kk >= 0 && n >= 0 && extent(s, n) >= PITCH_PAD_MIN_N &&
      extent(s, kk) >= 64 && mp->lin_a[kk] >= 256 && mp->lin_a[kk] % 256 == 0)
    sched_stmt_add_pack(ss, s, mp->a_read, SCHED_PACK_PAD, arena);
  if (!ss->out_transpose)
    try_flatten(s, ss);
  ss->tail = sched_default_tail(s, ss);
  try_rows_copies(s, ss, mp, maps, nmaps, t);
  mask_undo mask = try_mask(s, ss, mp, t);
  bool channels = mp != unchanneled && extent(s, mp->m) >= 2 * CHANNELS_M_TILE;
  block_for_cache(s, ss, t, channels ? channels_m_tile(extent(s, mp->m), threads) : 0);
  stream_rows(s, ss, mp, t);
  order_contraction(s, &c, ss);
  mask_done(s, ss, mp->a_read, &mask);
  ss->tail_call = ss->tail && tail_in_calls(s, ss, &c);
  if (ss->out_transpose && !ss->tail_call) /* a tail after the calls would write the target */
    ss->tail = 0;
  return true;
}

/* The points of the window of "s" when every reduction slides with an output iterator (each
 * indexes some dimension of a read together with a left-side iterator: r in X[2*p + r - 1]),
 * else 0 (a row or column reduction, m[j] max= X[i, j]). */
static int64_t sliding_window(const ir_stmt *s) {
  int64_t points = 1;
  for (int i = 0; i < s->niters; i++) {
    if (!s->iters[i].reduction)
      continue;
    bool slides = false;
    for (int r = 0; r < s->nreads && !slides; r++)
      for (int d = 0; d < s->reads[r]->tensor->rank && !slides; d++) {
        const ir_affine *a = &s->reads[r]->index[d];
        for (int j = 0; j < s->niters && a->coef[i]; j++)
          slides |= j != i && !s->iters[j].reduction && a->coef[j] != 0;
      }
    if (!slides)
      return 0;
    points *= extent(s, i);
  }
  return points > 1 ? points : 0;
}

/* The innermost loop of a plain loop nest: the last iterator (the last reduction, else the
 * target's last index), unless the largest read is not contiguous along it, or it is a
 * reduction of max= (LLVM does not vectorize llvm.maxnum reductions without no-NaNs), and
 * the iterator of the target's unit-stride dimension reads it contiguously: a column
 * reduction m[j] max= X[i, j] then runs along the rows of X, not down its columns (0.29 ->
 * 0.011 ms at 256 x 1000). Not when the reductions are a small window (at most
 * WINDOW_UNROLL points: a pooling window), which LLVM unrolls inside the vectorized output
 * row (lower.c runs the interior, where no read leaves its tensor, apart from the borders):
 * 3x3/1 max pooling of 64 x 56 x 56, 1 thread: 0.18 ms with the output row innermost, 0.07
 * with the window. */
static int innermost_loop(const ir_stmt *s) {
  const ir_expr *big = NULL;
  for (int r = 0; r < s->nreads; r++)
    if (!big || s->reads[r]->tensor->nelems > big->tensor->nelems)
      big = s->reads[r];
  int last = s->niters - 1;
  if (!big || last < 1 || s->niters > 64)
    return last;
  int64_t lr[64], lw[64], c0;
  sched_linearize(s, big, lr, &c0);
  sched_linearize(s, s->lhs, lw, &c0);
  bool max_red = s->assign == IR_ASSIGN_MAX && s->iters[last].reduction;
  int64_t window = sliding_window(s);
  if (s->iters[last].reduction && window > 0 && window <= WINDOW_UNROLL)
    return last; /* a small window: LLVM unrolls it and vectorizes the loop around it */
  if ((lr[last] == 1 || lr[last] == -1) && !max_red)
    return last;
  int best = -1;
  for (int i = 0; i < s->niters; i++) {
    int64_t a = lr[i] < 0 ? -lr[i] : lr[i];
    if (!s->iters[i].reduction && lw[i] == 1 && a == 1 && extent(s, i) >= 2)
      best = i;
  }
  return best >= 0 ? best : last;
}

/* Plain loops: the left-side iterators in order, then the reductions, innermost_loop last. */
static void default_loops(const ir_stmt *s, sched_stmt *ss) {
  ss->brgemm = false;
  if (s->niters == 0) /* a scalar statement, D[] = A[3]: one point, no loop (found by a trial) */
    return;
  int inner = innermost_loop(s);
  for (int i = 0; i < s->niters; i++)
    if (i != inner)
      add_loop(ss->order, &ss->norder, i, false);
  add_loop(ss->order, &ss->norder, inner, false);
}

static int64_t loop_trips(const ir_stmt *s, const sched_stmt *ss, sched_loop l) {
  int r = l.tile ? (l.iter == ss->role[SCHED_M] ? SCHED_M : SCHED_N) : -1;
  return r >= 0 ? (call_extent(s, ss, l.iter) + ss->tile[r] - 1) / ss->tile[r] : extent(s, l.iter);
}

/* When the parallel loop is the M tile loop with only 2 or 3 tiles that 2 threads would share
 * unevenly (more than 3% over half each), smaller M tiles (at least 64) give each thread
 * several: 2 threads on a 3x3 conv on 28x28 at the padded pitch (840 = 432 + 408) x1.05-1.1.
 * Equal tiles stay (1024^2 GEMM: 2 x 512 beats 4 x 256 by 5%), and so do near-equal ones: the
 * 28x28 layers of ResNet-50 with M = 784 = 400 + 384 ran x1.01-1.1 faster on 2 threads than
 * in 4 tiles of 208 (3 x 208 + 160: 416 pixels against 368), the same on 1. Except in a
 * GEMV-like call (N < 16), which streams its block of A once: smaller tiles, more calls, ran
 * faster (1 x 1000 x 2048 on 2 threads: 4 tiles 0.041-0.048 ms, 2 tiles 0.054-0.061). Then, a parallel M or N tile loop of fewer than
 * PARALLEL_EVEN_TILES tiles gets an even number of tiles of near-equal size (M in whole
 * vectors), so that 2 or 4 threads get the same work: 7 tiles of 448 pixels gave one thread
 * 4/7 of a 1x1 conv on 56x56, 15 tiles of 72 channels one thread 8/15 of a 1x1 conv with
 * 1024 outputs, 56 + 56 + 19 rows one thread 112 of 131. */
/* How much longer than half of "e" the larger of 2 threads' shares is, when a static split
 * deals them contiguous halves of the tiles of size "t" (thread 0 the longer half). */
static double two_thread_excess(int64_t e, int64_t t) {
  int64_t tiles = (e + t - 1) / t, first = (tiles + 1) / 2 * t;
  int64_t most = first > e - first ? first : e - first;
  return (double)most / ((double)e / 2) - 1;
}

static void split_parallel(const ir_stmt *s, sched_stmt *ss, sched_loop l) {
  if (!l.tile)
    return;
  int r = l.iter == ss->role[SCHED_M] ? SCHED_M : SCHED_N;
  int64_t e = call_extent(s, ss, l.iter), q = r == SCHED_M ? 16 : 1;
  int n = ss->role[SCHED_N];
  bool gemv = n < 0 || call_extent(s, ss, n) < 16;
  while (r == SCHED_M && loop_trips(s, ss, l) < PARALLEL_MIN_TILES && e % ss->tile[SCHED_M] != 0 &&
         (gemv || two_thread_excess(e, ss->tile[SCHED_M]) > PARALLEL_MAX_EXCESS) &&
         ss->tile[SCHED_M] / 2 >= 64)
    ss->tile[SCHED_M] = balanced(e, ss->tile[SCHED_M] / 2, 16);
  int64_t trips = loop_trips(s, ss, l);
  if (trips >= PARALLEL_EVEN_TILES || (trips % 2 == 0 && e % ss->tile[r] == 0))
    return;
  for (int64_t want = trips + trips % 2; want <= trips + 2; want += 2) {
    int64_t t = (e + want - 1) / want;
    t = (t + q - 1) / q * q;
    int64_t got = (e + t - 1) / t, last = e - (got - 1) * t;
    if (got % 2 == 0 && 4 * last >= 3 * t) { /* even, the last tile at least 3/4 full */
      ss->tile[r] = t;
      return;
    }
  }
}

/* The outermost loop of a parallel iterator with at least two iterations, outside every
 * reduction loop: a parallel loop inside a K tile loop forks and joins once per K tile. When
 * only a loop inside a reduction loop qualifies (a flattened M tile loop under the K tiles),
 * it moves out to just above the first reduction loop (the loops of a contraction are
 * permutable; legality.c checks it anyway). */
/* No loop to run in parallel although the statement is big enough (the whole M and N fit one
 * call: a fully connected layer with 256 outputs, an MLP layer): cut M (else N) into about 4
 * tiles, at least 32 rows (4 columns) each, and add their loop just outside the reduction
 * loops, or outermost when "outermost". Returns its position in the order, or -1. */
static int make_parallel_tiles(const ir_stmt *s, sched_stmt *ss, bool outermost) {
  static const int roles[2] = {SCHED_M, SCHED_N};
  for (int k = 0; k < 2 && ss->brgemm; k++) {
    int r = roles[k], it = ss->role[r];
    if (it < 0 || (ss->flatten && it == ss->flatten_iter))
      continue;
    int64_t e = call_extent(s, ss, it), q = r == SCHED_M ? 16 : 1, min = r == SCHED_M ? 32 : 4;
    if ((ss->tile[r] && ss->tile[r] < e) || e < 2 * min)
      continue;
    int64_t t = ((e + 3) / 4 + q - 1) / q * q;
    if (t < min)
      t = min;
    if ((e + t - 1) / t < 2)
      continue;
    int pos = 0;
    while (!outermost && pos < ss->norder && !s->iters[ss->order[pos].iter].reduction)
      pos++;
    if (ss->norder >= SCHED_MAX_LOOPS)
      return -1;
    memmove(&ss->order[pos + 1], &ss->order[pos], (size_t)(ss->norder - pos) * sizeof ss->order[0]);
    ss->order[pos] = (sched_loop){it, true};
    ss->norder++;
    ss->tile[r] = t;
    return pos;
  }
  return -1;
}

/* Is "s" a copy ("Y[..] = X[..]", no FLOPs: a layout change) of at least PARALLEL_MIN_COPY
 * elements? Such a copy runs in parallel too: the 9.4 MB weight repack of
 * examples/conv2d_prepacked.bk took 1.04-1.09 ms on 1 thread, 0.66-0.67 ms on 2. */
static bool big_copy(const ir_stmt *s) {
  if (s->assign != IR_ASSIGN_SET || s->rhs->kind != IR_EXPR_ACCESS)
    return false;
  int64_t n = 1;
  for (int i = 0; i < s->niters && n < PARALLEL_MIN_COPY; i++)
    n *= extent(s, i);
  return n >= PARALLEL_MIN_COPY;
}

static void choose_parallel(const ir_stmt *s, sched_stmt *ss, int threads) {
  ss->parallel = -1;
  if (threads == 1 || (s->flops < PARALLEL_MIN_FLOPS && !big_copy(s)))
    return;
  int first_red = -1;
  for (int i = 0; i < ss->norder; i++) {
    sched_loop l = ss->order[i];
    if (s->iters[l.iter].reduction) {
      if (first_red < 0)
        first_red = i;
      continue;
    }
    int64_t trips = loop_trips(s, ss, l);
    if ((ss->flatten && l.iter == ss->flatten_iter) || trips < 2)
      continue;
    /* The innermost loop of a plain nest behind a reduction (a column reduction m[j] max=
     * X[i, j], innermost_loop) stays innermost: moved out, the reduction would walk down the
     * columns again (8192 x 1000 on 2 threads: 10 ms, against 0.9 on 1); that stays serial */
    if (!ss->brgemm && first_red >= 0 && i == ss->norder - 1)
      continue;
    /* A few whole iterations that 2 threads would share unevenly (a weight update's filter
     * rows: 3, one thread 2 of them) when M or N can be cut into tiles instead: their loop
     * goes outermost (3x3 C64 K64 weight update on 56x56, 2 threads: parallel over r 1.3x
     * one thread, over 2 tiles of the 64 output channels 1.6x; 3 batches of 256^3 matmuls,
     * 2 threads: over the batches 323 GFLOP/s, over 4 tiles of j 397) */
    if (!l.tile && trips % 2 && trips < PARALLEL_EVEN_TILES) {
      sched_stmt cut = *ss;
      int pos = make_parallel_tiles(s, &cut, true);
      if (pos >= 0) {
        *ss = cut;
        ss->parallel = pos;
        split_parallel(s, ss, ss->order[pos]);
        return;
      }
    }
    if (first_red >= 0) {
      memmove(&ss->order[first_red + 1], &ss->order[first_red],
              (size_t)(i - first_red) * sizeof ss->order[0]);
      ss->order[first_red] = l;
      i = first_red;
    }
    ss->parallel = i;
    split_parallel(s, ss, l);
    return;
  }
  ss->parallel = make_parallel_tiles(s, ss, false);
  if (ss->parallel >= 0)
    split_parallel(s, ss, ss->order[ss->parallel]);
}

static bool is_given(const sched_schedule *given, int stmt) {
  for (int j = 0; given && j < given->stmts.len; j++)
    if (given->stmts.data[j].stmt == stmt)
      return true;
  return false;
}

/* Run each statement that finishes a BRGEMM statement's output (bias, ReLU) as that BRGEMM's
 * epilogue: by default when neither statement was scheduled explicitly, and always when a
 * given schedule says "epilogue=". */
static void fuse_epilogues(const ir_kernel *k, const sched_schedule *given, sched_schedule *out) {
  for (int i = 0; i + 1 < out->stmts.len; i++) {
    sched_stmt *c = &out->stmts.data[i], *e = &out->stmts.data[i + 1];
    int bias;
    bool wanted = c->epilogue && c->epilogue_stmt == i + 1;
    if (!wanted && (is_given(given, i) || is_given(given, i + 1)))
      continue;
    if (!wanted && (c->fused || (c->tail && !c->tail_call) || /* the tail saves more */
                    !sched_epilogue_match(k->stmts.data[i], c, k->stmts.data[i + 1], &bias)))
      continue;
    c->epilogue = true;
    c->epilogue_stmt = i + 1;
    *e = (sched_stmt){.stmt = i + 1, .role = {-1, -1, -1}, .parallel = -1, .fused = true};
  }
}

sched_target sched_target_default(void) {
  return (sched_target){.l1 = 32 << 10, .l2 = 1 << 20, .l3 = 32 << 20, .mask_registers = true};
}

void sched_default_stmt(const ir_kernel *k, const ir_stmt *s, int threads, sched_stmt *out,
                        bk_arena *arena) {
  sched_target t = sched_target_default();
  sched_default_stmt_for(k, s, threads, &t, out, arena);
}

void sched_default_stmt_for(const ir_kernel *k, const ir_stmt *s, int threads,
                            const sched_target *t, sched_stmt *out, bk_arena *arena) {
  *out = (sched_stmt){.stmt = s->index, .role = {-1, -1, -1}, .parallel = -1};
  if (!default_contraction(k, s, out, arena, t, threads)) {
    *out = (sched_stmt){.stmt = s->index, .role = {-1, -1, -1}, .parallel = -1};
    default_loops(s, out);
  }
  choose_parallel(s, out, threads);
  /* the parallel split may cut M into tiles, which a tail inside the calls cannot take (found
   * by a user trial: a 64 x 129 x 512 GEMM on 2 threads); after the calls it can, but not with
   * a transposed target */
  if (out->tail_call && out->tile[SCHED_M] && out->tile[SCHED_M] < sched_call_m_extent(s, out)) {
    out->tail_call = false;
    if (out->out_transpose)
      out->tail = 0;
  }
}

sched_schedule *sched_complete(const ir_kernel *k, const sched_schedule *given, int threads) {
  sched_target t = sched_target_default();
  return sched_complete_for(k, given, threads, &t);
}

sched_schedule *sched_complete_for(const ir_kernel *k, const sched_schedule *given, int threads,
                                   const sched_target *t) {
  sched_schedule *out = sched_schedule_new();
  for (int i = 0; i < k->stmts.len; i++) {
    sched_stmt *g = NULL;
    for (int j = 0; given && j < given->stmts.len; j++)
      if (given->stmts.data[j].stmt == i)
        g = &given->stmts.data[j];
    sched_stmt *ss = sched_schedule_add(out, i);
    if (!g) {
      sched_default_stmt_for(k, k->stmts.data[i], threads, t, ss, out->arena);
      continue;
    }
    *ss = *g;
    memset(&ss->packs, 0, sizeof ss->packs);
    for (int p = 0; p < g->packs.len; p++)
      bk_vec_push(out->arena, &ss->packs, g->packs.data[p]);
  }
  fuse_epilogues(k, given, out);
  return out;
}
