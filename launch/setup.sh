#!/usr/bin/env bash
# Set-up for KWM on Debian 12 / Ubuntu 24.04: installs the Debian packages that are missing (and
# nothing when none is), finds CUDA/NCCL under $CUDA_HOME or /usr/local/cuda, then configures and
# builds one CMake preset. Idempotent: a second run installs nothing and rebuilds only what changed.
#
#   launch/setup.sh [--preset NAME] [--target T] [--no-build] [--no-install]
#
# Presets: release (default), debug, asan, cuda, ci-release, ci-asan (see CMakePresets.json).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset=release
target=""
build=1
install=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    --target) target="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*" >&2; }

# package -> how to tell it is already there without dpkg (the GPU image has the libraries but no
# package registry, so "installed" is decided by what the build needs, not by dpkg alone).
declare -A probe=(
  [build-essential]="cmd:g++"
  [cmake]="cmd:cmake"
  [ninja-build]="cmd:ninja"
  [pkg-config]="cmd:pkg-config"
  [git]="cmd:git"
  [libeigen3-dev]="hdr:eigen3/Eigen/Core"
  [libopenmpi-dev]="cmd:mpicxx"
  [openmpi-bin]="cmd:mpirun"
  [libhdf5-dev]="hdr:hdf5/serial/hdf5.h|hdf5.h"
  [hdf5-tools]="cmd:h5dump"
  [libyaml-cpp-dev]="hdr:yaml-cpp/yaml.h"
  [libcli11-dev]="hdr:CLI/CLI.hpp"
  [libspdlog-dev]="hdr:spdlog/spdlog.h"
  [libfmt-dev]="hdr:fmt/format.h"
  [nlohmann-json3-dev]="hdr:nlohmann/json.hpp"
  [libgtest-dev]="hdr:gtest/gtest.h"
  [libgmock-dev]="hdr:gmock/gmock.h"
  [libbenchmark-dev]="hdr:benchmark/benchmark.h"
  [libsentencepiece-dev]="hdr:sentencepiece_processor.h"
  [clang-format]="cmd:clang-format"
  [python3-matplotlib]="py:matplotlib"
  [python3-h5py]="py:h5py"
  [python3-torch]="py:torch"
  [dpkg-dev]="cmd:dpkg-deb"
  [ca-certificates]="file:/etc/ssl/certs/ca-certificates.crt"
)

present() {
  local pkg="$1" spec kind what alt
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    return 0
  fi
  spec="${probe[$pkg]}"
  kind="${spec%%:*}"
  what="${spec#*:}"
  case "$kind" in
    cmd) command -v "$what" >/dev/null 2>&1 ;;
    file) [[ -e "$what" ]] ;;
    py) /usr/bin/python3 -c "import $what" >/dev/null 2>&1 ;;
    hdr)
      IFS='|' read -ra alts <<<"$what"
      for alt in "${alts[@]}"; do
        for dir in /usr/include /usr/local/include /opt/conda/include ${CPATH:+${CPATH//:/ }}; do
          [[ -e "$dir/$alt" ]] && return 0
        done
      done
      return 1 ;;
  esac
}

missing=()
for pkg in "${!probe[@]}"; do
  present "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -gt 0 ]]; then
  IFS=$'\n' missing=($(sort <<<"${missing[*]}")); unset IFS
  if [[ $install -eq 0 ]]; then
    say "missing packages (not installing, --no-install): ${missing[*]}"
  elif ! command -v apt-get >/dev/null 2>&1; then
    say "error: these packages are missing and this system has no apt-get: ${missing[*]}"
    say "install their equivalents, then run this script again"
    exit 1
  else
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then
      if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        say "error: missing packages and not root (no sudo): ${missing[*]}"; exit 1
      fi
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; then
      say "package lists look stale; running apt-get update"
      $sudo apt-get update -q || { say "error: apt-get update failed (no network?)"; exit 1; }
      $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" || {
        say "error: could not install: ${missing[*]}"; exit 1; }
    fi
  fi
else
  say "all required packages are present; skipping apt"
fi

cuda_home="${CUDA_HOME:-/usr/local/cuda}"
if [[ -x "$cuda_home/bin/nvcc" ]]; then
  say "CUDA found at $cuda_home (nvcc $("$cuda_home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'))"
  export PATH="$cuda_home/bin:$PATH"
else
  say "no CUDA under \$CUDA_HOME or /usr/local/cuda: building the CPU backend only"
fi

if [[ $build -eq 1 ]]; then
  cd "$root"
  say "configuring preset '$preset'"
  cmake --preset "$preset" >/dev/null
  say "building preset '$preset'"
  cmake --build --preset "$preset" -j "$(nproc)" ${target:+--target "$target"}
fi
