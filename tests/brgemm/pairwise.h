/* A greedy (AETG-style) pairwise covering array: rows of factor levels such
 * that every pair of levels of every two factors occurs in some row. */
#ifndef BRICK_TEST_PAIRWISE_H
#define BRICK_TEST_PAIRWISE_H

#define PW_MAX_FACTORS 12
#define PW_MAX_LEVELS 12

/* Fill "rows" (at most "max_rows" rows of "nf" ints) with a covering array
 * for "nf" factors of "levels[f]" levels each, deterministic in "seed".
 * Returns the number of rows, or -1 if "max_rows" is too small. */
int pw_generate(int nf, const int *levels, unsigned seed, int (*rows)[PW_MAX_FACTORS],
                int max_rows);

#endif
