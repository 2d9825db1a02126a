#!/bin/sh
# Reasoning vectors on the demo task (2-digit addition): extract v = θ_RL − θ_SFT from the demo run
# (seed 3), add s·v to three SFT models and score each on its own run's 256 held-out prompts.
#   bench/vector/run.sh > bench/results/vectors-cpu.txt
# Targets: the seed-3 SFT model itself; a seed-4 SFT model trained from scratch (another
# initialisation); a seed-4 SFT model started from the seed-3 initial weights (the paper's setting:
# same initialisation, different data order). Runs that already exist are reused.
set -e
export GOEXPERIMENT=simd
POLO=${POLO:-/tmp/polo-vector}
[ -x "$POLO" ] || go build -o "$POLO" ./cmd/polo
R=runs
q="--set log.progress=false --set log.plots=false"
[ -d $R/vec-s3/checkpoints/rl-000300 ] || $POLO train --set run_dir=$R/vec-s3 --set checkpoint.keep=20 $q >/dev/null
[ -d $R/vec-s4/checkpoints/sft-000400 ] || $POLO train --set seed=4 --set rl.steps=0 --set run_dir=$R/vec-s4 $q >/dev/null
[ -d $R/init-s3/checkpoints/reference ] || $POLO train --set sft.steps=0 --set rl.steps=0 --set run_dir=$R/init-s3 $q >/dev/null
[ -d $R/vec-s4same/checkpoints/sft-000400 ] || $POLO train --set seed=4 --set rl.steps=0 \
	--set model.path=$R/init-s3/checkpoints/reference/model --set run_dir=$R/vec-s4same $q >/dev/null

echo "# command: bench/vector/run.sh   ($(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)"
$POLO vector extract --base $R/vec-s3/checkpoints/sft-000400/model --tuned $R/vec-s3/checkpoints/rl-000300/model -o $R/v.safetensors

# acc RUN CKPT: greedy held-out accuracy, then pass@1 of 8 samples at temperature 1
acc() {
	g=$($POLO eval --model $1/checkpoints/$2/model --n 1 --temperature 0 --quiet | awk '/^ +[0-9]+ +1 /{print $3; exit}')
	s=$($POLO eval --model $1/checkpoints/$2/model --n 8 --k 1 --temperature 1 --quiet | awk '/^ +[0-9]+ +8 /{print $3; exit}')
	echo "$g $s"
}
echo
echo "held-out accuracy (256 prompts of each target's own run): greedy / pass@1 of 8 samples at T=1"
echo "reference: the RL model (seed 3) itself: $(acc $R/vec-s3 rl-000300)"
printf "%-34s" "target \\ scale"
for s in -1 0 0.5 1 1.5; do printf "%18s" "$s"; done
echo
for t in "vec-s3:SFT seed 3 (the vector's base)" "vec-s4same:SFT seed 4, seed-3 init" "vec-s4:SFT seed 4, own init"; do
	run=${t%%:*}
	printf "%-34s" "${t#*:}"
	for s in -1 0 0.5 1 1.5; do
		$POLO vector apply --model $R/$run/checkpoints/sft-000400/model --vector $R/v.safetensors --scale $s -o $R/$run/checkpoints/vec$s/model >/dev/null
		printf "%18s" "$(acc $R/$run vec$s | tr ' ' /)"
	done
	echo
done
