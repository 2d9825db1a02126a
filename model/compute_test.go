package model

import (
	"math"
	"testing"
)

// computeRun returns the logits and the gradients of every weight (SFT cross-entropy of the
// fixture's batch) of fixture name under compute options o.
func computeRun(t *testing.T, name string, o ComputeOptions) (logits []float32, grads map[string][]float32) {
	t.Helper()
	m, r := loadReference(t, name)
	if err := m.SetCompute(o); err != nil {
		t.Fatal(err)
	}
	lg, err := m.Logits(r.ids, r.mask)
	if err != nil {
		t.Skipf("compute %+v not supported by backend: %v", o, err)
	}
	for b := range lg {
		for p := range lg[b] {
			if r.mask[b][p] == 1 {
				logits = append(logits, lg[b][p]...)
			}
		}
	}
	tr, err := NewTrainer(m, DefaultOptimConfig())
	if err != nil {
		t.Fatal(err)
	}
	coef := make([][]float32, len(r.ids))
	for i := range coef {
		coef[i] = make([]float32, len(r.ids[i])-1)
		for j := range coef[i] {
			coef[i][j] = -float32(r.mask[i][j] * r.mask[i][j+1])
		}
	}
	if _, _, err := tr.Accumulate(r.ids, r.mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	grads = map[string][]float32{}
	for _, n := range m.ParamNames() {
		if grads[n], err = tr.gradients(n); err != nil {
			t.Fatal(err)
		}
	}
	return logits, grads
}

// diffs returns the largest absolute difference and the largest |want|.
func diffs(got, want []float32) (maxDiff, maxAbs float64) {
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-want[i])))
		maxAbs = math.Max(maxAbs, math.Abs(float64(want[i])))
	}
	return
}

// l2RelErr is ‖got − want‖ / ‖want‖.
func l2RelErr(got, want []float32) float64 {
	var d, n float64
	for i := range want {
		d += float64(got[i]-want[i]) * float64(got[i]-want[i])
		n += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d / math.Max(n, 1e-30))
}

// TestComputeOptions checks bf16 autocast and the fused-attention path against float32 on two
// fixtures (GQA with biases, and per-head norms). Tolerances: bfloat16 keeps 8 significant bits
// (relative rounding 2^-9 ≈ 0.2%), and a logit is a sum of many rounded products, so bf16 logits
// must be within 2% of the largest |logit| and the gradients' relative L2 error under 5%;
// flash in float32 is the same arithmetic reordered (1e-4).
func TestComputeOptions(t *testing.T) {
	for _, name := range []string{"qwen2", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			ref, refG := computeRun(t, name, ComputeOptions{})
			for _, c := range []struct {
				o            ComputeOptions
				logit, grads float64
			}{
				{ComputeOptions{Flash: true}, 1e-4, 1e-4},
				{ComputeOptions{DType: "bf16"}, 0.02, 0.05},
				{ComputeOptions{DType: "bf16", Flash: true}, 0.02, 0.05},
			} {
				got, gotG := computeRun(t, name, c.o)
				md, ma := diffs(got, ref)
				worst, worstName := 0.0, ""
				for n, g := range refG {
					if e := l2RelErr(gotG[n], g); e > worst {
						worst, worstName = e, n
					}
				}
				t.Logf("%+v: logits max |Δ| %.2e (max |logit| %.2f), worst gradient rel. error %.2e (%s)", c.o, md, ma, worst, worstName)
				if md > c.logit*math.Max(ma, 1) {
					t.Errorf("%+v: logits differ by %g, want ≤ %g·%g", c.o, md, c.logit, math.Max(ma, 1))
				}
				if worst > c.grads {
					t.Errorf("%+v: gradient of %s has relative error %g, want ≤ %g", c.o, worstName, worst, c.grads)
				}
			}
		})
	}
}

func TestComputeOptionsValidate(t *testing.T) {
	m, _ := loadReference(t, "qwen3")
	if err := m.SetCompute(ComputeOptions{DType: "fp8"}); err == nil {
		t.Fatal("fp8 accepted")
	}
	if err := m.SetCompute(ComputeOptions{DType: "BF16"}); err != nil || !m.Compute().bf16() {
		t.Fatalf("BF16: %v %+v", err, m.Compute())
	}
}

func TestCompileStats(t *testing.T) {
	m, r := loadReference(t, "llama")
	before := GlobalCompileStats()
	if _, _, err := m.LogProbs(r.ids, r.mask); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.LogProbs(r.ids, r.mask); err != nil { // same shape: no new graph
		t.Fatal(err)
	}
	after := GlobalCompileStats()
	if after.Graphs-before.Graphs != 1 || after.ByName["logprobs"]-before.ByName["logprobs"] != 1 || after.Seconds <= before.Seconds {
		t.Fatalf("compile stats before %+v after %+v: want one more logprobs graph", before, after)
	}
}
