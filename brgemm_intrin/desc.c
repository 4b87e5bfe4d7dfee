/* Descriptors of BRGEMM specializations and their register blocking.
 *
 * A brg_desc fixes everything but the batch count.  This file checks one,
 * names it (the mangled name is the identity of a specialization: equal
 * names, equal bodies), reports the host ISA, and chooses the register
 * blocking.  The blocking follows libxsmm: C is cut into chunks of nvec
 * vectors along M by n columns, with nvec*n accumulators + nvec A vectors +
 * 1 broadcast (+ the tail mask on AVX2) + 1 spare per 16 registers <= the
 * ISA's vector registers, and K loops unrolled 4 times; chunk sizes are
 * balanced so no block is much smaller than the others.  Among the possible nvec, a small
 * model of one K step (FMA throughput, FMA latency, load throughput, in units
 * that hold for any x86 core with two FMA pipes) picks the cheapest.  Only
 * ISA facts enter: vector length and register count, never a measured speed.
 */
#include <stdio.h>
#include <string.h>

#include <llvm-c/TargetMachine.h>

#include "brg_private.h"

void brg_desc_init(brg_desc *d, int M, int N, int K, brg_isa isa)
{
  memset(d, 0, sizeof *d);
  d->M = M;
  d->N = N;
  d->K = K;
  d->lda = M;
  d->ldb_k = 1;
  d->ldb_n = K;
  d->ldc = M;
  d->mode = BRG_BATCH_STRIDE;
  d->stride_a = (int64_t)M * K;
  d->stride_b = (int64_t)K * N;
  d->beta = 1;
  d->epilogue = BRG_EPI_NONE;
  d->isa = isa;
}

/* Return the error of the sizes and leading dimensions of "d", or NULL. */
static const char *validate_dims(const brg_desc *d)
{
  const int max_dim = 1 << 16;
  if (d->M <= 0 || d->N <= 0 || d->K <= 0)
    return "M, N and K must be >= 1";
  if (d->M > max_dim || d->N > max_dim || d->K > max_dim)
    return "M, N and K must be <= 65536";
  if (d->lda < 0 || d->ldb_k < 0 || d->ldb_n < 0 || d->ldc < 0)
    return "leading dimensions must be >= 0";
  if (d->K > 1 && d->lda < d->M)
    return "lda must be >= M (when K > 1)";
  if (d->N > 1 && d->ldc < d->M)
    return "ldc must be >= M (when N > 1)";
  if (d->K > 1 && d->ldb_k < 1)
    return "ldb_k must be >= 1 (when K > 1)";
  if (d->N > 1 && d->ldb_n < 1)
    return "ldb_n must be >= 1 (when N > 1)";
  return NULL;
}

/* Return the error of the skipped column taps of "d" (brg_desc.col_period), or NULL. */
static const char *validate_cols(const brg_desc *d)
{
  if (d->col_period < 0 || d->col_period > BRG_MAX_COL_PERIOD)
    return "col_period must be 0..8";
  if (d->col_period && (d->pad_q || d->dot_rows))
    return "col_period excludes pad_q and dot_rows";
  for (int s = 0; s < d->col_period; s++)
    if (d->col_lo[s] < 0 || d->col_lo[s] > d->col_hi[s] || d->col_hi[s] > d->N)
      return "col_lo and col_hi must satisfy 0 <= col_lo <= col_hi <= N";
  return NULL;
}

const char *brg_desc_validate(const brg_desc *d)
{
  if (!d)
    return "descriptor is NULL";
  const char *e = validate_dims(d);
  if (e)
    return e;
  if (d->mode != BRG_BATCH_STRIDE && d->mode != BRG_BATCH_OFFSETS && d->mode != BRG_BATCH_ADDR)
    return "unknown batch mode";
  if (d->beta != 0 && d->beta != 1)
    return "beta must be 0 or 1";
  if (d->epilogue & ~(unsigned)(BRG_EPI_BIAS_M | BRG_EPI_BIAS_N | BRG_EPI_RELU))
    return "unknown epilogue flag";
  if ((d->epilogue & BRG_EPI_BIAS_M) && (d->epilogue & BRG_EPI_BIAS_N))
    return "bias along m and along n are exclusive";
  if (d->isa != BRG_ISA_GENERIC && d->isa != BRG_ISA_AVX2 && d->isa != BRG_ISA_AVX512)
    return "unknown ISA";
  if (d->isa == BRG_ISA_GENERIC && d->vlen != 0 &&
      (d->vlen < 2 || d->vlen > 64 || (d->vlen & (d->vlen - 1))))
    return "generic vlen must be 0 or a power of 2 in 2..64";
  if (d->batch_hint < 0)
    return "batch_hint must be >= 0";
  if (d->prefetch & ~(BRG_PREFETCH_BATCH | BRG_PREFETCH_ROWS))
    return "prefetch must be a combination of brg_prefetch flags";
  if (d->dot_rows < 0 || d->dot_rows > BRG_MAX_DOT_ROWS || (d->dot_rows && d->dot_rows >= d->M))
    return "dot_rows must be 0, or 1..4 and less than M";
  if (d->dot_rows && d->mode == BRG_BATCH_ADDR)
    return "dot_rows needs the stride or offset batch mode";
  if (d->pad_q < 0 || (d->pad_q > 0 && (d->pad_len < d->pad_q || d->pad_len >= (int64_t)1 << 31)))
    return "pad_q must be 0, or > 0 with pad_q <= pad_len < 2^31";
  return validate_cols(d);
}

