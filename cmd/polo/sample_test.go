package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
	"github.com/polo-rl/polo/train"
)

func parseSampleLines(t *testing.T, stdout string) []sampleLineOut {
	t.Helper()
	var out []sampleLineOut
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var s sampleLineOut
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		out = append(out, s)
	}
	return out
}

// directSample is what `polo sample` must print: rollout.Sample on n copies of the prompt with the
// same configuration and seed, and the per-response means of eval.
func directSample(t *testing.T, p *train.Policy, ids []int32, n int, cfg rollout.Config, seed uint64) []sampleLineOut {
	t.Helper()
	dec, err := p.Model.NewDecoder(n, len(ids)+cfg.MaxNewTokens)
	if err != nil {
		t.Fatal(err)
	}
	comps, err := rollout.Sample(dec, rollout.Repeat([][]int32{ids}, n), cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]sampleLineOut, n)
	for i, c := range comps {
		var lp, sc float64
		for j := range c.Tokens {
			lp += float64(c.ModelLogProbs[j])
			sc += float64(c.SelfCertainty[j])
		}
		k := float64(len(c.Tokens))
		out[i] = sampleLineOut{Index: i, Text: p.Text(c.Tokens), Tokens: c.Tokens, Finish: c.Finish,
			MeanLogProb: lp / k, SelfCertainty: sc / k}
	}
	return out
}

func sameLines(a, b []sampleLineOut) bool {
	return slices.EqualFunc(a, b, func(x, y sampleLineOut) bool {
		return x.Index == y.Index && x.Text == y.Text && slices.Equal(x.Tokens, y.Tokens) && x.Finish == y.Finish &&
			x.MeanLogProb == y.MeanLogProb && x.SelfCertainty == y.SelfCertainty
	})
}

