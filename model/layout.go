package model

import "fmt"

// layout is the ordered list of a config's parameters with their Hugging Face names. Graph
// functions receive the weights as their first len(names) inputs in this order.
type layout struct {
	names  []string
	shapes [][]int
	embed  int // model.embed_tokens.weight
	norm   int // model.norm.weight
	head   int // lm_head.weight, or embed when tied
	layers []layerIdx
}

// layerIdx holds the parameter indices of one decoder layer; -1 marks an absent tensor.
type layerIdx struct {
	inNorm, q, qb, k, kb, v, vb, o, ob, qNorm, kNorm, postNorm, gate, up, down int
}

func newLayout(c Config) *layout {
	l := &layout{}
	add := func(name string, shape ...int) int {
		l.names = append(l.names, name)
		l.shapes = append(l.shapes, shape)
		return len(l.names) - 1
	}
	opt := func(ok bool, name string, shape ...int) int {
		if !ok {
			return -1
		}
		return add(name, shape...)
	}
	d, q, kv := c.HiddenSize, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	l.embed = add("model.embed_tokens.weight", c.VocabSize, d)
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		var li layerIdx
		li.inNorm = add(p+"input_layernorm.weight", d)
		li.q = add(p+"self_attn.q_proj.weight", q, d)
		li.qb = opt(c.AttentionBias, p+"self_attn.q_proj.bias", q)
		li.k = add(p+"self_attn.k_proj.weight", kv, d)
		li.kb = opt(c.AttentionBias, p+"self_attn.k_proj.bias", kv)
		li.v = add(p+"self_attn.v_proj.weight", kv, d)
		li.vb = opt(c.AttentionBias, p+"self_attn.v_proj.bias", kv)
		li.o = add(p+"self_attn.o_proj.weight", d, q)
		li.ob = opt(c.OutputBias, p+"self_attn.o_proj.bias", d)
		li.qNorm = opt(c.ModelType == "qwen3", p+"self_attn.q_norm.weight", c.HeadDim)
		li.kNorm = opt(c.ModelType == "qwen3", p+"self_attn.k_norm.weight", c.HeadDim)
		li.postNorm = add(p+"post_attention_layernorm.weight", d)
		li.gate = add(p+"mlp.gate_proj.weight", c.IntermediateSize, d)
		li.up = add(p+"mlp.up_proj.weight", c.IntermediateSize, d)
		li.down = add(p+"mlp.down_proj.weight", d, c.IntermediateSize)
		l.layers = append(l.layers, li)
	}
	l.norm = add("model.norm.weight", d)
	l.head = l.embed
	if !c.TieWordEmbeddings {
		l.head = add("lm_head.weight", c.VocabSize, d)
	}
	return l
}

// isNormOrBias reports parameters that are excluded from weight decay (all rank-1 tensors:
// RMSNorm scales and biases).
func (l *layout) isNormOrBias(i int) bool { return len(l.shapes[i]) == 1 }

func (l *layout) index(name string) int {
	for i, n := range l.names {
		if n == name {
			return i
		}
	}
	return -1
}
