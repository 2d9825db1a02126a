package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/polo-rl/polo/instinct"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/train"
)

func init() {
	register("prompt", "'prompt optimize': INSTINCT instruction search (neural bandit on the model's representation of each instruction) vs random search", runPrompt)
}

func runPrompt(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "optimize" {
		return usagef("usage: polo prompt optimize --model DIR [--candidates FILE | --pool 128] [--budget 24] [--val 64]")
	}
	fs := flag.NewFlagSet("prompt optimize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "checkpoint (model folder inside a run folder with a synthetic task)")
	pool := fs.Int("pool", 128, "candidate instructions (demonstration prefixes drawn from the task) when no --candidates file")
	cands := fs.String("candidates", "", "file with one candidate instruction per line (prepended to every prompt)")
	budget := fs.Int("budget", 24, "instructions scored (each one: greedy accuracy on the validation prompts)")
	nval := fs.Int("val", 64, "validation prompts (fresh, outside the held-out set)")
	seed := fs.Uint64("seed", 1, "seed")
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("%v", err)
	}
	if *dir == "" || fs.NArg() > 0 || *budget < 2 || *nval < 1 || *pool < 2 {
		return usagef("prompt optimize needs --model DIR, --budget >= 2, --val >= 1, --pool >= 2")
	}
	pol, run, err := loadPolicy(*dir, stderr)
	if err != nil {
		return err
	}
	if run == nil || run.Task.Name == "dataset" {
		return usagef("--model %s must be a checkpoint of a run with a synthetic task", *dir)
	}
	var instrs []string
	if *cands != "" {
		ds, err := readLines(*cands)
		if err != nil {
			return usagef("%v", err)
		}
		instrs = ds
	} else {
		gen, err := task.NewGenerator(run.Task.Name, run.Task.Options, int64(*seed)+31337)
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(*seed, 11))
		for len(instrs) < *pool {
			var b strings.Builder
			for range 1 + rng.IntN(3) { // 1–3 demonstrations, some with a wrong answer
				ex, err := gen.Next()
				if err != nil {
					return err
				}
				ans := ex.Answer
				if rng.IntN(3) == 0 {
					ans = strings.Map(func(r rune) rune {
						if r >= '0' && r <= '8' {
							return r + 1
						}
						return r
					}, ans)
				}
				b.WriteString(ex.Prompt + ans)
			}
			instrs = append(instrs, b.String())
		}
	}
	val, _, err := trainPrompts(pol, run, *nval, *seed)
	if err != nil {
		return err
	}
	held, err := heldOut(*run)
	if err != nil {
		return err
	}
	held = held[:min(len(held), 256)]
	cfg := rollout.Config{Temperature: 0, MaxNewTokens: run.Sampling.MaxNewTokens, StopTokens: pol.StopTokens()}
	accuracy := func(instr string, exs []task.Example) (float64, error) {
		prompts := make([][]int32, len(exs))
		for i, ex := range exs {
			ex.Prompt = instr + ex.Prompt
			p, err := encodePrompt(pol, ex, false)
			if err != nil {
				return 0, err
			}
			prompts[i] = p
		}
		comps, err := rollouts(pol, prompts, 1, cfg, *seed)
		if err != nil {
			return 0, err
		}
		ok := 0
		for i, g := range comps {
			if c, err := task.CheckExample(pol.Text(g[0].Tokens), exs[i]); err == nil && c.Correct {
				ok++
			}
		}
		return float64(ok) / float64(len(exs)), nil
	}
	reprs, err := instructionReprs(pol, instrs)
	if err != nil {
		return err
	}
	cache := map[int]float64{}
	score := func(i int) (float64, error) {
		if s, ok := cache[i]; ok {
			return s, nil
		}
		s, err := accuracy(instrs[i], val)
		cache[i] = s
		return s, err
	}
	ic := instinct.DefaultConfig(*budget)
	ic.Seed = *seed
	hi, err := instinct.Optimize(reprs, score, ic)
	if err != nil {
		return err
	}
	hr, err := instinct.RandomSearch(len(instrs), score, *budget, *seed)
	if err != nil {
		return err
	}
	base, err := accuracy("", val)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d candidate instructions, budget %d, %d validation prompts; no instruction: validation accuracy %.3f\n", len(instrs), *budget, *nval, base)
	fmt.Fprintf(stdout, "best-so-far after n queries (validation accuracy):\n  n      ")
	marks := []int{1, 4, 8, 12, 16, 20, 24, 32, 48, 64}
	for _, m := range marks {
		if m <= *budget {
			fmt.Fprintf(stdout, "%7d", m)
		}
	}
	fmt.Fprintln(stdout)
	for _, row := range []struct {
		name string
		h    []instinct.Step
	}{{"INSTINCT", hi}, {"random", hr}} {
		fmt.Fprintf(stdout, "  %-8s", row.name)
		for _, m := range marks {
			if m <= len(row.h) {
				fmt.Fprintf(stdout, "%7.3f", row.h[m-1].Best)
			}
		}
		fmt.Fprintln(stdout)
	}
	bestOf := func(h []instinct.Step) int {
		b := h[0]
		for _, s := range h {
			if s.Score > b.Score {
				b = s
			}
		}
		return b.Index
	}
	all := 0.0
	for i := range instrs {
		if s, ok := cache[i]; ok && s > all {
			all = s
		}
	}
	fmt.Fprintf(stdout, "best of all %d scored candidates (either search): %.3f\n", len(cache), all)
	for _, row := range []struct {
		name string
		i    int
	}{{"INSTINCT", bestOf(hi)}, {"random", bestOf(hr)}} {
		acc, err := accuracy(instrs[row.i], held)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s best instruction %q: held-out accuracy %.3f (%d prompts)\n", row.name, instrs[row.i], acc, len(held))
	}
	acc, err := accuracy("", held)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "no instruction: held-out accuracy %.3f\n", acc)
	return nil
}

