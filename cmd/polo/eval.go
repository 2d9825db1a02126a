package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/polo-rl/polo/eval"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
	"github.com/polo-rl/polo/train"
	"github.com/polo-rl/polo/value"
)

func init() {
	register("eval", "sample n responses per prompt from a checkpoint: pass@k, maj@k, Best-of-N strategies", runEval)
}

// evalFlags are the flags of `polo eval`.
type evalFlags struct {
	model, taskName, data                 string
	promptField, answerField, answerStyle string
	verifier, ks, out                     string
	selects, critic                       string
	n, limit, batch, trials               int
	seed                                  uint64
	chat, quiet                           bool
	timeout                               time.Duration
	taskOpts, verifierOpts                verifyOpts
	sampling                              *samplingFlags
}

func runEval(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := evalFlags{taskOpts: verifyOpts{}, verifierOpts: verifyOpts{}}
	fs.StringVar(&f.model, "model", "", "model folder: RUN_DIR/checkpoints/<name>/model or a Hugging Face folder with a tokenizer")
	fs.StringVar(&f.taskName, "task", "", "synthetic task ("+strings.Join(task.GeneratorNames(), ", ")+"): fresh prompts drawn with --seed")
	fs.Var(f.taskOpts, "task-opt", "task option key=value, repeatable (e.g. --task-opt digits=2)")
	fs.StringVar(&f.data, "data", "", "dataset file (.jsonl or .parquet) instead of --task")
	fs.StringVar(&f.promptField, "prompt-field", "question", "dataset field holding the prompt")
	fs.StringVar(&f.answerField, "answer-field", "answer", "dataset field holding the reference answer")
	fs.StringVar(&f.answerStyle, "answer-style", "", `how to cut the reference out of the answer field: "" (as is) | gsm8k | boxed`)
	fs.StringVar(&f.verifier, "verifier", "", "verifier: "+strings.Join(reward.Kinds(), "|")+" (default: the run's, task for --task, math for --data)")
	fs.Var(f.verifierOpts, "verifier-opt", "verifier option key=value, repeatable")
	fs.DurationVar(&f.timeout, "verifier-timeout", 10*time.Second, "give up on one response after this long (scored wrong)")
	fs.IntVar(&f.n, "n", 16, "samples per prompt")
	fs.StringVar(&f.ks, "k", "", "comma-separated k for pass@k and maj@k (default 1, 2, 4, … and n)")
	fs.IntVar(&f.limit, "limit", 256, "number of prompts")
	fs.IntVar(&f.batch, "batch", 256, "rows (prompt × sample) per decoder batch")
	fs.IntVar(&f.trials, "trials", 64, "random subsets per example for maj@k and Best-of-N below n")
	fs.Uint64Var(&f.seed, "seed", 1, "seeds sampling, subset draws and --task prompts")
	fs.BoolVar(&f.chat, "chat", false, "wrap each text prompt as a user message with the tokenizer's chat template")
	fs.StringVar(&f.out, "out", "", "write report.json, examples.jsonl and best_of_n.png to this folder")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&f.selects, "select", "", "extra Best-of-N selectors, comma-separated: q (rank by a value critic's Q; needs --value)")
	fs.StringVar(&f.critic, "value", "", "value critic (JSON from polo value train) for --select q")
	f.sampling = addSamplingFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: polo eval --model DIR [--task NAME [--task-opt k=v]... | --data FILE] [--n 16] [--k 1,4,16] [--out DIR]
                 [--select q --value CRITIC.json]

