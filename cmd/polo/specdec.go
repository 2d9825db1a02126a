package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/train"
)

func init() {
	register("specdec", "speculative decoding: 'specdec train-head' (SpecDec++ acceptance head), 'specdec bench' (tokens/s, acceptance length)", runSpecdec)
}

const specdecUsage = "usage: polo specdec train-head --target DIR --draft DIR -o head.json [--prompts 256] [--mix 0.15] [--epochs 20]\n" +
	"       polo specdec bench --target DIR --draft DIR [--head head.json] [--k 1,2,4,8] [--threshold 0.3] [--limit 64]"

// specFlags are the flags both subcommands share.
type specFlags struct {
	target, draft *string
	seed          *uint64
	sf            *samplingFlags
}

func addSpecFlags(fs *flag.FlagSet) specFlags {
	return specFlags{
		target: fs.String("target", "", "target model folder (RUN_DIR/checkpoints/<name>/model: prompts come from its run)"),
		draft:  fs.String("draft", "", "draft model folder (same tokenizer as the target)"),
		seed:   fs.Uint64("seed", 1, "sampling seed"),
		sf:     addSamplingFlags(fs),
	}
}

// load loads both models, checks the tokenizers agree and returns the target's run config.
func (f specFlags) load(stderr io.Writer) (tgt, drf *train.Policy, run *train.Config, cfg rollout.Config, err error) {
	if *f.target == "" || *f.draft == "" {
		return nil, nil, nil, cfg, usagef("need --target DIR and --draft DIR")
	}
	if tgt, run, err = loadPolicy(*f.target, stderr); err != nil {
		return
	}
	if drf, _, err = loadPolicy(*f.draft, stderr); err != nil {
		return
	}
	if run == nil {
		return nil, nil, nil, cfg, usagef("--target %s is not inside a run folder (RUN_DIR/checkpoints/<name>/model); its run's task gives the prompts", *f.target)
	}
	tv, dv := tgt.Model.Config().VocabSize, drf.Model.Config().VocabSize
	ta, da := tgt.Tokenizer().VocabSize(), drf.Tokenizer().VocabSize()
	if tv != dv || ta != da {
		return nil, nil, nil, cfg, usagef("target and draft do not share a tokenizer (vocab %d/%d tokens, model vocab %d/%d)", ta, da, tv, dv)
	}
	for _, id := range []int32{0, 1, int32(ta - 1)} {
		if tgt.Text([]int32{id}) != drf.Text([]int32{id}) {
			return nil, nil, nil, cfg, usagef("target and draft tokenizers differ (token %d)", id)
		}
	}
	cfg, err = f.sf.config(tgt, run)
	return
}

func runSpecdec(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", specdecUsage)
	}
	switch args[0] {
	case "train-head":
		return specTrainHead(args[1:], stdout, stderr)
	case "bench":
		return specBench(args[1:], stdout, stderr)
	}
	return usagef("unknown subcommand %q; %s", args[0], specdecUsage)
}

// freshPrompts draws n distinct prompts of the run's task from a generator seeded apart from the
// trainer's (for the head's training data; the bench uses the held-out set).
func freshPrompts(p *train.Policy, run *train.Config, n int, seed uint64) ([][]int32, error) {
	if run.Task.Name == "dataset" {
		return nil, usagef("train-head needs a run with a synthetic task (its held-out set is kept for the bench)")
	}
	gen, err := task.NewGenerator(run.Task.Name, run.Task.Options, int64(seed)+7919)
	if err != nil {
		return nil, err
	}
	exs, err := distinctPrompts(gen, n)
	if err != nil {
		return nil, err
	}
	return encodeAll(p, exs)
}

func encodeAll(p *train.Policy, exs []task.Example) ([][]int32, error) {
	out := make([][]int32, len(exs))
	for i, ex := range exs {
		ids, err := encodePrompt(p, ex, false)
		if err != nil {
			return nil, err
		}
		out[i] = ids
	}
	return out, nil
}

