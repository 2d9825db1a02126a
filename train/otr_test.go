package train

import (
	"path/filepath"
	"strings"
	"testing"
)

// answerLogP is the policy's mean log-prob of the reference answers (answer tokens + EOS) of n
// held-out prompts.
func answerLogP(t *testing.T, r *runner, n int) float64 {
	t.Helper()
	var prompts, answers [][]int32
	for _, ex := range r.prompts.test[:n] {
		p, err := r.codec.prompt(ex)
		if err != nil {
			t.Fatal(err)
		}
		prompts, answers = append(prompts, p), append(answers, r.codec.answer(ex))
	}
	lp, err := r.responseLogProbs(prompts, answers)
	if err != nil {
		t.Fatal(err)
	}
	s, k := 0.0, 0.0
	for i := range answers {
		for j := range answers[i] {
			s += lp[i][j]
			k++
		}
	}
	return s / k
}

// TestOTRSFTLearnsTheAnswers: SFT as One-Token Rollout (8 draws per position, rewards 1 / −0.1)
// raises the held-out answers' log-probability from the random start, as cross-entropy does, and an
// invalid sft.otr is a one-line config error.
func TestOTRSFTLearnsTheAnswers(t *testing.T) {
	r := testRunner(t, "sft.otr.k=8", "sft.steps=30", "rl.steps=0", "eval.every=0", "task.test_size=16")
	before := answerLogP(t, r, 16)
	if err := r.sft(); err != nil {
		t.Fatal(err)
	}
	after := answerLogP(t, r, 16)
	t.Logf("held-out answer log-prob per token: %.3f → %.3f after 30 OTR steps", before, after)
	if !(after > before+0.5) {
		t.Errorf("OTR did not raise the answers' log-prob: %.3f → %.3f", before, after)
	}
	cfg := smallRun(t, filepath.Join(t.TempDir(), "x"), "sft.otr.k=4", "sft.otr.beta=1")
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), "sft.otr") || strings.Contains(err.Error(), "\n") {
		t.Errorf("beta=1: got %v", err)
	}
}
