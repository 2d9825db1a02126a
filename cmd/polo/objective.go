package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/polo-rl/polo/objective"
)

func init() {
	register("objective", "evaluate one objective on a JSON batch: loss, dLoss/dlogp, metrics", runObjective)
}

// objectiveHelp documents the batch JSON of the token-level objectives; the optional fields are
// listed from the objective package's input collection (objectiveFields).
const objectiveHelp = `Usage: polo objective --algo NAME [--set key=value]... < batch.json
       polo objective --list

Reads one JSON batch (rows = responses, columns = response tokens, all rows the same width) and prints
{"loss": …, "grad_logp": [[…]], "grad_entropy": [[…]] (when used), "advantages": [[…]], "metrics": {…}}.
grad_logp is dLoss/dlogp per token. When "advantages" is absent they are computed from the rewards
(group statistics over the whole input), the preset's filters (dynamic sampling, overlong filtering, …)
are applied (dropped rows get zero gradient), then the loss is evaluated.

Fields (rows × tokens unless noted):
  logp, old_logp, mask      required; mask entries 0 or 1
%s
Common parameters (--set): eps_low, eps_high, dual_clip (0 = off), beta, kl_estimator (k1|k2|k3|abs),
kl_in (loss|reward), agg (token-mean|seq-mean-token-mean|seq-mean-token-sum|seq-sum-const), max_len,
adv_std (group|batch|none), eps_adv, singleton (verl|zero), entropy_coef, dynamic_sampling,
overlong_filter; see --list for each preset's parameters and defaults, and docs/objectives.md.
`

// objectiveFields lists the optional batch fields, one line each, from the input collection.
func objectiveFields() string {
	var b strings.Builder
	for _, s := range objective.InputSpecs() {
		if s.Alias != "" {
			continue
		}
		per := ""
		switch s.Per {
		case objective.PerRow:
			per = "per response: "
		case objective.PerBatch:
			per = "scalar: "
		}
		fmt.Fprintf(&b, "  %-25s %s%s\n", s.Name, per, s.Doc)
	}
	return b.String()
}

// paramFlags collects repeated --set key=value into a map.
type paramFlags map[string]string

func (s paramFlags) String() string { return "" }

func (s paramFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	s[k] = val
	return nil
}

