package train

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/polo-rl/polo/model"
)

// BenchmarkRLStep times one GRPO step of the demo (train/demo.yaml: small preset, 2-digit addition,
// 16 prompts × 8 responses, temperature 1, 6 new tokens, 2 mini-batches of 64 rows) on a
// from-scratch policy, split into the phases of rlStep, using the trainer's own code:
//
//	rollout_s  r.collect's sampling (prefill + KV-cache decode, behaviour log-probs) — metrics rollout_s
//	reward_s   r.collect's verification                                              — metrics reward_s
//	logprob_s  scoreBatch (π_old and π_ref LogProbs on 128 rows) + advantages and filters (prepare)
//	train_s    update: per mini-batch host objective, Accumulate, Step, and for every mini-batch but
//	           the first a LogProbs re-score (logprob_s + train_s = metrics train_s)
//
// Each reported value is the best over the timed steps, after warm-up steps that compile every graph.
// rescore_s is the share of train_s spent in the LogProbs re-score (the second 64-row mini-batch,
// timed separately). bench/rl/run.sh compares these with the same loop in PyTorch:
//
//	GOEXPERIMENT=simd go test ./train -run '^$' -bench RLStep -benchtime 5x
func BenchmarkRLStep(b *testing.B) {
	cfg, err := LoadConfig("", []string{"sft.steps=0", "log.progress=false", "log.plots=false", "run_dir=" + b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	r := &runner{cfg: cfg, opts: Options{Log: io.Discard}, dir: cfg.RunDir, ckptDir: filepath.Join(cfg.RunDir, "checkpoints"), start: time.Now()}
	if err := r.setup(); err != nil {
		b.Fatal(err)
	}
	defer r.log.Close()
	// What rl() does as RL starts (without the evaluation and the checkpoint).
	if r.needRef {
		if r.ref, err = r.referenceModel(); err != nil {
			b.Fatal(err)
		}
	}
	if r.trainer, err = model.NewTrainer(r.policy, r.optimConfig("rl")); err != nil {
		b.Fatal(err)
	}
	r.state = runState{Phase: "rl"}
	total := 1000
	nPrompts := cfg.Sampling.PromptsPerStep

	best := map[string]float64{}
	var respTokens, rows, width float64
	note := func(k string, v float64) {
		if old, ok := best[k]; !ok || v < old {
			best[k] = v
		}
	}
	step := func(s int, timed bool) {
		// rlStep without dynamic-sampling refills (rl.max_refills = 0 in the demo).
		batch, rolloutS, rewardS, err := r.collect("rollout", s, nPrompts)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		ob, posLogp, err := r.scoreBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		ob.Step = s
		keep, _, err := r.prepare(ob)
		if err != nil {
			b.Fatal(err)
		}
		logprobS := time.Since(t0).Seconds()
		t1 := time.Now()
		kept := keptRows(batch, keep, nPrompts)
		if _, err := r.update(s, total, batch, ob, posLogp, kept); err != nil {
			b.Fatal(err)
		}
		if _, err := r.afterBatch(batch, ob); err != nil {
			b.Fatal(err)
		}
		trainS := time.Since(t1).Seconds()
		r.state.Step = s
		// The re-score inside update: LogProbs of the mini-batches after the first (the first reuses
		// scoreBatch's log-probs); same row count and width as update's second mini-batch.
		half := len(kept) / 2
		t2 := time.Now()
		for _, mb := range [][]int{kept[half:]} {
			sub := batch.subset(mb)
			ids, mask := sequences(sub.prompts, sub.resps, r.codec.pad)
			if _, _, err := r.policy.LogProbs(ids, mask); err != nil {
				b.Fatal(err)
			}
		}
		rescoreS := time.Since(t2).Seconds()
		if !timed {
			return
		}
		note("rollout_s", rolloutS)
		note("reward_s", rewardS)
		note("logprob_s", logprobS)
		note("train_s", trainS)
		note("rescore_s", rescoreS)
		note("step_s", rolloutS+rewardS+logprobS+trainS)
		ids, _ := sequences(batch.prompts, batch.resps, r.codec.pad)
		width = max(width, float64(len(ids[0])))
		for _, resp := range batch.resps {
			respTokens += float64(len(resp))
		}
		rows += float64(batch.rows())
	}
	const warm = 2
	for s := 1; s <= warm; s++ {
		step(s, false)
	}
	s := warm
	for b.Loop() {
		s++
		step(s, true)
	}
	for k, v := range best {
		b.ReportMetric(v, k)
	}
	b.ReportMetric(respTokens/rows, "resp_len")
	b.ReportMetric(width, "seq_width")
	b.ReportMetric(float64(r.policy.NumParams()), "params")
}