Without --task or --data, a model inside a run folder (RUN_DIR/checkpoints/<name>/model) is
evaluated on the run's own held-out test set, with the run's verifier and max_new_tokens.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q; all inputs are flags (see polo eval -h)", fs.Arg(0))
	}
	switch {
	case f.model == "":
		return usagef("need --model DIR (a checkpoint's model folder)")
	case f.taskName != "" && f.data != "":
		return usagef("--task and --data exclude each other; pick one prompt source")
	case f.n < 1:
		return usagef("--n = %d, want >= 1 samples per prompt", f.n)
	case f.limit < 1:
		return usagef("--limit = %d, want >= 1 prompts", f.limit)
	case f.batch < 1:
		return usagef("--batch = %d, want >= 1 rows", f.batch)
	case f.trials < 1:
		return usagef("--trials = %d, want >= 1", f.trials)
	}
	ks, err := parseKs(f.ks, f.n)
	if err != nil {
		return err
	}
	useQ, err := parseSelect(f.selects, f.critic)
	if err != nil {
		return err
	}
	pol, run, err := loadPolicy(f.model, stderr)
	if err != nil {
		return err
	}
	var critic *value.Critic
	if useQ {
		if critic, err = loadCritic(f.critic, pol); err != nil {
			return err
		}
	}
	src, err := evalExamples(f, run)
	if err != nil {
		return err
	}
	vkind, vopts := f.verifier, map[string]string(f.verifierOpts)
	if vkind == "" {
		switch {
		case src.fromRun:
			vkind, vopts = run.Reward.Verifier, run.Reward.Options
		case f.data != "":
			vkind = "math"
		default:
			vkind = "task"
		}
	}
	if vkind == "task" && src.dataset {
		return usagef("the task verifier only scores generated examples; pick --verifier exact|numeric|math for a dataset")
	}
	v, err := reward.NewVerifier(vkind, vopts)
	if err != nil {
		return usageError{err}
	}
	safe := reward.Safe(v, f.timeout)
	scfg, err := f.sampling.config(pol, run)
	if err != nil {
		return err
	}
	prompts := make([][]int32, len(src.examples))
	longest := 0
	for i, ex := range src.examples {
		if prompts[i], err = encodePrompt(pol, ex, f.chat); err != nil {
			return err
		}
		longest = max(longest, len(prompts[i]))
	}

	rows := len(prompts) * f.n
	batch := min(f.batch, rows)
	dec, err := pol.Model.NewDecoder(batch, longest+scfg.MaxNewTokens)
	if errors.Is(err, model.ErrTooLarge) {
		return usagef("--batch %d, longest prompt %d tokens + --max-new-tokens %d: %v", batch, longest, scfg.MaxNewTokens, err)
	}
	if err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(stderr, "eval: %d prompts (%s) × %d samples, verifier %s, temperature %g, max %d new tokens\n",
			len(prompts), src.desc, f.n, vkind, scfg.Temperature, scfg.MaxNewTokens)
	}
	start, done := time.Now(), 0
	sample := func(p [][]int32, seed uint64) ([]rollout.Completion, error) {
		comps, err := rollout.Sample(dec, p, scfg, seed)
		done += len(p)
		if err == nil && !f.quiet {
			fmt.Fprintf(stderr, "eval: sampled %d/%d rows (%.1fs)\n", done, rows, time.Since(start).Seconds())
		}
		return comps, err
	}
	texts := make([][]string, len(prompts))
	resps := make([][][]int32, len(prompts))
	judge := func(i int, c rollout.Completion) (eval.Judgement, error) {
		text := pol.Text(c.Tokens)
		texts[i] = append(texts[i], text)
		resps[i] = append(resps[i], c.Tokens)
		s := safe.Verify(text, src.examples[i])
		j := eval.Judgement{Correct: s.Correct, Score: s.Value}
		if a := strings.TrimSpace(s.Extracted); a != "" {
			j.Answer = &a
		}
		return j, nil
	}
	examples, err := eval.Generate(prompts, f.n, batch, f.seed, sample, judge)
	if err != nil {
		return err
	}
	for i := range examples {
		examples[i].ID = src.examples[i].ID
	}
	strategies := eval.DefaultStrategies()
	if critic != nil {
		q, _, err := critic.Score(pol.Model.HiddenAt, prompts, resps, f.batch)
		if err != nil {
			return fmt.Errorf("score candidates with --value %s: %w", f.critic, err)
		}
		for i := range examples {
			for j := range examples[i].Samples {
				examples[i].Samples[j].Q = q[i][j]
			}
		}
		// q-value sits just above the oracle (the last default row).
		strategies = append(strategies[:len(strategies)-1:len(strategies)-1], eval.QValue(), eval.Oracle())
	}
	rep, err := eval.Run(examples, eval.Options{K: ks, Trials: f.trials, Seed: f.seed, Strategies: strategies})
	if err != nil {
		return err
	}
	full := evalReport{
		Model: f.model, Prompts: src.desc, Verifier: vkind, Seed: f.seed,
		Sampling:      samplingInfo{scfg.Temperature, scfg.TopK, scfg.TopP, scfg.MinP, scfg.MaxNewTokens},
		SelfCertainty: certaintySplit(examples),
		Report:        rep,
	}
	if err := writeEvalText(stdout, full); err != nil {
		return err
	}
	if f.out == "" {
		return nil
	}
	return writeEvalFiles(f.out, full, src.examples, examples, texts)
}

// samplingFlags are the sampling flags shared by eval and sample.
type samplingFlags struct {
	temperature, topP, minP float64
	topK, maxNew            int
}

