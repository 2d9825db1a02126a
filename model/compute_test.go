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

func TestCoarseBuckets(t *testing.T) {
	for _, c := range []struct{ n, t, len, batch int }{
		{1, 5, 16, 8}, {1, 17, 32, 32}, {1, 100, 128, 128}, {1, 1024, 1024, 1024}, {1, 1025, 2048, 2048},
		{4, 3, 16, 3}, {4, 12, 16, 12}, {4, 100, 112, 112}, {4, 520, 640, 640}, {4, 1000, 1024, 1024},
	} {
		o := ComputeOptions{BucketsPerOctave: c.n}
		if got := o.bucketLen(c.t); got != c.len {
			t.Errorf("n=%d bucketLen(%d) = %d, want %d", c.n, c.t, got, c.len)
		}
		if got := o.bucketBatch(c.t); got != c.batch {
			t.Errorf("n=%d bucketBatch(%d) = %d, want %d", c.n, c.t, got, c.batch)
		}
	}
	// The decoder's capacity holds any prompt left-padded to its bucket plus the rest of maxLen.
	for _, n := range []int{0, 1, 2, 4, 8} {
		o := ComputeOptions{BucketsPerOctave: n}
		for maxLen := 1; maxLen <= 700; maxLen++ {
			capacity := o.decodeCapacity(maxLen)
			for p := 1; p <= maxLen; p++ {
				if o.bucketLen(p)+maxLen-p > capacity {
					t.Fatalf("n=%d maxLen %d prompt %d: %d slots needed, capacity %d", n, maxLen, p, o.bucketLen(p)+maxLen-p, capacity)
				}
			}
		}
	}
}

// TestCoarseBucketsSameResults: padding to coarse buckets changes no log-prob and no decoded logit.
func TestCoarseBucketsSameResults(t *testing.T) {
	run := func(o ComputeOptions) (lp [][]float32, logits [][]float32) {
		m, r := loadReference(t, "qwen3")
		if err := m.SetCompute(o); err != nil {
			t.Fatal(err)
		}
		ids, mask := append(r.ids[:len(r.ids):len(r.ids)], r.ids[0]), append(r.mask[:len(r.mask):len(r.mask)], r.mask[0])
		lp, _, err := m.LogProbs(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := m.NewDecoder(3, 20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.Prefill([][]int32{{1, 2, 3}, {4, 5, 6, 7, 8}, {9}}); err != nil {
			t.Fatal(err)
		}
		for s := 0; s < 5; s++ {
			if logits, err = dec.Step([]int32{int32(s), 2, 3}); err != nil {
				t.Fatal(err)
			}
		}
		return lp, logits
	}
	lp0, lg0 := run(ComputeOptions{})
	lp1, lg1 := run(ComputeOptions{BucketsPerOctave: 1})
	for i := range lp0 {
		if md, _ := diffs(lp1[i], lp0[i]); md > 1e-5 {
			t.Fatalf("row %d: log-probs differ by %g with coarse buckets", i, md)
		}
		if md, _ := diffs(lg1[i], lg0[i]); md > 1e-5 {
			t.Fatalf("row %d: decoded logits differ by %g with coarse buckets", i, md)
		}
	}
}
