package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/internal/fmath"
)

// Speculative decoding (Leviathan et al. 2023; Chen et al. 2023) with SpecDec++'s adaptive
// candidate length (Huang, Guo, Wang 2024; spec C4). A small draft model proposes tokens, the
// target scores all of them in one forward pass, and the exact accept/reject rule keeps the output
// distribution equal to the target's (after the same temperature/top-k/top-p/min-p transforms).

// Target scores whole sequences: next-token logits at every position of each row, one pass.
// *model.Model satisfies it.
type Target interface {
	Logits(ids, mask [][]int32) ([][][]float32, error)
}

// Draft is the draft model: logits and final hidden states at every position (the hidden states
// feed the acceptance head). It must share the target's tokenizer. *model.Model satisfies it.
type Draft interface {
	LogitsHidden(ids, mask [][]int32) (logits, hidden [][][]float32, err error)
}

// SpecConfig configures speculative sampling.
type SpecConfig struct {
	// Sampling is the sampling configuration; its transforms apply to both models' logits.
	Sampling Config
	// K is the fixed number of drafted tokens per round when Head is nil (>= 1).
	K int
	// Head, when set, chooses the candidate length per round (SpecDec++): drafting stops once the
	// predicted probability that at least one drafted token is rejected exceeds Threshold, within
	// [KMin, KMax].
	Head       *AcceptHead
	Threshold  float64
	KMin, KMax int
}

// DefaultSpecConfig is SpecDec++'s default stopping rule (threshold 0.3, bounds [2, 20]) with
// plain temperature-1 sampling and fixed K = 4 when no head is given.
func DefaultSpecConfig() SpecConfig {
	return SpecConfig{Sampling: DefaultConfig(), K: 4, Threshold: 0.3, KMin: 2, KMax: 20}
}

func (c SpecConfig) validate() error {
	if err := c.Sampling.Validate(); err != nil {
		return err
	}
	if c.Sampling.TokenTemperature != nil || c.Sampling.StatsAfterLast {
		return fmt.Errorf("rollout: speculative sampling does not support TokenTemperature or StatsAfterLast")
	}
	if c.Head == nil {
		if c.K < 1 {
			return fmt.Errorf("rollout: speculative K = %d, want >= 1", c.K)
		}
		return nil
	}
	switch {
	case !(c.Threshold > 0 && c.Threshold < 1):
		return fmt.Errorf("rollout: speculative threshold = %v, want 0 < h < 1", c.Threshold)
	case c.KMin < 1 || c.KMax < c.KMin:
		return fmt.Errorf("rollout: speculative bounds [%d, %d], want 1 <= kmin <= kmax", c.KMin, c.KMax)
	}
	return nil
}

// maxK is the most tokens a round may draft.
func (c SpecConfig) maxK() int {
	if c.Head == nil {
		return c.K
	}
	return c.KMax
}

// SpecStats counts what speculative sampling did, summed over rows.
type SpecStats struct {
	Rounds      int // verification rounds (row-rounds)
	Drafted     int // draft tokens proposed
	Accepted    int // draft tokens accepted
	Emitted     int // tokens emitted (accepted + one corrected or bonus token per round, cut at stops)
	TargetCalls int // target forward passes (each covers a whole batch)
	DraftCalls  int // draft forward passes
}

// MeanAcceptLen is the mean number of tokens emitted per round (accepted + 1), the speed-up
// factor over plain decoding in target passes.
func (s SpecStats) MeanAcceptLen() float64 {
	if s.Rounds == 0 {
		return 0
	}
	return float64(s.Emitted) / float64(s.Rounds)
}

// AcceptRate is the fraction of drafted tokens accepted.
func (s SpecStats) AcceptRate() float64 {
	if s.Drafted == 0 {
		return 0
	}
	return float64(s.Accepted) / float64(s.Drafted)
}

// SpecDecPPStop is the SpecDec++ stopping rule after drafting the k-th token (k >= 1) given the
// predicted acceptance probabilities acc[0..k-2] of the tokens drafted before it: stop when
// 1 − Π acc > h, never before kmin, always at kmax.
func SpecDecPPStop(acc []float64, k int, h float64, kmin, kmax int) bool {
	if k >= kmax {
		return true
	}
	if k < kmin {
		return false
	}
	cum := 1.0
	for i := 0; i < k-1 && i < len(acc); i++ {
		cum *= acc[i]
	}
	return 1-cum > h
}

// SpecDecPPLength is the candidate length the stopping rule gives for a sequence of predicted
// acceptance probabilities (spec C4's array form; the draft may also stop earlier at a stop token).
func SpecDecPPLength(acc []float64, h float64, kmin, kmax int) int {
	for k := 1; ; k++ {
		if SpecDecPPStop(acc, k, h, kmin, kmax) {
			return k
		}
	}
}

