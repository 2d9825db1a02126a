//go:build xla

package model

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/engine"
)

// These tests run on the XLA backend: build with -tags xla and point GOMLX_BACKEND at a PJRT plugin
// (docs/gpu.md), e.g.
//
//	GOMLX_NO_AUTO_INSTALL=1 GOMLX_BACKEND=xla:$PWD/pjrt/lib/pjrt_c_api_cuda_plugin.so go test -tags xla -run XLA -v ./model
//
// Without one they skip and say why. (The rest of the package's tests run on whichever backend
// GOMLX_BACKEND names, so the same command with -run . runs the whole suite there.)
func xlaOrSkip(t *testing.T) {
	t.Helper()
	cfg := engine.Config()
	if !strings.HasPrefix(cfg, "xla") {
		t.Skipf("skipped: GOMLX_BACKEND=%q is not an XLA backend; set GOMLX_BACKEND=xla:/path/to/pjrt_c_api_cuda_plugin.so (docs/gpu.md)", cfg)
	}
	if _, err := engine.Backend(); err != nil {
		t.Skipf("skipped: XLA backend %q unavailable: %v", cfg, err)
	}
}

// TestXLAFixtureParity: every fixture against its transformers reference on the XLA device, in
// float32 (tolerance 1e-3: GPUs may run float32 matmuls with TF32-class inputs) and with bf16
// autocast and fused attention (0.05, greedy still identical).
func TestXLAFixtureParity(t *testing.T) {
	xlaOrSkip(t)
	for _, name := range fixtures {
		for _, c := range []struct {
			o   ComputeOptions
			tol float64
		}{{ComputeOptions{}, 1e-3}, {ComputeOptions{DType: "bf16", Flash: true}, 0.05}} {
			t.Run(name+c.o.key(), func(t *testing.T) {
				m, err := Load(fixtureDir(name))
				if err != nil {
					t.Fatal(err)
				}
				if err := m.SetCompute(c.o); err != nil {
					t.Fatal(err)
				}
				items, err := CheckReference(m, filepath.Join(fixtureDir(name), "reference.safetensors"), CheckTolerance{Logits: c.tol, Rel: c.tol})
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range items {
					t.Log(it)
					if !it.OK {
						t.Errorf("%s past tolerance", it)
					}
				}
			})
		}
	}
}

// TestXLAWarmUpStepDecode: on XLA, the warm-ups compile everything a step, a log-prob pass and a
// generation need (with bf16 autocast and fused attention), the donated weights come back updated,
// and log-probs of the stepped model stay finite.
func TestXLAWarmUpStepDecode(t *testing.T) {
	xlaOrSkip(t)
	m, r := loadReference(t, "qwen2")
	if err := m.SetCompute(ComputeOptions{DType: "bf16", Flash: true}); err != nil {
		t.Fatal(err)
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
	for _, f := range []func() error{func() error { return m.WarmUp(b, seq) }, func() error { return tr.WarmUp(b, seq, 2) }, func() error { return dec.WarmUp(4) }} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	warm := GlobalCompileStats()
	t.Logf("compiled after warm-up: %d graphs, %.1f s: %v", warm.Graphs, warm.Seconds, warm.ByName)
	w0, _, _ := m.Weights("model.layers.0.mlp.up_proj.weight")
	coef := make([][]float32, b)
	for i := range coef {
		coef[i] = make([]float32, seq-1)
		for j := range coef[i] {
			coef[i][j] = -0.01
		}
	}
	if _, _, err := tr.Accumulate(r.ids, r.mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(1e-2); err != nil {
		t.Fatal(err)
	}
	w1, _, _ := m.Weights("model.layers.0.mlp.up_proj.weight")
	if w0[0] == w1[0] && w0[1] == w1[1] {
		t.Fatal("weights unchanged by the step")
	}
	lp, _, err := m.LogProbs(r.ids, r.mask)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range lp {
		if err := checkFinite("logp", row); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dec.Prefill([][]int32{{1, 2, 3}, {4, 5, 6, 7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Step([]int32{1, 2}); err != nil {
		t.Fatal(err)
	}
	if after := GlobalCompileStats(); after.Graphs != warm.Graphs {
		t.Fatalf("compiled %d graphs after the warm-up: %v → %v", after.Graphs-warm.Graphs, warm.ByName, after.ByName)
	}
}