// instructionReprs is the model's representation of each instruction: the mean final hidden state
// over its tokens (after BOS), as INSTINCT takes an open model's hidden representation.
func instructionReprs(pol *train.Policy, instrs []string) ([][]float64, error) {
	out := make([][]float64, len(instrs))
	for s := 0; s < len(instrs); s += 128 {
		part := instrs[s:min(s+128, len(instrs))]
		seqs := make([][]int32, len(part))
		for k, in := range part {
			p, err := encodePrompt(pol, task.Example{ID: "instruction", Prompt: in}, false)
			if err != nil {
				return nil, err
			}
			seqs[k] = p
		}
		T := 0
		for _, r := range seqs {
			T = max(T, len(r))
		}
		ids, mask := make([][]int32, len(seqs)), make([][]int32, len(seqs))
		for k, r := range seqs {
			ids[k], mask[k] = make([]int32, T), make([]int32, T)
			copy(ids[k], r)
			for j := range r {
				mask[k][j] = 1
			}
		}
		_, hid, err := pol.Model.LogitsHidden(ids, mask)
		if err != nil {
			return nil, err
		}
		for k, r := range seqs {
			v := make([]float64, len(hid[k][0]))
			for t := range r {
				for j, x := range hid[k][t] {
					v[j] += float64(x) / float64(len(r))
				}
			}
			out[s+k] = v
		}
	}
	return out, nil
}

func readLines(path string) ([]string, error) {
	ds, err := task.LoadJSONL(path, task.Fields{Prompt: "instruction", Answer: "instruction"}, task.LoadOptions{})
	if err == nil {
		out := make([]string, ds.Len())
		for i, ex := range ds.Examples {
			out[i] = ex.Prompt
		}
		return out, nil
	}
	return nil, fmt.Errorf("--candidates %s: want JSONL lines {\"instruction\": \"...\"}: %v", path, err)
}