// TestSampleMatchesRollout: polo sample prints exactly what a direct rollout.Sample call draws
// (tokens, text, finish, mean log-prob, self-certainty), is deterministic for a seed, and at
// temperature 0 prints the greedy decoding n times.
func TestSampleMatchesRollout(t *testing.T) {
	modelDir, _ := trainedCheckpoint(t)
	p, err := train.LoadPolicy(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := p.Prompt(task.Example{Prompt: "3+4="})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		temperature float64
		n           int
		seed        uint64
	}{{1, 6, 7}, {0.7, 3, 8}, {0, 4, 9}}
	for _, tc := range tests {
		args := []string{"sample", "--model", modelDir, "--prompt", "3+4=", "--n", strconv.Itoa(tc.n),
			"--temperature", strconv.FormatFloat(tc.temperature, 'g', -1, 64), "--seed", strconv.FormatUint(tc.seed, 10)}
		code, stdout, stderr := runPolo(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got := parseSampleLines(t, stdout)
		// max-new-tokens defaults to the run's sampling.max_new_tokens (6).
		cfg := rollout.Config{Temperature: tc.temperature, TopP: 1, MaxNewTokens: 6, StopTokens: p.StopTokens()}
		want := directSample(t, p, ids, tc.n, cfg, tc.seed)
		if !sameLines(got, want) {
			t.Fatalf("temperature %v: polo sample\n%v\ndirect rollout.Sample\n%v", tc.temperature, got, want)
		}
		_, again, _ := runPolo(t, args...)
		if again != stdout {
			t.Fatalf("temperature %v: same seed, different output", tc.temperature)
		}
		if tc.temperature == 0 {
			greedy := rollout.Config{Temperature: 0, MaxNewTokens: 6, StopTokens: p.StopTokens()}
			g := directSample(t, p, ids, 1, greedy, 12345)[0]
			// n prompts decode as one batch, the greedy reference as a batch of one: the tokens must
			// match, the log-probs up to float32 rounding (the engine picks matmul kernels by the
			// number of rows, and they sum in different orders; nothing promises batch invariance).
			for _, s := range got {
				if !slices.Equal(s.Tokens, g.Tokens) || math.Abs(s.MeanLogProb-g.MeanLogProb) > 1e-6*(1+math.Abs(g.MeanLogProb)) {
					t.Fatalf("temperature 0 line %d: %v, greedy %v (mean log-prob %v vs %v)", s.Index, s.Tokens, g.Tokens, s.MeanLogProb, g.MeanLogProb)
				}
			}
		}
	}
	// Another seed draws other continuations.
	_, a, _ := runPolo(t, "sample", "--model", modelDir, "--prompt", "3+4=", "--n", "6", "--seed", "1")
	_, b, _ := runPolo(t, "sample", "--model", modelDir, "--prompt", "3+4=", "--n", "6", "--seed", "2")
	if a == b {
		t.Fatal("seeds 1 and 2 gave identical continuations")
	}
}

// TestSampleChat builds a tiny model over the Qwen3 tokenizer fixture and checks that --chat
// samples from the chat-template rendering of the prompt as a user turn.
func TestSampleChat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40 MB model (151k-token vocabulary); run without -short")
	}
	tokDir := filepath.Join("..", "..", "testdata", "tokenizers", "qwen3")
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := model.Preset("tiny", tok.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(mc, 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(tokDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := train.LoadPolicy(dir)
	if err != nil {
		t.Fatal(err)
	}
	text, err := tok.ApplyChatTemplate([]tokenizer.Message{{Role: "user", Content: "What is 2+2?"}},
		tokenizer.ChatOptions{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "<|im_start|>user\nWhat is 2+2?<|im_end|>") {
		t.Fatalf("template rendering %q", text)
	}
	cfg := rollout.Config{Temperature: 1, TopP: 1, MaxNewTokens: 3, StopTokens: p.StopTokens()}
	for _, chat := range []bool{true, false} {
		args := []string{"sample", "--model", dir, "--prompt", "What is 2+2?", "--n", "2", "--max-new-tokens", "3", "--seed", "4"}
		ids := tok.EncodeWithSpecial("What is 2+2?")
		if chat {
			args = append(args, "--chat")
			ids = tok.Encode(text)
		}
		code, stdout, stderr := runPolo(t, args...)
		if code != 0 {
			t.Fatalf("chat %v: exit %d: %s", chat, code, stderr)
		}
		if got, want := parseSampleLines(t, stdout), directSample(t, p, ids, 2, cfg, 4); !sameLines(got, want) {
			t.Fatalf("chat %v: polo sample\n%v\ndirect on the rendered prompt\n%v", chat, got, want)
		}
	}
}

// TestSampleErrors: user mistakes exit 2 with one line naming the problem.
func TestSampleErrors(t *testing.T) {
	modelDir, _ := trainedCheckpoint(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--prompt", "1+1="}, "need --model"},
		{"missing model", []string{"--model", filepath.Join(t.TempDir(), "gone"), "--prompt", "1+1="}, "no such file"},
		{"no prompt", []string{"--model", modelDir}, "need --prompt"},
		{"n zero", []string{"--model", modelDir, "--prompt", "1+1=", "--n", "0"}, "--n = 0"},
		{"negative temperature", []string{"--model", modelDir, "--prompt", "1+1=", "--temperature", "-0.5"}, "temperature = -0.5"},
		{"negative max tokens", []string{"--model", modelDir, "--prompt", "1+1=", "--max-new-tokens", "-3"}, "--max-new-tokens = -3"},
		{"unknown characters", []string{"--model", modelDir, "--prompt", "1 plus 1"}, `" plus "`},
		{"chat without template", []string{"--model", modelDir, "--prompt", "1+1=", "--chat"}, "--chat needs a tokenizer with a chat template"},
		{"stray argument", []string{"--model", modelDir, "1+1="}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runPolo(t, append([]string{"sample"}, tc.args...)...)
			last := strings.TrimSpace(stderr)
			if i := strings.LastIndex(last, "\n"); i >= 0 {
				last = last[i+1:]
			}
			if code != 2 || !strings.Contains(last, tc.want) || !strings.HasPrefix(last, "polo sample: ") {
				t.Fatalf("exit %d, last stderr line %q; want exit 2 and %q", code, last, tc.want)
			}
		})
	}
}
