package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Decoder generates with a key/value cache for a batch of prompts of different lengths.
//
// The cache is a fixed-size tensor per layer, [batch, kv heads, capacity, head dim]. Prefill
// left-pads the prompts to a common (bucketed) length P and fills slots [0, P); step s writes slot
// P+s of every row with a scatter (no DynamicUpdateSlice, which the pure-Go backend lacks).
// Each row keeps its own RoPE position, so rows of different lengths decode exactly as they would
// alone. One decode graph is compiled per (batch, capacity); one prefill graph per prompt bucket.
type Decoder struct {
	m        *Model
	batch    int
	capacity int

	rows   int               // rows in use since the last Prefill
	caches []*tensors.Tensor // k, v per layer
	valid  []int32           // [batch, capacity]: 1 where a slot holds a real token
	pos    []int32           // next RoPE position per row
	slot   int               // next cache slot to write
}

// NewDecoder prepares a decoder for up to batch rows of at most maxLen tokens each (prompt plus
// generated tokens).
func (m *Model) NewDecoder(batch, maxLen int) (*Decoder, error) {
	if batch <= 0 || maxLen <= 0 {
		return nil, fmt.Errorf("model NewDecoder: batch (%d) and maxLen (%d) must be positive", batch, maxLen)
	}
	capacity := m.Compute().decodeCapacity(maxLen)
	if err := m.checkDecodeSize(batch, maxLen, capacity); err != nil { // memory.go: context and memory bounds
		return nil, err
	}
	return &Decoder{m: m, batch: batch, capacity: capacity}, nil
}

// Capacity is the number of cache slots (prompt bucket plus decode steps must fit).
func (d *Decoder) Capacity() int { return d.capacity }

// prefillGraph: inputs after the weights are ids [B, P], pos [B, P], valid [B, C] (prompt mask
// padded with zeros to the capacity). Outputs: logits of the last position [B, V], then k, v per
// layer [B, C, KVH, hd].
func prefillGraph(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	ids, pos, valid := in[0], in[1], in[2]
	b, p := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	c := valid.Shape().Dimensions[1]
	mask := graph.Slice(valid, graph.AxisRange(), graph.AxisRange(0, p))
	h, ks, vs := n.forward(ids, pos, causalAllowed(mask))
	last := graph.Reshape(graph.Slice(h, graph.AxisRange(), graph.AxisElem(p-1)), b, n.cfg.HiddenSize)
	out := []*graph.Node{n.logits(last)}
	for i := range ks {
		for _, x := range []*graph.Node{ks[i], vs[i]} {
			x = graph.TransposeAllAxes(x, 0, 2, 1, 3) // head-major: [B, KVH, P, hd]
			if c > p {
				zeros := graph.Zeros(g, shapes.Make(dtypes.Float32, b, n.cfg.NumKVHeads, c-p, n.cfg.HeadDim))
				x = graph.Concatenate([]*graph.Node{x, zeros}, 2)
			}
			out = append(out, x)
		}
	}
	return out
}

