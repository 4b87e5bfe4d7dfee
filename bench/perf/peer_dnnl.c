/* peer_dnnl.c - oneDNN 2.6 forward convolution as the peer of brick's convs.
 *
 * The primitive is created with memory format "any" for source, weights and
 * destination, so oneDNN picks its best blocked layouts (nChw16c and the like)
 * and implementation (brgconv, jit) for the current OpenMP team size; it is
 * therefore recreated for each thread count. The plain NCHW / OIHW inputs are
 * reordered into those layouts once, outside the timing, and the output is
 * reordered back only for the check: the timed call is the convolution alone.
 * Note that oneDNN's brgconv skips the kernel taps that fall into the zero
 * padding, so on padded layers its rate counted over the nominal FLOPs can
 * exceed 100% of peak. Without oneDNN this file compiles to stubs.
 */
#include <stdlib.h>
#include <string.h>

#include "perf.h"

#ifdef PERF_HAVE_DNNL
#include <dnnl.h>

struct perf_dnnl {
  dnnl_engine_t eng;
  dnnl_stream_t strm;
  dnnl_primitive_t prim;
  dnnl_memory_t src, wei, dst;     /* in oneDNN's chosen layouts */
  dnnl_memory_desc_t plain_dst_md; /* NCHW, for the check */
  char impl[128];
};

#define OK(x) ((x) == dnnl_success)

const char *perf_dnnl_version(void)
{
  static char buf[64];
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, sizeof buf, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
  return buf;
}

/* Copy "from" into "to" (different layouts) with a reorder primitive. */
static int reorder(perf_dnnl *d, dnnl_memory_t from, dnnl_memory_t to)
{
  const dnnl_memory_desc_t *fmd, *tmd;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t r = NULL;
  int ok = OK(dnnl_memory_get_memory_desc(from, &fmd)) &&
           OK(dnnl_memory_get_memory_desc(to, &tmd)) &&
           OK(dnnl_reorder_primitive_desc_create(&pd, fmd, d->eng, tmd, d->eng, NULL)) &&
           OK(dnnl_primitive_create(&r, pd));
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  ok = ok && OK(dnnl_primitive_execute(r, d->strm, 2, args)) && OK(dnnl_stream_wait(d->strm));
  dnnl_primitive_destroy(r);
  dnnl_primitive_desc_destroy(pd);
  return ok ? 0 : -1;
}

/* Create a memory of oneDNN's layout "md" and fill it from the plain "data" of "plain". */
static int import(perf_dnnl *d, const dnnl_memory_desc_t *md, const dnnl_memory_desc_t *plain,
                  const float *data, dnnl_memory_t *out)
{
  dnnl_memory_t m = NULL;
  int ok = OK(dnnl_memory_create(out, md, d->eng, DNNL_MEMORY_ALLOCATE)) &&
           OK(dnnl_memory_create(&m, plain, d->eng, (void *)data)) && reorder(d, m, *out) == 0;
  dnnl_memory_destroy(m);
  return ok ? 0 : -1;
}

/* Create the convolution primitive of "c" with every format "any"; set the
 * plain descriptors in "ps" (src, weights, dst). Returns the primitive desc. */
static dnnl_primitive_desc_t conv_pd(perf_dnnl *d, const perf_conv_dims *c, dnnl_memory_desc_t ps[3])
{
  dnnl_dims_t sd = {c->n, c->c, c->h, c->w}, wd = {c->k, c->c, c->r, c->s};
  dnnl_dims_t dd = {c->n, c->k, perf_conv_p(c), perf_conv_q(c)};
  dnnl_dims_t strides = {c->stride, c->stride}, pad = {c->pad, c->pad};
  dnnl_memory_desc_t smd, wmd, dmd;
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t pd = NULL;
  int ok = OK(dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, dnnl_format_tag_any)) &&
           OK(dnnl_memory_desc_init_by_tag(&wmd, 4, wd, dnnl_f32, dnnl_format_tag_any)) &&
           OK(dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_format_tag_any)) &&
           OK(dnnl_memory_desc_init_by_tag(&ps[0], 4, sd, dnnl_f32, dnnl_nchw)) &&
           OK(dnnl_memory_desc_init_by_tag(&ps[1], 4, wd, dnnl_f32, dnnl_oihw)) &&
           OK(dnnl_memory_desc_init_by_tag(&ps[2], 4, dd, dnnl_f32, dnnl_nchw)) &&
           OK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                 dnnl_convolution_direct, &smd, &wmd, NULL, &dmd,
                                                 strides, pad, pad)) &&
           OK(dnnl_primitive_desc_create(&pd, &cd, NULL, d->eng, NULL));
  return ok ? pd : NULL;
}

