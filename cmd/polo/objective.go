package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/polo-rl/polo/objective"
)

func init() {
	register("objective", "evaluate one objective on a JSON batch: loss, dLoss/dlogp, metrics", runObjective)
}

// objectiveHelp documents the batch JSON of the token-level objectives.
const objectiveHelp = `Usage: polo objective --algo NAME [--set key=value]... < batch.json
       polo objective --list

Reads one JSON batch (rows = responses, columns = response tokens, all rows the same width) and prints
{"loss": …, "grad_logp": [[…]], "grad_entropy": [[…]] (when used), "advantages": [[…]], "metrics": {…}}.
grad_logp is dLoss/dlogp per token. When "advantages" is absent they are computed from the rewards
(group statistics over the whole input), the preset's filters (dynamic sampling, overlong filtering, …)
are applied (dropped rows get zero gradient), then the loss is evaluated.

Fields (rows × tokens unless noted):
  logp, old_logp, mask      required; mask entries 0 or 1
  ref_logp                  reference policy (KL with beta > 0; kl_in=reward uses it for the advantages)
  rewards, group            per response: scalar reward, group (prompt) id
  advantages                per token; given, they bypass the estimator and the filters
  entropy                   per-token entropy: hapo, gtpo, d3s, entropy_coef > 0
  values                    critic values: ppo (GAE)
  token_rewards             dense per-token rewards: ppo, reinforce_pp
  truncated, lengths        per response: overlong_filter; overlong shaping (dapo, hapo)
  prompt_id                 per response (string): spo's value tracker
  drift                     per response: spo tracker forgetting (not used by a single evaluation)
  reward_components         per response, a list: bnpo with decompose=true
  token_ids                 sampled token ids: gtpo conflict tokens
  proxy_logp                log-prob of the token under the min-p proxy (null = filtered out): lp_reg
  target_ratio              q = π_old^T(o)/π_old(o) at the target temperature: dcpo (with mean_entropy)
  mean_entropy              scalar: dcpo
  segments                  per response, [{"end": j, "value": v}, …] cutpoint MC values: segment_spo
  grad_weight               per response, ≈ ‖∇log π(o)‖²: oblr
  bound_target              per-token target ratio: gbpo (computed from rewards and group if absent)
  step                      scalar optimizer step: d3s schedule

Common parameters (--set): eps_low, eps_high, dual_clip (0 = off), beta, kl_estimator (k1|k2|k3|abs),
kl_in (loss|reward), agg (token-mean|seq-mean-token-mean|seq-mean-token-sum|seq-sum-const), max_len,
adv_std (group|batch|none), eps_adv, singleton (verl|zero), entropy_coef, dynamic_sampling,
overlong_filter; see --list for each preset's parameters and defaults, and docs/objectives.md.
`