// decodeStepGraph: inputs after the weights are the caches (k, v per layer, head-major
// [B, KVH, C, hd]), valid [B, C] (including the slot being written), tokens [B], pos [B], slot
// (a scalar for Decoder, one cache index per row [B] for Slots). Outputs: logits [B, V], new caches.
//
// The new key/value is added into its slot with ScatterSum: the slot still holds the zeros of
// Prefill, so the sum is a write, and with the cache buffers donated the pure-Go backend updates
// them in place (O(B·KVH·hd) per step instead of rewriting the cache).
func decodeStepGraph(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	nl := len(n.lay.layers)
	caches := in[:2*nl]
	valid, tokens, pos, slot := in[2*nl], in[2*nl+1], in[2*nl+2], in[2*nl+3]
	c := n.cfg
	b := valid.Shape().Dimensions[0]
	rows := shapes.Make(dtypes.Int32, b, c.NumKVHeads, 1)
	var keep *graph.Node  // Slots: rows not stepped (pos < 0) add zeros, leaving their cache as it is
	if slot.Rank() == 1 { // Slots: one cache index per row
		slot = graph.Reshape(slot, b, 1, 1)
		keep = graph.ConvertDType(graph.GreaterOrEqual(pos, graph.ScalarZero(g, dtypes.Int32)), dtypes.Float32)
		keep = graph.BroadcastToDims(graph.Reshape(keep, b, 1, 1), b, c.NumKVHeads, c.HeadDim)
		keep = graph.Reshape(keep, b*c.NumKVHeads, c.HeadDim)
	}
	where := graph.Concatenate([]*graph.Node{ // (b, h, slot) for every row and KV head
		graph.Iota(g, rows, 0), graph.Iota(g, rows, 1), graph.BroadcastToDims(slot, rows.Dimensions...),
	}, 2)
	where = graph.Reshape(where, b*c.NumKVHeads, 3)
	allowed := graph.NotEqual(valid, graph.ScalarZero(g, dtypes.Int32))

	cos, sin := n.ropeCosSin(graph.Reshape(pos, b, 1))
	h := n.embed(graph.Reshape(tokens, b, 1))
	out := []*graph.Node{nil}
	for i, li := range n.lay.layers {
		x := rmsNorm(h, n.p[li.inNorm], c.RMSNormEps)
		q, k, v := n.qkv(i, li, x, cos, sin)
		ku, vu := graph.Reshape(k, b*c.NumKVHeads, c.HeadDim), graph.Reshape(v, b*c.NumKVHeads, c.HeadDim)
		if keep != nil {
			ku, vu = graph.Mul(ku, keep), graph.Mul(vu, keep)
		}
		kc := graph.ScatterSum(caches[2*i], where, ku, true, true)
		vc := graph.ScatterSum(caches[2*i+1], where, vu, true, true)
		out = append(out, kc, vc)
		h = graph.Add(h, n.proj(i, modO, n.attendCache(q, kc, vc, allowed), n.p[li.o], n.opt(li.ob)))
		h = graph.Add(h, n.mlp(i, li, rmsNorm(h, n.p[li.postNorm], c.RMSNormEps)))
	}
	h = rmsNorm(h, n.p[n.lay.norm], c.RMSNormEps)
	out[0] = n.logits(graph.Reshape(h, b, c.HiddenSize))
	return out
}

// attendCache is attend for one query per row: q [B, 1, H, hd] over head-major caches
// [B, KVH, C, hd] with allowed [B, C]. Both products run in the matmul's native layouts.
func (n *net) attendCache(q, kc, vc, allowed *graph.Node) *graph.Node {
	c := n.cfg
	g := q.Graph()
	b, capacity := kc.Shape().Dimensions[0], kc.Shape().Dimensions[2]
	groups := c.NumHeads / c.NumKVHeads
	q = graph.MulScalar(graph.Reshape(q, b, c.NumKVHeads, groups, c.HeadDim), 1/math.Sqrt(float64(c.HeadDim)))
	scores := graph.DotGeneral(q, []int{3}, []int{0, 1}, kc, []int{3}, []int{0, 1}) // [B, KVH, G, C]
	mask := graph.BroadcastToDims(graph.Reshape(allowed, b, 1, 1, capacity), b, c.NumKVHeads, groups, capacity)
	scores = graph.Where(mask, scores, graph.Scalar(g, dtypes.Float32, -1e30))
	probs := graph.Softmax(scores, -1)
	out := graph.DotGeneral(probs, []int{3}, []int{0, 1}, vc, []int{2}, []int{0, 1}) // [B, KVH, G, hd]
	return graph.Reshape(out, b, 1, c.NumHeads*c.HeadDim)
}