func addSamplingFlags(fs *flag.FlagSet) *samplingFlags {
	s := &samplingFlags{}
	fs.Float64Var(&s.temperature, "temperature", 1, "sampling temperature (0 = greedy)")
	fs.Float64Var(&s.topP, "top-p", 1, "nucleus sampling mass (1 = off)")
	fs.IntVar(&s.topK, "top-k", 0, "keep the k most likely tokens (0 = off)")
	fs.Float64Var(&s.minP, "min-p", 0, "drop tokens below min-p × the top probability (0 = off)")
	fs.IntVar(&s.maxNew, "max-new-tokens", 0, "response token limit (default: the run's sampling.max_new_tokens, else 256)")
	return s
}

// config builds the rollout configuration; run (nil outside a run folder) supplies the default
// token limit, so a checkpoint is evaluated with the budget it was trained with.
func (s *samplingFlags) config(p *train.Policy, run *train.Config) (rollout.Config, error) {
	maxNew := s.maxNew
	switch {
	case maxNew < 0:
		return rollout.Config{}, usagef("--max-new-tokens = %d, want >= 1", maxNew)
	case maxNew == 0 && run != nil:
		maxNew = run.Sampling.MaxNewTokens
	case maxNew == 0:
		maxNew = 256
	}
	c := rollout.Config{Temperature: s.temperature, TopK: s.topK, TopP: s.topP, MinP: s.minP,
		MaxNewTokens: maxNew, StopTokens: p.StopTokens()}
	if err := c.Validate(); err != nil {
		return c, usagef("%s", strings.TrimPrefix(err.Error(), "rollout: "))
	}
	return c, nil
}

// loadPolicy loads a model folder and, when it sits in a run folder (RUN_DIR/checkpoints/<name>/model),
// the run's configuration; a run config that does not load is reported on stderr and ignored.
func loadPolicy(dir string, stderr io.Writer) (*train.Policy, *train.Config, error) {
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return nil, nil, usagef("model folder %s: %v; pass a checkpoint's model folder (RUN_DIR/checkpoints/<name>/model)", dir, errors.Unwrap(err))
	case !st.IsDir():
		return nil, nil, usagef("model %s is a file; pass a folder with config.json and model.safetensors", dir)
	}
	p, err := train.LoadPolicy(dir)
	if err != nil {
		return nil, nil, usagef("model folder %s: %v", dir, err)
	}
	cfgPath := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Clean(dir)))), "config.yaml")
	if filepath.Base(filepath.Dir(filepath.Dir(filepath.Clean(dir)))) != "checkpoints" {
		return p, nil, nil
	}
	if _, err := os.Stat(cfgPath); err != nil {
		return p, nil, nil
	}
	cfg, err := train.LoadConfig(cfgPath, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warning: ignoring the run's config (%v)\n", err)
		return p, nil, nil
	}
	return p, &cfg, nil
}

// encodePrompt turns an example into prompt ids; with chat, a text prompt becomes a user message
// rendered with the tokenizer's chat template.
func encodePrompt(p *train.Policy, ex task.Example, chat bool) ([]int32, error) {
	if chat {
		hf, ok := p.Tokenizer().(*tokenizer.HF)
		if !ok || !hf.HasChatTemplate() {
			return nil, usagef("--chat needs a tokenizer with a chat template; this model's tokenizer has none")
		}
		if len(ex.Messages) == 0 {
			ex.Messages = []task.Message{{Role: "user", Content: ex.Prompt}}
		}
	}
	if c, ok := p.Tokenizer().(*tokenizer.Char); ok && len(ex.Messages) == 0 {
		if bad := c.Unknown(ex.Prompt); len(bad) > 0 {
			return nil, usagef("prompt %q (example %s) has characters the model's tokenizer does not know: %q", ex.Prompt, ex.ID, string(bad))
		}
	}
	ids, err := p.Prompt(ex)
	if err != nil {
		return nil, usageError{err}
	}
	return ids, nil
}

