// Package objective holds the policy-optimization objectives of polo: advantage estimators, importance
// ratios, clipping and soft gates, KL estimators, loss aggregation, sample/token filters, and named
// presets (grpo, dapo, gspo, sapo, ppo, …) built from them.
//
// Everything works on plain float64 arrays of one batch (rows = responses, columns = response tokens),
// with no model and no graph: an objective returns the loss value and dLoss/dlogp for every token, and
// the trainer backpropagates the surrogate Σ stopgrad(g)·logp through the model, which has exactly that
// gradient. This keeps every method testable with finite differences. The math of every method is in
// docs/objectives.md.
//
// The trainer's contract:
//
//  1. Every objective declares Inputs(); the trainer provides each declared input or refuses the
//     objective before training. Optional inputs are the InputSpec collection (InputSpecs).
//  2. On the whole rollout batch (all groups, LogP = OldLogP unless it has fresher values, Step set),
//     call Prepare: advantages, the row/token selection and whole-batch targets in one call; Apply
//     puts them on the batch.
//  3. For each PPO epoch and mini-batch (Batch.Subset of the kept rows), set the current LogP (and
//     Entropy where used) and call Loss. When a mini-batch is split into micro-batches, set NormTokens
//     and NormRows to the counts of the whole mini-batch so the micro-batch losses and gradients sum
//     to the whole (see Batch).
//  4. Objectives implementing Stateful (spo, hapo) persist MarshalState in checkpoints; those
//     implementing BatchObserver are told once per RL step, after its optimizer steps; those
//     implementing Tempering set the sampler's per-token temperature; ExpertMixer objectives take
//     expert rows in each mini-batch.
package objective

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Batch holds the arrays of one batch. Rows are responses, columns are response tokens (right-padded,
// all rows the same width). Only LogP, OldLogP and Mask are always required; every other field is
// read only by the methods that say so, and is nil otherwise.
type Batch struct {
	LogP    [][]float64 // log π_θ of each sampled token under the current policy; the differentiable input
	OldLogP [][]float64 // same tokens under the behaviour policy that produced them (π_old)
	RefLogP [][]float64 // same tokens under the frozen reference policy; needed when beta > 0
	Mask    [][]float64 // 1 for tokens that take part in the loss, 0 for padding, tool output, filtered tokens

	Rewards    []float64   // scalar reward per response (the combined reward)
	Advantages [][]float64 // per-token advantages; when set, Loss uses them and Advantages is not called
	Group      []int       // group id per response: the responses of one prompt share it
	PromptID   []string    // stable prompt key per response (spo's value tracker)
	Entropy    [][]float64 // per-token entropy (nats) of the full next-token distribution (hapo, gtpo, d3s, dcpo, entropy_coef)
	Values     [][]float64 // critic value per token (ppo with GAE)
	Truncated  []bool      // response hit the length limit without EOS (overlong filter)
	Lengths    []int       // response length in tokens (overlong shaping); defaults to the mask sum

	// TokenRewards are optional dense per-token rewards added to the outcome reward at the last valid
	// token (ppo, reinforce++); nil means only Rewards.
	TokenRewards [][]float64
	// RewardComponents[i][k] is the k-th reward component of response i (bnpo with decompose=true).
	RewardComponents [][]float64
	// TokenIDs are the sampled token ids (gtpo's conflict tokens).
	TokenIDs [][]int
	// ProxyLogP is log π_proxy of the sampled token under lp_reg's min-p proxy of the old policy
	// (see MinPProxyLogP); -Inf where the proxy filtered the token out.
	ProxyLogP [][]float64
	// TargetRatio is dcpo's second ratio q = π_old^{T_tgt}(o)/π_old(o) per token, computed from the old
	// policy's logits at the temperature given by DCPO.TargetTemperature.
	TargetRatio [][]float64
	// Segments describe segment_spo's Monte-Carlo values per response (see Segment).
	Segments [][]Segment
	// GradWeight is oblr's per-response weight w_i ≈ ‖∇ log π(o_i)‖² (e.g. SeqGradNormProxy).
	GradWeight []float64
	// MeanEntropy is the policy's mean token entropy measured at the previous update (dcpo).
	MeanEntropy float64
	// BoundTarget is gbpo's target ratio per token, computed with GBPO.Targets on the whole rollout
	// batch and sliced like Advantages; when nil, Loss computes it from Rewards and Group (the batch
	// must then hold whole groups).
	BoundTarget [][]float64
	// Drift[i] is spo's policy drift for response i's prompt: the mean over tokens of
	// |log π_now(y) - log π_then(y)| on the response y stored at the prompt's previous visit, π_then
	// the policy right after that visit's update and π_now the policy after this step's update (0 on
	// a first visit). The trainer fills it before AfterBatch; read by SPO.AfterBatch.
	Drift []float64
	// Step is the 1-based RL step (rollout batch) this batch belongs to, for schedules (d3s keep
	// ratios, chord's μ, bupo phases); 0 outside training (polo objective without "step").
	Step int

	// Extra holds the inputs registered with RegisterExtraInput, by name: a new method's input needs
	// no field here (see docs/objectives.md, "Adding a method with a new input").
	Extra map[string]any

	// NormTokens, when > 0, is the number of valid tokens of the whole optimizer mini-batch this batch
	// is a micro-batch of (token-mean normaliser). NormRows likewise counts its non-empty rows
	// (sequence-mean modes) or, for seq-sum-const, all rows. Zero means this batch is the whole.
	NormTokens float64
	NormRows   float64
}

// Subset returns a batch with the given rows of every per-row and per-token input (sharing the row
// slices) and the same scalars: how the trainer drops filtered rows or cuts mini-batches.
func (b *Batch) Subset(rows []int) *Batch {
	out := &Batch{NormTokens: b.NormTokens, NormRows: b.NormRows}
	out.LogP = pickRows(b.LogP, rows).([][]float64)
	out.OldLogP = pickRows(b.OldLogP, rows).([][]float64)
	out.Mask = pickRows(b.Mask, rows).([][]float64)
	for _, s := range inputSpecs {
		if s.Alias == "" {
			s.Set(out, pickRows(s.Get(b), rows))
		}
	}
	return out
}

// Segment is one boundary of segment_spo's chain partition: after token index End (-1 = the prompt
// state) the Monte-Carlo value estimate is Value (mean reward of K continuations from that prefix).
type Segment struct {
	End   int     `json:"end"`
	Value float64 `json:"value"`
	// Scale > 0 divides the advantage of the segment that starts after this boundary (SPO-tree's
	// grpo mode: the std of this node's children's values + 1e-8); 0 = 1.
	Scale float64 `json:"scale,omitempty"`
}

// Result is what Loss returns.
type Result struct {
	Loss        float64
	GradLogP    [][]float64        // dLoss/dLogP, same shape as LogP, 0 at masked positions
	GradEntropy [][]float64        // dLoss/dEntropy; nil unless the method uses the entropy in the loss
	Metrics     map[string]float64 // clip_frac_low, clip_frac_high, ratio_mean/min/max, kl, entropy, …
}

// Objective is one policy-optimization method.
type Objective interface {
	// Inputs declares the inputs the objective cannot do without (In* names, sorted): the trainer
	// provides each or refuses the objective before training.
	Inputs() []string
	// Advantages computes per-token advantages over a whole rollout batch (group statistics need whole
	// groups). It may read LogP, OldLogP and RefLogP (kl_in=reward) but never changes the batch.
	Advantages(b *Batch) ([][]float64, error)
	// Loss computes the loss, its gradients and metrics for one (mini-)batch whose Advantages are set.
	Loss(b *Batch) (Result, error)
}

// Selection says which rows and tokens of a rollout batch take part in the loss.
type Selection struct {
	Keep  []bool             // per response; false drops it (and its tokens) from the loss
	Mask  [][]float64        // token mask to multiply into Batch.Mask; nil means unchanged
	Stats map[string]float64 // e.g. dropped_groups, dropped_truncated
}

// Selector is implemented by objectives that filter data before the loss (dynamic sampling of
// all-equal groups, overlong filtering, D³S down-sampling, segment_spo's probability mask). The trainer
// calls it on the whole rollout batch after Advantages; adv are those advantages.
type Selector interface {
	Select(b *Batch, adv [][]float64) (Selection, error)
}

// Stateful is implemented by objectives with state that must survive a checkpoint (spo's tracker).
type Stateful interface {
	MarshalState() ([]byte, error)
	UnmarshalState([]byte) error
}

// BatchObserver is implemented by objectives whose state advances once per RL step (spo's tracker,
// hapo's sampling-temperature statistics). The trainer calls AfterBatch once per RL step, after all the
// optimizer steps on that rollout batch, with the whole rollout batch (its Step set, and Drift filled
// when the objective declares it). The returned metrics are logged with the step.
type BatchObserver interface {
	AfterBatch(b *Batch) (map[string]float64, error)
}

// Tempering is implemented by objectives that set the sampling temperature per generated token
// (hapo's adaptive temperature). The trainer hands the rule to the sampler for every rollout.
type Tempering interface {
	// TokenTemperature returns the temperature of a token sampled where the model's next-token
	// entropy is h, given the configured base temperature; nil means the base temperature (for
	// example before any statistics exist).
	TokenTemperature(base float64) func(h float64) float64
}

// Declares reports whether o declares the input name.
func Declares(o Objective, name string) bool {
	for _, n := range o.Inputs() {
		if n == name {
			return true
		}
	}
	return false
}

// ErrBadInput marks errors caused by the batch contents (ragged arrays, NaN, missing fields).
var ErrBadInput = errors.New("bad input")

func badInput(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, a...))
}

