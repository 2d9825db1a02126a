#!/bin/sh
# Speculative decoding / SpecDec++ on the reversal task: target = "small" preset (4 layers, d=128),
# draft = "tiny" preset (2 layers, d=64), same character tokenizer, both supervised only.
#   bench/specdec/run.sh > bench/results/specdec-cpu.txt
set -e
export GOEXPERIMENT=simd
POLO=${POLO:-/tmp/polo-specdec}
[ -x "$POLO" ] || go build -o "$POLO" ./cmd/polo
for p in small tiny; do
	[ -d runs/spec-$p/checkpoints/sft-000300 ] || $POLO train bench/specdec/reverse.yaml --set model.preset=$p --set run_dir=runs/spec-$p >/dev/null
done
T=runs/spec-small/checkpoints/sft-000300/model
D=runs/spec-tiny/checkpoints/sft-000300/model
echo "# command: bench/specdec/run.sh   ($(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "# target $T ($(du -k $T/model.safetensors | cut -f1) KB), draft $D ($(du -k $D/model.safetensors | cut -f1) KB)"
echo
echo "## acceptance head: polo specdec train-head --target T --draft D --prompts 512 --epochs 20 -o runs/spec-head.json"
$POLO specdec train-head --target $T --draft $D --prompts 512 --epochs 20 -o runs/spec-head.json
for b in 1 16; do
	echo
	echo "## polo specdec bench --target T --draft D --head runs/spec-head.json --k 1,2,4,8 --threshold 0.3,0.5,0.7 --kmax 12 --limit 64 --batch $b"
	$POLO specdec bench --target $T --draft $D --head runs/spec-head.json --k 1,2,4,8 --threshold 0.3,0.5,0.7 --kmax 12 --limit 64 --batch $b
done
