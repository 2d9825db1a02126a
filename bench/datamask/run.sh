#!/bin/sh
# DATAMASK on a noisy SFT set: 3000 2-digit additions, 40% with a wrong answer. Scores come from
# the demo's seed-3 SFT model (answer loss = quality, mean hidden state = embedding); select 20%
# by mask learning, and a random 20% as the baseline; fine-tune the same SFT model on each subset
# (bench/datamask/sft: the trainer's SFT loss) and score greedy accuracy on 512 fresh addition prompts.
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
# control: the first 600 rows whose answer is right (what a perfect filter would keep)
awk -F'"' '{split($8,q,"+"); sub("=","",q[2]); if (q[1]+q[2]==$4 && n < 600) {print; n++}}' runs/noisy-addition.jsonl > runs/dm-clean.jsonl
go build -o /tmp/dm-sft ./bench/datamask/sft
for s in selected random clean; do
	rm -rf runs/dm-sft-$s
	/tmp/dm-sft -model $M -data runs/dm-$s.jsonl -steps 150 -lr 0.001 -o runs/dm-sft-$s
	acc=$($POLO eval --model runs/dm-sft-$s --task addition --task-opt digits=2 \
		--limit 512 --seed 11 --n 1 --temperature 0 --quiet | awk '/^ +[0-9]+ +1 /{print $3; exit}')
	echo "SFT 150 steps (batch 64, lr 1e-3) on the $s subset: greedy accuracy on 512 fresh 2-digit additions $acc"
done
base=$($POLO eval --model $M --task addition --task-opt digits=2 --limit 512 --seed 11 --n 1 --temperature 0 --quiet | awk '/^ +[0-9]+ +1 /{print $3; exit}')
echo "the scoring model before fine-tuning: $base"
