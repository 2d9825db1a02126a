#!/usr/bin/env bash
# GPU benchmark of polo against PyTorch, in one invocation with a total budget (default 470 s):
#   1 parity   logits / log-probs / greedy / gradients of every testdata model vs the CPU references
#   2 train    train step of a Qwen2.5-0.5B-architecture model (random weights, its real config),
#              B=8×T=1024: polo (bf16 autocast, f32 master weights, flash attention) vs PyTorch
#              (eager, autocast bf16, SDPA, fused AdamW)
#   3 sample   batch 64, 64-token prompts, 256 new tokens: polo vs transformers generate (and vLLM
#              if installed); decode step time vs the memory-bandwidth bound
#   4 grpo     a short GRPO run of the demo task with a bigger batch: reward curve, step-time split
#   5 compile  compile time of each graph and how many graphs an RL run compiles (from 2–4)
# Each part has its own timeout and writes its result as soon as it ends; a failed or timed-out part
# is recorded as such and the others still run. OUT/summary.json and OUT/summary.md are written at
# the end (and can be rebuilt with: python3 bench/gpu/summarize.py OUT).
#
# Usage (repo root):  bench/gpu/run.sh OUT_DIR            on the GPU machine (polo from bin/polo-xla,
#                                                          built here with -tags xla and carried along)
#                     bench/gpu/run.sh OUT_DIR --dry-run   same steps on CPU with tiny shapes (tests the script)
# Environment: POLO (binary), PYTHON (interpreter with torch), BUDGET_S, HBM_GBPS (memory bandwidth,
# default from the GPU's name), POLO_COMPUTE (bf16), POLO_FLASH (true), POLO_BUCKETS (the GRPO run's
# model.compute.buckets_per_octave, 2); XLA_FLAGS passes through to
# the plugin (e.g. --xla_gpu_autotune_level=0 trades kernel choice for shorter compiles).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:?usage: bench/gpu/run.sh OUT_DIR [--dry-run]}
DRY=0
[ "${2:-}" = "--dry-run" ] && DRY=1
mkdir -p "$OUT/parts"
OUT=$(cd "$OUT" && pwd)
START=$(date +%s)
BUDGET=${BUDGET_S:-470}
COMPUTE=${POLO_COMPUTE:-bf16}
FLASH=${POLO_FLASH:-true}
log() { echo "[$(($(date +%s) - START))s] $*" | tee -a "$OUT/run.log" >&2; }

# ---------------------------------------------------------------- environment
if [ -z "${PYTHON:-}" ]; then
  for p in python3 /usr/bin/python3 python; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "import torch" 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
PYTHON=${PYTHON:-python3}

if [ $DRY = 1 ]; then
  if [ -z "${POLO:-}" ]; then  # outside bin/, which travels to the GPU machine (64 MiB carry limit)
    POLO=${TMPDIR:-/tmp}/polo-dryrun
    log "building $POLO (CPU dry run)"
    GOEXPERIMENT=simd go build -o "$POLO" ./cmd/polo || exit 1
  fi
  unset GOMLX_BACKEND
  export GOMAXPROCS=${GOMAXPROCS:-2}
  DEVICE=cpu
  MODEL_CFG=bench/gpu/tiny-qwen2.json; TB=2; TT=64; TSTEPS=2
  SB=4; SP=8; SN=16
  GRPO_SET=(rl.steps=4 sft.steps=4 sampling.prompts_per_step=8 sampling.group_size=4 task.test_size=16 eval.every=4 model.preset=tiny)
  T_PARITY=60; T_TRAIN=60; T_TTRAIN=60; T_SAMPLE=60; T_TSAMPLE=60; T_VLLM=10; T_GRPO=120
  HBM_GBPS=${HBM_GBPS:-50}
  TORCH_ARGS=(--device cpu --threads 2)
