package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/polo-rl/polo/eval"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/train"
	"github.com/polo-rl/polo/value"
)

func init() {
	register("value", "value-based selection (Digi-Q/B-Coder): 'value train' (offline TD critic), 'value eval' (Best-of-N by Q), 'value extract' (Best-of-N policy extraction data)", runValue)
}

const valueUsage = "usage: polo value train --model DIR -o critic.json [--layer L] [--n 8] [--prompts 256] [--gamma 1] [--epochs 30]\n" +
	"       polo value eval --model DIR --critic critic.json [--n 8] [--limit 256]\n" +
	"       polo value extract --model DIR --critic critic.json -o best.jsonl [--n 8] [--prompts 512]"

func runValue(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", valueUsage)
	}
	switch args[0] {
	case "train":
		return valueTrain(args[1:], stdout, stderr)
	case "eval":
		return valueEval(args[1:], stdout, stderr)
	case "extract":
		return valueExtract(args[1:], stdout, stderr)
	}
	return usagef("unknown subcommand %q; %s", args[0], valueUsage)
}

// rollouts samples n responses per prompt (KV-cache decoding, 256 rows per batch).
func rollouts(pol *train.Policy, prompts [][]int32, n int, cfg rollout.Config, seed uint64) ([][]rollout.Completion, error) {
	var out [][]rollout.Completion
	per := max(1, 256/n)
	for s := 0; s < len(prompts); s += per {
		part := prompts[s:min(s+per, len(prompts))]
		maxLen := 0
		for _, p := range part {
			maxLen = max(maxLen, len(p))
		}
		dec, err := pol.Model.NewDecoder(len(part)*n, maxLen+cfg.MaxNewTokens)
		if err != nil {
			return nil, err
		}
		g, err := rollout.SampleGroups(dec, part, n, cfg, seed+uint64(s))
		if err != nil {
			return nil, err
		}
		out = append(out, g...)
	}
	return out, nil
}

// episodeFeatures returns, for each response, the layer-L hidden states of prompt+response at
// every position (one batched pass per 256 rows).
func episodeFeatures(pol *train.Policy, prompts [][]int32, comps [][]rollout.Completion, layer int) ([][][][]float32, error) {
	type ref struct{ i, j int }
	var seqs [][]int32
	var refs []ref
	for i, g := range comps {
		for j, c := range g {
			seqs = append(seqs, append(append([]int32(nil), prompts[i]...), c.Tokens...))
			refs = append(refs, ref{i, j})
		}
	}
	out := make([][][][]float32, len(comps))
	for i := range out {
		out[i] = make([][][]float32, len(comps[i]))
	}
	for s := 0; s < len(seqs); s += 256 {
		part := seqs[s:min(s+256, len(seqs))]
		T := 0
		for _, r := range part {
			T = max(T, len(r))
		}
		ids, mask := make([][]int32, len(part)), make([][]int32, len(part))
		for k, r := range part {
			ids[k], mask[k] = make([]int32, T), make([]int32, T)
			copy(ids[k], r)
			for j := range r {
				mask[k][j] = 1
			}
		}
		h, err := pol.Model.HiddenAt(ids, mask, layer)
		if err != nil {
			return nil, err
		}
		for k := range part {
			r := refs[s+k]
			out[r.i][r.j] = h[k][:len(part[k])]
		}
	}
	return out, nil
}

// valueSetup loads the policy (in a run folder with a synthetic task) and its sampling config.
func valueSetup(dir string, sf *samplingFlags, stderr io.Writer) (*train.Policy, *train.Config, rollout.Config, error) {
	if dir == "" {
		return nil, nil, rollout.Config{}, usagef("need --model DIR")
	}
	pol, run, err := loadPolicy(dir, stderr)
	if err != nil {
		return nil, nil, rollout.Config{}, err
	}
	if run == nil || run.Task.Name == "dataset" {
		return nil, nil, rollout.Config{}, usagef("--model %s must be a checkpoint of a run with a synthetic task", dir)
	}
	cfg, err := sf.config(pol, run)
	return pol, run, cfg, err
}

// trainPrompts draws n fresh prompts of the run's task that are not in its held-out set.
func trainPrompts(pol *train.Policy, run *train.Config, n int, seed uint64) ([]task.Example, [][]int32, error) {
	held, err := heldOut(*run)
	if err != nil {
		return nil, nil, err
	}
	skip := map[string]bool{}
	for _, ex := range held {
		skip[ex.Prompt] = true
	}
	gen, err := task.NewGenerator(run.Task.Name, run.Task.Options, int64(seed)+15485863)
	if err != nil {
		return nil, nil, err
	}
	var exs []task.Example
	for tries := 0; len(exs) < n; tries++ {
		if tries > 100*n+1000 {
			return nil, nil, usagef("task %s gave only %d prompts outside the held-out set", run.Task.Name, len(exs))
		}
		ex, err := gen.Next()
		if err != nil {
			return nil, nil, err
		}
		if !skip[ex.Prompt] {
			skip[ex.Prompt] = true
			exs = append(exs, ex)
		}
	}
	prompts, err := encodeAll(pol, exs)
	return exs, prompts, err
}