// parseKs reads --k: comma-separated integers in 1..n.
func parseKs(s string, n int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ks []int
	for _, part := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, usagef("--k %q: %q is not an integer; want e.g. --k 1,4,16", s, part)
		}
		if k < 1 || k > n {
			return nil, usagef("--k %d: want 1 <= k <= --n (%d)", k, n)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// parseSelect reads --select (comma-separated extra selectors) and --value: whether to rank by a
// value critic. --value alone implies --select q.
func parseSelect(list, critic string) (useQ bool, err error) {
	for _, part := range strings.Split(list, ",") {
		switch strings.TrimSpace(part) {
		case "":
		case "q", "q-value":
			useQ = true
		default:
			return false, usagef("--select %q: unknown selector %q; want q (the default strategies are always reported)", list, strings.TrimSpace(part))
		}
	}
	if useQ && critic == "" {
		return false, usagef("--select q needs --value CRITIC.json (train one with polo value train)")
	}
	return useQ || critic != "", nil
}

// promptSet is the examples to evaluate and where they came from.
type promptSet struct {
	examples []task.Example
	desc     string
	fromRun  bool // the run's held-out test set (its verifier applies)
	dataset  bool // dataset rows (no generator metadata for the task verifier)
}

// evalExamples picks the prompts: a dataset file, fresh prompts of a synthetic task, or the run's
// own held-out test set.
func evalExamples(f evalFlags, run *train.Config) (promptSet, error) {
	switch {
	case f.data != "":
		ds, err := loadDataset(f.data, f.promptField, f.answerField, f.answerStyle, f.limit)
		if err != nil {
			return promptSet{}, err
		}
		return promptSet{examples: ds.Examples, desc: fmt.Sprintf("%s, first %d rows", f.data, ds.Len()), dataset: true}, nil
	case f.taskName != "":
		gen, err := task.NewGenerator(f.taskName, f.taskOpts, int64(f.seed))
		if err != nil {
			return promptSet{}, usageError{err}
		}
		exs, err := distinctPrompts(gen, f.limit)
		if err != nil {
			return promptSet{}, err
		}
		return promptSet{examples: exs, desc: fmt.Sprintf("task %s%s, fresh prompts from seed %d", f.taskName, optString(f.taskOpts), f.seed)}, nil
	case run == nil:
		return promptSet{}, usagef("need --task NAME or --data FILE (or a --model inside a run folder, to reuse its held-out test set)")
	}
	exs, err := heldOut(*run)
	if err != nil {
		return promptSet{}, err
	}
	if len(exs) == 0 {
		return promptSet{}, usagef("the run has no held-out test set (task.test_size = 0); pass --task or --data")
	}
	if len(exs) > f.limit {
		exs = exs[:f.limit]
	}
	what := "task " + run.Task.Name + optString(run.Task.Options)
	if run.Task.Name == "dataset" {
		what = run.Task.Path
	}
	return promptSet{examples: exs, fromRun: true, dataset: run.Task.Name == "dataset",
		desc: fmt.Sprintf("the run's held-out test set: %s, %d examples", what, len(exs))}, nil
}

func loadDataset(path, promptField, answerField, style string, limit int) (*task.Dataset, error) {
	load := task.LoadJSONL
	if strings.HasSuffix(strings.ToLower(path), ".parquet") {
		load = task.LoadParquet
	}
	ds, err := load(path, task.Fields{Prompt: promptField, Answer: answerField}, task.LoadOptions{AnswerStyle: style, Limit: limit})
	var rowErr *task.RowError
	if errors.As(err, &rowErr) { // the loader's hint names a Go option eval has no flag for
		return nil, usagef("%v (fix the row; eval scores every row)", rowErr)
	}
	if err != nil {
		return nil, usageError{err}
	}
	if ds.Len() == 0 {
		return nil, usagef("dataset %s has no rows", path)
	}
	return ds, nil
}

// heldOut rebuilds the trainer's held-out test set from the run's configuration (train.HeldOut).
func heldOut(c train.Config) ([]task.Example, error) {
	exs, err := train.HeldOut(c)
	if err != nil {
		return nil, usagef("the run's held-out set: %v (run polo eval from the folder the run was started in, or pass --task or --data)", err)
	}
	return exs, nil
}

// distinctPrompts draws n examples with distinct prompts, as the trainer draws its test set.
func distinctPrompts(gen task.Generator, n int) ([]task.Example, error) {
	seen := map[string]bool{}
	var out []task.Example
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n+1000 {
			return nil, usagef("task %s gave only %d distinct prompts; lower --limit", gen.Name(), len(out))
		}
		ex, err := gen.Next()
		if err != nil {
			return nil, err
		}
		if !seen[ex.Prompt] {
			seen[ex.Prompt] = true
			out = append(out, ex)
		}
	}
	return out, nil
}

func optString(o map[string]string) string {
	if len(o) == 0 {
		return ""
	}
	b, _ := json.Marshal(o) // sorted keys
	return " " + string(b)
}

