package model

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/internal/fmath"
)

// This file computes log-probs on a masked action space (NLPO): at every position the distribution
// is the softmax renormalised over a given set of allowed tokens (the masking policy's nucleus),
// log π_N(a) = z_a − log Σ_{v∈N} e^{z_v}, in the graph and with its gradient, so that the sets (a few
// ids per position) and not B×T×V cross to the graph.

// nucleusInputs pads per-position token sets [B][T-1][] (ragged; an empty or nil set = the whole
// vocabulary) to where [bb, tb, K, 3] gather indices, valid [bb, tb, K] (1 for a set member) and
// full [bb, tb] (1 where the position uses the whole vocabulary). K is the largest set rounded up to
// a power of two, so that few graphs are compiled.
func (m *Model) nucleusInputs(sets [][][]int32, bt *batch) (where, valid, full *tensors.Tensor, k int, err error) {
	if len(sets) != bt.b {
		return nil, nil, nil, 0, fmt.Errorf("sets have %d rows, batch has %d", len(sets), bt.b)
	}
	k = 1
	for b, row := range sets {
		if len(row) != bt.t-1 {
			return nil, nil, nil, 0, fmt.Errorf("sets row %d has %d positions, want T-1 = %d", b, len(row), bt.t-1)
		}
		for _, s := range row {
			k = max(k, len(s))
		}
	}
	k = bucketBatch(k)
	v := int32(m.cfg.VocabSize)
	n := bt.bb * bt.tb
	idx, val, fl := make([]int32, 3*n*k), make([]float32, n*k), make([]float32, n)
	for b := range bt.bb {
		for t := range bt.tb {
			p := b*bt.tb + t
			fl[p] = 1
			for j := range k {
				f := p*k + j
				idx[3*f], idx[3*f+1] = int32(b), int32(t)
			}
			if b >= bt.b || t >= bt.t-1 || len(sets[b][t]) == 0 {
				continue
			}
			fl[p] = 0
			for j, c := range sets[b][t] {
				if c < 0 || c >= v {
					return nil, nil, nil, 0, fmt.Errorf("set member %d at [%d][%d] is outside the vocabulary [0, %d)", c, b, t, v)
				}
				idx[3*(p*k+j)+2], val[p*k+j] = c, 1
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(idx, bt.bb, bt.tb, k, 3), tensors.FromFlatDataAndDimensions(val, bt.bb, bt.tb, k),
		tensors.FromFlatDataAndDimensions(fl, bt.bb, bt.tb), k, nil
}

// nucleusStats returns the target's log-prob and the entropy of the distribution renormalised over
// each position's set (the whole vocabulary where full is 1), both [B, T].
func nucleusStats(logits, target, where, valid, full *graph.Node) (logp, entropy *graph.Node) {
	g := logits.Graph()
	fullLogp, fullEnt := tokenStats(logits, target)
	mx := graph.StopGradient(graph.ReduceAndKeep(logits, graph.ReduceMax, -1))
	shifted := graph.Sub(logits, mx)
	vocab := graph.Iota(g, shapeOf(logits, dtypes.Int32), 2)
	hit := graph.Equal(vocab, graph.BroadcastToDims(graph.InsertAxes(target, -1), logits.Shape().Dimensions...))
	tgt := graph.ReduceSum(graph.Where(hit, shifted, graph.ZerosLike(shifted)), -1)
	s := graph.Gather(shifted, where) // [B, T, K]
	e := graph.Mul(valid, graph.Exp(s))
	z := graph.ReduceSum(e, -1)
	isFull := graph.GreaterThan(full, graph.ScalarZero(g, dtypes.Float32))
	one := graph.OnesLike(z)
	zSafe := graph.Where(isFull, one, z) // no log 0 (nor its gradient) where the set is unused
	lse := graph.Log(zSafe)
	setLogp := graph.Sub(tgt, lse)
	setEnt := graph.Sub(lse, graph.Div(graph.ReduceSum(graph.Mul(e, s), -1), zSafe))
	return graph.Where(isFull, fullLogp, setLogp), graph.Where(isFull, fullEnt, setEnt)
}

// NucleusLogProbs is LogProbs on a masked action space: sets[b][t] are the tokens allowed at
// position t (predicting token t+1; LogProbs' layout), nil or empty for the whole vocabulary. The
// log-prob of a target outside its set is not meaningful. The entropy is that of the renormalised
// distribution.
func (m *Model) NucleusLogProbs(ids, mask [][]int32, sets [][][]int32) (logp, entropy [][]float32, err error) {
	defer recoverErr(&err, "model NucleusLogProbs")
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("model NucleusLogProbs: %w", err)
	}
	where, valid, full, k, err := m.nucleusInputs(sets, bt)
	if err != nil {
		return nil, nil, fmt.Errorf("model NucleusLogProbs: %w", err)
	}
	fn := func(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
		h, _, _ := n.forward(in[0], in[1], causalAllowed(in[2]))
		lp, ent := nucleusStats(n.logits(h), in[3], in[4], in[5], in[6])
		return []*graph.Node{lp, ent}
	}
	outs, err := m.call(fmt.Sprintf("nucleus_k%d", k), fn, bt.ids, bt.pos, bt.mask, bt.target, where, valid, full)
	if err != nil {
		return nil, nil, err
	}
	lp, ent, err := copy2(outs)
	if err != nil {
		return nil, nil, err
	}
	return unpadPairs(lp, bt), unpadPairs(ent, bt), nil
}

// AccumulateNucleus is Accumulate on a masked action space: it adds the gradient of
// Σ coef[b][t]·log π_N(ids[b][t+1]) (sets as NucleusLogProbs) to the accumulators and returns the
// masked log-probs and entropies.
func (tr *Trainer) AccumulateNucleus(ids, mask [][]int32, sets [][][]int32, coefLogp [][]float32) (logp, entropy [][]float32, err error) {
	defer recoverErr(&err, "model AccumulateNucleus")
	m := tr.m
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("model AccumulateNucleus: %w", err)
	}
	cl, err := padCoef("coefLogp", coefLogp, bt)
	if err != nil {
		return nil, nil, fmt.Errorf("model AccumulateNucleus: %w", err)
	}
	where, valid, full, k, err := m.nucleusInputs(sets, bt)
	if err != nil {
		return nil, nil, fmt.Errorf("model AccumulateNucleus: %w", err)
	}
	extra, err := tr.takeAcc()
	if err != nil {
		return nil, nil, err
	}
	withAcc := extra != nil
	withRNG := m.lora != nil && m.lora.lay.cfg.Dropout > 0
	extra = append(extra, bt.ids, bt.pos, bt.mask, bt.target, where, valid, full, cl)
	if withRNG {
		extra = append(extra, tr.rngState())
	}
	fn := func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
		np := len(n.trainable())
		var acc []*graph.Node
		if withAcc {
			acc, in = in[:np], in[np:]
		}
		if withRNG {
			n.rng, in = in[len(in)-1], in[:len(in)-1]
		}
		h, _, _ := n.forward(in[0], in[1], causalAllowed(in[2]))
		lp, ent := nucleusStats(n.logits(h), in[3], in[4], in[5], in[6])
		loss := graph.ReduceAllSum(graph.Mul(in[7], lp))
		return addGrads([]*graph.Node{lp, ent}, acc, graph.Gradient(loss, n.trainable()...))
	}
	key := fmt.Sprintf("nucleus_acc%v_rng%v_k%d", withAcc, withRNG, k)
	outs, err := m.callV(key, m.variant(tr.remat), fn, extra...)
	if err != nil {
		return nil, nil, err
	}
	tr.acc = outs[2:]
	lp, ent, err := copy2(outs[:2])
	if err != nil {
		return nil, nil, err
	}
	return unpadPairs(lp, bt), unpadPairs(ent, bt), nil
}

// nucleusLogProb64 is the float64 reference of one masked log-prob from a full logit row.
func nucleusLogProb64(z []float32, set []int32, target int32) float64 {
	avxstate.Clear() // scalar loops over the vocabulary follow
	mx := math.Inf(-1)
	for _, v := range z {
		mx = max(mx, float64(v))
	}
	var s float64
	if len(set) == 0 {
		for _, v := range z {
			s += fmath.Exp(float64(v) - mx)
		}
	} else {
		for _, j := range set {
			s += fmath.Exp(float64(z[j]) - mx)
		}
	}
	return float64(z[target]) - mx - math.Log(s)
}
