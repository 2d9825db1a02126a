package reward

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/polo-rl/polo/internal/fmath"
)

// ---------------------------------------------------------------------------------------------
// Components: named per-response reward terms, kept apart until the objective combines them.

// Components maps a component name ("correct", "format", "overlong", ...) to one value per
// response. All components of one batch have the same length.
type Components map[string][]float64

// Add stores a component, checking that its length matches the others.
func (c Components) Add(name string, values []float64) error {
	for n, v := range c {
		if len(v) != len(values) {
			return fmt.Errorf("reward component %q has %d values but %q has %d; one value per response", name, len(values), n, len(v))
		}
	}
	c[name] = values
	return nil
}

// Names returns the component names in sorted order (for stable logs).
func (c Components) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Combine returns sum_k weights[k] * c[k] per response. Every weight must name a component, and
// a component without a weight is an error too, so that nothing is dropped by a typo.
func (c Components) Combine(weights map[string]float64) ([]float64, error) {
	n := -1
	for name, v := range c {
		if _, ok := weights[name]; !ok {
			return nil, fmt.Errorf("reward component %q has no weight; set one (0 to log it without training on it)", name)
		}
		n = len(v)
	}
	for name := range weights {
		if _, ok := c[name]; !ok {
			return nil, fmt.Errorf("reward weight %q names no component (have %v)", name, c.Names())
		}
	}
	if n < 0 {
		return nil, fmt.Errorf("no reward components to combine")
	}
	out := make([]float64, n)
	for name, v := range c {
		w := weights[name]
		for i, x := range v {
			out[i] += w * x
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------------------------
// A4. DAPO soft overlong punishment.

// DAPOOverlong is min(-(L - (Lmax - Lcache)) / Lcache * factor, 0): zero up to Lmax-Lcache,
// falling linearly to -factor at Lmax. It is added to the correctness reward of every response.
func DAPOOverlong(length, maxLen, cacheLen int, factor float64) float64 {
	if cacheLen <= 0 {
		if length > maxLen {
			return -factor
		}
		return 0
	}
	expected := maxLen - cacheLen
	return math.Min(-float64(length-expected)/float64(cacheLen)*factor, 0)
}

// ---------------------------------------------------------------------------------------------
// A1. OTC: tool-call efficiency.

// OTCToolReward is OTC's tool reward for m tool calls. With nKnown false (no correct rollout has
// fixed the optimal count n yet) or variant "ppo" it is cos(m*pi/(2m+c)); otherwise the GRPO form
// sin(f(m,n)*pi/(2n)) with f the harmonic-mean remap, which peaks at m = n. c > 0 is the
// smoothing constant (the maximum number of calls allowed).
func OTCToolReward(m, n int, nKnown bool, c float64, variant string) float64 {
	ppo := func() float64 { return math.Cos(float64(m) * math.Pi / (2*float64(m) + c)) }
	if variant == "ppo" || !nKnown {
		return ppo()
	}
	if n == 0 {
		if m == 0 {
			return 1
		}
		return ppo()
	}
	f := 2 * float64(n) * float64(m) / float64(m+n)
	return math.Sin(f * math.Pi / (2 * float64(n)))
}

// OTCReward is the multiplicative tool-integrated reward alpha * rtool * rphi (a wrong answer
// gets 0 whatever its tool use).
func OTCReward(rtool, rphi, alpha float64) float64 { return alpha * rtool * rphi }

// OTCHistory keeps, per prompt id, the fewest tool calls of any correct rollout seen so far
// (n_scope = global). It is safe for concurrent use and serialises to JSON for checkpoints.
type OTCHistory struct {
	mu  sync.Mutex
	min map[string]int
}

// NewOTCHistory returns an empty history.
func NewOTCHistory() *OTCHistory { return &OTCHistory{min: map[string]int{}} }

// MinCorrect returns the stored minimum for qid.
func (h *OTCHistory) MinCorrect(qid string) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.min[qid]
	return n, ok
}

// Update records a correct rollout of qid with m tool calls.
func (h *OTCHistory) Update(qid string, m int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.min[qid]; !ok || m < old {
		h.min[qid] = m
	}
}

// OTCConfig configures OTCGroup.
type OTCConfig struct {
	C       float64 // smoothing constant = max tool calls allowed (must be > 0)
	Alpha   float64 // final reward scale; default 1
	Variant string  // "grpo" (default) or "ppo"
	Scope   string  // "global" (default: minimum across steps, kept in the history) or "local"
}

// OTCGroup shapes the rewards of one group of rollouts of the same prompt: n is estimated from
// the group's correct rollouts (and, for scope global, the history, which is then updated), and
// each response gets alpha * rtool(m, n) * rphi. hist may be nil for scope local.
func OTCGroup(qid string, toolCalls []int, correct []bool, rphi []float64, cfg OTCConfig, hist *OTCHistory) ([]float64, error) {
	if cfg.C <= 0 {
		return nil, fmt.Errorf("otc: c = %v; set it to the maximum number of tool calls (> 0)", cfg.C)
	}
	if len(correct) != len(toolCalls) || len(rphi) != len(toolCalls) {
		return nil, fmt.Errorf("otc: %d tool counts, %d correctness flags, %d rewards; want equal lengths", len(toolCalls), len(correct), len(rphi))
	}
	alpha := cfg.Alpha
	if alpha == 0 {
		alpha = 1
	}
	n, known := 0, false
	if cfg.Scope != "local" && hist != nil {
		n, known = hist.MinCorrect(qid)
	}
	for i, m := range toolCalls {
		if correct[i] && (!known || m < n) {
			n, known = m, true
		}
	}
	if known && cfg.Scope != "local" && hist != nil {
		hist.Update(qid, n)
	}
	out := make([]float64, len(toolCalls))
	for i, m := range toolCalls {
		out[i] = OTCReward(OTCToolReward(m, n, known, cfg.C, cfg.Variant), rphi[i], alpha)
	}
	return out, nil
}

// MarshalJSON saves the history (for checkpoints).
func (h *OTCHistory) MarshalJSON() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return json.Marshal(h.min)
}

// UnmarshalJSON restores a saved history.
func (h *OTCHistory) UnmarshalJSON(b []byte) error {
	m := map[string]int{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("otc history: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.min = m
	return nil
}

// ---------------------------------------------------------------------------------------------
// A2. HAPO: history-aware length reward.

// HAPOConfig configures the HAPO length reward (README defaults in DefaultHAPOConfig).
type HAPOConfig struct {
	Weight     float64 // w_lr in [0,1]
	Type       string  // "cosine" or "linear"
	Mode       string  // history aggregate: "min" or "mean"
	Tolerance  float64 // linear only
	RepNgram   int     // repetition term n-gram size
	RepPenalty float64 // <= 0; 0 disables the repetition term
}

// DefaultHAPOConfig returns the HAPO README defaults.
func DefaultHAPOConfig() HAPOConfig {
	return HAPOConfig{Weight: 1, Type: "cosine", Mode: "min", Tolerance: 0.1, RepNgram: 3}
}

// Check validates a configuration.
func (c HAPOConfig) Check() error {
	switch {
	case c.Weight < 0 || c.Weight > 1:
		return fmt.Errorf("hapo: w_lr = %v must be in [0,1] so every correct response outranks every incorrect one", c.Weight)
	case c.Type != "cosine" && c.Type != "linear":
		return fmt.Errorf("hapo: type_lr %q: use cosine or linear", c.Type)
	case c.Mode != "min" && c.Mode != "mean":
		return fmt.Errorf("hapo: mode %q: use min or mean", c.Mode)
	case c.RepPenalty > 0:
		return fmt.Errorf("hapo: rep_penalty = %v must be <= 0", c.RepPenalty)
	}
	return nil
}

// HAPOLengthReward is the length term for a response of length L given the prompt's history
// length h (hKnown false = no correct response seen yet, reward 0).
func HAPOLengthReward(h float64, hKnown bool, L int, correct bool, cfg HAPOConfig) float64 {
	if !hKnown {
		return 0
	}
	l := float64(L)
	var r float64
	if cfg.Type == "linear" {
		tol := cfg.Tolerance
		switch {
		case correct && l < h:
			r = 1 - l/h
		case correct && l < (1+tol)*h:
			r = 0
		case correct:
			r = math.Max(-0.7, -(l-(1+tol)*h)/h)
		case l < (1+tol)*h:
			r = 0
		default:
			r = math.Max(-1, -(l-(1+tol)*h)/h)
		}
		return cfg.Weight * r
	}
	base := -1.0
	if l < 2*h {
		base = math.Cos(l / h * math.Pi / 2)
	}
	if correct {
		r = math.Max(base, -0.7)
	} else {
		r = math.Min(base, 0)
	}
	return cfg.Weight * r
}

// HAPORepetition penalises repeated n-grams: every token covered by an n-gram that already
// occurred at an earlier start gets penalty; the result is the mean over tokens.
func HAPORepetition(tokens []int, n int, penalty float64) float64 {
	if penalty == 0 || n <= 0 || len(tokens) < n {
		return 0
	}
	seen := map[string]bool{}
	pen := make([]bool, len(tokens))
	for i := 0; i+n <= len(tokens); i++ {
		key := fmt.Sprint(tokens[i : i+n])
		if seen[key] {
			for j := i; j < i+n; j++ {
				pen[j] = true
			}
		}
		seen[key] = true
	}
	count := 0
	for _, p := range pen {
		if p {
			count++
		}
	}
	return penalty * float64(count) / float64(len(tokens))
}

// hapoNull is the reference implementation's "no history" sentinel; values <= 0 or >= it are null.
const hapoNull = 100000

// HAPOHistory is the per-prompt history length. Score a batch with Get, then call UpdateBatch
// once all rewards of the batch are computed. It is safe for concurrent use and serialises to
// JSON, so it belongs in checkpoints.
type HAPOHistory struct {
	mu   sync.Mutex
	Mode string             `json:"mode"`
	H    map[string]float64 `json:"h"`
	Cnt  map[string]int     `json:"cnt,omitempty"`
}

// NewHAPOHistory returns an empty history for mode "min" or "mean".
func NewHAPOHistory(mode string) *HAPOHistory {
	return &HAPOHistory{Mode: mode, H: map[string]float64{}, Cnt: map[string]int{}}
}

// Get returns h[qid] and whether it is set.
func (s *HAPOHistory) Get(qid string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.H[qid]
	if !ok || h <= 0 || h >= hapoNull {
		return 0, false
	}
	return h, true
}

// UpdateBatch folds the lengths of this batch's correct rollouts into the history.
func (s *HAPOHistory) UpdateBatch(qids []string, lengths []int, correct []bool) error {
	if len(lengths) != len(qids) || len(correct) != len(qids) {
		return fmt.Errorf("hapo history: %d qids, %d lengths, %d flags; want equal lengths", len(qids), len(lengths), len(correct))
	}
	byQ := map[string][]float64{}
	var order []string
	for i, q := range qids {
		if correct[i] {
			if _, ok := byQ[q]; !ok {
				order = append(order, q)
			}
			byQ[q] = append(byQ[q], float64(lengths[i]))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range order {
		lc := byQ[q]
		if s.Mode == "mean" {
			mean := 0.0
			for _, l := range lc {
				mean += l
			}
			mean /= float64(len(lc))
			if c := s.Cnt[q]; c == 0 {
				s.H[q] = mean
			} else {
				r := float64(len(lc)) / float64(c+len(lc))
				s.H[q] = r*mean + (1-r)*s.H[q]
			}
			s.Cnt[q] += len(lc)
			continue
		}
		h, ok := s.H[q]
		if !ok || h <= 0 || h >= hapoNull {
			h = math.Inf(1)
		}
		for _, l := range lc {
			h = math.Min(h, l)
		}
		s.H[q] = h
	}
	return nil
}

// Merge folds another worker's history into s (min: element-wise min; mean: count-weighted).
func (s *HAPOHistory) Merge(o *HAPOHistory) {
	o.mu.Lock()
	oh, oc := make(map[string]float64, len(o.H)), make(map[string]int, len(o.Cnt))
	for k, v := range o.H {
		oh[k] = v
	}
	for k, v := range o.Cnt {
		oc[k] = v
	}
	o.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for q, h := range oh {
		mine, ok := s.H[q]
		switch {
		case !ok:
			s.H[q], s.Cnt[q] = h, oc[q]
		case s.Mode == "mean":
			c1, c2 := s.Cnt[q], oc[q]
			if c1+c2 > 0 {
				s.H[q] = (mine*float64(c1) + h*float64(c2)) / float64(c1+c2)
			}
			s.Cnt[q] = c1 + c2
		default:
			s.H[q] = math.Min(mine, h)
		}
	}
}

// HAPOGroup computes R = c + rlen + rrep for a batch using the history as it was before the batch,
// then updates the history. tokens may be nil when the repetition term is disabled.
func HAPOGroup(hist *HAPOHistory, qids []string, lengths []int, correct []bool, tokens [][]int, cfg HAPOConfig) ([]float64, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	out := make([]float64, len(qids))
	for i, q := range qids {
		h, ok := hist.Get(q)
		r := HAPOLengthReward(h, ok, lengths[i], correct[i], cfg)
		if correct[i] {
			r++
		}
		if tokens != nil {
			r += HAPORepetition(tokens[i], cfg.RepNgram, cfg.RepPenalty)
		}
		out[i] = r
	}
	return out, hist.UpdateBatch(qids, lengths, correct)
}

// ---------------------------------------------------------------------------------------------
// A3. DRPO length signal among correct responses.

// DRPOLengthWeights returns, for each response, its weight among the correct responses of its
// group: w_i = softmax over the group's correct responses of r_len/lambda with r_len = 1 - L/C.
// Incorrect responses get 0. The weights of each group's correct responses sum to 1; a longer
// correct response gets a strictly smaller (never negative) weight. DRPO's loss (objective
// package) multiplies the positive term by these weights.
func DRPOLengthWeights(groups []string, lengths []int, correct []bool, maxLen int, lambda float64) ([]float64, error) {
	if lambda <= 0 || maxLen <= 0 {
		return nil, fmt.Errorf("drpo: lambda = %v and C = %d must be > 0", lambda, maxLen)
	}
	if len(lengths) != len(groups) || len(correct) != len(groups) {
		return nil, fmt.Errorf("drpo: %d groups, %d lengths, %d flags; want equal lengths", len(groups), len(lengths), len(correct))
	}
	z := make([]float64, len(groups))
	maxZ := map[string]float64{}
	for i, g := range groups {
		if !correct[i] {
			continue
		}
		z[i] = (1 - float64(lengths[i])/float64(maxLen)) / lambda
		if m, ok := maxZ[g]; !ok || z[i] > m {
			maxZ[g] = z[i]
		}
	}
	sum := map[string]float64{}
	w := make([]float64, len(groups))
	for i, g := range groups {
		if correct[i] {
			w[i] = fmath.Exp(z[i] - maxZ[g])
			sum[g] += w[i]
		}
	}
	for i, g := range groups {
		if correct[i] {
			w[i] /= sum[g]
		}
	}
	return w, nil
}

// ---------------------------------------------------------------------------------------------
// A5. AutoRule-style rule-based reward.

// RuleReward is the fraction of satisfied rules; zero rules is an error (reject at configuration).
func RuleReward(verdicts []bool) (float64, error) {
	if len(verdicts) == 0 {
		return 0, fmt.Errorf("rule reward: no rules; configure at least one")
	}
	n := 0
	for _, v := range verdicts {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(verdicts)), nil
}

// Rule is one checkable rule: a name and a check on the response (a verifier function or a call
// to a judge model wrapped as a function).
type Rule struct {
	Name  string
	Check func(prompt, response string) (bool, error)
}

// RuleSet scores a response by the fraction of rules it satisfies. A rule whose check fails
// (error or panic) counts as not satisfied and is reported.
type RuleSet struct{ Rules []Rule }

// NewRuleSet rejects an empty rule list.
func NewRuleSet(rules []Rule) (*RuleSet, error) {
	if len(rules) == 0 {
		return nil, fmt.Errorf("rule reward: no rules; configure at least one")
	}
	return &RuleSet{Rules: rules}, nil
}

// Score returns r_rule and the per-rule verdicts; errs lists rules that could not be checked.
func (r *RuleSet) Score(prompt, response string) (score float64, verdicts []bool, errs []error) {
	verdicts = make([]bool, len(r.Rules))
	for i, rule := range r.Rules {
		ok, err := safeRule(rule, prompt, response)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %q: %w", rule.Name, err))
		}
		verdicts[i] = ok && err == nil
	}
	score, _ = RuleReward(verdicts)
	return score, verdicts, errs
}

func safeRule(rule Rule, prompt, response string) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("panicked: %v", p)
		}
	}()
	return rule.Check(prompt, response)
}

// ParseJudgeVerdict reads a judge model's answer: the first case-insensitive "yes" or "no"
// decides; anything else is false.
func ParseJudgeVerdict(out string) bool {
	for i := 0; i+2 <= len(out); i++ {
		c := out[i] | 0x20
		if c == 'y' && i+3 <= len(out) && (out[i+1]|0x20) == 'e' && (out[i+2]|0x20) == 's' {
			return true
		}
		if c == 'n' && (out[i+1]|0x20) == 'o' {
			return false
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------------
// A6. ASPO advantage shaping for early code invocation.

// ASPOShape adds, for each correct response that calls code, the clipped bias
// delta * (p - pbar) / Lbar (means over the eligible responses of its group), clipped to
// ±k*|A|. Other responses keep their advantage. delta < 0 rewards earlier calls.
// Presets: conservative delta=-2, k=0.7; aggressive delta=-2.5, k=0.9.
func ASPOShape(adv []float64, correct, hasCode []bool, firstCode, length []int, groups []string, delta, k float64) ([]float64, error) {
	n := len(adv)
	if len(correct) != n || len(hasCode) != n || len(firstCode) != n || len(length) != n || len(groups) != n {
		return nil, fmt.Errorf("aspo: all inputs need one entry per response (%d advantages)", n)
	}
	type acc struct{ p, l, n float64 }
	stats := map[string]*acc{}
	for i := range adv {
		if correct[i] && hasCode[i] {
			a := stats[groups[i]]
			if a == nil {
				a = &acc{}
				stats[groups[i]] = a
			}
			a.p += float64(firstCode[i])
			a.l += float64(length[i])
			a.n++
		}
	}
	out := append([]float64(nil), adv...)
	for i := range adv {
		if !(correct[i] && hasCode[i]) {
			continue
		}
		a := stats[groups[i]]
		pbar, lbar := a.p/a.n, a.l/a.n
		if lbar <= 0 {
			continue
		}
		bias := delta * (float64(firstCode[i]) - pbar) / lbar
		lim := k * math.Abs(adv[i])
		out[i] = adv[i] + math.Max(-lim, math.Min(lim, bias))
	}
	return out, nil
}
