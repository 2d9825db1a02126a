package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/polo-rl/polo/engine"
)

// Model is a decoder-only transformer with its weights. A Model is safe for concurrent use; a
// Trainer on it replaces the weights at each Step.
type Model struct {
	cfg Config
	lay *layout
	g   *graphs // compiled executables, shared with clones

	mu     sync.RWMutex
	params []*tensors.Tensor // in layout order, float32

	rawConfig []byte // config.json as loaded (rewritten on Save); nil for New
	rawGen    []byte // generation_config.json as loaded, if any
	dtype     string // safetensors dtype of the loaded weights (F32, BF16, F16), kept on Save; "" = F32

	lora   *adapter // LoRA adapter (lora.go), nil without one
	shared bool     // params are another model's (a view from AddAdapter or Base): never updated
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// NumParams is the number of trainable scalars (tied embeddings counted once).
func (m *Model) NumParams() int {
	n := 0
	for _, s := range m.lay.shapes {
		n += prod(s)
	}
	return n
}

func prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// Load reads a Hugging Face checkpoint folder: config.json plus model.safetensors or a sharded
// model.safetensors.index.json. float32, bfloat16 and float16 weights are converted to float32 as
// they are streamed from the files into the engine's buffers, so loading holds one float32 copy of
// the weights (plus a few MiB), not the file as well; Save writes the weights' dtype back.
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	files, closeAll, err := checkpointFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("load weights: %w", err)
	}
	defer closeAll()
	names := make(map[string]hostTensor, len(files))
	for n := range files {
		names[n] = hostTensor{}
	}
	if err := checkLayersPresent(dir, cfg, names); err != nil {
		return nil, err
	}
	backend, err := backend()
	if err != nil {
		return nil, err
	}
	lay := newLayout(cfg)
	params := make([]*tensors.Tensor, len(lay.names))
	dtype := ""
	for i, name := range lay.names {
		f, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("load %s: missing tensor %q (model_type %s with %d layers)", dir, name, cfg.ModelType, cfg.NumLayers)
		}
		e := f.entries[name]
		if !slices.Contains([]string{"F32", "BF16", "F16"}, e.DType) || !equalInts(e.Shape, lay.shapes[i]) {
			return nil, fmt.Errorf("load %s: tensor %q has shape %v (%s), config.json implies %v (float)", dir, name, e.Shape, e.DType, lay.shapes[i])
		}
		if dtype == "" {
			dtype = e.DType
		}
		if params[i], err = newWeight(backend, lay.shapes[i], func(w []float32) error {
			if err := f.readFloats(name, w); err != nil {
				return err
			}
			return checkWeightsFinite([]string{name}, [][]float32{w})
		}); err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
	}
	m := &Model{cfg: cfg, lay: lay, g: newGraphs(backend, cfg, lay), params: params, dtype: dtype}
	m.rawConfig, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	m.rawGen, _ = os.ReadFile(filepath.Join(dir, "generation_config.json"))
	return m, nil
}