// Prefill starts a new batch: it runs the prompts (1 ≤ len(prompts) ≤ batch, each non-empty) and
// returns the next-token logits of each row [len(prompts)][V].
func (d *Decoder) Prefill(prompts [][]int32) (logits [][]float32, err error) {
	defer recoverErr(&err, "model Prefill")
	if len(prompts) == 0 || len(prompts) > d.batch {
		return nil, fmt.Errorf("model Prefill: %d prompts for a decoder of batch %d", len(prompts), d.batch)
	}
	longest := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("model Prefill: prompt %d is empty", i)
		}
		longest = max(longest, len(p))
	}
	pb := d.m.Compute().bucketLen(longest)
	if pb >= d.capacity {
		return nil, fmt.Errorf("model Prefill: prompt of %d tokens does not fit a decoder of %d cache slots", longest, d.capacity)
	}
	vocab := int32(d.m.cfg.VocabSize)
	ids, pos := make([]int32, d.batch*pb), make([]int32, d.batch*pb)
	valid, next := make([]int32, d.batch*d.capacity), make([]int32, d.batch)
	for i := 0; i < d.batch; i++ {
		p := []int32{0} // unused rows decode a dummy token
		if i < len(prompts) {
			p = prompts[i]
		}
		off := pb - len(p)
		for j, id := range p {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("model Prefill: token id %d in prompt %d is outside the vocabulary [0, %d)", id, i, vocab)
			}
			ids[i*pb+off+j] = id
			pos[i*pb+off+j] = int32(j)
			valid[i*d.capacity+off+j] = 1
		}
		next[i] = int32(len(p))
	}
	d.caches = nil // a failed prefill leaves the decoder needing a new Prefill
	outs, err := d.m.call("prefill", prefillGraph,
		tensors.FromFlatDataAndDimensions(ids, d.batch, pb),
		tensors.FromFlatDataAndDimensions(pos, d.batch, pb),
		tensors.FromFlatDataAndDimensions(valid, d.batch, d.capacity))
	if err != nil {
		return nil, err
	}
	d.valid, d.pos, d.rows, d.slot = valid, next, len(prompts), pb
	d.caches = outs[1:]
	return d.rowsOf(outs[0])
}

// Step appends one token per row (len(tokens) = number of prompts) and returns the next-token
// logits [rows][V].
func (d *Decoder) Step(tokens []int32) (logits [][]float32, err error) {
	defer recoverErr(&err, "model decode Step")
	if d.caches == nil {
		return nil, errors.New("model decode Step: call Prefill first")
	}
	if len(tokens) != d.rows {
		return nil, fmt.Errorf("model decode Step: %d tokens for %d rows", len(tokens), d.rows)
	}
	if d.slot >= d.capacity {
		return nil, fmt.Errorf("model decode Step: cache full after %d slots (raise NewDecoder's maxLen)", d.capacity)
	}
	vocab := int32(d.m.cfg.VocabSize)
	tok := make([]int32, d.batch)
	for i, t := range tokens {
		if t < 0 || t >= vocab {
			return nil, fmt.Errorf("model decode Step: token %d of row %d is outside the vocabulary [0, %d)", t, i, vocab)
		}
		tok[i] = t
	}
	for i := 0; i < d.batch; i++ {
		d.valid[i*d.capacity+d.slot] = 1
	}
	args := make([]any, 0, len(d.caches)+4)
	for _, c := range d.caches {
		dc, err := graph.DonateTensorBuffer(c, d.m.g.backend, 0)
		if err != nil {
			return nil, err
		}
		args = append(args, dc)
	}
	d.caches = nil
	args = append(args,
		tensors.FromFlatDataAndDimensions(d.valid, d.batch, d.capacity),
		tensors.FromFlatDataAndDimensions(tok, d.batch),
		tensors.FromFlatDataAndDimensions(append([]int32(nil), d.pos...), d.batch),
		tensors.FromScalar(int32(d.slot)))
	outs, err := d.m.call("decode", decodeStepGraph, args...)
	if err != nil {
		return nil, err
	}
	d.caches = outs[1:]
	d.slot++
	for i := range d.pos {
		d.pos[i]++
	}
	return d.rowsOf(outs[0])
}

// rowsOf copies [batch, V] logits to the host, keeping the rows in use.
func (d *Decoder) rowsOf(t *tensors.Tensor) ([][]float32, error) {
	defer finalize([]*tensors.Tensor{t})
	flat, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, err
	}
	v := d.m.cfg.VocabSize
	out := make([][]float32, d.rows)
	for i := range out {
		out[i] = flat[i*v : (i+1)*v : (i+1)*v]
	}
	return out, nil
}