else
  POLO=${POLO:-$ROOT/bin/polo-xla}
  DEVICE=cuda
  MODEL_CFG=model/presets/qwen2.5-0.5b.json; TB=8; TT=1024; TSTEPS=5
  SB=64; SP=64; SN=256
  GRPO_SET=(rl.steps=40 sft.steps=200 sampling.prompts_per_step=64 sampling.group_size=16 eval.every=20)
  T_PARITY=75; T_TRAIN=150; T_TTRAIN=45; T_SAMPLE=110; T_TSAMPLE=60; T_VLLM=60; T_GRPO=70
  TORCH_ARGS=(--device cuda)
  # The CUDA PJRT plugin shipped inside JAX's CUDA wheel (docs/gpu.md, shared notes/engine.md).
  PLUGIN=""
  for py in "$PYTHON" python3 /usr/bin/python3 python; do  # JAX may live in another interpreter than torch
    command -v "$py" >/dev/null 2>&1 || continue
    for sp in $("$py" -c "import site,sys; print('\n'.join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))" 2>/dev/null); do
      [ -d "$sp/jax_plugins" ] || continue
      PLUGIN=$(ls "$sp"/jax_plugins/xla_cuda*/xla_cuda_plugin.so 2>/dev/null | head -1)
      if [ -n "$PLUGIN" ]; then SITE=$sp; break 2; fi
    done
  done
  if [ -z "$PLUGIN" ]; then
    log "no CUDA PJRT plugin found (jax_plugins/xla_cuda*/xla_cuda_plugin.so in $PYTHON's site-packages); polo parts will fail"
  else
    PJ=${PJRT_DIR:-/tmp/polo-pjrt}
    mkdir -p "$PJ/lib"
    ln -sf "$PLUGIN" "$PJ/lib/pjrt_c_api_cuda_plugin.so"
    [ -d "$SITE/nvidia" ] && ln -sfn "$SITE/nvidia" "$PJ/nvidia"
    export GOMLX_NO_AUTO_INSTALL=1 PJRT_PLUGIN_LIBRARY_PATH=$PJ/lib
    export GOMLX_BACKEND=xla:$PJ/lib/pjrt_c_api_cuda_plugin.so
    log "PJRT plugin: $PLUGIN"
  fi
  if [ -z "${HBM_GBPS:-}" ]; then
    case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)" in
      *H200*) HBM_GBPS=4800 ;; *H100*SXM*|*H100*HBM3*) HBM_GBPS=3350 ;; *H100*) HBM_GBPS=2000 ;;
      *A100*80*) HBM_GBPS=2039 ;; *A100*) HBM_GBPS=1555 ;; *) HBM_GBPS=0 ;;
    esac
  fi
fi
[ -x "$POLO" ] || log "polo binary $POLO is missing: build it with 'go build -tags xla -o bin/polo-xla ./cmd/polo' and carry bin/"

{
  echo "{"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"dry_run\": $([ $DRY = 1 ] && echo true || echo false),"
  echo "  \"device\": \"$DEVICE\","
  echo "  \"gpu\": \"$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)\","
  echo "  \"cpu\": \"$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)\","
  echo "  \"backend\": \"${GOMLX_BACKEND:-go}\", \"xla_flags\": \"${XLA_FLAGS:-}\","
  echo "  \"polo\": \"$("$POLO" version 2>/dev/null | head -1 || true)\","
  echo "  \"git\": \"$(git rev-parse --short HEAD 2>/dev/null)\","
  echo "  \"torch\": \"$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)\","
  echo "  \"transformers\": \"$("$PYTHON" -c 'import transformers; print(transformers.__version__)' 2>/dev/null)\","
  echo "  \"vllm\": \"$("$PYTHON" -c 'import vllm; print(vllm.__version__)' 2>/dev/null)\","
  echo "  \"model_config\": \"$MODEL_CFG\", \"compute\": \"$COMPUTE\", \"flash\": $FLASH, \"hbm_gbps\": $HBM_GBPS,"
  echo "  \"shapes\": {\"train_batch\": $TB, \"train_seq\": $TT, \"sample_batch\": $SB, \"prompt_len\": $SP, \"new_tokens\": $SN},"
  echo "  \"budget_s\": $BUDGET"
  echo "}"
} > "$OUT/env.json"