func valueTrain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("value train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "policy checkpoint (model folder inside a run folder)")
	layer := fs.Int("layer", -1, "policy layer whose output is the feature (default: the middle layer)")
	n := fs.Int("n", 8, "logged responses per prompt")
	np := fs.Int("prompts", 256, "logged prompts (fresh, outside the held-out set)")
	gamma := fs.Float64("gamma", 1, "discount")
	epochs := fs.Int("epochs", 30, "TD epochs")
	hidden := fs.Int("hidden", 128, "hidden units of the Q and V heads")
	seed := fs.Uint64("seed", 1, "seed")
	out := fs.String("o", "", "output critic (JSON)")
	sf := addSamplingFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *out == "" || fs.NArg() > 0 || *n < 1 || *np < 1 {
		return usagef("value train needs --model DIR -o FILE, --n and --prompts >= 1")
	}
	pol, run, cfg, err := valueSetup(*dir, sf, stderr)
	if err != nil {
		return err
	}
	if *layer < 0 {
		*layer = pol.Model.Config().NumLayers / 2
	}
	exs, prompts, err := trainPrompts(pol, run, *np, *seed)
	if err != nil {
		return err
	}
	comps, err := rollouts(pol, prompts, *n, cfg, *seed)
	if err != nil {
		return err
	}
	feats, err := episodeFeatures(pol, prompts, comps, *layer)
	if err != nil {
		return err
	}
	var ts []value.Transition
	correct := 0
	for i, g := range comps {
		for j, c := range g {
			ok := false
			if chk, err := task.CheckExample(pol.Text(c.Tokens), exs[i]); err == nil && chk.Correct {
				ok = true
				correct++
			}
			ts = append(ts, transitions(feats[i][j], len(prompts[i]), len(c.Tokens), ok, len(ts))...)
		}
	}
	tc := value.TrainConfig{Gamma: *gamma, Tau: 0.01, LR: 1e-3, Epochs: *epochs, BatchSize: 64, Hidden: *hidden, Seed: *seed}
	if err := (flagRange{"--gamma", *gamma, 0, 1}).check(); err != nil {
		return err
	}
	critic, losses, err := value.Train(ts, tc)
	if err != nil {
		return err
	}
	critic.Layer = *layer
	if err := critic.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d responses to %d prompts (%.3f correct), %d transitions, layer %d features; TD loss %.4f → %.4f\nwrote %s\n",
		len(prompts)**n, len(prompts), float64(correct)/float64(len(prompts)**n), len(ts), *layer, losses[0], losses[len(losses)-1], *out)
	return nil
}

type flagRange struct {
	name      string
	v, lo, hi float64
}

func (f flagRange) check() error {
	if !(f.v >= f.lo && f.v <= f.hi) {
		return usagef("%s = %v, want [%v, %v]", f.name, f.v, f.lo, f.hi)
	}
	return nil
}

// transitions turns one response into token-level transitions: state = prompt + t tokens (its
// feature at position promptLen+t−1), action = token t (feature at promptLen+t), reward = 1/0 on
// the last token.
func transitions(h [][]float32, promptLen, n int, correct bool, base int) []value.Transition {
	ts := make([]value.Transition, n)
	for t := range n {
		ts[t] = value.Transition{SA: h[promptLen+t], S: h[promptLen+t-1], Next: base + t + 1}
	}
	ts[n-1].Next = -1
	if correct {
		ts[n-1].Reward = 1
	}
	return ts
}

// qScores returns Q of each response's last action and V of each prompt's state, on the policy's
// features at the critic's layer.
func qScores(pol *train.Policy, critic *value.Critic, prompts [][]int32, comps [][]rollout.Completion) (q [][]float64, v []float64, err error) {
	feats, err := episodeFeatures(pol, prompts, comps, critic.Layer)
	if err != nil {
		return nil, nil, err
	}
	q = make([][]float64, len(comps))
	v = make([]float64, len(comps))
	for i, g := range comps {
		q[i] = make([]float64, len(g))
		for j, c := range g {
			q[i][j] = critic.Q.Eval(feats[i][j][len(prompts[i])+len(c.Tokens)-1])
		}
		if len(g) > 0 {
			v[i] = critic.V.Eval(feats[i][0][len(prompts[i])-1])
		}
	}
	return q, v, nil
}

