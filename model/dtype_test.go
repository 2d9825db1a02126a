package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// rawTensors returns each tensor's dtype and raw bytes from a safetensors file.
func rawTensors(t *testing.T, path string) map[string]struct {
	dtype string
	data  []byte
} {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(data)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	out := map[string]struct {
		dtype string
		data  []byte
	}{}
	for k, raw := range header {
		if k == "__metadata__" {
			continue
		}
		var e stEntry
		json.Unmarshal(raw, &e)
		out[k] = struct {
			dtype string
			data  []byte
		}{e.DType, data[8+n+uint64(e.Offsets[0]) : 8+n+uint64(e.Offsets[1])]}
	}
	return out
}

// TestSaveKeepsBF16: a bfloat16 checkpoint loaded and saved unchanged is written back as bfloat16
// with every byte of every tensor identical, and config.json says bfloat16; a float32 one stays
// float32.
func TestSaveKeepsBF16(t *testing.T) {
	for _, c := range []struct{ name, dtype, torch string }{{"llama-bf16", "BF16", "bfloat16"}, {"llama", "F32", "float32"}} {
		m, err := Load(fixtureDir(c.name))
		if err != nil {
			t.Fatal(err)
		}
		if m.DType() != c.dtype {
			t.Fatalf("%s: loaded dtype %s, want %s", c.name, m.DType(), c.dtype)
		}
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		orig := rawTensors(t, filepath.Join(fixtureDir(c.name), "model.safetensors"))
		saved := rawTensors(t, filepath.Join(dir, "model.safetensors"))
		if len(saved) != len(orig) {
			t.Fatalf("%s: %d tensors saved, %d in the checkpoint", c.name, len(saved), len(orig))
		}
		for k, o := range orig {
			s := saved[k]
			if s.dtype != c.dtype || !bytes.Equal(s.data, o.data) {
				t.Fatalf("%s: tensor %s saved as %s with different bytes (checkpoint %s)", c.name, k, s.dtype, o.dtype)
			}
		}
		cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		var raw map[string]any
		json.Unmarshal(cfg, &raw)
		if td, ok := raw["torch_dtype"]; ok && td != c.torch {
			t.Fatalf("%s: config torch_dtype %v, want %s", c.name, td, c.torch)
		}
	}
}

// TestFloatToBF16AndHalf checks the rounding against values worked by hand.
func TestFloatToBF16AndHalf(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // 1 + 2^-8: tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // past the tie
		{0x7f7fffff, 0x7f80}, // max float rounds to Inf
		{0xc0490fdb, 0xc049}, // -π
	} {
		if got := floatToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("bf16(%#x) = %#x, want %#x", c.in, got, c.want)
		}
	}
	if v := floatToBF16(float32(math.NaN())); v&0x7f80 != 0x7f80 || v&0x7f == 0 {
		t.Errorf("bf16(NaN) = %#x", v)
	}
	for _, c := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e-8, 0x0000},
		{float32(math.Ldexp(1, -24)), 0x0001}, {float32(math.Ldexp(1, -14)), 0x0400},
		{1 + float32(math.Ldexp(1, -11)), 0x3c00}, {1 + 3*float32(math.Ldexp(1, -11)), 0x3c02},
		{0.1, 0x2e66},
	} {
		if got := floatToHalf(c.in); got != c.want {
			t.Errorf("f16(%g) = %#x, want %#x", c.in, got, c.want)
		}
		if c.want != 0x7c00 && c.in > 1e-7 {
			if back := halfToFloat(c.want); math.Abs(float64(back-c.in)) > math.Abs(float64(c.in))*1e-3 {
				t.Errorf("f16 %#x reads back as %g, not near %g", c.want, back, c.in)
			}
		}
	}
}

// TestBF16ResumeExact: full fine-tuning of a bfloat16 checkpoint saves the model in bfloat16, and
// the optimizer state carries the float32 master weights, so a run resumed from the saved folder
// continues bit-identically.
func TestBF16ResumeExact(t *testing.T) {
	cfg := OptimConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, ClipNorm: 1}
	steps := func(m *Model, tr *Trainer, from, to int) {
		for s := from; s < to; s++ {
			ids := [][]int32{{1, 2, 3, int32(4 + s), 5, 6}}
			mask := [][]int32{{1, 1, 1, 1, 1, 1}}
			coef := [][]float32{{-0.2, -0.2, -0.2, -0.2, -0.2}}
			if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Step(0.01); err != nil {
				t.Fatal(err)
			}
		}
	}
	whole, _ := Load(fixtureDir("llama-bf16"))
	trw, _ := NewTrainer(whole, cfg)
	steps(whole, trw, 0, 3)
	part, _ := Load(fixtureDir("llama-bf16"))
	trp, _ := NewTrainer(part, cfg)
	steps(part, trp, 0, 2)
	dir := t.TempDir()
	if err := part.Save(filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	if err := trp.SaveState(filepath.Join(dir, "optimizer.bin")); err != nil {
		t.Fatal(err)
	}
	if rawTensors(t, filepath.Join(dir, "model", "model.safetensors"))["model.norm.weight"].dtype != "BF16" {
		t.Fatal("model not saved as bfloat16")
	}
	re, err := Load(filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	trr, _ := NewTrainer(re, cfg)
	if err := trr.LoadState(filepath.Join(dir, "optimizer.bin")); err != nil {
		t.Fatal(err)
	}
	steps(re, trr, 2, 3)
	a, b := allWeights(t, whole), allWeights(t, re)
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("%s[%d]: resumed %g, uninterrupted %g", whole.lay.names[i], j, b[i][j], a[i][j])
			}
		}
	}
}

// TestPeakRSS: allocating and touching 64 MiB raises the peak by at least that much after a reset.
func TestPeakRSS(t *testing.T) {
	if _, ok := PeakRSS(); !ok {
		t.Skip("no /proc/self/status on this system")
	}
	// Free heap pages left by earlier tests go back to the OS first: otherwise the 64 MiB can
	// partly reuse resident memory and the peak rises by less (seen: 57 MiB).
	debug.FreeOSMemory()
	if !ResetPeakRSS() {
		t.Skip("kernel does not allow resetting VmHWM")
	}
	p0, _ := PeakRSS()
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	p1, _ := PeakRSS()
	if p1 < p0+60<<20 {
		t.Fatalf("peak RSS went from %d to %d after touching 64 MiB", p0, p1)
	}
	_ = buf[len(buf)-1]
}