/* Set up the convolution "s" on the plain NCHW input "in" and OIHW weights "wt"
 * for the current OpenMP team size. Returns NULL when oneDNN fails. */
perf_dnnl *perf_dnnl_new(const perf_shape *s, const float *in, const float *wt)
{
  perf_dnnl *d = calloc(1, sizeof *d);
  dnnl_memory_desc_t ps[3];
  dnnl_primitive_desc_t pd = NULL;
  const char *impl = NULL;
  int ok = OK(dnnl_engine_create(&d->eng, dnnl_cpu, 0)) &&
           OK(dnnl_stream_create(&d->strm, d->eng, dnnl_stream_default_flags)) &&
           (pd = conv_pd(d, &s->conv, ps)) != NULL &&
           OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)) &&
           import(d, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), &ps[0], in,
                  &d->src) == 0 &&
           import(d, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &ps[1], wt,
                  &d->wei) == 0 &&
           OK(dnnl_memory_create(&d->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
                                 d->eng, DNNL_MEMORY_ALLOCATE)) &&
           OK(dnnl_primitive_create(&d->prim, pd));
  if (ok) {
    snprintf(d->impl, sizeof d->impl, "%s", impl);
    d->plain_dst_md = ps[2];
  }
  dnnl_primitive_desc_destroy(pd);
  if (!ok) {
    perf_dnnl_free(d);
    return NULL;
  }
  return d;
}

/* Run the convolution of "d" (a perf_dnnl *) once. */
void perf_dnnl_run(void *d)
{
  perf_dnnl *p = d;
  dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->wei}, {DNNL_ARG_DST, p->dst}};
  dnnl_primitive_execute(p->prim, p->strm, 3, args);
  dnnl_stream_wait(p->strm);
}

/* Copy the last result of "d" into the plain NCHW array "out". */
int perf_dnnl_output(perf_dnnl *d, float *out)
{
  dnnl_memory_t m = NULL;
  int ok = OK(dnnl_memory_create(&m, &d->plain_dst_md, d->eng, out)) && reorder(d, d->dst, m) == 0;
  dnnl_memory_destroy(m);
  return ok ? 0 : -1;
}

/* oneDNN's name for the implementation it picked ("brg:avx512_core", ...). */
const char *perf_dnnl_impl(const perf_dnnl *d)
{
  return d->impl;
}

void perf_dnnl_free(perf_dnnl *d)
{
  if (!d)
    return;
  dnnl_primitive_destroy(d->prim);
  dnnl_memory_destroy(d->src);
  dnnl_memory_destroy(d->wei);
  dnnl_memory_destroy(d->dst);
  dnnl_stream_destroy(d->strm);
  dnnl_engine_destroy(d->eng);
  free(d);
}

#else

const char *perf_dnnl_version(void)
{
  return NULL;
}

perf_dnnl *perf_dnnl_new(const perf_shape *s, const float *in, const float *wt)
{
  (void)s, (void)in, (void)wt;
  return NULL;
}

void perf_dnnl_run(void *d)
{
  (void)d;
}

int perf_dnnl_output(perf_dnnl *d, float *out)
{
  (void)d, (void)out;
  return -1;
}

const char *perf_dnnl_impl(const perf_dnnl *d)
{
  (void)d;
  return "";
}

void perf_dnnl_free(perf_dnnl *d)
{
  (void)d;
}

#endif
