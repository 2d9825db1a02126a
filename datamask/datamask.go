// Package datamask selects a subset of a dataset by policy-gradient mask learning (DATAMASK, Fan
// et al. 2025; spec C6): a Bernoulli mask over the examples with learnable logits is sampled G
// times per iteration, each mask is scored by a joint objective of quality, diversity and size,
// and REINFORCE with the group-mean baseline updates the logits. The objective and update are the
// spec's reconstruction (the paper's code was not available).
package datamask

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/polo-rl/polo/internal/fmath"
)

// Config sets the objective weights and the optimisation.
type Config struct {
	Ratio      float64 // target fraction ρ of examples to keep
	WQ, WD, WR float64 // weights of quality, diversity and the size penalty
	Groups     int     // diversity is computed within this many groups (shards) of the data; 1 = all pairs
	G          int     // masks sampled per iteration
	LR         float64
	Iters      int
	Seed       uint64
}

// DefaultConfig is the spec's default (G = 16, lr = 1, w_q = w_d = 1, w_r = 10, 200 iterations).
func DefaultConfig(ratio float64) Config {
	return Config{Ratio: ratio, WQ: 1, WD: 1, WR: 10, Groups: 1, G: 16, LR: 1, Iters: 200, Seed: 1}
}

func sigmoid(x float64) float64 { return 1 / (1 + fmath.Exp(-x)) }

// LogProb is log P(m | θ) of a mask under independent Bernoulli(σ(θ_i)).
func LogProb(m []bool, theta []float64) float64 {
	var s float64
	for i, t := range theta {
		p := sigmoid(t)
		if m[i] {
			s += math.Log(p)
		} else {
			s += math.Log(1 - p)
		}
	}
	return s
}

// GradLogProb is ∂ log P / ∂θ_i = m_i − σ(θ_i).
func GradLogProb(m []bool, theta []float64) []float64 {
	g := make([]float64, len(theta))
	for i, t := range theta {
		g[i] = -sigmoid(t)
		if m[i] {
			g[i]++
		}
	}
	return g
}

// Objective scores masks: J = w_q·mean quality + w_d·(−mean pairwise cosine within groups) −
// w_r·(n/N − ρ)².
type Objective struct {
	Qual  []float64
	Emb   [][]float64 // unit-normalised rows (nil: no diversity term)
	Group []int       // group of each example for the diversity term
	cfg   Config
}

// NewObjective normalises the embeddings and assigns examples to groups round-robin by index
// order after a seeded shuffle (shards of equal size).
func NewObjective(qual []float64, emb [][]float64, cfg Config) (*Objective, error) {
	n := len(qual)
	if n == 0 {
		return nil, fmt.Errorf("datamask: no examples")
	}
	if emb != nil && len(emb) != n {
		return nil, fmt.Errorf("datamask: %d qualities but %d embeddings", n, len(emb))
	}
	if !(cfg.Ratio > 0 && cfg.Ratio < 1) || cfg.G < 2 || cfg.Iters < 1 || !(cfg.LR > 0) || cfg.Groups < 1 {
		return nil, fmt.Errorf("datamask: bad config %+v (ratio in (0,1), G >= 2, iters >= 1, lr > 0, groups >= 1)", cfg)
	}
	o := &Objective{Qual: qual, cfg: cfg, Group: make([]int, n)}
	if emb != nil {
		o.Emb = make([][]float64, n)
		for i, e := range emb {
			var s float64
			for _, x := range e {
				s += x * x
			}
			s = math.Sqrt(s)
			if s == 0 {
				s = 1
			}
			o.Emb[i] = make([]float64, len(e))
			for j, x := range e {
				o.Emb[i][j] = x / s
			}
		}
	}
	perm := rand.New(rand.NewPCG(cfg.Seed, 0x9a)).Perm(n)
	for k, i := range perm {
		o.Group[i] = k % cfg.Groups
	}
	return o, nil
}

// Eval returns J(m).
func (o *Objective) Eval(m []bool) float64 {
	N := len(o.Qual)
	var sel []int
	for i, b := range m {
		if b {
			sel = append(sel, i)
		}
	}
	n := len(sel)
	d := float64(n)/float64(N) - o.cfg.Ratio
	j := -o.cfg.WR * d * d
	if n == 0 {
		return j
	}
	var q float64
	for _, i := range sel {
		q += o.Qual[i]
	}
	j += o.cfg.WQ * q / float64(n)
	if o.Emb != nil && o.cfg.WD != 0 {
		byGroup := make([][]int, o.cfg.Groups)
		for _, i := range sel {
			byGroup[o.Group[i]] = append(byGroup[o.Group[i]], i)
		}
		var cos float64
		pairs := 0
		for _, g := range byGroup {
			for a := range g {
				for b := a + 1; b < len(g); b++ {
					var s float64
					for k, x := range o.Emb[g[a]] {
						s += x * o.Emb[g[b]][k]
					}
					cos += 2 * s
					pairs += 2
				}
			}
		}
		if pairs > 0 {
			j -= o.cfg.WD * cos / float64(pairs)
		}
	}
	return j
}

// Step is one REINFORCE update from G sampled masks with the group-mean baseline; it returns the
// mean objective of the masks.
func Step(o *Objective, theta []float64, rng *rand.Rand) float64 {
	G := o.cfg.G
	masks := make([][]bool, G)
	js := make([]float64, G)
	var b float64
	for g := range masks {
		m := make([]bool, len(theta))
		for i, t := range theta {
			m[i] = rng.Float64() < sigmoid(t)
		}
		masks[g] = m
		js[g] = o.Eval(m)
		b += js[g]
	}
	b /= float64(G)
	grad := PolicyGradient(masks, js, theta)
	for i := range theta {
		theta[i] += o.cfg.LR * grad[i]
	}
	return b
}

// PolicyGradient is (1/G) Σ_g (J_g − mean J)(m^g_i − σ(θ_i)). The baseline is taken relative to
// J_1 so that equal objectives give exactly zero advantages (no rounding residue).
func PolicyGradient(masks [][]bool, js []float64, theta []float64) []float64 {
	G := float64(len(masks))
	var b float64
	for _, j := range js {
		b += j - js[0]
	}
	b /= G
	grad := make([]float64, len(theta))
	for g, m := range masks {
		a := (js[g] - js[0]) - b
		if a == 0 {
			continue
		}
		for i, gl := range GradLogProb(m, theta) {
			grad[i] += a * gl / G
		}
	}
	return grad
}

// Select learns the mask logits and returns the indices of the ⌈ρN⌉ examples with the largest
// logits (ties to the lower index), with the mean objective of each iteration.
func Select(qual []float64, emb [][]float64, cfg Config) ([]int, []float64, error) {
	o, err := NewObjective(qual, emb, cfg)
	if err != nil {
		return nil, nil, err
	}
	theta := make([]float64, len(qual))
	init := math.Log(cfg.Ratio / (1 - cfg.Ratio))
	for i := range theta {
		theta[i] = init
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xda7a))
	curve := make([]float64, cfg.Iters)
	for it := range cfg.Iters {
		curve[it] = Step(o, theta, rng)
	}
	idx := make([]int, len(theta))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return theta[idx[a]] > theta[idx[b]] })
	k := int(math.Ceil(cfg.Ratio * float64(len(theta))))
	sel := idx[:k]
	sort.Ints(sel)
	return sel, curve, nil
}
