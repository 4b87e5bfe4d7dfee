#!/usr/bin/env bash
# Install brick's dependencies (Debian 12, as root or with sudo) and build it into build/.
#   BRICK_SKIP_APT=1   skip apt-get (dependencies already present)
#   BUILD_DIR=dir      build directory (default: build)
#   CMAKE_ARGS="..."   extra arguments for cmake
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config llvm-19-dev libisl-dev check libsqlite3-dev
          clang-19 libclang-rt-19-dev gnuplot-nox
          libxsmm-dev libdnnl-dev libopenblas-dev)

if [ "${BRICK_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

BUILD_DIR=${BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)"
