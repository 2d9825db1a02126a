package model

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph code reads best unqualified
	"github.com/gomlx/gomlx/ml/layers/attention"
)

// ComputeOptions choose how a model's graphs compute; the weights themselves always stay float32
// (the trainer's master weights and AdamW moments are float32 whatever is chosen here).
//
//   - DType "bf16" (or "bfloat16") is autocast as in PyTorch's torch.autocast(dtype=bfloat16): every
//     matmul (projections, LM head, attention products) casts its operands to bfloat16 inside the
//     graph and its result back to float32; norms, RoPE, softmax, log-probs, entropies and the loss
//     stay float32. Gradients flow through the casts, so weight gradients arrive in float32.
//     "f32"/"float32"/"" is full float32 (the default; the right choice on CPU, where bfloat16 is
//     slower).
//   - Flash uses GoMLX's fused scaled-dot-product attention (attention.Core) for the full-sequence
//     passes: the cuDNN flash kernel on the XLA CUDA backend when the inputs are bfloat16 (so with
//     DType bf16), otherwise GoMLX's own fused op or its decomposed form. The padding mask travels
//     as an additive bias [B, heads, T, T] next to the causal flag. The KV-cache decode step keeps
//     the plain attention.
//   - BucketsPerOctave > 0 pads shapes coarsely, for backends where a compilation is expensive (XLA
//     on a GPU: about a minute per graph of a 0.5B model): a sequence length t in (p, 2p] (p a power
//     of two, lengths of at most 16 become 16) is rounded up to a multiple of p/BucketsPerOctave, and
//     so is a batch size (from 1). 1 gives powers of two (at most 2× padding), 4 at most 25% padding
//     with 4 graphs per doubling of the length. 0 (the default) keeps the CPU's fine buckets
//     (docs/model.md), where compiling costs a fraction of a second and padding costs compute.
type ComputeOptions struct {
	DType            string `json:"dtype" yaml:"dtype"`
	Flash            bool   `json:"flash" yaml:"flash"`
	BucketsPerOctave int    `json:"buckets_per_octave" yaml:"buckets_per_octave"`
}

// coarseStep is the padding granularity at size t under BucketsPerOctave n with smallest bucket lo.
func coarseStep(t, n, lo int) int {
	if t <= lo {
		return lo
	}
	p := 1
	for p*2 < t {
		p *= 2
	}
	return max(1, p/n)
}

func roundUp(t, step int) int { return (t + step - 1) / step * step }

// bucketLen is the padded sequence length of t tokens under these options.
func (o ComputeOptions) bucketLen(t int) int {
	if o.BucketsPerOctave <= 0 {
		return bucketLen(t)
	}
	return max(16, roundUp(t, coarseStep(t, o.BucketsPerOctave, 16)))
}

// decodeCapacity is the number of KV-cache slots a decoder for rows of at most maxLen tokens needs:
// room for any prompt left-padded to its bucket plus the rest of maxLen, itself bucketed.
func (o ComputeOptions) decodeCapacity(maxLen int) int {
	if o.BucketsPerOctave <= 0 {
		// Left-padding a prompt to its bucket wastes fewer slots than bucketLen's granularity at
		// that length (at most its granularity at maxLen), so a row of maxLen tokens always fits.
		return bucketLen(maxLen + bucketStep(maxLen) - 1)
	}
	need := maxLen
	for p := 1; p <= maxLen; p++ {
		need = max(need, o.bucketLen(p)+maxLen-p)
	}
	return o.bucketLen(need)
}

// bucketBatch is the padded batch size of b rows under these options.
func (o ComputeOptions) bucketBatch(b int) int {
	if o.BucketsPerOctave <= 0 {
		return bucketBatch(b)
	}
	return roundUp(b, coarseStep(b, o.BucketsPerOctave, 1))
}

// bf16 reports whether matmuls run in bfloat16.
func (o ComputeOptions) bf16() bool { return o.DType == "bf16" || o.DType == "bfloat16" }

func (o ComputeOptions) validate() error {
	if o.BucketsPerOctave < 0 || o.BucketsPerOctave > 64 {
		return fmt.Errorf("compute buckets_per_octave %d: want 0 (fine CPU buckets) to 64", o.BucketsPerOctave)
	}
	switch strings.ToLower(o.DType) {
	case "", "f32", "float32", "bf16", "bfloat16":
		return nil
	}
	return fmt.Errorf("compute dtype %q: want float32 or bf16", o.DType)
}

