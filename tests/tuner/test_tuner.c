/*
 * Check suite of tuner/, the parts that need no worker process:
 *
 * - the database: schema creation, migration from version 1, record and lookup, the best per
 *   key (never a failed candidate), a newer schema, a text file and a foreign SQLite database
 *   (exact messages), a damaged file (an error, never a crash);
 * - the cost model: a tile whose working set overflows L2 ranks worse than one that fits, full
 *   vectors along M beat M = 1, longer K and batch raise the microkernel's efficiency, a
 *   parallel loop beats none on two threads, Spearman's correlation on known data;
 * - the space: every generated candidate (default, random, enumerated, mutated, crossed) of
 *   every example kernel lowers, passes the legality check and prints back to its text;
 * - measurement: a worker that hangs is killed at the limit, one that crashes or prints
 *   garbage is a failure (fake workers written as shell scripts).
 */
#include "frontend.h"
#include "tuner.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool reduced(void) {
  const char *r = getenv("BRICK_TEST_REDUCED");
  return r && *r && strcmp(r, "0") != 0;
}

static char *temp_path(const char *name) {
  const char *base = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/brick-tuner-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* ---- programs ------------------------------------------------------------------------------ */

typedef struct loaded {
  bk_diag diag;
  bk_source *src;
  ir_program *prog;
} loaded;

static loaded *load_text(const char *text, const char *const *defines) {
  loaded *l = calloc(1, sizeof(*l));
  bk_diag_init(&l->diag, NULL, NULL);
  l->src = bk_source_new("test.bk", text, strlen(text));
  l->prog = ir_program_new(&l->diag, NULL);
  for (int i = 0; defines && defines[i]; i += 2)
    ir_program_override_size(l->prog, defines[i], atoll(defines[i + 1]));
  ck_assert(fe_parse(l->prog, l->src));
  return l;
}

static loaded *load_example(const char *name, const char *const *defines) {
  const char *root = getenv("BRICK_SOURCE_DIR");
  ck_assert_ptr_nonnull(root);
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/%s", root, name);
  bk_source *s = bk_source_read_file(path);
  ck_assert_msg(s, "cannot read %s", path);
  loaded *l = load_text(s->text, defines);
  bk_source_free(s);
  return l;
}

static void loaded_free(loaded *l) {
  ir_program_free(l->prog);
  bk_source_free(l->src);
  free(l);
}

static const char *const matmul_text =
    "size M = 64\nsize N = 64\nsize K = 64\n"
    "kernel mm(A: f32[M, K], B: f32[K, N]) -> (C: f32[M, N]) {\n"
    "  C[i, j] += A[i, k] * B[k, j]\n}\n";

#define matmul_text_for_space                                                                \
  "kernel mm(A: f32[48, 80], B: f32[80, 96]) -> (C: f32[48, 96]) {\n"                        \
  "  C[i, j] += A[i, k] * B[k, j]\n}\n"

static tune_key test_key(const ir_kernel *k, int threads) {
  cg_target t = {.triple = "x86_64-test", .cpu = "testcpu", .features = "+avx2,+fma"};
  tune_key key;
  tune_key_init(&key, k, &t, threads);
  return key;
}

/* ---- database ------------------------------------------------------------------------------ */

static int64_t sql_int(const char *path, const char *sql) {
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

START_TEST(db_schema_created) {
  char *path = temp_path("new.db"), *err = NULL;
  tune_db *db = tune_db_open(path, true, &err);
  ck_assert_msg(db, "%s", err);
  ck_assert_int_eq(tune_db_version(db), TUNE_DB_VERSION);
  tune_db_close(db);
  ck_assert_int_eq(sql_int(path, "PRAGMA user_version"), TUNE_DB_VERSION);
  ck_assert_int_eq(sql_int(path, "PRAGMA application_id"), 0x42524b54);
  ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                 "('tuning_key', 'candidate', 'best', 'meta')"), 4);
  char mode[16] = "";
  sqlite3 *h;
  sqlite3_open(path, &h);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL);
  if (sqlite3_step(st) == SQLITE_ROW)
    snprintf(mode, sizeof mode, "%s", sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  ck_assert_str_eq(mode, "wal");
  /* Opening it again changes nothing. */
  db = tune_db_open(path, true, &err);
  ck_assert_ptr_nonnull(db);
  tune_db_close(db);
  ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meta"), 1);
  free(path);
}
END_TEST

static void exec_sql(sqlite3 *h, const char *sql) {
  char *msg = NULL;
  ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql, msg);
}

START_TEST(db_migrates_from_version_1) {
  char *path = temp_path("v1.db"), *err = NULL;
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
  exec_sql(h, tune_db_migration(1));
  exec_sql(h, "PRAGMA application_id = 1112689492; PRAGMA user_version = 1;"
              "INSERT INTO tuning_key VALUES(1, 'mm', 'text', 't', 'c', 'f', 1, 1);"
              "INSERT INTO candidate(key_id, schedule, status, gflops, ms) VALUES"
              " (1, 'slow', 'ok', 10, 2.0), (1, 'wrong', 'wrong', NULL, NULL),"
              " (1, 'fast', 'ok', 20, 1.0), (1, 'crash', 'crash', NULL, NULL)");
  sqlite3_close(h);
  tune_db *db = tune_db_open(path, true, &err);
  ck_assert_msg(db, "%s", err);
  ck_assert_int_eq(tune_db_version(db), TUNE_DB_VERSION);
  tune_db_close(db);
  ck_assert_int_eq(sql_int(path, "PRAGMA user_version"), TUNE_DB_VERSION);
  ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM candidate"), 4);
  ck_assert_int_eq(sql_int(path, "SELECT candidate_id FROM best WHERE key_id = 1"), 3);
  ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM pragma_table_info('candidate') "
                                 "WHERE name IN ('model', 'brick_version')"), 2);
  free(path);
}
END_TEST

static tune_record rec(const char *schedule, tune_status st, double gflops, double ms) {
  return (tune_record){.schedule = (char *)schedule, .status = st, .gflops = gflops, .ms = ms,
                       .model = 1e6, .strategy = "test", .version = "0.1.0"};
}

static bool count_each(void *user, const tune_record *r) {
  (*(int *)user)++;
  return true;
}

