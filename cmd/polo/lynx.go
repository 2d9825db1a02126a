package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/polo-rl/polo/lynx"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/train"
)

func init() {
	register("lynx", "LYNX early exit: 'lynx calibrate' (probe + conformal scores), 'lynx eval' (tokens saved vs accuracy)", runLynx)
}

const lynxUsage = "usage: polo lynx calibrate --model DIR -o probe.json [--cue '|'] [--marker '#'] [--train 256] [--calib 256]\n" +
	"       polo lynx eval --model DIR --probe probe.json [--alpha 0.05,0.1,0.2] [--limit 256]"

func runLynx(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", lynxUsage)
	}
	switch args[0] {
	case "calibrate":
		return lynxCalibrate(args[1:], stdout, stderr)
	case "eval":
		return lynxEval(args[1:], stdout, stderr)
	}
	return usagef("unknown subcommand %q; %s", args[0], lynxUsage)
}

// lynxSetup loads the model (inside a run folder: its task gives prompts and the verifier) and
// turns the cue and marker strings into token ids.
func lynxSetup(dir, cue, marker string, stderr io.Writer) (*train.Policy, *train.Config, lynx.Exit, error) {
	var e lynx.Exit
	if dir == "" {
		return nil, nil, e, usagef("need --model DIR")
	}
	pol, run, err := loadPolicy(dir, stderr)
	if err != nil {
		return nil, nil, e, err
	}
	if run == nil || run.Task.Name == "dataset" {
		return nil, nil, e, usagef("--model %s must be a checkpoint of a run with a synthetic task (RUN_DIR/checkpoints/<name>/model)", dir)
	}
	for _, c := range strings.Split(cue, ",") {
		ids := pol.Tokenizer().Encode(c)
		if len(ids) != 1 {
			return nil, nil, e, usagef("cue %q is %d tokens; each cue must be one token", c, len(ids))
		}
		e.Cues = append(e.Cues, ids[0])
	}
	e.Marker = pol.Tokenizer().Encode(marker)
	if len(e.Marker) == 0 {
		return nil, nil, e, usagef("--marker is empty")
	}
	e.Stop, e.MaxNew, e.MaxAnswer = pol.StopTokens(), run.Sampling.MaxNewTokens, 8
	return pol, run, e, nil
}

func judge(pol *train.Policy, exs []task.Example) func(int, []int32) bool {
	return func(i int, resp []int32) bool {
		c, err := task.CheckExample(pol.Text(resp), exs[i])
		return err == nil && c.Correct
	}
}

func lynxCalibrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lynx calibrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "checkpoint model folder inside a run folder")
	cue := fs.String("cue", "|", "cue tokens (comma-separated strings, one token each) where exits may be taken")
	marker := fs.String("marker", "#", "text appended at an exit to make the model answer")
	nTrain := fs.Int("train", 256, "prompts whose cues train the probe")
	nCalib := fs.Int("calib", 256, "prompts whose negative cues calibrate the threshold")
	seed := fs.Uint64("seed", 1, "prompt and probe seed")
	out := fs.String("o", "", "output probe file (JSON)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *out == "" || fs.NArg() > 0 || *nTrain < 1 || *nCalib < 1 {
		return usagef("lynx calibrate needs --model DIR -o FILE, --train and --calib >= 1")
	}
	pol, run, e, err := lynxSetup(*dir, *cue, *marker, stderr)
	if err != nil {
		return err
	}
	gen, err := task.NewGenerator(run.Task.Name, run.Task.Options, int64(*seed)+104729)
	if err != nil {
		return err
	}
	exs, err := distinctPrompts(gen, *nTrain+*nCalib)
	if err != nil {
		return err
	}
	prompts, err := encodeAll(pol, exs)
	if err != nil {
		return err
	}
	traces, err := lynx.Decode(pol.Model, prompts, e)
	if err != nil {
		return err
	}
	cues, err := lynx.ForcedExits(pol.Model, prompts, traces, e, judge(pol, exs))
	if err != nil {
		return err
	}
	var tr, cal []lynx.Cue
	for _, c := range cues {
		if c.Row < *nTrain {
			tr = append(tr, c)
		} else {
			cal = append(cal, c)
		}
	}
	if len(tr) == 0 {
		return fmt.Errorf("the model's traces contain no cue %q; nothing to train on", *cue)
	}
	p, err := lynx.TrainProbe(tr, cal, *seed)
	if err != nil {
		return err
	}
	p.Cue, p.Marker = *cue, *marker
	acc := 0
	for _, c := range tr {
		if (p.Head.Predict(c.Hidden) > 0.5) == c.Label {
			acc++
		}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "probe: %d training cues (%d safe to exit, %d not), training accuracy %.3f; %d calibration negatives from %d prompts\nwrote %s\n",
		len(tr), p.TrainPos, p.TrainNeg, float64(acc)/float64(len(tr)), len(p.CalibNeg), *nCalib, *out)
	return nil
}

func lynxEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lynx eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "checkpoint model folder inside a run folder")
	probePath := fs.String("probe", "", "probe file from lynx calibrate")
	alphas := fs.String("alpha", "0.05,0.1,0.2", "risk levels (comma-separated): bound on the rate of premature exits")
	limit := fs.Int("limit", 256, "held-out prompts")
	perTrace := fs.Bool("per-trace", false, "calibrate on each calibration trace's largest wrong-exit score: bounds the fraction of traces with a premature exit (instead of the fraction of wrong-exit cues)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *probePath == "" || fs.NArg() > 0 || *limit < 1 {
		return usagef("lynx eval needs --model DIR --probe FILE")
	}
	data, err := os.ReadFile(*probePath)
	if err != nil {
		return usagef("%v", err)
	}
	var p lynx.Probe
	if err := json.Unmarshal(data, &p); err != nil || p.Head == nil || p.Head.Layers != 0 || len(p.Head.Wo) != p.Head.Dim {
		return usagef("%s is not a probe written by polo lynx calibrate", *probePath)
	}
	var as []float64
	for _, s := range strings.Split(*alphas, ",") {
		a, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(a > 0 && a < 1) {
			return usagef("--alpha %q: want values in (0, 1)", *alphas)
		}
		as = append(as, a)
	}
	pol, run, e, err := lynxSetup(*dir, p.Cue, p.Marker, stderr)
	if err != nil {
		return err
	}
	if d := pol.Model.Config().HiddenSize; d != p.Head.Dim {
		return usagef("probe has %d inputs, the model's hidden size is %d", p.Head.Dim, d)
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
	ok := judge(pol, exs)
	summarise := func(rs []lynx.Result) (acc, toks, exited float64) {
		for i, r := range rs {
			if ok(i, r.Tokens) {
				acc++
			}
			toks += float64(len(r.Tokens))
			if r.ExitAt >= 0 {
				exited++
			}
		}
		n := float64(len(rs))
		return acc / n, toks / n, exited / n
	}
	full, err := lynx.Decode(pol.Model, prompts, e)
	if err != nil {
		return err
	}
	cues, err := lynx.ForcedExits(pol.Model, prompts, full, e, ok)
	if err != nil {
		return err
	}
	negs := 0
	for _, c := range cues {
		if !c.Label {
			negs++
		}
	}
	acc0, tok0, _ := summarise(full)
	fmt.Fprintf(stdout, "%d held-out prompts, %d cues (%d where exiting would be wrong); %d calibration negatives\n", len(prompts), len(cues), negs, len(p.CalibNeg))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tλ\taccuracy\tmean tokens\ttokens saved\texited\twrong-exit cues over λ; traces with one\t")
	fmt.Fprintf(tw, "full reasoning\t-\t%.3f\t%.1f\t0.0%%\t0.000\t-\t\n", acc0, tok0)
	// Oracle: exit at the first cue where a forced exit is right.
	oracle := make([]lynx.Result, len(full))
	copy(oracle, full)
	first := map[int]bool{}
	for _, c := range cues {
		if c.Label && !first[c.Row] {
			first[c.Row] = true
			oracle[c.Row] = lynx.Result{Tokens: append(append([]int32(nil), full[c.Row].Tokens[:c.Pos]...), e.Marker...), ExitAt: c.Pos}
		}
	}
	// The oracle's answer tokens are not decoded here; its length counts the marker and the
	// reference answer's length, a lower bound on what any exit policy can reach.
	var otoks float64
	for i, r := range oracle {
		n := len(r.Tokens)
		if r.ExitAt >= 0 {
			n += len(exs[i].Meta["result"]) + 1
		}
		otoks += float64(n)
	}
	otoks /= float64(len(oracle))
	fmt.Fprintf(tw, "oracle (first safe cue)\t-\t%.3f\t%.1f\t%.1f%%\t%.3f\t0\t\n", acc0, otoks, 100*(1-otoks/tok0), float64(len(first))/float64(len(full)))
	calib, unit := p.CalibNeg, "cue"
	if *perTrace {
		calib, unit = p.CalibTrace, "trace"
	}
	fmt.Fprintf(stdout, "calibration unit: %s (%d calibration scores)\n", unit, len(calib))
	for _, a := range as {
		lam, err := lynx.ConformalThreshold(calib, a)
		if err != nil {
			return err
		}
		e.Score, e.Lambda = p.Head.Predict, lam
		rs, err := lynx.Decode(pol.Model, prompts, e)
		if err != nil {
			return err
		}
		acc, tok, exited := summarise(rs)
		prem, badTrace := 0, map[int]bool{}
		for _, c := range cues {
			if !c.Label && p.Head.Predict(c.Hidden) > lam {
				prem++
				badTrace[c.Row] = true
			}
		}
		fmt.Fprintf(tw, "LYNX α=%g\t%.4g\t%.3f\t%.1f\t%.1f%%\t%.3f\t%d/%d = %.3f; traces %d/%d = %.3f\t\n", a, lam, acc, tok, 100*(1-tok/tok0), exited,
			prem, negs, float64(prem)/float64(max(negs, 1)), len(badTrace), len(prompts), float64(len(badTrace))/float64(len(prompts)))
	}
	return tw.Flush()
}
