package train

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/polo-rl/polo/reward"
)

// rewarder turns the scored responses of a batch into named reward components ("verifier", each
// reward.extra name, "hapo") and their weighted sum, which is the reward the objective sees. The
// components stay separate in the metrics and in objective.Batch.RewardComponents.
type rewarder struct {
	names   []string
	weights []float64
	extra   []reward.Verifier // reward.extra, protected like the main verifier
	hapo    *reward.HAPOHistory
	hapoCfg reward.HAPOConfig
	otc     bool    // reward.otc: component "otc" from the agent rows (agent.go)
	shape   *shaper // reward.drpo, reward.autorule (shaping.go)
}

func newRewarder(c Config) (*rewarder, error) {
	rw := &rewarder{names: []string{"verifier"}, weights: []float64{c.Reward.Weight}}
	timeout := time.Duration(c.Reward.Timeout * float64(time.Second))
	for i, e := range c.Reward.Extra {
		if e.Name == "" || contains([]string{"hapo", "otc", "drpo", "autorule"}, e.Name) || contains(rw.names, e.Name) {
			return nil, fmt.Errorf("config field reward.extra[%d].name: want a unique name other than verifier, hapo, otc, drpo and autorule, got %q", i, e.Name)
		}
		v, err := reward.NewVerifier(e.Kind, e.Options)
		if err != nil {
			return nil, fmt.Errorf("config field reward.extra[%d] (%s): %w", i, e.Name, err)
		}
		rw.names = append(rw.names, e.Name)
		rw.weights = append(rw.weights, e.Weight)
		rw.extra = append(rw.extra, reward.Safe(v, timeout))
	}
	if h := c.Reward.HAPO; h.Weight != 0 {
		cfg := reward.DefaultHAPOConfig()
		cfg.Weight, cfg.Type, cfg.Mode = h.WLR, h.Type, h.Mode
		if err := cfg.Check(); err != nil {
			return nil, fmt.Errorf("config field reward.hapo: %w", err)
		}
		rw.hapoCfg = cfg
		rw.hapo = reward.NewHAPOHistory(cfg.Mode)
		rw.names = append(rw.names, "hapo")
		rw.weights = append(rw.weights, h.Weight)
	}
	if c.Reward.OTC.Enabled { // with the verifier's weight: verifier + otc = OTC's reward
		rw.otc = true
		rw.names = append(rw.names, "otc")
		rw.weights = append(rw.weights, c.Reward.Weight)
	}
	var err error
	if rw.shape, err = newShaper(c, rw); err != nil {
		return nil, err
	}
	return rw, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// components scores the batch's responses (texts, already scored by the main verifier as main)
// and sets b.rewards, b.correct and b.components.
func (rw *rewarder) components(r *runner, b *rolloutBatch, texts []string, main []reward.Score) error {
	n := len(texts)
	comps := make([][]float64, n)
	for i := range n {
		comps[i] = make([]float64, 0, len(rw.names))
		comps[i] = append(comps[i], main[i].Value)
		for k, v := range rw.extra {
			s := r.scoreWith(v, "reward "+rw.names[1+k], texts[i], b.examples[i])
			comps[i] = append(comps[i], s.Value)
		}
	}
	correct := make([]bool, n)
	for i := range main {
		correct[i] = main[i].Correct
	}
	if rw.hapo != nil {
		qids := make([]string, n)
		lengths := make([]int, n)
		for i := range n {
			qids[i] = promptKey(b, i)
			lengths[i] = len(b.resps[i])
		}
		// HAPOGroup returns correctness + the length term; the correctness is the verifier's component.
		h, err := reward.HAPOGroup(rw.hapo, qids, lengths, correct, nil, rw.hapoCfg)
		if err != nil {
			return err
		}
		for i := range n {
			if correct[i] {
				h[i]--
			}
			comps[i] = append(comps[i], h[i])
		}
	}
	if rw.otc {
		if b.agent == nil || len(b.agent.otc) != n {
			return fmt.Errorf("reward.otc: no tool-call rewards for this batch (agent mode only)")
		}
		for i := range n {
			comps[i] = append(comps[i], b.agent.otc[i])
		}
	}
	if err := rw.shape.shape(r, b, texts, correct, comps); err != nil {
		return err
	}
	b.correct = correct
	b.components = comps
	b.rewards = make([]float64, n)
	for i := range n {
		for k, w := range rw.weights {
			b.rewards[i] += w * comps[i][k]
		}
	}
	return nil
}

// componentStats adds the mean of every component to the step's metrics.
func (rw *rewarder) componentStats(b *rolloutBatch, vals map[string]float64) {
	if len(rw.names) == 1 {
		return
	}
	for k, name := range rw.names {
		s := 0.0
		for _, c := range b.components {
			s += c[k]
		}
		vals["reward_"+name+"_mean"] = s / float64(len(b.components))
	}
}

// promptKey identifies a prompt across steps (HAPO history, SPO tracker) by its content: a synthetic
// generator gives every draw a new ID even when the prompt repeats.
func promptKey(b *rolloutBatch, i int) string {
	ex := b.examples[i]
	if ex.Prompt != "" || len(ex.Messages) == 0 {
		return ex.Prompt
	}
	data, _ := json.Marshal(ex.Messages) // plain strings: cannot fail
	return string(data)
}

const hapoStateKey = "hapo_history"

// saveState and loadState carry the HAPO history through checkpoints.
func (rw *rewarder) saveState(st *runState) error {
	if rw.hapo == nil {
		return nil
	}
	data, err := json.Marshal(rw.hapo)
	if err != nil {
		return err
	}
	if st.Extra == nil {
		st.Extra = map[string][]byte{}
	}
	st.Extra[hapoStateKey] = data
	return nil
}

func (rw *rewarder) loadState(st runState) error {
	data, ok := st.Extra[hapoStateKey]
	if rw.hapo == nil || !ok {
		return nil
	}
	h := reward.NewHAPOHistory(rw.hapoCfg.Mode)
	if err := json.Unmarshal(data, h); err != nil {
		return fmt.Errorf("hapo history: %w", err)
	}
	rw.hapo = h
	return nil
}
