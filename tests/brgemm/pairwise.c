/* Greedy pairwise covering arrays (see pairwise.h).
 *
 * Each new row starts from the first uncovered pair, fills the other factors
 * at random, then improves one factor at a time to the level covering the
 * most uncovered pairs; the best of a few such candidates is kept.  This
 * gives arrays a little larger than optimal (about the product of the two
 * largest level counts), which is all a test needs.
 */
#include <string.h>

#include "pairwise.h"

typedef struct pw {
  int nf;
  const int *levels;
  unsigned char cov[PW_MAX_FACTORS][PW_MAX_LEVELS][PW_MAX_FACTORS][PW_MAX_LEVELS];
  long left;
  unsigned seed;
} pw;

static unsigned pw_rand(pw *p)
{
  p->seed = p->seed * 1103515245u + 12345u;
  return p->seed >> 8;
}

/* Number of uncovered pairs row "r" would cover. */
static int gain(const pw *p, const int *r)
{
  int g = 0;
  for (int f = 0; f < p->nf; f++)
    for (int h = f + 1; h < p->nf; h++)
      g += !p->cov[f][r[f]][h][r[h]];
  return g;
}

/* Find the first uncovered pair; return 0 if none. */
static int first_uncovered(const pw *p, int *f, int *lf, int *h, int *lh)
{
  for (*f = 0; *f < p->nf; (*f)++)
    for (*h = *f + 1; *h < p->nf; (*h)++)
      for (*lf = 0; *lf < p->levels[*f]; (*lf)++)
        for (*lh = 0; *lh < p->levels[*h]; (*lh)++)
          if (!p->cov[*f][*lf][*h][*lh])
            return 1;
  return 0;
}

/* Build one candidate row "r" around the first uncovered pair; return its gain. */
static int candidate(pw *p, int *r)
{
  int f = 0, lf = 0, h = 0, lh = 0;
  first_uncovered(p, &f, &lf, &h, &lh);
  for (int i = 0; i < p->nf; i++)
    r[i] = (int)(pw_rand(p) % (unsigned)p->levels[i]);
  r[f] = lf;
  r[h] = lh;
  for (int i = 0; i < p->nf; i++) {
    if (i == f || i == h)
      continue;
    int best = r[i], bg = -1;
    for (int l = 0; l < p->levels[i]; l++) {
      r[i] = l;
      int g = gain(p, r);
      if (g > bg)
        bg = g, best = l;
    }
    r[i] = best;
  }
  return gain(p, r);
}

/* Mark the pairs of row "r" covered. */
static void cover(pw *p, const int *r)
{
  for (int f = 0; f < p->nf; f++)
    for (int h = f + 1; h < p->nf; h++)
      if (!p->cov[f][r[f]][h][r[h]]) {
        p->cov[f][r[f]][h][r[h]] = 1;
        p->left--;
      }
}

int pw_generate(int nf, const int *levels, unsigned seed, int (*rows)[PW_MAX_FACTORS],
                int max_rows)
{
  pw p; /* about 20 KB */
  memset(&p, 0, sizeof p);
  p.nf = nf;
  p.levels = levels;
  p.seed = seed;
  for (int f = 0; f < nf; f++)
    for (int h = f + 1; h < nf; h++)
      p.left += (long)levels[f] * levels[h];
  int n = 0;
  while (p.left > 0) {
    if (n == max_rows)
      return -1;
    int best[PW_MAX_FACTORS], bg = -1, r[PW_MAX_FACTORS];
    for (int t = 0; t < 8; t++) {
      int g = candidate(&p, r);
      if (g > bg)
        bg = g, memcpy(best, r, sizeof r);
    }
    cover(&p, best);
    memcpy(rows[n++], best, sizeof best);
  }
  return n;
}
