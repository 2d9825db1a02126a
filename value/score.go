package value

import "fmt"

// HiddenFunc returns the hidden states after `layer` blocks of a right-padded batch of
// sequences, [row][position][feature] (model.Model.HiddenAt has this signature).
type HiddenFunc func(ids, mask [][]int32, layer int) ([][][]float32, error)

// Fits reports whether the critic can read features of a model with this hidden size and
// number of layers: a one-line error naming the mismatch otherwise.
func (c *Critic) Fits(hiddenSize, numLayers int) error {
	if c.Q == nil || c.V == nil {
		return fmt.Errorf("critic has no Q or V head")
	}
	if c.Q.In != hiddenSize || c.V.In != hiddenSize || c.Layer < 0 || c.Layer > numLayers {
		return fmt.Errorf("critic (features %d/%d, layer %d) does not fit this model (hidden %d, %d layers)",
			c.Q.In, c.V.In, c.Layer, hiddenSize, numLayers)
	}
	return nil
}

// scoreBytes bounds the hidden states one Score call asks for at once.
const scoreBytes = 256 << 20

// Score ranks candidate responses: for every prompt i and candidate j, q[i][j] is Q of the
// response's last action (the hidden state at its last token: the critic's predicted reward of
// the whole response), and v[i] is V of the prompt's state (the hidden state at the prompt's last
// token). Features come from hidden at the critic's layer, at most `batch` sequences per call (256
// when batch < 1) and at most 256 MiB of hidden states. An empty response is scored at the prompt's last position by the Q head.
func (c *Critic) Score(hidden HiddenFunc, prompts [][]int32, resps [][][]int32, batch int) (q [][]float64, v []float64, err error) {
	if len(prompts) != len(resps) {
		return nil, nil, fmt.Errorf("value: %d prompts, %d candidate lists", len(prompts), len(resps))
	}
	if batch < 1 {
		batch = 256
	}
	type ref struct{ i, j int } // j = -1: the prompt's own state
	var seqs [][]int32
	var refs []ref
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, nil, fmt.Errorf("value: prompt %d is empty", i)
		}
		seqs, refs = append(seqs, p), append(refs, ref{i, -1})
		for j, r := range resps[i] {
			seqs = append(seqs, append(append([]int32(nil), p...), r...))
			refs = append(refs, ref{i, j})
		}
	}
	q = make([][]float64, len(prompts))
	for i := range q {
		q[i] = make([]float64, len(resps[i]))
	}
	v = make([]float64, len(prompts))
	for s := 0; s < len(seqs); {
		// Up to batch rows, and no more than scoreBytes of returned hidden states (they cover every
		// position, and a large model's rows are long and wide).
		e, T := s, 0
		for e < len(seqs) && e-s < batch {
			t := max(T, len(seqs[e]))
			if e > s && (e-s+1)*t*c.Q.In*4 > scoreBytes {
				break
			}
			e, T = e+1, t
		}
		part := seqs[s:e]
		ids, mask := make([][]int32, len(part)), make([][]int32, len(part))
		for k, r := range part {
			ids[k], mask[k] = make([]int32, T), make([]int32, T)
			copy(ids[k], r)
			for j := range r {
				mask[k][j] = 1
			}
		}
		h, err := hidden(ids, mask, c.Layer)
		if err != nil {
			return nil, nil, err
		}
		if len(h) != len(part) {
			return nil, nil, fmt.Errorf("value: hidden states for %d rows, want %d", len(h), len(part))
		}
		for k, r := range part {
			x := h[k][len(r)-1]
			if len(x) != c.Q.In {
				return nil, nil, fmt.Errorf("value: features of size %d, the critic reads %d", len(x), c.Q.In)
			}
			if ref := refs[s+k]; ref.j < 0 {
				v[ref.i] = c.V.Eval(x)
			} else {
				q[ref.i][ref.j] = c.Q.Eval(x)
			}
		}
		s = e
	}
	return q, v, nil
}
