package model

import (
	"fmt"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

func logitsHiddenGraph(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
	ids, pos, mask := in[0], in[1], in[2]
	h, _, _ := n.forward(ids, pos, causalAllowed(mask))
	return []*graph.Node{n.logits(h), h}
}

// LogitsHidden returns the raw logits [B][T][V] and the final-normed hidden states [B][T][D] (the
// LM head's input) of a padded batch in one forward pass: what heads trained on a frozen model's
// features need (SpecDec++'s acceptance head on the draft model). Rows of padded positions are not
// meaningful.
func (m *Model) LogitsHidden(ids, mask [][]int32) (logits, hidden [][][]float32, err error) {
	defer recoverErr(&err, "model LogitsHidden")
	bt, err := m.makeBatch(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("model LogitsHidden: %w", err)
	}
	outs, err := m.call("logits_hidden", logitsHiddenGraph, bt.ids, bt.pos, bt.mask)
	if err != nil {
		return nil, nil, err
	}
	defer finalize(outs)
	lf, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, nil, err
	}
	hf, err := tensors.CopyFlatData[float32](outs[1])
	if err != nil {
		return nil, nil, err
	}
	return rows3(lf, bt, m.cfg.VocabSize), rows3(hf, bt, m.cfg.HiddenSize), nil
}

// rows3 slices a flat [bb, tb, w] output into [b][t][w] views.
func rows3(flat []float32, bt *batch, w int) [][][]float32 {
	out := make([][][]float32, bt.b)
	for i := range out {
		out[i] = make([][]float32, bt.t)
		for j := range out[i] {
			k := (i*bt.tb + j) * w
			out[i][j] = flat[k : k+w : k+w]
		}
	}
	return out
}

// layerHiddenGraph runs the first `layer` decoder blocks and returns their output (the residual
// stream, not normed) [B, T, D].
func layerHiddenGraph(layer int) func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	return func(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
		ids, pos, mask := in[0], in[1], in[2]
		h, _, _ := n.decoder(ids, pos, causalAllowed(mask), layer)
		return []*graph.Node{h}
	}
}

// HiddenAt returns the residual stream after the first `layer` decoder blocks, [B][T][D]
// (layer 0 = the embeddings, NumLayers = the last block's output before the final norm): the
// frozen intermediate-layer features that value heads (Digi-Q) are trained on.
func (m *Model) HiddenAt(ids, mask [][]int32, layer int) (hidden [][][]float32, err error) {
	defer recoverErr(&err, "model HiddenAt")
	if layer < 0 || layer > m.cfg.NumLayers {
		return nil, fmt.Errorf("model HiddenAt: layer %d, want 0..%d", layer, m.cfg.NumLayers)
	}
	bt, err := m.makeBatch(ids, mask)
	if err != nil {
		return nil, fmt.Errorf("model HiddenAt: %w", err)
	}
	outs, err := m.call(fmt.Sprintf("hidden_at_%d", layer), layerHiddenGraph(layer), bt.ids, bt.pos, bt.mask)
	if err != nil {
		return nil, err
	}
	defer finalize(outs)
	hf, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, err
	}
	return rows3(hf, bt, m.cfg.HiddenSize), nil
}
