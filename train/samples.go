package train

import (
	"path/filepath"
	"time"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/rollout"
)

// openDashLogs starts the logs polo dash and TensorBoard read (log.tensorboard, log.samples). A
// resumed run first drops what the steps it will redo had written, as restore does for metrics.
func (r *runner) openDashLogs() error {
	if r.opts.Resume {
		covered := func(phase string, step int) bool { return r.covered(metrics.Record{Phase: phase, Step: step}) }
		if err := metrics.KeepEvents(filepath.Join(r.dir, "tb"), func(phase string, step int64) bool { return covered(phase, int(step)) }); err != nil {
			return err
		}
		if err := metrics.KeepSamples(filepath.Join(r.dir, "samples"), func(s metrics.Sample) bool { return covered(s.Phase, s.Step) }); err != nil {
			return err
		}
	}
	if r.cfg.Log.TensorBoard {
		if err := r.log.TensorBoard(filepath.Join(r.dir, "tb")); err != nil {
			return err
		}
	}
	if r.cfg.Log.Samples > 0 {
		s, err := metrics.OpenSamples(filepath.Join(r.dir, "samples"), 0, 0)
		if err != nil {
			return err
		}
		r.samples = s
	}
	return nil
}

func (r *runner) closeDashLogs() {
	if r.samples != nil {
		r.samples.Close()
	}
}

// logRollouts keeps the first log.samples rows of an RL step (whole groups first, so the
// advantages can be read against each other) with their rewards and, after the objective's
// whole-batch phase, their advantages.
func (r *runner) logRollouts(step int, b *rolloutBatch, ob *objective.Batch) error {
	if r.samples == nil {
		return nil
	}
	n := min(r.cfg.Log.Samples, b.rows())
	now := unixNow()
	out := make([]metrics.Sample, n)
	for i := range n {
		resp := r.codec.text(b.resps[i])
		if b.agent != nil { // the whole trajectory: every turn and observation, special tokens kept
			resp = r.codec.tok.Decode(b.resps[i], false)
		}
		s := metrics.Sample{
			Step: step, Phase: "rl", Kind: "rollout", Group: b.group[i], Time: now,
			Prompt:   r.codec.tok.Decode(b.prompts[i], false),
			Response: resp,
			Reward:   b.rewards[i], Correct: b.correct[i], Length: len(b.resps[i]), Finish: b.finish[i],
		}
		if len(r.rewarder.names) > 1 && i < len(b.components) {
			s.Components = map[string]float64{}
			for k, name := range r.rewarder.names {
				if k < len(b.components[i]) {
					s.Components[name] = b.components[i][k]
				}
			}
		}
		L := len(b.resps[i])
		if ob.Advantages != nil && L > 0 {
			sum := 0.0
			for _, a := range ob.Advantages[i][:L] {
				sum += a
			}
			s.Advantage = sum / float64(L)
		}
		if r.cfg.Log.SampleTokens {
			s.Tokens = r.tokenTexts(b.resps[i])
			s.LogProbs = clip(ob.OldLogP, i, L)
			s.Entropy = clip(ob.Entropy, i, L)
			s.Advantages = clip(ob.Advantages, i, L)
		}
		out[i] = s
	}
	return r.samples.Write(out)
}

// logHeldOut keeps the first log.samples answers of one held-out pass (kind eval-greedy or
// eval-sampled) under the evaluation's phase and step.
func (r *runner) logHeldOut(phase string, step int, kind string, prompts [][]int32, comps []rollout.Completion, scores []reward.Score) error {
	if r.samples == nil {
		return nil
	}
	n := min(r.cfg.Log.Samples, len(comps))
	now := unixNow()
	out := make([]metrics.Sample, n)
	for i := range n {
		c := comps[i]
		s := metrics.Sample{
			Step: step, Phase: phase, Kind: kind, Group: i, Time: now,
			Prompt:   r.codec.tok.Decode(prompts[i], false),
			Response: r.codec.text(c.Tokens),
			Reward:   scores[i].Value, Correct: scores[i].Correct, Length: len(c.Tokens), Finish: c.Finish,
		}
		if r.cfg.Log.SampleTokens {
			s.Tokens = r.tokenTexts(c.Tokens)
			s.LogProbs = floats(c.ModelLogProbs)
			s.Entropy = floats(c.Entropy)
		}
		out[i] = s
	}
	return r.samples.Write(out)
}

// tokenTexts decodes each token on its own, special tokens included, for the heat map.
func (r *runner) tokenTexts(ids []int32) []string {
	out := make([]string, len(ids))
	for j, id := range ids {
		out[j] = r.codec.tok.Decode([]int32{id}, false)
	}
	return out
}

// clip returns row i's first L values (nil when the array is absent).
func clip(m [][]float64, i, L int) []float64 {
	if m == nil || i >= len(m) || len(m[i]) < L {
		return nil
	}
	return append([]float64(nil), m[i][:L]...)
}

func floats(xs []float32) []float64 {
	if xs == nil {
		return nil
	}
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

func unixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }
