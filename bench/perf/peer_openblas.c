/* peer_openblas.c - OpenBLAS cblas_sgemm as the peer of brick's GEMMs.
 *
 * The call is the row-major C = A x B on the very arrays brick reads
 * (lda = K, ldb = N, ldc = N, alpha 1, beta 0), or C = A x B^T (ldb = K) for
 * the shapes that give B as N x K (PyTorch's W[out, in] of a linear layer). The thread count is set with
 * openblas_set_num_threads. OpenBLAS picks its kernels when the library is
 * loaded, from OPENBLAS_CORETYPE if set (the VM's shell sets Haswell: AVX2
 * kernels at half speed); bench_perf.c therefore re-executes itself without
 * that variable before OpenBLAS can read it. Without OpenBLAS this file
 * compiles to stubs and GEMMs run without a peer.
 */
#include "perf.h"

#ifdef PERF_HAVE_OPENBLAS
#include <cblas.h>

/* "OpenBLAS <config>, core <name>", or NULL when there is no OpenBLAS. */
const char *perf_openblas_version(void)
{
  static char buf[256];
  snprintf(buf, sizeof buf, "%s, core %s", openblas_get_config(),
           openblas_get_corename());
  return buf;
}

void perf_openblas_set_threads(int n)
{
  openblas_set_num_threads(n);
}

/* Run the GEMM described by "blas" (a perf_blas *). */
void perf_openblas_run(void *blas)
{
  const perf_blas *p = blas;
  const perf_gemm_dims *g = &p->shape->gemm;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, g->bt ? CblasTrans : CblasNoTrans, g->m, g->n, g->k, 1.0f,
              p->a, g->k, p->b, g->bt ? g->k : g->n, 0.0f, p->c, g->n);
}

#else

const char *perf_openblas_version(void)
{
  return NULL;
}

void perf_openblas_set_threads(int n)
{
  (void)n;
}

void perf_openblas_run(void *blas)
{
  (void)blas;
}

#endif
