package model

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// ValueHead is an actor-critic's value function: a linear head V = h·W + B on the policy's
// final-normed hidden state h, so the critic shares the policy's trunk. Its gradient flows into the
// trunk through Trainer.AccumulateValue (scaled by the caller's loss coefficient); the head's own
// parameters are updated by ValueHead.Step with AdamW, apart from the model's weights.
type ValueHead struct {
	W []float32 `json:"w"`
	B float32   `json:"b"`
	// AdamW state over [W..., B].
	Mom   []float32 `json:"exp_avg"`
	Vel   []float32 `json:"exp_avg_sq"`
	Steps int       `json:"step"`

	grad []float32 // accumulated since the last Step
}

// NewValueHead returns a zero head (V = 0 everywhere until trained) for hidden size d.
func NewValueHead(d int) *ValueHead {
	return &ValueHead{W: make([]float32, d), Mom: make([]float32, d+1), Vel: make([]float32, d+1)}
}

// MarshalJSON-compatible round trip: float32 values encode exactly in JSON (shortest form), so a
// resumed head is bit-identical.

// LoadValueHead decodes a head written with json.Marshal and checks it fits hidden size d.
func LoadValueHead(data []byte, d int) (*ValueHead, error) {
	h := &ValueHead{}
	if err := json.Unmarshal(data, h); err != nil {
		return nil, fmt.Errorf("value head: %w", err)
	}
	if len(h.W) != d || len(h.Mom) != d+1 || len(h.Vel) != d+1 || h.Steps < 0 {
		return nil, fmt.Errorf("value head: %d weights and %d/%d moments, want %d and %d (a head of another model?)", len(h.W), len(h.Mom), len(h.Vel), d, d+1)
	}
	if err := checkFinite("value head", append(append([]float32{h.B}, h.W...), h.Mom...)); err != nil {
		return nil, fmt.Errorf("value head: %w", err)
	}
	return h, nil
}

func (h *ValueHead) tensors() (w, b *tensors.Tensor) {
	return tensors.FromFlatDataAndDimensions(append([]float32(nil), h.W...), len(h.W)),
		tensors.FromFlatDataAndDimensions([]float32{h.B}, 1)
}

// values computes V [B, T] from the final hidden states h [B, T, D].
func headValues(h, w, b *graph.Node) *graph.Node {
	d := w.Shape().Dimensions[0]
	v := linear(h, graph.Reshape(w, 1, d), b) // [B, T, 1]
	return graph.Reshape(v, h.Shape().Dimensions[0], h.Shape().Dimensions[1])
}

func valuesGraph(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
	ids, pos, mask, w, b := in[0], in[1], in[2], in[3], in[4]
	h, _, _ := n.forward(ids, pos, causalAllowed(mask))
	return []*graph.Node{headValues(h, w, b)}
}

// Values returns the head's value at every position of a padded batch, in LogProbs' layout: entry t
// is the value of the state after token t, i.e. where token t+1 is predicted ([B][T-1], 0 at padding).
func (m *Model) Values(ids, mask [][]int32, head *ValueHead) (out [][]float32, err error) {
	defer recoverErr(&err, "model Values")
	if len(head.W) != m.cfg.HiddenSize {
		return nil, fmt.Errorf("model Values: value head has %d weights, hidden size is %d", len(head.W), m.cfg.HiddenSize)
	}
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, fmt.Errorf("model Values: %w", err)
	}
	w, b := head.tensors()
	outs, err := m.call("values", valuesGraph, bt.ids, bt.pos, bt.mask, w, b)
	if err != nil {
		return nil, err
	}
	defer finalize(outs)
	flat, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, err
	}
	return unpadPairs(flat, bt), nil
}

// valueAccGraph: inputs after the weights are [acc...] (when accumulating), ids, pos, mask, w, b and
// coef [B, T]. The surrogate Σ coef·V has the gradient of the caller's value loss when coef is its
// dLoss/dV; outputs are V, the head's gradients (w, b) and the trunk's (accumulated).
func valueAccGraph(withAcc bool) func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	return func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
		np := len(n.trainable())
		var acc []*graph.Node
		if withAcc {
			acc, in = in[:np], in[np:]
		}
		ids, pos, mask, w, b, coef := in[0], in[1], in[2], in[3], in[4], in[5]
		h, _, _ := n.forward(ids, pos, causalAllowed(mask))
		v := headValues(h, w, b)
		loss := graph.ReduceAllSum(graph.Mul(coef, v))
		grads := graph.Gradient(loss, append(append([]*graph.Node(nil), n.trainable()...), w, b)...)
		return addGrads([]*graph.Node{v, grads[np], grads[np+1]}, acc, grads[:np])
	}
}

// AccumulateValue runs forward and backward of the surrogate Σ coef·V (coef = the value loss's
// dLoss/dV per position, [B][T-1] as Accumulate's coefficients, the loss coefficient included): the
// trunk's gradient is added to the trainer's accumulators, so the next Step updates the trunk for
// policy and critic together, and the head's gradient to head (applied by head.Step). It returns the
// values of the pass.
func (tr *Trainer) AccumulateValue(ids, mask [][]int32, head *ValueHead, coef [][]float32) (values [][]float32, err error) {
	defer recoverErr(&err, "model AccumulateValue")
	m := tr.m
	if len(head.W) != m.cfg.HiddenSize {
		return nil, fmt.Errorf("model AccumulateValue: value head has %d weights, hidden size is %d", len(head.W), m.cfg.HiddenSize)
	}
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, fmt.Errorf("model AccumulateValue: %w", err)
	}
	c, err := padCoef("value coef", coef, bt)
	if err != nil {
		return nil, fmt.Errorf("model AccumulateValue: %w", err)
	}
	extra, err := tr.takeAcc()
	if err != nil {
		return nil, err
	}
	withAcc := extra != nil
	w, b := head.tensors()
	extra = append(extra, bt.ids, bt.pos, bt.mask, w, b, c)
	key := "value_acc" + fmt.Sprint(withAcc)
	outs, err := m.callV(key, m.variant(tr.remat), valueAccGraph(withAcc), extra...)
	if err != nil {
		return nil, err
	}
	tr.acc = outs[3:]
	defer finalize(outs[:3])
	v, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, err
	}
	gw, err := tensors.CopyFlatData[float32](outs[1])
	if err != nil {
		return nil, err
	}
	gb, err := tensors.CopyFlatData[float32](outs[2])
	if err != nil {
		return nil, err
	}
	if head.grad == nil {
		head.grad = make([]float32, len(head.W)+1)
	}
	for i, g := range gw {
		head.grad[i] += g
	}
	head.grad[len(head.W)] += gb[0]
	return unpadPairs(v, bt), nil
}

// Step applies one AdamW update (cfg's betas, eps and weight decay on W, not B; lr given) with the
// gradients accumulated since the last Step, clipped to cfg.ClipNorm by their own norm, and clears
// them. It returns the gradient norm before clipping; a non-finite gradient leaves the head as it was.
func (h *ValueHead) Step(cfg OptimConfig, lr float64) (float64, error) {
	if h.grad == nil {
		return 0, nil
	}
	g := h.grad
	h.grad = nil
	var sq float64
	for _, x := range g {
		sq += float64(x) * float64(x)
	}
	norm := math.Sqrt(sq)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, fmt.Errorf("value head: gradient norm %v: %w", norm, ErrNonFinite)
	}
	coef := 1.0
	if cfg.ClipNorm > 0 {
		coef = math.Min(1, cfg.ClipNorm/(norm+1e-6))
	}
	t := float64(h.Steps + 1)
	bc1, bc2 := 1-math.Pow(cfg.Beta1, t), 1-math.Pow(cfg.Beta2, t)
	for i, x := range g {
		gi := float64(x) * coef
		p := &h.B
		wd := 0.0
		if i < len(h.W) {
			p, wd = &h.W[i], cfg.WeightDecay
		}
		v := float64(*p) * (1 - lr*wd)
		mo := cfg.Beta1*float64(h.Mom[i]) + (1-cfg.Beta1)*gi
		ve := cfg.Beta2*float64(h.Vel[i]) + (1-cfg.Beta2)*gi*gi
		h.Mom[i], h.Vel[i] = float32(mo), float32(ve)
		*p = float32(v - lr/bc1*mo/(math.Sqrt(ve)/math.Sqrt(bc2)+cfg.Eps))
	}
	h.Steps++
	return norm, nil
}

// ClearGrad drops the gradients accumulated since the last Step (a step that was not applied).
func (h *ValueHead) ClearGrad() { h.grad = nil }
