package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/core/graph"
)

// ErrNonFinite marks an optimizer step that was not applied because the gradient norm or an
// updated weight was NaN or ±Inf. The weights and optimizer moments are those from before the
// step, so the caller may stop (keeping every checkpoint finite) or drop the step and go on.
var ErrNonFinite = errors.New("non-finite")

func nonFiniteStep(norm float32) error {
	if math.IsNaN(float64(norm)) || math.IsInf(float64(norm), 0) {
		return fmt.Errorf("model Step: the gradient norm is %v: %w gradients; the step was not applied", norm, ErrNonFinite)
	}
	return fmt.Errorf("model Step: the update would make weights %w (gradient norm %v); the step was not applied", ErrNonFinite, norm)
}

// finiteGuard is true when the gradient norm and every updated weight are finite. It is one
// element-wise pass and a reduction per parameter, small next to the forward and backward passes.
func finiteGuard(norm *graph.Node, updated []*graph.Node) *graph.Node {
	ok := graph.IsFinite(norm)
	for _, p := range updated {
		ok = graph.LogicalAnd(ok, graph.LogicalAll(graph.IsFinite(p)))
	}
	return ok
}

// checkWeightsFinite returns an error naming the first parameter holding a NaN or ±Inf.
func checkWeightsFinite(names []string, host [][]float32) error {
	for i, w := range host {
		for j, x := range w {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("weight %s[%d] is %v: the weights are %w", names[i], j, x, ErrNonFinite)
			}
		}
	}
	return nil
}

// CheckFinite reports the first NaN or ±Inf weight (a copy of the weights is scanned on the host).
func (m *Model) CheckFinite() error {
	host, err := m.hostParams()
	if err != nil {
		return err
	}
	return checkWeightsFinite(m.lay.names, host)
}

// DropGradients discards the gradients accumulated since the last step (a step the caller decided
// not to take).
func (tr *Trainer) DropGradients() { tr.acc = nil }
