package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// OptimConfig configures AdamW (PyTorch's formulation: decoupled weight decay p ← p·(1−lr·wd)
// before the Adam update). Weight decay is not applied to RMSNorm scales and biases (rank-1
// parameters). ClipNorm > 0 rescales the accumulated gradients so that their global L2 norm is at
// most ClipNorm (as torch.nn.utils.clip_grad_norm_); ClipNorm <= 0 disables clipping.
type OptimConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay, ClipNorm float64
}

// DefaultOptimConfig is a common RL fine-tuning setting.
func DefaultOptimConfig() OptimConfig {
	return OptimConfig{LR: 1e-6, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, ClipNorm: 1.0}
}

func (c OptimConfig) validate() error {
	switch {
	case !(c.LR >= 0):
		return fmt.Errorf("optimizer lr must be >= 0, got %g", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("optimizer betas must be in [0, 1), got %g, %g", c.Beta1, c.Beta2)
	case !(c.Eps > 0):
		return fmt.Errorf("optimizer eps must be > 0, got %g", c.Eps)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("optimizer weight_decay must be >= 0, got %g", c.WeightDecay)
	}
	return nil
}

// Trainer accumulates gradients of the surrogate loss over micro-batches and applies AdamW.
//
// The surrogate is L = Σ_bt coefLogp[b][t]·logp[b][t] + coefEnt[b][t]·entropy[b][t], with the
// coefficients treated as constants: an objective computed dL/dlogp on the host, and the model
// backpropagates exactly that. SFT cross-entropy is coefLogp = −mask/N.
type Trainer struct {
	m    *Model
	cfg  OptimConfig
	step int

	acc  []*tensors.Tensor // accumulated gradients; nil after Step
	mom  []*tensors.Tensor // first moments
	vel  []*tensors.Tensor // second moments
	wdOn []float32         // 1 where weight decay applies

	names  []string // the trained tensors: the adapter's with LoRA, else every weight
	shapes [][]int
	remat  bool   // activation checkpointing
	draws  uint64 // dropout masks drawn so far (each from its own seeded generator state)
}

// NewTrainer prepares AdamW state (zero moments) for m.
func NewTrainer(m *Model, cfg OptimConfig) (*Trainer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if m.shared && m.lora == nil {
		return nil, errors.New("model NewTrainer: this model shares its weights with another (Base of an adapted model) and is frozen")
	}
	tr := &Trainer{m: m, cfg: cfg, names: m.lay.names, shapes: m.lay.shapes}
	if m.lora != nil {
		tr.names, tr.shapes = m.lora.lay.names, m.lora.lay.shapes
	}
	tr.mom, tr.vel = tr.zeros(), tr.zeros()
	tr.wdOn = make([]float32, len(tr.names))
	for i := range tr.wdOn {
		if len(tr.shapes[i]) != 1 { // no decay for RMSNorm scales and biases
			tr.wdOn[i] = 1
		}
	}
	return tr, nil
}

// SetActivationCheckpointing makes Accumulate recompute each decoder layer's forward during the
// backward pass instead of keeping its activations: less memory, about one more forward of time.
func (tr *Trainer) SetActivationCheckpointing(on bool) { tr.remat = on }

// params is the slice of tensors the trainer updates (the adapter's or the model's).
func (tr *Trainer) params() []*tensors.Tensor {
	if tr.m.lora != nil {
		return tr.m.lora.params
	}
	return tr.m.params
}

func (tr *Trainer) zeros() []*tensors.Tensor {
	out := make([]*tensors.Tensor, len(tr.names))
	for i, s := range tr.shapes {
		out[i] = tensors.FromFlatDataAndDimensions(make([]float32, prod(s)), s...)
	}
	return out
}

// StepCount is the number of optimizer steps taken (restored by LoadState).
func (tr *Trainer) StepCount() int { return tr.step }

// SetConfig changes the optimizer hyper-parameters (e.g. from a schedule); moments are kept.
func (tr *Trainer) SetConfig(cfg OptimConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	tr.cfg = cfg
	return nil
}

// trainGraph builds the forward + backward of the surrogate with respect to the trained tensors.
// Inputs after the weights: [acc...] (when accumulating), ids, pos, mask, target, coefLogp,
// [coefEnt], [rng state] (LoRA dropout).
func trainGraph(withAcc, withEnt, withRNG bool) func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	return func(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
		np := len(n.trainable())
		var acc []*graph.Node
		if withAcc {
			acc, in = in[:np], in[np:]
		}
		if withRNG {
			n.rng, in = in[len(in)-1], in[:len(in)-1]
		}
		ids, pos, mask, target, coefLogp := in[0], in[1], in[2], in[3], in[4]
		h, _, _ := n.forward(ids, pos, causalAllowed(mask))
		logp, ent := tokenStats(n.logits(h), target)
		loss := graph.ReduceAllSum(graph.Mul(coefLogp, logp))
		if withEnt {
			loss = graph.Add(loss, graph.ReduceAllSum(graph.Mul(in[5], ent)))
		}
		return addGrads([]*graph.Node{logp, ent}, acc, graph.Gradient(loss, n.trainable()...))
	}
}