START_TEST(db_record_and_lookup) {
  loaded *l = load_text(matmul_text, NULL);
  const ir_kernel *k = l->prog->kernels.data[0];
  tune_key key = test_key(k, 1), other = test_key(k, 2);
  char *path = temp_path("rec.db"), *err = NULL;
  tune_db *db = tune_db_open(path, true, &err);
  ck_assert_ptr_nonnull(db);
  tune_record r;
  bool found = true;
  ck_assert_int_eq(tune_db_best(db, &key, &r, &found, &err), 0);
  ck_assert(!found);
  int64_t id;
  ck_assert_int_eq(tune_db_record(db, &key, &(tune_record){.schedule = "a", .status = TUNE_OK,
                                  .gflops = 10, .ms = 2}, &id, &err), 0);
  ck_assert_int_eq(tune_db_record(db, &key, &(tune_record){.schedule = "w", .status = TUNE_WRONG,
                                  .gflops = 1000, .ms = 0.001}, NULL, &err), 0);
  ck_assert_int_eq(tune_db_record(db, &key, &(tune_record){.schedule = "t", .status = TUNE_TIMEOUT,
                                  .message = "killed"}, NULL, &err), 0);
  tune_record b = rec("b", TUNE_OK, 20, 1);
  ck_assert_int_eq(tune_db_record(db, &key, &b, &id, &err), 0);
  tune_record c = rec("c", TUNE_OK, 15, 1.5);
  ck_assert_int_eq(tune_db_record(db, &key, &c, NULL, &err), 0);
  ck_assert_int_eq(tune_db_record(db, &other, &(tune_record){.schedule = "o", .status = TUNE_OK,
                                  .gflops = 99, .ms = 0.1}, NULL, &err), 0);
  ck_assert_int_eq(tune_db_best(db, &key, &r, &found, &err), 0);
  ck_assert(found);
  ck_assert_str_eq(r.schedule, "b");
  ck_assert_int_eq(r.id, id);
  ck_assert_int_eq(r.status, TUNE_OK);
  ck_assert(r.gflops == 20 && r.ms == 1);
  ck_assert_str_eq(r.version, "0.1.0");
  tune_record_release(&r);
  int n = 0;
  ck_assert_int_eq(tune_db_each(db, &key, count_each, &n, &err), 0);
  ck_assert_int_eq(n, 5);
  ck_assert_int_eq(tune_db_best(db, &other, &r, &found, &err), 0);
  ck_assert_str_eq(r.schedule, "o");
  tune_record_release(&r);
  /* The best is the least median time: b measured twice more at 2.6 and 2.4 ms has a median
   * of 2.4, so c (1.5) is the best; a fourth measurement at 1.2 ms brings b's median to 1.8. */
  tune_record b2 = rec("b", TUNE_OK, 7.7, 2.6), b3 = rec("b", TUNE_OK, 8.3, 2.4);
  ck_assert_int_eq(tune_db_record(db, &key, &b2, NULL, &err), 0);
  ck_assert_int_eq(tune_db_record(db, &key, &b3, NULL, &err), 0);
  ck_assert_int_eq(tune_db_best(db, &key, &r, &found, &err), 0);
  ck_assert_str_eq(r.schedule, "c");
  tune_record_release(&r);
  /* A schedule found wrong once is never the best again: then a (2 ms) beats b (2.4 ms). */
  ck_assert_int_eq(tune_db_record(db, &key, &(tune_record){.schedule = "c", .status = TUNE_WRONG},
                                  NULL, &err), 0);
  ck_assert_int_eq(tune_db_best(db, &key, &r, &found, &err), 0);
  ck_assert_str_eq(r.schedule, "a");
  tune_record_release(&r);
  tune_record b4 = rec("b", TUNE_OK, 16.7, 1.2);
  ck_assert_int_eq(tune_db_record(db, &key, &b4, &id, &err), 0);
  ck_assert_int_eq(tune_db_best(db, &key, &r, &found, &err), 0);
  ck_assert_str_eq(r.schedule, "b");
  ck_assert_int_eq(r.id, id); /* the lower median record (1.2 of 1, 1.2, 2.4, 2.6 ms) */
  tune_record_release(&r);
  tune_db_close(db);
  /* A reader without create sees the same. */
  db = tune_db_open(path, false, &err);
  ck_assert_ptr_nonnull(db);
  ck_assert_int_eq(tune_db_best(db, &key, &r, &found, &err), 0);
  ck_assert_str_eq(r.schedule, "b");
  ck_assert_int_eq(r.id, id);
  tune_record_release(&r);
  tune_db_close(db);
  ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM tuning_key"), 2);
  /* found by a review: with the best's candidate deleted by hand, the rule picks again (b's
   * other records: median of 1, 2.4, 2.6 ms is 2.4; a is 2 ms, so a) instead of no record */
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
  char del[64];
  snprintf(del, sizeof del, "DELETE FROM candidate WHERE id = %lld", (long long)id);
  ck_assert_int_eq(sqlite3_exec(h, del, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(h);
  db = tune_db_open(path, false, &err);
  ck_assert_ptr_nonnull(db);
  ck_assert_int_eq(tune_db_best(db, &key, &r, &found, &err), 0);
  ck_assert(found);
  ck_assert_str_eq(r.schedule, "a");
  tune_record_release(&r);
  tune_db_close(db);
  tune_key_release(&key);
  tune_key_release(&other);
  loaded_free(l);
  free(path);
}
END_TEST

static void record_times(tune_db *db, const tune_key *key, const char *schedule,
                         const char *strategy, const double *ms, int n, int64_t *last) {
  char *err = NULL;
  for (int i = 0; i < n; i++) {
    tune_record r = rec(schedule, TUNE_OK, 1000 / ms[i], ms[i]);
    r.strategy = (char *)strategy;
    ck_assert_int_eq(tune_db_record(db, key, &r, last, &err), 0);
  }
}

static char *best_schedule(tune_db *db, const tune_key *key, tune_record *r) {
  bool found = false;
  char *err = NULL;
  ck_assert_int_eq(tune_db_best(db, key, r, &found, &err), 0);
  ck_assert(found);
  return r->schedule;
}

/* A fresh database "name" for the matmul's key, with everything to release after. */
typedef struct db_fixture {
  loaded *l;
  tune_key key;
  char *path;
  tune_db *db;
} db_fixture;

static db_fixture db_fixture_open(const char *name) {
  db_fixture f = {.l = load_text(matmul_text, NULL)};
  f.key = test_key(f.l->prog->kernels.data[0], 1);
  f.path = temp_path(name);
  char *err = NULL;
  f.db = tune_db_open(f.path, true, &err);
  ck_assert_msg(f.db, "%s", err ? err : "");
  return f;
}

static void db_fixture_close(db_fixture *f) {
  tune_db_close(f->db);
  tune_key_release(&f->key);
  loaded_free(f->l);
  free(f->path);
}

/* Found by a new user: the final round measured the finalists slower than the search had (a
 * load came up), their medians fell, and the best became a schedule measured once in the
 * search, which compile --db then used instead of the finalist the summary named. A schedule
 * confirmed by a final round now ranks above every schedule that was not. */
START_TEST(db_best_prefers_confirmed_finalists) {
  loaded *l = load_text(matmul_text, NULL);
  tune_key key = test_key(l->prog->kernels.data[0], 1);
  char *path = temp_path("confirm.db"), *err = NULL;
  tune_db *db = tune_db_open(path, true, &err);
  ck_assert_ptr_nonnull(db);
  int64_t id, a_median;
  /* the search: the default, finalist a, and b, fourth and not a finalist */
  record_times(db, &key, "d", "default", (double[]){1.40}, 1, &id);
  record_times(db, &key, "a", "evolutionary", (double[]){1.00}, 1, &id);
  record_times(db, &key, "b", "evolutionary", (double[]){1.10}, 1, &id);
  tune_record r;
  ck_assert_str_eq(best_schedule(db, &key, &r), "a"); /* nothing confirmed: least median */
  ck_assert(!r.confirmed && r.measurements == 1);
  tune_record_release(&r);
  /* the final round, under a load: a's median is 1.2 ms, b's single record 1.1 ms */
  record_times(db, &key, "d", TUNE_CONFIRM_STRATEGY, (double[]){1.45}, 1, &id);
  record_times(db, &key, "a", TUNE_CONFIRM_STRATEGY, (double[]){1.30}, 1, &a_median);
  record_times(db, &key, "d", TUNE_CONFIRM_STRATEGY, (double[]){1.35}, 1, &id);
  record_times(db, &key, "a", TUNE_CONFIRM_STRATEGY, (double[]){1.20}, 1, &a_median);
  ck_assert_str_eq(best_schedule(db, &key, &r), "a");
  ck_assert_int_eq(r.id, a_median);
  ck_assert(r.confirmed && r.measurements == 3 && r.ms == 1.20);
  tune_record_release(&r);
  /* another run confirms c, faster: confirmed against confirmed, the least median wins */
  record_times(db, &key, "c", "evolutionary", (double[]){0.95}, 1, &id);
  ck_assert_str_eq(best_schedule(db, &key, &r), "a");
  tune_record_release(&r);
  record_times(db, &key, "c", TUNE_CONFIRM_STRATEGY, (double[]){0.90, 1.00}, 2, &id);
  ck_assert_str_eq(best_schedule(db, &key, &r), "c");
  tune_record_release(&r);
  /* a failed measurement in a final round takes the confirmation back */
  ck_assert_int_eq(tune_db_record(db, &key, &(tune_record){.schedule = "c",
                   .status = TUNE_TIMEOUT, .strategy = TUNE_CONFIRM_STRATEGY}, NULL, &err), 0);
  ck_assert_str_eq(best_schedule(db, &key, &r), "a");
  ck_assert_int_eq(r.id, a_median);
  tune_record_release(&r);
  /* the list and a lookup without the best row agree */
  char *list = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&list, &size);
  ck_assert_int_eq(tune_db_list(db, out, false, &err), 0);
  fclose(out);
  char want[128];
  snprintf(want, sizeof want, "record %lld, ", (long long)a_median);
  ck_assert_msg(strstr(list, want) && strstr(list, "; median of 3 measurements, confirmed)\n  a\n"),
                "%s", list);
  free(list);
  tune_db_close(db);
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
  exec_sql(h, "DELETE FROM best");
  sqlite3_close(h);
  db = tune_db_open(path, false, &err);
  ck_assert_str_eq(best_schedule(db, &key, &r), "a");
  ck_assert(r.id == a_median && r.confirmed && r.measurements == 3);
  tune_record_release(&r);
  tune_db_close(db);
  tune_key_release(&key);
  loaded_free(l);
  free(path);
}
END_TEST

/* Equal median times at the stored precision: the greater median GFLOP/s wins, as it does in
 * the tuner's final round, which compares GFLOP/s. */
START_TEST(db_best_ties_by_gflops) {
  db_fixture f = db_fixture_open("tie.db");
  tune_db *db = f.db;
  tune_key key = f.key;
  char *err = NULL;
  tune_record a = rec("a", TUNE_OK, 100.0, 0.01), b = rec("b", TUNE_OK, 100.2, 0.01);
  ck_assert_int_eq(tune_db_record(db, &key, &a, NULL, &err), 0);
  ck_assert_int_eq(tune_db_record(db, &key, &b, NULL, &err), 0);
  tune_record r;
  ck_assert_str_eq(best_schedule(db, &key, &r), "b");
  tune_record_release(&r);
  db_fixture_close(&f);
}
END_TEST

/* Two confirmed finalists with equal medians (a kernel of a few microseconds is timed in
 * steps): the database takes the one the tuner's final round named (tune_db_prefer), not the
 * first in schedule order (found by CI: compile --db used the other one). The latest round's
 * winner is the best even with a lower median over all runs (that round measured the best
 * before it beside it), and stays so as records come in, until it is no longer confirmed
 * (a failed confirmation) or another round names another. */
START_TEST(db_prefer_wins_ties_only) {
  db_fixture f = db_fixture_open("prefer.db");
  tune_db *db = f.db;
  tune_key key = f.key;
  char *err = NULL;
  int64_t id;
  const char *const names[3] = {"a", "b", "c"};
  const double times[3] = {1.0, 1.0, 1.5};
  for (int i = 0; i < 3; i++) {
    record_times(db, &key, names[i], "evolutionary", &times[i], 1, &id);
    record_times(db, &key, names[i], TUNE_CONFIRM_STRATEGY, &times[i], 1, &id);
  }
  tune_record r;
  ck_assert_str_eq(best_schedule(db, &key, &r), "a");
  tune_record_release(&r);
  ck_assert_int_eq(tune_db_prefer(db, &key, "b", &err), 0);
  ck_assert_str_eq(best_schedule(db, &key, &r), "b");
  tune_record_release(&r);
  ck_assert_int_eq(tune_db_prefer(db, &key, "c", &err), 0);
  ck_assert_str_eq(best_schedule(db, &key, &r), "c");
  tune_record_release(&r);
  const double fast = 0.5;
  record_times(db, &key, "a", TUNE_CONFIRM_STRATEGY, &fast, 1, &id);
  ck_assert_str_eq(best_schedule(db, &key, &r), "c");
  tune_record_release(&r);
  tune_record failed = {.schedule = "c", .status = TUNE_CRASH, .strategy = TUNE_CONFIRM_STRATEGY,
                        .message = "crashed"};
  ck_assert_int_eq(tune_db_record(db, &key, &failed, NULL, &err), 0);
  ck_assert_str_eq(best_schedule(db, &key, &r), "a");
  tune_record_release(&r);
  db_fixture_close(&f);
}
END_TEST

START_TEST(db_key_ignores_spelling) {
  const char *b = "# the same matmul, spelled differently\nsize X = 64\n"
                  "kernel other(A: f32[X, X], B: f32[X, X]) -> (C: f32[X, X]) { C[i,j] += A[i,k]*B[k,j] }\n";
  loaded *l1 = load_text(matmul_text, NULL), *l2 = load_text(b, NULL);
  const char *const d[] = {"M", "32", NULL};
  loaded *l3 = load_text(matmul_text, d);
  char *t1 = tune_kernel_text(l1->prog->kernels.data[0]), *t2 = tune_kernel_text(l2->prog->kernels.data[0]),
       *t3 = tune_kernel_text(l3->prog->kernels.data[0]);
  ck_assert_str_eq(t1, t2);
  ck_assert_str_ne(t1, t3);
  ck_assert_ptr_nonnull(strstr(t1, "in A f32[64,64]"));
  free(t1);
  free(t2);
  free(t3);
  loaded_free(l1);
  loaded_free(l2);
  loaded_free(l3);
}
END_TEST

static void expect_open_error(const char *path, bool create, const char *want) {
  char *err = NULL;
  tune_db *db = tune_db_open(path, create, &err);
  ck_assert_ptr_null(db);
  ck_assert_ptr_nonnull(err);
  ck_assert_str_eq(err, want);
  free(err);
}

START_TEST(db_refuses_other_files) {
  char *text = temp_path("notes.db"), want[8192];
  write_text(text, "this is not a database, just some notes\n");
  snprintf(want, sizeof want, "'%s' is not a brick tuning database (file is not a database)", text);
  expect_open_error(text, false, want);
  expect_open_error(text, true, want);
  char *foreign = temp_path("foreign.db");
  sqlite3 *h;
  sqlite3_open(foreign, &h);
  exec_sql(h, "CREATE TABLE photos(id INTEGER PRIMARY KEY, name TEXT)");
  sqlite3_close(h);
  snprintf(want, sizeof want, "'%s' is not a brick tuning database (another application's "
           "SQLite database)", foreign);
  expect_open_error(foreign, true, want);
  ck_assert_int_eq(sql_int(foreign, "SELECT count(*) FROM sqlite_master"), 1); /* untouched */
  char *newer = temp_path("newer.db");
  sqlite3_open(newer, &h);
  exec_sql(h, "PRAGMA application_id = 1112689492; PRAGMA user_version = 99; CREATE TABLE x(y)");
  sqlite3_close(h);
  snprintf(want, sizeof want, "tuning database '%s' has schema version 99; this brick knows "
           "versions up to %d", newer, TUNE_DB_VERSION);
  expect_open_error(newer, true, want);
  char *missing = temp_path("missing.db");
  snprintf(want, sizeof want, "cannot open tuning database '%s': No such file or directory", missing);
  expect_open_error(missing, false, want);
  free(text);
  free(foreign);
  free(newer);
  free(missing);
}
END_TEST

/* Overwrite "n" bytes at "offset" of "path" with a pattern. */
static void damage(const char *path, long offset, int n) {
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  fseek(f, offset, SEEK_SET);
  for (int i = 0; i < n; i++)
    fputc((i * 37 + 11) & 0xff, f);
  fclose(f);
}

START_TEST(db_damaged_file_is_an_error) {
  loaded *l = load_text(matmul_text, NULL);
  tune_key key = test_key(l->prog->kernels.data[0], 1);
  char *path = temp_path("damaged.db"), *err = NULL;
  tune_db *db = tune_db_open(path, true, &err);
  char sched[200];
  for (int i = 0; i < 300; i++) {
    snprintf(sched, sizeof sched, "s0{brgemm(m=j/%d);order=i} padding padding padding %d", i, i);
    tune_record r = rec(sched, TUNE_OK, i, 1000.0 / (i + 1));
    ck_assert_int_eq(tune_db_record(db, &key, &r, NULL, &err), 0);
  }
  tune_db_close(db); /* checkpoints the WAL into the file */
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_gt(st.st_size, 8192);
  for (long page = 1; page < st.st_size / 4096; page++) /* every b-tree page header */
    damage(path, page * 4096, 16);
  db = tune_db_open(path, true, &err);
  bool failed = db == NULL;
  if (db) {
    tune_record r;
    bool found;
    int n = 0;
    FILE *null = fopen("/dev/null", "w");
    failed = tune_db_best(db, &key, &r, &found, &err) != 0 ||
             tune_db_each(db, &key, count_each, &n, &err) != 0 ||
             tune_db_list(db, null, false, &err) != 0;
    fclose(null);
    if (found && !err)
      tune_record_release(&r);
    tune_db_close(db);
  }
  ck_assert_msg(failed, "the damaged file went unnoticed");
  ck_assert_ptr_nonnull(err);
  ck_assert_msg(strstr(err, "tuning database") != NULL, "%s", err);
  free(err);
  tune_key_release(&key);
  loaded_free(l);
  free(path);
}
END_TEST

START_TEST(db_default_path_follows_xdg) {
  char *old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  char *p = tune_db_default_path();
  ck_assert_str_eq(p, "/x/cache/brick/tune.db");
  free(p);
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  p = tune_db_default_path();
  ck_assert_str_eq(p, "/home/u/.cache/brick/tune.db");
  free(p);
  if (old_xdg)
    setenv("XDG_CACHE_HOME", old_xdg, 1);
  free(old_xdg);
}
END_TEST

/* ---- cost model ------------------------------------------------------------------------------ */

static const tune_machine test_machine = {{32 << 10, 1 << 20, 32 << 20}, {8, 16, 16}, 16, 32, 1, 2};

/* Modelled cycles of schedule "text" for "l"'s kernel with "threads". */
static double cost_of(loaded *l, const char *text, int threads) {
  tune_space sp;
  tune_space_init(&sp, l->prog->kernels.data[0], l->prog->isl, &test_machine, threads, 1);
  tune_cand *c = tune_space_parse(&sp, text, TUNE_ORIGIN_DB);
  ck_assert_msg(c, "schedule does not lower: %s", text);
  double v = c->cost.total;
  tune_cand_free(c);
  tune_space_release(&sp);
  return v;
}

START_TEST(cost_working_set_over_l2_ranks_worse) {
  /* 1000, not 1024: a 4 KB row pitch would make both tiles miss L1 and L2 alike (set
   * conflicts), which the model also knows. */
  const char *const d[] = {"M", "1000", "N", "1000", "K", "1000", NULL};
  loaded *l = load_example("matmul.bk", d);
  /* A 64x256 and B 256x64 blocks (128 KB) fit L2; 512x1000 ones (4 MB) do not. */
  double fits = cost_of(l, "s0{brgemm(m=j/64,n=i/64,k=k/256);order=i/64,j/64,k/256}", 1);
  double spills = cost_of(l, "s0{brgemm(m=j/512,n=i/512,k=k);order=i/512,j/512}", 1);
  ck_assert_msg(fits < spills, "fits %g, spills %g", fits, spills);
  /* And a 1024 pitch costs more than a 1000 one for the same tiles (per flop). */
  const char *const d2[] = {"M", "1024", "N", "1024", "K", "1024", NULL};
  loaded *l2 = load_example("matmul.bk", d2);
  double aliased = cost_of(l2, "s0{brgemm(m=j/64,n=i/64,k=k/256);order=i/64,j/64,k/256}", 1);
  ck_assert_msg(aliased / (1024.0 * 1024 * 1024) > fits / (1000.0 * 1000 * 1000),
                "1024: %g, 1000: %g", aliased, fits);
  loaded_free(l2);
  loaded_free(l);
}
END_TEST

START_TEST(cost_full_vectors_beat_m1) {
  const char *const d[] = {"M", "256", "N", "256", "K", "256", NULL};
  loaded *l = load_example("matmul.bk", d);
  double full = cost_of(l, "s0{brgemm(m=j/64,n=i/16,k=k);order=i/16,j/64}", 1);
  double m16 = cost_of(l, "s0{brgemm(m=j/16,n=i/16,k=k);order=i/16,j/16}", 1);
  double m1 = cost_of(l, "s0{brgemm(m=j/1,n=i/16,k=k);order=i/16,j/1}", 1);
  ck_assert_msg(4 * full < m1 && 4 * m16 < m1, "m64 %g, m16 %g, m1 %g", full, m16, m1);
  ck_assert(tune_ukernel_efficiency(&test_machine, 64, 6, 64, 1) >
            tune_ukernel_efficiency(&test_machine, 1, 6, 64, 1));
  ck_assert(tune_ukernel_efficiency(&test_machine, 64, 6, 64, 1) >
            tune_ukernel_efficiency(&test_machine, 64, 6, 1, 1));
  ck_assert(tune_ukernel_efficiency(&test_machine, 64, 6, 16, 9) >
            tune_ukernel_efficiency(&test_machine, 64, 6, 16, 1));
  ck_assert(tune_ukernel_efficiency(&test_machine, 64, 6, 256, 4) > 0.8);
  ck_assert(tune_ukernel_efficiency(&test_machine, 64, 6, 256, 4) <= 1.0);
  loaded_free(l);
}
END_TEST

START_TEST(cost_parallel_balance) {
  const char *const d[] = {"M", "256", "N", "256", "K", "256", NULL};
  loaded *l = load_example("matmul.bk", d);
  double serial = cost_of(l, "s0{brgemm(m=j/64,n=i/16,k=k);order=i/16,j/64}", 2);
  double par = cost_of(l, "s0{brgemm(m=j/64,n=i/16,k=k);order=i/16,j/64;parallel=i/16}", 2);
  /* 3 tiles of 96 over 2 threads leave one idle half of the time; 2 of 128 do not. */
  double even = cost_of(l, "s0{brgemm(m=j/64,n=i/128,k=k);order=i/128,j/64;parallel=i/128}", 2);
  double odd = cost_of(l, "s0{brgemm(m=j/64,n=i/96,k=k);order=i/96,j/64;parallel=i/96}", 2);
  ck_assert_msg(par < 0.6 * serial, "parallel %g, serial %g", par, serial);
  ck_assert_msg(even < odd, "even %g, odd %g", even, odd);
  loaded_free(l);
}
END_TEST

START_TEST(spearman_known_values) {
  double x[] = {1, 2, 3, 4, 5}, up[] = {10, 20, 30, 40, 50}, down[] = {5, 4, 3, 2, 1};
  double ties[] = {1, 1, 2, 2, 3};
  ck_assert(fabs(tune_spearman(x, up, 5) - 1) < 1e-12);
  ck_assert(fabs(tune_spearman(x, down, 5) + 1) < 1e-12);
  ck_assert(fabs(tune_spearman(x, ties, 5) - 0.9486832980505138) < 1e-9);
  ck_assert(isnan(tune_spearman(x, up, 2)));
}
END_TEST

/* ---- the space --------------------------------------------------------------------------------- */

static void expect_legal(tune_space *sp, tune_cand *c, const char *what, int *n) {
  if (!c)
    return;
  ck_assert_msg(tune_space_check(sp, c), "%s candidate of %s fails the legality check: '%s'",
                what, sp->k->name, c->text);
  ck_assert_msg(c->cost.total > 0 && isfinite(c->cost.total), "%s: cost %g", c->text, c->cost.total);
  tune_cand *again = tune_space_parse(sp, c->text, TUNE_ORIGIN_DB);
  ck_assert_msg(again && strcmp(again->text, c->text) == 0, "%s does not parse back", c->text);
  tune_cand_free(again);
  (*n)++;
}

typedef struct enum_check {
  tune_space *sp;
  int n, max;
} enum_check;

static bool check_enum(void *user, tune_cand *c) {
  enum_check *e = user;
  expect_legal(e->sp, c, "enumerated", &e->n);
  tune_cand_free(c);
  return e->n < e->max;
}

/* Every kind of candidate of the first kernel of "l", "per" of each kind. */
static void check_space(loaded *l, const char *name, int threads, int per) {
  const ir_kernel *k = l->prog->kernels.data[0];
  tune_space sp;
  tune_space_init(&sp, k, l->prog->isl, &test_machine, threads, 7);
  int n = 0;
  tune_cand *def = tune_space_default(&sp);
  ck_assert_msg(def, "%s: no default", name);
  expect_legal(&sp, def, "default", &n);
  tune_cand_shrink(def); /* as the search keeps it: mutations start from its text */
  ck_assert(tune_cand_restore(&sp, def));
  for (int i = 0; i < def->s->stmts.len; i++) { /* the text is gone: no location may point into it */
    const sched_stmt *ss = &def->s->stmts.data[i];
    ck_assert_msg(!ss->loc.src && !ss->tail_loc.src && !ss->out_loc.src, "%s: a stale location", name);
  }
  tune_cand *pop[4] = {def};
  int npop = 1;
  for (int i = 0; i < per; i++) {
    tune_cand *c = tune_space_random(&sp, 20);
    expect_legal(&sp, c, "random", &n);
    if (c && npop < 4)
      pop[npop++] = c;
    else
      tune_cand_free(c);
  }
  for (int i = 0; i < per; i++) {
    tune_cand *c = tune_space_mutate(&sp, pop[i % npop], 20);
    expect_legal(&sp, c, "mutated", &n);
    tune_cand_free(c);
    c = tune_space_crossover(&sp, pop[i % npop], pop[(i + 1) % npop], 20);
    expect_legal(&sp, c, "crossed", &n);
    tune_cand_free(c);
  }
  enum_check e = {&sp, 0, per};
  tune_space_enumerate(&sp, 10000, check_enum, &e);
  ck_assert_msg(n > per, "%s: only %d candidates (%d enumerated)", name, n, e.n);
  for (int i = 0; i < npop; i++)
    tune_cand_free(pop[i]);
  tune_space_release(&sp);
}

static const char *const space_kernels[] = {
    matmul_text_for_space,
    "kernel conv(I: f32[1, 16, 14, 14], W: f32[32, 16, 3, 3]) -> (O: f32[1, 32, 14, 14]) {\n"
    "  O[n, k, p, q] += I[n, c, p + r - 1, q + s - 1] * W[k, c, r, s]\n}\n",
    "kernel conv_s2(I: f32[1, 16, 15, 15], W: f32[16, 16, 3, 3]) -> (O: f32[1, 16, 7, 7]) {\n"
    "  O[n, k, p, q] += I[n, c, 2*p + r, 2*q + s] * W[k, c, r, s]\n}\n",
    "kernel fc(X: f32[8, 64], W: f32[64, 32], b: f32[32]) -> (Y: f32[8, 32]) {\n"
    "  Y[n, j] += X[n, k] * W[k, j]\n  Y[n, j] = relu(Y[n, j] + b[j])\n}\n",
    /* PyTorch's W[out, in] with 17 images: a transposed target and a tail in the calls, whose
     * mutations hit lowering errors at the tail's location (once a freed schedule text) */
    "kernel fcpt(X: f32[17, 300], W: f32[300, 300]) -> (Y: f32[17, 300]) {\n"
    "  Y[n, k] += X[n, c] * W[k, c]\n}\n",
};

START_TEST(space_candidates_are_legal) {
  int per = reduced() ? 4 : 12;
  for (int i = 0; i < (int)(sizeof space_kernels / sizeof space_kernels[0]); i++) {
    loaded *l = load_text(space_kernels[i], NULL);
    check_space(l, l->prog->kernels.data[0]->name, 1, per);
    check_space(l, l->prog->kernels.data[0]->name, 2, per / 2);
    loaded_free(l);
  }
  /* And the examples that are there. */
  const char *root = getenv("BRICK_SOURCE_DIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/examples", root ? root : ".");
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d)) && (!reduced() || files < 2)) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 3, ".bk") != 0)
      continue;
    loaded *l = load_example(e->d_name, NULL);
    check_space(l, e->d_name, 1, per / 2);
    loaded_free(l);
    files++;
  }
  closedir(d);
  ck_assert_int_gt(files, 0);
}
END_TEST

