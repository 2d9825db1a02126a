package objective

import (
	"fmt"
	"math"
	"sort"
)

// Input names. Every objective declares (Objective.Inputs) the inputs it cannot do without; the
// trainer provides each or refuses the objective before training, and `polo objective` reads them
// from the batch JSON under these names.
const (
	InLogP             = "logp"
	InOldLogP          = "old_logp"
	InRefLogP          = "ref_logp"
	InMask             = "mask"
	InRewards          = "rewards"
	InGroup            = "group"
	InAdvantages       = "advantages"
	InPromptID         = "prompt_id"
	InEntropy          = "entropy"
	InValues           = "values"
	InTokenRewards     = "token_rewards"
	InTruncated        = "truncated"
	InLengths          = "lengths"
	InRewardComponents = "reward_components"
	InTokenIDs         = "token_ids"
	InProxyLogP        = "proxy_logp"
	InTargetRatio      = "target_ratio"
	InMeanEntropy      = "mean_entropy"
	InSegments         = "segments"
	InGradWeight       = "grad_weight"
	InBoundTarget      = "bound_target"
	InDrift            = "drift"
	InStep             = "step"
	// InTeacherLogP is distill's teacher: the teacher's log-probs of the sampled tokens, carried in
	// ref_logp (declared so that the trainer provides a teacher, not a copy of the policy).
	InTeacherLogP = "teacher_logp"
	// InLayerLogP is bupo's internal-layer policy log-probs, carried in logp and old_logp.
	InLayerLogP = "layer_logp"
)

// Per says what one value of an input belongs to.
type Per string

const (
	PerToken Per = "token" // rows × tokens, the mask's shape
	PerRow   Per = "row"   // one value (or list) per response
	PerBatch Per = "batch" // one scalar
)

// InputSpec describes one optional input of a Batch: the collection that Subset, the checks, the JSON
// decoder, the finite-difference tests and the trainer iterate over.
type InputSpec struct {
	Name string
	Per  Per
	Doc  string // what it is and who reads it (polo objective --help)
	// NegInf allows -Inf entries (JSON null); Alias names the input whose array carries it (it is
	// not a separate JSON field).
	NegInf bool
	Alias  string
	// Get and Set read and write the value in a Batch: [][]float64, []float64, []int, []bool,
	// []string, [][]int, [][]Segment, float64 or int, nil (or zero) when absent.
	Get func(*Batch) any
	Set func(*Batch, any)

	extra bool // kept in Batch.Extra (RegisterExtraInput)
}

var inputSpecs = map[string]InputSpec{}

// RegisterInput adds an input to the collection (from an init function, next to the method that
// reads it); a duplicate name panics.
func RegisterInput(s InputSpec) {
	if _, dup := inputSpecs[s.Name]; dup {
		panic("objective: input registered twice: " + s.Name)
	}
	inputSpecs[s.Name] = s
}

// RegisterExtraInput registers an input kept in Batch.Extra under name; zero is its Go type's empty
// value ([][]float64(nil) for a per-token array, []float64(nil) per row, 0.0 for a scalar). The
// collection then subsets, checks (shape, finite values), decodes from JSON and fills in the FD tests.
func RegisterExtraInput(name string, per Per, doc string, zero any) {
	RegisterInput(InputSpec{Name: name, Per: per, Doc: doc, extra: true,
		Get: func(b *Batch) any {
			if v, ok := b.Extra[name]; ok && v != nil {
				return v
			}
			return zero
		},
		Set: func(b *Batch, v any) {
			if b.Extra == nil {
				b.Extra = map[string]any{}
			}
			b.Extra[name] = v
		}})
}

// checkExtra checks the shape and values of the Batch.Extra inputs present, and that the needed ones
// are there.
func checkExtra(b *Batch, needed ...string) error {
	for _, name := range needed {
		if !Present(b, name) {
			return badInput("%s: missing (this objective needs it)", name)
		}
	}
	for _, name := range sortedKeys(b.Extra) {
		s, ok := inputSpecs[name]
		if !ok || !s.extra {
			return badInput("%s: not a registered input", name)
		}
		switch v := s.Get(b).(type) {
		case [][]float64:
			if s.Per == PerToken && v != nil {
				if err := checkMatrix(name, v, b.Mask, s.NegInf); err != nil {
					return err
				}
			}
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return badInput("%s = %v: want a finite number", name, v)
			}
		}
		if s.Per == PerRow && lenOf(s.Get(b)) > 0 && lenOf(s.Get(b)) != len(b.Mask) {
			return badInput("%s: %d entries, mask has %d rows", name, lenOf(s.Get(b)), len(b.Mask))
		}
	}
	return nil
}

