#!/bin/bash
# run.sh [bench_perf options] - build bench_perf if needed, run it, plot the result.
#
# Builds in $BRICK_BENCH_BUILD (default: build-bench at the top of the repository;
# configured RelWithDebInfo without tests), so an updated compiler recompiles every
# kernel first. Runs with OPENBLAS_CORETYPE unset (OpenBLAS then picks its AVX-512
# kernels; the VM's shell sets Haswell). Writes into bench/results/:
#   perf-STAMP.txt / .csv / .svg   this run's table, CSV and plot
#   perf-STAMP.sched.txt           the default schedule brick chose for each shape
#   perf-STAMP.md, perf.md         the results as a Markdown table (mdtable.sh), for README.md
#   perf.txt, perf.csv, perf.svg   copies of the latest run
# Options go to bench_perf (e.g. --filter conv --threads 1); see bench_perf --help.
# The last line printed is bench_perf's summary for the last thread count.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BRICK_BENCH_BUILD:-$root/build-bench}
results=$root/bench/results
mkdir -p "$results"

# --help and --list only print: nothing is built when bench_perf exists, no results are written
for a in "$@"; do
  case "$a" in
    -h | --help | --list)
      [ -x "$build/bench/perf/bench_perf" ] ||
        { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRICK_BUILD_TESTS=OFF >/dev/null &&
          cmake --build "$build" --target bench_perf -j "$(nproc)" >/dev/null; } || exit 1
      exec "$build/bench/perf/bench_perf" "$@" ;;
  esac
done

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRICK_BUILD_TESTS=OFF \
    > "$results/build.log" 2>&1 || { cat "$results/build.log"; exit 1; }
fi
echo "building bench_perf in $build (log: $results/build.log)"
cmake --build "$build" --target bench_perf -j "$(nproc)" >> "$results/build.log" 2>&1 \
  || { tail -40 "$results/build.log"; exit 1; }

unset OPENBLAS_CORETYPE
# libgomp's default (active) waiting makes every 2-thread region of OpenMP code (brick,
# oneDNN) wait for a time slice whenever another process shares the cores: an empty
# parallel region took 16 ms at load 5 on the 2-core VM. Passive waiting avoids that;
# set OMP_WAIT_POLICY=active to measure libgomp's default.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# OpenBLAS's own (pthread) workers spin for 2^28 cycles after each call by default: the brick
# sample that follows an OpenBLAS sample then shares its cores with them (a 1024^2 GEMM on 2
# threads measured 136 instead of 317 GFLOP/s). 2^4 cycles makes them sleep at once, as
# OMP_WAIT_POLICY=passive does for brick and oneDNN; OpenBLAS's own figures do not change.
export OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
base=$results/perf-$stamp
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+dirty" || true)
echo "brick $rev$dirty; $(uptime | sed 's/^ *//'); OMP_WAIT_POLICY=$OMP_WAIT_POLICY OPENBLAS_THREAD_TIMEOUT=$OPENBLAS_THREAD_TIMEOUT" | tee "$base.txt"
echo "writing $base.{txt,csv,svg} (copies: $results/perf.{txt,csv,svg})"
for bk in "$build"/bench/perf/kernels/*.bk; do
  "$build/brick" show "$bk" --schedule
done > "$base.sched.txt" 2>&1 || true
set +e
"$build/bench/perf/bench_perf" --csv "$base.csv" "$@" | tee -a "$base.txt"
status=${PIPESTATUS[0]}
set -e
cp "$base.txt" "$results/perf.txt"
if [ -s "$base.csv" ]; then
  cp "$base.csv" "$results/perf.csv"
  "$here/mdtable.sh" "$base.csv" > "$base.md" && cp "$base.md" "$results/perf.md"
  if "$here/plot.sh" "$base.csv" "$base.svg" 2> "$base.plot.log"; then
    cp "$base.svg" "$results/perf.svg"
    rm -f "$base.plot.log"
  else
    echo "plot.sh failed, see $base.plot.log" >&2
  fi
fi
exit "$status"
