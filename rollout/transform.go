package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/internal/fmath"
)

// scLogFloor clamps log p_j in the self-certainty sum: one exact zero probability would make
// KL(U || p) infinite (spec C1).
const scLogFloor = -1e4

// TokenStats are the per-token quantities of the untransformed model distribution p = softmax(z).
type TokenStats struct {
	// Entropy is -Σ p_j log p_j in nats.
	Entropy float64
	// SelfCertainty is KL(U || p) = -log V - (1/V) Σ_j max(log p_j, -1e4) (spec C1).
	SelfCertainty float64
}

// pick is the result of choosing one token from one logit row.
type pick struct {
	token    int32
	logp     float64 // log-prob under the distribution sampled from (after all transforms)
	rawLogp  float64 // log_softmax(z/T)[token], before filtering (z itself when greedy)
	modelLog float64 // log_softmax(z)[token]
	temp     float64 // the temperature the token was drawn with
	stats    TokenStats
}

// sampler holds the scratch buffers for one row so that rows can be processed in parallel without
// allocation. It is not safe for concurrent use.
type sampler struct {
	cfg  Config
	rng  *rand.Rand // nil for greedy
	d    []float64  // z - max(z)
	s    []float64  // (z - max z) / T, -Inf where removed by a filter
	w    []float64  // exp(s): unnormalised weights of the sampling distribution, 0 where removed
	tmp  []float64  // top-k selection scratch
	cand []int32    // top-p candidates
}

func newSampler(cfg Config, rng *rand.Rand) *sampler { return &sampler{cfg: cfg, rng: rng} }

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// choose applies the transform pipeline to one row of logits and draws a token.
func (sp *sampler) choose(z []float32) (pick, error) {
	lp, err := sp.transform(z)
	if err != nil {
		return pick{}, err
	}
	if sp.cfg.greedy() {
		return pick{token: int32(lp.argmax), logp: lp.modelLog(lp.argmax), rawLogp: lp.modelLog(lp.argmax),
			modelLog: lp.modelLog(lp.argmax), stats: lp.stats}, nil
	}
	// Inverse-CDF draw over the kept tokens in id order.
	u := sp.rng.Float64() * lp.total
	tok, acc := -1, 0.0
	for j, wj := range sp.w {
		if wj == 0 {
			continue
		}
		tok = j
		acc += wj
		if acc > u {
			break
		}
	}
	return pick{
		token:    int32(tok),
		logp:     sp.s[tok] - math.Log(lp.total),
		rawLogp:  sp.s[tok] - lp.lseT,
		modelLog: lp.modelLog(tok),
		temp:     lp.temp,
		stats:    lp.stats,
	}, nil
}

// rowInfo summarises one transformed row.
type rowInfo struct {
	argmax int
	logS   float64 // log Σ exp(z - max z): log_softmax(z)_j = d_j - logS
	lseT   float64 // log Σ exp(s) before filtering
	total  float64 // Σ w after filtering
	temp   float64 // temperature applied
	stats  TokenStats
	d      []float64
}

func (r rowInfo) modelLog(j int) float64 { return r.d[j] - r.logS }

// transform validates z, computes the model-distribution statistics and, unless greedy, fills
// sp.s and sp.w with the tempered and filtered scores and weights.
func (sp *sampler) transform(z []float32) (rowInfo, error) {
	V := len(z)
	if V == 0 {
		return rowInfo{}, fmt.Errorf("empty logit row")
	}
	// Everything below is scalar float code over the vocabulary: legacy SSE, slow on Intel Xeons
	// while a preemption has left the AVX upper state dirty (see package avxstate).
	avxstate.Clear()
	m, arg := math.Inf(-1), -1
	for j, v := range z {
		x := float64(v)
		if math.IsNaN(x) || math.IsInf(x, 1) {
			return rowInfo{}, fmt.Errorf("logit of token %d is %v; the model produced non-finite output", j, v)
		}
		if x > m {
			m, arg = x, j
		}
	}
	if arg < 0 {
		return rowInfo{}, fmt.Errorf("every logit is -Inf; nothing can be sampled")
	}
	sp.d = grow(sp.d, V)
	sp.w = grow(sp.w, V)
	d, w := sp.d[:V], sp.w[:V]
	// One exp per token: S = Σ e^{d_j}; entropy = log S - (Σ e^{d_j} d_j)/S. Self-certainty needs
	// Σ_j max(d_j - log S, -1e4) = Σ d_j - V log S except for the rare tokens below the floor;
	// since 0 <= log S <= log V, only d_j < rareBelow can be clamped, and those weigh
	// e^{-9900} = 0 in float64, so they are set aside and summed exactly afterwards.
	const rareBelow = scLogFloor + 100
	var S, A, sumD float64
	rare := 0
	for j, v := range z {
		dj := float64(v) - m
		d[j] = dj
		if dj < rareBelow {
			w[j] = 0
			rare++
			continue
		}
		e := fmath.Exp(dj)
		w[j] = e
		S += e
		A += e * dj
		sumD += dj
	}
	logS := math.Log(S)
	sumLog := sumD - float64(V-rare)*logS
	if rare > 0 {
		for _, dj := range d {
			if dj < rareBelow {
				sumLog += max(dj-logS, scLogFloor)
			}
		}
	}
	info := rowInfo{argmax: arg, logS: logS, d: d, stats: TokenStats{
		Entropy:       max(logS-A/S, 0),
		SelfCertainty: -math.Log(float64(V)) - sumLog/float64(V),
	}}
	if sp.cfg.greedy() {
		return info, nil
	}

	// Temperature. With T = 1 the weights computed above are reused.
	T := sp.cfg.Temperature
	if sp.cfg.TokenTemperature != nil {
		T = sp.cfg.TokenTemperature(info.stats.Entropy)
		if !(T > 0) || math.IsInf(T, 0) {
			return rowInfo{}, fmt.Errorf("token temperature %v for entropy %v: want a finite value > 0", T, info.stats.Entropy)
		}
	}
	info.temp = T
	sp.s = grow(sp.s, V)
	s := sp.s
	if T == 1 {
		copy(s, d)
		info.lseT = logS
	} else {
		var ST float64
		for j, dj := range d {
			s[j] = dj / T
			e := fmath.Exp(s[j])
			w[j] = e
			ST += e
		}
		info.lseT = math.Log(ST)
	}

	// Top-k: remove tokens below the k-th largest score (ties kept).
	if k := sp.cfg.TopK; k > 0 && k < V {
		sp.tmp = grow(sp.tmp, V)
		copy(sp.tmp, s)
		tau := kthLargest(sp.tmp, k)
		for j := range s {
			if s[j] < tau {
				s[j], w[j] = math.Inf(-1), 0
			}
		}
	}

	// Top-p: remove every token whose ascending cumulative mass is <= 1-p (the most probable
	// token is always kept).
	if p := sp.cfg.TopP; p > 0 && p < 1 {
		sp.topP(p)
	}

	// Min-p: remove tokens with probability < m * max probability. The weights are proportional
	// to the probabilities, and the argmax (weight e^0 / T-scaled maximum) is always kept.
	if mp := sp.cfg.MinP; mp > 0 {
		wmax := w[arg]
		for j := range w {
			if w[j] < mp*wmax {
				s[j], w[j] = math.Inf(-1), 0
			}
		}
	}

	for _, wj := range w {
		info.total += wj
	}
	return info, nil
}

