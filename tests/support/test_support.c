/* Check suite for support/: the source manager and gcc-style diagnostics. */
#include "support.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(line_col_lookup) {
  bk_source *s = bk_source_new("t.bk", "ab\ncd\n\nx", 8);
  int line, col;
  bk_source_line_col(s, 0, &line, &col);
  ck_assert_int_eq(line, 1);
  ck_assert_int_eq(col, 1);
  bk_source_line_col(s, 4, &line, &col);
  ck_assert_int_eq(line, 2);
  ck_assert_int_eq(col, 2);
  bk_source_line_col(s, 7, &line, &col);
  ck_assert_int_eq(line, 4);
  ck_assert_int_eq(col, 1);
  size_t len;
  const char *t = bk_source_line(s, 2, &len);
  ck_assert_int_eq((int)len, 2);
  ck_assert(strncmp(t, "cd", 2) == 0);
  bk_source_free(s);
}
END_TEST

START_TEST(diag_caret_and_range) {
  bk_source *s = bk_source_new("conv.bk", "kernel k() {\n  O[i] += X[i]\n}\n", 30);
  bk_strbuf out;
  bk_strbuf_init(&out);
  bk_diag d;
  bk_diag_init(&d, bk_diag_sink_strbuf, &out);
  bk_error(&d, ((bk_loc){s, 23, 4}), "unknown tensor '%s'", "X");
  ck_assert_str_eq(bk_strbuf_cstr(&out), "conv.bk:2:11: error: unknown tensor 'X'\n"
                                          "    2 |   O[i] += X[i]\n"
                                          "      |           ^~~~\n");
  ck_assert_int_eq(d.nerrors, 1);
  bk_strbuf_release(&out);
  bk_source_free(s);
}
END_TEST

START_TEST(diag_without_location) {
  bk_strbuf out;
  bk_strbuf_init(&out);
  bk_diag d;
  bk_diag_init(&d, bk_diag_sink_strbuf, &out);
  bk_diag_report(&d, BK_SEV_ERROR, BK_NO_LOC, "bad option '%s'", "--x");
  ck_assert_str_eq(bk_strbuf_cstr(&out), "brick: error: bad option '--x'\n");
  bk_strbuf_release(&out);
}
END_TEST

START_TEST(arena_vectors) {
  bk_arena *a = bk_arena_new();
  BK_VEC(int) v = {0};
  for (int i = 0; i < 1000; i++)
    bk_vec_push(a, &v, i * 3);
  ck_assert_int_eq(v.len, 1000);
  for (int i = 0; i < 1000; i++)
    ck_assert_int_eq(v.data[i], i * 3);
  char *big = bk_arena_alloc(a, 1 << 20);
  ck_assert_int_eq(big[12345], 0);
  ck_assert_str_eq(bk_arena_printf(a, "%s-%d", "x", 7), "x-7");
  bk_arena_free(a);
}
END_TEST

int main(void) {
  Suite *s = suite_create("support");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, line_col_lookup);
  tcase_add_test(tc, diag_caret_and_range);
  tcase_add_test(tc, diag_without_location);
  tcase_add_test(tc, arena_vectors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
