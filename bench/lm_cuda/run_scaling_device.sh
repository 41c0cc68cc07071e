#!/usr/bin/env bash
# One device call (multi-GPU machine, repo root) for issue 7's weak scaling on 1, 2 and 4 GPUs:
# kwm train on configs/lm_gpu_10m.yaml at R ranks (mpirun, one GPU each, NCCL device sums where
# kwm was built with NCCL) with batch 32*R x 256 (a fixed 32 x 256 per GPU), and the PyTorch DDP
# counterpart (bench/lm_cuda/torch_ddp_step.py: AdamW, bf16 autocast, fused, torch.compile, NCCL)
# on the same model and per-GPU batch, in the same call. Only R <= the visible GPUs run.
#   kwm tokens/s: from metrics.jsonl, (tokens at the last line - tokens at step SKIP) / (wall_s
#     difference): kwm train's whole loop (host batch loader, the per-step loss all-reduce, a
#     256-token validation every EVAL_EVERY steps), the first SKIP steps excluded.
#   torch tokens/s: R x 32 x 256 / the slowest rank's median step (CUDA events, after warm-up).
#   weak-scaling efficiency = tokens/s(R) / (R x tokens/s(1)), for each.
#   bytes per step: kwm's logged device all-reduce payload per rank (floats x 4); DDP's gradient
#     payload (parameters x 4). A ring all-reduce sends about 2 (R - 1) / R times that per rank.
#   memory per GPU: nvidia-smi memory.used sampled every 200 ms in the background (largest
#     sample per GPU, all processes); kwm's own cudaMemGetInfo line; torch's max_memory_allocated.
# Everything under $OUT, packed into $OUT/scaling.tar.gz. Carry build/sp-carry
# (tests/lm_cuda/make_sp_carry.sh; the GPU image has no SentencePiece) and the novels under
# CORPUS_DIR (default data/text: mobydick, huckfinn, tomsawyer, sherlock).
# usage: OUT=/some/dir [RANKS="1 2 4"] [STEPS=60] [SKIP=10] [EVAL_EVERY=10] [CORPUS_DIR=data/text]
#        [TORCH_REPS=30] [LEARNER_SET="learner={type: rls-head, device: cuda}"]
#        bash bench/lm_cuda/run_scaling_device.sh
# (LEARNER_SET replaces the config's learner section: the default is its kwm-linearized.)
set -uo pipefail
OUT=${OUT:-/tmp/kwm-scaling-out}
RANKS=${RANKS:-"1 2 4"}
STEPS=${STEPS:-60}
SKIP=${SKIP:-10}
EVAL_EVERY=${EVAL_EVERY:-10}
CORPUS_DIR=${CORPUS_DIR:-data/text}
LEARNER_SET=${LEARNER_SET:-}
TORCH_REPS=${TORCH_REPS:-30}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
export NCCL_NVLS_ENABLE=0
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
carry=$PWD/build/sp-carry
export PKG_CONFIG_PATH=$carry/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
command -v pkg-config > /dev/null || export PATH=$carry/bin:$PATH
BUILD=build/scaling
{
  date -u
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv
  nvidia-smi topo -m
  lscpu | grep -E "Model name|^CPU\(s\)"
  git log --oneline -1
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKWM_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DKWM_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS=-march=native 2>&1 |
    grep -E "KWM|Error|error" | head
  time timeout 300 cmake --build "$BUILD" -j16 --target kwm 2>&1 | grep -E "error|FAILED" | head -20
} > "$OUT/build.log" 2>&1
KWM=$BUILD/launch/kwm
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
echo "visible GPUs: ${gpus:-0}" >> "$OUT/build.log"

# sampled NAME COMMAND...: runs COMMAND with nvidia-smi sampling memory.used into $OUT/NAME.smi.
sampled() {
  local name=$1
  shift
  nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 200 \
    > "$OUT/$name.smi" 2> /dev/null &
  local sampler=$!
  "$@"
  local status=$?
  kill "$sampler" 2> /dev/null
  wait "$sampler" 2> /dev/null
  return $status
}
kwm_run() {  # kwm_run R
  local r=$1
  sampled "kwm-$r" timeout -k 10 300 mpirun --oversubscribe -np "$r" "$KWM" train \
    --config configs/lm_gpu_10m.yaml --run-dir "$OUT/kwm-$r" \
    ${LEARNER_SET:+--set "$LEARNER_SET"} --set learner.device=cuda \
    --set data.corpus.dir="$CORPUS_DIR" \
    --set train.batch=$((32 * r)) --set train.tokens=$((32 * r * 256 * STEPS)) \
    --set train.eval_every="$EVAL_EVERY" --set train.eval_tokens=256 \
    --set train.test_tokens=256 --set train.checkpoint_every=0
  echo "kwm exit $?"
}
torch_run() {  # torch_run R: torchrun where it works, else the script's own spawn
  local r=$1
  if command -v torchrun > /dev/null; then
    sampled "torch-$r" timeout -k 10 300 torchrun --standalone --nproc_per_node "$r" \
      bench/lm_cuda/torch_ddp_step.py --batch 32 --reps "$TORCH_REPS"
    echo "torch (torchrun) exit $?"
    grep -q "^RESULT torch-ddp" "$OUT/torch-$r.log" 2> /dev/null && return
  fi
  sampled "torch-$r" timeout -k 10 300 python3 bench/lm_cuda/torch_ddp_step.py --ranks "$r" \
    --batch 32 --reps "$TORCH_REPS"
  echo "torch (spawn) exit $?"
}
for r in $RANKS; do
  if [ "$r" -gt "${gpus:-0}" ]; then
    echo "skip R=$r: ${gpus:-0} GPU(s) visible" | tee -a "$OUT/build.log"
    continue
  fi
  kwm_run "$r" > "$OUT/kwm-$r.log" 2>&1
  torch_run "$r" > "$OUT/torch-$r.log" 2>&1
