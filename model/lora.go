package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // graph code reads best unqualified
	"github.com/gomlx/gomlx/core/tensors"
)

// LoRAConfig describes a low-rank adapter (Hu et al. 2021) on some of the decoder's linear layers:
// W·x becomes W·x + s·B·A·dropout(x) with A [r, in], B [out, r] and s = alpha/r (alpha/√r with
// RSLoRA). The base weights stay frozen; only A and B are trained.
type LoRAConfig struct {
	Rank    int      // r
	Alpha   float64  // lora_alpha
	Dropout float64  // lora_dropout, on the adapter's input while training
	RSLoRA  bool     // use_rslora: scale alpha/√r instead of alpha/r
	Targets []string // module names among LoRAModules
	Seed    int64    // A's initialisation and the dropout masks
}

// LoRAModules are the linear layers an adapter may target, by their Hugging Face (and PEFT) names.
var LoRAModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// indices into LoRAModules
const (
	modQ = iota
	modK
	modV
	modO
	modGate
	modUp
	modDown
	numMods
)

// Validate checks the configuration; the error names the field as adapter_config.json does.
func (c LoRAConfig) Validate() error {
	switch {
	case c.Rank <= 0:
		return fmt.Errorf("lora: r (rank) must be > 0, got %d", c.Rank)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("lora: lora_alpha must be > 0, got %g", c.Alpha)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("lora: lora_dropout must be in [0, 1), got %g", c.Dropout)
	case len(c.Targets) == 0:
		return fmt.Errorf("lora: target_modules is empty (choose among %s)", strings.Join(LoRAModules, ", "))
	}
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if !slices.Contains(LoRAModules, t) {
			return fmt.Errorf("lora: unknown target module %q (choose among %s)", t, strings.Join(LoRAModules, ", "))
		}
		if seen[t] {
			return fmt.Errorf("lora: target module %q listed twice", t)
		}
		seen[t] = true
	}
	return nil
}

// Scale is the factor s of the adapter's contribution.
func (c LoRAConfig) Scale() float64 {
	if c.RSLoRA {
		return c.Alpha / math.Sqrt(float64(c.Rank))
	}
	return c.Alpha / float64(c.Rank)
}

// loraLayout lists an adapter's tensors (PEFT names) and where each one applies.
type loraLayout struct {
	cfg    LoRAConfig
	names  []string // A then B of each (layer, module), PEFT key names
	shapes [][]int
	at     [][numMods]int // index of A per layer and module (B is the next one); -1 = no adapter
	sig    string         // identifies the graphs this layout compiles to
}

// pathOf is the PEFT key prefix of a layer's module ("base_model.model.model.layers.3.mlp.up_proj").
func pathOf(layer, mod int) string {
	block := "self_attn"
	if mod >= modGate {
		block = "mlp"
	}
	return fmt.Sprintf("base_model.model.model.layers.%d.%s.%s", layer, block, LoRAModules[mod])
}

// baseWeight is the index of a module's base weight in the model layout.
func (l *layout) baseWeight(layer, mod int) int {
	li := l.layers[layer]
	return [numMods]int{li.q, li.k, li.v, li.o, li.gate, li.up, li.down}[mod]
}

// newLoRALayout places an adapter on every layer's target modules for which has(layer, mod) holds
// (nil: all of them).
func newLoRALayout(lay *layout, c LoRAConfig, has func(layer, mod int) bool) *loraLayout {
	al := &loraLayout{cfg: c}
	var sig strings.Builder
	fmt.Fprintf(&sig, "lora_r%d_s%x", c.Rank, math.Float64bits(c.Scale()))
	for l := range lay.layers {
		var at [numMods]int
		sig.WriteByte('_')
		for mod := 0; mod < numMods; mod++ {
			at[mod] = -1
			if !slices.Contains(c.Targets, LoRAModules[mod]) || (has != nil && !has(l, mod)) {
				continue
			}
			ws := lay.shapes[lay.baseWeight(l, mod)] // [out, in]
			at[mod] = len(al.names)
			al.names = append(al.names, pathOf(l, mod)+".lora_A.weight", pathOf(l, mod)+".lora_B.weight")
			al.shapes = append(al.shapes, []int{c.Rank, ws[1]}, []int{ws[0], c.Rank})
			sig.WriteByte('a' + byte(mod))
		}
		al.at = append(al.at, at)
	}
	al.sig = sig.String()
	return al
}

// proj is a linear layer with its adapter, if any: x·Wᵀ (+b) + s·dropout(x)·Aᵀ·Bᵀ.
func (n *net) proj(layer, mod int, x, w, b *Node) *Node {
	y := n.linear(x, w, b)
	if n.al == nil {
		return y
	}
	i := n.al.at[layer][mod]
	if i < 0 {
		return y
	}
	if p := n.al.cfg.Dropout; n.rng != nil && p > 0 {
		var u *Node
		n.rng, u = RandomUniform(n.rng, x.Shape())
		x = Where(GreaterOrEqual(u, Scalar(x.Graph(), dtypes.Float32, p)), MulScalar(x, 1/(1-p)), ZerosLike(x))
	}
	d := n.linear(n.linear(x, n.a[i], nil), n.a[i+1], nil)
	return Add(y, MulScalar(d, n.al.cfg.Scale()))
}

