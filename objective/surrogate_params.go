package objective

import (
	"fmt"
	"reflect"
	"strings"
)

// PolicyParams are the typed parameters every Surrogate preset accepts: the policy loss (clip, KL,
// aggregation, entropy bonus) and the rollout filters. A preset's config struct embeds it.
type PolicyParams struct {
	EpsLow          float64 `param:"eps_low"`
	EpsHigh         float64 `param:"eps_high"`
	DualClip        float64 `param:"dual_clip"` // 0: off
	Beta            float64 `param:"beta"`      // KL coefficient
	KLEstimator     string  `param:"kl_estimator" choices:"k1|k2|k3|abs"`
	KLIn            string  `param:"kl_in" choices:"loss|reward"`
	Agg             string  `param:"agg" choices:"token-mean|seq-mean-token-mean|seq-mean-token-sum|seq-sum-const"`
	MaxLen          float64 `param:"max_len"` // the constant of agg=seq-sum-const
	EntropyCoef     float64 `param:"entropy_coef"`
	DynamicSampling bool    `param:"dynamic_sampling"`
	OverlongFilter  bool    `param:"overlong_filter"`
	// Off-policy correction of the sampler/trainer mismatch (offpolicy.go): is, is_level, is_cap, is_cap_low.
	OffPolicyParams
}

// GroupAdvParams are the typed parameters of the group advantage stage (presets with group-relative
// advantages embed it after PolicyParams).
type GroupAdvParams struct {
	AdvStd    string  `param:"adv_std" choices:"group|batch|none"`
	EpsAdv    float64 `param:"eps_adv"`
	Singleton string  `param:"singleton" choices:"verl|zero"`
}

// SurrogateParams is the common part of the group-advantage Surrogate presets.
type SurrogateParams struct {
	PolicyParams
	GroupAdvParams
}

func (p *PolicyParams) policyParams() *PolicyParams       { return p }
func (g *GroupAdvParams) groupAdvParams() *GroupAdvParams { return g }

// DefaultPolicyParams are the shared defaults of PolicyParams.
func DefaultPolicyParams() PolicyParams {
	return PolicyParams{EpsLow: 0.2, EpsHigh: 0.2, KLEstimator: KLk3, KLIn: "loss", Agg: AggTokenMean, MaxLen: 1024,
		OffPolicyParams: DefaultOffPolicyParams()}
}

// DefaultGroupAdvParams are the shared defaults of GroupAdvParams.
func DefaultGroupAdvParams() GroupAdvParams {
	return GroupAdvParams{AdvStd: "group", EpsAdv: 1e-6, Singleton: SingletonVerl}
}

// DefaultSurrogateParams are the shared defaults of SurrogateParams.
func DefaultSurrogateParams() SurrogateParams {
	return SurrogateParams{DefaultPolicyParams(), DefaultGroupAdvParams()}
}

func init() {
	// The choices tags spell out these lists; keep them in step.
	for _, c := range []struct {
		field string
		list  []string
	}{{"KLEstimator", klEstimators}, {"Agg", aggModes}} {
		f, _ := reflect.TypeFor[PolicyParams]().FieldByName(c.field)
		if f.Tag.Get("choices") != strings.Join(c.list, "|") {
			panic("objective: choices of PolicyParams." + c.field + " out of date")
		}
	}
	if f, _ := reflect.TypeFor[GroupAdvParams]().FieldByName("Singleton"); f.Tag.Get("choices") != SingletonVerl+"|"+SingletonZero {
		panic("objective: choices of GroupAdvParams.Singleton out of date")
	}
}

// apply sets s's policy stages from p and, when g is non-nil, its group advantage stage, and checks
// the values (the messages of the text presets).
func (p *PolicyParams) apply(s *Surrogate, g *GroupAdvParams) error {
	s.EpsLow, s.EpsHigh, s.DualClip = p.EpsLow, p.EpsHigh, p.DualClip
	s.Beta, s.adv.beta = p.Beta, p.Beta
	s.KLEstimator, s.adv.klEst = p.KLEstimator, p.KLEstimator
	s.KLIn, s.adv.klIn = p.KLIn, p.KLIn
	s.Agg, s.MaxLen, s.EntropyCoef = p.Agg, p.MaxLen, p.EntropyCoef
	s.DynamicSampling, s.OverlongFilter = p.DynamicSampling, p.OverlongFilter
	s.OffPolicy = p.OffPolicyParams
	if err := s.OffPolicy.check(); err != nil {
		return err
	}
	if g != nil {
		s.adv.std, s.adv.eps, s.adv.singleton = g.AdvStd, g.EpsAdv, g.Singleton
	}
	switch {
	case s.EpsLow < 0 || s.EpsHigh < 0:
		return fmt.Errorf("eps_low=%v, eps_high=%v: want >= 0", s.EpsLow, s.EpsHigh)
	case s.DualClip != 0 && s.DualClip <= 1:
		return fmt.Errorf("dual_clip=%v: want 0 (off) or > 1", s.DualClip)
	case s.Beta < 0:
		return fmt.Errorf("beta=%v: want >= 0", s.Beta)
	case s.Agg == AggSeqSumConst && s.MaxLen <= 0:
		return fmt.Errorf("agg=seq-sum-const needs max_len > 0")
	case s.adv.eps < 0:
		return fmt.Errorf("eps_adv=%v: want >= 0", s.adv.eps)
	}
	return nil
}

type policyConfig interface{ policyParams() *PolicyParams }
type groupAdvConfig interface{ groupAdvParams() *GroupAdvParams }

// registerSurrogate registers a Surrogate preset whose typed config C embeds PolicyParams (and
// GroupAdvParams when its advantages are group-relative). base makes the unconfigured Surrogate;
// finish, when non-nil, reads the preset's own fields into s and may return an Objective wrapping s
// (nil means s).
func registerSurrogate[C any](name, summary string, defaults C, base func() *Surrogate, finish func(c *C, s *Surrogate) (Objective, error)) {
	if _, ok := any(&defaults).(policyConfig); !ok {
		panic("objective: config of " + name + " does not embed PolicyParams")
	}
	RegisterTyped(name, summary, defaults, func(c C) (Objective, error) {
		s := base()
		var g *GroupAdvParams
		if gc, ok := any(&c).(groupAdvConfig); ok {
			g = gc.groupAdvParams()
		}
		if err := any(&c).(policyConfig).policyParams().apply(s, g); err != nil {
			return nil, err
		}
		if finish != nil {
			o, err := finish(&c, s)
			if err != nil || o != nil {
				return o, err
			}
		}
		return s, nil
	})
}