/* A space too big to enumerate whole enumerates the main statement with the others at their
 * default: the statement the default fuses into it as an epilogue then needs its own loops
 * (the MLP's enumerated layers fuse none; it once gave no candidate at all). */
START_TEST(space_capped_enumeration) {
  loaded *l = load_example("mlp.bk", NULL);
  tune_space sp;
  tune_space_init(&sp, l->prog->kernels.data[0], l->prog->isl, &test_machine, 1, 3);
  enum_check e = {&sp, 0, 20};
  int64_t space = tune_space_enumerate(&sp, 50, check_enum, &e);
  ck_assert_msg(space > 0 && e.n > 0, "%lld schedules, %d candidates", (long long)space, e.n);
  tune_space_release(&sp);
  loaded_free(l);
}
END_TEST

START_TEST(space_never_repeats) {
  loaded *l = load_text(matmul_text, NULL);
  tune_space sp;
  tune_space_init(&sp, l->prog->kernels.data[0], l->prog->isl, &test_machine, 1, 3);
  char *texts[200];
  int n = 0;
  for (int i = 0; i < 200; i++) {
    tune_cand *c = tune_space_random(&sp, 20);
    if (!c)
      continue;
    for (int j = 0; j < n; j++)
      ck_assert_str_ne(texts[j], c->text);
    texts[n++] = strdup(c->text);
    tune_cand_free(c);
  }
  ck_assert_int_gt(n, 50);
  tune_space_mark_seen(&sp, "s0{loops;order=i,j,k}");
  ck_assert(tune_space_is_seen(&sp, "s0{loops;order=i,j,k}"));
  ck_assert(tune_space_is_seen(&sp, texts[0]));
  for (int i = 0; i < n; i++)
    free(texts[i]);
  tune_space_release(&sp);
  loaded_free(l);
}
END_TEST

