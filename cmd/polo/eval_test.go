package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/train"
)

// A checkpoint trained once for all eval and sample tests: 40 SFT steps of 1-digit addition take
// the tiny model to a held-out greedy accuracy strictly between 0 and 1 (7/32 at the time of
// writing), so the numbers below are not all zeros or ones.
var (
	ckptOnce sync.Once
	ckptDir  string // RUN_DIR/checkpoints/sft-000040/model
	ckptAcc  float64
	ckptErr  error
)

func trainedCheckpoint(t *testing.T) (model string, heldOutAcc float64) {
	t.Helper()
	ckptOnce.Do(func() {
		dir, err := os.MkdirTemp("", "polo-eval-test-")
		if err != nil {
			ckptErr = err
			return
		}
		cfg, err := train.LoadConfig("", []string{"run_dir=" + dir, "task.options.digits=1", "task.test_size=32",
			"sft.steps=40", "rl.steps=0", "log.plots=false", "log.progress=false",
			// Pinned so that changes to the demo's defaults do not change this checkpoint.
			"model.preset=tiny", "optim.warmup_steps=5", "sft.batch_size=64", "sft.lr=0.003", "eval.every=0"})
		if err != nil {
			ckptErr = err
			return
		}
		if _, err := train.Run(cfg, train.Options{Log: &bytes.Buffer{}}); err != nil {
			ckptErr = err
			return
		}
		recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
		if err != nil {
			ckptErr = err
			return
		}
		ckptAcc = math.NaN()
		for _, r := range recs {
			if r.Phase == "eval-sft" {
				ckptAcc = r.Values["accuracy"]
			}
		}
		ckptDir = filepath.Join(dir, "checkpoints", "sft-000040", "model")
	})
	if ckptErr != nil {
		t.Fatalf("train the test checkpoint: %v", ckptErr)
	}
	return ckptDir, ckptAcc
}

func runPolo(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// readReport reads report.json and examples.jsonl from an --out folder.
func readReport(t *testing.T, dir string) (evalReport, []exampleLine) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep evalReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "examples.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []exampleLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e exampleLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("examples.jsonl line %q: %v", l, err)
		}
		lines = append(lines, e)
	}
	return rep, lines
}

