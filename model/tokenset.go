package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// This file trains on a set of candidate tokens per position instead of the one target: One-Token
// Rollout's K draws from the model's own next-token distribution (SampleTokens, in the graph from
// host uniforms, so the distribution never reaches the host) and a loss Σ coef·log π(candidate)
// over them (AccumulateTokenSet).

// SampleTokens draws, at every position t of a padded batch, len(u[b][t]) tokens from
// softmax(logits/temperature) by inverting the CDF at the given uniforms u[b][t][k] ∈ [0, 1)
// ([B][T-1][K], LogProbs' layout: position t predicts token t+1). Entries at padding are 0.
func (m *Model) SampleTokens(ids, mask [][]int32, u [][][]float32, temperature float64) (out [][][]int32, err error) {
	defer recoverErr(&err, "model SampleTokens")
	if !(temperature > 0) || math.IsInf(temperature, 0) {
		return nil, fmt.Errorf("model SampleTokens: temperature must be finite and > 0, got %g", temperature)
	}
	bt, err := m.makeBatch(ids, mask)
	if err != nil {
		return nil, fmt.Errorf("model SampleTokens: %w", err)
	}
	k, err := setWidth(u, bt)
	if err != nil {
		return nil, fmt.Errorf("model SampleTokens: %w", err)
	}
	flat := make([]float32, bt.bb*bt.tb*k)
	for b := range u {
		for t := range u[b] {
			for j, x := range u[b][t] {
				if !(x >= 0 && x < 1) {
					return nil, fmt.Errorf("model SampleTokens: u[%d][%d][%d] = %v, want [0, 1)", b, t, j, x)
				}
				flat[(b*bt.tb+t)*k+j] = x
			}
		}
	}
	uT := tensors.FromFlatDataAndDimensions(flat, bt.bb, bt.tb, k)
	tT := tensors.FromFlatDataAndDimensions([]float32{float32(temperature)}, 1)
	fn := func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
		ids, pos, mask, u, temp := in[0], in[1], in[2], in[3], in[4]
		h, _, _ := n.forward(ids, pos, causalAllowed(mask))
		logits := graph.Div(n.logits(h), graph.Reshape(temp))
		cdf := graph.CumSum(graph.Softmax(logits, -1), -1) // [B, T, V]
		dims := cdf.Shape().Dimensions
		v := dims[2]
		below := graph.LessThan(graph.InsertAxes(cdf, 2), graph.InsertAxes(u, -1)) // [B, T, K, V]
		idx := graph.ReduceSum(graph.ConvertDType(below, dtypes.Int32), -1)
		return []*graph.Node{graph.Min(idx, graph.Scalar(g, dtypes.Int32, v-1))} // rounding at the top
	}
	outs, err := m.call(fmt.Sprintf("sample_tokens_k%d", k), fn, bt.ids, bt.pos, bt.mask, uT, tT)
	if err != nil {
		return nil, err
	}
	defer finalize(outs)
	got, err := tensors.CopyFlatData[int32](outs[0])
	if err != nil {
		return nil, err
	}
	out = make([][][]int32, bt.b)
	for b := range out {
		out[b] = make([][]int32, bt.t-1)
		for t := range out[b] {
			out[b][t] = make([]int32, k)
			if bt.maskH[b][t] == 1 && bt.maskH[b][t+1] == 1 {
				copy(out[b][t], got[(b*bt.tb+t)*k:(b*bt.tb+t+1)*k])
			}
		}
	}
	return out, nil
}

// setWidth checks a [B][T-1][K] per-position set and returns K.
func setWidth[E any](x [][][]E, bt *batch) (int, error) {
	if len(x) != bt.b {
		return 0, fmt.Errorf("%d rows, batch has %d", len(x), bt.b)
	}
	if bt.t < 2 {
		return 0, errors.New("sequences need at least 2 tokens")
	}
	k := -1
	for b, row := range x {
		if len(row) != bt.t-1 {
			return 0, fmt.Errorf("row %d has %d positions, want T-1 = %d", b, len(row), bt.t-1)
		}
		for t, set := range row {
			if k < 0 {
				k = len(set)
			}
			if len(set) != k || k == 0 {
				return 0, fmt.Errorf("[%d][%d] has %d entries, want the same K ≥ 1 everywhere", b, t, len(set))
			}
		}
	}
	return k, nil
}