func specTrainHead(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("specdec train-head", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addSpecFlags(fs)
	n := fs.Int("prompts", 256, "training prompts (fresh draws of the run's task)")
	mix := fs.Float64("mix", 0.15, "probability that a training-sequence token comes from the target instead of the draft (SpecDec++ mixing_ratio)")
	epochs := fs.Int("epochs", 20, "training epochs")
	lr := fs.Float64("lr", 3e-3, "Adam learning rate")
	rw := fs.Float64("reject-weight", 6, "BCE weight of the rejection class (SpecDec++: 6)")
	layers := fs.Int("layers", 3, "residual blocks of the head (SpecDec++: 3)")
	out := fs.String("o", "", "output head file (JSON)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *out == "" || fs.NArg() > 0 || *n < 2 || *epochs < 1 || *layers < 0 {
		return usagef("specdec train-head needs --target, --draft, -o FILE, --prompts >= 2, --epochs >= 1")
	}
	tgt, drf, run, cfg, err := f.load(stderr)
	if err != nil {
		return err
	}
	prompts, err := freshPrompts(tgt, run, *n, *f.seed)
	if err != nil {
		return err
	}
	xs, ys, err := rollout.AcceptanceData(tgt.Model, drf.Model, prompts, cfg, *mix, *f.seed)
	if err != nil {
		return err
	}
	split := len(xs) * 9 / 10 // last 10% of the examples held out to report calibration
	head := rollout.NewAcceptHead(drf.Model.Config().HiddenSize, *layers, *f.seed)
	tc := rollout.HeadTrainConfig{Epochs: *epochs, BatchSize: 64, LR: *lr, RejectWeight: *rw, Seed: *f.seed}
	losses, err := head.Train(xs[:split], ys[:split], tc)
	if err != nil {
		return err
	}
	var mean, mae, base float64
	for _, y := range ys[split:] {
		mean += y
	}
	mean /= float64(len(ys) - split)
	for i := split; i < len(xs); i++ {
		mae += math.Abs(head.Predict(xs[i]) - ys[i])
		base += math.Abs(mean - ys[i])
	}
	k := float64(len(xs) - split)
	fmt.Fprintf(stdout, "%d training tokens (%d prompts, mix %.2f); loss per epoch %.4f → %.4f\n", split, len(prompts), *mix, losses[0], losses[len(losses)-1])
	fmt.Fprintf(stdout, "held-out %d tokens: mean acceptance %.3f; mean |prediction − target| %.3f (constant mean: %.3f)\n", len(xs)-split, mean, mae/k, base/k)
	if err := head.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func specBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("specdec bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addSpecFlags(fs)
	headPath := fs.String("head", "", "acceptance head from specdec train-head (adds SpecDec++ rows)")
	ks := fs.String("k", "1,2,4,8", "fixed candidate lengths to compare")
	ths := fs.String("threshold", "0.3", "SpecDec++ stop thresholds (comma-separated)")
	kmin := fs.Int("kmin", 2, "SpecDec++ minimum candidate length")
	kmax := fs.Int("kmax", 20, "SpecDec++ maximum candidate length")
	limit := fs.Int("limit", 64, "held-out prompts")
	batch := fs.Int("batch", 16, "rows per call")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() > 0 || *limit < 1 || *batch < 1 {
		return usagef("unexpected arguments, or --limit/--batch < 1")
	}
	tgt, drf, run, cfg, err := f.load(stderr)
	if err != nil {
		return err
	}
	exs, err := heldOut(*run)
	if err != nil {
		return err
	}
	exs = exs[:min(*limit, len(exs))]
	prompts, err := encodeAll(tgt, exs)
	if err != nil {
		return err
	}
	var kList []int
	for _, s := range strings.Split(*ks, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return usagef("--k %q: want positive integers", *ks)
		}
		kList = append(kList, k)
	}
	var thList []float64
	var head *rollout.AcceptHead
	if *headPath != "" {
		if head, err = rollout.LoadAcceptHead(*headPath); err != nil {
			return usagef("%v", err)
		}
		if head.Dim != drf.Model.Config().HiddenSize {
			return usagef("head %s has %d inputs, the draft's hidden size is %d", *headPath, head.Dim, drf.Model.Config().HiddenSize)
		}
		for _, s := range strings.Split(*ths, ",") {
			h, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || !(h > 0 && h < 1) {
				return usagef("--threshold %q: want values in (0, 1)", *ths)
			}
			thList = append(thList, h)
		}
	}
	correct := func(comps []rollout.Completion) float64 {
		n := 0
		for i, c := range comps {
			if chk, err := task.CheckExample(tgt.Text(c.Tokens), exs[i]); err == nil && chk.Correct {
				n++
			}
		}
		return float64(n) / float64(len(comps))
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "%d held-out prompts, %d rows per call, temperature %g, max %d new tokens\n", len(prompts), *batch, cfg.Temperature, cfg.MaxNewTokens)
	fmt.Fprintln(tw, "method\ttokens/s\twall s\ttokens/round\taccept rate\tdrafted/round\ttarget passes\tdraft passes\taccuracy\t")
	// Warm-up: every method once on the first rows, so graph compilation is not timed.
	if err := specWarmup(tgt, drf, prompts[:min(*batch, len(prompts))], cfg, head, kList, thList, *kmin, *kmax); err != nil {
		return err
	}
	// Plain decoding with the target's KV cache.
	start := time.Now()
	var plain []rollout.Completion
	ntok, steps := 0, 0
	for s := 0; s < len(prompts); s += *batch {
		part := prompts[s:min(s+*batch, len(prompts))]
		maxLen := 0
		for _, p := range part {
			maxLen = max(maxLen, len(p))
		}
		dec, err := tgt.Model.NewDecoder(len(part), maxLen+cfg.MaxNewTokens)
		if err != nil {
			return err
		}
		comps, err := rollout.Sample(dec, part, cfg, *f.seed+uint64(s))
		if err != nil {
			return err
		}
		plain = append(plain, comps...)
		longest := 0
		for _, c := range comps {
			longest = max(longest, len(c.Tokens))
		}
		steps += longest // one prefill or step per token of the longest row
	}
	for _, c := range plain {
		ntok += len(c.Tokens)
	}
	wall := time.Since(start).Seconds()
	fmt.Fprintf(tw, "target alone (KV cache)\t%.0f\t%.2f\t1\t-\t-\t%d\t-\t%.3f\t\n", float64(ntok)/wall, wall, steps, correct(plain))
	type method struct {
		name string
		cfg  rollout.SpecConfig
	}
	var methods []method
	for _, k := range kList {
		methods = append(methods, method{fmt.Sprintf("speculative K=%d", k), rollout.SpecConfig{Sampling: cfg, K: k}})
	}
	for _, h := range thList {
		methods = append(methods, method{fmt.Sprintf("SpecDec++ h=%g [%d,%d]", h, *kmin, *kmax),
			rollout.SpecConfig{Sampling: cfg, Head: head, Threshold: h, KMin: *kmin, KMax: *kmax}})
	}
	for _, m := range methods {
		start := time.Now()
		var all []rollout.Completion
		var st rollout.SpecStats
		for s := 0; s < len(prompts); s += *batch {
			comps, s1, err := rollout.SpecSample(tgt.Model, drf.Model, prompts[s:min(s+*batch, len(prompts))], m.cfg, *f.seed+uint64(s))
			if err != nil {
				return err
			}
			all = append(all, comps...)
			st.Rounds += s1.Rounds
			st.Drafted += s1.Drafted
			st.Accepted += s1.Accepted
			st.Emitted += s1.Emitted
			st.TargetCalls += s1.TargetCalls
			st.DraftCalls += s1.DraftCalls
		}
		wall := time.Since(start).Seconds()
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.3f\t%.2f\t%d\t%d\t%.3f\t\n", m.name, float64(st.Emitted)/wall, wall, st.MeanAcceptLen(),
			st.AcceptRate(), float64(st.Drafted)/float64(st.Rounds), st.TargetCalls, st.DraftCalls, correct(all))
	}
	return tw.Flush()
}

// specWarmup runs plain and speculative decoding once, untimed, so that the timed runs reuse
// compiled graphs (each new batch or sequence-length bucket compiles one).
func specWarmup(tgt, drf *train.Policy, prompts [][]int32, cfg rollout.Config, head *rollout.AcceptHead, ks []int, ths []float64, kmin, kmax int) error {
	maxLen := 0
	for _, p := range prompts {
		maxLen = max(maxLen, len(p))
	}
	dec, err := tgt.Model.NewDecoder(len(prompts), maxLen+cfg.MaxNewTokens)
	if err != nil {
		return err
	}
	if _, err := rollout.Sample(dec, prompts, cfg, 0); err != nil {
		return err
	}
	var cfgs []rollout.SpecConfig
	for _, k := range ks {
		cfgs = append(cfgs, rollout.SpecConfig{Sampling: cfg, K: k})
	}
	for _, h := range ths {
		cfgs = append(cfgs, rollout.SpecConfig{Sampling: cfg, Head: head, Threshold: h, KMin: kmin, KMax: kmax})
	}
	for _, c := range cfgs {
		if _, _, err := rollout.SpecSample(tgt.Model, drf.Model, prompts, c, 0); err != nil {
			return err
		}
	}
	return nil
}
