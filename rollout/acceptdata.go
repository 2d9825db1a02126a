package rollout

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// AcceptanceData builds the acceptance head's training set as SpecDec++ does (spec C4): responses
// are generated token by token, each token drawn from the draft's distribution q, except that with
// probability mix (SpecDec++'s mixing_ratio, default 0.15) it is drawn from the target's p instead,
// so that prefixes look like what verification leaves (mostly draft tokens, some target tokens).
// Every response token x becomes one example: the feature is the draft's hidden state at x's input
// position and the target is min(1, p(x)/q(x)), the probability that the target would accept x
// had the draft proposed it. (The exact way the paper's code mixes the two sources is unverified;
// this is our reading.)
func AcceptanceData(target Target, draft Draft, prompts [][]int32, cfg Config, mix float64, seed uint64) (xs [][]float32, ys []float64, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if !(mix >= 0 && mix <= 1) {
		return nil, nil, fmt.Errorf("rollout: mixing ratio %v, want [0, 1]", mix)
	}
	B := len(prompts)
	rngs := make([]*rand.Rand, B)
	seqs := make([][]int32, B)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(seed, uint64(i)))
		seqs[i] = slices.Clone(prompts[i])
	}
	done := make([]bool, B)
	for step := 0; step < cfg.MaxNewTokens; step++ {
		ids, mask := padRight(seqs)
		ql, _, err := draft.LogitsHidden(ids, mask)
		if err != nil {
			return nil, nil, fmt.Errorf("rollout: draft: %w", err)
		}
		pl, err := target.Logits(ids, mask)
		if err != nil {
			return nil, nil, fmt.Errorf("rollout: target: %w", err)
		}
		active := 0
		for i := range B {
			if done[i] {
				continue
			}
			last := len(seqs[i]) - 1
			z := ql[i][last]
			if rngs[i].Float64() < mix {
				z = pl[i][last]
			}
			d, err := specProbs(z, cfg)
			if err != nil {
				return nil, nil, err
			}
			tok := drawFrom(d, rngs[i])
			seqs[i] = append(seqs[i], tok)
			if slices.Contains(cfg.StopTokens, tok) {
				done[i] = true
			} else {
				active++
			}
		}
		if active == 0 {
			break
		}
	}
	// One pass of each model over the finished sequences gives p, q and the features.
	ids, mask := padRight(seqs)
	ql, hid, err := draft.LogitsHidden(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("rollout: draft: %w", err)
	}
	pl, err := target.Logits(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("rollout: target: %w", err)
	}
	for i := range B {
		for t := len(prompts[i]); t < len(seqs[i]); t++ {
			tok := seqs[i][t]
			p, err := specProbs(pl[i][t-1], cfg)
			if err != nil {
				return nil, nil, err
			}
			q, err := specProbs(ql[i][t-1], cfg)
			if err != nil {
				return nil, nil, err
			}
			y := 1.0
			if q[tok] > 0 {
				y = min(1, p[tok]/q[tok])
			}
			xs = append(xs, slices.Clone(hid[i][t]))
			ys = append(ys, y)
		}
	}
	return xs, ys, nil
}
