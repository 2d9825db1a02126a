package model

import "testing"

// TestWarmUp: after the warm-ups, a step, a log-prob pass and a generation at those shapes compile
// nothing more (with and without bf16 autocast and a LoRA adapter).
func TestWarmUp(t *testing.T) {
	for _, c := range []struct {
		name string
		o    ComputeOptions
		lora bool
	}{{"f32", ComputeOptions{}, false}, {"bf16-flash", ComputeOptions{DType: "bf16", Flash: true}, false}, {"lora-dropout", ComputeOptions{}, true}} {
		t.Run(c.name, func(t *testing.T) {
			m, r := loadReference(t, "qwen2")
			if err := m.SetCompute(c.o); err != nil {
				t.Fatal(err)
			}
			if c.lora {
				var err error
				if m, err = m.AddAdapter(LoRAConfig{Rank: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"q_proj", "v_proj"}, Seed: 1}); err != nil {
					t.Fatal(err)
				}
			}
			tr, err := NewTrainer(m, DefaultOptimConfig())
			if err != nil {
				t.Fatal(err)
			}
			b, seq := len(r.ids), len(r.ids[0])
			dec, err := m.NewDecoder(2, 12)
			if err != nil {
				t.Fatal(err)
			}
			before := GlobalCompileStats()
			if err := m.WarmUp(b, seq); err != nil {
				t.Fatal(err)
			}
			if err := tr.WarmUp(b, seq, 2); err != nil {
				t.Fatal(err)
			}
			if err := dec.WarmUp(4); err != nil {
				t.Fatal(err)
			}
			warm := GlobalCompileStats()
			if n := warm.Graphs - before.Graphs; n != 6 {
				t.Fatalf("warm-up compiled %d graphs, want 6 (logprobs, 2 train, adamw, prefill, decode): %v", n, warm.ByName)
			}
			coef := make([][]float32, b)
			for i := range coef {
				coef[i] = make([]float32, seq-1)
				for j := range coef[i] {
					coef[i][j] = -0.01
				}
			}
			for range 2 {
				if _, _, err := tr.Accumulate(r.ids, r.mask, coef, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tr.Step(1e-3); err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.LogProbs(r.ids, r.mask); err != nil {
				t.Fatal(err)
			}
			if _, err := dec.Prefill([][]int32{{1, 2, 3}, {4, 5, 6, 7}}); err != nil {
				t.Fatal(err)
			}
			if _, err := dec.Step([]int32{1, 2}); err != nil {
				t.Fatal(err)
			}
			if after := GlobalCompileStats(); after.Graphs != warm.Graphs {
				t.Fatalf("calls after the warm-up compiled %d more graphs: %v → %v", after.Graphs-warm.Graphs, warm.ByName, after.ByName)
			}
		})
	}
}