// ---- registry -------------------------------------------------------------------------------------

// Params are a preset's parameters by snake_case name, as text (the form of --set k=v and config files).
type Params map[string]string

// presetTable is a registry of named builders with default parameters; kind names it in errors.
type presetTable[T any] struct {
	kind    string
	entries map[string]presetEntry[T]
}

type presetEntry[T any] struct {
	summary  string
	defaults Params
	build    func(Params) (T, error)
}

func (t *presetTable[T]) add(name, summary string, defaults Params, build func(Params) (T, error)) {
	if _, dup := t.entries[name]; dup {
		panic("objective: " + t.kind + " registered twice: " + name)
	}
	t.entries[name] = presetEntry[T]{summary: summary, defaults: defaults, build: build}
}

// build makes the preset name with its defaults overridden by overrides. An unknown name or
// parameter, or a value that does not parse, is an error naming it.
func (t *presetTable[T]) build(name string, overrides map[string]string) (T, error) {
	o, _, err := t.resolve(name, overrides)
	return o, err
}

// resolve builds the preset and returns it with every parameter's value (defaults and overrides).
func (t *presetTable[T]) resolve(name string, overrides map[string]string) (T, Params, error) {
	var zero T
	p, ok := t.entries[name]
	if !ok {
		return zero, nil, fmt.Errorf("unknown %s %q (known: %s)", t.kind, name, strings.Join(t.names(), ", "))
	}
	params := Params{}
	for k, v := range p.defaults {
		params[k] = v
	}
	for k, v := range overrides {
		if _, ok := p.defaults[k]; !ok {
			return zero, nil, fmt.Errorf("objective %s: unknown parameter %q (known: %s)", name, k, strings.Join(sortedKeys(p.defaults), ", "))
		}
		params[k] = v
	}
	o, err := p.build(params)
	if err != nil {
		return zero, nil, fmt.Errorf("objective %s: %w", name, err)
	}
	return o, params, nil
}

