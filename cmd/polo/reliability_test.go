package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/polo-rl/polo/internal/memlimit"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/tokenizer"
)

// TestVerifyCodeWrongTypedTests: "tests" that are a JSON object or number are an error verdict
// (correct false, a reason, exit 2), never a pass (issue 14, item 9).
func TestVerifyCodeWrongTypedTests(t *testing.T) {
	stdin := `{"program": "print(1)", "tests": {}}
{"program": "print(1)", "tests": 5}
{"program": "print(1)", "tests": null}
{"program": "print(1)", "tests": []}
{"program": "print(1)", "tests": "5"}`
	code, res, stderr := runVerifyCmd(t, stdin, "--kind", "code")
	if code != 2 || !strings.Contains(stderr, `"tests" must be a list of {"input","output"} or a string of Python asserts, got {}`) {
		t.Fatalf("exit %d, stderr %q; want exit 2 naming the wrong-typed tests", code, stderr)
	}
	if len(res) != 5 {
		t.Fatalf("%d verdicts, want 5 (one per line): %+v", len(res), res)
	}
	reasons := []string{"got {}", "got 5", "tests", "empty list", "no assert statement"}
	for i, r := range res {
		if r.Correct || r.Value != 0 || !strings.Contains(r.Reason, reasons[i]) {
			t.Errorf("line %d: %+v, want an error verdict with reason ~%q", i+1, r, reasons[i])
		}
	}
}

// TestVerifyCodeMemoryTooSmall: a memory limit Python cannot start under is named as such, not
// blamed on the sandbox's user namespaces (issue 14, minor item).
func TestVerifyCodeMemoryTooSmall(t *testing.T) {
	code, _, stderr := runVerifyCmd(t, `{"program": "print(1)", "tests": "assert True"}`, "--kind", "code", "--opt", "memory_mb=1")
	if code == 0 || !strings.Contains(stderr, "memory_mb=1 is too little for Python to start; use at least 32") || strings.Contains(stderr, "user namespaces") {
		t.Fatalf("exit %d, stderr %q; want a clear memory_mb error", code, stderr)
	}
}

