// Package value implements value-based selection in the style of Digi-Q (Bai et al. 2025; spec C2)
// and B-Coder (Yu et al. 2023): Q and V heads trained by offline TD learning on frozen
// intermediate-layer features of the policy, a conservative Bellman backup that only evaluates
// actions the data (the behaviour policy) took, a ranker of N candidate responses, and Digi-Q's
// Best-of-N policy extraction rule.
//
// The MDP of a response: the state after t tokens is the prompt plus those tokens, the action is
// the next token, the reward is the verifier's score on the last token and 0 before. A state's
// feature is the hidden state at its last position; a state-action's is the hidden state at the
// action token's position (the model has read the action there).
package value

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/polo-rl/polo/internal/fmath"
)

// Head is a 2-layer MLP x → w2·SiLU(W1 x + b1) + b2 on frozen features.
type Head struct {
	In, Hidden int
	W1, B1     []float64 // Hidden×In, Hidden
	W2         []float64 // Hidden
	B2         float64
}

// NewHead initialises a head with seeded small weights.
func NewHead(in, hidden int, seed uint64) *Head {
	rng := rand.New(rand.NewPCG(seed, 0x9))
	h := &Head{In: in, Hidden: hidden, W1: make([]float64, in*hidden), B1: make([]float64, hidden), W2: make([]float64, hidden)}
	s1, s2 := 1/math.Sqrt(float64(in)), 1/math.Sqrt(float64(hidden))
	for i := range h.W1 {
		h.W1[i] = s1 * rng.NormFloat64()
	}
	for i := range h.W2 {
		h.W2[i] = s2 * rng.NormFloat64()
	}
	return h
}

func silu(z float64) (y, dy float64) {
	s := 1 / (1 + fmath.Exp(-z))
	return z * s, s * (1 + z*(1-s))
}

// Eval returns the head's value for a feature vector.
func (h *Head) Eval(x []float32) float64 {
	out := h.B2
	for i := range h.Hidden {
		z := h.B1[i]
		row := h.W1[i*h.In : (i+1)*h.In]
		for j, v := range x {
			z += row[j] * float64(v)
		}
		a, _ := silu(z)
		out += h.W2[i] * a
	}
	return out
}

// clone returns a deep copy (a target network).
func (h *Head) clone() *Head {
	c := *h
	c.W1, c.B1, c.W2 = append([]float64(nil), h.W1...), append([]float64(nil), h.B1...), append([]float64(nil), h.W2...)
	return &c
}

// polyak moves h toward src: h ← (1−τ) h + τ src.
func (h *Head) polyak(src *Head, tau float64) {
	mix := func(a, b []float64) {
		for i := range a {
			a[i] = (1-tau)*a[i] + tau*b[i]
		}
	}
	mix(h.W1, src.W1)
	mix(h.B1, src.B1)
	mix(h.W2, src.W2)
	h.B2 = (1-tau)*h.B2 + tau*src.B2
}

// adam is the optimiser state of one head.
type adam struct {
	m, v *Head
	t    int
}

// step does one Adam step on the mean squared error ½(h(x)−y)² over a minibatch.
func (h *Head) step(xs [][]float32, ys []float64, lr float64, st *adam) float64 {
	if st.m == nil {
		st.m, st.v = zero(h), zero(h)
	}
	g := zero(h)
	var loss float64
	pre := make([]float64, h.Hidden)
	act := make([]float64, h.Hidden)
	for k, x := range xs {
		out := h.B2
		for i := range h.Hidden {
			z := h.B1[i]
			row := h.W1[i*h.In : (i+1)*h.In]
			for j, v := range x {
				z += row[j] * float64(v)
			}
			pre[i] = z
			act[i], _ = silu(z)
			out += h.W2[i] * act[i]
		}
		d := out - ys[k]
		loss += 0.5 * d * d
		g.B2 += d
		for i := range h.Hidden {
			g.W2[i] += d * act[i]
			_, ds := silu(pre[i])
			dz := d * h.W2[i] * ds
			g.B1[i] += dz
			grow := g.W1[i*h.In : (i+1)*h.In]
			for j, v := range x {
				grow[j] += dz * float64(v)
			}
		}
	}
	n := float64(len(xs))
	st.t++
	const b1, b2, eps = 0.9, 0.999, 1e-8
	c1, c2 := 1-math.Pow(b1, float64(st.t)), 1-math.Pow(b2, float64(st.t))
	upd := func(p, gr, m, v []float64) {
		for i := range p {
			gi := gr[i] / n
			m[i] = b1*m[i] + (1-b1)*gi
			v[i] = b2*v[i] + (1-b2)*gi*gi
			p[i] -= lr * (m[i] / c1) / (math.Sqrt(v[i]/c2) + eps)
		}
	}
	upd(h.W1, g.W1, st.m.W1, st.v.W1)
	upd(h.B1, g.B1, st.m.B1, st.v.B1)
	upd(h.W2, g.W2, st.m.W2, st.v.W2)
	bo, mo, vo := []float64{h.B2}, []float64{st.m.B2}, []float64{st.v.B2}
	upd(bo, []float64{g.B2}, mo, vo)
	h.B2, st.m.B2, st.v.B2 = bo[0], mo[0], vo[0]
	return loss / n
}

func zero(h *Head) *Head {
	return &Head{In: h.In, Hidden: h.Hidden, W1: make([]float64, len(h.W1)), B1: make([]float64, len(h.B1)), W2: make([]float64, len(h.W2))}
}

