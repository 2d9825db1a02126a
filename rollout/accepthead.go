package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/polo-rl/polo/internal/fmath"
)

// AcceptHead is SpecDec++'s acceptance-prediction head on the draft model's final hidden state: a
// residual MLP (Layers blocks x ← x + SiLU(W x + b), then a logistic output) that predicts the
// probability that the target accepts the token at that position. It is plain Go: a few thousand
// parameters trained on the host.
type AcceptHead struct {
	Dim    int         `json:"dim"`
	W      [][]float64 `json:"w"` // Layers × Dim×Dim (row-major)
	B      [][]float64 `json:"b"` // Layers × Dim
	Wo     []float64   `json:"wo"`
	Bo     float64     `json:"bo"`
	Layers int         `json:"layers"`
}

// NewAcceptHead initialises a head with small seeded weights (the residual blocks start near the
// identity) and an output bias of 0.
func NewAcceptHead(dim, layers int, seed uint64) *AcceptHead {
	rng := rand.New(rand.NewPCG(seed, 0x5dec))
	h := &AcceptHead{Dim: dim, Layers: layers, Wo: make([]float64, dim)}
	s := 0.1 / math.Sqrt(float64(dim))
	for range layers {
		w := make([]float64, dim*dim)
		for j := range w {
			w[j] = s * rng.NormFloat64()
		}
		h.W = append(h.W, w)
		h.B = append(h.B, make([]float64, dim))
	}
	for j := range h.Wo {
		h.Wo[j] = s * rng.NormFloat64()
	}
	return h
}

func silu(z float64) (y, dy float64) {
	s := 1 / (1 + fmath.Exp(-z))
	return z * s, s * (1 + z*(1-s))
}

// forward returns the output logit and, when keep is set, the activations for backprop:
// xs[l] is the input of block l (xs[Layers] the output) and zs[l] the pre-activation.
func (h *AcceptHead) forward(x []float32, keep bool) (logit float64, xs, zs [][]float64) {
	cur := make([]float64, h.Dim)
	for j := range cur {
		cur[j] = float64(x[j])
	}
	if keep {
		xs = append(xs, cur)
	}
	for l := range h.Layers {
		next := make([]float64, h.Dim)
		z := make([]float64, h.Dim)
		w := h.W[l]
		for i := range h.Dim {
			s := h.B[l][i]
			row := w[i*h.Dim : (i+1)*h.Dim]
			for j, v := range cur {
				s += row[j] * v
			}
			z[i] = s
			a, _ := silu(s)
			next[i] = cur[i] + a
		}
		cur = next
		if keep {
			xs, zs = append(xs, cur), append(zs, z)
		}
	}
	logit = h.Bo
	for j, v := range cur {
		logit += h.Wo[j] * v
	}
	return logit, xs, zs
}

// Predict returns the predicted acceptance probability for a hidden state.
func (h *AcceptHead) Predict(x []float32) float64 {
	z, _, _ := h.forward(x, false)
	return 1 / (1 + fmath.Exp(-z))
}

// HeadTrainConfig sets the head's training: weighted binary cross-entropy with soft targets
// y = min(1, p/q) and weight RejectWeight on the rejection class (SpecDec++: 6), AdamW-free Adam.
type HeadTrainConfig struct {
	Epochs       int
	BatchSize    int
	LR           float64
	RejectWeight float64
	Seed         uint64
}

// DefaultHeadTrainConfig follows SpecDec++'s weight on the mismatch class (6).
func DefaultHeadTrainConfig() HeadTrainConfig {
	return HeadTrainConfig{Epochs: 20, BatchSize: 64, LR: 3e-3, RejectWeight: 6, Seed: 1}
}

// Loss is the weighted BCE of one example: −[y log σ(s) + w (1−y) log(1−σ(s))].
func headLoss(logit, y, w float64) float64 {
	// log σ(s) = −softplus(−s), log(1−σ(s)) = −softplus(s)
	return y*softplus(-logit) + w*(1-y)*softplus(logit)
}

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(fmath.Exp(x))
}

// grads accumulates the gradient of headLoss for one example into g (same layout as h) and
// returns the loss.
func (h *AcceptHead) grads(x []float32, y, w float64, g *AcceptHead) float64 {
	logit, xs, zs := h.forward(x, true)
	sig := 1 / (1 + fmath.Exp(-logit))
	dl := -y*(1-sig) + w*(1-y)*sig // d loss / d logit
	g.Bo += dl
	dx := make([]float64, h.Dim)
	out := xs[h.Layers]
	for j := range dx {
		g.Wo[j] += dl * out[j]
		dx[j] = dl * h.Wo[j]
	}
	for l := h.Layers - 1; l >= 0; l-- {
		in, z, wl := xs[l], zs[l], h.W[l]
		dz := make([]float64, h.Dim)
		for i := range dz {
			_, ds := silu(z[i])
			dz[i] = dx[i] * ds
		}
		ndx := append([]float64(nil), dx...) // residual path
		for i := range h.Dim {
			if dz[i] == 0 {
				continue
			}
			g.B[l][i] += dz[i]
			row := wl[i*h.Dim : (i+1)*h.Dim]
			grow := g.W[l][i*h.Dim : (i+1)*h.Dim]
			for j := range row {
				grow[j] += dz[i] * in[j]
				ndx[j] += dz[i] * row[j]
			}
		}
		dx = ndx
	}
	return headLoss(logit, y, w)
}

