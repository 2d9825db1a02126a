package train

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/task"
)

// This file trains on off-policy data (rl.offline_path): instead of sampling, each RL step draws
// sampling.prompts_per_step groups of given responses with given rewards from a JSONL file — CoPG's
// own setting (spec B4: "responses from any source"). Only objectives that do not read old_logp are
// allowed: an importance ratio against π_old assumes the policy sampled the responses.

// offlineGroup is one prompt with its responses and their rewards.
type offlineGroup struct {
	ex        task.Example
	responses []string
	rewards   []float64
}

// loadOfflineGroups reads rl.offline_path: each line {"prompt", "responses": [...], "rewards": [...]}
// (at least two responses) or a pair {"prompt", "chosen", "rejected"} with optional "chosen_reward"
// (default 1) and "rejected_reward" (default 0).
func loadOfflineGroups(path string) ([]offlineGroup, error) {
	var out []offlineGroup
	err := eachJSONLine(path, "rl.offline_path", func(line int, text []byte) error {
		var row struct {
			Prompt         string    `json:"prompt"`
			Responses      []string  `json:"responses"`
			Rewards        []float64 `json:"rewards"`
			Chosen         *string   `json:"chosen"`
			Rejected       *string   `json:"rejected"`
			ChosenReward   *float64  `json:"chosen_reward"`
			RejectedReward *float64  `json:"rejected_reward"`
		}
		if err := json.Unmarshal(text, &row); err != nil {
			return fmt.Errorf("%s line %d: %v", path, line, err)
		}
		if row.Prompt == "" {
			return fmt.Errorf("%s line %d: field \"prompt\": want a non-empty string", path, line)
		}
		g := offlineGroup{ex: task.Example{ID: fmt.Sprintf("%s:%d", path, line), Prompt: row.Prompt}}
		switch {
		case row.Chosen != nil || row.Rejected != nil:
			if row.Chosen == nil || row.Rejected == nil || *row.Chosen == "" || *row.Rejected == "" || row.Responses != nil {
				return fmt.Errorf("%s line %d: a pair needs non-empty \"chosen\" and \"rejected\" (and no \"responses\")", path, line)
			}
			rc, rr := 1.0, 0.0
			if row.ChosenReward != nil {
				rc = *row.ChosenReward
			}
			if row.RejectedReward != nil {
				rr = *row.RejectedReward
			}
			g.responses, g.rewards = []string{*row.Chosen, *row.Rejected}, []float64{rc, rr}
		default:
			if len(row.Responses) < 2 || len(row.Rewards) != len(row.Responses) {
				return fmt.Errorf("%s line %d: want \"responses\" (at least 2) and as many \"rewards\", or a pair \"chosen\"/\"rejected\"", path, line)
			}
			g.responses, g.rewards = row.Responses, row.Rewards
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no groups", path)
	}
	return out, nil
}

// checkOffline refuses what cannot train on off-policy data, before training.
func checkOffline(c Config, obj objective.Objective) error {
	if c.RL.OfflinePath == "" {
		return nil
	}
	r := c.Reward
	switch {
	case objective.Declares(obj, objective.InOldLogP):
		return fmt.Errorf("config field rl.offline_path: objective %s reads old_logp (importance ratios against the policy that sampled); off-policy groups need an objective without it (copg)", c.Algo.Name)
	case c.Agent.Enabled:
		return fmt.Errorf("config field rl.offline_path: not with agent mode")
	case len(r.Extra) > 0 || r.HAPO.Weight != 0 || r.DRPO.Weight != 0 || r.AutoRule.Weight != 0:
		return fmt.Errorf("config field rl.offline_path: the file's rewards are the reward; remove reward.extra and the shaping components")
	}
	return nil
}

// collectOffline draws nPrompts groups (seeded by step) and lays them out as a rollout batch: each
// response tokenised and ended with EOS (cut to sampling.max_new_tokens, then marked truncated), its
// reward the file's (component "verifier"; correct when > 0).
func (r *runner) collectOffline(purpose string, step, nPrompts int) (*rolloutBatch, float64, float64, error) {
	rng := rand.New(rand.NewPCG(seedFor(r.cfg.Seed, purpose+"-offline", step), 0))
	b := &rolloutBatch{}
	width := r.cfg.Sampling.MaxNewTokens
	for k := range nPrompts {
		g := r.offline[rng.IntN(len(r.offline))]
		p, err := r.codec.prompt(g.ex)
		if err != nil {
			return nil, 0, 0, err
		}
		for j, text := range g.responses {
			toks := append(r.codec.tok.Encode(text), r.codec.eos)
			finish := "stop"
			if len(toks) > width {
				toks, finish = toks[:width], "length"
			}
			b.examples = append(b.examples, g.ex)
			b.prompts = append(b.prompts, p)
			b.resps = append(b.resps, toks)
			b.finish = append(b.finish, finish)
			b.group = append(b.group, k)
			b.temps = append(b.temps, nil)
			b.rewards = append(b.rewards, g.rewards[j])
			b.components = append(b.components, []float64{g.rewards[j]})
			b.correct = append(b.correct, g.rewards[j] > 0)
		}
	}
	return b, 0, 0, nil
}
