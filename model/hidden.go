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
