package train

import (
	"fmt"
	"math"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/internal/fmath"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
)

// distInputs reports whether the objective declares an input that needs the old policy's full
// next-token distribution (lp_reg's proxy_logp, dcpo's target_ratio and mean_entropy, oblr's
// grad_weight).
func distInputs(obj objective.Objective) bool {
	return objective.Declares(obj, objective.InProxyLogP) || objective.Declares(obj, objective.InTargetRatio) ||
		objective.Declares(obj, objective.InMeanEntropy) || objective.Declares(obj, objective.InGradWeight)
}

// oldPolicyDist runs π_old over the batch once, computing in the model graph the distribution-level
// inputs the objective declares, and fills them into ob. It returns the per-position log-probs and
// entropies as LogProbs would.
//
// mean_entropy is π_old's mean token entropy over this batch's response tokens: the policy as the
// previous update left it. The pass computes the target log-probs at both of DCPO's temperatures so
// that the choice between them (which depends on that entropy) needs no second pass.
//
// grad_weight (oblr) is a per-sequence gradient-norm proxy: w_i = Σ_t ‖∂log π(o_t)/∂z_t‖², the
// squared norm of each sampled token's log-prob gradient with respect to its logits z_t,
// 1 − 2·p(o_t) + Σ_v p(v)², summed over the response (objective.GradNormProxy). It leaves out the
// Jacobian of the network below the logits, which would need one backward pass per response.
func (r *runner) oldPolicyDist(b *rolloutBatch, ids, mask [][]int32, ob *objective.Batch) (logp, ent [][]float32, err error) {
	width := r.cfg.Sampling.MaxNewTokens
	wantProxy := objective.Declares(r.obj, objective.InProxyLogP)
	wantTarget := objective.Declares(r.obj, objective.InTargetRatio)
	wantGrad := objective.Declares(r.obj, objective.InGradWeight)
	var dc objective.DistConfig
	if wantProxy || wantTarget {
		di, ok := r.obj.(objective.DistInputs)
		if !ok {
			return nil, nil, fmt.Errorf("objective %s declares distribution inputs but does not say how to compute them", r.cfg.Algo.Name)
		}
		dc = di.DistConfig()
	}
	opts := model.DistOptions{SumSqProb: wantGrad}
	if wantProxy {
		opts.MinPKappa, opts.MinPFixed = dc.MinPKappa, dc.MinPFixed
	}
	if wantTarget {
		if dc.TargetTemperature == nil || len(dc.TargetTemperatures) == 0 {
			return nil, nil, fmt.Errorf("objective %s declares target_ratio without target temperatures", r.cfg.Algo.Name)
		}
		opts.Temperatures = dc.TargetTemperatures
	}
	st, err := r.policy.DistStats(ids, mask, opts)
	if err != nil {
		return nil, nil, err
	}
	entropy := responseValues(b, st.Entropy, width)
	meanH := maskedMean(entropy, ob.Mask)
	if objective.Declares(r.obj, objective.InMeanEntropy) {
		ob.MeanEntropy = meanH
	}
	if wantProxy {
		ob.ProxyLogP = responseValues(b, st.ProxyLogP, width)
	}
	avxstate.Clear() // scalar loops over every token follow
	if wantGrad {
		old, sq := responseValues(b, st.LogP, width), responseValues(b, st.SumSqProb, width)
		ob.GradWeight = make([]float64, len(old))
		for i := range old {
			for j := range b.resps[i] {
				ob.GradWeight[i] += objective.GradNormProxy(fmath.Exp(old[i][j]), sq[i][j])
			}
		}
	}
	if wantTarget {
		temp := dc.TargetTemperature(meanH)
		k := -1
		for i, t := range dc.TargetTemperatures {
			if t == temp {
				k = i
			}
		}
		if k < 0 {
			return nil, nil, fmt.Errorf("objective %s chose target temperature %v outside its list %v", r.cfg.Algo.Name, temp, dc.TargetTemperatures)
		}
		old := responseValues(b, st.LogP, width)
		tl := responseValues(b, st.TempLogP[k], width)
		q := make([][]float64, len(old))
		for i := range old {
			q[i] = make([]float64, width)
			for j := range b.resps[i] {
				q[i][j] = fmath.Exp(tl[i][j] - old[i][j])
			}
		}
		ob.TargetRatio = q
	}
	return st.LogP, st.Entropy, nil
}

// distStats adds the distribution inputs' statistics of a scored batch to vals: DCPO's chosen target
// temperature and mean q, Lp-Reg's fraction of response tokens the proxy filters out.
func (r *runner) distStats(ob *objective.Batch, vals map[string]float64) {
	if ob.TargetRatio != nil {
		if di, ok := r.obj.(objective.DistInputs); ok {
			vals["dcpo_target_temp"] = di.DistConfig().TargetTemperature(ob.MeanEntropy)
		}
		vals["dcpo_target_ratio_mean"] = maskedMean(ob.TargetRatio, ob.Mask)
	}
	if ob.GradWeight != nil {
		vals["oblr_grad_weight_mean"] = mean(ob.GradWeight)
	}
	if ob.ProxyLogP != nil {
		var filtered, n float64
		for i, row := range ob.Mask {
			for t, m := range row {
				if m != 0 {
					n++
					if math.IsInf(ob.ProxyLogP[i][t], -1) {
						filtered++
					}
				}
			}
		}
		if n > 0 {
			vals["lpreg_proxy_filtered_frac"] = filtered / n
		}
	}
}
