package train

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/value"
)

// bonCritic writes a hand-made critic on layer 1: Q(x) = SiLU(4·x_k), V(x) = vConst.
func bonCritic(t *testing.T, in, k int, vConst float64) (*value.Critic, string) {
	t.Helper()
	q := &value.Head{In: in, Hidden: 1, W1: make([]float64, in), B1: []float64{0}, W2: []float64{1}}
	q.W1[k] = 4
	v := &value.Head{In: in, Hidden: 1, W1: make([]float64, in), B1: []float64{0}, W2: []float64{0}, B2: vConst}
	c := &value.Critic{Q: q, V: v, Gamma: 1, Layer: 1}
	path := filepath.Join(t.TempDir(), "critic.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	return c, path
}

// bonBase trains nothing: the seeded initial policy of a small run, saved as checkpoints/reference.
func bonBase(t *testing.T) string {
	t.Helper()
	cfg := smallRun(t, filepath.Join(t.TempDir(), "base"), "sft.steps=0", "rl.steps=0")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(cfg.RunDir, "checkpoints", "reference", "model")
	if _, err := LoadPolicy(ref); err != nil { // the reference folder carries its tokenizer
		t.Fatal(err)
	}
	return ref
}

// meanTokenLogp is each row's mean log-prob of its continuation under m.
func meanTokenLogp(t *testing.T, m *model.Model, prompts, conts [][]int32) []float64 {
	t.Helper()
	ids, mask := sequences(prompts, conts, 0)
	logp, _, err := m.LogProbs(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(ids))
	for b := range ids {
		for j := range conts[b] {
			out[b] += float64(logp[b][len(prompts[b])-1+j])
		}
		out[b] /= float64(len(conts[b]))
	}
	return out
}

// sft.source best_of_n_q: every SFT target is the Q-argmax of its prompt's candidates, recomputed
// here from the frozen model's layer-1 features and the hand-made head; the logged loss is spec
// C2's −(1/B) Σ S_{i*}/L_{i*} under the policy before the update; after the steps the policy's
// log-prob of the imitated candidates has risen.
func TestBestOfNQExtraction(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	base := bonBase(t)
	frozen, err := model.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	critic, path := bonCritic(t, frozen.Config().HiddenSize, 5, -100) // V = −100: the gate always passes
	cfg := smallRun(t, filepath.Join(t.TempDir(), "bon"), "model.path="+base, "sft.source=best_of_n_q",
		"sft.best_of_n.critic="+path, "sft.best_of_n.n=4", "sft.steps=3", "sft.batch_size=8", "rl.steps=0",
		"eval.every=0", "checkpoint.every=0", "optim.warmup_steps=0")
	type seen struct {
		prompts [][]int32
		cands   [][][]int32
		chosen  []int
	}
	var steps []seen
	opts := Options{observeBestOfN: func(step int, prompts [][]int32, cands [][][]int32, chosen []int) {
		steps = append(steps, seen{prompts, cands, chosen})
	}}
	if _, err := Run(cfg, opts); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 {
		t.Fatalf("%d extraction steps observed, want 3", len(steps))
	}
	var tp, tc [][]int32 // every imitated (prompt, candidate)
	distinct := map[float64]bool{}
	for s, st := range steps {
		if len(st.prompts) != 8 {
			t.Fatalf("step %d: %d prompts, want 8", s+1, len(st.prompts))
		}
		for i, cands := range st.cands {
			if len(cands) != 4 {
				t.Fatalf("step %d prompt %d: %d candidates, want 4", s+1, i, len(cands))
			}
			// Direct computation: each candidate alone through the frozen model, Q at its last token.
			qs := make([]float64, len(cands))
			best := 0
			for j, c := range cands {
				seq := append(append([]int32(nil), st.prompts[i]...), c...)
				mask := make([]int32, len(seq))
				for k := range mask {
					mask[k] = 1
				}
				h, err := frozen.HiddenAt([][]int32{seq}, [][]int32{mask}, 1)
				if err != nil {
					t.Fatal(err)
				}
				qs[j] = critic.Q.Eval(h[0][len(seq)-1])
				distinct[math.Round(qs[j]*1e4)] = true
				if qs[j] > qs[best] {
					best = j
				}
			}
			got := st.chosen[i]
			if got < 0 || qs[got] < qs[best]-1e-5 || (got != best && math.Abs(qs[got]-qs[best]) > 1e-5) {
				t.Errorf("step %d prompt %d: imitated candidate %d, Q-argmax %d (Q %v)", s+1, i, got, best, qs)
				continue
			}
			if s == 0 {
				tp, tc = append(tp, st.prompts[i]), append(tc, cands[got])
			}
		}
	}
	if len(distinct) < 4 {
		t.Fatalf("the head gave only %d distinct scores; the argmax check would be vacuous", len(distinct))
	}
	// The logged loss of step 1 is −mean_i (token-mean log-prob of the target) under the initial policy.
	before := meanTokenLogp(t, frozen, tp, tc)
	recs, err := metrics.Read(filepath.Join(cfg.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var loss1, kept float64 = math.NaN(), math.NaN()
	for _, r := range recs {
		if r.Phase == "sft" && r.Step == 1 {
			loss1, kept = r.Values["loss"], r.Values["bon_kept"]
		}
	}
	want := 0.0
	for _, lp := range before {
		want -= lp / float64(len(before))
	}
	if math.Abs(loss1-want) > 1e-4 || kept != 1 {
		t.Errorf("step 1: loss %.6f kept %v, want −mean token-mean logp %.6f and kept 1", loss1, kept, want)
	}
	after, err := model.Load(filepath.Join(cfg.RunDir, "checkpoints", "sft-000003", "model"))
	if err != nil {
		t.Fatal(err)
	}
	up := meanTokenLogp(t, after, tp, tc)
	var b0, b1 float64
	for i := range before {
		b0 += before[i] / float64(len(before))
		b1 += up[i] / float64(len(up))
	}
	t.Logf("mean token log-prob of step 1's imitated candidates: %.4f → %.4f", b0, b1)
	if b1 < b0+0.05 {
		t.Errorf("the policy's log-prob of the Q-argmax targets did not rise: %.4f → %.4f", b0, b1)
	}
}

// With V above every Q the gate closes: nothing is imitated and no step is applied; a bad source
// configuration is one error naming the field.
func TestBestOfNQGateAndErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	base := bonBase(t)
	frozen, err := model.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	_, path := bonCritic(t, frozen.Config().HiddenSize, 5, 100)
	cfg := smallRun(t, filepath.Join(t.TempDir(), "gated"), "model.path="+base, "sft.source=best_of_n_q",
		"sft.best_of_n.critic="+path, "sft.best_of_n.n=2", "sft.steps=2", "sft.batch_size=4", "rl.steps=0", "eval.every=0")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	recs, err := metrics.Read(filepath.Join(cfg.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Phase == "sft" && (r.Values["bon_kept"] != 0 || r.Values["skipped"] != 1) {
			t.Errorf("gated step %d: %v, want bon_kept 0 and skipped", r.Step, r.Values)
		}
	}
	// with_reference: the reference answer is candidate n+1.
	cfg = smallRun(t, filepath.Join(t.TempDir(), "withref"), "model.path="+base, "sft.source=best_of_n_q",
		"sft.best_of_n.critic="+path, "sft.best_of_n.n=2", "sft.best_of_n.with_reference=true", "sft.steps=1",
		"sft.batch_size=4", "rl.steps=0", "eval.every=0")
	var seenPrompts [][]int32
	var seenCands [][][]int32
	opts := Options{observeBestOfN: func(_ int, prompts [][]int32, cands [][][]int32, _ []int) {
		seenPrompts, seenCands = append(seenPrompts, prompts...), append(seenCands, cands...)
	}}
	if _, err := Run(cfg, opts); err != nil {
		t.Fatal(err)
	}
	pol, err := LoadPolicy(filepath.Join(cfg.RunDir, "checkpoints", "sft-000001", "model"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seenPrompts) != 4 {
		t.Fatalf("%d prompts observed, want 4", len(seenPrompts))
	}
	for i, p := range seenPrompts {
		var a, b int
		if _, err := fmt.Sscanf(pol.Text(p), "%d+%d=", &a, &b); err != nil {
			t.Fatalf("prompt %q: %v", pol.Text(p), err)
		}
		c := seenCands[i]
		if len(c) != 3 || pol.Text(c[2]) != strconv.Itoa(a+b) {
			t.Errorf("prompt %q: %d candidates, last %q; want 3 with the reference %d last", pol.Text(p), len(c), pol.Text(c[len(c)-1]), a+b)
		}
	}
	_, narrow := bonCritic(t, 3, 0, 0)
	tests := []struct {
		sets []string
		want string
	}{
		{[]string{"sft.source=imitate"}, "sft.source"},
		{[]string{"sft.source=best_of_n_q"}, "sft.best_of_n.critic"},
		{[]string{"sft.source=best_of_n_q", "sft.best_of_n.critic=" + path, "sft.best_of_n.n=0"}, "sft.best_of_n.n"},
		{[]string{"sft.source=best_of_n_q", "sft.best_of_n.critic=" + path, "sft.best_of_n.gate=max"}, "sft.best_of_n.gate"},
		{[]string{"sft.source=best_of_n_q", "sft.best_of_n.critic=" + path}, "sft.best_of_n.feature_model"},
		{[]string{"sft.source=best_of_n_q", "sft.best_of_n.critic=" + path, "model.path=" + base, "sft.otr.k=4"}, "sft.otr.k"},
		{[]string{"sft.source=best_of_n_q", "sft.best_of_n.critic=" + narrow, "model.path=" + base}, "does not fit"},
		{[]string{"sft.source=best_of_n_q", "sft.best_of_n.critic=" + path + ".missing", "model.path=" + base}, "sft.best_of_n.critic"},
	}
	for _, tc := range tests {
		c, err := LoadConfig("", append([]string{"run_dir=" + t.TempDir()}, tc.sets...))
		if err == nil {
			err = Check(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line naming %s", tc.sets, err, tc.want)
		}
	}
}
