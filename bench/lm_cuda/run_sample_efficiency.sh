#!/usr/bin/env bash
# One device call (GPU machine with an H200 and a 16-core host, repository root) for issue 7's
# sample-efficiency comparison on configs/lm_gpu_10m.yaml: validation loss against tokens, wall
# time and forward passes for
#   kwm-linearized (fp32, and TF32 pass and statistics), and kwm-ensemble with the tiny config's
#   lora subspace, on the GPU (kwm
#   train, learner.device: cuda), rls-head on the GPU when this
#   kwm build accepts it (otherwise its refusal is recorded and the run skipped),
#   PyTorch AdamW (bf16 autocast, fused, torch.compile) and PyTorch MeZO on the same tokens
#   (bench/lm_cuda/torch_sample_efficiency.py), one run per learning rate of the grids below,
#   kwm's mezo on the GPU (KWM_MEZO_RUNS; PyTorch MeZO's settings on kwm's directions),
#   kwm-ensemble and mezo on the CPU under mpirun (forward passes only; time-limited),
# all from the same exported tokens (kwm tokens), with the same batch, validation windows and
# head-bias start. Steps: build kwm (Release, CUDA sm_90), export the tokens, the runs (each under
# `timeout`), then one archive: $OUT/sample_efficiency.tar.gz (logs, metrics, manifest; no model
# or checkpoint files), which bench/lm_cuda/plot_sample_efficiency.py reads.
# The GPU image has no SentencePiece: carry build/sp-carry (docs/gpu-lm.md) and data/text.
# usage: OUT=/some/dir bash bench/lm_cuda/run_sample_efficiency.sh
#   knobs (environment): TOKENS=3000000 EVAL_EVERY=30 EVAL_TOKENS=8192 HEAD_BIAS_INIT=unigram
#   GPU_SECONDS=90 TORCH_SECONDS=45 ADAMW_LRS="1e-3" MEZO_RUNS="all:1e-4 all:1e-3 head:2e-3"
#   CPU_SECONDS=60 CPU_RANKS=16 CPU_EVAL_EVERY=5 TOTAL_SECONDS=470 BUILD=build/sample-efficiency
#   TORCH_COMPILE=1 CONFIG=configs/lm_gpu_10m.yaml KWM_MEZO_RUNS="all:1e-4" PARTS=(every group);
#   KWM=path skips the build (dry runs, or a kwm built earlier in the same call)
set -uo pipefail
OUT=${OUT:?set OUT to the output directory}
CONFIG=${CONFIG:-configs/lm_gpu_10m.yaml}
TOKENS=${TOKENS:-3000000}           # training tokens per run (batch 32 x 256 = 8192 a step)
EVAL_EVERY=${EVAL_EVERY:-30}        # steps between validations (GPU runs)
EVAL_TOKENS=${EVAL_TOKENS:-8192}    # validation tokens per score (the same windows everywhere)
HEAD_BIAS_INIT=${HEAD_BIAS_INIT:-unigram}
GPU_SECONDS=${GPU_SECONDS:-90}      # limit of each kwm GPU run
TORCH_SECONDS=${TORCH_SECONDS:-45}  # training-clock limit of each PyTorch run (compile excluded)
ADAMW_LRS=${ADAMW_LRS:-"1e-3"}
# PyTorch MeZO runs as PARAMETERS:RATE: all parameters (MeZO's choice) at two rates, and ln_f +
# head (kwm's `head` subspace) at the rate configs/lm_tiny_mezo.yaml chose for it.
MEZO_RUNS=${MEZO_RUNS:-"all:1e-4 all:1e-3 head:2e-3"}
# kwm's mezo on the GPU as SUBSPACE:RATE (eps 1e-3, constant rate, no weight decay: PyTorch
# MeZO's settings), the same algorithm as the PyTorch runs on kwm's counter-based directions.
KWM_MEZO_RUNS=${KWM_MEZO_RUNS:-"all:1e-4"}
# Which groups of runs to make (all by default): kwm-linearized kwm-ensemble kwm-linearized-tf32
# adamw mezo kwm-mezo rls-head cpu.
PARTS=${PARTS:-"kwm-linearized kwm-ensemble kwm-linearized-tf32 adamw mezo kwm-mezo rls-head cpu"}
CPU_SECONDS=${CPU_SECONDS:-60}      # limit of each CPU forward-only run; 0 skips them
CPU_RANKS=${CPU_RANKS:-16}
CPU_EVAL_EVERY=${CPU_EVAL_EVERY:-5}
TOTAL_SECONDS=${TOTAL_SECONDS:-470} # no run starts that could end after this
BUILD=${BUILD:-build/sample-efficiency}
W=${WORK:-/tmp/kwm-sample-efficiency}
rm -rf "$W"
mkdir -p "$OUT" "$W/runs" "$W/torch"
export PATH=/usr/local/cuda/bin:$PATH
export NCCL_NVLS_ENABLE=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
carry=$PWD/build/sp-carry
if [ -d "$carry" ]; then
  export PKG_CONFIG_PATH=$carry/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  command -v pkg-config > /dev/null || export PATH=$carry/bin:$PATH