func runObjective(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("objective", flag.ContinueOnError)
	fs.SetOutput(stderr)
	algo := fs.String("algo", "", "objective preset (see --list)")
	list := fs.Bool("list", false, "list the presets with their parameters and defaults")
	sets := paramFlags{}
	fs.Var(sets, "set", "parameter override key=value; repeatable")
	fs.Usage = func() {
		fmt.Fprintf(stderr, objectiveHelp, objectiveFields())
		fmt.Fprintf(stderr, "\n%s\n\n%s\n", pairObjectiveHelp, distillObjectiveHelp)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q; the batch is read from stdin", fs.Arg(0))
	}
	if *list {
		return listObjectives(stdout)
	}
	if *algo == "" {
		return usagef("need --algo NAME (polo objective --list shows the presets)")
	}
	if slices.Contains(objective.PairNames(), *algo) {
		if err := runPairObjective(*algo, sets, stdin, stdout); err != nil {
			return asUsage(err)
		}
		return nil
	}
	o, err := objective.New(*algo, sets)
	if err != nil {
		return usagef("%v", err)
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	b, err := decodeBatch(raw)
	if err != nil {
		return usagef("batch: %v", err)
	}
	out, err := evalObjective(o, b)
	if err != nil {
		return asUsage(err)
	}
	if err := finiteResult(out); err != nil {
		return usageError{err}
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", enc)
	return err
}

// asUsage turns errors caused by the input batch into usage errors (exit 2).
func asUsage(err error) error {
	if errors.Is(err, objective.ErrBadInput) {
		return usageError{err}
	}
	return err
}

func listObjectives(w io.Writer) error {
	names := append(objective.Names(), objective.PairNames()...)
	sort.Strings(names)
	for _, n := range names {
		if summary, defs, ok := objective.Describe(n); ok {
			keys := make([]string, 0, len(defs))
			for k := range defs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var ps []string
			for _, k := range keys {
				ps = append(ps, k+"="+defs[k])
			}
			fmt.Fprintf(w, "%-22s %s\n%-22s %s\n", n, summary, "", strings.Join(ps, " "))
			continue
		}
		fmt.Fprintf(w, "%-22s preference loss on pairs (see --help)\n", n)
	}
	return nil
}

type objectiveOutput struct {
	Loss        float64            `json:"loss"`
	GradLogP    [][]float64        `json:"grad_logp"`
	GradEntropy [][]float64        `json:"grad_entropy,omitempty"`
	Advantages  [][]float64        `json:"advantages"`
	Metrics     map[string]float64 `json:"metrics"`
}

// evalObjective runs the trainer's sequence on one batch: the whole-batch phase (unless advantages are
// given), then the loss on the kept rows. Rows dropped by the selection get zero gradient in the output.
func evalObjective(o objective.Objective, b *objective.Batch) (objectiveOutput, error) {
	rows := make([]int, len(b.Mask))
	for i := range rows {
		rows[i] = i
	}
	metrics := map[string]float64{}
	sub := b
	if b.Advantages == nil {
		p, err := objective.Prepare(o, b)
		if err != nil {
			return objectiveOutput{}, err
		}
		if b.BoundTarget != nil {
			delete(p.Targets, objective.InBoundTarget) // a given bound_target wins
		}
		given := b.Mask
		b.Mask = make([][]float64, len(given)) // Apply writes the token selection into the mask
		for i := range given {
			b.Mask[i] = append([]float64(nil), given[i]...)
		}
		p.Apply(b)
		if rows = p.Rows(); len(rows) == 0 {
			return objectiveOutput{}, fmt.Errorf("%w: the preset's filters dropped every response (%v)", objective.ErrBadInput, p.Stats)
		}
		sub = b.Subset(rows)
		for k, v := range p.Stats {
			metrics["select_"+k] = v
		}
		b.Mask = given
	}
	res, err := o.Loss(sub)
	if err != nil {
		return objectiveOutput{}, err
	}
	for k, v := range res.Metrics {
		metrics[k] = v
	}
	out := objectiveOutput{Loss: res.Loss, Advantages: b.Advantages, Metrics: finiteMetrics(metrics)}
	out.GradLogP = scatter(res.GradLogP, rows, b.Mask)
	if res.GradEntropy != nil {
		out.GradEntropy = scatter(res.GradEntropy, rows, b.Mask)
	}
	return out, nil
}

// scatter places the kept rows' values back at their input positions; dropped rows are zero.
func scatter(g [][]float64, rows []int, like [][]float64) [][]float64 {
	out := make([][]float64, len(like))
	for i := range out {
		out[i] = make([]float64, len(like[i]))
	}
	for k, i := range rows {
		copy(out[i], g[k])
	}
	return out
}

// finiteMetrics drops non-finite metric values, which JSON cannot carry.
func finiteMetrics(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}

// decodeBatch parses the JSON batch strictly: unknown fields, nulls (except where the input allows
// -Inf) and trailing data are errors. The optional fields are the objective package's input
// collection. Shapes and values are checked by the objective.
func decodeBatch(raw []byte) (*objective.Batch, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var in map[string]json.RawMessage
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v%s", err, nonJSONNumberHint(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	b := &objective.Batch{}
	core := map[string]*[][]float64{objective.InLogP: &b.LogP, objective.InOldLogP: &b.OldLogP, objective.InMask: &b.Mask}
	for _, name := range slices.Sorted(maps.Keys(in)) {
		msg := in[name]
		if dst, ok := core[name]; ok {
			m, err := decodeMatrix(name, msg, false)
			if err != nil {
				return nil, err
			}
			*dst = m
			continue
		}
		spec, ok := objective.LookupInput(name)
		if !ok || spec.Alias != "" {
			return nil, fmt.Errorf("unknown field %q (polo objective --help lists the fields)", name)
		}
		v, err := decodeInput(spec, msg)
		if err != nil {
			return nil, err
		}
		spec.Set(b, v)
	}
	if b.Mask == nil {
		return nil, fmt.Errorf("mask: missing (rows × tokens of 0/1)")
	}
	return b, nil
}

// decodeInput decodes one optional field into the Go type its spec carries.
func decodeInput(spec objective.InputSpec, msg json.RawMessage) (any, error) {
	zero := spec.Get(&objective.Batch{})
	if _, ok := zero.([][]float64); ok && spec.Per == objective.PerToken {
		return decodeMatrix(spec.Name, msg, spec.NegInf)
	}
	// encoding/json leaves a Go number at zero for a JSON null: refuse nulls instead.
	var generic any
	if err := json.Unmarshal(msg, &generic); err == nil && containsNull(generic) {
		return nil, fmt.Errorf("%s contains null: want numbers", spec.Name)
	}
	ptr := reflect.New(reflect.TypeOf(zero))
	if err := json.Unmarshal(msg, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("invalid JSON: %s: %v", spec.Name, err)
	}
	v := ptr.Elem().Interface()
	if r, ok := v.([]float64); ok && spec.Name == objective.InRewards {
		for i, x := range r {
			if math.Abs(x) > maxReward {
				return nil, fmt.Errorf("rewards[%d] = %g: |reward| must be at most %g (group statistics would overflow)", i, x, maxReward)
			}
		}
	}
	return v, nil
}

// maxReward bounds |reward| so that sums of squares over any batch stay finite.
const maxReward = 1e100

// containsNull reports whether a decoded JSON value holds a null anywhere.
func containsNull(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return slices.ContainsFunc(x, containsNull)
	case map[string]any:
		for _, e := range x {
			if containsNull(e) {
				return true
			}
		}
	}
	return false
}

// nonJSONNumberHint explains the decoder's error when the input used NaN or Infinity, which Go and
// Python programs often print but JSON does not allow.
func nonJSONNumberHint(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "invalid character 'N'") || strings.Contains(msg, "invalid character 'I'") ||
		strings.Contains(msg, "invalid character 'n' in literal null") {
		return " (NaN and Infinity are not JSON numbers)"
	}
	return ""
}

