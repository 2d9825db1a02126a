package train

import (
	"fmt"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/value"
)

// This file is Digi-Q's Best-of-N policy extraction as an SFT source (sft.source: best_of_n_q;
// spec C2, docs/value.md): for every prompt of an SFT step, sample n candidates from the current
// policy, score them with a value critic trained by `polo value train` on frozen features, and
// imitate the Q-argmax (token-mean NLL), gated by Q(best) > V(s) unless gate is none.

// BestOfNConfig configures sft.source best_of_n_q.
type BestOfNConfig struct {
	Critic string `yaml:"critic"` // critic JSON from polo value train
	N      int    `yaml:"n"`      // candidates per prompt, sampled from the current policy with sampling.*
	// Gate: value imitates the best candidate only when its Q beats V(s) (spec C2's gate, marked
	// unverified there); none always imitates it (N = 1 with gate none is plain self-imitation).
	Gate string `yaml:"gate"`
	// WithReference adds the example's reference answer as candidate n+1 (spec C2: "optionally
	// plus the dataset action"; off by default).
	WithReference bool `yaml:"with_reference"`
	// FeatureModel is the frozen model whose layer features the critic reads (the model the critic
	// was trained on); "" = model.path. It stays frozen while the policy trains, as Digi-Q's
	// frozen VLM features do.
	FeatureModel string `yaml:"feature_model"`
}

const sourceBestOfNQ = "best_of_n_q"

// checkSFTSource validates sft.source and sft.best_of_n, naming the field.
func (c *Config) checkSFTSource() error {
	s, b := c.SFT.Source, c.SFT.BestOfN
	switch s {
	case "", "reference":
		return nil
	case sourceBestOfNQ:
	default:
		return fmt.Errorf("config field sft.source: %q, want reference or %s", s, sourceBestOfNQ)
	}
	switch {
	case b.Critic == "":
		return fmt.Errorf("config field sft.best_of_n.critic: want a critic file (polo value train -o critic.json) for sft.source %s", sourceBestOfNQ)
	case b.N < 1:
		return fmt.Errorf("config field sft.best_of_n.n: %d, want >= 1 candidates per prompt", b.N)
	case b.Gate != "value" && b.Gate != "none":
		return fmt.Errorf("config field sft.best_of_n.gate: %q, want value or none", b.Gate)
	case b.FeatureModel == "" && c.Model.Path == "":
		return fmt.Errorf("config field sft.best_of_n.feature_model: want the model folder the critic was trained on (model.path is empty too)")
	case c.SFT.OTR.K > 0:
		return fmt.Errorf("config field sft.otr.k: %d; One-Token Rollout needs reference answers, set it to 0 with sft.source %s", c.SFT.OTR.K, sourceBestOfNQ)
	case c.Agent.SFTTraces != "":
		return fmt.Errorf("config field agent.sft_traces: %q; tool-use traces and sft.source %s exclude each other", c.Agent.SFTTraces, sourceBestOfNQ)
	}
	return nil
}

// bestOfN holds the critic and the frozen feature model of sft.source best_of_n_q.
type bestOfN struct {
	critic   *value.Critic
	features *model.Model
}

// newBestOfN loads the critic and its feature model and checks that they fit each other.
func newBestOfN(c Config) (*bestOfN, error) {
	b := c.SFT.BestOfN
	critic, err := value.Load(b.Critic)
	if err != nil {
		return nil, fmt.Errorf("config field sft.best_of_n.critic: %v", err)
	}
	dir := b.FeatureModel
	if dir == "" {
		dir = c.Model.Path
	}
	m, err := model.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("config field sft.best_of_n.feature_model: %s: %v", dir, err)
	}
	if err := critic.Fits(m.Config().HiddenSize, m.Config().NumLayers); err != nil {
		return nil, fmt.Errorf("config field sft.best_of_n.critic: %s: %v; train the critic on %s (polo value train)", b.Critic, err, dir)
	}
	return &bestOfN{critic: critic, features: m}, nil
}

// bonStep is one SFT step's extraction: the rows to imitate, each row's coefficient on its
// trained tokens' log-probs, and what to log.
type bonStep struct {
	prompts, answers [][]int32
	coef             []float64
	vals             map[string]float64
}

// bestOfNTargets samples n candidates for each prompt of the step from the current policy, scores
// them with the critic and keeps each prompt's Q-argmax (ties → the lowest index) when the gate
// passes. The loss is spec C2's L_π = −(1/B) Σ_i gate_i · S_{i*} / L_{i*} over the step's B
// prompts: the token-mean NLL of each imitated candidate, averaged over prompts (a gated-out
// prompt contributes 0), so row i's coefficient on each of its tokens is −1/(B·L_{i*}).
func (r *runner) bestOfNTargets(exs []task.Example, step int) (*bonStep, error) {
	if r.bon == nil {
		b, err := newBestOfN(r.cfg)
		if err != nil {
			return nil, err
		}
		r.bon = b
	}
	n := r.cfg.SFT.BestOfN.N
	prompts := make([][]int32, len(exs))
	var rep [][]int32
	for i, ex := range exs {
		p, err := r.codec.prompt(ex)
		if err != nil {
			return nil, err
		}
		prompts[i] = p
		for range n {
			rep = append(rep, p)
		}
	}
	s := r.cfg.Sampling
	scfg := rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP, MaxNewTokens: s.MaxNewTokens, StopTokens: []int32{r.codec.eos}}
	comps, _, err := r.rolloutSample("sft-bon", step, rep, scfg, seedFor(r.cfg.Seed, "sft-bon-sample", step), r.trainer.StepCount())
	if err != nil {
		return nil, err
	}
	cands := make([][][]int32, len(exs))
	for k, c := range comps {
		cands[k/n] = append(cands[k/n], c.Tokens)
	}
	if r.cfg.SFT.BestOfN.WithReference {
		for i, ex := range exs {
			cands[i] = append(cands[i], r.codec.answer(ex))
		}
	}
	q, v, err := r.bon.critic.Score(r.bon.features.HiddenAt, prompts, cands, 256)
	if err != nil {
		return nil, fmt.Errorf("sft.best_of_n: score candidates: %w", err)
	}
	out := &bonStep{}
	chosen := make([]int, len(exs))
	var qBest, vSum float64
	correct, first := 0, 0
	for i := range exs {
		best, ok := value.BestOfN(q[i], v[i])
		ok = ok || r.cfg.SFT.BestOfN.Gate == "none"
		qBest += q[i][best]
		vSum += v[i]
		if r.score(r.codec.text(cands[i][0]), exs[i]).Correct {
			first++
		}
		chosen[i] = -1
		if !ok || len(cands[i][best]) == 0 {
			continue
		}
		chosen[i] = best
		if r.score(r.codec.text(cands[i][best]), exs[i]).Correct {
			correct++
		}
		out.prompts = append(out.prompts, prompts[i])
		out.answers = append(out.answers, cands[i][best])
		out.coef = append(out.coef, -1/float64(len(exs)*len(cands[i][best])))
	}
	if r.opts.observeBestOfN != nil {
		r.opts.observeBestOfN(step, prompts, cands, chosen)
	}
	B := float64(len(exs))
	out.vals = map[string]float64{
		"bon_kept":           float64(len(out.prompts)) / B,
		"bon_q_best":         qBest / B,
		"bon_v":              vSum / B,
		"bon_first_correct":  float64(first) / B, // a random candidate (the first) is correct
		"bon_target_correct": float64(correct) / float64(max(len(out.prompts), 1)),
	}
	return out, nil
}
