package objective

import (
	"fmt"
	"math"
	"sort"

	"github.com/polo-rl/polo/internal/fmath"
)

// Numerical constants shared with verl, kept for parity (see docs/objectives.md).
const (
	logRatioClamp = 20.0 // token log-ratios are clamped to ±20 before exp
	seqLogClamp   = 10.0 // the sequence log-ratio (gspo) is clamped at +10
	whitenEps     = 1e-8 // variance epsilon of token whitening (ppo, reinforce++)
)

// Aggregation modes (parameter agg).
const (
	AggTokenMean        = "token-mean"          // Σ mask·l / N_tok over the whole mini-batch
	AggSeqMeanTokenMean = "seq-mean-token-mean" // (1/B') Σ_i (1/L_i) Σ_t mask·l
	AggSeqMeanTokenSum  = "seq-mean-token-sum"  // (1/B') Σ_i Σ_t mask·l
	AggSeqSumConst      = "seq-sum-const"       // (1/(B·C)) Σ_i Σ_t mask·l, C = max_len
)

var aggModes = []string{AggTokenMean, AggSeqMeanTokenMean, AggSeqMeanTokenSum, AggSeqSumConst}

// rowLens returns L_i = Σ_t mask[i,t].
func rowLens(mask [][]float64) []float64 {
	l := make([]float64, len(mask))
	for i, row := range mask {
		for _, m := range row {
			l[i] += m
		}
	}
	return l
}

// AggWeights returns w[i,t] such that the aggregated loss is Σ w[i,t]·l[i,t] (0 on masked tokens).
// normTokens and normRows override the batch's own token and row counts (micro-batching: pass the
// counts of the whole mini-batch); c is max_len for seq-sum-const.
func AggWeights(mode string, mask [][]float64, c, normTokens, normRows float64) ([][]float64, error) {
	lens := rowLens(mask)
	var nTok, nRows, nAll float64
	for _, l := range lens {
		nTok += l
		if l > 0 {
			nRows++
		}
		nAll++
	}
	if normTokens > 0 {
		nTok = normTokens
	}
	if normRows > 0 {
		nRows, nAll = normRows, normRows
	}
	w := make([][]float64, len(mask))
	for i, row := range mask {
		w[i] = make([]float64, len(row))
		if lens[i] == 0 {
			continue
		}
		var wi float64
		switch mode {
		case AggTokenMean:
			wi = 1 / nTok
		case AggSeqMeanTokenMean:
			wi = 1 / (nRows * lens[i])
		case AggSeqMeanTokenSum:
			wi = 1 / nRows
		case AggSeqSumConst:
			if c <= 0 {
				return nil, fmt.Errorf("agg=%s needs max_len > 0", mode)
			}
			wi = 1 / (nAll * c)
		default:
			return nil, fmt.Errorf("unknown agg %q (want one of token-mean|seq-mean-token-mean|seq-mean-token-sum|seq-sum-const)", mode)
		}
		for t, m := range row {
			w[i][t] = wi * m
		}
	}
	return w, nil
}

// TokenRatio returns ρ = exp(clamp(logp-old, ±20)) and dρ/dlogp (0 where the clamp is active).
func TokenRatio(logp, old float64) (rho, drho float64) {
	d := logp - old
	switch {
	case d > logRatioClamp:
		return fmath.Exp(logRatioClamp), 0
	case d < -logRatioClamp:
		return fmath.Exp(-logRatioClamp), 0
	}
	rho = fmath.Exp(d)
	return rho, rho
}

// clipState says which branch of the (dual-)clipped surrogate produced a token's loss.
type clipState int

const (
	clipNone clipState = iota
	clipLow            // A < 0 and x < 1-eps_low: gradient 0
	clipHigh           // A > 0 and x > 1+eps_high: gradient 0
	clipDual           // A < 0 and the dual-clip bound -c·A is active: gradient 0
)

// ClipLoss is the per-token PPO loss max(-x·A, -clip(x, 1-lo, 1+hi)·A), with the dual-clip bound
// min(·, -c·A) for A < 0 when c > 0. It returns the loss and its derivative with respect to x.
func ClipLoss(x, a, lo, hi, c float64) (loss, dx float64) {
	l, d, _ := clipLoss(x, a, lo, hi, c)
	return l, d
}

func clipLoss(x, a, lo, hi, c float64) (float64, float64, clipState) {
	unclipped := -x * a
	clipped := -math.Min(math.Max(x, 1-lo), 1+hi) * a
	loss, dx, st := unclipped, -a, clipNone
	if clipped > unclipped {
		loss, dx = clipped, 0
		if a > 0 {
			st = clipHigh
		} else {
			st = clipLow
		}
	}
	if c > 0 && a < 0 && loss > -c*a {
		loss, dx, st = -c*a, 0, clipDual
	}
	return loss, dx, st
}

// SAPOGate is SAPO's soft gate f = (4/τ)·σ(τ(x-1)); it returns f and df/dx.
func SAPOGate(x, tau float64) (f, df float64) {
	z := sigmoid(tau * (x - 1))
	return 4 / tau * z, 4 * z * (1 - z)
}

// logSigmoid is log σ(x) = −softplus(−x), stable for large |x|.
func logSigmoid(x float64) float64 {
	return -(math.Max(-x, 0) + math.Log1p(fmath.Exp(-math.Abs(x))))
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + fmath.Exp(-x))
	}
	e := fmath.Exp(x)
	return e / (1 + e)
}

