#!/usr/bin/env bash
# Build brick if needed and run the whole test suite with ctest.
#   BUILD_DIR=dir      build directory (default: build)
#   CMAKE_ARGS="..."   extra arguments for cmake (e.g. -DBRICK_SANITIZE=ON)
#   CTEST_ARGS="..."   extra arguments for ctest (e.g. -L quick)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" ${CTEST_ARGS:-}