# part NAME TIMEOUT CMD...: runs CMD with stdout to parts/NAME.out and stderr to parts/NAME.log under
# min(TIMEOUT, what is left of the budget); records rc and seconds in parts/NAME.status.
part() {
  local name=$1 t=$2; shift 2
  local left=$((BUDGET - ($(date +%s) - START) - 10))
  [ "$t" -gt "$left" ] && t=$left
  if [ "$t" -lt 5 ]; then
    log "$name: skipped, budget spent"
    echo "{\"rc\": null, \"skipped\": \"budget spent\"}" > "$OUT/parts/$name.status"
    return 0
  fi
  log "$name: start (timeout ${t}s): $*"
  local t0=$(date +%s.%N)
  timeout --kill-after=5 "$t" "$@" > "$OUT/parts/$name.out" 2> "$OUT/parts/$name.log"
  local rc=$?
  local dt=$(echo "$(date +%s.%N) $t0" | awk '{ printf "%.1f", $1 - $2 }')
  local to=false; [ $rc = 124 ] || [ $rc = 137 ] && to=true
  echo "{\"rc\": $rc, \"seconds\": $dt, \"timeout_s\": $t, \"timed_out\": $to}" > "$OUT/parts/$name.status"
  log "$name: rc $rc in ${dt}s"
  return 0
}

# ---------------------------------------------------------------- 1 parity
# One process per compute mode (each start of the CUDA client and each compile costs seconds).
parity() {
  local rc=0
  "$POLO" model check --all testdata/models || rc=1
  "$POLO" model check --all testdata/models --compute "$COMPUTE" --flash="$FLASH" --tol 0.05 --rel-tol 0.05 || rc=1
  return $rc
}
export -f parity
export POLO COMPUTE FLASH
part parity "$T_PARITY" bash -c parity

# ---------------------------------------------------------------- 2 train step
part train_polo "$T_TRAIN" "$POLO" model bench --config "$MODEL_CFG" --mode full --batch "$TB" --seq "$TT" --steps "$TSTEPS" \
  --compute "$COMPUTE" --flash="$FLASH" --warmup
# cuDNN flash attention is the least proven piece: if the step failed with it, try once without.
if [ "$FLASH" = true ] && ! grep -q '"rc": 0' "$OUT/parts/train_polo.status"; then
  part train_polo_noflash "$T_TRAIN" "$POLO" model bench --config "$MODEL_CFG" --mode full --batch "$TB" --seq "$TT" --steps "$TSTEPS" \
    --compute "$COMPUTE" --flash=false --warmup
fi
part train_torch "$T_TTRAIN" "$PYTHON" bench/gpu/torch_ref.py train --config "$MODEL_CFG" --batch "$TB" --seq "$TT" --steps "$TSTEPS" \
  --dtype "$([ "$COMPUTE" = bf16 ] && echo bf16 || echo f32)" "${TORCH_ARGS[@]}"

# ---------------------------------------------------------------- 3 sampling
part sample_polo "$T_SAMPLE" "$POLO" model bench --config "$MODEL_CFG" --mode sample --batch "$SB" --prompt-len "$SP" --new-tokens "$SN" \
  --rounds 2 --warmup
part sample_torch "$T_TSAMPLE" "$PYTHON" bench/gpu/torch_ref.py sample --config "$MODEL_CFG" --batch "$SB" --prompt-len "$SP" \
  --new-tokens "$SN" --rounds 1 --engines hf "${TORCH_ARGS[@]}"

# ---------------------------------------------------------------- 4 GRPO (demo task, bigger batch)
sets=()
for s in "${GRPO_SET[@]}" run_dir="$OUT/parts/grpo-run" log.plots=false log.tensorboard=false log.progress=false \
  model.compute.dtype="$([ $DRY = 1 ] && echo float32 || echo "$COMPUTE")" model.compute.flash="$FLASH" \
  model.compute.buckets_per_octave="${POLO_BUCKETS:-2}"; do
  sets+=(--set "$s")
done
rm -rf "$OUT/parts/grpo-run"
part grpo "$T_GRPO" "$POLO" train "${sets[@]}"

# ---------------------------------------------------------------- 3b vLLM (last: least important, gets what is left)
if "$PYTHON" -c "import vllm" 2>/dev/null; then
  part sample_vllm "$T_VLLM" "$PYTHON" bench/gpu/torch_ref.py sample --config "$MODEL_CFG" --batch "$SB" --prompt-len "$SP" \
    --new-tokens "$SN" --rounds 1 --engines vllm "${TORCH_ARGS[@]}"
else
  echo "{\"rc\": null, \"skipped\": \"vllm not installed\"}" > "$OUT/parts/sample_vllm.status"
fi

# ---------------------------------------------------------------- 5 + summary
log "summary"
"$PYTHON" bench/gpu/summarize.py "$OUT" || python3 bench/gpu/summarize.py "$OUT"
log "done in $(($(date +%s) - START))s: $OUT/summary.md"