// SpecVerify runs one verification round for one row: drafted tokens d with the draft
// distributions q[i] they were drawn from and the target distributions p[0..len(d)] (probabilities
// over the vocabulary, after the same transforms). Token d[i] is accepted iff u <= p_i(d)/q_i(d);
// at the first rejection one token is drawn from norm(max(0, p_i − q_i)); if all are accepted a
// bonus token is drawn from p[len(d)]. It returns the emitted tokens and how many drafts were
// accepted.
func SpecVerify(d []int32, q, p [][]float64, rng *rand.Rand) (emitted []int32, accepted int) {
	avxstate.Clear() // the draws below are scalar loops over the vocabulary
	for i, tok := range d {
		pi, qi := p[i][tok], q[i][tok]
		if qi > 0 && rng.Float64()*qi <= pi && pi > 0 { // u <= p/q without dividing
			emitted = append(emitted, tok)
			continue
		}
		return append(emitted, drawResidual(p[i], q[i], rng)), i
	}
	return append(emitted, drawFrom(p[len(d)], rng)), len(d)
}

// drawResidual draws from norm(max(0, p − q)). If p ≤ q everywhere (p = q up to rounding; then a
// rejection has probability ~0) it draws from p.
func drawResidual(p, q []float64, rng *rand.Rand) int32 {
	var total float64
	for j := range p {
		if r := p[j] - q[j]; r > 0 {
			total += r
		}
	}
	if !(total > 0) {
		return drawFrom(p, rng)
	}
	u := rng.Float64() * total
	last := int32(-1)
	var acc float64
	for j := range p {
		r := p[j] - q[j]
		if r <= 0 {
			continue
		}
		last = int32(j)
		if acc += r; acc > u {
			return last
		}
	}
	return last
}

// drawFrom draws a token from a probability vector (inverse CDF in id order).
func drawFrom(p []float64, rng *rand.Rand) int32 {
	var total float64
	for _, x := range p {
		total += x
	}
	u := rng.Float64() * total
	last := int32(-1)
	var acc float64
	for j, x := range p {
		if x <= 0 {
			continue
		}
		last = int32(j)
		if acc += x; acc > u {
			return last
		}
	}
	return last
}

// SpecOutputDist is the distribution of the token one verification step emits when the draft
// proposes from q and the target's is p: q(x)·min(1, p/q) + P(reject)·norm(max(0, p−q))(x). It
// equals p; it exists so tests can check that identity numerically.
func SpecOutputDist(p, q []float64) []float64 {
	out := make([]float64, len(p))
	var reject, rtotal float64
	for j := range p {
		if q[j] > 0 {
			out[j] = q[j] * min(1, p[j]/q[j])
			reject += q[j] * max(0, 1-p[j]/q[j])
		}
		rtotal += max(0, p[j]-q[j])
	}
	if rtotal > 0 {
		for j := range p {
			out[j] += reject * max(0, p[j]-q[j]) / rtotal
		}
	}
	return out
}

// specProbs returns the sampling distribution of one logit row under cfg (a point mass on the argmax
// when greedy).
func specProbs(z []float32, cfg Config) ([]float64, error) {
	lp, err := Transform(z, cfg)
	if err != nil {
		return nil, err
	}
	for j, x := range lp {
		lp[j] = fmath.Exp(x)
	}
	return lp, nil
}

