package objective

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// SPO — Single-stream Policy Optimization (Xu & Ding, arXiv 2509.13232): one response per prompt; a
// persistent per-prompt Beta tracker replaces the group baseline, advantages are normalised over the
// batch, and prompts are sampled with priority sqrt(p̂(1-p̂)) + eps_explore.
func init() {
	registerSurrogate("spo", "SPO (single-stream): persistent per-prompt Beta value tracker as baseline (input prompt_id), batch normalisation, prioritised prompts",
		SPOParams{PolicyParams: policy(func(p *PolicyParams) { p.EpsHigh = 0.28 }), DHalf: 0.06, RhoMin: 0.875, RhoMax: 0.96, EpsExplore: 0.05},
		func() *Surrogate { return &Surrogate{Ratio: RatioToken, Gate: GateClip} },
		func(c *SPOParams, s *Surrogate) (Objective, error) {
			o := &SPO{Surrogate: s, DHalf: c.DHalf, RhoMin: c.RhoMin, RhoMax: c.RhoMax, EpsExplore: c.EpsExplore,
				tracker: map[string]*BetaTracker{}}
			if !(0 < o.RhoMin && o.RhoMin <= o.RhoMax && o.RhoMax <= 1) || o.DHalf <= 0 {
				return nil, fmt.Errorf("want 0 < rho_min <= rho_max <= 1 and d_half > 0 (got %v, %v, %v)", o.RhoMin, o.RhoMax, o.DHalf)
			}
			s.advFn, s.advNeed = o.advantages, needRewards|needPrompt
			s.declare = needDrift // the tracker's forgetting factor after each step
			return o, nil
		})
}

// SPOParams configure spo: the tracker's half-life d_half and forgetting-factor bounds, and the
// exploration bonus of the prompt priorities.
type SPOParams struct {
	PolicyParams
	DHalf      float64 `param:"d_half"`
	RhoMin     float64 `param:"rho_min"`
	RhoMax     float64 `param:"rho_max"`
	EpsExplore float64 `param:"eps_explore"`
}

// BetaTracker is one prompt's Beta posterior pseudo-counts.
type BetaTracker struct {
	Alpha float64 `json:"alpha"`
	Beta  float64 `json:"beta"`
}

// Value is p̂ = α/(α+β).
func (t BetaTracker) Value() float64 { return t.Alpha / (t.Alpha + t.Beta) }

// SPO is the spo objective; its tracker is state (Stateful) updated once per RL step (BatchObserver).
type SPO struct {
	*Surrogate
	DHalf, RhoMin, RhoMax, EpsExplore float64
	tracker                           map[string]*BetaTracker
}

// Init seeds a prompt's tracker from an offline estimate of k successes in n0 samples:
// N = 1/(1 - rho_min), α = N(k + 0.5)/(n0 + 1), β = N(n0 - k + 0.5)/(n0 + 1); n0 = 0 gives α = β = 0.5.
func (o *SPO) Init(prompt string, n0, k int) error {
	if n0 < 0 || k < 0 || k > n0 {
		return fmt.Errorf("spo init %q: want 0 <= k <= n0, got k=%d n0=%d", prompt, k, n0)
	}
	if n0 == 0 {
		o.tracker[prompt] = &BetaTracker{0.5, 0.5}
		return nil
	}
	n := 1 / (1 - o.RhoMin)
	o.tracker[prompt] = &BetaTracker{n * (float64(k) + 0.5) / float64(n0+1), n * (float64(n0-k) + 0.5) / float64(n0+1)}
	return nil
}

// Tracker returns a prompt's tracker (α = β = 0.5 for an unseen prompt).
func (o *SPO) Tracker(prompt string) BetaTracker {
	if t, ok := o.tracker[prompt]; ok {
		return *t
	}
	return BetaTracker{0.5, 0.5}
}

// advantages: a_i = r_i - p̂_{q(i)} with the tracker before this step's update, then
// (a - mean)/(std_unbiased + 1e-8) over the batch.
func (o *SPO) advantages(b *Batch) ([][]float64, error) {
	if err := check(b, needRewards|needPrompt); err != nil {
		return nil, err
	}
	for i, r := range b.Rewards { // the tracker's Beta posterior is over success rates
		if r < 0 || r > 1 {
			return nil, badInput("spo: rewards[%d] = %v: the tracker needs rewards in [0, 1]", i, r)
		}
	}
	s := o.adv.outcome(b)
	lens := rowLens(b.Mask)
	var vals []float64
	a := make([]float64, len(s))
	for i := range s {
		if lens[i] > 0 {
			a[i] = s[i] - o.Tracker(b.PromptID[i]).Value()
			vals = append(vals, a[i])
		}
	}
	if len(vals) > 0 {
		mu, sd := mean(vals), std(vals, true)
		for i := range a {
			if lens[i] > 0 {
				a[i] = (a[i] - mu) / (sd + 1e-8)
			}
		}
	}
	return broadcast(a, b.Mask), nil
}

