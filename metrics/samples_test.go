package metrics

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Samples round-trip through rotated files: a small MaxBytes forces a new file per step, MaxFiles
// keeps the newest two, and reopening continues the newest file.
func TestSamplesLogRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "samples")
	s, err := OpenSamples(dir, 300, 2)
	if err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 4; step++ {
		err := s.Write([]Sample{
			{Step: step, Phase: "rl", Kind: "rollout", Prompt: "3+4=", Response: "7", Reward: 1, Correct: true, Advantage: 0.5, Length: 2, Finish: "stop",
				Components: map[string]float64{"verifier": 1}, Tokens: []string{"7", "<eos>"}, LogProbs: []float64{-0.1, math.Inf(-1)}},
			{Step: step, Phase: "rl", Kind: "rollout", Group: 1, Prompt: "9+9=", Response: "17", Reward: 0, Advantage: -0.5, Length: 3, Finish: "stop"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	files, _ := SampleFiles(dir)
	if len(files) != 2 || filepath.Base(files[0]) != "samples-000002.jsonl" || filepath.Base(files[1]) != "samples-000003.jsonl" {
		t.Fatalf("files after rotation: %v", files)
	}
	got, err := ReadSamples(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Step != 3 || got[3].Step != 4 || got[3].Response != "17" || got[2].Components["verifier"] != 1 ||
		got[2].LogProbs[0] != -0.1 || got[2].LogProbs[1] != 0 || got[2].Tokens[1] != "<eos>" {
		t.Fatalf("samples read back: %+v", got)
	}
	// Reopen: appends to samples-000003 (room left) and a torn tail line is ignored.
	s, _ = OpenSamples(dir, 1<<20, 0)
	s.Write([]Sample{{Step: 5, Phase: "eval", Kind: "eval-greedy", Response: "12"}})
	s.Close()
	f, _ := os.OpenFile(files[1], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":6,"resp`)
	f.Close()
	got, err = ReadSamples(dir)
	if err != nil || len(got) != 5 || got[4].Kind != "eval-greedy" {
		t.Fatalf("after reopen: %v %+v", err, got)
	}
}
