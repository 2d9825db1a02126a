package model

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Slots is a KV-cache decoder for continuous batching: a fixed number of slots (cache rows) that
// sequences enter and leave independently. Insert prefills new prompts and places their caches in
// free slots while the other slots keep their state; Step decodes one token for any subset of the
// slots, each at its own cache position and RoPE position. A finished sequence simply stops being
// stepped; its slot is overwritten whole by the next Insert into it.
//
// The per-row write position is what Decoder lacks (it writes one cache index for the whole
// batch). Graphs compiled: one decode step per (slots, capacity), one prefill per (group, prompt
// bucket, capacity), one insertion per (slots, capacity, group).
type Slots struct {
	m        *Model
	batch    int
	capacity int

	caches []*tensors.Tensor // k, v per layer, head-major [batch, KVH, capacity, hd]; nil before the first Insert
	valid  []int32           // [batch, capacity]: 1 where a slot's cache index holds a real token
	pos    []int32           // next RoPE position per slot
	next   []int32           // next cache index to write per slot
}

// NewSlots prepares a decoder of batch slots of capacity cache positions each (see Need).
func (m *Model) NewSlots(batch, capacity int) (*Slots, error) {
	if batch <= 0 || capacity <= 0 {
		return nil, fmt.Errorf("model NewSlots: batch (%d) and capacity (%d) must be positive", batch, capacity)
	}
	if err := m.checkSlotsSize(batch, capacity); err != nil {
		return nil, err
	}
	return &Slots{m: m, batch: batch, capacity: capacity,
		valid: make([]int32, batch*capacity), pos: make([]int32, batch), next: make([]int32, batch)}, nil
}

func (m *Model) checkSlotsSize(batch, capacity int) error {
	need := m.cfg.decodeBytes(batch, capacity)
	if avail, from, ok := memoryAvailable(); ok && need > 0.8*float64(avail) {
		return tooLarge("model NewSlots: %d slots × %d positions need about %s (KV cache and sampler state), more than the %s available (%s); lower the batch or the new-token limit",
			batch, capacity, gib(need), gib(float64(avail)), from)
	}
	return nil
}

// SlotsNeed is the cache capacity a group of prompts (the longest of longestPrompt tokens) inserted
// together needs to then decode maxNew tokens: prompts are left-padded to a bucketed length.
func SlotsNeed(longestPrompt, maxNew int) int { return bucketLen(longestPrompt) + maxNew }

// SlotsCapacity rounds a capacity up to a power of two (at least 16) so that few decode,
// insertion and resize graphs are compiled as requests of every length come and go.
func SlotsCapacity(need int) int {
	c := 16
	for c < need {
		c *= 2
	}
	return c
}

// Slots is the number of slots; Capacity the cache positions of each.
func (d *Slots) Slots() int    { return d.batch }
func (d *Slots) Capacity() int { return d.capacity }

// Model is the model the decoder runs.
func (d *Slots) Model() *Model { return d.m }

// Resize grows the decoder to batch slots of capacity positions, keeping every slot's state.
func (d *Slots) Resize(batch, capacity int) (err error) {
	defer recoverErr(&err, "model Slots Resize")
	if batch < d.batch || capacity < d.capacity {
		return fmt.Errorf("model Slots Resize: %d×%d to %d×%d: slots only grow", d.batch, d.capacity, batch, capacity)
	}
	if batch == d.batch && capacity == d.capacity {
		return nil
	}
	if err := d.m.checkSlotsSize(batch, capacity); err != nil {
		return err
	}
	valid := make([]int32, batch*capacity)
	for i := 0; i < d.batch; i++ {
		copy(valid[i*capacity:], d.valid[i*d.capacity:(i+1)*d.capacity])
	}
	pos, next := make([]int32, batch), make([]int32, batch)
	copy(pos, d.pos)
	copy(next, d.next)
	if d.caches != nil {
		nb, nc := batch, capacity
		outs, err := d.m.call(fmt.Sprintf("slotresize/%dx%d", nb, nc), func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
			out := make([]*graph.Node, len(in))
			for i, x := range in {
				dims := x.Shape().Dimensions // [B, KVH, C, hd]
				if nc > dims[2] {
					z := graph.Zeros(g, shapes.Make(dtypes.Float32, dims[0], dims[1], nc-dims[2], dims[3]))
					x = graph.Concatenate([]*graph.Node{x, z}, 2)
				}
				if nb > dims[0] {
					z := graph.Zeros(g, shapes.Make(dtypes.Float32, nb-dims[0], dims[1], nc, dims[3]))
					x = graph.Concatenate([]*graph.Node{x, z}, 0)
				}
				out[i] = x
			}
			return out
		}, d.donated()...)
		if err != nil {
			d.reset()
			return err
		}
		d.caches = outs
	}
	d.batch, d.capacity, d.valid, d.pos, d.next = batch, capacity, valid, pos, next
	return nil
}