// Forget is the KL-adaptive forgetting factor clamp(2^(-D/d_half), rho_min, rho_max).
func (o *SPO) Forget(drift float64) float64 {
	return math.Min(math.Max(math.Pow(2, -drift/o.DHalf), o.RhoMin), o.RhoMax)
}

// AfterBatch implements BatchObserver: α ← ρα + r, β ← ρβ + (1 - r) per response, with
// ρ = Forget(Batch.Drift[i]) (drift absent: 0, so ρ = rho_max). Rewards must lie in [0, 1]. Metrics:
// spo_drift_mean and spo_forget_mean over the responses.
func (o *SPO) AfterBatch(b *Batch) (map[string]float64, error) {
	if err := check(b, needRewards|needPrompt); err != nil {
		return nil, err
	}
	var drift, forget float64
	for i, r := range b.Rewards {
		if r < 0 || r > 1 {
			return nil, badInput("spo: rewards[%d] = %v: the tracker needs rewards in [0, 1]", i, r)
		}
		d := 0.0
		if len(b.Drift) > 0 {
			d = b.Drift[i]
		}
		if math.IsNaN(d) || d < 0 || math.IsInf(d, 0) {
			return nil, badInput("spo: drift[%d] = %v: want a finite number >= 0", i, d)
		}
		t := o.Tracker(b.PromptID[i])
		rho := o.Forget(d)
		o.tracker[b.PromptID[i]] = &BetaTracker{rho*t.Alpha + r, rho*t.Beta + 1 - r}
		drift += d
		forget += rho
	}
	n := math.Max(float64(len(b.Rewards)), 1)
	return map[string]float64{"spo_drift_mean": drift / n, "spo_forget_mean": forget / n}, nil
}

// SampleWeight is a prompt's sampling priority sqrt(p̂(1-p̂)) + eps_explore.
func (o *SPO) SampleWeight(prompt string) float64 {
	p := o.Tracker(prompt).Value()
	return math.Sqrt(p*(1-p)) + o.EpsExplore
}

// SamplePrompts draws n prompts from pool with probabilities proportional to SampleWeight, without
// replacement unless n exceeds the pool.
func (o *SPO) SamplePrompts(pool []string, n int, rng *rand.Rand) []string {
	var out []string
	for len(out) < n {
		left := append([]string(nil), pool...)
		for len(left) > 0 && len(out) < n {
			var sum float64
			w := make([]float64, len(left))
			for i, p := range left {
				w[i] = o.SampleWeight(p)
				sum += w[i]
			}
			u, k := rng.Float64()*sum, 0
			for ; k < len(left)-1 && u >= w[k]; k++ {
				u -= w[k]
			}
			out = append(out, left[k])
			left = append(left[:k], left[k+1:]...)
		}
	}
	return out
}

// MarshalState implements Stateful: the trackers as JSON, prompts sorted.
func (o *SPO) MarshalState() ([]byte, error) {
	keys := make([]string, 0, len(o.tracker))
	for k := range o.tracker {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type entry struct {
		Prompt string `json:"prompt"`
		BetaTracker
	}
	st := make([]entry, len(keys))
	for i, k := range keys {
		st[i] = entry{k, *o.tracker[k]}
	}
	return json.Marshal(st)
}

// UnmarshalState implements Stateful.
func (o *SPO) UnmarshalState(data []byte) error {
	var st []struct {
		Prompt string  `json:"prompt"`
		Alpha  float64 `json:"alpha"`
		Beta   float64 `json:"beta"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("spo state: %w", err)
	}
	o.tracker = map[string]*BetaTracker{}
	for _, e := range st {
		if !(e.Alpha >= 0 && e.Beta >= 0 && e.Alpha+e.Beta > 0) {
			return fmt.Errorf("spo state: prompt %q has alpha=%v beta=%v, want >= 0 with a positive sum", e.Prompt, e.Alpha, e.Beta)
		}
		o.tracker[e.Prompt] = &BetaTracker{e.Alpha, e.Beta}
	}
	return nil
}
