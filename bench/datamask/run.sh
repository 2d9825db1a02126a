#!/bin/sh
# DATAMASK on a noisy SFT set: 3000 2-digit additions, 40% with a wrong answer. Scores come from
# the demo's seed-3 SFT model (answer loss = quality, mean hidden state = embedding); select 20%
# by mask learning, and a random 20% as the baseline; fine-tune the same SFT model on each subset
# and score greedy accuracy on 512 fresh addition prompts.
#   bench/datamask/run.sh > bench/results/datamask-cpu.txt   (needs runs/vec-s3 from bench/vector/run.sh)
set -e
export GOEXPERIMENT=simd
POLO=${POLO:-/tmp/polo-datamask}
[ -x "$POLO" ] || go build -o "$POLO" ./cmd/polo
M=runs/vec-s3/checkpoints/sft-000400/model
echo "# command: bench/datamask/run.sh   ($(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
go run ./bench/datamask/makedata -n 3000 -noise 0.4 -o runs/noisy-addition.jsonl
echo "## polo data select --model $M --data runs/noisy-addition.jsonl --ratio 0.2 --iters 1000 --lr 5 -o runs/dm-selected.jsonl --random-out runs/dm-random.jsonl"
$POLO data select --model $M --data runs/noisy-addition.jsonl --ratio 0.2 --iters 1000 --lr 5 -o runs/dm-selected.jsonl --random-out runs/dm-random.jsonl
for s in selected random; do
	n=$(wc -l < runs/dm-$s.jsonl)
	ok=$(awk -F'"' '{split($8,q,"+"); sub("=","",q[2]); if (q[1]+q[2]==$4) c++} END {print c+0}' runs/dm-$s.jsonl)
	echo "$s subset: $ok of $n answers correct"
done
for s in selected random; do
	rm -rf runs/dm-sft-$s
	$POLO train --set task.name=dataset --set task.path=runs/dm-$s.jsonl --set task.test_size=32 \
		--set model.path=$M --set sft.steps=150 --set sft.lr=0.001 --set rl.steps=0 \
		--set run_dir=runs/dm-sft-$s --set log.progress=false --set log.plots=false >/dev/null
	acc=$($POLO eval --model runs/dm-sft-$s/checkpoints/sft-000150/model --task addition --task-opt digits=2 \
		--limit 512 --seed 11 --n 1 --temperature 0 --quiet | awk '/^ +[0-9]+ +1 /{print $3; exit}')
	echo "SFT 150 steps on the $s subset: greedy accuracy on 512 fresh 2-digit additions $acc"
done
base=$($POLO eval --model $M --task addition --task-opt digits=2 --limit 512 --seed 11 --n 1 --temperature 0 --quiet | awk '/^ +[0-9]+ +1 /{print $3; exit}')
echo "the scoring model before fine-tuning: $base"