func (t *presetTable[T]) names() []string { return sortedKeys(t.entries) }

func (t *presetTable[T]) describe(name string) (summary string, defaults Params, ok bool) {
	p, ok := t.entries[name]
	if !ok {
		return "", nil, false
	}
	d := Params{}
	for k, v := range p.defaults {
		d[k] = v
	}
	return p.summary, d, true
}

var registry = presetTable[Objective]{kind: "objective", entries: map[string]presetEntry[Objective]{}}

// Register adds a named preset. It is called from init functions; a duplicate name is a programming
// error and panics.
func Register(name, summary string, defaults Params, build func(Params) (Objective, error)) {
	registry.add(name, summary, defaults, build)
}

// New builds the preset name with its defaults overridden by overrides. An unknown name or parameter,
// or a value that does not parse, is an error naming it.
func New(name string, overrides map[string]string) (Objective, error) {
	return registry.build(name, overrides)
}

// Resolve returns every parameter of the preset (or preference loss) name — its defaults with
// overrides applied — after checking that they build: what a run records as its algo.set.
func Resolve(name string, overrides map[string]string) (Params, error) {
	if IsPair(name) {
		_, p, err := pairRegistry.resolve(name, overrides)
		return p, err
	}
	_, p, err := registry.resolve(name, overrides)
	return p, err
}

// Names lists the registered presets in sorted order.
func Names() []string { return registry.names() }

// Describe returns a preset's one-line summary and a copy of its default parameters.
func Describe(name string) (summary string, defaults Params, ok bool) {
	return registry.describe(name)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// reader parses typed values out of Params, remembering the first error.
type reader struct {
	p   Params
	err error
}

func (r *reader) fail(name, v, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("parameter %s=%q: want %s", name, v, want)
	}
}

func (r *reader) float(name string) float64 {
	v := r.p[name]
	f, err := parseFloat(v)
	if err != nil || math.IsNaN(f) {
		r.fail(name, v, "a number")
	}
	return f
}

func (r *reader) int(name string) int {
	f := r.float(name)
	if f != math.Trunc(f) {
		r.fail(name, r.p[name], "an integer")
	}
	return int(f)
}

func (r *reader) bool(name string) bool {
	switch strings.ToLower(r.p[name]) {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	}
	r.fail(name, r.p[name], "true or false")
	return false
}

func (r *reader) oneOf(name string, choices ...string) string {
	v := r.p[name]
	for _, c := range choices {
		if v == c {
			return v
		}
	}
	r.fail(name, v, "one of "+strings.Join(choices, "|"))
	return choices[0]
}

func parseFloat(s string) (float64, error) {
	return strconv.ParseFloat(strings.TrimSpace(s), 64)
}
