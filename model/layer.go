package model

import (
	"fmt"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// This file gives the policy of an internal layer (BuPO): π_l = softmax(U·N(h_l)), h_l the residual
// stream after decoder layer l (0-based), U the LM head, N the final RMSNorm when finalNorm is set.
// As transformers' hidden_states, the last layer's stream is always taken after the final norm, so
// π_{N-1} is the model's own policy.

// forwardTo runs decoder layers 0..layer and returns the residual stream after it (through the final
// norm when finalNorm or when layer is the last).
func (n *net) forwardTo(ids, pos, allowed *graph.Node, layer int, finalNorm bool) *graph.Node {
	h, _, _ := n.decoder(ids, pos, allowed, layer+1)
	if finalNorm || layer == len(n.lay.layers)-1 {
		h = rmsNorm(h, n.p[n.lay.norm], n.cfg.RMSNormEps)
	}
	return h
}

func (m *Model) checkLayer(layer int) error {
	if layer < 0 || layer >= m.cfg.NumLayers {
		return fmt.Errorf("layer %d: the model has %d layers (0..%d)", layer, m.cfg.NumLayers, m.cfg.NumLayers-1)
	}
	return nil
}

func layerKey(prefix string, layer int, finalNorm bool) string {
	return fmt.Sprintf("%s_l%d_n%v", prefix, layer, finalNorm)
}

// LayerLogProbs is LogProbs under the internal policy of layer (0-based; see forwardTo).
func (m *Model) LayerLogProbs(ids, mask [][]int32, layer int, finalNorm bool) (logp, entropy [][]float32, err error) {
	defer recoverErr(&err, "model LayerLogProbs")
	if err := m.checkLayer(layer); err != nil {
		return nil, nil, fmt.Errorf("model LayerLogProbs: %w", err)
	}
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("model LayerLogProbs: %w", err)
	}
	fn := func(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
		ids, pos, mask, target := in[0], in[1], in[2], in[3]
		lp, ent := tokenStats(n.logits(n.forwardTo(ids, pos, causalAllowed(mask), layer, finalNorm)), target)
		return []*graph.Node{lp, ent}
	}
	outs, err := m.call(layerKey("layer_logprobs", layer, finalNorm), fn, bt.ids, bt.pos, bt.mask, bt.target)
	if err != nil {
		return nil, nil, err
	}
	lp, ent, err := copy2(outs)
	if err != nil {
		return nil, nil, err
	}
	return unpadPairs(lp, bt), unpadPairs(ent, bt), nil
}

// AccumulateLayer is Accumulate for the surrogate Σ coefLogp·logp_l of the internal policy of layer:
// only layers 0..layer, the embeddings and the LM head (and the final norm when it is applied)
// receive gradient; the others get zero.
func (tr *Trainer) AccumulateLayer(ids, mask [][]int32, coefLogp [][]float32, layer int, finalNorm bool) (logp [][]float32, err error) {
	defer recoverErr(&err, "model AccumulateLayer")
	m := tr.m
	if err := m.checkLayer(layer); err != nil {
		return nil, fmt.Errorf("model AccumulateLayer: %w", err)
	}
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, fmt.Errorf("model AccumulateLayer: %w", err)
	}
	cl, err := padCoef("coefLogp", coefLogp, bt)
	if err != nil {
		return nil, fmt.Errorf("model AccumulateLayer: %w", err)
	}
	extra, err := tr.takeAcc()
	if err != nil {
		return nil, err
	}
	withAcc := extra != nil
	extra = append(extra, bt.ids, bt.pos, bt.mask, bt.target, cl)
	fn := func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
		np := len(n.trainable())
		var acc []*graph.Node
		if withAcc {
			acc, in = in[:np], in[np:]
		}
		ids, pos, mask, target, coef := in[0], in[1], in[2], in[3], in[4]
		lp, _ := tokenStats(n.logits(n.forwardTo(ids, pos, causalAllowed(mask), layer, finalNorm)), target)
		loss := graph.ReduceAllSum(graph.Mul(coef, lp))
		return addGrads([]*graph.Node{lp}, acc, graph.Gradient(loss, n.trainable()...))
	}
	outs, err := m.callV(layerKey(fmt.Sprintf("layer_acc%v", withAcc), layer, finalNorm), m.variant(tr.remat), fn, extra...)
	if err != nil {
		return nil, err
	}
	tr.acc = outs[1:]
	defer finalize(outs[:1])
	flat, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, err
	}
	return unpadPairs(flat, bt), nil
}
