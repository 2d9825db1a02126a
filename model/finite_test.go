package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNonFiniteStepIsNotApplied: an optimizer step whose gradients overflow (coefficients of 1e38,
// no clipping) is refused with ErrNonFinite and leaves weights, moments and the step count as they
// were; the next finite step trains normally (issue 14, item 2).
func TestNonFiniteStepIsNotApplied(t *testing.T) {
	m := tinyModel(t, 7)
	tr, err := NewTrainer(m, OptimConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids, mask, coef := randomBatch(rng, 3, 9, 40)
	before, err := m.hostParams()
	if err != nil {
		t.Fatal(err)
	}
	huge := make([][]float32, len(coef))
	for i := range coef {
		huge[i] = make([]float32, len(coef[i]))
		for j := range huge[i] {
			huge[i][j] = 3e38
		}
	}
	if _, _, err := tr.Accumulate(ids, mask, huge, nil); err != nil {
		t.Fatal(err)
	}
	norm, err := tr.Step(1e-3)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "the step was not applied") {
		t.Fatalf("Step on overflowing gradients: norm %v, err %v; want ErrNonFinite", norm, err)
	}
	after, err := m.hostParams()
	if err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if !slices.Equal(before[i], after[i]) {
			t.Fatalf("%s changed although the step was refused", m.lay.names[i])
		}
	}
	if tr.StepCount() != 0 {
		t.Fatalf("step count %d after a refused step, want 0", tr.StepCount())
	}
	if err := m.CheckFinite(); err != nil {
		t.Fatal(err)
	}
	// A finite step afterwards works and moves the weights.
	if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(1e-3); err != nil {
		t.Fatal(err)
	}
	moved, _ := m.hostParams()
	if slices.Equal(before[0], moved[0]) || tr.StepCount() != 1 {
		t.Fatal("a finite step after a refused one did not train")
	}
}

// TestNonFiniteWeightsAreNeitherSavedNorLoaded: Save refuses NaN/Inf weights (a checkpoint must be
// usable), and Load refuses a file that holds them, naming the tensor.
func TestNonFiniteWeightsAreNeitherSavedNorLoaded(t *testing.T) {
	m := tinyModel(t, 8)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := m.Save(good); err != nil {
		t.Fatal(err)
	}
	name := "model.layers.1.mlp.up_proj.weight"
	w, _, _ := m.Weights(name)
	w[5] = float32(math.Inf(1))
	if err := m.setWeights(name, w); err != nil {
		t.Fatal(err)
	}
	err := m.Save(filepath.Join(dir, "bad"))
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), name+"[5] is +Inf") {
		t.Fatalf("Save of an Inf weight: %v", err)
	}
	// Write the broken tensor into the good folder's file by hand, then load it.
	ts, _, err := readSafetensorsMeta(filepath.Join(good, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	h := ts[name]
	h.F32[7] = float32(math.NaN())
	ts[name] = h
	if err := writeSafetensors(filepath.Join(good, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good); !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), name+"[7] is NaN") {
		t.Fatalf("Load of a NaN weight: %v", err)
	}
}
