package objective

import "fmt"

// PPOParams configure ppo: the policy loss plus GAE.
type PPOParams struct {
	PolicyParams
	Gamma  float64 `param:"gamma"`
	Lambda float64 `param:"lambda"`
	Whiten bool    `param:"whiten"` // whiten advantages over the batch
	// The critic the trainer trains beside the policy: value clipping range eps_v and the value
	// loss coefficient.
	ValueClip float64 `param:"value_clip"`
	VFCoef    float64 `param:"vf_coef"`
}

// ReinforceParams configure reinforce: form=ratio (-ρ·A) or form=logp (-A·logp).
type ReinforceParams struct {
	SurrogateParams
	Form string `param:"form" choices:"ratio|logp"`
}

// ReinforcePPParams configure reinforce_pp: the discount of its returns-to-go.
type ReinforcePPParams struct {
	PolicyParams
	Gamma float64 `param:"gamma"`
}

// OverlongParams are the soft overlong punishment of the reward (dapo, hapo).
type OverlongParams struct {
	OverlongBuffer int     `param:"overlong_buffer"` // 0: off
	OverlongMaxLen int     `param:"overlong_max_len"`
	OverlongFactor float64 `param:"overlong_factor"`
}

// apply checks the values and sets s's overlong punishment.
func (o *OverlongParams) apply(s *Surrogate) error {
	if o.OverlongBuffer < 0 || (o.OverlongBuffer > 0 && o.OverlongBuffer > o.OverlongMaxLen) {
		return fmt.Errorf("overlong_buffer=%d: want 0 (off) or in (0, overlong_max_len=%d]", o.OverlongBuffer, o.OverlongMaxLen)
	}
	s.adv.overlongBuf, s.adv.overlongMax, s.adv.overlongFactor = o.OverlongBuffer, o.OverlongMaxLen, o.OverlongFactor
	return nil
}

// dapoOverlong are the overlong defaults of dapo and hapo.
var dapoOverlong = OverlongParams{OverlongBuffer: 4096, OverlongMaxLen: 20480, OverlongFactor: 1}

// DAPOParams configure dapo: soft overlong punishment of the reward.
type DAPOParams struct {
	SurrogateParams
	OverlongParams
}

// SAPOParams configure sapo: the soft gate's temperatures for positive and negative advantages.
type SAPOParams struct {
	SurrogateParams
	TauPos float64 `param:"tau_pos"`
	TauNeg float64 `param:"tau_neg"`
}

// group returns the shared group-advantage defaults changed by edit.
func group(edit func(*SurrogateParams)) SurrogateParams {
	p := DefaultSurrogateParams()
	if edit != nil {
		edit(&p)
	}
	return p
}

// policy returns the shared policy defaults changed by edit.
func policy(edit func(*PolicyParams)) PolicyParams {
	p := DefaultPolicyParams()
	if edit != nil {
		edit(&p)
	}
	return p
}