// SpecSample draws one completion per prompt by speculative sampling. Row i draws from its own PCG
// stream seeded by (seed, i). The completions' per-token fields describe the target's
// distributions, as Sample's would. Rows are drafted together (a batch draft pass per drafted
// token, continuing until every row of the round has stopped) and verified together (one target
// pass per round).
func SpecSample(target Target, draft Draft, prompts [][]int32, cfg SpecConfig, seed uint64) ([]Completion, SpecStats, error) {
	var st SpecStats
	if err := cfg.validate(); err != nil {
		return nil, st, err
	}
	if len(prompts) == 0 {
		return nil, st, fmt.Errorf("rollout: no prompts to sample from")
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, st, fmt.Errorf("rollout: prompt %d is empty; every prompt needs at least one token (e.g. BOS)", i)
		}
	}
	scfg := cfg.Sampling
	B := len(prompts)
	rngs := make([]*rand.Rand, B)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(seed, uint64(i)))
	}
	out := make([]Completion, B)
	for i := range out {
		out[i].AfterSelfCertainty = float32(math.NaN())
	}
	done := make([]bool, B)
	rec := newSampler(scfg, nil)
	for {
		var rows []int
		for i := range B {
			if !done[i] {
				rows = append(rows, i)
			}
		}
		if len(rows) == 0 {
			return out, st, nil
		}
		seqs := make([][]int32, len(rows))
		for r, i := range rows {
			seqs[r] = append(slices.Clone(prompts[i]), out[i].Tokens...)
		}
		// Draft.
		n := len(rows)
		drafts := make([][]int32, n)
		qs := make([][][]float64, n)
		accs := make([][]float64, n)
		stopped := make([]bool, n)
		room := make([]int, n) // tokens this row may still emit
		for r, i := range rows {
			room[r] = scfg.MaxNewTokens - len(out[i].Tokens)
		}
		for k := 1; ; k++ {
			cur := make([][]int32, n)
			for r := range rows {
				cur[r] = append(slices.Clone(seqs[r]), drafts[r]...)
			}
			ids, mask := padRight(cur)
			logits, hidden, err := draft.LogitsHidden(ids, mask)
			if err != nil {
				return nil, st, fmt.Errorf("rollout: draft: %w", err)
			}
			st.DraftCalls++
			active := 0
			for r := range rows {
				if stopped[r] {
					continue
				}
				last := len(cur[r]) - 1
				if k > 1 && cfg.Head != nil {
					accs[r] = append(accs[r], cfg.Head.Predict(hidden[r][last]))
				}
				q, err := specProbs(logits[r][last], scfg)
				if err != nil {
					return nil, st, fmt.Errorf("rollout: draft row %d: %w", rows[r], err)
				}
				tok := drawFrom(q, rngs[rows[r]])
				drafts[r] = append(drafts[r], tok)
				qs[r] = append(qs[r], q)
				stop := slices.Contains(scfg.StopTokens, tok) || k >= room[r]
				if cfg.Head == nil {
					stop = stop || k >= cfg.K
				} else {
					stop = stop || SpecDecPPStop(accs[r], k, cfg.Threshold, cfg.KMin, cfg.KMax)
				}
				if stop {
					stopped[r] = true
				} else {
					active++
				}
			}
			if active == 0 {
				break
			}
		}
		// Verify: one target pass over every row's prefix + drafts.
		full := make([][]int32, n)
		for r := range rows {
			full[r] = append(slices.Clone(seqs[r]), drafts[r]...)
		}
		ids, mask := padRight(full)
		tl, err := target.Logits(ids, mask)
		if err != nil {
			return nil, st, fmt.Errorf("rollout: target: %w", err)
		}
		st.TargetCalls++
		for r, i := range rows {
			base := len(seqs[r]) - 1 // position whose logits give the first drafted token's p
			K := len(drafts[r])
			p := make([][]float64, K+1)
			for j := range p {
				if p[j], err = specProbs(tl[r][base+j], scfg); err != nil {
					return nil, st, fmt.Errorf("rollout: target row %d: %w", i, err)
				}
			}
			emitted, acc := SpecVerify(drafts[r], qs[r], p, rngs[i])
			st.Rounds++
			st.Drafted += K
			st.Accepted += acc
			c := &out[i]
			for j, tok := range emitted {
				if err := record(rec, c, tl[r][base+j], tok); err != nil {
					return nil, st, fmt.Errorf("rollout: row %d: %w", i, err)
				}
				st.Emitted++
				if slices.Contains(scfg.StopTokens, tok) {
					c.Finish, done[i] = FinishStop, true
					break
				}
				if len(c.Tokens) >= scfg.MaxNewTokens {
					c.Finish, done[i] = FinishLength, true
					break
				}
			}
		}
	}
}

// record appends one emitted token with the statistics of the target distribution z it was drawn
// from (the fields Sample records).
func record(sp *sampler, c *Completion, z []float32, tok int32) error {
	info, err := sp.transform(z)
	if err != nil {
		return err
	}
	mlog := info.modelLog(int(tok))
	lp, raw := mlog, mlog
	if !sp.cfg.greedy() {
		lp = sp.s[tok] - math.Log(info.total)
		raw = sp.s[tok] - info.lseT
	}
	c.Tokens = append(c.Tokens, tok)
	c.LogProbs = append(c.LogProbs, float32(lp))
	c.RawLogProbs = append(c.RawLogProbs, float32(raw))
	c.ModelLogProbs = append(c.ModelLogProbs, float32(mlog))
	c.Entropy = append(c.Entropy, float32(info.stats.Entropy))
	c.SelfCertainty = append(c.SelfCertainty, float32(info.stats.SelfCertainty))
	return nil
}

// padRight pads rows to one length with id 0 and mask 0.
func padRight(rows [][]int32) (ids, mask [][]int32) {
	T := 0
	for _, r := range rows {
		T = max(T, len(r))
	}
	ids, mask = make([][]int32, len(rows)), make([][]int32, len(rows))
	for i, r := range rows {
		ids[i], mask[i] = make([]int32, T), make([]int32, T)
		copy(ids[i], r)
		for j := range r {
			mask[i][j] = 1
		}
	}
	return ids, mask
}
