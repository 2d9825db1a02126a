package model

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// CheckItem is one comparison of CheckReference.
type CheckItem struct {
	Name      string  // "logits", "next_token_logprobs", "greedy", "loss", "grad.<param>"
	Kind      string  // "abs" (max absolute difference), "rel" (relative L2 error), "tokens" (mismatches)
	Diff      float64 // the measured difference
	Tolerance float64
	Where     string // where the largest difference is, e.g. "[1,4,17]"
	OK        bool
}

func (c CheckItem) String() string {
	status := "ok"
	if !c.OK {
		status = "FAIL"
	}
	return fmt.Sprintf("%-4s %-48s %-6s %.3g (tol %.3g) %s", status, c.Name, c.Kind, c.Diff, c.Tolerance, c.Where)
}

// CheckTolerance sets the limits of CheckReference.
type CheckTolerance struct {
	Logits float64 // max absolute difference of logits and logprobs (default 1e-4)
	Rel    float64 // relative error of loss and gradients (default 1e-4)
}

// CheckReference compares the model with a transformers reference.safetensors (see
// testdata/models/README): logits of input_ids/attention_mask on unmasked positions, and when
// present next_token_logprobs, greedy decoding (greedy_prompt → greedy_output, tokens must be
// identical), the mean next-token cross-entropy of row 0 (loss) and its gradients (grad.<param>).
func CheckReference(m *Model, refPath string, tol CheckTolerance) ([]CheckItem, error) {
	if tol.Logits <= 0 {
		tol.Logits = 1e-4
	}
	if tol.Rel <= 0 {
		tol.Rel = 1e-4
	}
	ref, err := readSafetensors(refPath)
	if err != nil {
		return nil, fmt.Errorf("read reference: %w", err)
	}
	idsT, ok1 := ref["input_ids"]
	maskT, ok2 := ref["attention_mask"]
	logitsT, ok3 := ref["logits"]
	if !ok1 || !ok2 || !ok3 || len(idsT.Shape) != 2 || idsT.I32 == nil || maskT.I32 == nil || logitsT.F32 == nil {
		return nil, fmt.Errorf("reference %s needs integer input_ids [B,T], attention_mask [B,T] and float logits [B,T,V]", refPath)
	}
	b, t, v := idsT.Shape[0], idsT.Shape[1], m.cfg.VocabSize
	if !equalInts(maskT.Shape, idsT.Shape) || !equalInts(logitsT.Shape, []int{b, t, v}) {
		return nil, fmt.Errorf("reference %s: shapes input_ids %v, attention_mask %v, logits %v do not match vocab %d", refPath, idsT.Shape, maskT.Shape, logitsT.Shape, v)
	}
	ids, mask := split2(idsT.I32, b, t), split2(maskT.I32, b, t)
	var items []CheckItem

	logits, err := m.Logits(ids, mask)
	if err != nil {
		return nil, err
	}
	it := CheckItem{Name: "logits", Kind: "abs", Tolerance: tol.Logits}
	for i := 0; i < b; i++ {
		for j := 0; j < t; j++ {
			if mask[i][j] == 0 {
				continue
			}
			for k := 0; k < v; k++ {
				if d := absDiff(logits[i][j][k], logitsT.F32[(i*t+j)*v+k]); d > it.Diff {
					it.Diff, it.Where = d, fmt.Sprintf("at [%d,%d,%d]", i, j, k)
				}
			}
		}
	}
	items = append(items, it.done())

	if want, ok := ref["next_token_logprobs"]; ok && t > 1 && len(want.F32) == b*(t-1) {
		lp, _, err := m.LogProbs(ids, mask)
		if err != nil {
			return nil, err
		}
		it := CheckItem{Name: "next_token_logprobs", Kind: "abs", Tolerance: tol.Logits}
		for i := 0; i < b; i++ {
			for j := 0; j < t-1; j++ {
				if mask[i][j] == 1 && mask[i][j+1] == 1 {
					if d := absDiff(lp[i][j], want.F32[i*(t-1)+j]); d > it.Diff {
						it.Diff, it.Where = d, fmt.Sprintf("at [%d,%d]", i, j)
					}
				}
			}
		}
		items = append(items, it.done())
	}

	if prompt, ok := ref["greedy_prompt"]; ok {
		want := ref["greedy_output"]
		if prompt.I32 == nil || want.I32 == nil || len(want.I32) <= len(prompt.I32) {
			return nil, fmt.Errorf("reference %s: greedy_prompt needs a longer integer greedy_output", refPath)
		}
		got, err := m.greedy(prompt.I32, len(want.I32)-len(prompt.I32))
		if err != nil {
			return nil, err
		}
		it := CheckItem{Name: "greedy", Kind: "tokens", Tolerance: 0}
		for j := range want.I32 {
			if got[j] != want.I32[j] {
				if it.Diff == 0 {
					it.Where = fmt.Sprintf("first at %d: got %v want %v", j, got, want.I32)
				}
				it.Diff++
			}
		}
		items = append(items, it.done())
	}

	if lossT, ok := ref["loss"]; ok && len(lossT.F32) == 1 {
		gradItems, err := m.checkLossAndGrads(ids[0], mask[0], lossT.F32[0], ref, tol.Rel)
		if err != nil {
			return nil, err
		}
		items = append(items, gradItems...)
	}
	return items, nil
}