// AccumulateTokenSet runs forward and backward of the surrogate Σ coef[b][t][k]·log π(cand[b][t][k] |
// ids[b][..t]) and adds its gradient to the accumulators (as Accumulate, whose surrogate is the
// special case of one candidate, the target). Candidates and coefficients are [B][T-1][K]; entries
// at padding are ignored. It returns the candidates' log-probs.
func (tr *Trainer) AccumulateTokenSet(ids, mask [][]int32, cand [][][]int32, coef [][][]float32) (logp [][][]float32, err error) {
	defer recoverErr(&err, "model AccumulateTokenSet")
	m := tr.m
	bt, err := m.makeBatch(ids, mask)
	if err != nil {
		return nil, fmt.Errorf("model AccumulateTokenSet: %w", err)
	}
	k, err := setWidth(cand, bt)
	if err != nil {
		return nil, fmt.Errorf("model AccumulateTokenSet: candidates: %w", err)
	}
	if kc, err := setWidth(coef, bt); err != nil || kc != k {
		return nil, fmt.Errorf("model AccumulateTokenSet: coefficients: want the candidates' shape (%v)", err)
	}
	v := int32(m.cfg.VocabSize)
	n := bt.bb * bt.tb * k
	idx, cf := make([]int32, 3*n), make([]float32, n)
	for b := range bt.bb {
		for t := range bt.tb {
			for j := range k {
				f := (b*bt.tb+t)*k + j
				idx[3*f], idx[3*f+1] = int32(b), int32(t)
				if b >= bt.b || t >= bt.t-1 || bt.maskH[b][t] == 0 || bt.maskH[b][t+1] == 0 {
					continue
				}
				c, x := cand[b][t][j], coef[b][t][j]
				if c < 0 || c >= v {
					return nil, fmt.Errorf("model AccumulateTokenSet: candidate %d at [%d][%d][%d] is outside the vocabulary [0, %d)", c, b, t, j, v)
				}
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return nil, fmt.Errorf("model AccumulateTokenSet: coefficient [%d][%d][%d] is %v", b, t, j, x)
				}
				idx[3*f+2], cf[f] = c, x
			}
		}
	}
	extra, err := tr.takeAcc()
	if err != nil {
		return nil, err
	}
	withAcc := extra != nil
	extra = append(extra, bt.ids, bt.pos, bt.mask, tensors.FromFlatDataAndDimensions(idx, bt.bb, bt.tb, k, 3),
		tensors.FromFlatDataAndDimensions(cf, bt.bb, bt.tb, k))
	fn := func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
		np := len(n.trainable())
		var acc []*graph.Node
		if withAcc {
			acc, in = in[:np], in[np:]
		}
		ids, pos, mask, where, coef := in[0], in[1], in[2], in[3], in[4]
		h, _, _ := n.forward(ids, pos, causalAllowed(mask))
		logits := n.logits(h)
		mx := graph.StopGradient(graph.ReduceAndKeep(logits, graph.ReduceMax, -1))
		shifted := graph.Sub(logits, mx)
		logSoftmax := graph.Sub(shifted, graph.Log(graph.ReduceAndKeep(graph.Exp(shifted), graph.ReduceSum, -1)))
		lp := graph.Gather(logSoftmax, where) // [B, T, K]
		loss := graph.ReduceAllSum(graph.Mul(coef, lp))
		return addGrads([]*graph.Node{lp}, acc, graph.Gradient(loss, n.trainable()...))
	}
	outs, err := m.callV(fmt.Sprintf("tokenset_acc%v_k%d", withAcc, k), m.variant(tr.remat), fn, extra...)
	if err != nil {
		return nil, err
	}
	tr.acc = outs[1:]
	defer finalize(outs[:1])
	flat, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, err
	}
	logp = make([][][]float32, bt.b)
	for b := range logp {
		logp[b] = make([][]float32, bt.t-1)
		for t := range logp[b] {
			logp[b][t] = make([]float32, k)
			if bt.maskH[b][t] == 1 && bt.maskH[b][t+1] == 1 {
				copy(logp[b][t], flat[(b*bt.tb+t)*k:(b*bt.tb+t+1)*k])
			}
		}
	}
	return logp, nil
}

// TopKLogProbs returns, at every position of a padded batch, the k most probable next tokens and
// their log-probs under the full softmax ([B][T-1][k], most probable first; 0 at padding): a
// teacher's sparse distribution for distillation, without B×T×V on the host.
func (m *Model) TopKLogProbs(ids, mask [][]int32, k int) (idx [][][]int32, logp [][][]float32, err error) {
	defer recoverErr(&err, "model TopKLogProbs")
	if k < 1 || k > m.cfg.VocabSize {
		return nil, nil, fmt.Errorf("model TopKLogProbs: k = %d, want 1..%d", k, m.cfg.VocabSize)
	}
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("model TopKLogProbs: %w", err)
	}
	fn := func(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
		ids, pos, mask := in[0], in[1], in[2]
		h, _, _ := n.forward(ids, pos, causalAllowed(mask))
		logits := n.logits(h)
		mx := graph.ReduceAndKeep(logits, graph.ReduceMax, -1)
		shifted := graph.Sub(logits, mx)
		ls := graph.Sub(shifted, graph.Log(graph.ReduceAndKeep(graph.Exp(shifted), graph.ReduceSum, -1)))
		vals, where := graph.TopK(ls, k, -1)
		return []*graph.Node{graph.ConvertDType(where, dtypes.Int32), vals}
	}
	outs, err := m.call(fmt.Sprintf("topk_%d", k), fn, bt.ids, bt.pos, bt.mask)
	if err != nil {
		return nil, nil, err
	}
	defer finalize(outs)
	fi, err := tensors.CopyFlatData[int32](outs[0])
	if err != nil {
		return nil, nil, err
	}
	fv, err := tensors.CopyFlatData[float32](outs[1])
	if err != nil {
		return nil, nil, err
	}
	idx, logp = make([][][]int32, bt.b), make([][][]float32, bt.b)
	for b := range idx {
		idx[b], logp[b] = make([][]int32, bt.t-1), make([][]float32, bt.t-1)
		for t := range idx[b] {
			idx[b][t], logp[b][t] = make([]int32, k), make([]float32, k)
			if bt.maskH[b][t] == 1 && bt.maskH[b][t+1] == 1 {
				copy(idx[b][t], fi[(b*bt.tb+t)*k:(b*bt.tb+t+1)*k])
				copy(logp[b][t], fv[(b*bt.tb+t)*k:(b*bt.tb+t+1)*k])
			}
		}
	}
	return idx, logp, nil
}
