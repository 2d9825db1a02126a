package train

import (
	"math"
	"sort"
	"testing"

	"github.com/polo-rl/polo/model"
)

// TestTopKDistill: the top-k KL the trainer minimises equals a float64 computation from the teacher's
// and the student's full logits (teacher's 4 most probable tokens, renormalised; with k = the
// vocabulary, the full-distribution KL), and repeated steps on it alone bring the student's
// distribution toward the teacher's (KL falls).
func TestTopKDistill(t *testing.T) {
	teacher := dpoModelDir(t, "6")
	for _, full := range []bool{false, true} {
		t.Run(map[bool]string{false: "top-4", true: "full vocabulary"}[full], func(t *testing.T) { testTopKDistill(t, teacher, full) })
	}
}

func testTopKDistill(t *testing.T, teacher string, full bool) {
	r := testRunner(t, "algo.name=distill", "distill.teacher="+teacher, "distill.top_k=4", "optim.lr=0.003")
	k := 4
	if full {
		k = r.policy.Config().VocabSize
		r.cfg.Distill.TopK = 1 << 30 // more than the vocabulary: the full distribution
	}
	var err error
	if r.ref, err = r.referenceModel(); err != nil {
		t.Fatal(err)
	}
	if r.trainer, err = model.NewTrainer(r.policy, r.optimConfig("rl")); err != nil {
		t.Fatal(err)
	}
	b, _, _, err := r.collect("rollout", 1, r.cfg.Sampling.PromptsPerStep)
	if err != nil {
		t.Fatal(err)
	}
	ids, mask := sequences(b.prompts, b.resps, r.codec.pad)
	tl, _ := r.ref.Logits(ids, mask)
	sl, _ := r.policy.Logits(ids, mask)
	want, n := 0.0, 0
	for i := range b.resps {
		for j := range b.resps[i] {
			pos := len(b.prompts[i]) - 1 + j
			lt, ls := logSoftmax64(tl[i][pos], 1), logSoftmax64(sl[i][pos], 1)
			order := make([]int, len(lt))
			for v := range order {
				order[v] = v
			}
			sort.SliceStable(order, func(a, c int) bool { return lt[order[a]] > lt[order[c]] })
			z := 0.0
			for _, v := range order[:k] {
				z += math.Exp(lt[v])
			}
			for _, v := range order[:k] {
				p := math.Exp(lt[v]) / z
				want += p * (math.Log(p) - ls[v])
			}
			n++
		}
	}
	want /= float64(n)
	var first, last float64
	for it := range 12 {
		kl, err := r.topKDistill(b, ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		if it == 0 {
			first = kl
			if math.Abs(kl-want) > 1e-5*math.Max(1, want) {
				t.Errorf("top-k KL %.6f, float64 from the full logits %.6f", kl, want)
			}
		}
		last = kl
		if _, err := r.trainer.Step(r.cfg.Optim.LR); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("top-%d KL(teacher ‖ student) per token: %.4f (direct %.4f) → %.4f after 11 steps", k, first, want, last)
	if !(last < 0.7*first) {
		t.Errorf("KL did not fall: %.4f → %.4f", first, last)
	}
}