func loadCritic(path string, pol *train.Policy) (*value.Critic, error) {
	c, err := value.Load(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if err := c.Fits(pol.Model.Config().HiddenSize, pol.Model.Config().NumLayers); err != nil {
		return nil, usagef("%s: %v; use a critic trained on this model (polo value train --model ...)", path, err)
	}
	return c, nil
}

func valueEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("value eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "policy checkpoint (model folder inside a run folder)")
	cpath := fs.String("critic", "", "critic from value train")
	n := fs.Int("n", 8, "candidates per prompt")
	limit := fs.Int("limit", 256, "held-out prompts")
	seed := fs.Uint64("seed", 2, "seed")
	sf := addSamplingFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *cpath == "" || fs.NArg() > 0 || *n < 1 || *limit < 1 {
		return usagef("value eval needs --model DIR --critic FILE")
	}
	pol, run, cfg, err := valueSetup(*dir, sf, stderr)
	if err != nil {
		return err
	}
	critic, err := loadCritic(*cpath, pol)
	if err != nil {
		return err
	}
	exs, err := heldOut(*run)
	if err != nil {
		return err
	}
	exs = exs[:min(*limit, len(exs))]
	prompts, err := encodeAll(pol, exs)
	if err != nil {
		return err
	}
	comps, err := rollouts(pol, prompts, *n, cfg, *seed)
	if err != nil {
		return err
	}
	q, _, err := qScores(pol, critic, prompts, comps)
	if err != nil {
		return err
	}
	examples := make([]eval.Example, len(comps))
	for i, g := range comps {
		examples[i].ID = exs[i].ID
		for j, c := range g {
			var j2 eval.Judgement
			if chk, err := task.CheckExample(pol.Text(c.Tokens), exs[i]); err == nil {
				j2.Correct = chk.Correct
				if chk.Extracted != "" {
					a := chk.Extracted
					j2.Answer = &a
				}
			}
			smp := eval.FromCompletion(c, j2)
			smp.Q = q[i][j]
			examples[i].Samples = append(examples[i].Samples, smp)
		}
	}
	rep, err := eval.Run(examples, eval.Options{Strategies: append(eval.DefaultStrategies(), eval.QValue()), Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d held-out prompts × %d samples at temperature %g; critic on layer %d\n", len(prompts), *n, cfg.Temperature, critic.Layer)
	return rep.WriteTable(stdout)
}

func valueExtract(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("value extract", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "policy checkpoint (model folder inside a run folder)")
	cpath := fs.String("critic", "", "critic from value train")
	n := fs.Int("n", 8, "candidates per prompt")
	np := fs.Int("prompts", 512, "prompts (fresh, outside the held-out set)")
	seed := fs.Uint64("seed", 3, "seed")
	out := fs.String("o", "", "output JSONL of {question, answer}: the Q-best candidate of each prompt where it beats V")
	sf := addSamplingFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *cpath == "" || *out == "" || fs.NArg() > 0 || *n < 1 || *np < 1 {
		return usagef("value extract needs --model DIR --critic FILE -o FILE")
	}
	pol, run, cfg, err := valueSetup(*dir, sf, stderr)
	if err != nil {
		return err
	}
	critic, err := loadCritic(*cpath, pol)
	if err != nil {
		return err
	}
	exs, prompts, err := trainPrompts(pol, run, *np, *seed)
	if err != nil {
		return err
	}
	comps, err := rollouts(pol, prompts, *n, cfg, *seed)
	if err != nil {
		return err
	}
	q, v, err := qScores(pol, critic, prompts, comps)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	kept, right, first := 0, 0, 0
	for i, g := range comps {
		best, ok := value.BestOfN(q[i], v[i])
		if chk, err := task.CheckExample(pol.Text(g[0].Tokens), exs[i]); err == nil && chk.Correct {
			first++
		}
		text := pol.Text(g[best].Tokens)
		if !ok || strings.TrimSpace(text) == "" { // an empty response is no demonstration
			continue
		}
		kept++
		if chk, err := task.CheckExample(text, exs[i]); err == nil && chk.Correct {
			right++
		}
		if err := enc.Encode(map[string]string{"question": exs[i].Prompt, "answer": text}); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d prompts × %d candidates: kept %d (Q-best beats V, non-empty), of which %.3f correct (a random candidate: %.3f)\nwrote %s\n",
		len(prompts), *n, kept, float64(right)/float64(max(kept, 1)), float64(first)/float64(len(prompts)), *out)
	return nil
}