func (o ComputeOptions) key() string {
	k := ""
	if o.bf16() {
		k += "/bf16"
	}
	if o.Flash {
		k += "/flash"
	}
	if o.BucketsPerOctave > 0 {
		k += fmt.Sprintf("/b%d", o.BucketsPerOctave)
	}
	return k
}

// SetCompute chooses how the model's graphs compute (see ComputeOptions). The compiled graphs are
// shared with the model's clones (a reference copy), so the choice applies to them too; graphs
// compiled before are dropped.
func (m *Model) SetCompute(o ComputeOptions) error {
	o.DType = strings.ToLower(o.DType)
	if err := o.validate(); err != nil {
		return err
	}
	gs := m.g
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.opts == o {
		return nil
	}
	gs.opts = o
	gs.execs = map[string]*executable{}
	return nil
}

// Compute returns the model's compute options.
func (m *Model) Compute() ComputeOptions {
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	return m.g.opts
}

// mm casts a matmul operand to the compute dtype.
func (n *net) mm(x *Node) *Node {
	if n.co.bf16() && x.DType() != dtypes.BFloat16 {
		return ConvertDType(x, dtypes.BFloat16)
	}
	return x
}

// f32 casts a matmul result back to float32.
func f32(x *Node) *Node {
	if x.DType() != dtypes.Float32 {
		return ConvertDType(x, dtypes.Float32)
	}
	return x
}

// linear computes x·Wᵀ (+b) in the compute dtype, returning float32.
func (n *net) linear(x, w, b *Node) *Node {
	if !n.co.bf16() {
		return linear(x, w, b)
	}
	y := f32(DotGeneral(n.mm(x), []int{x.Rank() - 1}, nil, n.mm(w), []int{1}, nil))
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// attendFlash is attend through attention.Core (fused attention where the backend has it):
// q [B, T, H, hd], k, v [B, T, KVH, hd], allowed [B, T, T]. Returns [B, T, H*hd] float32.
func (n *net) attendFlash(q, k, v, allowed *Node) *Node {
	c := n.cfg
	b, t := q.Shape().Dimensions[0], q.Shape().Dimensions[1]
	dt := dtypes.Float32
	if n.co.bf16() {
		dt = dtypes.BFloat16
	}
	q, k, v = ConvertDType(q, dt), ConvertDType(k, dt), ConvertDType(v, dt)
	// Finite rather than -inf, so a query that sees no real key (left padding) gets a uniform
	// distribution instead of NaN; its output is never used.
	bias := Where(allowed, ScalarZero(q.Graph(), dt), Scalar(q.Graph(), dt, -1e9))
	bias = BroadcastToDims(Reshape(bias, b, 1, t, t), b, c.NumHeads, t, t)
	out, _ := attention.Core(q, k, v, attention.LayoutBSHD, attention.CoreOptions{UseCausalMask: true, AttentionBias: bias})
	return Reshape(f32(out), b, t, c.NumHeads*c.HeadDim)
}

// CompileStats counts the graphs a process compiled: how many, and the seconds of the calls that
// compiled them (graph construction, backend compilation and that first execution).
type CompileStats struct {
	Graphs  int            `json:"graphs"`
	Seconds float64        `json:"seconds"`
	ByName  map[string]int `json:"by_name"` // graphs per executable and variant (e.g. "train_accfalse_entfalse_rngfalse/bf16")
}

var compileStats = struct {
	sync.Mutex
	s CompileStats
}{s: CompileStats{ByName: map[string]int{}}}

// GlobalCompileStats returns the compilations of every model in the process so far.
func GlobalCompileStats() CompileStats {
	compileStats.Lock()
	defer compileStats.Unlock()
	s := compileStats.s
	s.ByName = make(map[string]int, len(compileStats.s.ByName))
	for k, v := range compileStats.s.ByName {
		s.ByName[k] = v
	}
	return s
}

// noteCompile records one compilation of executable name that took d.
func noteCompile(name string, d time.Duration) {
	compileStats.Lock()
	defer compileStats.Unlock()
	compileStats.s.Graphs++
	compileStats.s.Seconds += d.Seconds()
	compileStats.s.ByName[strings.TrimPrefix(name, "polo_")]++
}
