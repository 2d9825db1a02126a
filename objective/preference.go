package objective

import (
	"fmt"
	"math"
	"strings"
)

// This file holds the sequence-level preference losses (dpo, ipo, rdpo) of
// ../shared/spec/shaping-and-selection.md B1–B3. They see one number per response — the masked sum of
// the response's token log-probs — so they have their own batch type and registry; the trainer
// broadcasts the gradient of a response's sequence log-prob to each of its tokens (g[t] = grad·M[t]).

// PairBatch holds one preference pair per index k: a chosen (preferred) and a rejected response to the
// same prompt. The log-probs are sequence sums S = Σ_t M[t]·logp[t] of the response tokens, under the
// policy being trained (ChosenLogP, RejectedLogP; differentiable) and the frozen reference
// (RefChosenLogP, RefRejectedLogP). ChosenLen and RejectedLen are the token counts, read only by
// length-normalised losses (ipo by default); nil otherwise.
type PairBatch struct {
	ChosenLogP, RejectedLogP       []float64
	RefChosenLogP, RefRejectedLogP []float64
	ChosenLen, RejectedLen         []float64
}

// PairResult is what PairLoss returns. The gradients are dLoss/dChosenLogP[k] and dLoss/dRejectedLogP[k]
// for the loss averaged over pairs. Metrics: reward_chosen and reward_rejected (mean implicit rewards
// β·(S−S_ref)), reward_margin (their mean difference) and reward_accuracy (fraction of pairs whose
// chosen implicit reward exceeds the rejected one).
type PairResult struct {
	Loss             float64
	GradChosenLogP   []float64
	GradRejectedLogP []float64
	Metrics          map[string]float64
}

// PairObjective is a loss on preference pairs.
type PairObjective interface {
	PairLoss(b *PairBatch) (PairResult, error)
}

var pairRegistry = presetTable[PairObjective]{kind: "preference loss", entries: map[string]presetEntry[PairObjective]{}}

// RegisterPair adds a named preference loss. It is called from init functions; a duplicate name (in
// either registry) is a programming error and panics.
func RegisterPair(name, summary string, defaults Params, build func(Params) (PairObjective, error)) {
	if _, dup := registry.entries[name]; dup {
		panic("objective: pair loss has the name of a token objective: " + name)
	}
	pairRegistry.add(name, summary, defaults, build)
}

// NewPair builds the preference loss name with its defaults overridden by overrides. An unknown name or
// parameter, or a value that does not parse or is out of range, is an error naming it.
func NewPair(name string, overrides map[string]string) (PairObjective, error) {
	return pairRegistry.build(name, overrides)
}

// PairNames lists the registered preference losses in sorted order.
func PairNames() []string { return pairRegistry.names() }

// IsPair reports whether name is a preference loss (built with NewPair, fed a PairBatch).
func IsPair(name string) bool {
	_, ok := pairRegistry.entries[name]
	return ok
}

// DescribePair returns a preference loss's one-line summary and a copy of its default parameters.
func DescribePair(name string) (summary string, defaults Params, ok bool) {
	return pairRegistry.describe(name)
}

// DPOConfig is the parameters of dpo and rdpo.
type DPOConfig struct {
	Beta           float64 `param:"beta"`
	LabelSmoothing float64 `param:"label_smoothing"`
}

// IPOConfig is the parameters of ipo.
type IPOConfig struct {
	Beta            float64 `param:"beta"`
	LengthNormalize bool    `param:"length_normalize"`
}

func init() {
	RegisterPairTyped("dpo", "Direct Preference Optimization: -logsigmoid(beta*margin), optional label smoothing (conservative DPO)",
		DPOConfig{Beta: 0.1},
		func(c DPOConfig) (PairObjective, error) {
			d := &Preference{Kind: "dpo", Beta: c.Beta, LabelSmoothing: c.LabelSmoothing}
			return d, d.check()
		})
	RegisterPairTyped("ipo", "Identity Preference Optimization: (margin - 1/(2*beta))^2 on length-averaged log-ratios",
		IPOConfig{Beta: 0.1, LengthNormalize: true},
		func(c IPOConfig) (PairObjective, error) {
			d := &Preference{Kind: "ipo", Beta: c.Beta, LengthNormalize: c.LengthNormalize}
			return d, d.check()
		})
	RegisterPairTyped("rdpo", "robust DPO: unbiased DPO under preference labels flipped with rate label_smoothing",
		DPOConfig{Beta: 0.1},
		func(c DPOConfig) (PairObjective, error) {
			d := &Preference{Kind: "rdpo", Beta: c.Beta, LabelSmoothing: c.LabelSmoothing}
			return d, d.check()
		})
}