// trainable are the tensors a Trainer updates: the adapter's when there is one, else every weight.
func (n *net) trainable() []*Node {
	if n.al != nil {
		return n.a
	}
	return n.p
}

// adapter is a model's LoRA adapter: its layout and its weights (float32, in layout order).
type adapter struct {
	lay    *loraLayout
	params []*tensors.Tensor
}

// HasAdapter reports whether the model carries a LoRA adapter.
func (m *Model) HasAdapter() bool { return m.lora != nil }

// AdapterConfig returns the adapter's configuration; ok is false without an adapter.
func (m *Model) AdapterConfig() (c LoRAConfig, ok bool) {
	if m.lora == nil {
		return LoRAConfig{}, false
	}
	return m.lora.lay.cfg, true
}

// NumAdapterParams is the number of trainable scalars of the adapter (0 without one).
func (m *Model) NumAdapterParams() int {
	if m.lora == nil {
		return 0
	}
	n := 0
	for _, s := range m.lora.lay.shapes {
		n += prod(s)
	}
	return n
}

// AddAdapter returns a model that shares m's weights (no copy) and carries a new adapter: A drawn
// as PEFT does (kaiming-uniform with a=√5, i.e. U(−1/√in, 1/√in), from cfg.Seed) and B = 0, so that
// its outputs equal m's exactly until the first update. m must not carry an adapter.
func (m *Model) AddAdapter(cfg LoRAConfig) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m.lora != nil {
		return nil, fmt.Errorf("lora: the model already carries an adapter")
	}
	al := newLoRALayout(m.lay, cfg, nil)
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6c6f7261)) // "lora"
	host := make([][]float32, len(al.names))
	for i := 0; i < len(al.names); i += 2 {
		a := make([]float32, prod(al.shapes[i]))
		bound := 1 / math.Sqrt(float64(al.shapes[i][1]))
		for j := range a {
			a[j] = float32((2*rng.Float64() - 1) * bound)
		}
		host[i], host[i+1] = a, make([]float32, prod(al.shapes[i+1]))
	}
	return m.withAdapter(al, host), nil
}

// withAdapter is a view of m's weights plus an adapter with the given host weights.
func (m *Model) withAdapter(al *loraLayout, host [][]float32) *Model {
	v := m.view()
	ad := &adapter{lay: al, params: make([]*tensors.Tensor, len(host))}
	for i, w := range host {
		ad.params[i] = tensors.FromFlatDataAndDimensions(w, al.shapes[i]...)
	}
	v.lora = ad
	return v
}

// view is a Model that shares m's weight tensors. The shared weights are frozen: a Trainer refuses
// a view without an adapter, and with an adapter it updates only the adapter.
func (m *Model) view() *Model {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return &Model{cfg: m.cfg, lay: m.lay, g: m.g, params: slices.Clone(m.params), rawConfig: m.rawConfig,
		rawGen: m.rawGen, dtype: m.dtype, shared: true}
}

// Base returns the model without its adapter: the same weight tensors, no copy. It is the
// reference model of a LoRA run (the KL term's π_ref) and cannot be trained itself.
func (m *Model) Base() *Model {
	v := m.view()
	return v
}

// adapterHost copies the adapter's weights to Go slices.
func (m *Model) adapterHost() (host [][]float32, err error) {
	defer recoverErr(&err, "read adapter")
	m.mu.RLock()
	defer m.mu.RUnlock()
	host = make([][]float32, len(m.lora.params))
	for i, t := range m.lora.params {
		if host[i], err = tensors.CopyFlatData[float32](t); err != nil {
			return nil, err
		}
	}
	return host, nil
}

// Merged returns a new model (its own weights) with the adapter folded in: W' = W + s·B·A,
// accumulated in float64 and rounded once to float32.
func (m *Model) Merged() (*Model, error) {
	if m.lora == nil {
		return nil, fmt.Errorf("lora merge: the model carries no adapter")
	}
	host, err := m.hostParams()
	if err != nil {
		return nil, err
	}
	ah, err := m.adapterHost()
	if err != nil {
		return nil, err
	}
	al := m.lora.lay
	s := al.cfg.Scale()
	r := al.cfg.Rank
	for l, at := range al.at {
		for mod, i := range at {
			if i < 0 {
				continue
			}
			wi := m.lay.baseWeight(l, mod)
			out, in := m.lay.shapes[wi][0], m.lay.shapes[wi][1]
			w := host[wi] // a fresh copy already
			a, b := ah[i], ah[i+1]
			for o := 0; o < out; o++ {
				for j := 0; j < in; j++ {
					var sum float64
					for k := 0; k < r; k++ {
						sum += float64(b[o*r+k]) * float64(a[k*in+j])
					}
					w[o*in+j] = float32(float64(w[o*in+j]) + s*sum)
				}
			}
			host[wi] = w
		}
	}
	mm, err := newModel(m.cfg, host)
	if err != nil {
		return nil, err
	}
	mm.rawConfig, mm.rawGen, mm.dtype = m.rawConfig, m.rawGen, m.dtype
	return mm, nil
}