// Transition is one logged step: features of the state-action and of the state, the reward, and
// the index of the next step of the same episode (-1 when done).
type Transition struct {
	SA, S  []float32
	Reward float64
	Next   int // index of the next transition, -1 at the end of the episode
}

// TDTarget is the Q target of spec C2: y = r + γ (1 − done) V̄(s').
func TDTarget(r float64, done bool, vNext, gamma float64) float64 {
	if done {
		return r
	}
	return r + gamma*vNext
}

// Critic is a Q head on state-action features and a V head on state features.
type Critic struct {
	Q, V  *Head
	Gamma float64
	Layer int // the policy layer the features come from
}

// TrainConfig sets the offline TD training.
type TrainConfig struct {
	Gamma     float64 // discount (spec default 0.5 for device control; 1 for a single response)
	Tau       float64 // Polyak rate of the target networks (0.01)
	LR        float64
	Epochs    int
	BatchSize int
	Hidden    int
	Seed      uint64
}

// DefaultTrainConfig follows spec C2 where it gives numbers (τ = 0.01) with γ = 1: one response
// is one episode with its reward at the end.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Gamma: 1, Tau: 0.01, LR: 1e-3, Epochs: 30, BatchSize: 64, Hidden: 128, Seed: 1}
}

// Train fits the critic by offline TD learning with the conservative (in-data) backup:
//
//	yQ = r + γ (1 − done) V̄(s')    L_Q = mean (Q(s,a) − yQ)²
//	yV = Q̄(s, a_data)              L_V = mean (V(s) − yV)²
//
// V is regressed on the target Q of the action the data took — never a max over actions the
// behaviour policy did not take — which is B-Coder's point: a Bellman operator that stays inside
// the data's support does not over-estimate unseen actions. Target networks move by Polyak
// averaging after every step. It returns the mean Q loss of each epoch.
func Train(ts []Transition, cfg TrainConfig) (*Critic, []float64, error) {
	if len(ts) == 0 {
		return nil, nil, fmt.Errorf("value: no transitions")
	}
	d := len(ts[0].SA)
	for i, t := range ts {
		if len(t.SA) != d || len(t.S) != d {
			return nil, nil, fmt.Errorf("value: transition %d has feature sizes %d/%d, want %d", i, len(t.SA), len(t.S), d)
		}
		if t.Next >= len(ts) || math.IsNaN(t.Reward) {
			return nil, nil, fmt.Errorf("value: transition %d: next %d, reward %v", i, t.Next, t.Reward)
		}
	}
	if cfg.Epochs < 1 || cfg.BatchSize < 1 || !(cfg.LR > 0) || cfg.Hidden < 1 || !(cfg.Tau > 0 && cfg.Tau <= 1) || cfg.Gamma < 0 || cfg.Gamma > 1 {
		return nil, nil, fmt.Errorf("value: bad training config %+v", cfg)
	}
	c := &Critic{Q: NewHead(d, cfg.Hidden, cfg.Seed), V: NewHead(d, cfg.Hidden, cfg.Seed+1), Gamma: cfg.Gamma}
	qBar, vBar := c.Q.clone(), c.V.clone()
	var qa, va adam
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xd191))
	order := rng.Perm(len(ts))
	var losses []float64
	for range cfg.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var total float64
		for s := 0; s < len(order); s += cfg.BatchSize {
			batch := order[s:min(s+cfg.BatchSize, len(order))]
			sa, st := make([][]float32, len(batch)), make([][]float32, len(batch))
			yq, yv := make([]float64, len(batch)), make([]float64, len(batch))
			for k, i := range batch {
				t := ts[i]
				v := 0.0
				if t.Next >= 0 {
					v = vBar.Eval(ts[t.Next].S)
				}
				sa[k], st[k] = t.SA, t.S
				yq[k] = TDTarget(t.Reward, t.Next < 0, v, cfg.Gamma)
				yv[k] = qBar.Eval(t.SA)
			}
			total += c.Q.step(sa, yq, cfg.LR, &qa) * float64(len(batch))
			c.V.step(st, yv, cfg.LR, &va)
			qBar.polyak(c.Q, cfg.Tau)
			vBar.polyak(c.V, cfg.Tau)
		}
		losses = append(losses, total/float64(len(ts)))
	}
	return c, losses, nil
}

// BestOfN is Digi-Q's policy-extraction choice among N candidates: the Q-argmax (ties to the
// lowest index) and whether to imitate it, only when it beats the state's value (spec C2 gate).
func BestOfN(q []float64, v float64) (best int, imitate bool) {
	best = -1
	for i, x := range q {
		if best < 0 || x > q[best] {
			best = i
		}
	}
	return best, best >= 0 && q[best] > v
}

// Save writes the critic as JSON.
func (c *Critic) Save(path string) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// Load reads a critic written by Save.
func Load(path string) (*Critic, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Critic
	if err := json.Unmarshal(data, &c); err != nil || c.Q == nil || c.V == nil {
		return nil, fmt.Errorf("%s is not a critic written by polo value train", path)
	}
	for _, h := range []*Head{c.Q, c.V} {
		if len(h.W1) != h.In*h.Hidden || len(h.B1) != h.Hidden || len(h.W2) != h.Hidden {
			return nil, fmt.Errorf("%s: malformed head", path)
		}
	}
	return &c, nil
}