fi
PY=${PYTHON:-python3}
manifest=$W/manifest.jsonl
: > "$manifest"
# note NAME SOURCE LEARNER DEVICE RANKS METRICS LOG STATUS SECONDS [REASON]: one manifest line.
# The archive is rewritten after every run, so a call cut short still returns what finished.
note() {
  printf '{"name": "%s", "source": "%s", "learner": "%s", "device": "%s", "ranks": %s, "metrics": "%s", "log": "%s", "status": %s, "seconds": %s, "reason": "%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10:-}" >> "$manifest"
  pack
}
pack() {
  (cd "$W" && shopt -s nullglob && tar czf "$OUT/sample_efficiency.tar.gz" --exclude='*.h5' \
    --exclude='*.tokens' --exclude='*.int32' --exclude='checkpoints' \
    --exclude='tokenizer.model' env.txt build.log manifest.jsonl tokens.log tokens/tokens.json \
    ./*.yaml runs torch 2> /dev/null)
}
left() { echo $((TOTAL_SECONDS - SECONDS)); }
want() { [[ " $PARTS " == *" $1 "* ]]; }

{
  date -u
  git rev-parse HEAD 2> /dev/null
  git status --short 2> /dev/null | head -20
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  lscpu | grep -E "Model name|^CPU\(s\)"
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo "TOKENS=$TOKENS EVAL_EVERY=$EVAL_EVERY EVAL_TOKENS=$EVAL_TOKENS HEAD_BIAS_INIT=$HEAD_BIAS_INIT"
  echo "GPU_SECONDS=$GPU_SECONDS TORCH_SECONDS=$TORCH_SECONDS ADAMW_LRS=$ADAMW_LRS MEZO_RUNS=$MEZO_RUNS"
  echo "CPU_SECONDS=$CPU_SECONDS CPU_RANKS=$CPU_RANKS CPU_EVAL_EVERY=$CPU_EVAL_EVERY"
} > "$W/env.txt" 2>&1

if [ -n "${KWM:-}" ]; then  # a kwm built elsewhere (a dry run of this script on a CPU machine)
  echo "kwm given: $KWM" > "$W/build.log"
else
  {
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DKWM_BUILD_TESTS=OFF 2>&1 |
      grep -E "KWM|Error|error" | head
    time timeout 200 cmake --build "$BUILD" -j16 --target kwm 2>&1 | tail -8
  } > "$W/build.log" 2>&1
  KWM=$BUILD/launch/kwm
  echo "kwm: $KWM (build done at ${SECONDS} s)" >> "$W/build.log"
fi

if [ ! -x "$KWM" ]; then
  echo "kwm did not build; see build.log" | tee -a "$W/build.log"
  : > "$W/tokens.log"
  pack
  tail -20 "$W/build.log"
  exit 1
fi

# The tokens every run uses. kwm runs start from copies of the tokenizer and shards (kwm train
# reuses them, so no run retrains the tokenizer and all see identical ids).
"$KWM" tokens --config "$CONFIG" --out "$W/tokens" > "$W/tokens.log" 2>&1
echo "exit $? at ${SECONDS} s" >> "$W/tokens.log"
seed_run_dir() {
  mkdir -p "$1"
  cp -r "$W/tokens/tokens" "$W"/tokens/tokenizer.* "$1/"
}

# config_with_learner FILE LEARNER_BLOCK: CONFIG with its learner section replaced.
config_with_learner() {
  awk -v block="$2" '/^[^ #]/ { skip = 0 } /^learner:/ { print block; skip = 1; next } !skip' \
    "$CONFIG" > "$1"
}
learner_block() { awk '/^learner:/ { p = 1; print; next } /^[^ #]/ { p = 0 } p' "$1"; }

common_sets=(--set train.tokens="$TOKENS" --set train.eval_tokens="$EVAL_TOKENS"
             --set train.head_bias_init="$HEAD_BIAS_INIT" --set train.test_tokens=2048)

# kwm_gpu NAME LEARNER CONFIG_FILE [--set ...]: one kwm train run on the GPU.
kwm_gpu() {
  local name=$1 learner=$2 config=$3; shift 3
  local dir=$W/runs/$name log=$W/runs/$name.log start=$SECONDS rc
  if [ "$(left)" -lt 30 ]; then note "$name" kwm "$learner" cuda 1 "" "" null 0 "no time left"; return; fi
  seed_run_dir "$dir"
  local limit=$GPU_SECONDS
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  echo "kwm train --config $config --run-dir $dir ${common_sets[*]} --set train.eval_every=$EVAL_EVERY $*" > "$log"
  timeout -k 10 "$limit" "$KWM" train --config "$config" --run-dir "$dir" --quiet \
    "${common_sets[@]}" --set train.eval_every="$EVAL_EVERY" "$@" >> "$log" 2>&1
  rc=$?
  echo "exit $rc after $((SECONDS - start)) s (limit $limit s)" >> "$log"
  local reason=""
  [ "$rc" = 2 ] && reason=$(grep -m1 '^error:' "$log" | tr -d '"' | tr -d "\\\\" | cut -c1-300)
  [ "$rc" = 124 ] && reason="stopped by the time limit"
  note "$name" kwm "$learner" cuda 1 "runs/$name/metrics.jsonl" "runs/$name.log" "$rc" \
    $((SECONDS - start)) "$reason"
}

# torch_run NAME OPTIMIZER ARGS...: one PyTorch run.
torch_run() {
  local name=$1 optimizer=$2; shift 2
  local log=$W/torch/$name.log start=$SECONDS rc
  if [ "$(left)" -lt 30 ]; then note "$name" torch "$optimizer" cuda 1 "" "" null 0 "no time left"; return; fi
  local limit=$((TORCH_SECONDS + 90))  # + start-up, compile and validations
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  timeout -k 10 "$limit" "$PY" bench/lm_cuda/torch_sample_efficiency.py --tokens-dir "$W/tokens" \
    --optimizer "$optimizer" --token-budget "$TOKENS" --eval-every "$EVAL_EVERY" \
    --eval-tokens "$EVAL_TOKENS" --head-bias-init "$HEAD_BIAS_INIT" \
    --max-seconds "$TORCH_SECONDS" --out "$W/torch/$name.jsonl" "$@" > "$log" 2>&1
  rc=$?
  echo "exit $rc after $((SECONDS - start)) s" >> "$log"
  note "$name" torch "$optimizer" cuda 1 "torch/$name.jsonl" "torch/$name.log" "$rc" \
    $((SECONDS - start)) "$([ "$rc" = 124 ] && echo 'stopped by the time limit')"
}

# 1. kwm-linearized on the GPU (the config's learner).
want kwm-linearized && kwm_gpu kwm-linearized-gpu kwm-linearized "$CONFIG" --set learner.device=cuda
# 1b. kwm-ensemble on the GPU (configs/lm_tiny_ensemble.yaml's learner: its lora head subspace
# runs on the device; the ensemble-versus-MeZO forward-pass comparison needs this run;
# before the PyTorch runs, so the call's time limit cannot crowd it out).
config_with_learner "$W/ensemble_gpu.yaml" "$(learner_block configs/lm_tiny_ensemble.yaml)
  device: cuda"
want kwm-ensemble && kwm_gpu kwm-ensemble-gpu kwm-ensemble "$W/ensemble_gpu.yaml"
# 1c. kwm-linearized with TF32 pass and statistics GEMMs (learner.tensor_math, statistics_math):
# does the faster step learn as the fp32 one does?
want kwm-linearized-tf32 && kwm_gpu kwm-linearized-gpu-tf32 kwm-linearized "$CONFIG" \
  --set learner.device=cuda --set learner.tensor_math=tf32 --set learner.statistics_math=tf32
# 1d. kwm's mezo on the GPU (MezoCudaLearner), before the PyTorch MeZO runs it is compared with.
for run in $KWM_MEZO_RUNS; do
  want kwm-mezo || break
  config_with_learner "$W/mezo_gpu_${run%%:*}.yaml" "learner:
  type: mezo
  learning_rate: ${run#*:}
  epsilon: 1.0e-3
  subspace: ${run%%:*}
  device: cuda"
  kwm_gpu "kwm-mezo-gpu-${run%%:*}-lr${run#*:}" mezo "$W/mezo_gpu_${run%%:*}.yaml"
done
# 2. PyTorch AdamW and MeZO on the same tokens.
compile=()
[ "${TORCH_COMPILE:-1}" = 1 ] && compile=(--compile)
want adamw && for lr in $ADAMW_LRS; do torch_run "adamw-lr$lr" adamw --lr "$lr" "${compile[@]}"; done
want mezo && for run in $MEZO_RUNS; do
  torch_run "mezo-${run%%:*}-lr${run#*:}" mezo --lr "${run#*:}" --mezo-params "${run%%:*}"
done
# 3. rls-head on the GPU, if this build accepts learner.device: cuda for it (else exit 2, noted).
config_with_learner "$W/rls_head_gpu.yaml" "$(learner_block configs/lm_tiny_rls_head.yaml)
  device: cuda"
want rls-head && kwm_gpu rls-head-gpu rls-head "$W/rls_head_gpu.yaml"

# 4. The forward-only learners on the CPU (kwm-ensemble, mezo; the tiny configs' learner
# settings), batch CPU_RANKS x 256 over CPU_RANKS ranks, each stopped by its time limit.
mpi_ok=0
if command -v mpirun > /dev/null && ldd "$KWM" 2> /dev/null | grep -q libmpi; then mpi_ok=1; fi
for learner in kwm-ensemble mezo; do
  want cpu || break
  name=$learner-cpu
  case $learner in
    kwm-ensemble) source_config=configs/lm_tiny_ensemble.yaml ;;
    mezo) source_config=configs/lm_tiny_mezo.yaml ;;
  esac
  ranks=$CPU_RANKS
  [ "$mpi_ok" = 1 ] || ranks=1
  limit=$CPU_SECONDS
  if [ "$learner" = kwm-ensemble ]; then  # share what is left between the two
    half=$(( ($(left) - 10) / 2 ))
    [ "$limit" -gt "$half" ] && limit=$half
  else
    [ "$limit" -gt $(($(left) - 10)) ] && limit=$(($(left) - 10))
  fi
  if [ "$CPU_SECONDS" -le 0 ] || [ "$limit" -lt 20 ]; then
    note "$name" kwm "$learner" cpu "$ranks" "" "" null 0 "skipped (CPU_SECONDS=$CPU_SECONDS, $(left) s left)"
    continue
  fi
  config_with_learner "$W/${learner}_cpu.yaml" "$(learner_block "$source_config")"
  dir=$W/runs/$name log=$W/runs/$name.log start=$SECONDS
  seed_run_dir "$dir"
  launcher=()
  [ "$ranks" -gt 1 ] && launcher=(mpirun --oversubscribe --bind-to none -np "$ranks")
  cmd=("${launcher[@]}" "$KWM" train --config "$W/${learner}_cpu.yaml" --run-dir "$dir" --quiet
       "${common_sets[@]}" --set train.batch="$ranks" --set train.eval_every="$CPU_EVAL_EVERY"
       --set train.tokens=100000000)
  echo "${cmd[*]}" > "$log"
  timeout -k 10 "$limit" "${cmd[@]}" >> "$log" 2>&1
  rc=$?
  echo "exit $rc after $((SECONDS - start)) s (limit $limit s)" >> "$log"
  note "$name" kwm "$learner" cpu "$ranks" "runs/$name/metrics.jsonl" "runs/$name.log" "$rc" \
    $((SECONDS - start)) "$([ "$rc" = 124 ] && echo 'stopped by the time limit (expected)')"
done

pack
echo "== $OUT/sample_efficiency.tar.gz ($(du -k "$OUT/sample_efficiency.tar.gz" | cut -f1) KB) after ${SECONDS} s"
tail -3 "$W/build.log"
tail -2 "$W/tokens.log"
cat "$manifest"
for f in "$W"/runs/*/metrics.jsonl "$W"/torch/*.jsonl; do
  [ -s "$f" ] || continue
  echo "== $f"
  grep '"val_nll"' "$f" | tail -1 | cut -c1-300
done
