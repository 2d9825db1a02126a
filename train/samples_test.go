package train

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/polo-rl/polo/metrics"
)

// A small run's samples log and TensorBoard file agree with its metrics.jsonl: every RL step's
// logged rollouts (all rows here) average to the step's reward_mean, GRPO's advantages sum to zero
// within each group, the per-token arrays cover the response, and the greedy held-out answers
// logged at each evaluation give its accuracy.
func TestDashLogs(t *testing.T) {
	dir := t.TempDir()
	cfg := smallRun(t, dir, "rl.steps=3", "sft.steps=2", "eval.every=0", "task.test_size=8",
		"sampling.prompts_per_step=2", "sampling.group_size=4", "log.samples=8")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	samples, err := metrics.ReadSamples(filepath.Join(dir, "samples"))
	if err != nil {
		t.Fatal(err)
	}
	byStep := map[int][]metrics.Sample{}
	evals := map[string][]metrics.Sample{}
	for _, s := range samples {
		switch s.Kind {
		case "rollout":
			byStep[s.Step] = append(byStep[s.Step], s)
		case "eval-greedy":
			evals[s.Phase] = append(evals[s.Phase], s)
		}
	}
	nRL, nEval := 0, 0
	for _, r := range recs {
		switch {
		case r.Phase == "rl":
			nRL++
			ss := byStep[r.Step]
			if len(ss) != 8 {
				t.Fatalf("rl step %d: %d samples, want 8", r.Step, len(ss))
			}
			sum := 0.0
			groupAdv := map[int]float64{}
			for _, s := range ss {
				sum += s.Reward
				if len(s.Tokens) != s.Length || len(s.LogProbs) != s.Length || len(s.Entropy) != s.Length || len(s.Advantages) != s.Length {
					t.Fatalf("step %d: per-token arrays %d/%d/%d/%d for length %d", r.Step, len(s.Tokens), len(s.LogProbs), len(s.Entropy), len(s.Advantages), s.Length)
				}
				for _, lp := range s.LogProbs {
					if lp > 0 {
						t.Fatalf("log-prob %v > 0", lp)
					}
				}
				groupAdv[s.Group] += s.Advantage
			}
			if got := sum / 8; math.Abs(got-r.Values["reward_mean"]) > 1e-12 {
				t.Errorf("rl step %d: samples' mean reward %v, metrics %v", r.Step, got, r.Values["reward_mean"])
			}
			for g, a := range groupAdv {
				if math.Abs(a) > 1e-9 {
					t.Errorf("rl step %d group %d: advantages sum to %v", r.Step, g, a)
				}
			}
		case r.Phase == "eval-start" || r.Phase == "eval-sft" || r.Phase == "eval":
			nEval++
			ss := evals[r.Phase]
			if len(ss) != 8 {
				t.Fatalf("%s: %d greedy samples, want the 8 held-out prompts", r.Phase, len(ss))
			}
			correct := 0
			for _, s := range ss {
				if s.Correct {
					correct++
				}
			}
			if got := float64(correct) / 8; got != r.Values["accuracy"] {
				t.Errorf("%s: logged answers' accuracy %v, metrics %v", r.Phase, got, r.Values["accuracy"])
			}
		}
	}
	if nRL != 3 || nEval < 2 {
		t.Fatalf("%d rl and %d eval records", nRL, nEval)
	}

	// TensorBoard: one event per metrics line, same values as float32.
	files, _ := filepath.Glob(filepath.Join(dir, "tb", "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files %v", files)
	}
	evs, err := metrics.ReadEventFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(recs)+1 {
		t.Fatalf("%d events for %d records", len(evs), len(recs))
	}
	for i, r := range recs {
		ev := evs[i+1]
		if ev.Step != int64(r.Step) || len(ev.Values) != len(r.Values) || math.Abs(ev.WallTime-r.Time) > 1e-6 {
			t.Fatalf("event %d: step %d, %d values; record step %d, %d values", i+1, ev.Step, len(ev.Values), r.Step, len(r.Values))
		}
		for _, v := range ev.Values {
			if want := float64(float32(r.Values[v.Tag[len(r.Phase)+1:]])); v.Value != want || v.Tag[:len(r.Phase)] != r.Phase {
				t.Fatalf("event %d %s = %v, want %v", i+1, v.Tag, v.Value, want)
			}
		}
	}
}

// A resumed run drops the samples and TensorBoard events of the steps it redoes: afterwards every
// RL step has one set of samples and one event per tag, across the two event files.
func TestDashLogsResume(t *testing.T) {
	dir := t.TempDir()
	cfg := smallRun(t, dir, "rl.steps=5", "sft.steps=2", "eval.every=0", "task.test_size=8", "checkpoint.every=2",
		"sampling.prompts_per_step=2", "sampling.group_size=2", "log.samples=3")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	// Lose the last checkpoint: the resume restarts from rl step 4 and redoes step 5.
	ck := filepath.Join(dir, "checkpoints")
	if err := os.RemoveAll(filepath.Join(ck, "rl-000005")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ck, "latest"), []byte("rl-000004\n"), 0o644)
	if _, err := Resume(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	samples, err := metrics.ReadSamples(filepath.Join(dir, "samples"))
	if err != nil {
		t.Fatal(err)
	}
	perStep := map[int]int{}
	for _, s := range samples {
		if s.Kind == "rollout" {
			perStep[s.Step]++
		}
	}
	if fmt.Sprint(perStep) != "map[1:3 2:3 3:3 4:3 5:3]" {
		t.Fatalf("rollout samples per step after resume: %v", perStep)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "tb", "events.out.tfevents.*"))
	if len(files) != 2 {
		t.Fatalf("event files: %v", files)
	}
	seen := map[string]int{}
	for _, f := range files {
		evs, err := metrics.ReadEventFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			for _, v := range ev.Values {
				seen[fmt.Sprintf("%s@%d", v.Tag, ev.Step)]++
			}
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s: %d events", k, n)
		}
	}
	if seen["rl/reward_mean@5"] != 1 || seen["rl/reward_mean@4"] != 1 {
		t.Fatalf("rl/reward_mean events: %v", seen)
	}
}
