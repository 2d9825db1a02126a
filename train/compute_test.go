package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
)

// TestComputeBF16Run: a short run with model.compute.dtype bf16 and fused attention trains and
// writes compile.json with the graphs it compiled; a bad dtype is refused naming the field.
func TestComputeBF16Run(t *testing.T) {
	if _, err := LoadConfig("", []string{"model.compute.dtype=fp8"}); err == nil || !strings.Contains(err.Error(), "model.compute.dtype") {
		t.Fatalf("fp8: %v", err)
	}
	cfg := smallRun(t, t.TempDir(), "rl.steps=2", "sft.steps=2", "model.compute.dtype=bf16", "model.compute.flash=true",
		"model.compute.buckets_per_octave=1")
	sum, err := Run(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var cs model.CompileStats
	data, err := os.ReadFile(filepath.Join(cfg.RunDir, "compile.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatal(err)
	}
	if cs.Graphs == 0 || cs.Graphs != sum.Graphs || cs.ByName["adamw/bf16/flash/b1"] != 1 {
		t.Fatalf("compile.json %+v, summary %d graphs: want the run's graphs, one adamw", cs, sum.Graphs)
	}
	t.Logf("graphs compiled: %d (%.2f s) %v", cs.Graphs, cs.Seconds, cs.ByName)
}
