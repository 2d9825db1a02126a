package main

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/value"
)

// handCritic is a critic with known scores: Q(x) = SiLU(4·x_k) + 0.5 on feature k of layer 1, so a
// candidate's Q is a closed-form function of one hidden unit at its last token.
func handCritic(t *testing.T, in, k int) (*value.Critic, string) {
	t.Helper()
	q := &value.Head{In: in, Hidden: 1, W1: make([]float64, in), B1: []float64{0}, W2: []float64{1}, B2: 0.5}
	q.W1[k] = 4
	v := &value.Head{In: in, Hidden: 1, W1: make([]float64, in), B1: []float64{0}, W2: []float64{1}}
	c := &value.Critic{Q: q, V: v, Gamma: 1, Layer: 1}
	path := filepath.Join(t.TempDir(), "critic.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	return c, path
}

// polo eval --select q --value: every candidate's Q is the hand-made head on the policy's own
// layer-1 features (recomputed here directly), the q-value selection is their argmax among
// answered samples, and the table has the q-value row beside majority, self-certainty and oracle.
func TestEvalSelectQ(t *testing.T) {
	model, _ := trainedCheckpoint(t)
	pol, run, err := loadPolicy(model, io.Discard)
	if err != nil || run == nil {
		t.Fatalf("load checkpoint: %v", err)
	}
	critic, path := handCritic(t, pol.Model.Config().HiddenSize, 3)
	out := t.TempDir()
	code, stdout, stderr := runPolo(t, "eval", "--quiet", "--model", model, "--n", "4", "--limit", "6", "--select", "q", "--value", path, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, row := range []string{"q-value", "majority", "self-certainty", "oracle"} {
		if !strings.Contains(stdout, row) {
			t.Errorf("table lacks a %s row:\n%s", row, stdout)
		}
	}
	rep, lines := readReport(t, out)
	if got := rep.BestOfN.Strategies; got[len(got)-2] != "q-value" || got[len(got)-1] != "oracle" {
		t.Errorf("strategies %v, want q-value just above oracle", got)
	}
	exs, err := heldOut(*run)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[float64]bool{}
	for i, line := range lines {
		prompt, err := encodePrompt(pol, exs[i], false)
		if err != nil {
			t.Fatal(err)
		}
		best, bestQ, anyAnswer := -1, math.Inf(-1), false
		for _, s := range line.Samples {
			anyAnswer = anyAnswer || s.Answer != nil
		}
		for j, s := range line.Samples {
			// Direct computation: the sample's tokens (text + EOS unless cut by the limit),
			// layer-1 features of prompt+response, the head at the last token.
			resp := pol.Tokenizer().Encode(s.Text)
			if !s.Truncated {
				resp = append(resp, pol.StopTokens()[0])
			}
			seq := append(append([]int32(nil), prompt...), resp...)
			mask := make([]int32, len(seq))
			for p := range mask {
				mask[p] = 1
			}
			h, err := pol.Model.HiddenAt([][]int32{seq}, [][]int32{mask}, 1)
			if err != nil {
				t.Fatal(err)
			}
			want := critic.Q.Eval(h[0][len(seq)-1])
			if math.Abs(s.Q-want) > 1e-4 {
				t.Errorf("example %d sample %d (%q): q %.6f, direct %.6f", i, j, s.Text, s.Q, want)
			}
			distinct[math.Round(s.Q*1e4)] = true
			if (!anyAnswer || s.Answer != nil) && s.Q > bestQ {
				best, bestQ = j, s.Q
			}
		}
		if got := line.Selected["q-value"]; got != best {
			t.Errorf("example %d: q-value selected %d, argmax is %d (q %v)", i, got, best, qsOf(line))
		}
	}
	if len(distinct) < 3 {
		t.Errorf("the head gave only %d distinct scores; the test would not tell rankings apart", len(distinct))
	}
}

func qsOf(l exampleLine) []float64 {
	var q []float64
	for _, s := range l.Samples {
		q = append(q, s.Q)
	}
	return q
}

// Bad --select/--value input: exit 2 and one line naming the problem.
func TestEvalSelectQErrors(t *testing.T) {
	model, _ := trainedCheckpoint(t)
	pol, _, err := loadPolicy(model, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, good := handCritic(t, pol.Model.Config().HiddenSize, 0)
	_, narrow := handCritic(t, 3, 0)
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte(`{"Q": {"In": 2, "Hidden": 2, "W1": [1]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	malformed := filepath.Join(dir, "malformed.json")
	if err := os.WriteFile(malformed, []byte(`{"Q": {"In": 2, "Hidden": 2, "W1": [1]}, "V": {"In": 2, "Hidden": 1, "W1": [1, 2], "B1": [0], "W2": [1]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"q without critic", []string{"--select", "q"}, "--select q needs --value"},
		{"unknown selector", []string{"--select", "q,vibes", "--value", good}, `unknown selector "vibes"`},
		{"missing critic", []string{"--value", filepath.Join(dir, "nope.json")}, "nope.json"},
		{"not a critic", []string{"--value", garbage}, "is not a critic"},
		{"malformed head", []string{"--value", malformed}, "malformed head"},
		{"wrong feature size", []string{"--select", "q", "--value", narrow}, "does not fit this model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runPolo(t, append([]string{"eval", "--quiet", "--model", model, "--n", "2", "--limit", "2"}, tc.args...)...)
			msg := strings.TrimSpace(stderr)
			if code != 2 || strings.Contains(msg, "\n") || !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "polo eval: ") {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", code, msg, tc.want)
			}
		})
	}
}
