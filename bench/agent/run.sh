#!/bin/sh
# The agentic demo (docs/agents.md): 2-digit multiplication, character-level model, on CPU.
#   no tools:      SFT on answers, then GRPO
#   tools:         SFT on calculator traces (half with a redundant second call), then GRPO
#   tools + OTC:   the same, GRPO with OTC's tool-efficiency reward
# Writes bench/results/agent-demo-cpu.txt. Usage: bench/agent/run.sh [out_dir]
set -e
out=${1:-runs/agent-demo}
export GOEXPERIMENT=simd
go build -o "$out/polo" ./cmd/polo
for c in notools tools otc; do
  rm -rf "$out/$c"
  if ! /usr/bin/time -f "$c wall %e s" "$out/polo" train "bench/agent/$c.yaml" --set run_dir="$out/$c" --set log.progress=false > "$out/$c.log" 2>&1; then
    tail -5 "$out/$c.log"; exit 1
  fi
  grep -v '^agent: ' "$out/$c.log" | tail -12
done
python3 bench/agent/table.py "$out" | tee bench/results/agent-demo-cpu.txt