// decodeMatrix decodes rows × tokens of numbers; null is -Inf where nullInf, an error otherwise.
func decodeMatrix(name string, msg json.RawMessage, nullInf bool) ([][]float64, error) {
	var src [][]*float64
	if err := json.Unmarshal(msg, &src); err != nil {
		return nil, fmt.Errorf("invalid JSON: %s: %v", name, err)
	}
	if src == nil {
		return nil, nil
	}
	out := make([][]float64, len(src))
	for i, row := range src {
		out[i] = make([]float64, len(row))
		for t, v := range row {
			switch {
			case v != nil:
				out[i][t] = *v
			case nullInf:
				out[i][t] = math.Inf(-1)
			default:
				return nil, fmt.Errorf("%s[%d][%d] is null: want a number", name, i, t)
			}
		}
	}
	return out, nil
}

// finiteResult refuses a result JSON cannot carry (an infinite or NaN loss, gradient or advantage),
// naming where it is: the batch's numbers are too extreme for the objective's parameters.
func finiteResult(out objectiveOutput) error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	if bad(out.Loss) {
		return fmt.Errorf("the loss is %g: the batch's log-probs or rewards are too extreme for this objective's settings", out.Loss)
	}
	for _, m := range []struct {
		name string
		v    [][]float64
	}{{"grad_logp", out.GradLogP}, {"grad_entropy", out.GradEntropy}, {"advantages", out.Advantages}} {
		for i, row := range m.v {
			for t, v := range row {
				if bad(v) {
					return fmt.Errorf("%s[%d][%d] is %g: the batch's log-probs or rewards are too extreme for this objective's settings", m.name, i, t, v)
				}
			}
		}
	}
	return nil
}