// takeAcc hands the gradient accumulators over to the next graph call as donated inputs (nil before
// the first micro-batch of a step). tr.acc stays nil until the call returns the new sums, so a failed
// call drops the gradients rather than keeping donated buffers.
func (tr *Trainer) takeAcc() ([]any, error) {
	accs := tr.acc
	tr.acc = nil
	var in []any
	for _, a := range accs {
		d, err := graph.DonateTensorBuffer(a, tr.m.g.backend, 0)
		if err != nil {
			return nil, err
		}
		in = append(in, d)
	}
	return in, nil
}

// addGrads appends grads to out, each added to its accumulator when acc is given (later micro-batches).
func addGrads(out, acc, grads []*graph.Node) []*graph.Node {
	for i, gr := range grads {
		if acc != nil {
			gr = graph.Add(acc[i], gr)
		}
		out = append(out, gr)
	}
	return out
}

// Accumulate runs forward and backward on one micro-batch and adds the gradients of the surrogate
// to the accumulators. coefEnt may be nil. It returns the logp and entropy of the forward pass
// (same layout as LogProbs). Coefficients at padded positions are ignored. If it fails, the
// gradients accumulated so far are dropped (their buffers were donated to the graph).
func (tr *Trainer) Accumulate(ids, mask [][]int32, coefLogp, coefEnt [][]float32) (logp, entropy [][]float32, err error) {
	defer recoverErr(&err, "model Accumulate")
	m := tr.m
	bt, err := m.pairBatch(ids, mask)
	if err != nil {
		return nil, nil, fmt.Errorf("model Accumulate: %w", err)
	}
	cl, err := padCoef("coefLogp", coefLogp, bt)
	if err != nil {
		return nil, nil, fmt.Errorf("model Accumulate: %w", err)
	}
	extra, err := tr.takeAcc()
	if err != nil {
		return nil, nil, err
	}
	withAcc := extra != nil
	extra = append(extra, bt.ids, bt.pos, bt.mask, bt.target, cl)
	withEnt := coefEnt != nil
	if withEnt {
		ce, err := padCoef("coefEnt", coefEnt, bt)
		if err != nil {
			return nil, nil, fmt.Errorf("model Accumulate: %w", err)
		}
		extra = append(extra, ce)
	}
	withRNG := m.lora != nil && m.lora.lay.cfg.Dropout > 0
	if withRNG {
		extra = append(extra, tr.rngState())
	}
	key := "train_acc" + strconv.FormatBool(withAcc) + "_ent" + strconv.FormatBool(withEnt) + "_rng" + strconv.FormatBool(withRNG)
	outs, err := m.callV(key, m.variant(tr.remat), trainGraph(withAcc, withEnt, withRNG), extra...)
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

// padCoef pads coefficients [B][T-1] to the bucketed [bb, tb] layout (coefficient of position t is
// for the prediction of token t+1). Entries on padding are dropped.
func padCoef(name string, c [][]float32, bt *batch) (*tensors.Tensor, error) {
	if len(c) != bt.b {
		return nil, fmt.Errorf("%s has %d rows, batch has %d", name, len(c), bt.b)
	}
	flat := make([]float32, bt.bb*bt.tb)
	for i, row := range c {
		if len(row) != bt.t-1 {
			return nil, fmt.Errorf("%s row %d has %d entries, want T-1 = %d", name, i, len(row), bt.t-1)
		}
		for j, v := range row {
			if bt.maskH[i][j] == 1 && bt.maskH[i][j+1] == 1 {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("%s[%d][%d] is %v", name, i, j, v)
				}
				flat[i*bt.tb+j] = v
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(flat, bt.bb, bt.tb), nil
}

// stepGraph: inputs after the weights are grads, m, v, wdOn (per-parameter 0/1 as [np]) and hp
// = [lr, beta1, beta2, eps, weightDecay, clipNorm, lr/bias1, sqrt(bias2)]. Outputs: new weights,
// new m, new v, pre-clip global gradient norm, and whether the step was applied (finite).
func stepGraph(n *net, g *graph.Graph, in []*graph.Node) []*graph.Node {
	params := n.trainable()
	np := len(params)
	grads, mom, vel := in[:np], in[np:2*np], in[2*np:3*np]
	wdOn, hp := in[3*np], in[3*np+1]
	at := func(i int) *graph.Node { return graph.Reshape(graph.Slice(hp, graph.AxisElem(i))) }
	lr, b1, b2, eps, wd, clip, stepSize, bc2sqrt := at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7)
	sq := make([]*graph.Node, np)
	for i, gr := range grads {
		sq[i] = graph.ReduceAllSum(graph.Square(gr))
	}
	norm := graph.Sqrt(graph.ReduceAllSum(graph.Stack(sq, 0)))
	one := graph.ScalarOne(g, dtypes.Float32)
	// torch clip_grad_norm_: coef = min(1, max_norm / (norm + 1e-6)).
	coef := graph.Min(one, graph.Div(clip, graph.AddScalar(norm, 1e-6)))
	coef = graph.Where(graph.GreaterThan(clip, graph.ScalarZero(g, dtypes.Float32)), coef, one)
	outP, outM, outV := make([]*graph.Node, np), make([]*graph.Node, np), make([]*graph.Node, np)
	for i := range grads {
		gr := graph.Mul(grads[i], coef)
		decay := graph.Sub(one, graph.Mul(graph.Mul(lr, wd), graph.Reshape(graph.Slice(wdOn, graph.AxisElem(i)))))
		p := graph.Mul(params[i], decay)
		m := graph.Add(graph.Mul(mom[i], b1), graph.Mul(gr, graph.Sub(one, b1)))
		v := graph.Add(graph.Mul(vel[i], b2), graph.Mul(graph.Square(gr), graph.Sub(one, b2)))
		denom := graph.Add(graph.Div(graph.Sqrt(v), bc2sqrt), eps)
		outP[i] = graph.Sub(p, graph.Mul(stepSize, graph.Div(m, denom)))
		outM[i], outV[i] = m, v
	}
	// A non-finite gradient norm or updated weight leaves weights and moments as they were (see
	// finiteGuard); the caller learns of it from the returned flag.
	ok := finiteGuard(norm, outP)
	for i := range grads {
		outP[i] = graph.Where(ok, outP[i], params[i])
		outM[i] = graph.Where(ok, outM[i], mom[i])
		outV[i] = graph.Where(ok, outV[i], vel[i])
	}
	out := append(append(append(outP, outM...), outV...), norm, ok)
	return out
}

// Step clips the accumulated gradients to ClipNorm (global norm), applies one AdamW update with
// learning rate lr (overriding cfg.LR, so schedules need no SetConfig), clears the accumulators
// and returns the global gradient norm before clipping.
func (tr *Trainer) Step(lr float64) (gradNorm float64, err error) {
	defer recoverErr(&err, "model Step")
	if tr.acc == nil {
		return 0, errors.New("model Step: no gradients accumulated since the last step (call Accumulate first)")
	}
	if !(lr >= 0) {
		return 0, fmt.Errorf("model Step: learning rate must be >= 0, got %g", lr)
	}
	m := tr.m
	t := float64(tr.step + 1)
	c := tr.cfg
	bc1 := 1 - math.Pow(c.Beta1, t)
	bc2 := 1 - math.Pow(c.Beta2, t)
	hp := []float32{float32(lr), float32(c.Beta1), float32(c.Beta2), float32(c.Eps), float32(c.WeightDecay),
		float32(c.ClipNorm), float32(lr / bc1), float32(math.Sqrt(bc2))}
	np := len(tr.names)
	e, err := m.g.exec("adamw", m.variant(false), stepGraph)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	args := make([]any, 0, len(m.params)+4*np+2)
	if m.lora != nil { // the frozen base weights are inputs of the graph but are not updated
		for _, p := range m.params {
			args = append(args, p)
		}
	}
	donate := func(ts []*tensors.Tensor) error {
		for _, x := range ts {
			d, err := graph.DonateTensorBuffer(x, m.g.backend, 0)
			if err != nil {
				return err
			}
			args = append(args, d)
		}
		return nil
	}
	if err := errors.Join(donate(tr.params()), donate(tr.acc), donate(tr.mom), donate(tr.vel)); err != nil {
		return 0, err
	}
	args = append(args, tensors.FromFlatDataAndDimensions(tr.wdOn, np), tensors.FromFlatDataAndDimensions(hp, len(hp)))
	tr.acc = nil
	outs, err := timedCall(e, args...)
	if err != nil {
		// The donated buffers are gone: the model is unusable after a failed step.
		return 0, fmt.Errorf("model Step: %w (weights are lost; reload the last checkpoint)", err)
	}
	copy(tr.params(), outs[:np])
	tr.mom = outs[np : 2*np]
	tr.vel = outs[2*np : 3*np]
	normT, okT := outs[3*np], outs[3*np+1]
	defer finalize([]*tensors.Tensor{normT, okT})
	norm := tensors.ToScalar[float32](normT)
	if !tensors.ToScalar[bool](okT) {
		return float64(norm), nonFiniteStep(norm)
	}
	tr.step++
	return float64(norm), nil
}

// gradients returns a copy of the accumulated gradient of one parameter (tests and diagnostics).
func (tr *Trainer) gradients(name string) ([]float32, error) {
	i := slices.Index(tr.names, name)
	if i < 0 || tr.acc == nil {
		return nil, fmt.Errorf("no accumulated gradient for %q", name)
	}
	return tensors.CopyFlatData[float32](tr.acc[i])
}

// SaveState writes the optimizer moments and step count to path (safetensors, written atomically),
// so that a resumed run continues bit-identically on CPU.
func (tr *Trainer) SaveState(path string) (err error) {
	defer recoverErr(&err, "save optimizer state")
	ts := map[string]hostTensor{}
	for i, name := range tr.names {
		mv, err := tensors.CopyFlatData[float32](tr.mom[i])
		if err != nil {
			return err
		}
		vv, err := tensors.CopyFlatData[float32](tr.vel[i])
		if err != nil {
			return err
		}
		ts["exp_avg."+name] = hostTensor{Shape: tr.shapes[i], F32: mv}
		ts["exp_avg_sq."+name] = hostTensor{Shape: tr.shapes[i], F32: vv}
	}
	if tr.m.lora == nil && tr.m.DType() != "F32" {
		// The model is saved rounded to its checkpoint dtype; keep the float32 master weights here
		// so that a resumed run continues from exactly these weights.
		host, err := tr.m.hostParams()
		if err != nil {
			return err
		}
		for i, name := range tr.names {
			ts["master."+name] = hostTensor{Shape: tr.shapes[i], F32: host[i]}
		}
	}
	meta := map[string]string{"format": "polo-adamw", "step": strconv.Itoa(tr.step), "dropout_draws": strconv.FormatUint(tr.draws, 10)}
	if err := writeSafetensors(path, ts, meta); err != nil {
		return fmt.Errorf("save optimizer state: %w", err)
	}
	return nil
}

// LoadState restores what SaveState wrote. The parameter names and shapes must match the model.
func (tr *Trainer) LoadState(path string) (err error) {
	defer recoverErr(&err, "load optimizer state")
	ts, meta, err := readSafetensorsMeta(path)
	if err != nil {
		return fmt.Errorf("load optimizer state: %w", err)
	}
	if meta["format"] != "polo-adamw" {
		return fmt.Errorf("load optimizer state: %s is not a polo optimizer state (format %q)", path, meta["format"])
	}
	step, err := strconv.Atoi(meta["step"])
	if err != nil || step < 0 {
		return fmt.Errorf("load optimizer state: %s has a bad step count %q", path, meta["step"])
	}
	var draws uint64
	if d, ok := meta["dropout_draws"]; ok {
		if draws, err = strconv.ParseUint(d, 10, 64); err != nil {
			return fmt.Errorf("load optimizer state: %s has a bad dropout_draws %q", path, d)
		}
	}
	mom, vel := make([]*tensors.Tensor, len(tr.mom)), make([]*tensors.Tensor, len(tr.vel))
	for i, name := range tr.names {
		for _, kv := range []struct {
			key string
			dst []*tensors.Tensor
		}{{"exp_avg." + name, mom}, {"exp_avg_sq." + name, vel}} {
			h, ok := ts[kv.key]
			if !ok || h.F32 == nil || !equalInts(h.Shape, tr.shapes[i]) {
				return fmt.Errorf("load optimizer state: %s lacks %q of shape %v (state of another model or adapter?)", path, kv.key, tr.shapes[i])
			}
			kv.dst[i] = tensors.FromFlatDataAndDimensions(h.F32, h.Shape...)
		}
	}
	if _, ok := ts["master."+tr.names[0]]; ok && tr.m.lora == nil {
		master := make([]*tensors.Tensor, len(tr.names))
		for i, name := range tr.names {
			h := ts["master."+name]
			if h.F32 == nil || !equalInts(h.Shape, tr.shapes[i]) {
				return fmt.Errorf("load optimizer state: %s: master weight %q has shape %v, want %v", path, name, h.Shape, tr.shapes[i])
			}
			if err := checkWeightsFinite([]string{name}, [][]float32{h.F32}); err != nil {
				return fmt.Errorf("load optimizer state: %s: %w", path, err)
			}
			master[i] = tensors.FromFlatDataAndDimensions(h.F32, h.Shape...)
		}
		tr.m.mu.Lock()
		copy(tr.m.params, master)
		tr.m.mu.Unlock()
	}
	tr.mom, tr.vel, tr.step, tr.acc, tr.draws = mom, vel, step, nil, draws
	return nil
}

// rngState is the generator state of the next dropout draw: a function of the adapter's seed and
// the number of draws so far, so that a resumed run draws the same masks.
func (tr *Trainer) rngState() *tensors.Tensor {
	rng := rand.New(rand.NewPCG(uint64(tr.m.lora.lay.cfg.Seed), tr.draws^0x64726f70)) // "drop"
	tr.draws++
	st := []uint64{rng.Uint64(), rng.Uint64(), rng.Uint64()}
	return tensors.FromFlatDataAndDimensions(st, len(st))
}
