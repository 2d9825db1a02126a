package env

import (
	"math/rand/v2"
	"slices"

	"github.com/polo-rl/polo/rollout"
)

// free in a plan lets the policy sample any non-banned token at that position.
const free = -1

// forcedDecoder is a test policy: it forces the tokens of a plan (chosen per row from the row's
// context at Prefill) by raising their logit far above the rest, and at free positions (and after
// the plan) samples from the inner model's logits — or seeded random logits when inner is nil —
// with the banned ids removed. It records every context it was asked to prefill.
type forcedDecoder struct {
	inner    rollout.Decoder
	vocab    int
	banned   []int32
	plan     func(ctx []int32) []int32
	rng      *rand.Rand
	plans    [][]int32
	pos      []int
	prefills [][][]int32
}

func (d *forcedDecoder) Prefill(prompts [][]int32) ([][]float32, error) {
	var logits [][]float32
	if d.inner != nil {
		var err error
		if logits, err = d.inner.Prefill(prompts); err != nil {
			return nil, err
		}
	}
	rec := make([][]int32, len(prompts))
	d.plans, d.pos = make([][]int32, len(prompts)), make([]int, len(prompts))
	for i, p := range prompts {
		rec[i] = slices.Clone(p)
		d.plans[i] = d.plan(p)
	}
	d.prefills = append(d.prefills, rec)
	return d.shape(logits, len(prompts)), nil
}

func (d *forcedDecoder) Step(tokens []int32) ([][]float32, error) {
	var logits [][]float32
	if d.inner != nil {
		var err error
		if logits, err = d.inner.Step(tokens); err != nil {
			return nil, err
		}
	}
	for i := range d.pos {
		d.pos[i]++
	}
	return d.shape(logits, len(tokens)), nil
}

func (d *forcedDecoder) shape(logits [][]float32, rows int) [][]float32 {
	if logits == nil {
		logits = make([][]float32, rows)
		for i := range logits {
			logits[i] = make([]float32, d.vocab)
			for j := range logits[i] {
				logits[i][j] = float32(d.rng.NormFloat64())
			}
		}
	}
	for i, row := range logits {
		if p := d.pos[i]; p < len(d.plans[i]) && d.plans[i][p] != free {
			row[d.plans[i][p]] = slices.Max(row) + 60
			continue
		}
		for _, b := range d.banned {
			row[b] = -1e30
		}
	}
	return logits
}