/* ---- measurement ----------------------------------------------------------------------------------- */

/* A fake worker: a shell script with body "body". */
static char *fake_worker(const char *body) {
  char *path = temp_path("worker.sh");
  char text[1024];
  snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
  write_text(path, text);
  chmod(path, 0755);
  return path;
}

/* The matmul's text in an unlinked temporary file, as the tuner hands it to its workers. */
static FILE *matmul_source(void) {
  FILE *src = tmpfile();
  fputs(matmul_text, src);
  fflush(src);
  return src;
}

/* A random search of "trials" candidates of the matmul into "db", measured by worker "w". */
static tune_config fake_run_config(const char *db, const char *w, FILE *src, int trials) {
  return (tune_config){.db_path = db, .strategy = TUNE_RANDOM, .trials = trials, .seed = 1,
                       .version = "test",
                       .worker = {.binary = w, .source_fd = fileno(src), .kernel = "mm",
                                  .threads = 1, .timeout = 10}};
}

static tune_measurement run_fake(const char *body, double timeout) {
  char *w = fake_worker(body);
  FILE *src = matmul_source();
  tune_worker wk = {.binary = w, .source_fd = fileno(src), .kernel = "mm", .threads = 1,
                    .timeout = timeout};
  tune_measurement m;
  tune_measure(&wk, "s0{loops}", &m);
  fclose(src);
  free(w);
  return m;
}