// KL estimators (parameter kl_estimator).
const (
	KLk1  = "k1"  // x - y
	KLk2  = "k2"  // ½(x - y)²
	KLk3  = "k3"  // exp(y-x) - (y-x) - 1, verl's low_var_kl
	KLAbs = "abs" // |x - y|
)

var klEstimators = []string{KLk1, KLk2, KLk3, KLAbs}

// KL returns the per-token KL estimate between the policy (x = logp) and the reference (y = ref_logp)
// and its derivative with respect to x. k3 follows verl: y-x clamped to ±20, the value to [-10, 10].
func KL(estimator string, x, y float64) (v, dx float64) {
	switch estimator {
	case KLk1:
		return x - y, 1
	case KLk2:
		return 0.5 * (x - y) * (x - y), x - y
	case KLk3:
		u, du := y-x, -1.0
		if u > logRatioClamp {
			u, du = logRatioClamp, 0
		} else if u < -logRatioClamp {
			u, du = -logRatioClamp, 0
		}
		e := fmath.Exp(u)
		v, dx = e-u-1, (e-1)*du
		if v > 10 {
			return 10, 0
		}
		return v, dx
	case KLAbs:
		if x >= y {
			return x - y, 1
		}
		return y - x, -1
	}
	panic("objective: unknown KL estimator " + estimator)
}

// stats of a slice, used by the estimators.
func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// std returns the unbiased (n-1) or population standard deviation; 0 for fewer than 2 (unbiased) values.
func std(xs []float64, unbiased bool) float64 {
	n := float64(len(xs))
	if n == 0 || (unbiased && n < 2) {
		return 0
	}
	m := mean(xs)
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	if unbiased {
		return math.Sqrt(s / (n - 1))
	}
	return math.Sqrt(s / n)
}

func newLike(a [][]float64) [][]float64 {
	out := make([][]float64, len(a))
	for i := range a {
		out[i] = make([]float64, len(a[i]))
	}
	return out
}

// broadcast sets every valid token of row i to v[i].
func broadcast(v []float64, mask [][]float64) [][]float64 {
	out := newLike(mask)
	for i, row := range mask {
		for t, m := range row {
			if m != 0 {
				out[i][t] = v[i]
			}
		}
	}
	return out
}

// lastValid returns the index of the last valid token of each row (-1 for an empty row).
func lastValid(mask []float64) int {
	for t := len(mask) - 1; t >= 0; t-- {
		if mask[t] != 0 {
			return t
		}
	}
	return -1
}

// Whiten normalises the valid tokens of a to masked mean 0 and unbiased variance 1:
// (a - mean)/sqrt(var + 1e-8), as verl's masked_whiten. Masked positions become 0.
func Whiten(a, mask [][]float64) [][]float64 {
	var vals []float64
	for i := range a {
		for t, m := range mask[i] {
			if m != 0 {
				vals = append(vals, a[i][t])
			}
		}
	}
	out := newLike(a)
	if len(vals) == 0 {
		return out
	}
	mu := mean(vals)
	sd := std(vals, true)
	den := math.Sqrt(sd*sd + whitenEps)
	for i := range a {
		for t, m := range mask[i] {
			if m != 0 {
				out[i][t] = (a[i][t] - mu) / den
			}
		}
	}
	return out
}

// policyGradient is the importance-sampled policy-gradient loss of the PPO family, aggregated with
// weights w (AggWeights; 0 where a token takes no part): per token ρ = TokenRatio(logp, old) and
// l = max(-ρ·A, -clip(ρ, 1-clip, 1+clip)·A), or the plain -ρ·A when clip <= 0. It returns Σ w·l,
// its gradient with respect to logp, and the token metrics (ratio, clip fractions).
func policyGradient(logp, old, adv, w [][]float64, clip float64) (float64, [][]float64, metricAcc) {
	var loss float64
	var m metricAcc
	grad := newLike(w)
	for i, row := range w {
		for t, wt := range row {
			if wt == 0 {
				continue
			}
			x, dx := TokenRatio(logp[i][t], old[i][t])
			a := adv[i][t]
			l, dl, st := -x*a, -a, clipNone
			if clip > 0 {
				l, dl, st = clipLoss(x, a, clip, clip, 0)
			}
			loss += wt * l
			grad[i][t] = wt * dl * dx
			m.token(x, st)
		}
	}
	return loss, grad, m
}

// tokenMean returns the token-mean weights of the tokens of mask (normTokens > 0: of a whole
// mini-batch this is a micro-batch of).
func tokenMean(mask [][]float64, normTokens float64) [][]float64 {
	w, _ := AggWeights(AggTokenMean, mask, 0, normTokens, 0)
	return w
}

// quantileLinear is the q-quantile of xs with linear interpolation between order statistics
// (numpy's default); NaN for empty input.
func quantileLinear(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	f := pos - float64(lo)
	return s[lo] + f*(s[lo+1]-s[lo])
}

// groupOrOne returns the batch's group ids, or one group for all rows when none are given.
func groupOrOne(b *Batch) []int {
	if b.Group != nil {
		return b.Group
	}
	return make([]int, len(b.Mask))
}