// tinyPolicy writes a from-scratch tiny model with a character tokenizer (what `polo train`
// checkpoints hold) into dir; its context is the preset's 2048 positions.
func tinyPolicy(t testing.TB, dir string) string {
	tok, err := tokenizer.NewChar("0123456789+=")
	if err != nil {
		t.Fatal(err)
	}
	mc, err := model.Preset("tiny", tok.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(mc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "polo_tokenizer.json"), []byte(`{"kind": "char", "alphabet": "0123456789+="}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSampleHostileSizes: `polo sample --n 100000000` and `--max-new-tokens 100000000` (on a model
// with a 2048-position context) are refused with a usage error (exit 2) under a 1 GiB memory limit,
// instead of growing until the machine kills them (issue 14, item 7).
func TestSampleHostileSizes(t *testing.T) {
	if memlimit.InChild() {
		dir := os.Getenv("POLO_TEST_MODEL")
		var msgs []string
		for _, args := range [][]string{{"--n", "100000000"}, {"--max-new-tokens", "100000000"}, {"--n", "2000000", "--max-new-tokens", "2000"}} {
			var out, errb bytes.Buffer
			code := run(append([]string{"sample", "--model", dir, "--prompt", "1+2="}, args...), strings.NewReader(""), &out, &errb)
			msgs = append(msgs, fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(errb.String())))
		}
		memlimit.Report(fmt.Errorf("%s", strings.Join(msgs, " | ")))
	}
	dir := tinyPolicy(t, t.TempDir())
	res := memlimit.Run(t, "TestSampleHostileSizes", 1024, "POLO_TEST_MODEL="+dir)
	res.Expect(t, "exit 2")
	parts := strings.Split(res.Err, " | ")
	wants := []string{
		"exit 2: polo sample: --n 100000000, prompt 5 tokens + --max-new-tokens 256: model NewDecoder: 100000000 rows × 384 positions need about",
		"exit 2: polo sample: --n 4, prompt 5 tokens + --max-new-tokens 100000000: model NewDecoder: rows of up to 100000005 tokens (prompt + new tokens) exceed the model's context of 2048 positions",
		"exit 2: polo sample: --n 2000000, prompt 5 tokens + --max-new-tokens 2000: model NewDecoder: 2000000 rows × 2112 positions need about",
	}
	if len(parts) != len(wants) {
		t.Fatalf("child reported %q", res.Err)
	}
	for i, w := range wants {
		if !strings.HasPrefix(parts[i], w) || strings.Count(parts[i], "\n") > 0 {
			t.Errorf("case %d: %q, want it to start with %q", i, parts[i], w)
		}
	}
	// A sane request still samples.
	if code, stdout, stderr := runPolo(t, "sample", "--model", dir, "--prompt", "1+2=", "--n", "3", "--max-new-tokens", "4"); code != 0 || strings.Count(stdout, "\n") != 3 {
		t.Fatalf("sane sample: exit %d, %d lines, stderr %s", code, strings.Count(stdout, "\n"), stderr)
	}
}

// TestReliabilityCLIErrors: the minor findings of issue 14 as a table: each bad input is a one-line
// error with exit 2 (or the right output), never a silent success.
func TestReliabilityCLIErrors(t *testing.T) {
	tok := filepath.Join("..", "..", "testdata", "tokenizers", "llama3")
	dir := t.TempDir()
	dup := filepath.Join(dir, "dup.yaml")
	os.WriteFile(dup, []byte("rl:\n  steps: 3\n  steps: 5\n"), 0o644)
	pol := tinyPolicy(t, filepath.Join(dir, "policy"))
	malformed := filepath.Join("..", "..", "testdata", "task", "malformed.jsonl")
	cases := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string // exact, when not ""
		stderr string // substring of the last stderr line
	}{
		{"tokenize empty string", []string{"tokenize", "--tokenizer", tok}, `""` + "\n", 0, "[]\n", ""},
		{"tokenize null", []string{"tokenize", "--tokenizer", tok}, "null\n", 2, "", "stdin line 1: want a JSON string"},
		{"decode negative id", []string{"tokenize", "--tokenizer", tok, "--decode"}, "[-1]\n", 2, "", "token id -1 is outside the vocabulary"},
		{"decode id past vocab", []string{"tokenize", "--tokenizer", tok, "--decode"}, "[99999999]\n", 2, "", "token id 99999999 is outside the vocabulary"},
		{"decode null", []string{"tokenize", "--tokenizer", tok, "--decode"}, "null\n", 2, "", "want a JSON array of token ids"},
		{"train -h", []string{"train", "-h"}, "", 0, "", ""},
		{"compare -h", []string{"compare", "-h"}, "", 0, "", ""},
		{"compare duplicate algos", []string{"compare", "--algos", "grpo,grpo", "--seeds", "1"}, "", 2, "", "--algos names grpo twice"},
		{"compare algo.set for a preset not compared", []string{"compare", "--algos", "nlpo", "--seeds", "1", "--set", "algo.set.mask_sync_every=1"}, "", 2, "", "algo.set applies to the preset algo.name names (grpo)"},
		{"fractional steps", []string{"train", "--print-config", "--set", "rl.steps=3.5"}, "", 2, "", "config field rl.steps: want a whole number, got 3.5"},
		{"negative steps", []string{"train", "--print-config", "--set", "sft.steps=-1"}, "", 2, "", "config field sft.steps: want >= 0"},
		{"negative lr", []string{"train", "--print-config", "--set", "optim.lr=-0.1"}, "", 2, "", "config field optim.lr: want > 0"},
		{"negative clip", []string{"train", "--print-config", "--set", "optim.clip_norm=-1"}, "", 2, "", "config field optim.clip_norm: want >= 0"},
		{"negative warm-up", []string{"train", "--print-config", "--set", "optim.warmup_steps=-5"}, "", 2, "", "config field optim.warmup_steps: want >= 0"},
		{"empty --set value", []string{"train", "--print-config", "--set", "rl.steps="}, "", 2, "", "--set rl.steps=: empty value"},
		{"duplicate YAML key", []string{"train", "--print-config", dup}, "", 2, "", "key rl.steps appears twice (lines 2 and 3)"},
		{"test_size 0", []string{"train", "--print-config", "--set", "task.test_size=0"}, "", 2, "", "config field task.test_size: want in [1, 1000000]"},
		{"top_p 2", []string{"train", "--print-config", "--set", "sampling.top_p=2"}, "", 2, "", "config field sampling.top_p: want in (0, 1]"},
		{"eval oversized request", []string{"eval", "--model", pol, "--task", "addition", "--task-opt", "digits=1", "--limit", "2", "--n", "1", "--max-new-tokens", "100000000"}, "", 2, "", "exceed the model's context of 2048 positions"},
		{"eval oversized batch", []string{"eval", "--model", pol, "--task", "addition", "--task-opt", "digits=1", "--limit", "2", "--n", "50000000", "--batch", "100000000", "--max-new-tokens", "2000"}, "", 2, "", "positions need about"},
		{"task.path without dataset", []string{"train", "--print-config", "--set", "task.path=data.jsonl"}, "", 2, "", "config field task.path is set (data.jsonl) but task.name is addition, which ignores it; set task.name: dataset"},
		{"char tokenizer, HF model vocab", []string{"train", "--print-config", "--set", "model.path=" + filepath.Join("..", "..", "testdata", "models", "llama")}, "", 2, "", "has vocab_size 320, but tokenizer.kind char has 15 tokens; use tokenizer.kind: hf"},
		{"char tokenizer, matching model", []string{"train", "--print-config", "--set", "model.path=" + pol}, "", 0, "", ""},
		{"dataset row error hint", []string{"train", "--set", "run_dir=" + filepath.Join(dir, "ds"), "--set", "task.name=dataset", "--set", "task.path=" + malformed, "--set", "tokenizer.kind=hf", "--set", "tokenizer.path=" + tok}, "", 1, "", "malformed.jsonl line 3: not a JSON object: invalid character 'h' in literal true (expecting 'r') (fix the row, or set task.on_error: skip to drop malformed rows)"},
		{"bad task.on_error", []string{"train", "--print-config", "--set", "task.on_error=ignore"}, "", 2, "", "config field task.on_error: want stop or skip"},
		{"eval dataset row error hint", []string{"eval", "--model", pol, "--data", malformed}, "", 2, "", "malformed.jsonl line 3: not a JSON object: invalid character 'h' in literal true (expecting 'r') (fix the row; eval scores every row)"},
		{"held-out larger than task", []string{"train", "--print-config", "--set", "task.options.digits=1", "--set", "task.test_size=101"}, "", 2, "", "has only 100 distinct prompts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, strings.NewReader(c.stdin), &out, &errb)
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			last := lines[len(lines)-1]
			if code != c.code || (c.stdout != "" && out.String() != c.stdout) || !strings.Contains(last, c.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr ~%q", code, out.String(), errb.String(), c.code, c.stdout, c.stderr)
			}
		})
	}
}

// TestReliabilityTrainLogOff: log.progress: false prints no progress (even without --quiet), and
// with log.plots: false the summary does not list plots that were never written (issue 14 minor).
func TestReliabilityTrainLogOff(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runPolo(t, "train", "--set", "run_dir="+runDir, "--set", "model.preset=tiny", "--set", "task.options.digits=1",
		"--set", "task.test_size=4", "--set", "sft.steps=1", "--set", "rl.steps=1", "--set", "sampling.prompts_per_step=2",
		"--set", "sampling.group_size=2", "--set", "sampling.max_new_tokens=4", "--set", "log.progress=false", "--set", "log.plots=false")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "[1/2") || strings.Contains(stderr, "[2/2") {
		t.Errorf("log.progress: false, yet stderr has progress lines:\n%s", stderr)
	}
	if strings.Contains(stdout, "plots") || !strings.Contains(stdout, "config.yaml, metrics.jsonl, checkpoints/") {
		t.Errorf("log.plots: false, yet the summary's files line is wrong:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(runDir, "plots")); !os.IsNotExist(err) {
		t.Errorf("log.plots: false wrote %s (%v)", filepath.Join(runDir, "plots"), err)
	}
}

// TestReliabilityResumeStepPastTotal: --resume of a complete run says so and exits 0; a state.json
// whose step is past the configured steps (step 999 of 1) is a clear error, never a silent exit 0
// (issue 14 minor).
func TestReliabilityResumeStepPastTotal(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runPolo(t, "train", "--quiet", "--set", "run_dir="+runDir, "--set", "model.preset=tiny", "--set", "task.options.digits=1",
		"--set", "task.test_size=4", "--set", "sft.steps=1", "--set", "rl.steps=1", "--set", "sampling.prompts_per_step=2",
		"--set", "sampling.group_size=2", "--set", "sampling.max_new_tokens=4", "--set", "log.plots=false")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runPolo(t, "train", "--quiet", "--resume", runDir)
	if code != 0 || !strings.Contains(stderr, "is already complete (rl step 1 of 1 in rl-000001); nothing to train") || !strings.Contains(stdout, "accuracy, greedy") {
		t.Fatalf("resume of a complete run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	states, _ := filepath.Glob(filepath.Join(runDir, "checkpoints", "*", "state.json"))
	if len(states) == 0 {
		t.Fatal("no state.json")
	}
	for _, p := range states {
		data, _ := os.ReadFile(p)
		data = regexp.MustCompile(`"step":\s*\d+`).ReplaceAll(data, []byte(`"step": 999`))
		os.WriteFile(p, data, 0o644)
	}
	code, _, stderr = runPolo(t, "train", "--quiet", "--resume", runDir)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 1 || !strings.Contains(lines[len(lines)-1], "step 999 is outside 0..") || !strings.Contains(stderr, "the checkpoint does not belong to this run") {
		t.Fatalf("resume at step 999 of 1: exit %d, stderr %q; want exit 1 and a clear error", code, stderr)
	}
}