START_TEST(measure_kills_a_hang) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  tune_measurement m = run_fake("exec sleep 100", 0.5);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  ck_assert_int_eq(m.status, TUNE_TIMEOUT);
  ck_assert_msg(dt < 5, "took %.1f s", dt);
}
END_TEST

START_TEST(measure_failures) {
  tune_measurement m = run_fake("kill -SEGV $$", 10);
  ck_assert_int_eq(m.status, TUNE_CRASH);
  ck_assert_ptr_nonnull(strstr(m.message, "signal 11"));
  m = run_fake("echo hello; exit 0", 10);
  ck_assert_int_eq(m.status, TUNE_ERROR);
  m = run_fake("echo 'brick: error: something' >&2; exit 2", 10);
  ck_assert_int_eq(m.status, TUNE_INVALID);
  ck_assert_str_eq(m.message, "brick: error: something");
  m = run_fake("echo 'brick-measure wrong err=0.5'; exit 3", 10);
  ck_assert_int_eq(m.status, TUNE_WRONG);
  ck_assert(m.err == 0.5);
  m = run_fake("test -r /dev/fd/3 && grep -q 'kernel mm' /dev/fd/3 && "
               "echo 'brick-measure ok ms=2.5 gflops=100 err=1e-07 reps=3'", 10);
  ck_assert_int_eq(m.status, TUNE_OK);
  ck_assert(m.ms == 2.5 && m.gflops == 100);
}
END_TEST

