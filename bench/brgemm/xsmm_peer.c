/* libxsmm 1.17 peer of bench_brgemm (see xsmm_peer.h).  The three kernels
 * are dispatched with alpha = beta = 1, no flags and no prefetch, exactly as
 * ../shared/anchors/brgemm.c does; strides and offsets are in bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsmm_peer.h"

#ifdef BRICK_HAVE_LIBXSMM
#include <libxsmm.h>

struct xsmm_peer {
  int mode;
  libxsmm_smmfunction_reducebatch_strd strd;
  libxsmm_smmfunction_reducebatch_offs offs;
  libxsmm_smmfunction_reducebatch_addr addr;
};

void xsmm_peer_init(void) { libxsmm_init(); }
void xsmm_peer_finalize(void) { libxsmm_finalize(); }

const char *xsmm_peer_version(void)
{
  static char buf[128]; /* written once, before any thread starts */
  snprintf(buf, sizeof buf, "libxsmm %s target=%s", LIBXSMM_CONFIG_VERSION,
           libxsmm_get_target_arch());
  return buf;
}

xsmm_peer *xsmm_peer_new(int m, int n, int k, int mode)
{
  const float alpha = 1.0f, beta = 1.0f;
  const int flags = LIBXSMM_GEMM_FLAG_NONE, pf = LIBXSMM_GEMM_PREFETCH_NONE;
  const libxsmm_blasint lda = m, ldb = k, ldc = m;
  xsmm_peer *p = calloc(1, sizeof *p);
  p->mode = mode;
  if (mode == 0)
    p->strd = libxsmm_smmdispatch_reducebatch_strd(
        m, n, k, (libxsmm_blasint)((size_t)m * k * 4), (libxsmm_blasint)((size_t)k * n * 4), &lda,
        &ldb, &ldc, &alpha, &beta, &flags, &pf);
  else if (mode == 1)
    p->offs = libxsmm_smmdispatch_reducebatch_offs(m, n, k, &lda, &ldb, &ldc, &alpha, &beta,
                                                   &flags, &pf);
  else
    p->addr = libxsmm_smmdispatch_reducebatch_addr(m, n, k, &lda, &ldb, &ldc, &alpha, &beta,
                                                   &flags, &pf);
  if (!p->strd && !p->offs && !p->addr) {
    free(p);
    return NULL;
  }
  return p;
}

void xsmm_peer_call(xsmm_peer *p, const float *a, const float *b, const float **ap,
                    const float **bp, const float **bp0, const unsigned long long *oa,
                    const unsigned long long *ob, float *c, int batch)
{
  const unsigned long long cnt = (unsigned long long)batch;
  if (p->mode == 0) {
    p->strd(a, b, c, &cnt);
  } else if (p->mode == 1) {
    p->offs(a, b, c, &cnt, oa, ob);
  } else {
    memcpy((void *)bp, (const void *)bp0, sizeof *bp * (size_t)batch);
    p->addr(ap, bp, c, &cnt);
  }
}

void xsmm_peer_free(xsmm_peer *p) { free(p); }

#else /* !BRICK_HAVE_LIBXSMM */

void xsmm_peer_init(void) {}
void xsmm_peer_finalize(void) {}
const char *xsmm_peer_version(void) { return "not available"; }
xsmm_peer *xsmm_peer_new(int m, int n, int k, int mode) { return NULL; }
void xsmm_peer_call(xsmm_peer *p, const float *a, const float *b, const float **ap,
                    const float **bp, const float **bp0, const unsigned long long *oa,
                    const unsigned long long *ob, float *c, int batch) {}
void xsmm_peer_free(xsmm_peer *p) {}
#endif
