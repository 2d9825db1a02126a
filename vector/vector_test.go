package vector

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
)

// The spec's example (C5): θ_SFT=[1,2], θ_GRPO=[1.5,1], θ_tgt=[0,0], α=1 → [0.5,−1]; α=0 leaves θ_tgt.
func TestSpecExample(t *testing.T) {
	v := &Vector{Tensors: map[string]model.HostTensor{"w": {Shape: []int{2}, Data: []float32{1.5 - 1, 1 - 2}}}}
	tgt := map[string]model.HostTensor{"w": {Shape: []int{2}, Data: []float32{0, 0}}}
	out, rep, err := ApplyTensors(tgt, v, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["w"].Data; got[0] != 0.5 || got[1] != -1 || rep.Elements != 2 {
		t.Fatalf("α=1: got %v (%+v), want [0.5 -1]", got, rep)
	}
	out, _, _ = ApplyTensors(tgt, v, 0, Options{})
	if got := out["w"].Data; got[0] != 0 || got[1] != 0 {
		t.Fatalf("α=0: got %v, want θ_tgt", got)
	}
	if tgt["w"].Data[0] != 0 {
		t.Fatal("ApplyTensors modified its input")
	}
}

// saveModel writes a seeded from-scratch model to a fresh folder.
func saveModel(t *testing.T, cfg model.Config, seed int64) string {
	t.Helper()
	m, err := model.New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Extract → Save → Load → Apply through real checkpoint folders, every weight compared bit for bit
// with the formula computed directly: v = f32(t − b), out = f32(m + s·v) (float64 inside).
func TestExtractApplyExactBits(t *testing.T) {
	cfg, err := model.Preset("tiny", 17)
	if err != nil {
		t.Fatal(err)
	}
	baseDir, tunedDir, tgtDir := saveModel(t, cfg, 1), saveModel(t, cfg, 2), saveModel(t, cfg, 3)
	v, err := Extract(baseDir, tunedDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	vpath := filepath.Join(t.TempDir(), "v.safetensors")
	if err := v.Save(vpath, map[string]string{"base": baseDir}); err != nil {
		t.Fatal(err)
	}
	v2, err := Load(vpath)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Arch != archOf(cfg) {
		t.Fatalf("arch metadata %+v, want %+v", v2.Arch, archOf(cfg))
	}
	base, _ := model.ReadCheckpointTensors(baseDir)
	tuned, _ := model.ReadCheckpointTensors(tunedDir)
	tgt, _ := model.ReadCheckpointTensors(tgtDir)
	if len(v2.Tensors) != len(base) {
		t.Fatalf("vector has %d tensors, checkpoint %d", len(v2.Tensors), len(base))
	}
	for _, scale := range []float64{-1, 0, 0.5, 1, 1.5} {
		out := filepath.Join(t.TempDir(), "out")
		rep, err := Apply(tgtDir, v2, scale, out, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := model.ReadCheckpointTensors(out)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for name, m := range tgt {
			b, tu, g := base[name].Data, tuned[name].Data, got[name].Data
			for i := range m.Data {
				vi := float32(float64(tu[i]) - float64(b[i]))
				want := float32(float64(m.Data[i]) + scale*float64(vi))
				if math.Float32bits(g[i]) != math.Float32bits(want) {
					t.Fatalf("scale %v, %s[%d]: got %x want %x", scale, name, i, math.Float32bits(g[i]), math.Float32bits(want))
				}
				if scale == 0 && math.Float32bits(g[i]) != math.Float32bits(m.Data[i]) {
					t.Fatalf("scale 0 changed %s[%d]", name, i)
				}
				n++
			}
		}
		if rep.Elements != n || n == 0 {
			t.Fatalf("report says %d elements, compared %d", rep.Elements, n)
		}
		// The output is a loadable checkpoint with the target's config.
		if _, err := model.Load(out); err != nil {
			t.Fatalf("output does not load: %v", err)
		}
	}
	// Applying to the base with scale 1 gives the tuned weights up to the two roundings (of v and
	// of the sum): |got − t| ≤ 2⁻²⁴(|v| + |t|).
	out := filepath.Join(t.TempDir(), "back")
	if _, err := Apply(baseDir, v2, 1, out, Options{}); err != nil {
		t.Fatal(err)
	}
	got, _ := model.ReadCheckpointTensors(out)
	for name, tu := range tuned {
		for i, x := range tu.Data {
			vi := math.Abs(float64(v2.Tensors[name].Data[i]))
			if d := math.Abs(float64(got[name].Data[i] - x)); d > 0x1p-24*(vi+math.Abs(float64(x))) {
				t.Fatalf("base + v differs from tuned at %s[%d]: %v vs %v", name, i, got[name].Data[i], x)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tiny, _ := model.Preset("tiny", 17)
	small, _ := model.Preset("small", 17)
	a, b := saveModel(t, tiny, 1), saveModel(t, tiny, 2)
	other := saveModel(t, small, 1)
	v, err := Extract(a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	type errCase struct {
		name string
		err  error
		want string
	}
	var cases []errCase
	_, err = Extract(a, other, Options{})
	cases = append(cases, errCase{"extract across architectures", err, "different architectures (hidden_size 64 vs 128)"})
	_, err = Apply(other, v, 1, t.TempDir(), Options{})
	cases = append(cases, errCase{"apply to another architecture", err, "different architecture than"})
	_, err = Extract(a, t.TempDir(), Options{})
	cases = append(cases, errCase{"missing checkpoint", err, "tuned:"})
	_, err = Apply(a, v, math.NaN(), t.TempDir(), Options{})
	cases = append(cases, errCase{"NaN scale", err, "not a finite number"})
	_, err = Apply(a, v, 1, a, Options{})
	cases = append(cases, errCase{"output over input", err, "is the model folder"})
	_, err = Load(filepath.Join(a, "model.safetensors"))
	cases = append(cases, errCase{"a checkpoint is not a vector", err, "is not a reasoning vector"})
	// A vector with an extra tensor: strict fails, lenient skips with a warning.
	extra := &Vector{Arch: v.Arch, Tensors: map[string]model.HostTensor{"extra.weight": {Shape: []int{2}, Data: []float32{1, 2}}}}
	_, err = Apply(a, extra, 1, t.TempDir(), Options{})
	cases = append(cases, errCase{"tensor missing from model", err, `no tensor "extra.weight"`})
	// Shape mismatch on a non-vocabulary tensor.
	theta := map[string]model.HostTensor{"model.norm.weight": {Shape: []int{3}, Data: []float32{1, 2, 3}}}
	bad := &Vector{Tensors: map[string]model.HostTensor{"model.norm.weight": {Shape: []int{2}, Data: []float32{1, 2}}}}
	_, _, err = ApplyTensors(theta, bad, 1, Options{})
	cases = append(cases, errCase{"shape mismatch", err, "shape [3] in the model but [2] in the vector"})
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) || strings.Contains(c.err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line containing %q", c.name, c.err, c.want)
		}
	}
	var warn bytes.Buffer
	rep, err := Apply(a, extra, 1, filepath.Join(t.TempDir(), "o"), Options{Lenient: true, Warn: &warn})
	if err != nil || rep.Skipped != 1 || !strings.Contains(warn.String(), "extra.weight") {
		t.Fatalf("lenient: %v %+v %q", err, rep, warn.String())
	}
}

// Embedding rows beyond the common vocabulary are left untouched; common rows get θ + s·v.
func TestVocabRows(t *testing.T) {
	theta := map[string]model.HostTensor{"model.embed_tokens.weight": {Shape: []int{3, 2}, Data: []float32{1, 1, 1, 1, 7, 7}}}
	v := &Vector{Tensors: map[string]model.HostTensor{"model.embed_tokens.weight": {Shape: []int{2, 2}, Data: []float32{0.5, -0.5, 2, 0}}}}
	var warn bytes.Buffer
	out, rep, err := ApplyTensors(theta, v, 2, Options{Warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{2, 0, 5, 1, 7, 7}
	for i, x := range out["model.embed_tokens.weight"].Data {
		if x != want[i] {
			t.Fatalf("got %v want %v", out["model.embed_tokens.weight"].Data, want)
		}
	}
	if rep.PartialVocab != 1 || rep.Elements != 4 || warn.Len() == 0 {
		t.Fatalf("report %+v, warning %q", rep, warn.String())
	}
}
