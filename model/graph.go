package model

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph code reads best unqualified
)

// net builds the transformer's computations inside one graph. p holds the weights in layout order.
type net struct {
	cfg Config
	lay *layout
	p   []*Node

	// LoRA (lora.go): the adapter's A and B matrices in al's order, and, while training with
	// dropout, the state of the seeded random generator (nil otherwise).
	al  *loraLayout
	a   []*Node
	rng *Node
	// remat recomputes each layer's forward in the backward pass instead of keeping its
	// activations (activation checkpointing).
	remat bool
	// co: bf16 matmuls and fused attention (compute.go)
	co ComputeOptions
}

// linear computes x·Wᵀ (+b) for a Hugging Face [out, in] weight; x is [..., in].
func linear(x, w *Node, b *Node) *Node {
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

func (n *net) opt(i int) *Node {
	if i < 0 {
		return nil
	}
	return n.p[i]
}

// rmsNorm normalises over the last axis as transformers' LlamaRMSNorm does (in float32).
func rmsNorm(x, w *Node, eps float64) *Node {
	ms := ReduceAndKeep(Square(x), ReduceMean, -1)
	return Mul(Div(x, Sqrt(AddScalar(ms, eps))), ExpandLeftToRank(w, x.Rank()))
}

// ropeCosSin returns cos and sin of position×inv_freq, shaped [B, T, 1, HeadDim/2] to broadcast
// over heads. pos is [B, T] int32.
func (n *net) ropeCosSin(pos *Node) (cos, sin *Node) {
	g := pos.Graph()
	inv64 := n.cfg.InvFreq()
	inv := make([]float32, len(inv64))
	for i, v := range inv64 {
		inv[i] = float32(v)
	}
	b, t := pos.Shape().Dimensions[0], pos.Shape().Dimensions[1]
	angles := Mul(Reshape(ConvertDType(pos, dtypes.Float32), b, t, 1, 1), Reshape(Const(g, inv), 1, 1, 1, len(inv)))
	return Cos(angles), Sin(angles)
}

// rope rotates x [B, T, heads, HeadDim] with transformers' rotate_half convention.
func rope(x, cos, sin *Node) *Node {
	half := x.Shape().Dimensions[3] / 2
	x1 := SliceAxis(x, 3, AxisRange(0, half))
	x2 := SliceAxis(x, 3, AxisRange(half))
	return Concatenate([]*Node{
		Sub(Mul(x1, cos), Mul(x2, sin)),
		Add(Mul(x2, cos), Mul(x1, sin)),
	}, 3)
}

// qkv projects x [B, T, D] to rotated queries [B, T, H, hd] and keys/values [B, T, KVH, hd].
func (n *net) qkv(l int, li layerIdx, x, cos, sin *Node) (q, k, v *Node) {
	c := n.cfg
	b, t := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	q = Reshape(n.proj(l, modQ, x, n.p[li.q], n.opt(li.qb)), b, t, c.NumHeads, c.HeadDim)
	k = Reshape(n.proj(l, modK, x, n.p[li.k], n.opt(li.kb)), b, t, c.NumKVHeads, c.HeadDim)
	v = Reshape(n.proj(l, modV, x, n.p[li.v], n.opt(li.vb)), b, t, c.NumKVHeads, c.HeadDim)
	if li.qNorm >= 0 { // qwen3: RMSNorm of each head before RoPE
		q = rmsNorm(q, n.p[li.qNorm], c.RMSNormEps)
		k = rmsNorm(k, n.p[li.kNorm], c.RMSNormEps)
	}
	return rope(q, cos, sin), rope(k, cos, sin), v
}

// attend computes grouped-query attention of q [B, Tq, H, hd] over k, v [B, Tk, KVH, hd];
// allowed [B, Tq, Tk] says which keys each query may see. Returns [B, Tq, H*hd].
func (n *net) attend(q, k, v, allowed *Node) *Node {
	if n.co.Flash {
		return n.attendFlash(q, k, v, allowed)
	}
	c := n.cfg
	g := q.Graph()
	b, tq, tk := q.Shape().Dimensions[0], q.Shape().Dimensions[1], k.Shape().Dimensions[1]
	groups := c.NumHeads / c.NumKVHeads
	q = MulScalar(Reshape(q, b, tq, c.NumKVHeads, groups, c.HeadDim), 1/math.Sqrt(float64(c.HeadDim)))
	scores := f32(DotGeneral(n.mm(q), []int{4}, []int{0, 2}, n.mm(k), []int{3}, []int{0, 2})) // [B, KVH, Tq, G, Tk]
	mask := BroadcastToDims(Reshape(allowed, b, 1, tq, 1, tk), b, c.NumKVHeads, tq, groups, tk)
	scores = Where(mask, scores, Scalar(g, dtypes.Float32, -1e30))
	probs := Softmax(scores, -1)
	out := f32(DotGeneral(n.mm(probs), []int{4}, []int{0, 1}, n.mm(v), []int{1}, []int{0, 2})) // [B, KVH, Tq, G, hd]
	out = TransposeAllAxes(out, 0, 2, 1, 3, 4)
	return Reshape(out, b, tq, c.NumHeads*c.HeadDim)
}

// mlp is SwiGLU: down(silu(gate(x)) * up(x)).
func (n *net) mlp(l int, li layerIdx, x *Node) *Node {
	gate := n.proj(l, modGate, x, n.p[li.gate], nil)
	up := n.proj(l, modUp, x, n.p[li.up], nil)
	return n.proj(l, modDown, Mul(Mul(gate, Sigmoid(gate)), up), n.p[li.down], nil)
}

// embed looks up token embeddings: ids [B, T] int32 → [B, T, D].
func (n *net) embed(ids *Node) *Node {
	return Gather(n.p[n.lay.embed], InsertAxes(ids, -1))
}

// causalAllowed builds the [B, T, T] visibility of a padded batch: key j is visible from query i
// when j ≤ i and mask[b, j] is set.
func causalAllowed(mask *Node) *Node {
	g := mask.Graph()
	b, t := mask.Shape().Dimensions[0], mask.Shape().Dimensions[1]
	shape := shapes.Make(dtypes.Int32, b, t, t)
	causal := GreaterOrEqual(Iota(g, shape, 1), Iota(g, shape, 2))
	keys := BroadcastToDims(Reshape(NotEqual(mask, ScalarZero(g, mask.DType())), b, 1, t), b, t, t)
	return LogicalAnd(causal, keys)
}

// forward runs the decoder over ids [B, T] with positions pos [B, T] and visibility allowed
// [B, T, T]. It returns the final-normed hidden states [B, T, D] and each layer's keys and values
// ([B, T, KVH, hd], after RoPE) for the KV cache.
func (n *net) forward(ids, pos, allowed *Node) (h *Node, ks, vs []*Node) {
	h, ks, vs = n.decoder(ids, pos, allowed, len(n.lay.layers))
	return rmsNorm(h, n.p[n.lay.norm], n.cfg.RMSNormEps), ks, vs
}

// decoder runs the first `layers` decoder layers and returns the residual stream after them (before
// the final norm) and each layer's keys and values.
func (n *net) decoder(ids, pos, allowed *Node, layers int) (h *Node, ks, vs []*Node) {
	cos, sin := n.ropeCosSin(pos)
	h = n.embed(ids)
	for l, li := range n.lay.layers[:layers] {
		if n.remat {
			h = h.Checkpoint()
		}
		x := rmsNorm(h, n.p[li.inNorm], n.cfg.RMSNormEps)
		q, k, v := n.qkv(l, li, x, cos, sin)
		ks, vs = append(ks, k), append(vs, v)
		h = Add(h, n.proj(l, modO, n.attend(q, k, v, allowed), n.p[li.o], n.opt(li.ob)))
		h = Add(h, n.mlp(l, li, rmsNorm(h, n.p[li.postNorm], n.cfg.RMSNormEps)))
	}
	if n.remat {
		h = h.StopCheckpoint()
	}
	return h, ks, vs
}

// logits projects hidden states [..., D] to the vocabulary [..., V].
func (n *net) logits(h *Node) *Node { return n.linear(h, n.p[n.lay.head], nil) }

// tokenStats returns, for logits [B, T, V] and targets [B, T] int32, the log-probability of each
// target and the entropy of each next-token distribution, both [B, T], without materialising
// log-probabilities beyond the logits themselves.
func tokenStats(logits, targets *Node) (logp, entropy *Node) {
	g := logits.Graph()
	mx := StopGradient(ReduceAndKeep(logits, ReduceMax, -1))
	shifted := Sub(logits, mx)
	e := Exp(shifted)
	z := ReduceSum(e, -1)
	lse := Log(z) // log-sum-exp of the shifted logits, [B, T]
	vocab := Iota(g, shapeOf(logits, dtypes.Int32), 2)
	hit := Equal(vocab, BroadcastToDims(InsertAxes(targets, -1), logits.Shape().Dimensions...))
	target := ReduceSum(Where(hit, shifted, ScalarZero(g, dtypes.Float32)), -1)
	logp = Sub(target, lse)
	// H = lse − Σ p·shifted, with p = e/z.
	entropy = Sub(lse, Div(ReduceSum(Mul(e, shifted), -1), z))
	return logp, entropy
}

// shapeOf is x's shape with another dtype.
func shapeOf(x *Node, dt dtypes.DType) shapes.Shape {
	return shapes.Make(dt, x.Shape().Dimensions...)
}
