#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own build dir and runs each for a fixed time
# from the committed seed corpora (tests/fuzz/corpus/<target>/). Every finding (a crash, a
# sanitizer report, an exception other than the clean error, a leak, a timeout) is printed with
# its input left in <build>/artifacts/ and its stack in <artifact>.txt.
#
# The checkpoint reader runs in pairs, half the time each: first the raw target (HDF5 parses the
# bytes in-process, about a hundred times faster: a diagnostic of HDF5 1.10 itself, whose findings
# inside libhdf5 are counted and fail only with KWM_FUZZ_STRICT=1), then the guarded target (as
# kwm reads: the metadata probe in a child process, then the read), started from the raw run's
# findings as well as the seeds. Any finding of a guarded target fails the run, inside libhdf5 or
# not: the guard must contain HDF5. KWM_FUZZ_RAW=0 gives the guarded targets all the time.
# docs/fuzzing.md.
#
#   tests/fuzz/run_fuzzers.sh [SECONDS_EACH]      (default 60; env KWM_FUZZ_BUILD_DIR)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds="${1:-60}"
build="${KWM_FUZZ_BUILD_DIR:-$root/build/fuzz}"
jobs="$(nproc)"

if ! command -v clang++ > /dev/null; then
  echo "[fuzz] clang++ not found: the fuzzers need clang with libFuzzer" >&2
  exit 1
fi
if [[ ! -f "$build/build.ninja" ]]; then
  # -O1 -g1 as in the ASan preset: enough for readable stacks, half the compile time of -O2 -g.
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DKWM_BUILD_FUZZERS=ON -DKWM_BUILD_TESTS=OFF -DKWM_BUILD_BENCH=OFF -DKWM_ENABLE_CUDA=OFF \
    -DKWM_WARNINGS_AS_ERRORS=ON > "$build.configure.log" 2>&1 ||
    { cat "$build.configure.log" >&2; exit 1; }
fi
targets=()
for reader in checkpoint_index checkpoint_rank; do
  [[ ${KWM_FUZZ_RAW:-1} == 0 ]] || targets+=("${reader}_fuzzer")
  targets+=("${reader}_guarded_fuzzer")
done
targets+=(run_config_fuzzer)
ninja -C "$build" -j "$jobs" kwm_fuzz_checkpoint_probe "${targets[@]}"

mkdir -p "$build/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
# An HDF5 loop must end in the probe's clean error before libFuzzer's 10 s timeout.
export KWM_CHECKPOINT_PROBE_TIMEOUT_S="${KWM_CHECKPOINT_PROBE_TIMEOUT_S:-3}"

# Where a finding happened: the first stack frame outside the sanitizer runtime, libc and the C++
# runtime. Inside libhdf5 (a crash or leak of HDF5 1.10 itself on a malformed file, which it is
# not hardened against: docs/fuzzing.md) it is an "hdf5" finding, anywhere else ours.
classify() {
  grep -E '^ +#[0-9]+ 0x' "$1" |
    grep -vE '__asan|__sanitizer|__interceptor|__ubsan| in (malloc|calloc|realloc|free|abort|raise)\b|libc\.so|pthread_kill|libstdc\+\+|std::terminate|__cxa_| fuzzer::' |
    head -1 | grep -q 'libhdf5' && echo hdf5 || echo ours
}

ours=0
hdf5=0
unreproduced=0
for target in "${targets[@]}"; do
  binary="$build/tests/fuzz/$target"
  raw="${target/_guarded/}"
  seeds="$root/tests/fuzz/corpus/$raw"  # a guarded target shares its raw twin's seeds
  work="$build/corpus/$target"  # grows across runs; the committed seeds stay untouched
  mkdir -p "$work"
  rm -f "$build/artifacts/$target-"*
  max_len=65536
  time_each=$seconds
  [[ $target == run_config_fuzzer ]] && max_len=4096
  [[ $target == checkpoint_* && ${KWM_FUZZ_RAW:-1} != 0 ]] && time_each=$(( (seconds + 1) / 2 ))
  extra=()
  if [[ $target == *_guarded_* ]]; then
    # The inputs on which the raw twin crashed, leaked or hung inside HDF5, through the guard.
    findings="$build/findings/$raw"
    rm -rf "$findings" && mkdir -p "$findings"
    for artifact in "$build/artifacts/$raw-"*; do
      [[ -f $artifact && $artifact != *.txt ]] && cp "$artifact" "$findings/"
    done
    extra=("$findings")
  fi
  echo "[fuzz] $target for ${time_each}s (seeds $(ls "$seeds" | wc -l)${extra:+, raw findings $(ls "${extra[0]}" | wc -l)})"
  # Fork mode keeps fuzzing after a finding, so one HDF5 crash does not end the run.
  "$binary" "$work" "$seeds" "${extra[@]}" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -max_total_time="$time_each" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/artifacts/$target-" > "$build/$target.log" 2>&1 || true
  grep -E "^#[0-9]+: cov" "$build/$target.log" | tail -1 || true
  for artifact in "$build/artifacts/$target-"*; do
    [[ -f $artifact && $artifact != *.txt ]] || continue
    timeout 120 "$binary" -timeout=10 -rss_limit_mb=2048 "$artifact" > "$artifact.txt" 2>&1 || true
    kind=$(classify "$artifact.txt")
    summary=$(grep -m1 -E "SUMMARY|ERROR: libFuzzer" "$artifact.txt" || true)
    if [[ -z $summary ]]; then
      # Saved by the fork-mode parent but silent when run alone (e.g. a timeout under load).
      unreproduced=$((unreproduced + 1))
      echo "[fuzz] not reproduced when re-run alone: $artifact"
    elif [[ $kind == hdf5 && $target != *_guarded_* ]]; then
      hdf5=$((hdf5 + 1))
      echo "[fuzz] HDF5 finding (inside libhdf5, not our code): $artifact: $summary"
    else
      ours=$((ours + 1))
      echo "[fuzz] FINDING in $target: $artifact: $summary" >&2
      grep -E '^ +#[0-9]+ 0x' "$artifact.txt" | head -12 >&2 || true
    fi
  done
done
echo "[fuzz] findings in our code: $ours; inside HDF5: $hdf5; not reproduced: $unreproduced" \
  "(stacks in $build/artifacts/*.txt)"
[[ $ours -eq 0 ]] || exit 1
# KWM_FUZZ_STRICT=1 also fails on HDF5's own crashes and leaks.
[[ $hdf5 -eq 0 || ${KWM_FUZZ_STRICT:-0} != 1 ]] || exit 1
