package metrics

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestLogReadRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 3; s++ {
		l.Write(Record{Step: s, Phase: "rl", Values: map[string]float64{"reward": float64(s) / 4, "bad": math.NaN()}})
	}
	l.Close()
	// A torn last line from a killed run is ignored.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":4,"pha`)
	f.Close()
	recs, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[2].Values["reward"] != 0.75 || recs[0].Values["nonfinite_values"] != 1 {
		t.Fatalf("read back %+v", recs)
	}
	if _, ok := recs[0].Values["bad"]; ok {
		t.Fatal("NaN value was written")
	}
	xs, ys := Series(recs, "rl", "reward")
	if len(xs) != 3 || xs[1] != 2 || ys[1] != 0.5 {
		t.Fatalf("series %v %v", xs, ys)
	}
	if err := Rewrite(path, recs[:2]); err != nil {
		t.Fatal(err)
	}
	recs, _ = Read(path)
	if len(recs) != 2 {
		t.Fatalf("rewrite kept %d records", len(recs))
	}
}

func TestCorruptMiddleLineIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	os.WriteFile(path, []byte("{\"step\":1}\nnot json\n{\"step\":3}\n"), 0o644)
	if _, err := Read(path); err == nil {
		t.Fatal("want an error for a corrupt middle line")
	}
}

func TestPlotPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.png")
	err := PlotPNG(path, "reward", "step", "reward", []Curve{
		{Name: "grpo", X: []float64{1, 2, 3}, Y: []float64{0.1, 0.3, 0.5}, Lo: []float64{0, 0.2, 0.4}, Hi: []float64{0.2, 0.4, 0.6}},
		{Name: "dapo", X: []float64{1, 2, 3}, Y: []float64{0.2, 0.2, 0.6}},
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("\x89PNG")) || len(data) < 2000 {
		t.Fatalf("not a PNG plot (%d bytes)", len(data))
	}
	if err := PlotPNG(path, "x", "", "", []Curve{{X: []float64{1}, Y: nil}}); err == nil {
		t.Fatal("want an error for mismatched curve")
	}
}