// donated hands the caches to the next graph call (the pure-Go backend then updates them in place).
func (d *Slots) donated() []any {
	args := make([]any, 0, len(d.caches))
	for _, c := range d.caches {
		dc, err := graph.DonateTensorBuffer(c, d.m.g.backend, 0)
		if err != nil {
			panic(err)
		}
		args = append(args, dc)
	}
	d.caches = nil
	return args
}

// Insert prefills prompts into the given free slots (distinct, in [0, Slots())) and returns each
// new row's next-token logits [len(prompts)][V]. The other slots keep their state. A failed call
// leaves every slot empty (the caller must start its rows again).
func (d *Slots) Insert(slots []int, prompts [][]int32) (logits [][]float32, err error) {
	defer recoverErr(&err, "model Slots Insert")
	k := len(prompts)
	if k == 0 || k != len(slots) || k > d.batch {
		return nil, fmt.Errorf("model Slots Insert: %d prompts for %d slots of a decoder of %d", k, len(slots), d.batch)
	}
	longest := 0
	seen := make(map[int]bool, k)
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("model Slots Insert: prompt %d is empty", i)
		}
		if s := slots[i]; s < 0 || s >= d.batch || seen[s] {
			return nil, fmt.Errorf("model Slots Insert: slot %d is outside [0, %d) or repeated", s, d.batch)
		}
		seen[slots[i]] = true
		longest = max(longest, len(p))
	}
	pb := bucketLen(longest)
	if pb >= d.capacity {
		return nil, fmt.Errorf("model Slots Insert: prompt of %d tokens does not fit %d cache positions", longest, d.capacity)
	}
	// A fresh decoder filled in order prefills straight into its caches; otherwise the group is
	// prefilled as a batch of a power of two and inserted.
	fresh := d.caches == nil
	group := d.batch
	if !fresh {
		group = 1
		for group < k {
			group *= 2
		}
	} else {
		for i, s := range slots {
			if s != i {
				fresh = false
			}
		}
		if !fresh {
			return nil, fmt.Errorf("model Slots Insert: the first insertion must fill slots 0..%d in order", k-1)
		}
	}
	vocab := int32(d.m.cfg.VocabSize)
	c := d.capacity
	ids, pos := make([]int32, group*pb), make([]int32, group*pb)
	valid := make([]int32, group*c)
	for i := 0; i < group; i++ {
		p := []int32{0} // unused rows prefill a dummy token
		if i < k {
			p = prompts[i]
		}
		off := pb - len(p)
		for j, id := range p {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("model Slots Insert: token id %d in prompt %d is outside the vocabulary [0, %d)", id, i, vocab)
			}
			ids[i*pb+off+j] = id
			pos[i*pb+off+j] = int32(j)
			valid[i*c+off+j] = 1
		}
	}
	outs, err := d.m.call("prefill", prefillGraph,
		tensors.FromFlatDataAndDimensions(ids, group, pb),
		tensors.FromFlatDataAndDimensions(pos, group, pb),
		tensors.FromFlatDataAndDimensions(valid, group, c))
	if err != nil {
		d.reset()
		return nil, err
	}
	if fresh {
		d.caches = outs[1:]
	} else {
		idx, use := make([]int32, group), make([]float32, group)
		for i, s := range slots {
			idx[i], use[i] = int32(s), 1
		}
		args := append(d.donated(), toAny(outs[1:])...)
		args = append(args, tensors.FromFlatDataAndDimensions(idx, group, 1), tensors.FromFlatDataAndDimensions(use, group))
		ins, err := d.m.call("slotinsert", slotInsertGraph, args...)
		finalize(outs[1:])
		if err != nil {
			finalize(outs[:1])
			d.reset()
			return nil, err
		}
		d.caches = ins
	}
	for i, s := range slots {
		copy(d.valid[s*c:(s+1)*c], valid[i*c:(i+1)*c])
		d.pos[s] = int32(len(prompts[i]))
		d.next[s] = int32(pb)
	}
	return d.logitsOf(outs[0], seq(k))
}

