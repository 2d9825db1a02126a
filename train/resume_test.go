package train

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResumeFallsBackFromCorruptLatest: when the checkpoint "latest" names is corrupt, resume falls
// back to the previous complete one, redoes the lost steps bit-identically, and removes the .tmp-*
// leftovers of killed writes (issue 14, minor items).
func TestResumeFallsBackFromCorruptLatest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := smallRun(t, dir)
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	want := comparableMetrics(t, dir)
	ck := filepath.Join(dir, "checkpoints")
	if err := os.WriteFile(filepath.Join(ck, "rl-000008", "model", "model.safetensors"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(ck, ".tmp-rl-000010-123"), 0o755)
	os.WriteFile(filepath.Join(dir, ".tmp-config.yaml-9"), []byte("x"), 0o644)
	var log bytes.Buffer
	if _, err := Resume(dir, Options{Log: &log}); err != nil {
		t.Fatalf("resume: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "checkpoint rl-000008 is unusable") || !strings.Contains(log.String(), "falling back to rl-000006") {
		t.Errorf("log does not report the fallback:\n%s", log.String())
	}
	sameMetrics(t, want, comparableMetrics(t, dir))
	for _, p := range []string{filepath.Join(ck, ".tmp-rl-000010-123"), filepath.Join(dir, ".tmp-config.yaml-9")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was not cleaned up", p)
		}
	}
	if _, err := os.Stat(filepath.Join(ck, "rl-000008", "model", "model.safetensors")); err != nil {
		t.Fatal(err)
	}
}
