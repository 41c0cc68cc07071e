#!/usr/bin/env bash
# Distributed equivalence of kwm train for one language-model learner at one rank count: the run
# at RANKS ranks repeated is bitwise equal to itself, and its model.h5 theta equals the one-rank
# run's within TOL (fp64 summation order), with the same steps, token counts and (within TOL)
# losses in metrics.jsonl. A loader that handed two ranks the same rows would learn from another
# batch than one rank does and fail the comparison.
# usage: equivalence_check.sh KWM SOURCE_DIR MPIEXEC LEARNER RANKS TOL [--set KEY=VALUE ...]
kwm=$1 src=$2 mpiexec=$3 learner=$4 ranks=$5 tol=$6
extra=("${@:7}")
source "$src/tests/lm_cli/lm_cli_common.sh"

train 1 --set learner.type="$learner" "${extra[@]}" --run-dir "$work/one"
train "$ranks" --set learner.type="$learner" "${extra[@]}" --run-dir "$work/a"
train "$ranks" --set learner.type="$learner" "${extra[@]}" --run-dir "$work/b"
compare theta "$work/a/model.h5" "$work/b/model.h5" 0
compare metrics "$work/a/metrics.jsonl" "$work/b/metrics.jsonl"
compare theta "$work/one/model.h5" "$work/a/model.h5" "$tol"
compare ranks "$work/one/metrics.jsonl" "$work/a/metrics.jsonl" "$tol"
# The model moved (the validation loss changed), so equal thetas are not an untouched init.
compare moved "$work/one/metrics.jsonl"
echo "ok: $learner at $ranks rank(s)"
