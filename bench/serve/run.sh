#!/usr/bin/env bash
# Throughput and latency of `polo serve` on CPU: the demo's model (the "small" preset, 0.79M
# parameters, character tokenizer, after a short SFT warm-up) served with continuous batching
# (--max-batch 64), driven by 1, 8 and 64 concurrent clients sending /v1/completions requests back to
# back (random "a+b=" prompts, temperature 1, max_tokens 16 with ignore_eos, so every request
# decodes 16 tokens; with min_tokens, each request's max_tokens is drawn from [min_tokens,
# max_tokens]). Prints requests/s, completion tokens/s and p50/p99 request latency per level.
# ROUNDS=2 runs the levels twice (the second round with every graph compiled).
# POLO=path/to/polo benchmarks a prebuilt binary (e.g. another commit's) instead of this tree's.
#
# Usage: bench/serve/run.sh [max_tokens [min_tokens]] > bench/results/serve-cpu.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=simd
MAXTOK=${1:-16}
MINTOK=${2:-0}
ROUNDS=${ROUNDS:-1}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
if [ -n "${POLO:-}" ]; then cp "$POLO" "$tmp/polo"; else go build -o "$tmp/polo" ./cmd/polo; fi
go build -o "$tmp/bench" ./bench/serve
"$tmp/polo" train --set run_dir="$tmp/run" --set sft.steps=50 --set rl.steps=0 --set eval.every=0 \
  --set log.plots=false --set log.progress=false >/dev/null
"$tmp/polo" serve --model "$tmp/run/checkpoints/sft-000050/model" --port 0 --max-batch 64 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do grep -q "on http://" "$tmp/serve.log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$tmp/serve.log" | head -1)
echo "# polo serve, demo model (small preset) after 50 SFT steps, --max-batch 64, max_tokens $MAXTOK (ignore_eos)$([ "$MINTOK" -gt 0 ] && echo ", drawn from [$MINTOK, $MAXTOK]")"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# command: $([ "$ROUNDS" -gt 1 ] && echo "ROUNDS=$ROUNDS ")$([ -n "${POLO:-}" ] && echo "POLO=$POLO ")bench/serve/run.sh $MAXTOK $([ "$MINTOK" -gt 0 ] && echo "$MINTOK")"
"$tmp/bench" --url "$url" --clients 1,8,64 --requests 8 --min-requests 32 --max-tokens "$MAXTOK" --min-tokens "$MINTOK" --rounds "$ROUNDS"