/* The name fragment of epilogue flags "e". */
static const char *epilogue_name(unsigned e)
{
  switch (e) {
  case BRG_EPI_BIAS_M: return "biasm";
  case BRG_EPI_BIAS_N: return "biasn";
  case BRG_EPI_RELU: return "relu";
  case BRG_EPI_BIAS_M_RELU: return "biasmrelu";
  case BRG_EPI_BIAS_N_RELU: return "biasnrelu";
  default: return "none";
  }
}

/* Write the batch-mode fragment of "d"'s name into "buf" of "n" bytes. */
static void batch_name(const brg_desc *d, char *buf, size_t n)
{
  if (d->mode == BRG_BATCH_OFFSETS)
    snprintf(buf, n, "offs");
  else if (d->mode == BRG_BATCH_ADDR)
    snprintf(buf, n, "addr");
  else
    snprintf(buf, n, "str%s%lld_%s%lld", d->stride_a < 0 ? "n" : "",
             (long long)(d->stride_a < 0 ? -d->stride_a : d->stride_a), d->stride_b < 0 ? "n" : "",
             (long long)(d->stride_b < 0 ? -d->stride_b : d->stride_b));
}

int brg_desc_name(const brg_desc *d, char *buf, size_t n)
{
  if (brg_desc_validate(d))
    return -1;
  char bm[64], isa[16], hint[192] = "";
  batch_name(d, bm, sizeof bm);
  if (d->isa == BRG_ISA_AVX512)
    snprintf(isa, sizeof isa, "avx512");
  else if (d->isa == BRG_ISA_AVX2)
    snprintf(isa, sizeof isa, "avx2");
  else
    snprintf(isa, sizeof isa, "gen%d", d->vlen ? d->vlen : 4);
  if (d->batch_hint > 0)
    snprintf(hint, sizeof hint, "_h%lld", (long long)d->batch_hint);
  if (d->prefetch)
    snprintf(hint + strlen(hint), sizeof hint - strlen(hint), "_pf%d", d->prefetch);
  if (d->dot_rows)
    snprintf(hint + strlen(hint), sizeof hint - strlen(hint), "_dot%d", d->dot_rows);
  if (d->pad_q)
    snprintf(hint + strlen(hint), sizeof hint - strlen(hint), "_pad%dx%lld", d->pad_q,
             (long long)d->pad_len);
  for (int s = 0; s < d->col_period; s++)
    snprintf(hint + strlen(hint), sizeof hint - strlen(hint), "%s%d-%d", s ? "." : "_col",
             d->col_lo[s], d->col_hi[s]);
  return snprintf(buf, n, "brg_f32_m%dn%dk%d_la%lld_lbk%lld_lbn%lld_lc%lld_%s_b%d_%s_%s%s", d->M,
                  d->N, d->K, (long long)d->lda, (long long)d->ldb_k, (long long)d->ldb_n,
                  (long long)d->ldc, bm, d->beta, epilogue_name(d->epilogue), isa, hint);
}

/* Is "feat" (such as "avx512f") enabled ("+feat") in LLVM's feature string "fs"? */
static int has_feature(const char *fs, const char *feat)
{
  size_t n = strlen(feat);
  for (const char *p = fs; (p = strstr(p, feat)); p += n) {
    int starts = p > fs && p[-1] == '+';
    int ends = p[n] == ',' || p[n] == '\0';
    if (starts && ends)
      return 1;
  }
  return 0;
}

brg_isa brg_isa_host(void)
{
  char *fs = LLVMGetHostCPUFeatures();
  brg_isa isa = BRG_ISA_GENERIC;
  if (fs && has_feature(fs, "avx2") && has_feature(fs, "fma"))
    isa = BRG_ISA_AVX2;
  if (fs && isa == BRG_ISA_AVX2 && has_feature(fs, "avx512f") && has_feature(fs, "avx512vl") &&
      has_feature(fs, "avx512bw") && has_feature(fs, "avx512dq"))
    isa = BRG_ISA_AVX512;
  LLVMDisposeMessage(fs);
  return isa;
}

brg_isa_info brg_isa_get_info(brg_isa isa, int vlen)
{
  brg_isa_info info;
  if (isa == BRG_ISA_AVX512) {
    info.vlen = 16;
    info.nregs = 32;
    info.has_opmask = 1;
  } else if (isa == BRG_ISA_AVX2) {
    info.vlen = 8;
    info.nregs = 16;
    info.has_opmask = 0;
  } else {
    info.vlen = vlen ? vlen : 4;
    info.nregs = 16;
    info.has_opmask = 0;
  }
  return info;
}