// evalReport is report.json: the eval.Report plus what produced it.
type evalReport struct {
	Model         string           `json:"model"`
	Prompts       string           `json:"prompts"`
	Verifier      string           `json:"verifier"`
	Seed          uint64           `json:"seed"`
	Sampling      samplingInfo     `json:"sampling"`
	SelfCertainty certaintySummary `json:"self_certainty"`
	eval.Report
}

type samplingInfo struct {
	Temperature  float64 `json:"temperature"`
	TopK         int     `json:"top_k"`
	TopP         float64 `json:"top_p"`
	MinP         float64 `json:"min_p"`
	MaxNewTokens int     `json:"max_new_tokens"`
}

// certaintySummary is the mean response self-certainty of all, correct and wrong samples: the
// gap is what makes self-certainty useful for selection. NaN-free: a missing group is null.
type certaintySummary struct {
	Mean      float64  `json:"mean"`
	Correct   *float64 `json:"correct"`
	Incorrect *float64 `json:"incorrect"`
}

func certaintySplit(examples []eval.Example) certaintySummary {
	var sum [2]float64
	var cnt [2]int
	for _, ex := range examples {
		for _, s := range ex.Samples {
			i := 0
			if s.Correct {
				i = 1
			}
			sum[i] += s.SelfCertainty
			cnt[i]++
		}
	}
	out := certaintySummary{Mean: (sum[0] + sum[1]) / float64(cnt[0]+cnt[1])}
	if cnt[1] > 0 {
		m := sum[1] / float64(cnt[1])
		out.Correct = &m
	}
	if cnt[0] > 0 {
		m := sum[0] / float64(cnt[0])
		out.Incorrect = &m
	}
	return out
}

func writeEvalText(w io.Writer, r evalReport) error {
	fmt.Fprintf(w, "model     %s\nprompts   %s\nverifier  %s\nsampling  temperature %g, top-k %d, top-p %g, min-p %g, max %d new tokens, seed %d\n",
		r.Model, r.Prompts, r.Verifier, r.Sampling.Temperature, r.Sampling.TopK, r.Sampling.TopP, r.Sampling.MinP, r.Sampling.MaxNewTokens, r.Seed)
	fmt.Fprintf(w, "self-certainty  mean %.4f, correct samples %s, wrong samples %s\n\n",
		r.SelfCertainty.Mean, fmtOpt(r.SelfCertainty.Correct), fmtOpt(r.SelfCertainty.Incorrect))
	return r.Report.WriteTable(w)
}

func fmtOpt(x *float64) string {
	if x == nil {
		return "-"
	}
	return strconv.FormatFloat(*x, 'f', 4, 64)
}

// exampleLine is one line of examples.jsonl: eval's per-example result plus the prompt, the
// reference and every sample, so a number in the report can be traced to the responses behind it.
type exampleLine struct {
	eval.ExampleResult
	Prompt    string       `json:"prompt"`
	Reference string       `json:"reference"`
	Samples   []sampleLine `json:"samples"`
}

type sampleLine struct {
	Text string `json:"text"`
	eval.Sample
}

func writeEvalFiles(dir string, r evalReport, src []task.Example, examples []eval.Example, texts [][]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create --out folder: %w", err)
	}
	if err := checkFinite(r); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "examples.jsonl"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for i, res := range r.PerExample {
		line := exampleLine{ExampleResult: res, Prompt: src[i].Prompt, Reference: src[i].Answer}
		if line.Prompt == "" && len(src[i].Messages) > 0 {
			line.Prompt = src[i].Messages[len(src[i].Messages)-1].Content
		}
		for j, s := range examples[i].Samples {
			line.Samples = append(line.Samples, sampleLine{Text: texts[i][j], Sample: s})
		}
		if err := enc.Encode(line); err != nil {
			f.Close()
			return fmt.Errorf("write examples.jsonl: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	title := fmt.Sprintf("Best-of-N (%d prompts, n = %d)", r.Examples, r.SamplesPerExample)
	return eval.PlotStrategies(r.BestOfN, title, filepath.Join(dir, "best_of_n.png"))
}

// checkFinite refuses to write a report with NaN or Inf (JSON cannot hold them); it would mean a
// model produced non-finite log-probabilities.
func checkFinite(r evalReport) error {
	vals := []float64{r.PassAt1, r.MeanLength, r.TruncationRate, r.NoAnswerRate, r.SelfCertainty.Mean}
	for _, a := range r.AtK {
		vals = append(vals, a.PassAtK, a.MajAtK)
	}
	for _, row := range r.BestOfN.Accuracy {
		vals = append(vals, row...)
	}
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("report has a non-finite value (%v); the model produced non-finite log-probabilities", v)
		}
	}
	return nil
}
