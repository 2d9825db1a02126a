package train

import (
	"math"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/internal/fmath"
)

// This file adds distillation on the teacher's top-k next-token distributions (distill.top_k): at
// every response position the teacher's k most probable tokens, their probabilities renormalised over
// those k (p̃), and the loss top_k_coef · (1/Ntok)·Σ_t Σ_v p̃(v)·(log p̃(v) − log π_student(v)), the
// forward KL from the teacher's sparse distribution, beside the objective's sampled-token loss. The
// teacher's top-k comes from its graph (model.TopKLogProbs) and the student's gradient from
// model.AccumulateTokenSet, so no B×T×V array reaches the host. A k of the vocabulary's size or more
// is the full-distribution forward KL.

// topKDistill accumulates the top-k KL's gradient for one mini-batch and returns the KL per token.
func (r *runner) topKDistill(sub *rolloutBatch, ids, mask [][]int32) (float64, error) {
	k := min(r.cfg.Distill.TopK, r.ref.Config().VocabSize)
	tIdx, tLP, err := r.ref.TopKLogProbs(ids, mask, k)
	if err != nil {
		return 0, err
	}
	avxstate.Clear() // scalar loops over k candidates per token follow
	nTok := 0
	for _, resp := range sub.resps {
		nTok += len(resp)
	}
	cand := make([][][]int32, len(ids))
	coef := make([][][]float32, len(ids))
	pt := make([][][]float64, len(ids)) // p̃ at the response positions
	for b := range ids {
		cand[b], coef[b], pt[b] = make([][]int32, len(ids[b])-1), make([][]float32, len(ids[b])-1), make([][]float64, len(ids[b])-1)
		for t := range cand[b] {
			cand[b][t], coef[b][t] = make([]int32, k), make([]float32, k)
		}
		for j := range sub.resps[b] {
			t := len(sub.prompts[b]) - 1 + j
			var z float64
			p := make([]float64, k)
			for v, lp := range tLP[b][t] {
				p[v] = fmath.Exp(float64(lp))
				z += p[v]
			}
			for v := range p {
				p[v] /= z
				cand[b][t][v] = tIdx[b][t][v]
				coef[b][t][v] = float32(-r.cfg.Distill.TopKCoef * p[v] / float64(nTok))
			}
			pt[b][t] = p
		}
	}
	slp, err := r.trainer.AccumulateTokenSet(ids, mask, cand, coef)
	if err != nil {
		return 0, err
	}
	kl := 0.0
	for b := range pt {
		for t, p := range pt[b] {
			for v, x := range p {
				if x > 0 {
					kl += x * (math.Log(x) - float64(slp[b][t][v]))
				}
			}
		}
	}
	return kl / float64(nTok), nil
}