// InputSpecs lists the optional inputs, sorted by name.
func InputSpecs() []InputSpec {
	out := make([]InputSpec, 0, len(inputSpecs))
	for _, k := range sortedKeys(inputSpecs) {
		out = append(out, inputSpecs[k])
	}
	return out
}

// LookupInput returns the spec of an optional input.
func LookupInput(name string) (InputSpec, bool) {
	s, ok := inputSpecs[name]
	return s, ok
}

// Present reports whether the batch carries input name (a core array, or an optional input with a
// non-empty value or a non-zero scalar).
func Present(b *Batch, name string) bool {
	switch name {
	case InLogP:
		return b.LogP != nil
	case InOldLogP:
		return b.OldLogP != nil
	case InMask:
		return b.Mask != nil
	}
	s, ok := inputSpecs[name]
	if !ok {
		return false
	}
	if s.Alias != "" {
		return Present(b, s.Alias)
	}
	switch v := s.Get(b).(type) {
	case float64:
		return v != 0
	case int:
		return v != 0
	case nil:
		return false
	default:
		return lenOf(v) > 0
	}
}

func lenOf(v any) int {
	switch x := v.(type) {
	case [][]float64:
		return len(x)
	case []float64:
		return len(x)
	case []int:
		return len(x)
	case []bool:
		return len(x)
	case []string:
		return len(x)
	case [][]int:
		return len(x)
	case [][]Segment:
		return len(x)
	}
	panic(fmt.Sprintf("objective: input of unsupported type %T", v))
}

// pickRows returns the given rows of a per-row or per-token value (sharing row slices); scalars are
// shared by every row and returned as they are.
func pickRows(v any, rows []int) any {
	switch x := v.(type) {
	case [][]float64:
		return rowsOf(x, rows)
	case []float64:
		return rowsOf(x, rows)
	case []int:
		return rowsOf(x, rows)
	case []bool:
		return rowsOf(x, rows)
	case []string:
		return rowsOf(x, rows)
	case [][]int:
		return rowsOf(x, rows)
	case [][]Segment:
		return rowsOf(x, rows)
	}
	return v
}

func rowsOf[T any](x []T, rows []int) []T {
	if x == nil {
		return nil
	}
	out := make([]T, len(rows))
	for k, i := range rows {
		out[k] = x[i]
	}
	return out
}

