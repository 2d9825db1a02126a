package model

import (
	"fmt"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

// Warm-up compiles: on XLA a graph of a 0.5B model takes a minute or more to compile, so a run
// compiles the graphs it will need before it starts timing steps. Each WarmUp compiles without
// running (the shapes are those the calls will bucket to) and records the compilation in
// GlobalCompileStats; a later call of the same shape finds the graph compiled.

// compile builds and compiles executable key for the model's weights (and adapter) followed by
// inputs of the given shapes.
func (m *Model) compile(key string, v variant, fn func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node, extra ...shapes.Shape) (err error) {
	defer recoverErr(&err, "model warm-up "+key)
	e, err := m.g.exec(key, v, fn)
	if err != nil {
		return err
	}
	var in []shapes.Shape
	for _, s := range m.lay.shapes {
		in = append(in, shapes.Make(dtypes.Float32, s...))
	}
	if v.al != nil {
		for _, s := range v.al.shapes {
			in = append(in, shapes.Make(dtypes.Float32, s...))
		}
	}
	in = append(in, extra...)
	before := e.builds.Load()
	t0 := time.Now()
	if _, err := e.Compile(in...); err != nil {
		return err
	}
	if e.builds.Load() != before {
		noteCompile(e.Name(), time.Since(t0))
	}
	return nil
}

// batchShapes are the shapes of ids, pos, mask and target of a bucketed batch.
func (m *Model) batchShapes(batch, seq int) []shapes.Shape {
	co := m.Compute()
	s := shapes.Make(dtypes.Int32, co.bucketBatch(batch), co.bucketLen(seq))
	return []shapes.Shape{s, s, s, s}
}

func checkWarmUp(batch, seq int) error {
	if batch < 1 || seq < 2 {
		return fmt.Errorf("model warm-up: want batch >= 1 and seq >= 2, got %d, %d", batch, seq)
	}
	return nil
}

// WarmUp compiles the LogProbs graph for batches of `batch` rows of `seq` tokens.
func (m *Model) WarmUp(batch, seq int) error {
	if err := checkWarmUp(batch, seq); err != nil {
		return err
	}
	return m.compile("logprobs", m.variant(false), logprobsGraph, m.batchShapes(batch, seq)...)
}

// WarmUp compiles what one optimizer step on micro-batches of `batch` rows of `seq` tokens uses:
// the first Accumulate of a step, the later ones when microBatches > 1 (both without entropy
// coefficients), and Step.
func (tr *Trainer) WarmUp(batch, seq, microBatches int) error {
	if err := checkWarmUp(batch, seq); err != nil {
		return err
	}
	m := tr.m
	withRNG := m.lora != nil && m.lora.lay.cfg.Dropout > 0
	var trained []shapes.Shape
	for _, s := range tr.shapes {
		trained = append(trained, shapes.Make(dtypes.Float32, s...))
	}
	co := m.Compute()
	coef := shapes.Make(dtypes.Float32, co.bucketBatch(batch), co.bucketLen(seq))
	for _, withAcc := range []bool{false, true} {
		if withAcc && microBatches < 2 {
			continue
		}
		var in []shapes.Shape
		if withAcc {
			in = append(in, trained...)
		}
		in = append(append(in, m.batchShapes(batch, seq)...), coef)
		if withRNG {
			in = append(in, shapes.Make(dtypes.Uint64, 3))
		}
		key := fmt.Sprintf("train_acc%v_entfalse_rng%v", withAcc, withRNG)
		if err := m.compile(key, m.variant(tr.remat), trainGraph(withAcc, false, withRNG), in...); err != nil {
			return err
		}
	}
	var in []shapes.Shape
	for range 3 { // gradients, first and second moments
		in = append(in, trained...)
	}
	in = append(in, shapes.Make(dtypes.Float32, len(tr.names)), shapes.Make(dtypes.Float32, 8))
	// Step's graph takes the trained tensors in place of the weights (the frozen base weights come
	// first with an adapter), which is what compile's weight shapes plus the adapter's are.
	return m.compile("adamw", m.variant(false), stepGraph, in...)
}

// WarmUp compiles the decoder's prefill graph for prompts of up to promptLen tokens and its
// decode-step graph.
func (d *Decoder) WarmUp(promptLen int) error {
	pb := d.m.Compute().bucketLen(promptLen)
	if promptLen < 1 || pb >= d.capacity {
		return fmt.Errorf("model decoder warm-up: prompt of %d tokens does not fit %d cache slots", promptLen, d.capacity)
	}
	m, c := d.m, d.m.cfg
	ids := shapes.Make(dtypes.Int32, d.batch, pb)
	valid := shapes.Make(dtypes.Int32, d.batch, d.capacity)
	if err := m.compile("prefill", m.variant(false), prefillGraph, ids, ids, valid); err != nil {
		return err
	}
	var in []shapes.Shape
	for range 2 * c.NumLayers {
		in = append(in, shapes.Make(dtypes.Float32, d.batch, c.NumKVHeads, d.capacity, c.HeadDim))
	}
	row := shapes.Make(dtypes.Int32, d.batch)
	in = append(in, valid, row, row, shapes.Make(dtypes.Int32))
	return m.compile("decode", m.variant(false), decodeStepGraph, in...)
}
