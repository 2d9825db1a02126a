package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"

	"github.com/polo-rl/polo/datamask"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/train"
)

func init() {
	register("data", "data tools: 'data select' keeps a subset by DATAMASK policy-gradient mask learning (quality = model loss, diversity = embeddings)", runData)
}

func runData(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "select" {
		return usagef("usage: polo data select --model DIR --data FILE.jsonl|.parquet --ratio 0.2 -o OUT.jsonl [--random-out R.jsonl] [--quality low-loss|high-loss]")
	}
	fs := flag.NewFlagSet("data select", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "scoring model (a checkpoint with its tokenizer)")
	data := fs.String("data", "", "dataset (.jsonl or .parquet)")
	pf := fs.String("prompt-field", "question", "prompt column")
	af := fs.String("answer-field", "answer", "answer column")
	ratio := fs.Float64("ratio", 0.1, "fraction of examples to keep")
	qual := fs.String("quality", "low-loss", "quality score from the model's answer loss: low-loss (fits the model: clean) or high-loss (informative)")
	wq := fs.Float64("wq", 1, "weight of quality")
	wd := fs.Float64("wd", 1, "weight of diversity (mean pairwise cosine of embeddings, negated)")
	wr := fs.Float64("wr", 10, "weight of the size penalty (n/N − ratio)²")
	groups := fs.Int("groups", 8, "diversity is computed within this many shards (acceleration: O(n²/groups) pairs)")
	iters := fs.Int("iters", 200, "policy-gradient iterations")
	g := fs.Int("g", 16, "masks per iteration")
	lr := fs.Float64("lr", 1, "learning rate of the mask logits")
	seed := fs.Uint64("seed", 1, "seed")
	out := fs.String("o", "", "output JSONL of the selected rows ({prompt field, answer field})")
	rnd := fs.String("random-out", "", "also write a random subset of the same size (the baseline)")
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("%v", err)
	}
	if *dir == "" || *data == "" || *out == "" || fs.NArg() > 0 {
		return usagef("data select needs --model DIR --data FILE -o OUT")
	}
	if *qual != "low-loss" && *qual != "high-loss" {
		return usagef("--quality %q: want low-loss or high-loss", *qual)
	}
	pol, _, err := loadPolicy(*dir, stderr)
	if err != nil {
		return err
	}
	ds, err := loadDataset(*data, *pf, *af, "", 0)
	if err != nil {
		return err
	}
	exs := ds.Examples
	if len(exs) < 2 {
		return usagef("%s has %d rows; need at least 2", *data, len(exs))
	}
	losses, embs, err := scoreExamples(pol, exs)
	if err != nil {
		return err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range losses {
		lo, hi = min(lo, l), max(hi, l)
	}
	q := make([]float64, len(losses))
	for i, l := range losses {
		x := 0.5
		if hi > lo {
			x = (l - lo) / (hi - lo)
		}
		if *qual == "low-loss" {
			x = 1 - x
		}
		q[i] = x
	}
	cfg := datamask.Config{Ratio: *ratio, WQ: *wq, WD: *wd, WR: *wr, Groups: *groups, G: *g, LR: *lr, Iters: *iters, Seed: *seed}
	sel, curve, err := datamask.Select(q, embs, cfg)
	if err != nil {
		return usagef("%v", err)
	}
	if err := writeRows(*out, exs, sel, *pf, *af); err != nil {
		return err
	}
	meanLoss := func(idx []int) float64 {
		var s float64
		for _, i := range idx {
			s += losses[i]
		}
		return s / float64(len(idx))
	}
	all := make([]int, len(exs))
	for i := range all {
		all[i] = i
	}
	fmt.Fprintf(stdout, "%d rows → %d selected (ratio %.3f); objective %.4f → %.4f over %d iterations\n", len(exs), len(sel), *ratio, curve[0], curve[len(curve)-1], len(curve))
	fmt.Fprintf(stdout, "mean answer loss: all %.4f, selected %.4f\nwrote %s\n", meanLoss(all), meanLoss(sel), *out)
	if *rnd != "" {
		perm := rand.New(rand.NewPCG(*seed, 0x7)).Perm(len(exs))[:len(sel)]
		sort.Ints(perm)
		if err := writeRows(*rnd, exs, perm, *pf, *af); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "random subset of %d: mean answer loss %.4f\nwrote %s\n", len(perm), meanLoss(perm), *rnd)
	}
	return nil
}

// scoreExamples returns each example's mean answer NLL under the model and the mean of its
// final-layer hidden states over prompt and answer (the embedding for diversity).
func scoreExamples(pol *train.Policy, exs []task.Example) ([]float64, [][]float64, error) {
	losses := make([]float64, len(exs))
	embs := make([][]float64, len(exs))
	const batch = 128
	for s := 0; s < len(exs); s += batch {
		part := exs[s:min(s+batch, len(exs))]
		seqs := make([][]int32, len(part))
		starts := make([]int, len(part))
		for k, ex := range part {
			p, err := pol.Prompt(ex)
			if err != nil {
				return nil, nil, err
			}
			ans := append(pol.Tokenizer().Encode(ex.Answer), pol.StopTokens()[0])
			starts[k] = len(p)
			seqs[k] = append(p, ans...)
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
		lp, _, err := pol.Model.LogProbs(ids, mask)
		if err != nil {
			return nil, nil, err
		}
		_, hid, err := pol.Model.LogitsHidden(ids, mask)
		if err != nil {
			return nil, nil, err
		}
		for k, r := range seqs {
			var nll float64
			for t := starts[k] - 1; t < len(r)-1; t++ { // lp[t] scores token t+1
				nll -= float64(lp[k][t])
			}
			losses[s+k] = nll / float64(len(r)-starts[k])
			e := make([]float64, len(hid[k][0]))
			for t := range r {
				for j, x := range hid[k][t] {
					e[j] += float64(x) / float64(len(r))
				}
			}
			embs[s+k] = e
		}
	}
	return losses, embs, nil
}

func writeRows(path string, exs []task.Example, idx []int, pf, af string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, i := range idx {
		if err := enc.Encode(map[string]string{pf: exs[i].Prompt, af: strings.TrimSpace(exs[i].Answer)}); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
