// Package instinct implements instruction optimisation with a neural-bandit surrogate (INSTINCT,
// Lin et al. 2023): each candidate instruction is represented by a language model's hidden
// representation of it; a small neural network fitted to the scores observed so far predicts the
// score of the others, and the next instruction to try maximises prediction + an exploration
// bonus (NeuralUCB-style: the bonus is the uncertainty of a linear model on the network's last
// hidden features, β·sqrt(φᵀ A⁻¹ φ), A = λI + Σ φφᵀ over the tried ones). The budget is the number
// of scored instructions (each one costs a task evaluation with the model).
package instinct

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Config sets the search.
type Config struct {
	Budget int     // instructions scored in total
	Init   int     // random instructions scored before the surrogate is used
	Hidden int     // surrogate hidden units
	Beta   float64 // exploration weight
	Lambda float64 // ridge of A
	Epochs int     // surrogate training epochs per round
	LR     float64
	Seed   uint64
}

// DefaultConfig is a small NeuralUCB setting.
func DefaultConfig(budget int) Config {
	return Config{Budget: budget, Init: 4, Hidden: 16, Beta: 0.05, Lambda: 1, Epochs: 300, LR: 0.1, Seed: 1}
}

// mlp is x → w2·tanh(W1 x + b1) + b2.
type mlp struct {
	in, h  int
	w1, b1 []float64
	w2     []float64
	b2     float64
}

func newMLP(in, h int, rng *rand.Rand) *mlp {
	m := &mlp{in: in, h: h, w1: make([]float64, in*h), b1: make([]float64, h), w2: make([]float64, h)}
	s := 1 / math.Sqrt(float64(in))
	for i := range m.w1 {
		m.w1[i] = s * rng.NormFloat64()
	}
	for i := range m.w2 {
		m.w2[i] = rng.NormFloat64() / math.Sqrt(float64(h))
	}
	return m
}

// features returns the hidden activations φ(x) (with a trailing 1 for the bias) and the output.
func (m *mlp) features(x []float64) ([]float64, float64) {
	phi := make([]float64, m.h+1)
	out := m.b2
	for i := range m.h {
		z := m.b1[i]
		for j, v := range x {
			z += m.w1[i*m.in+j] * v
		}
		phi[i] = math.Tanh(z)
		out += m.w2[i] * phi[i]
	}
	phi[m.h] = 1
	return phi, out
}

// fit runs full-batch gradient descent on the mean squared error.
func (m *mlp) fit(xs [][]float64, ys []float64, epochs int, lr float64) {
	n := float64(len(xs))
	for range epochs {
		gw1, gb1, gw2 := make([]float64, len(m.w1)), make([]float64, m.h), make([]float64, m.h)
		var gb2 float64
		for k, x := range xs {
			phi, out := m.features(x)
			d := (out - ys[k]) / n
			gb2 += d
			for i := range m.h {
				gw2[i] += d * phi[i]
				dz := d * m.w2[i] * (1 - phi[i]*phi[i])
				gb1[i] += dz
				for j, v := range x {
					gw1[i*m.in+j] += dz * v
				}
			}
		}
		for i := range m.w1 {
			m.w1[i] -= lr * gw1[i]
		}
		for i := range m.h {
			m.b1[i] -= lr * gb1[i]
			m.w2[i] -= lr * gw2[i]
		}
		m.b2 -= lr * gb2
	}
}

// UCBBonus is sqrt(φᵀ A⁻¹ φ) with A = λI + Σ_k φ_k φ_kᵀ, solved directly (Cholesky) — the
// exploration term of NeuralUCB on the network's last-layer features.
func UCBBonus(phi []float64, tried [][]float64, lambda float64) float64 {
	d := len(phi)
	A := make([]float64, d*d)
	for i := range d {
		A[i*d+i] = lambda
	}
	for _, p := range tried {
		for i := range d {
			for j := range d {
				A[i*d+j] += p[i] * p[j]
			}
		}
	}
	// Cholesky A = L Lᵀ, then ‖L⁻¹ φ‖².
	L := make([]float64, d*d)
	for i := range d {
		for j := 0; j <= i; j++ {
			s := A[i*d+j]
			for k := range j {
				s -= L[i*d+k] * L[j*d+k]
			}
			if i == j {
				L[i*d+i] = math.Sqrt(math.Max(s, 1e-300))
			} else {
				L[i*d+j] = s / L[j*d+j]
			}
		}
	}
	y := make([]float64, d)
	var q float64
	for i := range d {
		s := phi[i]
		for k := range i {
			s -= L[i*d+k] * y[k]
		}
		y[i] = s / L[i*d+i]
		q += y[i] * y[i]
	}
	return math.Sqrt(q)
}

// Step records one scored instruction.
type Step struct {
	Index int     // candidate index
	Score float64 // observed score
	Best  float64 // best score so far
}

// Optimize searches the candidates (their representations reprs) for the highest score, calling
// score at most cfg.Budget times: cfg.Init random picks, then NeuralUCB picks among the untried.
func Optimize(reprs [][]float64, score func(i int) (float64, error), cfg Config) ([]Step, error) {
	if len(reprs) == 0 || cfg.Budget < 1 || cfg.Init < 1 || cfg.Hidden < 1 || cfg.Lambda <= 0 {
		return nil, fmt.Errorf("instinct: bad search (%d candidates, config %+v)", len(reprs), cfg)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1157))
	budget := min(cfg.Budget, len(reprs))
	tried := map[int]bool{}
	var hist []Step
	var xs [][]float64
	var ys []float64
	best := math.Inf(-1)
	record := func(i int) error {
		s, err := score(i)
		if err != nil {
			return err
		}
		tried[i] = true
		best = math.Max(best, s)
		hist = append(hist, Step{i, s, best})
		xs, ys = append(xs, reprs[i]), append(ys, s)
		return nil
	}
	for _, i := range rng.Perm(len(reprs))[:min(cfg.Init, budget)] {
		if err := record(i); err != nil {
			return nil, err
		}
	}
	for len(hist) < budget {
		net := newMLP(len(reprs[0]), cfg.Hidden, rng)
		net.fit(xs, ys, cfg.Epochs, cfg.LR)
		var phis [][]float64
		for _, x := range xs {
			p, _ := net.features(x)
			phis = append(phis, p)
		}
		pick, top := -1, math.Inf(-1)
		for i, x := range reprs {
			if tried[i] {
				continue
			}
			p, f := net.features(x)
			if u := f + cfg.Beta*UCBBonus(p, phis, cfg.Lambda); u > top {
				pick, top = i, u
			}
		}
		if err := record(pick); err != nil {
			return nil, err
		}
	}
	return hist, nil
}

// RandomSearch scores budget candidates drawn uniformly without replacement (the baseline).
func RandomSearch(n int, score func(i int) (float64, error), budget int, seed uint64) ([]Step, error) {
	rng := rand.New(rand.NewPCG(seed, 0x7a4d))
	var hist []Step
	best := math.Inf(-1)
	for _, i := range rng.Perm(n)[:min(budget, n)] {
		s, err := score(i)
		if err != nil {
			return nil, err
		}
		best = math.Max(best, s)
		hist = append(hist, Step{i, s, best})
	}
	return hist, nil
}