// Preference is the DPO family: each loss is a function ℓ(u) of the pair margin
// u = (S_w − Sref_w) − (S_l − Sref_l) (with S/L in place of S when LengthNormalize), averaged over pairs.
type Preference struct {
	Kind            string  // "dpo", "ipo" or "rdpo"
	Beta            float64 // dpo/rdpo: inverse temperature β; ipo: τ (target margin 1/(2τ))
	LabelSmoothing  float64 // dpo: conservative-DPO smoothing ε; rdpo: label flip rate ε ∈ [0, 0.5)
	LengthNormalize bool    // use length-averaged log-ratios (TRL's IPO); needs ChosenLen/RejectedLen
}

func (d *Preference) check() error {
	if !(d.Beta > 0) || math.IsInf(d.Beta, 0) {
		return fmt.Errorf("beta=%g: want a positive number", d.Beta)
	}
	switch d.Kind {
	case "dpo":
		if d.LabelSmoothing < 0 || d.LabelSmoothing > 1 {
			return fmt.Errorf("label_smoothing=%g: want a value in [0, 1]", d.LabelSmoothing)
		}
	case "rdpo":
		if d.LabelSmoothing < 0 || d.LabelSmoothing >= 0.5 {
			return fmt.Errorf("label_smoothing=%g: rdpo's flip rate must be in [0, 0.5)", d.LabelSmoothing)
		}
	case "ipo":
	default:
		return fmt.Errorf("unknown preference kind %q (want dpo, ipo or rdpo)", d.Kind)
	}
	return nil
}

// Pair returns ℓ(u) and ℓ'(u) of one pair margin u.
func (d *Preference) Pair(u float64) (loss, dloss float64) {
	b, e := d.Beta, d.LabelSmoothing
	switch d.Kind {
	case "ipo":
		c := u - 1/(2*b)
		return c * c, 2 * c
	case "rdpo":
		n := 1 - 2*e
		loss = (-(1-e)*logSigmoid(b*u) + e*logSigmoid(-b*u)) / n
		dloss = -b * ((1-e)*sigmoid(-b*u) + e*sigmoid(b*u)) / n
		return loss, dloss
	default: // dpo
		loss = -(1-e)*logSigmoid(b*u) - e*logSigmoid(-b*u)
		dloss = -b * ((1-e)*sigmoid(-b*u) - e*sigmoid(b*u))
		return loss, dloss
	}
}

// PairLoss implements PairObjective.
func (d *Preference) PairLoss(pb *PairBatch) (PairResult, error) {
	n, err := pb.check(d.LengthNormalize)
	if err != nil {
		return PairResult{}, err
	}
	res := PairResult{GradChosenLogP: make([]float64, n), GradRejectedLogP: make([]float64, n)}
	var rw, rl, acc float64
	for k := 0; k < n; k++ {
		dw := pb.ChosenLogP[k] - pb.RefChosenLogP[k]
		dl := pb.RejectedLogP[k] - pb.RefRejectedLogP[k]
		sw, sl := 1.0, 1.0 // dD/dS
		if d.LengthNormalize {
			sw, sl = 1/math.Max(pb.ChosenLen[k], 1), 1/math.Max(pb.RejectedLen[k], 1)
			dw, dl = dw*sw, dl*sl
		}
		loss, dl1 := d.Pair(dw - dl)
		res.Loss += loss / float64(n)
		res.GradChosenLogP[k] = dl1 * sw / float64(n)
		res.GradRejectedLogP[k] = -dl1 * sl / float64(n)
		rw += d.Beta * dw
		rl += d.Beta * dl
		if dw > dl {
			acc++
		}
	}
	fn := float64(n)
	res.Metrics = map[string]float64{
		"reward_chosen":   rw / fn,
		"reward_rejected": rl / fn,
		"reward_margin":   (rw - rl) / fn,
		"reward_accuracy": acc / fn,
		"pairs":           fn,
	}
	return res, nil
}

// check validates the batch and returns the number of pairs.
func (pb *PairBatch) check(needLen bool) (int, error) {
	if pb == nil || len(pb.ChosenLogP) == 0 {
		return 0, badInput("chosen_logp is empty: give one sequence log-prob per pair")
	}
	n := len(pb.ChosenLogP)
	fields := []struct {
		name string
		v    []float64
	}{
		{"chosen_logp", pb.ChosenLogP}, {"rejected_logp", pb.RejectedLogP},
		{"ref_chosen_logp", pb.RefChosenLogP}, {"ref_rejected_logp", pb.RefRejectedLogP},
	}
	if needLen {
		fields = append(fields, struct {
			name string
			v    []float64
		}{"chosen_len", pb.ChosenLen}, struct {
			name string
			v    []float64
		}{"rejected_len", pb.RejectedLen})
	}
	for _, f := range fields {
		if len(f.v) != n {
			return 0, badInput("%s has %d values, chosen_logp has %d: give one value per pair", f.name, len(f.v), n)
		}
		for k, x := range f.v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return 0, badInput("%s[%d] = %v: want a finite number", f.name, k, x)
			}
			if strings.HasSuffix(f.name, "_len") && x < 0 {
				return 0, badInput("%s[%d] = %v: a token count cannot be negative", f.name, k, x)
			}
		}
	}
	return n, nil
}