/* Widest column block for chunks of "nvec" vectors with "nregs" registers:
 * nvec*n accumulators + nvec A vectors + 1 broadcast, and 1 register per 16
 * left free: LLVM's scheduler hoists the broadcasts of the next K step, and
 * blocks that fill every register spill in the K loop (checked by
 * test_no_spills). */
static int n_max(int nvec, int nregs)
{
  int n = (nregs - nvec - 1 - nregs / 16) / nvec;
  if (n > 28)
    n = 28;
  return n < 1 ? 1 : n;
}

/* Split "total" items into at most 2 runs of balanced sizes <= "cap":
 * sizes[i] x counts[i], returns the number of runs. */
static int split_balanced(int total, int cap, int sizes[2], int counts[2])
{
  int nb = (total + cap - 1) / cap;
  int q = total / nb, r = total % nb;
  int nr = 0;
  if (r > 0) {
    sizes[nr] = q + 1;
    counts[nr++] = r;
  }
  sizes[nr] = q;
  counts[nr++] = nb - r;
  return nr;
}

/* Modelled cost (in FMA-pair cycles) of one K step of an "nvec" x "n" block:
 * throughput of 2 FMAs and 2 loads per cycle, FMA latency 4; loads break ties. */
static double step_cost(int nvec, int n)
{
  double fma = nvec * n / 2.0, lat = 4.0, ld = (nvec + n) / 2.0;
  double c = fma > lat ? fma : lat;
  return (c > ld ? c : ld) + 0.01 * (nvec + n); /* fewer loads break ties */
}

/* Fill the N groups of "mp" for chunks of "nvec" vectors; return its cost per K step. */
static double plan_n(brg_mplan *mp, int N, int nvec, int nregs)
{
  int sizes[2], counts[2];
  int nr = split_balanced(N, n_max(nvec, nregs), sizes, counts);
  double cost = 0;
  int n0 = 0;
  mp->nng = nr;
  for (int i = 0; i < nr; i++) {
    mp->ng[i] = (brg_ngroup){n0, sizes[i], counts[i]};
    n0 += sizes[i] * counts[i];
    cost += counts[i] * step_cost(nvec, sizes[i]);
  }
  return cost;
}

/* Fill the M groups of "p" for "M" with chunks of at most "mb" vectors;
 * return the modelled cost per K step of the whole tile. */
static double plan_m(brg_plan *p, int M, int N, int mb, int pad)
{
  int vl = p->info.vlen, nv = (M + vl - 1) / vl, tail = M - (nv - 1) * vl;
  int sizes[2], counts[2];
  int nr = split_balanced(nv, mb, sizes, counts);
  double cost = 0;
  int m0 = 0;
  p->nmp = 0;
  for (int i = 0; i < nr; i++) {
    int full = counts[i] - (i == nr - 1 && tail < vl); /* the last chunk holds the tail */
    int runs[2] = {full, counts[i] - full};
    for (int t = 0; t < 2; t++) {
      if (runs[t] == 0)
        continue;
      brg_mplan *mp = &p->mp[p->nmp++];
      /* without opmask registers a tail mask takes a vector register, padding masks one
       * per vector */
      int mask_reg = p->info.has_opmask ? 0 : pad ? sizes[i] : t;
      mp->m = (brg_mgroup){m0, sizes[i], runs[t], t ? tail : vl};
      m0 += runs[t] * sizes[i] * vl;
      cost += runs[t] * plan_n(mp, N, sizes[i], p->info.nregs - mask_reg);
    }
  }
  return cost;
}

/* K steps per K-loop iteration for chunks of "nvec" vectors: 4, as libxsmm
 * (all of K when K <= 4).  Not more: in a longer straight run of K steps
 * LLVM's scheduler hoists the loads of later steps and spills accumulators
 * (a fully unrolled K = 16 does).  With one vector and 16 registers each
 * broadcast has a single use and even 4 steps spill: 1 step per iteration
 * (the loop overhead hides behind the FMAs). */
static int k_unroll(int K, int nvec, int nregs)
{
  if (nvec == 1 && nregs <= 16)
    return 1;
  return K <= 4 ? K : 4;
}

brg_plan brg_plan_make(const brg_desc *d)
{
  brg_plan best, p;
  memset(&best, 0, sizeof best);
  memset(&p, 0, sizeof p);
  p.info = brg_isa_get_info(d->isa, d->vlen);
  int M = d->M - d->dot_rows; /* the rows of the vector blocks */
  int nv = (M + p.info.vlen - 1) / p.info.vlen;
  int mb_cap = (p.info.nregs - 2) / 2;
  if (mb_cap > BRG_MAX_VEC)
    mb_cap = BRG_MAX_VEC;
  double best_cost = -1;
  for (int mb = 1; mb <= mb_cap && mb <= nv; mb++) {
    double cost = plan_m(&p, M, d->N, mb, d->pad_q > 0);
    if (best_cost < 0 || cost < best_cost) {
      best = p;
      best_cost = cost;
    }
  }
  for (int i = 0; i < best.nmp; i++)
    best.mp[i].kunroll = k_unroll(d->K, best.mp[i].m.nvec, best.info.nregs);
  best.prefetch = d->prefetch;
  return best;
}