START_TEST(measure_stop_flag) {
  char *w = fake_worker("exec sleep 100");
  volatile sig_atomic_t stop = 1;
  tune_worker wk = {.binary = w, .source_fd = 0, .kernel = "mm", .timeout = 30, .stop = &stop};
  tune_measurement m;
  tune_measure(&wk, "s0{loops}", &m);
  ck_assert_int_eq(m.status, TUNE_STOPPED);
  free(w);
}
END_TEST

/* A worker that cannot measure the default schedule (a wrong executable: it prints no result)
 * stops the run with an error before anything is recorded: such records would keep the
 * candidates from being measured by a later run with a working worker. */
START_TEST(run_stops_when_the_worker_fails) {
  static const char *const bodies[3] = {"echo hello; exit 0", "echo 'usage' >&2; exit 2",
                                        "kill -SEGV $$"};
  loaded *l = load_text(matmul_text, NULL);
  char *w = fake_worker(bodies[_i]), *db = temp_path("fail.db");
  unlink(db);
  FILE *src = matmul_source();
  tune_config cfg = fake_run_config(db, w, src, 4);
  tune_result res;
  char *err = NULL;
  ck_assert_int_eq(tune_run(&cfg, l->prog->kernels.data[0], l->prog->isl, &res, &err), -1);
  ck_assert_msg(err && strstr(err, "the worker failed on the default schedule"), "%s",
                err ? err : "(no message)");
  ck_assert_int_eq(res.measured, 0);
  ck_assert_int_eq(sql_int(db, "SELECT count(*) FROM candidate"), 0);
  free(err);
  tune_result_release(&res);
  fclose(src);
  free(w);
  free(db);
  loaded_free(l);
}
END_TEST

