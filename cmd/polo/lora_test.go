package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
)

// TestLoRAMerge: an adapter trained a few steps on the llama fixture, merged by `polo lora merge`,
// gives the adapted model's logits within float32 rounding; a bfloat16 base merges to bfloat16.
func TestLoRAMerge(t *testing.T) {
	for _, c := range []struct {
		fixture, dtype string
		tol            float64
	}{{"llama", "F32", 2e-5}, {"llama-bf16", "BF16", 0.1}} {
		base := filepath.Join("..", "..", "testdata", "models", c.fixture)
		m, err := model.Load(base)
		if err != nil {
			t.Fatal(err)
		}
		am, err := m.AddAdapter(model.LoRAConfig{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj", "up_proj"}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		tr, _ := model.NewTrainer(am, model.OptimConfig{LR: 0.05, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, ClipNorm: 1})
		ids := [][]int32{{1, 5, 9, 13, 17, 21, 2}}
		mask := [][]int32{{1, 1, 1, 1, 1, 1, 1}}
		for s := 0; s < 3; s++ {
			if _, _, err := tr.Accumulate(ids, mask, [][]float32{{-1, -1, -1, -1, -1, -1}}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Step(0.05); err != nil {
				t.Fatal(err)
			}
		}
		adir, out := t.TempDir(), filepath.Join(t.TempDir(), "merged")
		if err := am.SaveAdapter(adir, base); err != nil {
			t.Fatal(err)
		}
		var so, se bytes.Buffer
		if code := run([]string{"lora", "merge", "--adapter", adir, "-o", out}, nil, &so, &se); code != 0 {
			t.Fatalf("exit %d: %s", code, se.String())
		}
		if !strings.Contains(so.String(), "merged r=4") {
			t.Fatalf("output %q", so.String())
		}
		mm, err := model.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if mm.DType() != c.dtype {
			t.Fatalf("%s: merged dtype %s, want %s", c.fixture, mm.DType(), c.dtype)
		}
		la, _ := am.Logits(ids, mask)
		lm, _ := mm.Logits(ids, mask)
		lb, _ := m.Logits(ids, mask)
		var d, moved float64
		for j := range la[0] {
			for k := range la[0][j] {
				d = math.Max(d, math.Abs(float64(la[0][j][k]-lm[0][j][k])))
				moved = math.Max(moved, math.Abs(float64(la[0][j][k]-lb[0][j][k])))
			}
		}
		t.Logf("%s: merged vs adapted max |Δlogit| %.3g (adapter moved logits by %.3g)", c.fixture, d, moved)
		if d > c.tol || moved < 10*d {
			t.Fatalf("%s: merged logits %g from the adapted model's (adapter effect %g)", c.fixture, d, moved)
		}
	}
	var so, se bytes.Buffer
	if code := run([]string{"lora", "merge", "--adapter", t.TempDir(), "-o", t.TempDir()}, nil, &so, &se); code != 2 || !strings.Contains(se.String(), "adapter_config.json") {
		t.Fatalf("folder without adapter: exit %d, %q", code, se.String())
	}
}