// absDiff is |a−b|, with NaN counted as +Inf so that it is never hidden.
func absDiff(a, b float32) float64 {
	d := math.Abs(float64(a) - float64(b))
	if math.IsNaN(d) {
		return math.Inf(1)
	}
	return d
}

func (c CheckItem) done() CheckItem {
	c.OK = c.Diff <= c.Tolerance
	return c
}

func split2(flat []int32, b, t int) [][]int32 {
	out := make([][]int32, b)
	for i := range out {
		out[i] = flat[i*t : (i+1)*t]
	}
	return out
}

// greedy decodes n tokens after prompt with the KV-cache decoder.
func (m *Model) greedy(prompt []int32, n int) ([]int32, error) {
	dec, err := m.NewDecoder(1, len(prompt)+n)
	if err != nil {
		return nil, err
	}
	logits, err := dec.Prefill([][]int32{prompt})
	if err != nil {
		return nil, err
	}
	out := append([]int32(nil), prompt...)
	for i := 0; i < n; i++ {
		best := 0
		for k, x := range logits[0] {
			if x > logits[0][best] {
				best = k
			}
		}
		out = append(out, int32(best))
		if i+1 < n {
			if logits, err = dec.Step([]int32{int32(best)}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// checkLossAndGrads computes the mean next-token cross-entropy of one row through the trainer's
// surrogate (coefLogp = −1/N) and compares loss and the reference's grad.<param> tensors.
func (m *Model) checkLossAndGrads(ids, mask []int32, wantLoss float32, ref map[string]hostTensor, tol float64) ([]CheckItem, error) {
	t := len(ids)
	coef := make([]float32, t-1)
	n := 0
	for j := 0; j < t-1; j++ {
		if mask[j] == 1 && mask[j+1] == 1 {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("reference row 0 has no next-token pairs for the loss")
	}
	for j := range coef {
		coef[j] = -1 / float32(n)
	}
	tr, err := NewTrainer(m, DefaultOptimConfig())
	if err != nil {
		return nil, err
	}
	lp, _, err := tr.Accumulate([][]int32{ids}, [][]int32{mask}, [][]float32{coef}, nil)
	if err != nil {
		return nil, err
	}
	loss := 0.0
	for _, x := range lp[0] {
		loss -= float64(x) / float64(n)
	}
	items := []CheckItem{(CheckItem{Name: "loss", Kind: "rel", Tolerance: tol,
		Diff:  math.Abs(loss-float64(wantLoss)) / math.Abs(float64(wantLoss)),
		Where: fmt.Sprintf("got %.7g want %.7g", loss, wantLoss)}).done()}
	var names []string
	for k := range ref {
		if strings.HasPrefix(k, "grad.") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		got, err := tr.gradients(strings.TrimPrefix(k, "grad."))
		if err != nil {
			return nil, fmt.Errorf("reference %s: the model has no such parameter", k)
		}
		want := ref[k].F32
		if len(want) != len(got) {
			return nil, fmt.Errorf("reference %s has %d values, the parameter %d", k, len(want), len(got))
		}
		var num, den float64
		for i := range want {
			d := float64(got[i]) - float64(want[i])
			num += d * d
			den += float64(want[i]) * float64(want[i])
		}
		items = append(items, (CheckItem{Name: k, Kind: "rel", Tolerance: tol, Diff: math.Sqrt(num / den)}).done())
	}
	return items, nil
}