// batchJSON is the JSON form of objective.Batch. Matrices use pointers so that null (proxy_logp's
// filtered tokens) can be told apart.
type batchJSON struct {
	LogP             [][]*float64          `json:"logp"`
	OldLogP          [][]*float64          `json:"old_logp"`
	RefLogP          [][]*float64          `json:"ref_logp"`
	Mask             [][]*float64          `json:"mask"`
	Rewards          []float64             `json:"rewards"`
	Advantages       [][]*float64          `json:"advantages"`
	Group            []int                 `json:"group"`
	PromptID         []string              `json:"prompt_id"`
	Entropy          [][]*float64          `json:"entropy"`
	Values           [][]*float64          `json:"values"`
	TokenRewards     [][]*float64          `json:"token_rewards"`
	Truncated        []bool                `json:"truncated"`
	Lengths          []int                 `json:"lengths"`
	RewardComponents [][]float64           `json:"reward_components"`
	TokenIDs         [][]int               `json:"token_ids"`
	ProxyLogP        [][]*float64          `json:"proxy_logp"`
	TargetRatio      [][]*float64          `json:"target_ratio"`
	MeanEntropy      float64               `json:"mean_entropy"`
	Segments         [][]objective.Segment `json:"segments"`
	GradWeight       []float64             `json:"grad_weight"`
	BoundTarget      [][]*float64          `json:"bound_target"`
	Drift            []float64             `json:"drift"`
	Step             int                   `json:"step"`
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
		fmt.Fprint(stderr, objectiveHelp)
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

// evalObjective runs the trainer's sequence on one batch: advantages (unless given), selection, loss.
// Rows dropped by the selection get zero gradient in the output.
func evalObjective(o objective.Objective, b *objective.Batch) (objectiveOutput, error) {
	rows := make([]int, len(b.Mask))
	for i := range rows {
		rows[i] = i
	}
	metrics := map[string]float64{}
	sub := b
	if b.Advantages == nil {
		adv, err := o.Advantages(b)
		if err != nil {
			return objectiveOutput{}, err
		}
		b.Advantages = adv
		if bt, ok := o.(objective.BoundTargeter); ok && b.BoundTarget == nil {
			if b.BoundTarget, err = bt.BoundTargets(b); err != nil {
				return objectiveOutput{}, err
			}
		}
		if s, ok := o.(objective.Selector); ok {
			sel, err := s.Select(b, adv)
			if err != nil {
				return objectiveOutput{}, err
			}
			rows = rows[:0]
			for i, k := range sel.Keep {
				if k {
					rows = append(rows, i)
				}
			}
			if len(rows) == 0 {
				return objectiveOutput{}, fmt.Errorf("%w: the preset's filters dropped every response (%v)", objective.ErrBadInput, sel.Stats)
			}
			sub = b.Subset(rows)
			if sel.Mask != nil {
				mask := make([][]float64, len(rows))
				for k, i := range rows {
					mask[k] = make([]float64, len(b.Mask[i]))
					for t := range mask[k] {
						mask[k][t] = b.Mask[i][t] * sel.Mask[i][t]
					}
				}
				sub.Mask = mask
			}
			for k, v := range sel.Stats {
				metrics["select_"+k] = v
			}
		}
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

// decodeBatch parses the JSON batch strictly: unknown fields, nulls (except in proxy_logp) and
// trailing data are errors. Shapes and values are checked by the objective.
func decodeBatch(raw []byte) (*objective.Batch, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in batchJSON
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v (NaN and Infinity are not JSON numbers)", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	b := &objective.Batch{Rewards: in.Rewards, Group: in.Group, PromptID: in.PromptID, Truncated: in.Truncated,
		Lengths: in.Lengths, RewardComponents: in.RewardComponents, TokenIDs: in.TokenIDs, MeanEntropy: in.MeanEntropy,
		Segments: in.Segments, GradWeight: in.GradWeight, Drift: in.Drift, Step: in.Step}
	for _, m := range []struct {
		name    string
		src     [][]*float64
		dst     *[][]float64
		nullInf bool
	}{
		{"logp", in.LogP, &b.LogP, false}, {"old_logp", in.OldLogP, &b.OldLogP, false}, {"ref_logp", in.RefLogP, &b.RefLogP, false},
		{"mask", in.Mask, &b.Mask, false}, {"advantages", in.Advantages, &b.Advantages, false}, {"entropy", in.Entropy, &b.Entropy, false},
		{"values", in.Values, &b.Values, false}, {"token_rewards", in.TokenRewards, &b.TokenRewards, false},
		{"proxy_logp", in.ProxyLogP, &b.ProxyLogP, true}, {"target_ratio", in.TargetRatio, &b.TargetRatio, false},
		{"bound_target", in.BoundTarget, &b.BoundTarget, false},
	} {
		if m.src == nil {
			continue
		}
		*m.dst = make([][]float64, len(m.src))
		for i, row := range m.src {
			(*m.dst)[i] = make([]float64, len(row))
			for t, v := range row {
				switch {
				case v != nil:
					(*m.dst)[i][t] = *v
				case m.nullInf:
					(*m.dst)[i][t] = math.Inf(-1)
				default:
					return nil, fmt.Errorf("%s[%d][%d] is null: want a number", m.name, i, t)
				}
			}
		}
	}
	if b.Mask == nil {
		return nil, fmt.Errorf("mask: missing (rows × tokens of 0/1)")
	}
	return b, nil
}