/* A fake worker that counts its calls in the file "count" (n = 1, 2, ...) and reports the
 * GFLOP/s that the shell text "cases" sets into g for call n. */
static char *counting_worker(const char *count, const char *cases) {
  char body[768];
  snprintf(body, sizeof body,
           "n=$(($(cat %s 2>/dev/null || echo 0) + 1)); echo $n > %s\n%s\n"
           "awk \"BEGIN { printf \\\"brick-measure ok ms=%%.6f gflops=%%.4f err=0 reps=3\\\\n\\\", "
           "1000 / $g, $g }\"", count, count, cases);
  return fake_worker(body);
}

/* A whole run of the matmul kernel on database "db_name", timed by a counting_worker. */
typedef struct fake_run {
  loaded *l;
  char *count, *db, *w;
  FILE *src;
  tune_config cfg;
} fake_run;

static fake_run fake_run_open(const char *count_name, const char *db_name, const char *cases) {
  fake_run f = {.l = load_text(matmul_text, NULL), .count = temp_path(count_name),
                .db = temp_path(db_name), .src = matmul_source()};
  f.w = counting_worker(f.count, cases);
  f.cfg = fake_run_config(f.db, f.w, f.src, 6);
  return f;
}

static void fake_run_tune(fake_run *f, tune_result *res) {
  char *err = NULL;
  ck_assert_msg(tune_run(&f->cfg, f->l->prog->kernels.data[0], f->l->prog->isl, res, &err) == 0,
                "%s", err);
}