func init() {
	registerSurrogate("ppo", "PPO: GAE over critic values (input values), token ratio, clip and dual-clip, KL in reward",
		ppoDefaults(),
		func() *Surrogate { return &Surrogate{adv: advConfig{kind: advGAE}, Ratio: RatioToken, Gate: GateClip} },
		func(c *PPOParams, s *Surrogate) (Objective, error) {
			return nil, finishPPO(c, s)
		})

	registerSurrogate("reinforce", "REINFORCE with group-mean baseline, unclipped ratio (form=ratio) or logp (form=logp)",
		ReinforceParams{SurrogateParams: group(func(p *SurrogateParams) { p.AdvStd, p.Agg = "none", AggSeqMeanTokenSum }), Form: "ratio"},
		func() *Surrogate { return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken} },
		func(c *ReinforceParams, s *Surrogate) (Objective, error) {
			s.Gate = map[string]string{"ratio": GateRatio, "logp": GateLogP}[c.Form]
			return nil, nil
		})

	registerSurrogate("rloo", "RLOO: leave-one-out group baseline, PPO clip",
		policy(nil),
		func() *Surrogate { return &Surrogate{adv: advConfig{kind: advRLOO}, Ratio: RatioToken, Gate: GateClip} }, nil)

	registerSurrogate("reinforce_pp", "REINFORCE++: returns-to-go with per-token KL in reward, batch whitening, PPO clip",
		ReinforcePPParams{PolicyParams: policy(func(p *PolicyParams) { p.Beta, p.KLIn, p.KLEstimator = 0.01, "reward", KLk1 }), Gamma: 1},
		func() *Surrogate { return &Surrogate{adv: advConfig{kind: advRPP}, Ratio: RatioToken, Gate: GateClip} },
		func(c *ReinforcePPParams, s *Surrogate) (Objective, error) {
			s.adv.gamma = c.Gamma
			return nil, nil
		})

	registerSurrogate("reinforce_pp_baseline", "REINFORCE++-baseline: group mean removed, then batch whitening, PPO clip",
		policy(func(p *PolicyParams) { p.Beta, p.KLIn, p.KLEstimator = 0.01, "reward", KLk1 }),
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advRPPBaseline}, Ratio: RatioToken, Gate: GateClip}
		}, nil)

	groupClip := func() *Surrogate {
		return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateClip}
	}

	registerSurrogate("grpo", "GRPO: group z-score, token ratio, PPO clip, k3 KL in the loss, seq-mean-token-mean",
		group(func(p *SurrogateParams) { p.Beta, p.Agg = 0.04, AggSeqMeanTokenMean }), groupClip, nil)

	registerSurrogate("dr_grpo", "Dr. GRPO: group mean only (no std), PPO clip, per-row sum over a constant max_len",
		group(func(p *SurrogateParams) { p.AdvStd, p.Agg, p.MaxLen = "none", AggSeqSumConst, 3000 }), groupClip, nil)

	registerSurrogate("dapo", "DAPO: GRPO advantages, clip-higher, token-mean, dynamic sampling, soft overlong punishment",
		DAPOParams{SurrogateParams: group(func(p *SurrogateParams) { p.EpsHigh, p.DynamicSampling = 0.28, true }),
			OverlongParams: dapoOverlong},
		groupClip,
		func(c *DAPOParams, s *Surrogate) (Objective, error) {
			return nil, c.OverlongParams.apply(s)
		})

	registerSurrogate("lite_ppo", "Lite PPO: group mean, batch std of raw rewards, PPO clip, token-mean",
		group(func(p *SurrogateParams) { p.AdvStd = "batch" }), groupClip, nil)

	gspo := group(func(p *SurrogateParams) { p.EpsLow, p.EpsHigh, p.Agg = 3e-4, 4e-4, AggSeqMeanTokenMean })
	registerSurrogate("gspo", "GSPO: length-normalised sequence ratio, sequence clipping, one weight per response",
		gspo,
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioSequence, Gate: GateClip}
		}, nil)

	registerSurrogate("gspo_token", "GSPO-token: sequence ratio sg[s]·π/sg[π] with per-token advantages",
		gspo,
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioSequence, Gate: GateClip}
		}, nil)

	registerSurrogate("bn_gspo", "BN-GSPO: group z-score then batch z-score (population std), GSPO loss",
		gspo,
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advBN}, Ratio: RatioSequence, Gate: GateClip}
		}, nil)

	registerSurrogate("sapo", "SAPO: soft sigmoid gate (tau_pos, tau_neg) instead of hard clipping, seq-mean-token-mean",
		SAPOParams{SurrogateParams: group(func(p *SurrogateParams) { p.Agg = AggSeqMeanTokenMean }), TauPos: 1, TauNeg: 1.05},
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateSAPO}
		},
		func(c *SAPOParams, s *Surrogate) (Objective, error) {
			if c.TauPos <= 0 || c.TauNeg <= 0 {
				return nil, fmt.Errorf("tau_pos=%v, tau_neg=%v: want > 0", c.TauPos, c.TauNeg)
			}
			s.TauPos, s.TauNeg = c.TauPos, c.TauNeg
			return nil, nil
		})

	registerSurrogate("cispo", "CISPO: clipped, stop-gradient IS weight times A·logp; no token loses its gradient",
		group(func(p *SurrogateParams) { p.EpsLow, p.EpsHigh = 1, 0.28 }),
		func() *Surrogate {
			return &Surrogate{adv: advConfig{kind: advGroup}, Ratio: RatioToken, Gate: GateCISPO}
		}, nil)
}
