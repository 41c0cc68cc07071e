#!/usr/bin/env bash
# Bad input to kwm train / eval / generate for language models: exit status 2, exactly one line on
# stderr naming the problem, and no file of the run directory changed (or created).
# usage: bad_input_check.sh KWM SOURCE_DIR MPIEXEC
kwm=$1 src=$2 mpiexec=$3
source "$src/tests/lm_cli/lm_cli_common.sh"

snapshot() { if [ -d "$1" ]; then (cd "$1" && find . -type f -exec md5sum {} + | sort); else echo absent; fi; }
# expect_error DIR PATTERN COMMAND...: COMMAND fails with status 2 and one stderr line matching
# PATTERN; DIR (a run directory, or a path that must stay absent) is left as it was.
expect_error() {
  local dir=$1 pattern=$2; shift 2
  local before after err rc=0
  before=$(snapshot "$dir")
  err=$("$@" 2>&1 > /dev/null) || rc=$?
  [ "$rc" = 2 ] || fail "expected exit status 2, got $rc from: $* -> $err"
  [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "expected one line on stderr from: $* -> $err"
  grep -q -- "$pattern" <<< "$err" || fail "the error does not name '$pattern': $err"
  after=$(snapshot "$dir")
  [ "$before" = "$after" ] || fail "files changed by the failed command: $*"
  echo "ok: $err"
}
tiny=(--config "$config" --quiet --set data.corpus.dir="$work/text" --set train.tokens=384)

train 1 --set train.tokens=384 --set train.checkpoint_every=1 --run-dir "$work/run"
run=$work/run

# kwm eval --text: an empty file, a binary file, a missing file.
: > "$work/empty.txt"
printf 'text\0with a NUL byte' > "$work/binary.txt"
expect_error "$run" "empty.txt: empty" "$kwm" eval --run-dir "$run" --text "$work/empty.txt"
expect_error "$run" "binary.txt: binary" "$kwm" eval --run-dir "$run" --text "$work/binary.txt"
expect_error "$run" "missing.txt: .*not found" "$kwm" eval --run-dir "$run" --text "$work/missing.txt"
# kwm generate: a prompt longer than the context (16 byte tokens).
expect_error "$run" "longer than the model's context of 16" \
  "$kwm" generate --run-dir "$run" --prompt "seventeen bytes!!" --tokens 4
"$kwm" generate --run-dir "$run" --prompt "sixteen bytes ok" --tokens 4 > /dev/null ||
  fail "a prompt of exactly the context was refused"

# Tokenizer files swapped for another run's (two BPE runs, different vocabularies).
bpe=(--set data.tokenizer.type=bpe --set train.tokens=192)
train 1 "${bpe[@]}" --set data.tokenizer.vocab_size=400 --run-dir "$work/bpe400"
train 1 "${bpe[@]}" --set data.tokenizer.vocab_size=420 --set train.checkpoint_every=1 \
  --run-dir "$work/bpe420"
cp "$work/bpe400"/tokenizer.* "$work/bpe420/"
expect_error "$work/bpe420" "does not match the one model.h5 was trained with" \
  "$kwm" eval --run-dir "$work/bpe420"
expect_error "$work/bpe420" "does not match the one model.h5 was trained with" \
  "$kwm" generate --run-dir "$work/bpe420" --prompt "The"
expect_error "$work/bpe420" "tokens/train.tokens was made with tokenizer bpe-420-.* but the tokenizer in use is bpe-400-" \
  "$kwm" train "${tiny[@]}" "${bpe[@]}" --set data.tokenizer.vocab_size=420 \
  --run-dir "$work/bpe420" --resume

# Malformed configs: nothing is written, not even the run directory.
fresh=$work/never
expect_error "$fresh" "unknown key 'train.batchsize'" \
  "$kwm" train "${tiny[@]}" --set train.batchsize=4 --run-dir "$fresh"
expect_error "$fresh" "unknown learner 'kalman'" \
  "$kwm" train "${tiny[@]}" --set learner.type=kalman --run-dir "$fresh"
expect_error "$fresh" "learner.*noize" \
  "$kwm" train "${tiny[@]}" --set learner.noize=1 --run-dir "$fresh"
expect_error "$fresh" "model.*d_modle" \
  "$kwm" train "${tiny[@]}" --set model.d_modle=8 --run-dir "$fresh"
expect_error "$fresh" "train.length 17 exceeds model.context 16" \
  "$kwm" train "${tiny[@]}" --set train.length=17 --run-dir "$fresh"
expect_error "$fresh" "train.head_bias_init' must be zero or unigram; got 'bigram'" \
  "$kwm" train "${tiny[@]}" --set train.head_bias_init=bigram --run-dir "$fresh"
expect_error "$fresh" "train.test_tokens' must be >= 0" \
  "$kwm" train "${tiny[@]}" --set train.test_tokens=-5 --run-dir "$fresh"
expect_error "$fresh" "learner.subspace.rank must be >= 1; got 0" \
  "$kwm" train "${tiny[@]}" --set learner.type=mezo --set 'learner.subspace={type: lora, rank: 0}' \
  --run-dir "$fresh"
expect_error "$fresh" "learner.process_noise_mode" \
  "$kwm" train "${tiny[@]}" --set learner.type=kwm-ensemble --set learner.process_noise_mode=drift \
  --run-dir "$fresh"
# Under mpirun every rank finds it: rank 0's line names it, MPI_Abort ends the job with status 2
# (Open MPI adds its own abort banner, so this case is not one line).
rc=0
err=$("$mpiexec" --oversubscribe -np 5 "$kwm" train "${tiny[@]}" --run-dir "$fresh" 2>&1 > /dev/null) ||
  rc=$?
[ "$rc" = 2 ] || fail "batch 12 on 5 ranks: exit status $rc: $err"
grep -q "train.batch 12 must be a multiple of the rank count 5" <<< "$err" ||
  fail "batch 12 on 5 ranks: no error naming the rank count: $err"
[ -e "$fresh" ] && fail "batch 12 on 5 ranks: $fresh was created"
echo "ok (5 ranks): exit status 2, the error names the rank count"
# ... and an existing run is left as it was.
expect_error "$run" "train.length 17 exceeds model.context 16" \
  "$kwm" train "${tiny[@]}" --set train.length=17 --run-dir "$run" --resume

# A corrupt token shard is reported naming the file (train --resume, eval of the test split).
flip() {  # flips one bit of byte $2 of file $1
  "$python" -c "import sys; p, at = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p, 'rb').read()); b[at] ^= 4; open(p, 'wb').write(b)" "$1" "$2"
}
flip "$run/tokens/train.tokens" 300
expect_error "$run" "tokens/train.tokens" \
  "$kwm" train "${tiny[@]}" --set train.checkpoint_every=1 --run-dir "$run" --resume
flip "$run/tokens/test.tokens" 300
expect_error "$run" "tokens/test.tokens" "$kwm" eval --run-dir "$run"
echo "ok: every bad input exits 2 with one line and changes nothing"
