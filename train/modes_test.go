package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/objective"
)

func rlSeries(t *testing.T, dir, key string) []float64 {
	t.Helper()
	recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	_, ys := metrics.Series(recs, "rl", key)
	if len(ys) == 0 {
		t.Fatalf("no %s in %s", key, dir)
	}
	return ys
}

func firstLast(ys []float64) (float64, float64) {
	n := max(1, len(ys)/4)
	return mean(ys[:n]), mean(ys[len(ys)-n:])
}

// TestPreferenceModeRaisesMargin: DPO on synthetic pairs (reference answer vs a near miss) after a
// short warm-up widens the implicit reward margin and ranks most pairs right.
func TestPreferenceModeRaisesMargin(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	cfg := smallRun(t, filepath.Join(t.TempDir(), "dpo"), "algo.name=dpo", "algo.set.beta=0.1", "sft.steps=40",
		"rl.steps=40", "preference.batch_size=32", "optim.lr=0.0003", "optim.schedule=constant", "checkpoint.every=20")
	sum, err := Run(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, last := firstLast(rlSeries(t, cfg.RunDir, "reward_margin"))
	_, acc := firstLast(rlSeries(t, cfg.RunDir, "reward_accuracy"))
	t.Logf("dpo: margin %.3f → %.3f, pair accuracy %.3f, held-out accuracy %.3f → %.3f", first, last, acc, sum.AccuracySFT, sum.AccuracyRL)
	if last < first+0.1 || acc < 0.6 {
		t.Fatalf("dpo did not separate the pairs: margin %.3f → %.3f, pair accuracy %.3f", first, last, acc)
	}
}

func TestPreferenceFileErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pairs.jsonl")
	os.WriteFile(path, []byte(`{"prompt":"1+1=","chosen":"2","rejected":"3"}`+"\n"+`{"prompt":"1+2=","chosen":"3"}`+"\n"), 0o644)
	cfg := smallRun(t, filepath.Join(dir, "run"), "algo.name=dpo", "preference.path="+path)
	_, err := Run(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), `"rejected"`) {
		t.Fatalf("want an error naming line 2 and field rejected, got %v", err)
	}
	pairs, err := loadPairs(path + ".missing")
	if err == nil || pairs != nil {
		t.Fatal("missing file must be an error")
	}
}

// TestDistillModeLowersReverseKL: a weak student sampling its own answers moves toward a stronger
// teacher: the per-token reverse KL to the teacher falls.
func TestDistillModeLowersReverseKL(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a teacher and a student")
	}
	root := t.TempDir()
	teacher := smallRun(t, filepath.Join(root, "teacher"), "sft.steps=80", "rl.steps=0")
	if _, err := Run(teacher, Options{}); err != nil {
		t.Fatal(err)
	}
	student := smallRun(t, filepath.Join(root, "student"), "seed=7", "sft.steps=5", "rl.steps=40", "algo.name=distill",
		"distill.teacher="+filepath.Join(teacher.RunDir, "checkpoints", "sft-000080", "model"), "optim.lr=0.001", "optim.schedule=constant")
	if _, err := Run(student, Options{}); err != nil {
		t.Fatal(err)
	}
	first, last := firstLast(rlSeries(t, student.RunDir, "reverse_kl"))
	t.Logf("distill: reverse KL to the teacher %.3f → %.3f", first, last)
	if last > 0.8*first {
		t.Fatalf("reverse KL did not fall clearly: %.3f → %.3f", first, last)
	}

	// A teacher with another vocabulary is refused with a clear error.
	other := smallRun(t, filepath.Join(root, "other"), "algo.name=distill", "task.name=reverse", "task.options={}",
		"distill.teacher="+filepath.Join(teacher.RunDir, "checkpoints", "sft-000080", "model"))
	if _, err := Run(other, Options{}); err == nil || !strings.Contains(err.Error(), "vocab") {
		t.Fatalf("want a vocabulary mismatch error, got %v", err)
	}
}

// TestHybridModeMixesExpertRows: CHORD with expert rows (the step's prompts with their reference
// answers) trains both losses, and the reward rises as in plain RL.
func TestHybridModeMixesExpertRows(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	sets := append(learnSettings("chord"), "hybrid.expert_rows=16", "algo.set.mu_peak=0.2", "algo.set.mu_valley=0.2", "rl.steps=60")
	cfg := smallRun(t, filepath.Join(t.TempDir(), "chord"), sets...)
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	first, last := firstLast(rlSeries(t, cfg.RunDir, "reward_mean"))
	sft := rlSeries(t, cfg.RunDir, "sft_loss")
	mu := rlSeries(t, cfg.RunDir, "mu")
	t.Logf("chord: reward %.3f → %.3f, expert NLL %.3f → %.3f, mu %.2f", first, last, sft[0], sft[len(sft)-1], mu[0])
	if sft[0] <= 0 || mu[0] != 0.2 {
		t.Fatalf("expert rows did not enter the loss: sft_loss %v, mu %v", sft[0], mu[0])
	}
	if last < first+learnMargin {
		t.Fatalf("chord did not learn: reward %.3f → %.3f", first, last)
	}
	if _, err := LoadConfig("", []string{"hybrid.expert_rows=4"}); err == nil || !strings.Contains(err.Error(), "hybrid.expert_rows") {
		t.Fatalf("expert rows with a non-chord preset: %v", err)
	}
}

// TestEveryPresetTrainsOrIsRefusedUpFront runs two RL steps with every registered preset: each
// either trains or is refused before training with a reason (never a failure mid-run).
func TestEveryPresetTrainsOrIsRefusedUpFront(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every preset")
	}
	names := append(objective.Names(), objective.PairNames()...)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			cfg := smallRun(t, filepath.Join(t.TempDir(), name), "algo.name="+name, "sft.steps=2", "rl.steps=2",
				"rl.mini_batches=2", "task.test_size=8", "sampling.prompts_per_step=4", "sampling.group_size=4", "checkpoint.every=0")
			checkErr := Check(cfg)
			_, runErr := Run(cfg, Options{})
			switch {
			case checkErr != nil:
				if runErr == nil || !strings.Contains(checkErr.Error(), name) {
					t.Fatalf("refused by Check (%v) but Run said %v", checkErr, runErr)
				}
				if _, listed := notInTrainer[name]; !listed && name != "distill" {
					t.Fatalf("refused without being listed: %v", checkErr)
				}
			case runErr != nil:
				t.Fatalf("passed Check but failed in training: %v", runErr)
			}
		})
	}
}