done

python3 - "$OUT" "$RANKS" "$SKIP" > "$OUT/summary.txt" 2>&1 << 'EOF'
import json, os, re, sys
out, ranks, skip = sys.argv[1], [int(r) for r in sys.argv[2].split()], int(sys.argv[3])
def smi_peaks(path):  # largest memory.used (MiB) per GPU index over the samples
    peaks = {}
    if os.path.exists(path):
        for line in open(path):
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                peaks[int(parts[0])] = max(peaks.get(int(parts[0]), 0), int(parts[1]))
    return peaks
rows = {}
for r in ranks:
    row = {"ranks": r}
    metrics = os.path.join(out, f"kwm-{r}", "metrics.jsonl")
    if os.path.exists(metrics):
        lines = [json.loads(l) for l in open(metrics) if l.strip()]
        lines = [l for l in lines if "wall_s" in l and l.get("step", 0) >= skip]
        if len(lines) >= 2:
            a, b = lines[0], lines[-1]
            row["kwm_steps_timed"] = b["step"] - a["step"]
            row["kwm_tokens_per_s"] = (b["tokens"] - a["tokens"]) / (b["wall_s"] - a["wall_s"])
    log = os.path.join(out, f"kwm-{r}.log")
    if os.path.exists(log):
        text = open(log).read()
        m = re.search(r"device all-reduce payload per step: (\d+) floats = (\d+) bytes", text)
        if m:
            row["kwm_allreduce_payload_bytes_per_rank"] = int(m.group(2))
        m = re.search(r"MiB by rank:([ 0-9.]+)", text)
        if m:
            row["kwm_cudaMemGetInfo_peak_mib_by_rank"] = [float(x) for x in m.group(1).split()]
    row["kwm_nvidia_smi_peak_mib_by_gpu"] = smi_peaks(os.path.join(out, f"kwm-{r}.smi"))
    tlog = os.path.join(out, f"torch-{r}.log")
    if os.path.exists(tlog):
        for line in open(tlog):
            if line.startswith("RESULT torch-ddp "):
                t = json.loads(line[len("RESULT torch-ddp "):])
                row["torch_tokens_per_s"] = t["tokens_per_s"]
                row["torch_step_ms"] = t["step_ms"]
                row["torch_allreduce_payload_bytes_per_rank"] = t["allreduce_payload_bytes_per_rank"]
                row["torch_max_memory_allocated_mib_by_rank"] = t["max_memory_allocated_mib_by_rank"]
    row["torch_nvidia_smi_peak_mib_by_gpu"] = smi_peaks(os.path.join(out, f"torch-{r}.smi"))
    rows[r] = row
for key in ("kwm", "torch"):
    base = rows.get(1, {}).get(f"{key}_tokens_per_s")
    for r, row in rows.items():
        if base and f"{key}_tokens_per_s" in row:
            row[f"{key}_weak_scaling_efficiency"] = row[f"{key}_tokens_per_s"] / (r * base)
json.dump(list(rows.values()), open(os.path.join(out, "summary.json"), "w"), indent=1)
print("R  kwm tok/s  eff   torch tok/s  eff   kwm MB/step  torch MB/step  kwm smi MiB  torch smi MiB")
for r, row in rows.items():
    f = lambda k, fmt: (fmt % row[k]) if k in row else "-"
    print(r, f("kwm_tokens_per_s", "%.0f"), f("kwm_weak_scaling_efficiency", "%.3f"),
          f("torch_tokens_per_s", "%.0f"), f("torch_weak_scaling_efficiency", "%.3f"),
          "%.1f" % (row.get("kwm_allreduce_payload_bytes_per_rank", 0) / 1e6),
          "%.1f" % (row.get("torch_allreduce_payload_bytes_per_rank", 0) / 1e6),
          row["kwm_nvidia_smi_peak_mib_by_gpu"], row["torch_nvidia_smi_peak_mib_by_gpu"])
EOF
tar czf "$OUT/scaling.tar.gz" --exclude=scaling.tar.gz --exclude='kwm-*/checkpoints' \
  --exclude='kwm-*/model.h5' --exclude='kwm-*/tokens' -C "$OUT" .
tail -3 "$OUT/build.log"
grep -hE "exit|RESULT|summed through|payload|MiB by rank" "$OUT"/kwm-*.log "$OUT"/torch-*.log |
  cut -c1-300
cat "$OUT/summary.txt"
