#!/usr/bin/env bash
# Side-by-side CPU benchmark of one RL step at the demo's shapes: polo (GoMLX, pure-Go backend,
# GOMAXPROCS=2) vs the same loop in PyTorch (OpenBLAS, 2 threads), so the engine's overhead on small
# shapes is measured, not only on bench/model's large ones. The step is GRPO as in train/demo.yaml:
# the "small" preset (0.79M parameters, 4 layers, d=128, 4 heads / 2 KV heads, MLP 384, vocab 15,
# tied), from scratch; 16 two-digit addition prompts × 8 responses = 128 rows, temperature 1, at most
# 6 new tokens. Phases, seconds per step: rollout (prefill + KV-cache decode with behaviour
# log-probs), reward (verification), logprob (no-grad log-probs of the policy and of the frozen
# reference on the 128 rows, advantages), train (2 mini-batches of 64 rows: forward + backward of the
# GRPO loss, global-norm clip, AdamW). polo's side is BenchmarkRLStep (train/bench_rl_test.go), which
# calls the trainer's own collect / scoreBatch / update, so it is exactly what `polo train` does; the
# PyTorch side is bench/rl/torch_rl.py. Differences in work: polo's loop re-scores every mini-batch
# but the first with a no-grad pass before its forward+backward (the objective runs on the host and
# needs the current log-probs first) — the row "train, polo's passes" times PyTorch doing the same;
# and polo's decoder attends over its whole cache (13 slots for the demo's longest rows) under a validity
# mask where plain PyTorch attends over the filled slots only — the torch_pl columns time PyTorch on
# polo's padded layouts (prefill, cache and sequence widths mirrored from model.bucketLen and
# model.NewDecoder). Both sides draw random prompts and sample from a random-init model, so response
# lengths (mean ~5 tokens, the longest 6: prefill + 5 decode steps) and widths match; both are printed.
#
# The machine is shared, so the sides run in alternating rounds and each phase reports its best
# round (the least disturbed one); every round is printed. PyTorch runs with its default (spinning)
# OpenMP waits and with OMP_WAIT_POLICY=PASSIVE, and its columns are the best of both: on a loaded
# machine the spinning 2-thread pool loses 5-20x (measured at load 6-9 on 2 cores), which would
# flatter polo, while on a quiet one spinning can win. When the 1-minute load already exceeds the
# core count the spinning runs are skipped (they only lose there and take minutes);
# TORCH_WAIT=both|passive|default forces a choice.
#
# Usage: bench/rl/run.sh [timed steps per round] [rounds]   (installs python3-torch if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-4}
R=${2:-3}

# Debian's python3-torch lives in the system interpreter (not a pyenv/venv one).
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import torch" 2>/dev/null || ! ls /usr/lib/*/libopenblas.so.0 >/dev/null 2>&1; then
  if command -v sudo >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  # Without libopenblas0-pthread Debian's torch falls back to a reference BLAS (10x slower).
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null
fi

export GOEXPERIMENT=simd GOMAXPROCS=2
if [ -z "${TORCH_WAIT:-}" ]; then
  TORCH_WAIT=$(awk -v n="$(nproc)" '{ print ($1 >= n ? "passive" : "both") }' /proc/loadavg)
fi
dirty=$(git status --porcelain -- third_party model engine go.mod go.sum 2>/dev/null | wc -l)
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m) $(nproc) cores, $(lscpu | grep -m1 'Model name' | sed 's/ \{2,\}/ /g')"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# commit $(git rev-parse --short HEAD)$( [ "$dirty" = 0 ] || echo " + $dirty uncommitted engine/model files")"
echo "# go: $(go version | cut -d' ' -f3), backend ${GOMLX_BACKEND:-go}, GOMAXPROCS=2; torch: $("$PY" -c "import torch; print(torch.__version__)"), 2 threads, OpenMP waits: $TORCH_WAIT"
echo "# $N timed steps per round after warm-up, $R rounds; seconds per RL step, best round"

BIN=$(mktemp /tmp/polo-rl-bench.XXXXXX)
trap 'rm -f "$BIN"' EXIT
nice go test -c -o "$BIN" ./train/
gobench=""; pyout=""
for r in $(seq "$R"); do
  g=$(cd train && "$BIN" -test.run '^$' -test.bench '^BenchmarkRLStep$' -test.benchtime "${N}x" | grep '^BenchmarkRLStep')
  # "BenchmarkRLStep-2 N ns/op v1 unit1 v2 unit2 ..." -> "unit value" lines
  g=$(echo "$g" | awk '{ for (i = 5; i < NF; i += 2) print $(i + 1), $i }')
  echo "# round $r polo          $(echo "$g" | awk '$1 ~ /_s$/ { printf "%s %.4f  ", $1, $2 }')"
  gobench="$gobench"$'\n'"$g"
  for w in default passive; do
    case "$TORCH_WAIT" in both | "$w") ;; *) continue ;; esac
    if [ "$w" = passive ]; then p=$(OMP_WAIT_POLICY=PASSIVE "$PY" bench/rl/torch_rl.py "$N" 1); else p=$("$PY" bench/rl/torch_rl.py "$N" 1); fi
    printf "# round %s torch %-7s %s\n" "$r" "$w" "$(echo "$p" | awk '$1 ~ /^(rollout|logprob|train|train_polo_loop|step)(_pl)?$/ { printf "%s %.4f  ", $1, $2 }')"
    pyout="$pyout"$'\n'"$p"
  done
done
gosec() { echo "$gobench" | awk -v k="$1" '$1 == k { if (m == "" || $2 < m) m = $2 } END { printf "%.4f", m }'; }
pysec() { echo "$pyout" | awk -v k="$1" '$1 == k { if (m == "" || $2 < m) m = $2 } END { printf "%.4f", m }'; }
ratio() { echo "$1 $2" | awk '{ printf "%.2f", $1 / $2 }'; }

echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-22s %8s %8s %10s %10s %12s\n" phase polo_s torch_s torch/polo torch_pl_s torch_pl/polo
for row in "rollout rollout_s rollout" "reward reward_s reward" "logprob logprob_s logprob" \
           "train train_s train" "train,polo's_passes train_s train_polo_loop" "step step_s step"; do
  set -- $row
  g=$(gosec "$2"); p=$(pysec "$3"); pb=$(pysec "$3_pl")
  printf "%-22s %8s %8s %10s %10s %12s\n" "${1//_/ }" "$g" "$p" "$(ratio "$p" "$g")" "$pb" "$(ratio "$pb" "$g")"
done
echo "# step = rollout + reward + logprob + train (best single step). polo's train includes its"
echo "# re-score of the second mini-batch: $(gosec rescore_s) s (one no-grad 64-row pass, timed separately)."
echo "# polo: $(echo "$gobench" | awk '$1 == "params" { print int($2); exit }') params, mean response $(echo "$gobench" | awk '$1 == "resp_len" { s += $2; n++ } END { printf "%.2f", s / n }') tokens, sequences of $(echo "$gobench" | awk '$1 == "seq_width" { printf "%d", $2; exit }') tokens before the engine's bucketing"
echo "# torch: $(echo "$pyout" | awk '$1 == "params" { print $2; exit }') params, mean response $(echo "$pyout" | awk '$1 == "resp_len" { s += $2; n++ } END { printf "%.2f", s / n }') tokens, sequences padded to $(echo "$pyout" | awk '$1 == "seq_width" { print $2; exit }') (polo layout: $(echo "$pyout" | awk '$1 == "seq_width_pl" { print $2; exit }'))"
