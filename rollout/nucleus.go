package rollout

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/internal/fmath"
)

// This file masks a policy's action space with another model's top-p nucleus (NLPO, RL4LMs
// "learned_top_p"): at every decoding step the masking decoder's next-token distribution picks
// the nucleus, and the policy's logits outside it become -Inf, so the sampler draws from the
// policy renormalised over the nucleus and records log-probs normalised over it.

// TopPNucleus returns the token ids of z's top-p nucleus in increasing id order, as RL4LMs'
// learned_top_p mask: tokens sorted by logit (ties to the lower id), kept while the softmax mass
// of the tokens before them is ≤ p (so the token that crosses p is kept, and the first always);
// the ids in always (stop tokens) are added. The softmax is computed in float64.
func TopPNucleus(z []float32, p float64, always []int32) ([]int32, error) {
	if len(z) == 0 {
		return nil, fmt.Errorf("rollout: empty logit row")
	}
	if !(p > 0 && p <= 1) {
		return nil, fmt.Errorf("rollout: nucleus mass %v, want in (0, 1]", p)
	}
	avxstate.Clear() // scalar loops over the vocabulary follow
	mx := math.Inf(-1)
	for j, v := range z {
		x := float64(v)
		if math.IsNaN(x) || math.IsInf(x, 1) {
			return nil, fmt.Errorf("rollout: masking logit of token %d is %v", j, v)
		}
		mx = max(mx, x)
	}
	if math.IsInf(mx, -1) {
		return nil, fmt.Errorf("rollout: every masking logit is -Inf")
	}
	order := make([]int, len(z))
	var sum float64
	for j := range order {
		order[j] = j
		sum += fmath.Exp(float64(z[j]) - mx)
	}
	sort.SliceStable(order, func(a, b int) bool { return z[order[a]] > z[order[b]] })
	out := make([]int32, 0, 8)
	var before float64
	for _, j := range order {
		if len(out) > 0 && before > p {
			break
		}
		out = append(out, int32(j))
		before += fmath.Exp(float64(z[j])-mx) / sum
	}
	for _, t := range always {
		if int(t) < len(z) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// MaskedDecoder is a Decoder whose logits are Policy's with every token outside Mask's top-p
// nucleus set to -Inf. Sets records, per row and per decoding step, the nucleus the step used
// (Sets[i][t] is the nucleus of the distribution that produced token t of row i's completion).
type MaskedDecoder struct {
	Policy, Mask Decoder
	TopP         float64
	Always       []int32 // ids never masked (the stop tokens)
	Sets         [][][]int32
}

// Prefill implements Decoder.
func (d *MaskedDecoder) Prefill(prompts [][]int32) ([][]float32, error) {
	z, err := d.Policy.Prefill(prompts)
	if err != nil {
		return nil, err
	}
	zm, err := d.Mask.Prefill(prompts)
	if err != nil {
		return nil, fmt.Errorf("masking policy: %w", err)
	}
	d.Sets = make([][][]int32, len(prompts))
	return d.apply(z, zm)
}

// Step implements Decoder.
func (d *MaskedDecoder) Step(tokens []int32) ([][]float32, error) {
	z, err := d.Policy.Step(tokens)
	if err != nil {
		return nil, err
	}
	zm, err := d.Mask.Step(tokens)
	if err != nil {
		return nil, fmt.Errorf("masking policy: %w", err)
	}
	return d.apply(z, zm)
}

func (d *MaskedDecoder) apply(z, zm [][]float32) ([][]float32, error) {
	if len(zm) != len(z) || len(z) != len(d.Sets) {
		return nil, fmt.Errorf("rollout: masking policy returned %d rows, the policy %d", len(zm), len(z))
	}
	out := make([][]float32, len(z))
	for i := range z {
		if len(zm[i]) != len(z[i]) {
			return nil, fmt.Errorf("rollout: masking policy has %d logits, the policy %d; they must share a vocabulary", len(zm[i]), len(z[i]))
		}
		set, err := TopPNucleus(zm[i], d.TopP, d.Always)
		if err != nil {
			return nil, err
		}
		d.Sets[i] = append(d.Sets[i], set)
		row := make([]float32, len(z[i]))
		for j := range row {
			row[j] = float32(math.Inf(-1))
		}
		for _, j := range set {
			row[j] = z[i][j]
		}
		out[i] = row
	}
	return out, nil
}
