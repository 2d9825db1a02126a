#!/bin/sh
# Value-based selection inside eval and train on the demo task (2-digit addition):
#   bench/value/select.sh > bench/results/value-select-cpu.txt
# 1. policy: 800 SFT steps of the demo config (seed 3, no RL); reused when runs/bon-base exists.
# 2. critics: polo value train on that policy (layer L, E epochs, P logged prompts × 8 responses).
# 3. polo eval --select q --value CRITIC: held-out Best-of-N table (256 prompts × 8 samples, T = 1)
#    with q-value beside first (pass@1), majority, self-certainty, mean-logprob and oracle (pass@N),
#    and the within-prompt AUC of each score (bench/value/auc.py).
# 4. sft.source best_of_n_q: 50 extraction steps (64 prompts × 8 candidates) from the policy at
#    lr 3e-4 and 3e-5; controls: the same with n = 1, gate none (imitate one random sample of the
#    policy), and plain SFT on the reference answers (the pipeline's sanity check).
set -e
export GOEXPERIMENT=simd
POLO=${POLO:-/tmp/polo-select}
[ -x "$POLO" ] || go build -o "$POLO" ./cmd/polo
R=runs
q="--set log.progress=false --set log.plots=false --set seed=3"
[ -d $R/bon-base/checkpoints/sft-000800 ] || $POLO train --set rl.steps=0 --set sft.steps=800 --set eval.every=200 --set run_dir=$R/bon-base $q >/dev/null
M=$R/bon-base/checkpoints/sft-000800/model
echo "# command: bench/value/select.sh   ($(date -u +%F), $(lscpu | grep 'Model name' | cut -d: -f2 | xargs), $(nproc) cores, shared)"
echo "# policy: polo train --set rl.steps=0 --set sft.steps=800 --set eval.every=200 --set seed=3 (demo task, 2-digit addition)"
for c in ${CRITICS:-"2 5 512" "4 5 512" "2 20 2048"}; do
	set -- $c
	C=$R/critic-L$1-E$2-P$3.json
	echo
	echo "## critic layer $1, $2 epochs, $3 prompts: polo value train --model M -o C --layer $1 --epochs $2 --prompts $3"
	[ -f $C ] || $POLO value train --model $M -o $C --layer $1 --epochs $2 --prompts $3 | head -1 > $C.log
	cat $C.log
	echo "## polo eval --model M --select q --value C --n 8 --limit 256 --out $R/eval-L$1-E$2-P$3"
	$POLO eval --model $M --select q --value $C --n 8 --limit 256 --quiet --out $R/eval-L$1-E$2-P$3 | sed -n '/examples/,$p'
	python3 bench/value/auc.py $R/eval-L$1-E$2-P$3/examples.jsonl
done
C=$R/critic-L2-E5-P512.json
for lr in 0.0003 0.00003; do
t="--set model.path=$M --set rl.steps=0 --set eval.every=0 --set sft.steps=50 --set sft.batch_size=64 --set sft.lr=$lr"
b="--set sft.source=best_of_n_q --set sft.best_of_n.critic=$C"
echo
echo "## Digi-Q extraction, lr $lr: polo train $t $b --set sft.best_of_n.n=8 (gate value)"
rm -rf $R/bon-q-$lr
$POLO train $t $b --set sft.best_of_n.n=8 --set run_dir=$R/bon-q-$lr $q | sed -n '/held-out/,/pass@1/p'
python3 - $R/bon-q-$lr/metrics.jsonl <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("  step  kept  Q(best)  V(s)   imitated correct  random candidate correct")
for r in rows:
    v = r["values"]
    if r["phase"] == "sft" and (r["step"] in (1, 50) or r["step"] % 10 == 0):
        print(f"  {r['step']:4d}  {v['bon_kept']:.2f}  {v['bon_q_best']:.3f}    {v['bon_v']:.3f}  {v['bon_target_correct']:.3f}             {v['bon_first_correct']:.3f}")
PY
echo "## control, self-imitation of one random sample, lr $lr: polo train $t $b --set sft.best_of_n.n=1 --set sft.best_of_n.gate=none"
rm -rf $R/bon-self-$lr
$POLO train $t $b --set sft.best_of_n.n=1 --set sft.best_of_n.gate=none --set run_dir=$R/bon-self-$lr $q | sed -n '/held-out/,/pass@1/p'
echo "## control, SFT on reference answers, lr $lr: polo train $t"
rm -rf $R/bon-ref-$lr
$POLO train $t --set run_dir=$R/bon-ref-$lr $q | sed -n '/held-out/,/pass@1/p'
done