func (h *AcceptHead) zeroLike() *AcceptHead {
	g := &AcceptHead{Dim: h.Dim, Layers: h.Layers, Wo: make([]float64, h.Dim)}
	for l := range h.Layers {
		g.W = append(g.W, make([]float64, len(h.W[l])))
		g.B = append(g.B, make([]float64, h.Dim))
	}
	return g
}

// params lists the parameter slices in a fixed order (Bo handled separately).
func (h *AcceptHead) params() [][]float64 {
	ps := [][]float64{h.Wo}
	for l := range h.Layers {
		ps = append(ps, h.W[l], h.B[l])
	}
	return ps
}

// Train fits the head on hidden states xs with soft acceptance targets ys in [0, 1] by minibatch
// Adam on the weighted BCE; it returns the mean loss of each epoch.
func (h *AcceptHead) Train(xs [][]float32, ys []float64, cfg HeadTrainConfig) ([]float64, error) {
	if len(xs) != len(ys) || len(xs) == 0 {
		return nil, fmt.Errorf("acceptance head: %d features and %d targets", len(xs), len(ys))
	}
	for i, x := range xs {
		if len(x) != h.Dim {
			return nil, fmt.Errorf("acceptance head: feature %d has %d dims, the head %d", i, len(x), h.Dim)
		}
		if !(ys[i] >= 0 && ys[i] <= 1) {
			return nil, fmt.Errorf("acceptance head: target %d is %v, want [0, 1]", i, ys[i])
		}
	}
	if cfg.Epochs < 1 || cfg.BatchSize < 1 || !(cfg.LR > 0) || cfg.RejectWeight < 0 {
		return nil, fmt.Errorf("acceptance head: bad training config %+v", cfg)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x4ead))
	const b1, b2, eps = 0.9, 0.999, 1e-8
	m, v := h.zeroLike(), h.zeroLike()
	var mBo, vBo float64
	step := 0
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	var losses []float64
	for range cfg.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var total float64
		for s := 0; s < len(order); s += cfg.BatchSize {
			batch := order[s:min(s+cfg.BatchSize, len(order))]
			g := h.zeroLike()
			for _, i := range batch {
				total += h.grads(xs[i], ys[i], cfg.RejectWeight, g)
			}
			step++
			scale := 1 / float64(len(batch))
			c1, c2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
			adam := func(p, gr, mm, vv []float64) {
				for j := range p {
					gj := gr[j] * scale
					mm[j] = b1*mm[j] + (1-b1)*gj
					vv[j] = b2*vv[j] + (1-b2)*gj*gj
					p[j] -= cfg.LR * (mm[j] / c1) / (math.Sqrt(vv[j]/c2) + eps)
				}
			}
			ps, gs, ms, vs := h.params(), g.params(), m.params(), v.params()
			for k := range ps {
				adam(ps[k], gs[k], ms[k], vs[k])
			}
			gb := g.Bo * scale
			mBo = b1*mBo + (1-b1)*gb
			vBo = b2*vBo + (1-b2)*gb*gb
			h.Bo -= cfg.LR * (mBo / c1) / (math.Sqrt(vBo/c2) + eps)
		}
		losses = append(losses, total/float64(len(xs)))
	}
	return losses, nil
}

// Save writes the head as JSON.
func (h *AcceptHead) Save(path string) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// LoadAcceptHead reads a head written by Save.
func LoadAcceptHead(path string) (*AcceptHead, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var h AcceptHead
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%s: not an acceptance head: %v", path, err)
	}
	if h.Dim < 1 || h.Layers < 0 || len(h.W) != h.Layers || len(h.B) != h.Layers || len(h.Wo) != h.Dim {
		return nil, fmt.Errorf("%s: malformed acceptance head (dim %d, %d layers)", path, h.Dim, h.Layers)
	}
	for l := range h.Layers {
		if len(h.W[l]) != h.Dim*h.Dim || len(h.B[l]) != h.Dim {
			return nil, fmt.Errorf("%s: malformed acceptance head layer %d", path, l)
		}
	}
	return &h, nil
}