// TestEvalHeldOutMatchesTrainer: without --task, eval rebuilds the run's held-out test set, so greedy
// decoding with one sample must reproduce the accuracy the trainer logged for the same checkpoint
// exactly. This pins eval to the trainer's held-out set (train.HeldOut).
func TestEvalHeldOutMatchesTrainer(t *testing.T) {
	model, acc := trainedCheckpoint(t)
	if !(acc > 0 && acc < 1) {
		t.Fatalf("trainer's held-out accuracy %v: want strictly between 0 and 1 for a meaningful comparison", acc)
	}
	out := t.TempDir()
	code, stdout, stderr := runPolo(t, "eval", "--model", model, "--temperature", "0", "--n", "1", "--out", out, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rep, lines := readReport(t, out)
	if rep.PassAt1 != acc || rep.Examples != 32 || len(lines) != 32 {
		t.Fatalf("greedy pass@1 %v on %d examples, trainer logged %v on 32", rep.PassAt1, rep.Examples, acc)
	}
	if !strings.Contains(stdout, "the run's held-out test set") || rep.Verifier != "task" || rep.Sampling.MaxNewTokens != 6 {
		t.Fatalf("not the run's test set, verifier or token limit:\n%s", stdout)
	}
	// A fresh prompt set from another seed is a different set of prompts.
	out2 := t.TempDir()
	if code, _, stderr := runPolo(t, "eval", "--model", model, "--task", "addition", "--task-opt", "digits=1",
		"--limit", "32", "--temperature", "0", "--n", "1", "--out", out2, "--quiet"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, fresh := readReport(t, out2)
	same := 0
	for i := range fresh {
		if fresh[i].Prompt == lines[i].Prompt {
			same++
		}
	}
	if same == len(fresh) {
		t.Fatal("--task drew exactly the held-out prompts; want fresh prompts from --seed")
	}
}

// TestEvalReportIsConsistent recomputes every reported number it can from the per-example JSONL:
// pass@1, pass@k by brute-force enumeration of k-subsets, the strategies at N = n from the
// selected indices, length and truncation.
func TestEvalReportIsConsistent(t *testing.T) {
	model, _ := trainedCheckpoint(t)
	out := t.TempDir()
	const n = 8
	code, stdout, stderr := runPolo(t, "eval", "--model", model, "--n", "8", "--k", "1,2,8", "--batch", "48",
		"--seed", "3", "--out", out, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"pass@k", "maj@k", "strategy \\ N", "sc-borda", "self-certainty"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	rep, lines := readReport(t, out)
	if rep.Examples != 32 || len(lines) != 32 || rep.SamplesPerExample != n {
		t.Fatalf("%d examples × %d samples, %d lines", rep.Examples, rep.SamplesPerExample, len(lines))
	}
	if !slices.Equal(rep.BestOfN.N, []int{1, 2, 4, 8}) || len(rep.AtK) != 3 {
		t.Fatalf("N %v, k rows %d", rep.BestOfN.N, len(rep.AtK))
	}
	var pass1, length, trunc, scSum float64
	passK := make([]float64, len(rep.AtK))
	atN := map[string]float64{}
	anyCorrect, anyWrong := false, false
	for _, l := range lines {
		if len(l.Samples) != n || l.N != n {
			t.Fatalf("example %s has %d samples", l.ID, len(l.Samples))
		}
		correct := make([]bool, n)
		c := 0
		for j, s := range l.Samples {
			correct[j] = s.Correct
			if s.Correct {
				c++
				anyCorrect = true
				if s.Answer == nil || *s.Answer != l.Reference {
					t.Fatalf("example %s sample %d: correct with answer %v, reference %q", l.ID, j, s.Answer, l.Reference)
				}
			} else {
				anyWrong = true
			}
			if math.IsNaN(s.SelfCertainty) || s.SelfCertainty < 0 || s.MeanLogProb > 0 || math.IsNaN(s.MeanLogProb) {
				t.Fatalf("sample stats: self-certainty %v (KL, want >= 0), mean logprob %v (want <= 0)", s.SelfCertainty, s.MeanLogProb)
			}
			length += float64(s.Length)
			if s.Truncated {
				trunc++
			}
			scSum += s.SelfCertainty
		}
		if c != l.Correct {
			t.Fatalf("example %s: correct = %d, samples say %d", l.ID, l.Correct, c)
		}
		pass1 += float64(c) / n
		for i, a := range rep.AtK {
			bf := bruteForcePassAtK(correct, a.K)
			if math.Abs(l.AtK[i].PassAtK-bf) > 1e-12 {
				t.Fatalf("example %s pass@%d = %v, enumeration %v", l.ID, a.K, l.AtK[i].PassAtK, bf)
			}
			passK[i] += bf
		}
		for _, st := range rep.BestOfN.Strategies {
			if j := l.Selected[st]; j >= 0 && l.Samples[j].Correct {
				atN[st]++
			}
		}
		// The self-certainty pick is the most self-certain answered sample.
		j := l.Selected["self-certainty"]
		for _, s := range l.Samples {
			if s.Answer != nil && s.SelfCertainty > l.Samples[j].SelfCertainty {
				t.Fatalf("example %s: self-certainty picked %d (%v) but %v is larger", l.ID, j, l.Samples[j].SelfCertainty, s.SelfCertainty)
			}
		}
		// The majority pick carries the most frequent answer.
		if m := l.Selected["majority"]; m >= 0 {
			count := map[string]int{}
			for _, s := range l.Samples {
				if s.Answer != nil {
					count[*s.Answer]++
				}
			}
			if *l.MajAnswer != *l.Samples[m].Answer || count[*l.MajAnswer] != slices.Max(mapValues(count)) {
				t.Fatalf("example %s: majority answer %q, counts %v", l.ID, *l.MajAnswer, count)
			}
		}
	}
	if !anyCorrect || !anyWrong {
		t.Fatalf("samples all correct or all wrong; the checks above would be vacuous")
	}
	E, S := float64(len(lines)), float64(len(lines)*n)
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %v, recomputed %v", what, got, want)
		}
	}
	near("pass@1", rep.PassAt1, pass1/E)
	near("mean length", rep.MeanLength, length/S)
	near("truncation rate", rep.TruncationRate, trunc/S)
	near("mean self-certainty", rep.SelfCertainty.Mean, scSum/S)
	for i, a := range rep.AtK {
		near("pass@k", a.PassAtK, passK[i]/E)
		// maj@k for k < n is estimated on seeded random subsets, pass@k exactly, so the estimate may
		// exceed pass@k by sampling error; with k = n both are exact and maj@n <= pass@n strictly.
		slack := 1e-12
		if a.K < n {
			slack = 0.02
		}
		if a.MajAtK < 0 || a.MajAtK > 1 || a.MajAtK > a.PassAtK+slack {
			t.Errorf("maj@%d = %v, pass@%d = %v", a.K, a.MajAtK, a.K, a.PassAtK)
		}
		if i > 0 && a.PassAtK < rep.AtK[i-1].PassAtK {
			t.Errorf("pass@k decreases: %v", rep.AtK)
		}
	}
	last := len(rep.BestOfN.N) - 1
	for k, st := range rep.BestOfN.Strategies {
		near("accuracy of "+st+" at N = n", rep.BestOfN.Accuracy[k][last], atN[st]/E)
	}
	oracle := slices.Index(rep.BestOfN.Strategies, "oracle")
	near("oracle at N = n vs pass@n", rep.BestOfN.Accuracy[oracle][last], rep.AtK[2].PassAtK)
	png, err := os.ReadFile(filepath.Join(out, "best_of_n.png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n")) {
		t.Fatalf("best_of_n.png: %v", err)
	}
}

// bruteForcePassAtK is the fraction of k-subsets of the samples that contain a correct one.
func bruteForcePassAtK(correct []bool, k int) float64 {
	n := len(correct)
	hit, total := 0, 0
	for mask := 0; mask < 1<<n; mask++ {
		if popcount(mask) != k {
			continue
		}
		total++
		for i := range n {
			if mask&(1<<i) != 0 && correct[i] {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(total)
}

func popcount(x int) int {
	c := 0
	for ; x > 0; x &= x - 1 {
		c++
	}
	return c
}

func mapValues(m map[string]int) []int {
	var v []int
	for _, x := range m {
		v = append(v, x)
	}
	return v
}

// TestEvalIsDeterministic: the same seed gives a byte-identical report and examples; another seed
// gives other samples.
func TestEvalIsDeterministic(t *testing.T) {
	model, _ := trainedCheckpoint(t)
	files := func(seed string) (string, string) {
		out := t.TempDir()
		if code, _, stderr := runPolo(t, "eval", "--model", model, "--n", "4", "--limit", "12", "--seed", seed, "--out", out, "--quiet"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		a, _ := os.ReadFile(filepath.Join(out, "report.json"))
		b, _ := os.ReadFile(filepath.Join(out, "examples.jsonl"))
		return string(a), string(b)
	}
	r1, e1 := files("5")
	r2, e2 := files("5")
	_, e3 := files("6")
	if r1 != r2 || e1 != e2 {
		t.Fatal("same seed, different output")
	}
	if e1 == e3 {
		t.Fatal("seeds 5 and 6 gave identical samples")
	}
}

// TestEvalDataset evaluates a JSONL file with the exact verifier: a sample is correct exactly when
// its text is the reference.
func TestEvalDataset(t *testing.T) {
	model, _ := trainedCheckpoint(t)
	data := filepath.Join(t.TempDir(), "sums.jsonl")
	rows := `{"question": "3+4=", "answer": "7"}
{"question": "5+5=", "answer": "10"}
{"question": "9+0=", "answer": "9"}
{"question": "1+2=", "answer": "3"}
`
	if err := os.WriteFile(data, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, _, stderr := runPolo(t, "eval", "--model", model, "--data", data, "--verifier", "exact", "--n", "6", "--limit", "3",
		"--out", out, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rep, lines := readReport(t, out)
	if rep.Examples != 3 || rep.Verifier != "exact" {
		t.Fatalf("%d examples, verifier %s", rep.Examples, rep.Verifier)
	}
	for i, l := range lines {
		if want := []string{"3+4=", "5+5=", "9+0="}[i]; l.Prompt != want {
			t.Fatalf("line %d prompt %q, want %q (file order)", i, l.Prompt, want)
		}
		for _, s := range l.Samples {
			if s.Correct != (strings.TrimSpace(s.Text) == l.Reference) {
				t.Fatalf("prompt %s: text %q, reference %q, correct %v", l.Prompt, s.Text, l.Reference, s.Correct)
			}
		}
	}
}

// TestEvalErrors: user mistakes exit 2 with one line naming the problem.
func TestEvalErrors(t *testing.T) {
	model, _ := trainedCheckpoint(t)
	data := filepath.Join(t.TempDir(), "d.jsonl")
	if err := os.WriteFile(data, []byte(`{"question": "1+1=", "answer": "2"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bare := t.TempDir() // a model folder outside any run: no held-out set to fall back on
	for _, name := range []string{"config.json", "model.safetensors", "polo_tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(model, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bare, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--task", "addition"}, "need --model"},
		{"missing model", []string{"--model", filepath.Join(bare, "nope"), "--task", "addition"}, "no such file"},
		{"not a model", []string{"--model", t.TempDir(), "--task", "addition"}, "model folder"},
		{"unknown task", []string{"--model", model, "--task", "multiply"}, `unknown task generator "multiply"`},
		{"bad task option", []string{"--model", model, "--task", "addition", "--task-opt", "digits=x"}, "digits"},
		{"task and data", []string{"--model", model, "--task", "addition", "--data", data}, "exclude each other"},
		{"no prompts", []string{"--model", bare}, "need --task NAME or --data FILE"},
		{"n zero", []string{"--model", model, "--n", "0"}, "--n = 0"},
		{"k above n", []string{"--model", model, "--n", "4", "--k", "1,8"}, "--k 8"},
		{"k not a number", []string{"--model", model, "--k", "1,x"}, "not an integer"},
		{"negative temperature", []string{"--model", model, "--temperature", "-1"}, "temperature = -1"},
		{"bad top-p", []string{"--model", model, "--top-p", "1.5"}, "top_p = 1.5"},
		{"unknown verifier", []string{"--model", model, "--verifier", "vibes"}, `unknown verifier kind "vibes"`},
		{"task verifier on data", []string{"--model", model, "--data", data, "--verifier", "task"}, "only scores generated examples"},
		{"missing data", []string{"--model", model, "--data", data + ".missing"}, "d.jsonl.missing"},
		{"foreign alphabet", []string{"--model", model, "--task", "countdown"}, "does not know"},
		{"chat without template", []string{"--model", model, "--chat"}, "--chat needs a tokenizer with a chat template"},
		{"unknown flag", []string{"--model", model, "--frobnicate"}, "frobnicate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runPolo(t, append([]string{"eval", "--quiet"}, tc.args...)...)
			last := strings.TrimSpace(stderr)
			if i := strings.LastIndex(last, "\n"); i >= 0 {
				last = last[i+1:]
			}
			if code != 2 || !strings.Contains(last, tc.want) || !strings.HasPrefix(last, "polo eval: ") {
				t.Fatalf("exit %d, last stderr line %q; want exit 2 and %q", code, last, tc.want)
			}
		})
	}
}
