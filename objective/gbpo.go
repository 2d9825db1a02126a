package objective

import (
	"fmt"
	"math"
)

// GBPO (Ao et al., arXiv 2604.18578): per-token loss |ρ - tr_i|·|A_i| pulls the ratio toward a
// bounded target tr_i = 1 - eps_low + (eps_low + eps_high)·σ(Ã_i/t_g) set by the median-centred
// advantage; no clipping.
func init() {
	registerSurrogate("gbpo", "GBPO: advantage-weighted L1 pull of the ratio toward a bounded, median-signed target (no clipping)",
		GBPOParams{SurrogateParams: DefaultSurrogateParams(), TG: 1e-4},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip}
		},
		func(c *GBPOParams, s *Surrogate) (Objective, error) {
			g := &GBPO{Surrogate: s, tg: c.TG}
			if g.tg <= 0 {
				return nil, fmt.Errorf("t_g=%v: want > 0", g.tg)
			}
			s.prepare = g.prepare
			return g, nil
		})
}

// GBPOParams configure gbpo: t_g bounds the ratio target.
type GBPOParams struct {
	SurrogateParams
	TG float64 `param:"t_g"`
}

// BoundTargeter is implemented by objectives that need a second per-token array computed once on the
// whole rollout batch next to the advantages (gbpo's target ratios). The trainer stores it and slices
// it into Batch.BoundTarget for each mini-batch, like the advantages.
type BoundTargeter interface {
	BoundTargets(b *Batch) ([][]float64, error)
}

// GBPO is the gbpo objective: a Surrogate whose per-token loss pulls ρ toward a bounded target.
type GBPO struct {
	*Surrogate
	tg float64
}

// BoundTargets implements BoundTargeter.
func (g *GBPO) BoundTargets(b *Batch) ([][]float64, error) { return g.targets(b) }

// targets: Ã_i = (r_i - median_g)/(std_g + eps_adv) (linear-interpolation median, unbiased std;
// a group of one: median 0, std 1), tr_i = 1 - eps_low + (eps_low+eps_high)·σ(Ã_i/t_g).
func (g *GBPO) targets(b *Batch) ([][]float64, error) {
	c := g.Surrogate.adv
	if err := check(b, needRewards|needGroup); err != nil {
		return nil, err
	}
	sc := c.outcome(b)
	tr := make([]float64, len(sc))
	for _, grp := range groups(b.Group, b.Mask) {
		vals := make([]float64, len(grp))
		for k, i := range grp {
			vals[k] = sc[i]
		}
		med, sd := median(vals), std(vals, true)
		if len(grp) == 1 {
			med, sd = 0, 1
		}
		for _, i := range grp {
			at := (sc[i] - med) / (sd + c.eps)
			tr[i] = 1 - g.Surrogate.EpsLow + (g.Surrogate.EpsLow+g.Surrogate.EpsHigh)*sigmoid(at/g.tg)
		}
	}
	return broadcast(tr, b.Mask), nil
}

func (g *GBPO) prepare(b *Batch, _ [][]float64) (tokenFunc, error) {
	tr := b.BoundTarget
	if tr == nil {
		var err error
		if tr, err = g.targets(b); err != nil {
			return nil, fmt.Errorf("gbpo needs bound_target or rewards and group of whole groups: %w", err)
		}
	}
	return func(i, t int, x, dx, a float64) (float64, float64, clipState, bool) {
		d := x - tr[i][t]
		sign := 0.0
		if d > 0 {
			sign = 1
		} else if d < 0 {
			sign = -1
		}
		return math.Abs(d) * math.Abs(a), sign * math.Abs(a) * dx, clipNone, true
	}, nil
}