// declared returns the sorted union of input name lists.
func declared(lists ...[]string) []string {
	seen := map[string]bool{}
	for _, l := range lists {
		for _, n := range l {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func init() {
	mat := func(name string, per Per, doc string, get func(*Batch) any, set func(*Batch, any)) {
		RegisterInput(InputSpec{Name: name, Per: per, Doc: doc, Get: get, Set: set})
	}
	mat(InRefLogP, PerToken, "reference policy's log-probs (KL with beta > 0; kl_in=reward uses it for the advantages)",
		func(b *Batch) any { return b.RefLogP }, func(b *Batch, v any) { b.RefLogP = v.([][]float64) })
	mat(InRewards, PerRow, "scalar reward per response",
		func(b *Batch) any { return b.Rewards }, func(b *Batch, v any) { b.Rewards = v.([]float64) })
	mat(InGroup, PerRow, "group (prompt) id per response",
		func(b *Batch) any { return b.Group }, func(b *Batch, v any) { b.Group = v.([]int) })
	mat(InAdvantages, PerToken, "per-token advantages; given, they bypass the estimator and the filters",
		func(b *Batch) any { return b.Advantages }, func(b *Batch, v any) { b.Advantages = v.([][]float64) })
	mat(InPromptID, PerRow, "stable prompt key per response (string): spo's value tracker",
		func(b *Batch) any { return b.PromptID }, func(b *Batch, v any) { b.PromptID = v.([]string) })
	mat(InEntropy, PerToken, "per-token entropy of the next-token distribution: hapo, gtpo, d3s, entropy_coef > 0",
		func(b *Batch) any { return b.Entropy }, func(b *Batch, v any) { b.Entropy = v.([][]float64) })
	mat(InValues, PerToken, "critic values: ppo (GAE)",
		func(b *Batch) any { return b.Values }, func(b *Batch, v any) { b.Values = v.([][]float64) })
	mat(InTokenRewards, PerToken, "dense per-token rewards: ppo, reinforce_pp, rto (DPO part), otr",
		func(b *Batch) any { return b.TokenRewards }, func(b *Batch, v any) { b.TokenRewards = v.([][]float64) })
	mat(InTruncated, PerRow, "response hit the length limit: overlong_filter",
		func(b *Batch) any { return b.Truncated }, func(b *Batch, v any) { b.Truncated = v.([]bool) })
	mat(InLengths, PerRow, "response length in tokens: overlong shaping (dapo, hapo)",
		func(b *Batch) any { return b.Lengths }, func(b *Batch, v any) { b.Lengths = v.([]int) })
	mat(InRewardComponents, PerRow, "per response, a list of reward components: bnpo with decompose=true",
		func(b *Batch) any { return b.RewardComponents }, func(b *Batch, v any) { b.RewardComponents = v.([][]float64) })
	mat(InTokenIDs, PerToken, "sampled token ids: gtpo conflict tokens",
		func(b *Batch) any { return b.TokenIDs }, func(b *Batch, v any) { b.TokenIDs = v.([][]int) })
	RegisterInput(InputSpec{Name: InProxyLogP, Per: PerToken, NegInf: true,
		Doc: "log-prob of the token under the min-p proxy (null = filtered out): lp_reg",
		Get: func(b *Batch) any { return b.ProxyLogP }, Set: func(b *Batch, v any) { b.ProxyLogP = v.([][]float64) }})
	mat(InTargetRatio, PerToken, "q = π_old^T(o)/π_old(o) at the target temperature: dcpo (with mean_entropy)",
		func(b *Batch) any { return b.TargetRatio }, func(b *Batch, v any) { b.TargetRatio = v.([][]float64) })
	mat(InMeanEntropy, PerBatch, "scalar, the policy's mean token entropy at the previous update: dcpo",
		func(b *Batch) any { return b.MeanEntropy }, func(b *Batch, v any) { b.MeanEntropy = v.(float64) })
	mat(InSegments, PerRow, `per response, [{"end": j, "value": v, "scale"?: s}, …] cutpoint MC values or tree node values (scale > 0 divides the next segment's advantage): segment_spo`,
		func(b *Batch) any { return b.Segments }, func(b *Batch, v any) { b.Segments = v.([][]Segment) })
	mat(InGradWeight, PerRow, "per response, ≈ ‖∇log π(o)‖²: oblr",
		func(b *Batch) any { return b.GradWeight }, func(b *Batch, v any) { b.GradWeight = v.([]float64) })
	mat(InBoundTarget, PerToken, "per-token target ratio: gbpo (computed from rewards and group if absent)",
		func(b *Batch) any { return b.BoundTarget }, func(b *Batch, v any) { b.BoundTarget = v.([][]float64) })
	mat(InDrift, PerRow, "per response, policy drift on the prompt since its last visit: spo's forgetting (read after the step)",
		func(b *Batch) any { return b.Drift }, func(b *Batch, v any) { b.Drift = v.([]float64) })
	mat(InStep, PerBatch, "scalar, the 1-based RL step: d3s keep-ratio schedule, chord's mu",
		func(b *Batch) any { return b.Step }, func(b *Batch, v any) { b.Step = v.(int) })
	RegisterInput(InputSpec{Name: InTeacherLogP, Per: PerToken, Alias: InRefLogP,
		Doc: "the teacher's log-probs of the sampled tokens, given as ref_logp: distill",
		Get: func(b *Batch) any { return b.RefLogP }, Set: func(b *Batch, v any) { b.RefLogP = v.([][]float64) }})
	RegisterInput(InputSpec{Name: InLayerLogP, Per: PerToken, Alias: InLogP,
		Doc: "an internal layer's policy log-probs, given as logp and old_logp: bupo",
		Get: func(b *Batch) any { return b.LogP }, Set: func(b *Batch, v any) { b.LogP = v.([][]float64) }})
}
