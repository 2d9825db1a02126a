package objective

import (
	"math/rand/v2"
	"testing"
)

// TestNLPOIsPPOOnArrays: the masking enters through the log-probs the trainer computes, so on the
// same arrays nlpo's advantages, loss, gradient and critic returns are ppo's; its masking settings
// are validated and reach the trainer through ActionMasker.
func TestNLPOIsPPOOnArrays(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	b := randomBatch(rng, 6, 5, 3)
	ppo, err := New("ppo", nil)
	if err != nil {
		t.Fatal(err)
	}
	nlpo, err := New("nlpo", map[string]string{"mask_top_p": "0.8", "mask_sync_every": "5"})
	if err != nil {
		t.Fatal(err)
	}
	pb, nb := b.Subset([]int{0, 1, 2, 3, 4, 5}), b.Subset([]int{0, 1, 2, 3, 4, 5})
	for _, x := range []struct {
		o  Objective
		bb *Batch
	}{{ppo, pb}, {nlpo, nb}} {
		p, err := Prepare(x.o, x.bb)
		if err != nil {
			t.Fatal(err)
		}
		p.Apply(x.bb)
	}
	rp, err1 := ppo.Loss(pb)
	rn, err2 := nlpo.Loss(nb)
	if err1 != nil || err2 != nil || rp.Loss != rn.Loss || rp.Loss == 0 {
		t.Fatalf("loss ppo %v nlpo %v (%v, %v)", rp.Loss, rn.Loss, err1, err2)
	}
	for i := range rp.GradLogP {
		for j := range rp.GradLogP[i] {
			if rp.GradLogP[i][j] != rn.GradLogP[i][j] {
				t.Fatalf("grad[%d][%d] ppo %v nlpo %v", i, j, rp.GradLogP[i][j], rn.GradLogP[i][j])
			}
		}
	}
	cfg, ok := nlpo.(ActionMasker).ActionMask()
	if !ok || cfg.TopP != 0.8 || cfg.SyncEvery != 5 {
		t.Errorf("action mask %+v (%v)", cfg, ok)
	}
	if _, ok := ppo.(ActionMasker).ActionMask(); ok {
		t.Error("ppo masks its action space")
	}
	if _, _, ok := criticOf(nlpo); !ok {
		t.Error("nlpo has no critic")
	}
	for _, bad := range []map[string]string{{"mask_top_p": "0"}, {"mask_top_p": "1.1"}, {"mask_sync_every": "0"}} {
		if _, err := New("nlpo", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func criticOf(o Objective) (Critic, CriticConfig, bool) {
	c, ok := o.(Critic)
	if !ok {
		return nil, CriticConfig{}, false
	}
	cfg, ok := c.CriticConfig()
	return c, cfg, ok
}
