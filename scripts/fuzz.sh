#!/usr/bin/env bash
# Build the front-end libFuzzer target with clang-19 (ASan + UBSan, coverage of support/, ir/
# and frontend/; tests/fuzz is configured as its own small project, so neither LLVM nor OpenMP
# is needed) in build-fuzz/ and run it for SECONDS (default 60), seeded with examples/ and
# tests/fuzz/regress/. Fails on any crash, leak, sanitizer report or timeout; the input that
# triggered it is left in build-fuzz/ (crash-*, leak-*, timeout-*): copy it to tests/fuzz/regress/
# once fixed, so the fuzz_replay test keeps it in the suite.
#   FUZZ_JOBS=N   run N fuzzing processes in parallel (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
BUILD_DIR=build-fuzz
CC_FUZZ=${CC_FUZZ:-clang-19}
if ! command -v "$CC_FUZZ" >/dev/null; then
  echo "fuzz.sh: $CC_FUZZ not found (apt-get install clang-19 libclang-rt-19-dev)" >&2
  exit 2
fi
mkdir -p "$BUILD_DIR"
if ! CC="$CC_FUZZ" cmake -S tests/fuzz -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >"$BUILD_DIR/configure.log" 2>&1; then
  cat "$BUILD_DIR/configure.log" >&2
  exit 2
fi
cmake --build "$BUILD_DIR" -j"$(nproc)" --target fuzz_frontend
mkdir -p "$BUILD_DIR/corpus"
cd "$BUILD_DIR"
jobs=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
  jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
fi
# -max_len: programs longer than 4 KB find nothing new; -timeout: one input may take 10 s at most.
./fuzz_frontend -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -dict=../tests/fuzz/bk.dict "${jobs[@]}" \
  corpus ../tests/fuzz/regress ../examples
