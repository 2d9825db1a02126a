#!/bin/sh
# Value-based selection on the demo's RL model (needs runs/vec-s3 from bench/vector/run.sh):
# critics on layer 2 / 4, Best-of-N table with a q-value row, then Digi-Q policy extraction:
# the Q-best of 8 candidates for 512 fresh prompts (when Q beats V) → SFT → held-out accuracy.
#   bench/value/run.sh > bench/results/value-cpu.txt
set -e
export GOEXPERIMENT=simd
POLO=${POLO:-/tmp/polo-value}
[ -x "$POLO" ] || go build -o "$POLO" ./cmd/polo
M=runs/vec-s3/checkpoints/rl-000300/model
for cfg in "2 5" "4 5" "4 15"; do
	set -- $cfg
	echo "## layer $1 epochs $2: polo value train --model M -o runs/critic-L$1-E$2.json --layer $1 --epochs $2 --prompts 512; polo value eval --model M --critic runs/critic-L$1-E$2.json"
	$POLO value train --model $M -o runs/critic-L$1-E$2.json --layer $1 --epochs $2 --prompts 512
	$POLO value eval --model $M --critic runs/critic-L$1-E$2.json
done
echo "## Digi-Q extraction: polo value extract --model M --critic runs/critic-L2-E5.json -o runs/q-best.jsonl --prompts 512"
$POLO value extract --model $M --critic runs/critic-L2-E5.json -o runs/q-best.jsonl --prompts 512
go build -o /tmp/dm-sft ./bench/datamask/sft
rm -rf runs/q-sft
/tmp/dm-sft -model $M -data runs/q-best.jsonl -steps 100 -lr 0.0003 -o runs/q-sft
for m in $M runs/q-sft; do
	echo "$m: $($POLO eval --model $m --task addition --task-opt digits=2 --limit 512 --seed 11 --n 4 --k 1 --temperature 1 --quiet | awk '/^ +[0-9]+ +4 /{print "pass@1 (4 samples, T=1) on 512 fresh prompts " $3; exit}')"
done
