package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/polo-rl/polo/eval"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
)

func init() {
	register("sample", "sample continuations of one prompt from a checkpoint (one JSON line each)", runSample)
}

// sampleLineOut is one sampled continuation as `polo sample` prints it.
type sampleLineOut struct {
	Index         int     `json:"index"`
	Text          string  `json:"text"`
	Tokens        []int32 `json:"tokens"`
	Finish        string  `json:"finish"`
	MeanLogProb   float64 `json:"mean_logprob"`   // mean model log-probability of the tokens
	SelfCertainty float64 `json:"self_certainty"` // mean per-token KL(U || p), spec C1
}

func runSample(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "model folder: RUN_DIR/checkpoints/<name>/model or a Hugging Face folder with a tokenizer")
	prompt := fs.String("prompt", "", "the prompt text (e.g. \"12+34=\")")
	chat := fs.Bool("chat", false, "send the prompt as a user message through the tokenizer's chat template")
	n := fs.Int("n", 4, "number of continuations")
	seed := fs.Uint64("seed", 1, "sampling seed (the same seed gives the same continuations)")
	sf := addSamplingFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: polo sample --model DIR --prompt TEXT [--chat] [--n 4] [--temperature 1] [--max-new-tokens N] [--seed 1]
Prints one JSON line per continuation: index, text, tokens, finish (stop|length), mean_logprob, self_certainty.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q; pass the prompt with --prompt", fs.Arg(0))
	case *dir == "":
		return usagef("need --model DIR (a checkpoint's model folder)")
	case *prompt == "":
		return usagef("need --prompt TEXT")
	case *n < 1:
		return usagef("--n = %d, want >= 1 continuations", *n)
	}
	pol, run, err := loadPolicy(*dir, stderr)
	if err != nil {
		return err
	}
	cfg, err := sf.config(pol, run)
	if err != nil {
		return err
	}
	ids, err := encodePrompt(pol, task.Example{ID: "prompt", Prompt: *prompt}, *chat)
	if err != nil {
		return err
	}
	dec, err := pol.Model.NewDecoder(*n, len(ids)+cfg.MaxNewTokens)
	if errors.Is(err, model.ErrTooLarge) {
		return usagef("--n %d, prompt %d tokens + --max-new-tokens %d: %v", *n, len(ids), cfg.MaxNewTokens, err)
	}
	if err != nil {
		return err
	}
	comps, err := rollout.Sample(dec, rollout.Repeat([][]int32{ids}, *n), cfg, *seed)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i, c := range comps {
		s := eval.FromCompletion(c, eval.Judgement{}) // the same per-response means eval ranks by
		line := sampleLineOut{Index: i, Text: pol.Text(c.Tokens), Tokens: c.Tokens, Finish: c.Finish,
			MeanLogProb: s.MeanLogProb, SelfCertainty: s.SelfCertainty}
		if math.IsNaN(line.MeanLogProb) || math.IsInf(line.MeanLogProb, 0) || math.IsNaN(line.SelfCertainty) || math.IsInf(line.SelfCertainty, 0) {
			return fmt.Errorf("continuation %d has non-finite log-probabilities; the model weights are broken", i)
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return w.Flush()
}