func toAny(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

func seq(k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = i
	}
	return out
}

// reset empties every slot after a failure.
func (d *Slots) reset() {
	finalize(d.caches)
	d.caches = nil
	clear(d.valid)
	clear(d.pos)
	clear(d.next)
}

// slotInsertGraph: inputs after the weights are the caches (k, v per layer [B, KVH, C, hd]), the
// group's prefilled caches ([G, KVH, C, hd] each), idx [G, 1] (the slot each group row goes to)
// and use [G] (1 for a real row, 0 for padding). Outputs: the new caches.
//
// Two scatters touch only the G target rows (a Where over the whole cache costs a pass over every
// slot per admission): the first adds −old, which clears a row exactly (x + (−x) = 0), the second
// adds the new row (0 + y = y). Padding rows add zeros to slot 0, which leaves it unchanged.
func slotInsertGraph(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	nc := 2 * len(n.lay.layers)
	caches, group := in[:nc], in[nc:2*nc]
	idx, use := in[2*nc], in[2*nc+1]
	out := make([]*graph.Node, nc)
	for i, c := range caches {
		dims := group[i].Shape().Dimensions
		w := graph.BroadcastToDims(graph.Reshape(use, dims[0], 1, 1, 1), dims...)
		old := graph.Mul(graph.Neg(graph.Gather(c, idx)), w)
		c = graph.ScatterSum(c, idx, old, false, false)
		out[i] = graph.ScatterSum(c, idx, graph.Mul(group[i], w), false, false)
	}
	return out
}

// Step decodes one token for each listed slot (tokens[i] goes to slots[i]) and returns their
// next-token logits [len(slots)][V]. Slots not listed are left as they are.
func (d *Slots) Step(slots []int, tokens []int32) (logits [][]float32, err error) {
	defer recoverErr(&err, "model Slots Step")
	if d.caches == nil {
		return nil, fmt.Errorf("model Slots Step: nothing inserted")
	}
	if len(slots) != len(tokens) || len(slots) == 0 {
		return nil, fmt.Errorf("model Slots Step: %d tokens for %d slots", len(tokens), len(slots))
	}
	vocab := int32(d.m.cfg.VocabSize)
	c := d.capacity
	tok, pos, where := make([]int32, d.batch), make([]int32, d.batch), make([]int32, d.batch)
	for i := range pos {
		pos[i] = -1 // not stepped: the graph adds zeros to its cache
	}
	valid := make([]int32, d.batch*c)
	copy(valid, d.valid)
	for i := 0; i < d.batch; i++ {
		valid[i*c] = 1 // idle slots: any unmasked position (their output is discarded)
	}
	for i, s := range slots {
		if s < 0 || s >= d.batch {
			return nil, fmt.Errorf("model Slots Step: slot %d is outside [0, %d)", s, d.batch)
		}
		if t := tokens[i]; t < 0 || t >= vocab {
			return nil, fmt.Errorf("model Slots Step: token %d of slot %d is outside the vocabulary [0, %d)", t, s, vocab)
		}
		if int(d.next[s]) >= c {
			return nil, fmt.Errorf("model Slots Step: slot %d is full after %d positions", s, c)
		}
		tok[s], pos[s], where[s] = tokens[i], d.pos[s], d.next[s]
		copy(valid[s*c:(s+1)*c], d.valid[s*c:(s+1)*c])
		valid[s*c+int(d.next[s])] = 1
	}
	args := append(d.donated(),
		tensors.FromFlatDataAndDimensions(valid, d.batch, c),
		tensors.FromFlatDataAndDimensions(tok, d.batch),
		tensors.FromFlatDataAndDimensions(pos, d.batch),
		tensors.FromFlatDataAndDimensions(where, d.batch))
	outs, err := d.m.call("slotdecode", decodeStepGraph, args...)
	if err != nil {
		d.reset()
		return nil, err
	}
	d.caches = outs[1:]
	for _, s := range slots {
		d.valid[s*c+int(d.next[s])] = 1
		d.next[s]++
		d.pos[s]++
	}
	return d.logitsOf(outs[0], slots)
}

// logitsOf copies the [rows, V] logits to the host and returns the listed rows.
func (d *Slots) logitsOf(t *tensors.Tensor, rows []int) ([][]float32, error) {
	defer finalize([]*tensors.Tensor{t})
	flat, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, err
	}
	v := d.m.cfg.VocabSize
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = flat[r*v : (r+1)*v : (r+1)*v]
	}
	return out, nil
}
