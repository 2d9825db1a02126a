package objective

import (
	"math"
	"testing"
)

// This file is the worked example of docs/objectives.md, "Adding a method with a new input": a method
// whose input (row_weight) has no Batch field. Its file registers the input and the preset and
// declares the input; the registry-driven tests (finite differences, input coverage) pick both up.

func init() {
	RegisterExtraInput("row_weight", PerRow, "per response, a weight of its loss: example_weighted", []float64(nil))
	Register("example_weighted", "example: GRPO advantages, each response's REINFORCE term scaled by row_weight",
		Params{}, func(Params) (Objective, error) { return exampleWeighted{}, nil })
}

// exampleWeighted is L = -(1/B) Σ_i w_i·A_i·(1/L_i) Σ_t logp[i,t].
type exampleWeighted struct{}

func (exampleWeighted) Inputs() []string {
	return declared((needLogP | needRewards | needGroup).names(), []string{"row_weight"})
}

func (exampleWeighted) Advantages(b *Batch) ([][]float64, error) {
	if err := check(b, needRewards|needGroup); err != nil {
		return nil, err
	}
	return broadcast(GroupAdvantages(b.Rewards, b.Group, b.Mask, "group", 1e-6, SingletonVerl), b.Mask), nil
}

func (exampleWeighted) Loss(b *Batch) (Result, error) {
	if err := check(b, needLogP|needAdv); err != nil {
		return Result{}, err
	}
	if err := checkExtra(b, "row_weight"); err != nil {
		return Result{}, err
	}
	rw := b.Extra["row_weight"].([]float64)
	w, err := AggWeights(AggSeqMeanTokenMean, b.Mask, 0, b.NormTokens, b.NormRows)
	if err != nil {
		return Result{}, err
	}
	res := Result{GradLogP: newLike(b.Mask)}
	for i, row := range w {
		for t, wt := range row {
			res.Loss -= wt * rw[i] * b.Advantages[i][t] * b.LogP[i][t]
			res.GradLogP[i][t] = -wt * rw[i] * b.Advantages[i][t]
		}
	}
	return res, nil
}

// TestExampleNewInput: the example's input is declared, subset, checked and required like any other.
func TestExampleNewInput(t *testing.T) {
	o := mustNew(t, "example_weighted", nil)
	if !Declares(o, "row_weight") {
		t.Fatal("row_weight not declared")
	}
	b := rowsBatch([]int{1, 2}, []float64{1, 0}, []int{0, 0})
	b.Advantages = advOf(t, o, b)
	if _, err := o.Loss(b); err == nil || err.Error() != "bad input: row_weight: missing (this objective needs it)" {
		t.Fatalf("missing input: %v", err)
	}
	b.Extra = map[string]any{"row_weight": []float64{2, 0.5}}
	res := lossOf(t, o, b)
	a := 0.5 / (math.Sqrt(0.5) + 1e-6)
	assertVec(t, "grad", []float64{res.GradLogP[0][0], res.GradLogP[1][0], res.GradLogP[1][1]},
		[]float64{-2 * a / 2, 0.5 * a / 4, 0.5 * a / 4}, 1e-15)
	if sub := b.Subset([]int{1}); sub.Extra["row_weight"].([]float64)[0] != 0.5 {
		t.Errorf("Subset: %v", sub.Extra)
	}
	b.Extra["row_weight"] = []float64{1}
	if _, err := o.Loss(b); err == nil {
		t.Error("row_weight with 1 entry for 2 rows accepted")
	}
}
