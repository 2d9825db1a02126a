package model

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// This file computes per-token quantities that need the whole next-token distribution (Lp-Reg's
// min-p proxy, DCPO's temperature-shifted ratio) inside the graph, so that B×T×V never reaches the
// host: only [B, T] arrays come back.

// DistOptions says which distribution-level quantities DistStats computes.
type DistOptions struct {
	// MinPKappa > 0 computes the log-prob of each target under the min-p proxy of the distribution:
	// tokens with p(v) ≥ MinPKappa·max p (MinPFixed: p(v) ≥ MinPKappa) keep their mass, the rest get
	// 0, renormalised. A target the proxy filters out gets -Inf.
	MinPKappa float64
	MinPFixed bool
	// Temperatures (at most two, each > 0) computes the log-prob of each target under
	// softmax(logits/T) for each T. Two let a caller choose between them after seeing the entropies
	// of the same pass (DCPO picks its target temperature from the policy's mean entropy).
	Temperatures []float64
	// SumSqProb computes Σ_v p(v)² of each next-token distribution (with p of the target it gives the
	// squared norm of the log-prob's gradient with respect to the logits, 1 − 2p + Σp²).
	SumSqProb bool
}

// DistStats are per-position arrays in LogProbs' layout ([B][T-1], position t predicts token t+1;
// entries at padding are 0).
type DistStats struct {
	LogP, Entropy [][]float32
	ProxyLogP     [][]float32   // nil unless MinPKappa > 0
	TempLogP      [][][]float32 // one array per entry of Temperatures
	SumSqProb     [][]float32   // nil unless SumSqProb
}

// maxTemperatures is how many temperature log-prob arrays one pass computes.
const maxTemperatures = 2

func (o DistOptions) validate() error {
	switch {
	case !(o.MinPKappa >= 0 && o.MinPKappa < 1):
		return fmt.Errorf("min-p kappa must be in [0, 1), got %g", o.MinPKappa)
	case len(o.Temperatures) > maxTemperatures:
		return fmt.Errorf("%d temperatures: at most %d per pass", len(o.Temperatures), maxTemperatures)
	}
	for _, t := range o.Temperatures {
		if !(t > 0) || math.IsInf(t, 0) {
			return fmt.Errorf("temperature must be finite and > 0, got %g", t)
		}
	}
	return nil
}

// distGraph: inputs ids, pos, mask, target, hp = [kappa, fixed (0/1), T1, T2]. Outputs logp,
// entropy, proxy logp, the log-probs at T1 and T2 and Σp² ([B, T] each). The options are graph inputs, so
// changing them between steps compiles nothing.
func distGraph(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	ids, pos, mask, target, hp := in[0], in[1], in[2], in[3], in[4]
	h, _, _ := n.forward(ids, pos, causalAllowed(mask))
	logits := n.logits(h)
	logp, ent := tokenStats(logits, target)
	at := func(i int) *graph.Node { return graph.Reshape(graph.Slice(hp, graph.AxisElem(i))) }
	kappa, fixed := at(0), at(1)

	// Proxy: with shifted = logits − max, p = e/z and max p = 1/z.
	mx := graph.StopGradient(graph.ReduceAndKeep(logits, graph.ReduceMax, -1))
	e := graph.Exp(graph.Sub(logits, mx))
	z := graph.ReduceAndKeep(e, graph.ReduceSum, -1)
	p := graph.Div(e, z)
	one := graph.ScalarOne(g, dtypes.Float32)
	zero := graph.ScalarZero(g, dtypes.Float32)
	relThr := graph.Mul(kappa, graph.Div(one, z)) // [B, T, 1]
	isFixed := graph.GreaterThan(fixed, zero)
	thr := graph.Where(isFixed, graph.BroadcastToShape(kappa, relThr.Shape()), relThr)
	kept := graph.GreaterOrEqual(p, thr)
	keptMass := graph.ReduceSum(graph.Where(kept, p, graph.ZerosLike(p)), -1) // [B, T]
	vocab := graph.Iota(g, shapeOf(logits, dtypes.Int32), 2)
	hit := graph.Equal(vocab, graph.BroadcastToDims(graph.InsertAxes(target, -1), logits.Shape().Dimensions...))
	targetKept := graph.ReduceMax(graph.ConvertDType(graph.LogicalAnd(hit, kept), dtypes.Float32), -1)
	negInf := graph.BroadcastToShape(graph.Scalar(g, dtypes.Float32, math.Inf(-1)), logp.Shape())
	proxy := graph.Where(graph.GreaterThan(targetKept, zero), graph.Sub(logp, graph.Log(keptMass)), negInf)

	out := []*graph.Node{logp, ent, proxy}
	for i := range maxTemperatures { // log softmax(logits/T) of the target; T = 0 (unused) counts as 1
		temp := at(2 + i)
		safeT := graph.Where(graph.GreaterThan(temp, zero), temp, one)
		tempLogp, _ := tokenStats(graph.Div(logits, safeT), target)
		out = append(out, tempLogp)
	}
	return append(out, graph.ReduceSum(graph.Square(p), -1))
}

// DistStats runs the model on a padded batch (as LogProbs) and returns the target log-probs and
// entropies together with the distribution-level quantities opts asks for.
func (m *Model) DistStats(ids, mask [][]int32, opts DistOptions) (out DistStats, err error) {
	defer recoverErr(&err, "model DistStats")
	if err := opts.validate(); err != nil {
		return DistStats{}, fmt.Errorf("model DistStats: %w", err)
	}
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return DistStats{}, fmt.Errorf("model DistStats: %w", err)
	}
	fixed := float32(0)
	if opts.MinPFixed {
		fixed = 1
	}
	hpv := []float32{float32(opts.MinPKappa), fixed, 0, 0}
	for i, t := range opts.Temperatures {
		hpv[2+i] = float32(t)
	}
	hp := tensors.FromFlatDataAndDimensions(hpv, len(hpv))
	outs, err := m.call("diststats", distGraph, bt.ids, bt.pos, bt.mask, bt.target, hp)
	if err != nil {
		return DistStats{}, err
	}
	defer finalize(outs)
	flat := make([][]float32, len(outs))
	for i, t := range outs {
		if flat[i], err = tensors.CopyFlatData[float32](t); err != nil {
			return DistStats{}, err
		}
	}
	out = DistStats{LogP: unpadPairs(flat[0], bt), Entropy: unpadPairs(flat[1], bt)}
	if opts.MinPKappa > 0 {
		out.ProxyLogP = unpadPairs(flat[2], bt)
	}
	for i := range opts.Temperatures {
		out.TempLogP = append(out.TempLogP, unpadPairs(flat[3+i], bt))
	}
	if opts.SumSqProb {
		out.SumSqProb = unpadPairs(flat[3+maxTemperatures], bt)
	}
	return out, nil
}