static void fake_run_close(fake_run *f) {
  fclose(f->src);
  free(f->w);
  free(f->count);
  free(f->db);
  loaded_free(f->l);
}

/* The same bug through a whole run, timed by a fake worker: the search measures the default
 * at 100 GFLOP/s and five candidates at 200, 190, 180, 170 and 160; the final round (the
 * default and the three fastest, twice, interleaved) is loaded: 40, 45, 50, 55. The winner is
 * the 180 one (median 55), and the database's best must be it, not the 170 one measured once. */
START_TEST(run_best_is_the_final_round_winner) {
  fake_run f = fake_run_open("count", "final.db",
                             "case $n in 1) g=100;; 2) g=200;; 3) g=190;; 4) g=180;; "
                             "5) g=170;; 6) g=160;;\n  *) g=$((40 + (n - 7) % 4 * 5));; esac");
  const char *db = f.db;
  tune_result res;
  fake_run_tune(&f, &res);
  ck_assert_int_eq(res.measured, 6);
  ck_assert_int_eq(sql_int(db, "SELECT count(*) FROM candidate"), 14);
  ck_assert(res.confirmed && res.confirm_default == 40 && res.confirm_best == 55);
  ck_assert(res.best_gflops == 180 && res.fastest_gflops == 200);
  ck_assert_ptr_nonnull(res.db_best_schedule);
  ck_assert_str_eq(res.db_best_schedule, res.best_schedule);
  ck_assert(res.db_best_confirmed && res.db_best_measurements == 3 && res.db_best_gflops == 55);
  ck_assert_int_eq(res.db_best_record,
                   sql_int(db, "SELECT candidate_id FROM best"));
  tune_result_release(&res);
  fake_run_close(&f);
}
END_TEST

/* A second run's final round measures the database's best from the first run beside its own
 * finalists, 3 times (once before the rounds, once per round), and the round's winner becomes
 * the database's best even though the earlier best's records from the other run (here made
 * 1000 GFLOP/s) have the greater median: medians taken at other times, under other loads, are
 * not compared. Timed by a fake worker: the second run's search measures its default and 5
 * candidates at 100, then the earlier best at 10, then rounds of the default, 3 finalists and
 * the earlier best at 50, 300, 60, 70, 10. */
START_TEST(run_measures_the_database_best) {
  fake_run f = fake_run_open("count2", "again.db",
                             "case $n in [1-6]) g=100;; 7) g=10;; *) set -- 50 300 60 70 10; "
                             "eval g=\\${$(((n - 8) % 5 + 1))};; esac");
  const char *db = f.db;
  tune_result res;
  fake_run_tune(&f, &res);
  char *first = strdup(res.db_best_schedule);
  tune_result_release(&res);
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
  char *sql = sqlite3_mprintf("INSERT INTO candidate(key_id, schedule, status, gflops, ms, strategy) "
                              "SELECT 1, %Q, 'ok', 1000, 1, 'confirm' FROM candidate LIMIT 9",
                              first);
  ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_free(sql);
  sqlite3_close(h);
  unlink(f.count);
  sql = sqlite3_mprintf("SELECT count(*) FROM candidate WHERE schedule = %Q AND strategy = 'confirm'",
                        first);
  int64_t before = sql_int(db, sql);
  fake_run_tune(&f, &res);
  ck_assert_int_eq(sql_int(db, sql), before + 3);
  ck_assert(res.confirmed && res.confirm_best == 300);
  ck_assert_str_ne(res.best_schedule, first);
  ck_assert_str_eq(res.db_best_schedule, res.best_schedule);
  sqlite3_free(sql);
  tune_result_release(&res);
  free(first);
  fake_run_close(&f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("tuner");
  TCase *db = tcase_create("db");
  tcase_add_test(db, db_schema_created);
  tcase_add_test(db, db_migrates_from_version_1);
  tcase_add_test(db, db_record_and_lookup);
  tcase_add_test(db, db_best_prefers_confirmed_finalists);
  tcase_add_test(db, db_best_ties_by_gflops);
  tcase_add_test(db, db_prefer_wins_ties_only);
  tcase_add_test(db, db_key_ignores_spelling);
  tcase_add_test(db, db_refuses_other_files);
  tcase_add_test(db, db_damaged_file_is_an_error);
  tcase_add_test(db, db_default_path_follows_xdg);
  suite_add_tcase(s, db);
  TCase *cost = tcase_create("cost");
  tcase_add_test(cost, cost_working_set_over_l2_ranks_worse);
  tcase_add_test(cost, cost_full_vectors_beat_m1);
  tcase_add_test(cost, cost_parallel_balance);
  tcase_add_test(cost, spearman_known_values);
  suite_add_tcase(s, cost);
  TCase *space = tcase_create("space");
  tcase_set_timeout(space, 120);
  tcase_add_test(space, space_candidates_are_legal);
  tcase_add_test(space, space_never_repeats);
  tcase_add_test(space, space_capped_enumeration);
  suite_add_tcase(s, space);
  TCase *meas = tcase_create("measure");
  tcase_add_test(meas, measure_kills_a_hang);
  tcase_add_test(meas, measure_failures);
  tcase_add_test(meas, measure_stop_flag);
  tcase_add_loop_test(meas, run_stops_when_the_worker_fails, 0, 3);
  tcase_add_test(meas, run_best_is_the_final_round_winner);
  tcase_add_test(meas, run_measures_the_database_best);
  suite_add_tcase(s, meas);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