// newWeight allocates a float32 tensor in the engine's memory (shared with the host on the pure-Go
// backend, so there is no second copy) and fills it with fill.
func newWeight(b compute.Backend, shape []int, fill func([]float32) error) (t *tensors.Tensor, err error) {
	defer recoverErr(&err, "allocate weight")
	t, err = tensors.FromShapeForBackend(b, 0, shapes.Make(dtypes.Float32, shape...))
	if err != nil {
		return nil, err
	}
	var ferr error
	if err := t.MutableFlatData(func(flat any) { ferr = fill(flat.([]float32)) }); err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, ferr
	}
	if !t.IsShared() { // e.g. XLA: move to the device and free the host copy
		if err := t.ToDevice(b, 0); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// New builds a randomly initialised model (seeded): weight matrices and embeddings ~ N(0, 0.02²)
// as in transformers' initializer_range default, norm scales 1, biases 0.
func New(cfg Config, seed int64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lay := newLayout(cfg)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x706f6c6f)) // "polo"
	backend, err := backend()
	if err != nil {
		return nil, err
	}
	// Each weight is drawn straight into the engine's buffer: no host copy of the whole model.
	m := &Model{cfg: cfg, lay: lay, g: newGraphs(backend, cfg, lay), params: make([]*tensors.Tensor, len(lay.names))}
	for i, name := range lay.names {
		if m.params[i], err = newWeight(backend, lay.shapes[i], func(w []float32) error {
			switch {
			case len(lay.shapes[i]) == 2:
				for j := range w {
					w[j] = float32(0.02 * rng.NormFloat64())
				}
			case isBias(name):
				clear(w)
			default: // RMSNorm scale
				for j := range w {
					w[j] = 1
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func isBias(name string) bool { return len(name) > 5 && name[len(name)-5:] == ".bias" }

// backend returns the engine's backend (engine.DefaultConfig unless GOMLX_BACKEND says otherwise).
func backend() (compute.Backend, error) {
	return engine.Backend()
}

func newModel(cfg Config, host [][]float32) (*Model, error) {
	backend, err := backend()
	if err != nil {
		return nil, err
	}
	lay := newLayout(cfg)
	m := &Model{cfg: cfg, lay: lay, g: newGraphs(backend, cfg, lay)}
	m.params = make([]*tensors.Tensor, len(host))
	for i, w := range host {
		if m.params[i], err = newWeight(backend, lay.shapes[i], func(dst []float32) error { copy(dst, w); return nil }); err != nil {
			return nil, err
		}
		host[i] = nil // let the host copy go as soon as it is in the engine
	}
	return m, nil
}

// Clone returns an independent copy of the weights (e.g. a frozen reference model). The clone
// shares the compiled graphs, so it costs no compilation. An adapted model's clone copies the
// adapter and shares the frozen base weights.
func (m *Model) Clone() (*Model, error) {
	if m.lora != nil {
		ah, err := m.adapterHost()
		if err != nil {
			return nil, err
		}
		return m.withAdapter(m.lora.lay, ah), nil
	}
	host, err := m.hostParams()
	if err != nil {
		return nil, err
	}
	c := &Model{cfg: m.cfg, lay: m.lay, g: m.g, rawConfig: m.rawConfig, rawGen: m.rawGen, dtype: m.dtype}
	c.params = make([]*tensors.Tensor, len(host))
	for i, w := range host {
		c.params[i] = tensors.FromFlatDataAndDimensions(w, m.lay.shapes[i]...)
	}
	return c, nil
}

// hostParams copies the weights to Go slices.
func (m *Model) hostParams() (host [][]float32, err error) {
	defer recoverErr(&err, "read weights")
	m.mu.RLock()
	defer m.mu.RUnlock()
	host = make([][]float32, len(m.params))
	for i, t := range m.params {
		if host[i], err = tensors.CopyFlatData[float32](t); err != nil {
			return nil, fmt.Errorf("read %s: %w", m.lay.names[i], err)
		}
	}
	return host, nil
}

// Weights returns a copy of one parameter by its Hugging Face name, with its shape.
func (m *Model) Weights(name string) ([]float32, []int, error) {
	i := m.lay.index(name)
	if i < 0 {
		return nil, nil, fmt.Errorf("model has no parameter %q", name)
	}
	host, err := m.hostParams()
	if err != nil {
		return nil, nil, err
	}
	return host[i], append([]int(nil), m.lay.shapes[i]...), nil
}

// ParamNames lists the parameters in their fixed order (Hugging Face names).
func (m *Model) ParamNames() []string { return append([]string(nil), m.lay.names...) }

// Save writes dir/model.safetensors and dir/config.json, so that transformers' from_pretrained
// loads them; each file is written to a temporary name and renamed into place. Weights are written
// in the dtype they were loaded in (bfloat16 stays bfloat16, rounded to nearest even; float32 for
// New), streamed from the engine's buffers. A loaded model keeps its original config.json fields
// (with dtype set to the written dtype).
func (m *Model) Save(dir string) error {
	if m.lora != nil {
		return errors.New("save model: the model carries a LoRA adapter; save it with SaveAdapter, or Merged().Save for a full checkpoint")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	dt := m.dtype
	if dt == "" {
		dt = "F32"
	}
	m.mu.RLock()
	params := slices.Clone(m.params)
	m.mu.RUnlock()
	items := make([]stItem, len(params))
	for i, t := range params {
		name := m.lay.names[i]
		items[i] = stItem{name: name, shape: m.lay.shapes[i], dtype: dt, with: func(fn func([]float32) error) (err error) {
			defer recoverErr(&err, "read weights")
			var ferr error
			if err := t.ConstFlatData(func(flat any) {
				w := flat.([]float32)
				// never write a checkpoint that cannot be used
				if ferr = checkWeightsFinite([]string{name}, [][]float32{w}); ferr == nil {
					ferr = fn(w)
				}
			}); err != nil {
				return err
			}
			if ferr != nil && errors.Is(ferr, ErrNonFinite) {
				return fmt.Errorf("%w; refusing to save them", ferr)
			}
			return ferr
		}}
	}
	if err := writeSafetensorsItems(filepath.Join(dir, "model.safetensors"), items, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	torchName := map[string]string{"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[dt]
	cfgJSON := m.cfg.toJSON()
	if m.rawConfig != nil {
		var raw map[string]any
		if json.Unmarshal(m.rawConfig, &raw) == nil {
			cfgJSON = raw
			for _, k := range []string{"torch_dtype", "dtype"} {
				if _, ok := raw[k]; ok {
					raw[k] = torchName
				}
			}
		}
	}
	data, err := json.MarshalIndent(cfgJSON, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), append(data, '\n')); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if m.rawGen != nil {
		if err := writeFileAtomic(filepath.Join(dir, "generation_config.json"), m.rawGen); err != nil {
			return fmt.Errorf("save model: %w", err)
		}
	}
	return nil
}

// DType is the safetensors dtype Save writes (F32, BF16 or F16): the loaded checkpoint's.
func (m *Model) DType() string {
	if m.dtype == "" {
		return "F32"
	}
	return m.dtype
}

// SetDType chooses the dtype Save writes (F32, BF16 or F16); computation stays float32.
func (m *Model) SetDType(dt string) error {
	if !slices.Contains([]string{"F32", "BF16", "F16"}, dt) {
		return fmt.Errorf("model dtype %q: want F32, BF16 or F16", dt)
	}
	m.dtype = dt
	return nil
}

// recoverErr turns a panic (GoMLX reports graph errors by panicking) into an error.
func recoverErr(err *error, what string) {
	if r := recover(); r != nil {
		if os.Getenv("POLO_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "%s: panic: %v\n%s", what, r, debug.Stack())
		}
		if e, ok := r.(error); ok {
			*err = fmt.Errorf("%s: %w", what, e)
		} else {
			*err = fmt.Errorf("%s: %v", what, r)
		}
	}
}

// graphs holds the compiled executables of one architecture; they take the weights as inputs,
// so every model of that architecture (policy, reference clone) shares them.
type graphs struct {
	backend compute.Backend
	cfg     Config
	lay     *layout

	mu    sync.Mutex
	execs map[string]*executable
	opts  ComputeOptions // compute.go: bf16 matmuls, fused attention
}

// executable is a compiled-on-demand graph with the number of graphs built for it so far (one per
// input shape), which timedCall uses to tell a call that compiled from one that did not.
type executable struct {
	*graph.Exec
	builds atomic.Int64
}

func newGraphs(b compute.Backend, cfg Config, lay *layout) *graphs {
	return &graphs{backend: b, cfg: cfg, lay: lay, execs: map[string]*executable{}}
}

// maxGraphsPerExec bounds the distinct input shapes one executable compiles (see bucketing).
const maxGraphsPerExec = 64

// variant selects a graph's optional parts: an adapter layout (its tensors follow the weights in
// the inputs) and activation checkpointing.
type variant struct {
	al    *loraLayout
	remat bool
}

func (v variant) key() string {
	k := ""
	if v.al != nil {
		k += "/" + v.al.sig
	}
	if v.remat {
		k += "/remat"
	}
	return k
}

// exec returns the executable named key, building it with fn on first use.
func (gs *graphs) exec(key string, v variant, fn func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node) (*executable, error) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	key += v.key() + gs.opts.key()
	if e, ok := gs.execs[key]; ok {
		return e, nil
	}
	np := len(gs.lay.names)
	na := 0
	if v.al != nil {
		na = len(v.al.names)
	}
	opts := gs.opts
	ex := &executable{}
	e, err := graph.NewExec(gs.backend, func(g *graph.Graph, in []*graph.Node) []*graph.Node {
		ex.builds.Add(1)
		n := &net{cfg: gs.cfg, lay: gs.lay, p: in[:np], al: v.al, a: in[np : np+na], remat: v.remat, co: opts}
		return fn(n, g, in[np+na:])
	})
	if err != nil {
		return nil, err
	}
	e.WithName("polo_" + key).SetMaxCache(maxGraphsPerExec)
	ex.Exec = e
	gs.execs[key] = ex
	return ex, nil
}

// call runs an executable with the model's weights (and adapter) followed by extra inputs.
func (m *Model) call(key string, fn func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node, extra ...any) ([]*tensors.Tensor, error) {
	return m.callV(key, m.variant(false), fn, extra...)
}

// variant is the graph variant of the model's forward (with its adapter, if any).
func (m *Model) variant(remat bool) variant {
	v := variant{remat: remat}
	if m.lora != nil {
		v.al = m.lora.lay
	}
	return v
}

func (m *Model) callV(key string, v variant, fn func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node, extra ...any) ([]*tensors.Tensor, error) {
	e, err := m.g.exec(key, v, fn)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	args := make([]any, 0, len(m.params)+len(extra))
	for _, p := range m.params {
		args = append(args, p)
	}
	if m.lora != nil {
		for _, p := range m.lora.params {
			args = append(args, p)
		}
	}
	m.mu.RUnlock()
	args = append(args, extra...)
	return timedCall(e, args...)
}

// timedCall runs e and, when the call compiled a new graph, records it in the compile statistics
// (the time of the whole call: construction, compilation and one execution). Exact unless calls of
// the same executable overlap in time while one of them compiles.
func timedCall(e *executable, args ...any) ([]*tensors.Tensor, error) {
	before := e.builds.Load()
	t0 := time.Now()
	outs, err := e.Call(args...)
	if e.builds.Load() != before {
		noteCompile(e.Name(), time.Since(t0))
	}
	return outs, err
}

// batch is a padded, bucketed batch ready for a graph.
type batch struct {
	b, t   int // caller's sizes
	bb, tb int // bucketed sizes
	ids    *tensors.Tensor
	pos    *tensors.Tensor // position of each token: number of real tokens before it
	mask   *tensors.Tensor
	target *tensors.Tensor // ids shifted left by one (target of position t is ids[t+1])
	maskH  [][]int32
}

// bucketLen rounds a sequence length up so that a run with varying lengths compiles few graphs:
// lengths up to 16 are kept as they are (padding a 13-token row to 16 costs 23% of every pass,
// and there are at most 16 such graphs), then multiples of 8 up to 64, of 16 up to 256, of 64 past.
func bucketLen(t int) int {
	step := bucketStep(t)
	return (t + step - 1) / step * step
}

// bucketStep is bucketLen's granularity at length t (non-decreasing in t).
func bucketStep(t int) int {
	switch {
	case t <= 16:
		return 1
	case t <= 64:
		return 8
	case t <= 256:
		return 16
	}
	return 64
}

// bucketBatch rounds a batch size up to a power of two up to 8, then to a multiple of 8.
func bucketBatch(b int) int {
	if b > 8 {
		return (b + 7) / 8 * 8
	}
	n := 1
	for n < b {
		n *= 2
	}
	return n
}

// pairBatch is makeBatch for the passes that score next tokens, which need at least 2 tokens a row.
func (m *Model) pairBatch(ids, mask [][]int32) (*batch, error) {
	bt, err := m.makeBatch(ids, mask)
	if err != nil {
		return nil, err
	}
	if bt.t < 2 {
		return nil, errors.New("sequences need at least 2 tokens")
	}
	return bt, nil
}

// makeBatch validates ids/mask and pads them to bucketed shapes. Padding rows and columns have
// mask 0.
func (m *Model) makeBatch(ids, mask [][]int32) (*batch, error) {
	if len(ids) == 0 {
		return nil, errors.New("empty batch")
	}
	if len(mask) != len(ids) {
		return nil, fmt.Errorf("mask has %d rows, ids has %d", len(mask), len(ids))
	}
	t := len(ids[0])
	if t == 0 {
		return nil, errors.New("empty sequences")
	}
	for i := range ids {
		if len(ids[i]) != t || len(mask[i]) != t {
			return nil, fmt.Errorf("row %d: ids has %d and mask %d columns, want %d (pad every row to the same length)", i, len(ids[i]), len(mask[i]), t)
		}
	}
	co := m.Compute()
	bt := &batch{b: len(ids), t: t, bb: co.bucketBatch(len(ids)), tb: co.bucketLen(t), maskH: mask}
	n := bt.bb * bt.tb
	fid, fpos, fmask, ftgt := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	v := int32(m.cfg.VocabSize)
	for i := range ids {
		var seen int32
		for j := 0; j < t; j++ {
			id, mk := ids[i][j], mask[i][j]
			if mk != 0 && mk != 1 {
				return nil, fmt.Errorf("mask[%d][%d] = %d, want 0 or 1", i, j, mk)
			}
			if id < 0 || id >= v {
				if mk == 1 {
					return nil, fmt.Errorf("token id %d at [%d][%d] is outside the vocabulary [0, %d)", id, i, j, v)
				}
				id = 0
			}
			k := i*bt.tb + j
			fid[k], fmask[k], fpos[k] = id, mk, seen
			seen += mk
			if j+1 < t {
				if nx := ids[i][j+1]; nx >= 0 && nx < v {
					ftgt[k] = nx
				}
			}
		}
		if seen > 0 {
			seen--
		}
		for j := t; j < bt.tb; j++ { // right padding of the bucket continues the positions
			fpos[i*bt.tb+j] = seen
		}
	}
	bt.ids = tensors.FromFlatDataAndDimensions(fid, bt.bb, bt.tb)
	bt.pos = tensors.FromFlatDataAndDimensions(fpos, bt.bb, bt.tb)
	bt.mask = tensors.FromFlatDataAndDimensions(fmask, bt.bb, bt.tb)
	bt.target = tensors.FromFlatDataAndDimensions(ftgt, bt.bb, bt.tb)
	return bt, nil
}

// unpadPairs copies a [bb, tb] float32 output to [b][t-1], zeroing entries whose position or
// next position is padding (those values are not meaningful).
func unpadPairs(x []float32, bt *batch) [][]float32 {
	out := make([][]float32, bt.b)
	for i := range out {
		row := make([]float32, bt.t-1)
		for j := range row {
			if bt.maskH[i][j] == 1 && bt.maskH[i][j+1] == 1 {
				row[j] = x[i*bt.tb+j]
			}
		}
		out[i] = row
	}
	return out
}

func logprobsGraph(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
	ids, pos, mask, target := in[0], in[1], in[2], in[3]
	h, _, _ := n.forward(ids, pos, causalAllowed(mask))
	logp, ent := tokenStats(n.logits(h), target)
	return []*graph.Node{logp, ent}
}

func logitsGraph(n *net, _ *graph.Graph, in []*graph.Node) []*graph.Node {
	ids, pos, mask := in[0], in[1], in[2]
	h, _, _ := n.forward(ids, pos, causalAllowed(mask))
	return []*graph.Node{n.logits(h)}
}

// LogProbs runs the model on a padded batch ids[B][T] with mask[B][T] (1 = real token, 0 = pad;
// left or right padding) and returns, for t in [0, T-1), logp[b][t] = log p(ids[b][t+1] | ids[b][..t])
// and the entropy of that next-token distribution. Entries where token t or t+1 is padding are 0.
// Log-probabilities over the vocabulary never leave the graph.
func (m *Model) LogProbs(ids, mask [][]int32) (logp, entropy [][]float32, err error) {
	defer recoverErr(&err, "model LogProbs")
	bt, err := m.makeBatch(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("model LogProbs: %w", err)
	}
	if bt.t < 2 {
		return make([][]float32, bt.b), make([][]float32, bt.b), nil
	}
	outs, err := m.call("logprobs", logprobsGraph, bt.ids, bt.pos, bt.mask, bt.target)
	if err != nil {
		return nil, nil, err
	}
	lp, ent, err := copy2(outs)
	if err != nil {
		return nil, nil, err
	}
	return unpadPairs(lp, bt), unpadPairs(ent, bt), nil
}

func copy2(outs []*tensors.Tensor) (a, b []float32, err error) {
	defer finalize(outs)
	if a, err = tensors.CopyFlatData[float32](outs[0]); err != nil {
		return nil, nil, err
	}
	if b, err = tensors.CopyFlatData[float32](outs[1]); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// finalize frees graph outputs that were copied to the host.
func finalize(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}

// Logits returns the raw logits [B][T][V] of a padded batch (rows of padded positions are not
// meaningful). It materialises B×T×V floats on the host: use it for parity checks, not training.
func (m *Model) Logits(ids, mask [][]int32) (out [][][]float32, err error) {
	defer recoverErr(&err, "model Logits")
	bt, err := m.makeBatch(ids, mask)
	if err != nil {
		return nil, fmt.Errorf("model Logits: %w", err)
	}
	outs, err := m.call("logits", logitsGraph, bt.ids, bt.pos, bt.mask)
	if err != nil {
		return nil, err
	}
	defer finalize(outs)
	flat, err := tensors.CopyFlatData[float32](outs[0])
	if err != nil {
		return nil, err
	}
	v := m.cfg.VocabSize
	out = make([][][]float32, bt.b)
	for i := range out {
		out[i] = make([][]float32, bt.t)
		for j := range out[i] {
			k := (i*bt.tb + j) * v
			out[i][j] = flat[k : k+v : k+v]
		}
	}
	return out, nil
}

// checkFinite reports the first NaN or Inf in xs.
func checkFinite(name string, xs []float32) error {
	for i, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%s[%d] is %v", name, i, x)
		}
	}
	return nil
}

// setWeights replaces one parameter's values (tests: finite differences).
func (m *Model) setWeights(name string, w []float32) error {
	i := m.lay.index(name)
	if i < 0 || len(w) != prod(m.lay.shapes[i]) {
		return fmt.Errorf("setWeights: bad parameter %q or size %d", name, len(w))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.params[i] = tensors.FromFlatDataAndDimensions(append([]float32(nil), w...), m.lay.shapes[i]...)
	return nil
}
