#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np */
/*
 * `brick tune` as a process ($BRICK_BINARY): options and their errors, records that
 * `brick compile --db` and `brick show --schedule --db` then use, the summary naming the record
 * compile --db uses, a damaged or foreign database (exact messages, exit 1), a tuner killed
 * with SIGKILL in the middle (the database stays valid and keeps every finished record), Ctrl-C
 * (a clean stop, exit 130), and two tuners writing one database at once. The kernel is a 64^3
 * matmul, so each measurement takes a fraction of a second.
 */
#include "../cli/run_cmd.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *const mm =
    "size M = 64\nsize N = 64\nsize K = 64\n"
    "kernel mm(A: f32[M, K], B: f32[K, N]) -> (C: f32[M, N]) {\n"
    "  C[i, j] += A[i, k] * B[k, j]\n}\n";

static char *path_in(const char *dir, const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

/* One integer from "sql" on database "path" (read-only, waiting for writers), or -1. */
static int64_t db_int(const char *path, const char *sql) {
  sqlite3 *h;
  int64_t v = -1;
  if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return v;
}

static char *db_text(const char *path, const char *sql) {
  sqlite3 *h;
  char *v = NULL;
  if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return v;
}

/* Start brick with "args" in "dir", its output to "log" (in "dir"); returns the pid. */
static pid_t start_brick(const char *dir, const char *log, const char *const *args) {
  const char *argv[32];
  int n = 0;
  argv[n++] = brick_binary();
  for (int i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char *logp = path_in(dir, log);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addchdir_np(&fa, dir);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  ck_assert_msg(rc == 0, "cannot start brick: %s", strerror(rc));
  posix_spawn_file_actions_destroy(&fa);
  free(logp);
  return pid;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Wait until "sql" on "db" gives at least "n" (at most "seconds"); returns the value. */
static int64_t wait_for(const char *db, const char *sql, int64_t n, int seconds) {
  int64_t v = -1;
  for (int i = 0; i < seconds * 20; i++) {
    if (access(db, F_OK) == 0 && (v = db_int(db, sql)) >= n)
      return v;
    sleep_ms(50);
  }
  return v;
}

static int wait_exit(pid_t pid, int seconds) {
  int ws;
  for (int i = 0; i < seconds * 20; i++) {
    if (waitpid(pid, &ws, WNOHANG) == pid)
      return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    sleep_ms(50);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &ws, 0);
  ck_abort_msg("brick did not exit within %d s", seconds);
  return -1;
}

static char *read_log(const char *dir, const char *log) {
  char *text = read_file(dir, log);
  return text ? text : strdup("");
}

static void expect_integrity(const char *db) {
  char *ok = db_text(db, "PRAGMA integrity_check");
  ck_assert_ptr_nonnull(ok);
  ck_assert_str_eq(ok, "ok");
  free(ok);
}

/* ---- options --------------------------------------------------------------------------------- */

static void expect_usage(const char *const *args, const char *msg) {
  cmd_result r = run_brick(NULL, args);
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, msg) != NULL, "expected '%s' in:\n%s", msg, r.err);
  cmd_result_release(&r);
}

START_TEST(tune_options) {
  cmd_result r = run_brick(NULL, (const char *[]){"tune", "--help", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "Usage: brick tune [OPTIONS] FILE.bk"));
  cmd_result_release(&r);
  expect_usage((const char *[]){"tune", NULL}, "brick: error: tune: no input file\n");
  expect_usage((const char *[]){"tune", "x.bk", "--strategy", "greedy", NULL},
               "brick: error: --strategy takes auto, exhaustive, random or evolutionary; got "
               "'greedy'\n");
  expect_usage((const char *[]){"tune", "x.bk", "--trials", "0", NULL},
               "brick: error: --trials expects a positive integer, got '0'\n");
  expect_usage((const char *[]){"tune", "x.bk", "--seconds", "soon", NULL},
               "brick: error: --seconds expects a positive number, got 'soon'\n");
  expect_usage((const char *[]){"tune", "--list", "x.bk", NULL},
               "brick: error: unexpected argument 'x.bk' with --list\n");
}
END_TEST

/* ---- records and compile --db ----------------------------------------------------------------- */

START_TEST(tune_then_compile_uses_the_best) {
  char *dir = temp_dir_new(), *db = path_in(dir, "t.db");
  write_file(dir, "mm.bk", mm);
  cmd_result r = run_brick(dir, (const char *[]){"tune", "mm.bk", "--trials", "5", "--db", "t.db",
                                                 "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "kernel mm: 5 measured"));
  ck_assert_ptr_nonnull(strstr(r.err, "brick: tune: [5] "));
  ck_assert_int_ge(db_int(db, "SELECT count(*) FROM candidate"), 5);
  ck_assert_int_eq(db_int(db, "SELECT count(*) FROM candidate WHERE status = 'wrong'"), 0);
  char *best = db_text(db, "SELECT c.schedule FROM best b JOIN candidate c ON c.id = b.candidate_id");
  int64_t id = db_int(db, "SELECT candidate_id FROM best");
  ck_assert_ptr_nonnull(best);
  /* the summary names the final round's winner, and it is what compile --db uses */
  char want[4096];
  snprintf(want, sizeof want, "  winner:  %s\n  compile --db uses the winner: record %lld, ", best,
           (long long)id);
  ck_assert_msg(strstr(r.out, want) && strstr(r.out, " GFLOP/s (median of 3 measurements, "
                                                     "confirmed)\n"), "%s", r.out);
  ck_assert_ptr_nonnull(strstr(r.out, "  search, one measurement each: default "));
  ck_assert_ptr_nonnull(strstr(r.out, "  final round, median of 3 interleaved measurements each: "
                                      "default "));
  cmd_result_release(&r);

  r = run_brick(dir, (const char *[]){"tune", "--list", "--db", "t.db", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "mm: "));
  ck_assert_ptr_nonnull(strstr(r.out, best));
  cmd_result_release(&r);

  snprintf(want, sizeof want, "mm: %s\n", best);
  r = run_brick(dir, (const char *[]){"show", "--schedule", "--db", "t.db", "--threads", "1",
                                      "mm.bk", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, want);
  cmd_result_release(&r);

  /* a schedule with a part for another kernel only: mm still gets its record (it got the
   * default) */
  char two[2048];
  snprintf(two, sizeof two, "%skernel sc(A: f32[4]) -> (B: f32[4]) {\n  B[i] = A[i] * 2\n}\n", mm);
  write_file(dir, "two.bk", two);
  snprintf(want, sizeof want, "mm: %s\nsc: s0{loops;order=i}\n", best);
  r = run_brick(dir, (const char *[]){"show", "--schedule", "--db", "t.db", "--threads", "1",
                                      "--with-schedule", "sc: s0{loops;order=i}", "two.bk", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, want);
  cmd_result_release(&r);

  r = run_brick(dir, (const char *[]){"compile", "mm.bk", "--db", "t.db", "--threads", "1", "-v",
                                      "-o", "mm", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  snprintf(want, sizeof want, "brick: kernel mm: tuned schedule from record %lld of t.db: ",
           (long long)id);
  ck_assert_msg(strstr(r.err, want) != NULL, "expected '%s' in:\n%s", want, r.err);
  ck_assert_ptr_nonnull(strstr(r.err, best));
  cmd_result_release(&r);
  r = run_brick(dir, (const char *[]){"run", "mm.bk", "--db", "t.db", "--threads", "1", "-v",
                                      NULL}); /* run -v names it too */
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, want) != NULL, "expected '%s' in:\n%s", want, r.err);
  cmd_result_release(&r);

  /* Another thread count is another key: the default, and -v says so. */
  r = run_brick(dir, (const char *[]){"compile", "mm.bk", "--db", "t.db", "--threads", "2", "-v",
                                      "-o", "mm2", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.err, "brick: kernel mm: no successful record in t.db for this "
                                      "kernel text, its sizes, this target and --threads; default "
                                      "schedule\n"));
  cmd_result_release(&r);

  /* A run in which every candidate fails (each killed at its time limit), the default among
   * them, is an error: nothing usable was recorded. */
  r = run_brick(dir, (const char *[]){"tune", "mm.bk", "--trials", "2", "--db", "t.db",
                                      "--threads", "1", "--timeout", "0.001", NULL});
  ck_assert_msg(r.status == 1, "exit %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "brick: tune: the default schedule failed (timeout") &&
                    strstr(r.err, "brick: error: kernel mm: every candidate failed, the default "
                                  "schedule among them"), "%s", r.err);
  cmd_result_release(&r);
  free(best);
  free(db);
  temp_dir_remove(dir);
}
END_TEST

/* The summary says which record compile --db uses: with no final round (one measurement) the
 * run's fastest, not confirmed; when the database holds a schedule confirmed faster by another
 * run and this run has no final round, that one, named as not this run's fastest; tune --list
 * and compile -v agree. A run with a final round measures the database's best there beside its
 * own finalists, 3 times, and the round's winner becomes the database's best. */
START_TEST(tune_summary_names_what_compile_uses) {
  char *dir = temp_dir_new(), *db = path_in(dir, "t.db");
  write_file(dir, "mm.bk", mm);
  cmd_result r = run_brick(dir, (const char *[]){"tune", "mm.bk", "--trials", "1", "--db", "t.db",
                                                 "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
  char *def = db_text(db, "SELECT schedule FROM candidate WHERE id = 1"), want[4096];
  snprintf(want, sizeof want, "  default: %s\n  fastest: %s\n  compile --db uses the fastest: "
           "record 1, ", def, def);
  ck_assert_msg(strstr(r.out, want) && strstr(r.out, " GFLOP/s (1 measurement, not confirmed)\n"),
                "%s", r.out);
  ck_assert_ptr_null(strstr(r.out, "final round"));
  cmd_result_release(&r);
  r = run_brick(dir, (const char *[]){"tune", "mm.bk", "--trials", "3", "--db", "t.db",
                                      "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
  cmd_result_release(&r);
  /* another run, say, confirmed a schedule of this one at an impossible speed, the winner of
   * its final round */
  char *other = db_text(db, "SELECT schedule FROM candidate WHERE schedule <> (SELECT c.schedule "
                            "FROM best b JOIN candidate c ON c.id = b.candidate_id) AND "
                            "strategy NOT IN ('default', 'confirm') ORDER BY id LIMIT 1");
  ck_assert_ptr_nonnull(other);
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
  char *sql = sqlite3_mprintf("INSERT INTO candidate(key_id, schedule, status, gflops, ms, "
                              "strategy) VALUES (1, %Q, 'ok', 1e6, 1e-6, 'confirm'), "
                              "(1, %Q, 'ok', 1e6, 1e-6, 'confirm'), "
                              "(1, %Q, 'ok', 1e6, 1e-6, 'confirm'), "
                              "(1, %Q, 'ok', 1e6, 1e-6, 'confirm'); "
                              "INSERT OR REPLACE INTO meta VALUES('round_winner:1', %Q)",
                              other, other, other, other, other);
  ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_free(sql);
  sqlite3_close(h);
  r = run_brick(dir, (const char *[]){"tune", "mm.bk", "--trials", "1", "--db", "t.db",
                                      "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
  int64_t id = db_int(db, "SELECT candidate_id FROM best");
  char *best = db_text(db, "SELECT c.schedule FROM best b JOIN candidate c ON c.id = b.candidate_id");
  ck_assert_str_eq(best, other);
  sql = sqlite3_mprintf("SELECT count(*) FROM candidate WHERE schedule = %Q AND status = 'ok'",
                        other);
  int64_t n = db_int(db, sql); /* 5, or 7 when it was one of the finalists */
  sqlite3_free(sql);
  snprintf(want, sizeof want, "  compile --db uses record %lld, not this run's fastest: the "
           "database's best over all runs, 1000000.00 GFLOP/s (median of %lld measurements, "
           "confirmed):\n           %s\n", (long long)id, (long long)n, other);
  ck_assert_msg(strstr(r.out, want), "expected '%s' in:\n%s", want, r.out);
  cmd_result_release(&r);
  r = run_brick(dir, (const char *[]){"tune", "--list", "--db", "t.db", NULL});
  snprintf(want, sizeof want, "best 1000000.00 GFLOP/s (1e-06 ms, record %lld, ", (long long)id);
  ck_assert_msg(strstr(r.out, want) && strstr(r.out, " measurements, confirmed)\n"), "%s", r.out);
  cmd_result_release(&r);
  r = run_brick(dir, (const char *[]){"compile", "mm.bk", "--db", "t.db", "--threads", "1", "-v",
                                      "-o", "mm", NULL});
  snprintf(want, sizeof want, "brick: kernel mm: tuned schedule from record %lld of t.db: "
           "1000000.00 GFLOP/s (1e-06 ms; median of %lld measurements, confirmed), measured ",
           (long long)id, (long long)n);
  ck_assert_msg(r.status == 0 && strstr(r.err, want) && strstr(r.err, other), "%s", r.err);
  cmd_result_release(&r);
  /* a final round: the database's best is measured in it (its records from elsewhere do not
   * count there) and the round's winner, whichever it is, is what compile --db uses */
  sql = sqlite3_mprintf("SELECT count(*) FROM candidate WHERE schedule = %Q AND strategy = 'confirm'",
                        other);
  int64_t confirms = db_int(db, sql);
  r = run_brick(dir, (const char *[]){"tune", "mm.bk", "--trials", "3", "--db", "t.db",
                                      "--threads", "1", NULL});
  ck_assert_msg(r.status == 0 && strstr(r.out, "final round") &&
                    strstr(r.out, "  compile --db uses the winner: record "), "%s%s", r.out, r.err);
  ck_assert_int_eq(db_int(db, sql), confirms + 3);
  sqlite3_free(sql);
  cmd_result_release(&r);
  free(best);
  free(other);
  free(def);
  free(db);
  temp_dir_remove(dir);
}
END_TEST

START_TEST(damaged_database_messages) {
  char *dir = temp_dir_new();
  write_file(dir, "mm.bk", mm);
  write_file(dir, "bad.db", "just some text, not a database\n");
  const char *want = "brick: error: 'bad.db' is not a brick tuning database (file is not a "
                     "database)\n";
  const char *const *cmds[] = {
      (const char *[]){"tune", "--list", "--db", "bad.db", NULL},
      (const char *[]){"compile", "mm.bk", "--db", "bad.db", NULL},
      (const char *[]){"show", "--schedule", "mm.bk", "--db", "bad.db", NULL},
      (const char *[]){"tune", "mm.bk", "--trials", "1", "--db", "bad.db", NULL},
  };
  for (int i = 0; i < 4; i++) {
    cmd_result r = run_brick(dir, cmds[i]);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, want);
    cmd_result_release(&r);
  }
  cmd_result r = run_brick(dir, (const char *[]){"compile", "mm.bk", "--db", "none.db", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.err, "brick: error: cannot open tuning database 'none.db': No such file or "
                          "directory\n");
  cmd_result_release(&r);
  temp_dir_remove(dir);
}
END_TEST

/* ---- killing and stopping ----------------------------------------------------------------------- */

static const char *const long_tune[] = {"tune", "mm.bk", "--trials", "500", "--db", "t.db",
                                        "--threads", "1", "--strategy", "random", NULL};

START_TEST(kill9_keeps_finished_records) {
  char *dir = temp_dir_new(), *db = path_in(dir, "t.db");
  write_file(dir, "mm.bk", mm);
  pid_t pid = start_brick(dir, "log", long_tune);
  int64_t seen = wait_for(db, "SELECT count(*) FROM candidate", 3, 90);
  ck_assert_msg(seen >= 3, "only %lld records after 90 s", (long long)seen);
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  ck_assert_int_eq(wait_exit(pid, 30), 128 + SIGKILL);
  expect_integrity(db);
  ck_assert_int_ge(db_int(db, "SELECT count(*) FROM candidate"), seen);
  ck_assert_int_eq(db_int(db, "SELECT c.status = 'ok' FROM best b JOIN candidate c "
                              "ON c.id = b.candidate_id"), 1);
  /* The database goes on working: list it, tune again. */
  cmd_result r = run_brick(dir, (const char *[]){"tune", "--list", "--db", "t.db", NULL});
  ck_assert_int_eq(r.status, 0);
  cmd_result_release(&r);
  int64_t before = db_int(db, "SELECT count(*) FROM candidate");
  r = run_brick(dir, (const char *[]){"tune", "mm.bk", "--trials", "2", "--db", "t.db",
                                      "--threads", "1", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  cmd_result_release(&r);
  ck_assert_int_ge(db_int(db, "SELECT count(*) FROM candidate"), before + 2);
  expect_integrity(db);
  free(db);
  temp_dir_remove(dir);
}
END_TEST

START_TEST(sigint_stops_cleanly) {
  char *dir = temp_dir_new(), *db = path_in(dir, "t.db");
  write_file(dir, "mm.bk", mm);
  pid_t pid = start_brick(dir, "log", long_tune);
  int64_t seen = wait_for(db, "SELECT count(*) FROM candidate", 2, 90);
  ck_assert_int_ge(seen, 2);
  ck_assert_int_eq(kill(pid, SIGINT), 0);
  int status = wait_exit(pid, 30);
  char *log = read_log(dir, "log");
  ck_assert_msg(status == 130, "exit %d:\n%s", status, log);
  ck_assert_msg(strstr(log, "interrupted") != NULL, "%s", log);
  free(log);
  expect_integrity(db);
  ck_assert_int_ge(db_int(db, "SELECT count(*) FROM candidate"), seen);
  free(db);
  temp_dir_remove(dir);
}
END_TEST

START_TEST(two_tuners_share_a_database) {
  char *dir = temp_dir_new(), *db = path_in(dir, "t.db");
  write_file(dir, "mm.bk", mm);
  pid_t a = start_brick(dir, "log1", (const char *[]){"tune", "mm.bk", "--trials", "5", "--db",
                                                     "t.db", "--threads", "1", "--seed", "1", NULL});
  pid_t b = start_brick(dir, "log2", (const char *[]){"tune", "mm.bk", "--trials", "5", "--db",
                                                     "t.db", "--threads", "1", "--seed", "2", NULL});
  int sa = wait_exit(a, 120), sb = wait_exit(b, 120);
  char *la = read_log(dir, "log1"), *lb = read_log(dir, "log2");
  ck_assert_msg(sa == 0 && sb == 0, "exit %d, %d:\n%s\n%s", sa, sb, la, lb);
  free(la);
  free(lb);
  expect_integrity(db);
  ck_assert_int_eq(db_int(db, "SELECT count(*) FROM candidate WHERE strategy <> 'confirm'"), 10);
  ck_assert_int_eq(db_int(db, "SELECT count(*) FROM tuning_key"), 1);
  ck_assert_int_eq(db_int(db, "SELECT count(*) FROM best"), 1);
  free(db);
  temp_dir_remove(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("tune_cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 200);
  tcase_add_test(tc, tune_options);
  tcase_add_test(tc, tune_then_compile_uses_the_best);
  tcase_add_test(tc, tune_summary_names_what_compile_uses);
  tcase_add_test(tc, damaged_database_messages);
  tcase_add_test(tc, kill9_keeps_finished_records);
  tcase_add_test(tc, sigint_stops_cleanly);
  tcase_add_test(tc, two_tuners_share_a_database);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
