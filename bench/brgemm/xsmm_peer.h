/* The libxsmm 1.17 peer of bench_brgemm: its strd/offs/addr BRGEMM kernels
 * behind one interface.  Without libxsmm (BRICK_HAVE_LIBXSMM undefined) every
 * xsmm_peer_new returns NULL and the bench reports brick alone. */
#ifndef BRICK_BENCH_XSMM_PEER_H
#define BRICK_BENCH_XSMM_PEER_H

typedef struct xsmm_peer xsmm_peer;

void xsmm_peer_init(void);
void xsmm_peer_finalize(void);
/* "libxsmm <version> target=<arch>", or "not available". */
const char *xsmm_peer_version(void);

/* libxsmm's kernel for C(m x n) += sum_i A_i(m x k) B_i(k x n), tight leading
 * dimensions, beta 1, batch "mode" (0 stride, 1 offsets, 2 addresses, as
 * brg_batch_mode); NULL if libxsmm is missing or refuses. */
xsmm_peer *xsmm_peer_new(int m, int n, int k, int mode);

/* One call on "batch" blocks: "a", "b" with stride m*k / k*n (stride mode)
 * or byte offsets "oa", "ob"; or the address arrays "ap", "bp" (bp is
 * restored from "bp0" first: libxsmm 1.17's _addr kernel advances it). */
void xsmm_peer_call(xsmm_peer *p, const float *a, const float *b, const float **ap,
                    const float **bp, const float **bp0, const unsigned long long *oa,
                    const unsigned long long *ob, float *c, int batch);

void xsmm_peer_free(xsmm_peer *p);
#endif