// topP applies the nucleus filter to sp.s and sp.w in place. Only tokens with probability at
// least eps = (1-p)/n (n = tokens still kept) can survive: all lighter tokens together weigh less
// than 1-p, so they are removed without sorting, and only the candidates are sorted.
func (sp *sampler) topP(p float64) {
	s, w := sp.s, sp.w
	var total float64
	n := 0
	for _, wj := range w {
		if wj > 0 {
			total += wj
			n++
		}
	}
	eps := (1 - p) / float64(n) * total // in weight units
	sp.cand = sp.cand[:0]
	var low float64 // mass (in weight units) of the kept tokens lighter than eps
	for j, wj := range w {
		switch {
		case wj == 0:
		case wj >= eps:
			sp.cand = append(sp.cand, int32(j))
		default:
			low += wj
		}
	}
	// Ascending by probability; among equal probabilities the higher id comes first so that the
	// lower id is the more likely survivor.
	slices.SortFunc(sp.cand, func(a, b int32) int {
		if w[a] != w[b] {
			if w[a] < w[b] {
				return -1
			}
			return 1
		}
		return int(b - a)
	})
	// The ascending cumulative mass only grows, so the removed candidates are a prefix.
	limit := (1 - p) * total
	cum, r := low, 0
	for r < len(sp.cand)-1 {
		cum += w[sp.cand[r]]
		if cum > limit {
			break
		}
		r++
	}
	for _, j := range sp.cand[:r] {
		s[j], w[j] = math.Inf(-1), 0
	}
	for j, wj := range w {
		if wj > 0 && wj < eps {
			s[j], w[j] = math.Inf(-1), 0
		}
	}
}

// kthLargest returns the k-th largest value of a (k is 1-based), reordering a. Quickselect with
// a median-of-three pivot: O(len(a)) on average, which matters for 150k-token vocabularies.
func kthLargest(a []float64, k int) float64 {
	target := k - 1
	lo, hi := 0, len(a)-1
	for lo < hi {
		x, y, z := a[lo], a[(lo+hi)/2], a[hi]
		pivot := max(min(x, y), min(max(x, y), z))
		i, j := lo, hi
		for i <= j {
			for a[i] > pivot {
				i++
			}
			for a[j] < pivot {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case target <= j:
			hi = j
		case target >= i:
			lo = i
		default:
			return a[target]
		}
	}
	return a[target]
}

// Transform returns the log-probabilities of the distribution Sample draws from for one logit
// row under cfg (-Inf for removed tokens). Under greedy decoding it is the point mass on the
// argmax (0 there, -Inf elsewhere). It exists so callers and tests can inspect the pipeline.
func Transform(z []float32, cfg Config) ([]float64, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sp := newSampler(cfg, nil)
	info, err := sp.transform(z)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(z))
	if cfg.greedy() {
		for j := range out {
			out[j] = math.Inf(-1)
		}
		out[info.argmax] = 0
		return out, nil
	}
	logTotal := math.Log(info.total)
	for j := range out {
		if sp.w[j] == 0 {
			out[j] = math.Inf(-1)
		} else {
			out[j] = sp.s[j] - logTotal
		}
	}
	return out, nil
}

// Stats returns the entropy and self-certainty of softmax(z) for one logit row.
func Stats(z []float32) (TokenStats, error) {
	info, err := newSampler(Config{MaxNewTokens: 1}, nil).transform(z)
	return info.stats, err
}
