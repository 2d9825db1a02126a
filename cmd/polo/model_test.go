package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelCheck(t *testing.T) {
	fixture := filepath.Join("..", "..", "testdata", "models", "qwen3")
	// A copy of the reference with one logit moved by 1e-3 must fail.
	data, err := os.ReadFile(filepath.Join(fixture, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, perturbFirstLogit(t, data), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"pass", []string{"model", "check", "--model", fixture, "--reference", filepath.Join(fixture, "reference.safetensors")}, 0,
			"all 7 checks within tolerance", ""},
		{"perturbed logit", []string{"model", "check", "--model", fixture, "--reference", bad}, 1,
			"FAIL logits", "1 of 7 checks past tolerance"},
		{"missing flags", []string{"model", "check", "--model", fixture}, 2, "", "needs --model DIR and --reference FILE"},
		{"no subcommand", []string{"model"}, 2, "", "usage: polo model check"},
		{"bad folder", []string{"model", "check", "--model", t.TempDir(), "--reference", bad}, 1, "", "config.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, strings.NewReader(""), &out, &errb)
			if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errb.String(), c.err) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
		})
	}
}

// perturbFirstLogit adds 1e-3 to the first float of the "logits" tensor of a safetensors file.
func perturbFirstLogit(t *testing.T, data []byte) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(data[:8])
	var header map[string]struct {
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), data...)
	off := 8 + int(n) + header["logits"].Offsets[0]
	v := math.Float32frombits(binary.LittleEndian.Uint32(out[off:])) + 1e-3
	binary.LittleEndian.PutUint32(out[off:], math.Float32bits(v))
	return out
}
