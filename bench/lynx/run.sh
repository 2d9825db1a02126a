#!/bin/sh
# LYNX early exit on the scratchpad task: train the model (if absent), calibrate the probe on
# fresh prompts, evaluate on the run's held-out prompts at three risk levels.
#   bench/lynx/run.sh > bench/results/lynx-cpu.txt
set -e
export GOEXPERIMENT=simd
POLO=${POLO:-/tmp/polo-lynx}
[ -x "$POLO" ] || go build -o "$POLO" ./cmd/polo
[ -d runs/lynx/checkpoints/sft-000400 ] || $POLO train bench/lynx/scratchpad.yaml --set run_dir=runs/lynx >/dev/null
M=runs/lynx/checkpoints/sft-000400/model
echo "# command: bench/lynx/run.sh   ($(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
echo "# model: $M (bench/lynx/scratchpad.yaml: 2-digit addition with a scratchpad, 400 SFT steps)"
echo
echo "## polo lynx calibrate --model M --train 256 --calib 256 -o runs/lynx-probe.json"
$POLO lynx calibrate --model $M --train 256 --calib 256 -o runs/lynx-probe.json
echo
echo "## polo lynx eval --model M --probe runs/lynx-probe.json --alpha 0.05,0.1,0.2,0.3 --limit 256"
$POLO lynx eval --model $M --probe runs/lynx-probe.json --alpha 0.05,0.1,0.2,0.3 --limit 256
echo
echo "## polo lynx eval --model M --probe runs/lynx-probe.json --alpha 0.05,0.1,0.2,0.3 --limit 256 --per-trace"
$POLO lynx eval --model $M --probe runs/lynx-probe.json --alpha 0.05,0.1,0.2,0.3 --limit 256 --per-trace
