package train

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/polo-rl/polo/objective"
)

// This file runs SFT as One-Token Rollout (objective.OTR, sft.otr.k > 0): at every answer position
// the policy draws k tokens from its own tempered distribution (in the model graph, from seeded
// uniforms), each earns 1 if it is the reference token and beta otherwise, and the step minimises
// −(1/Ntok)·Σ_t (1/k)·Σ_j R_tj·log π(a_tj): a policy gradient with one-token rollouts in place of the
// cross-entropy on the reference token.

// newOTR builds the objective from sft.otr (nil when k = 0).
func newOTR(c Config) (*objective.OTR, error) {
	o := c.SFT.OTR
	if o.K == 0 {
		return nil, nil
	}
	otr, err := objective.NewOTR(map[string]string{"k": strconv.Itoa(o.K),
		"temperature": strconv.FormatFloat(o.Temperature, 'g', -1, 64), "beta": strconv.FormatFloat(o.Beta, 'g', -1, 64)})
	if err != nil {
		return nil, fmt.Errorf("config field sft.otr: %w", err)
	}
	return otr, nil
}

// otrAccumulate draws the candidates of one SFT batch, accumulates OTR's gradient and returns its loss.
// nTok is the number of answer tokens (the token-mean's denominator).
func (r *runner) otrAccumulate(step int, ids, mask [][]int32, prompts, answers [][]int32, nTok int) (float64, error) {
	otr, err := newOTR(r.cfg)
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(seedFor(r.cfg.Seed, "otr", step), 0))
	u := make([][][]float32, len(ids))
	for b := range ids {
		u[b] = make([][]float32, len(ids[b])-1)
		for t := range u[b] {
			u[b][t] = make([]float32, otr.K)
			for j := range u[b][t] {
				u[b][t][j] = rng.Float32()
			}
		}
	}
	draws, err := r.policy.SampleTokens(ids, mask, u, otr.Temperature)
	if err != nil {
		return 0, err
	}
	// Per answer position, the distinct drawn tokens with weight (n_v/k)·R(v) (objective.OTR.Weights);
	// slots beyond them (and all slots outside the answers) get coefficient 0.
	cand := make([][][]int32, len(ids))
	coef := make([][][]float32, len(ids))
	for b := range ids {
		cand[b] = make([][]int32, len(ids[b])-1)
		coef[b] = make([][]float32, len(ids[b])-1)
		for t := range cand[b] {
			cand[b][t], coef[b][t] = make([]int32, otr.K), make([]float32, otr.K)
		}
		for j, target := range answers[b] {
			t := len(prompts[b]) - 1 + j
			samples := make([]int, otr.K)
			for k, a := range draws[b][t] {
				samples[k] = int(a)
			}
			toks, w := otr.Weights(samples, int(target))
			for k, a := range toks {
				cand[b][t][k], coef[b][t][k] = int32(a), float32(-w[k]/float64(nTok))
			}
		}
	}
	logp, err := r.trainer.AccumulateTokenSet(ids, mask, cand, coef)
	if err != nil {
		return 0, err
	}
	loss := 0.0
	for b := range logp {
		for t := range logp[b] {
			for k, c := range coef[b][t] {
				loss += float64(c) * float64(logp[b][t][k])
			}
		}
	}
	return loss, nil
}
