package objective

import "math"

// FiberPO (Li et al., arXiv 2603.08239). Only the abstract was available: this is the spec's
// provisional construction (docs/objectives.md), not a verified reproduction. The token ratio is
// factored as exp(u_i)·exp(e[i,t]) with u_i the trajectory's mean log-ratio (base) and e the token
// residual (fibre); a token's gradient is censored when |u_i| > delta_b or |e| > delta_f (with
// sign_aware, only when the update would move further out of the region).
func init() {
	registerSurrogate("fiberpo", "FiberPO (provisional): base gate on the trajectory log-ratio × fibre gate on token residuals, SMTM",
		FiberPOParams{SurrogateParams: group(func(p *SurrogateParams) { p.Agg = AggSeqMeanTokenMean }), DeltaB: 0.2, DeltaF: 0.2},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateRatio}
		},
		func(c *FiberPOParams, s *Surrogate) (Objective, error) {
			f := fiber{db: c.DeltaB, df: c.DeltaF, sign: c.SignAware}
			s.prepare = f.prepare
			return nil, nil
		})
}

// FiberPOParams configure fiberpo.
type FiberPOParams struct {
	SurrogateParams
	DeltaB    float64 `param:"delta_b"`
	DeltaF    float64 `param:"delta_f"`
	SignAware bool    `param:"sign_aware"`
}

type fiber struct {
	db, df float64
	sign   bool
}

// censored reports whether a log-ratio v outside [-delta, delta] blocks the gradient for advantage a.
func (f fiber) censored(v, delta, a float64) bool {
	if math.Abs(v) <= delta {
		return false
	}
	if !f.sign {
		return true
	}
	return (v > 0 && a > 0) || (v < 0 && a < 0)
}

func (f fiber) prepare(b *Batch, anchor [][]float64) (tokenFunc, error) {
	lens := rowLens(b.Mask)
	u := make([]float64, len(b.Mask))
	for i, row := range b.Mask {
		for t, m := range row {
			u[i] += m * (anchor[i][t] - b.OldLogP[i][t])
		}
		if lens[i] > 0 {
			u[i] /= lens[i]
		}
	}
	return func(i, t int, x, dx, a float64) (float64, float64, clipState, bool) {
		e := anchor[i][t] - b.OldLogP[i][t] - u[i]
		switch {
		case f.censored(u[i], f.db, a):
			return 0, 0, clipHigh, true
		case f.censored(e, f.df, a):
			return 0, 0, clipLow, true
		}
		return -a * x, -a * dx, clipNone, true
	}, nil
}
