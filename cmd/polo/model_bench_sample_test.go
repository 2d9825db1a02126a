package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelBenchGPUFlags: the commands bench/gpu/run.sh calls, at tiny shapes.
func TestModelBenchGPUFlags(t *testing.T) {
	cfg := filepath.Join("..", "..", "bench", "gpu", "tiny-qwen2.json")
	fixture := filepath.Join("..", "..", "testdata", "models", "qwen2")
	var out, errb bytes.Buffer
	if code := run([]string{"model", "bench", "--config", cfg, "--mode", "sample", "--batch", "3", "--prompt-len", "5", "--new-tokens", "4",
		"--rounds", "1", "--warmup", "--compute", "bf16"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("sample: exit %d: %s", code, errb.String())
	}
	var s sampleBenchResult
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Batch != 3 || s.NewTokens != 4 || s.Compute.DType != "bf16" || s.Compile.Graphs != 2 || s.WeightBytes != 4*int64(s.Params) || !(s.TokensPerSecond > 0) {
		t.Fatalf("sample result %+v", s)
	}
	out.Reset()
	if code := run([]string{"model", "bench", "--config", cfg, "--mode", "full", "--batch", "2", "--seq", "16", "--steps", "1", "--warmup",
		"--compute", "bf16", "--flash"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("train: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"train_accfalse_entfalse_rngfalse/bf16/flash":1`) {
		t.Fatalf("train result lacks the warm-up's graphs: %s", out.String())
	}
	out.Reset()
	if code := run([]string{"model", "check", "--model", fixture, "--reference", filepath.Join(fixture, "reference.safetensors"), "--compute", "bf16",
		"--tol", "0.05", "--rel-tol", "0.05"}, strings.NewReader(""), &out, &errb); code != 0 || !strings.Contains(out.String(), "all 7 checks") {
		t.Fatalf("check bf16: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"model", "check", "--all", filepath.Join("..", "..", "testdata", "models")}, strings.NewReader(""), &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "== qwen3 float32\n") || !strings.Contains(out.String(), "all 5 models within tolerance") {
		t.Fatalf("check --all: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if code := run([]string{"model", "bench", "--config", cfg, "--mode", "sample", "--compute", "fp8"}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Fatalf("fp8: exit %d, want 2", code)
	}
}
