package train

import (
	"bytes"
	"fmt"
	"math"
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
		"rl.steps=80", "preference.batch_size=32", "optim.lr=0.0003", "optim.schedule=constant", "checkpoint.every=20")
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
	// learnSettings' 100 RL steps: at 60 the rise (0.08–0.23 over seeds and kernels) sat at the
	// margin, so a change of summation order (the AVX2 kernels) could fail it; at 100 it is 0.16–0.24.
	sets := append(learnSettings("chord"), "hybrid.expert_rows=16", "algo.set.mu_peak=0.2", "algo.set.mu_valley=0.2")
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

// presetRunSets are the extra settings a preset's smoke run needs to show its distinctive behaviour.
var presetRunSets = map[string][]string{
	// One training prompt ("a" copied), so the second step revisits it and SPO measures a drift.
	"spo":   {"task.name=copy", "task.options={}", "task.options.len=1", "task.options.letters=ab", "task.test_size=1", "sft.steps=10"},
	"chord": {"hybrid.expert_rows=4"},
	// A task the tiny model partly solves after a short SFT, so that the critic sees non-zero returns.
	"ppo": {"task.name=copy", "task.options={}", "task.options.len=1", "task.options.letters=ab", "task.test_size=1", "sft.steps=10"},
	// The same task for NLPO, whose masking policy keeps resyncing every 3 steps (so that a resume
	// from step 2 needs the checkpointed masking policy at step 3).
	"nlpo": {"task.name=copy", "task.options={}", "task.options.len=1", "task.options.letters=ab", "task.test_size=1", "sft.steps=10", "algo.set.mask_sync_every=3"},
	// Sampled-token reverse KL plus the teacher's top-4 distributions.
	"distill": {"distill.top_k=4"},
	// Layer 0 of the tiny model's 2 for the first step, then the full model.
	"bupo": {"algo.set.layer=0", "algo.set.iterative_steps=1"},
	// Few tokens per batch: regularise half of the negative ones, so that k > 1.
	"lp_reg": {"algo.set.rho_neg=0.5"},
}

// presetEffects check, on the metrics of a preset's two RL steps, that the preset's distinctive
// behaviour happened (not just that it ran): each names the input or schedule it depends on.
var presetEffects = map[string]func(s1, s2 map[string]float64) string{
	// D³S's keep ratios follow Batch.Step: 0.5 at step 1, 0.5 + 0.5/100 at step 2.
	"d3s": func(s1, s2 map[string]float64) string {
		if s1["filter_d3s_smp_keep"] != 0.5 || math.Abs(s2["filter_d3s_smp_keep"]-0.505) > 1e-12 || math.Abs(s2["filter_d3s_tok_keep"]-0.505) > 1e-12 {
			return fmt.Sprintf("keep ratios did not advance with the step: %v → %v", s1["filter_d3s_smp_keep"], s2["filter_d3s_smp_keep"])
		}
		return ""
	},
	// SPO's forgetting factor comes from the measured drift: rho_max on the first visit, lower once the
	// policy has moved on the revisited prompt.
	"spo": func(s1, s2 map[string]float64) string {
		if s1["spo_drift_mean"] != 0 || math.Abs(s1["spo_forget_mean"]-0.96) > 1e-12 {
			return fmt.Sprintf("first visit: drift %v, forget %v; want 0, 0.96", s1["spo_drift_mean"], s1["spo_forget_mean"])
		}
		if !(s2["spo_drift_mean"] > 0) || !(s2["spo_forget_mean"] < 0.96-1e-9) {
			return fmt.Sprintf("revisit: drift %v, forget %v; want > 0 and < 0.96", s2["spo_drift_mean"], s2["spo_forget_mean"])
		}
		return ""
	},
	// HAPO's temperature: constant before any statistics, per-token T·(1 ± tau_t) from step 2 on.
	"hapo": func(s1, s2 map[string]float64) string {
		if _, ok := s1["sampling_temp_mean"]; ok {
			return fmt.Sprintf("step 1 sampled with token temperatures %v before any statistics", s1["sampling_temp_mean"])
		}
		lo, hi := s2["sampling_temp_min"], s2["sampling_temp_max"]
		if !(lo < hi) || lo < 0.95-1e-6 || hi > 1.05+1e-6 {
			return fmt.Sprintf("step 2 token temperatures in [%v, %v]; want a spread inside [0.95, 1.05]", lo, hi)
		}
		return ""
	},
	// Lp-Reg's proxy and DCPO's target ratio come from the old policy's full distributions (checked
	// against float64 in TestDistInputsMatchFullLogits); here: they were computed in every step.
	"lp_reg": func(s1, s2 map[string]float64) string {
		for _, s := range []map[string]float64{s1, s2} {
			if f, ok := s["lpreg_proxy_filtered_frac"]; !ok || f < 0 || f > 1 {
				return fmt.Sprintf("proxy filtered fraction %v (present %v)", f, ok)
			}
		}
		return ""
	},
	// PPO's critic: a value loss from the first step on, and values that moved by step 2 (the head
	// starts at zero, so step 1's values are exactly 0).
	"ppo": func(s1, s2 map[string]float64) string {
		if s1["value_mean"] != 0 || !(s1["value_loss"] > 0) || s2["value_mean"] == 0 {
			return fmt.Sprintf("critic: step 1 values %v loss %v, step 2 values %v; want 0, > 0, != 0", s1["value_mean"], s1["value_loss"], s2["value_mean"])
		}
		return ""
	},
	// NLPO syncs its masking policy before step 1 (not before step 2, mask_sync_every=3) and samples
	// inside its nucleus; its critic trains as ppo's.
	"nlpo": func(s1, s2 map[string]float64) string {
		if s1["nlpo_mask_synced"] != 1 || s2["nlpo_mask_synced"] != 0 || !(s1["nlpo_nucleus_mean"] >= 1) || !(s1["value_loss"] > 0) {
			return fmt.Sprintf("synced %v, %v (want 1, 0); nucleus %v; value loss %v", s1["nlpo_mask_synced"], s2["nlpo_mask_synced"], s1["nlpo_nucleus_mean"], s1["value_loss"])
		}
		return ""
	},
	"distill": func(s1, s2 map[string]float64) string {
		if !(s1["distill_topk_kl"] > 0) || !(s2["distill_topk_kl"] > 0) {
			return fmt.Sprintf("top-k KL %v, %v: want > 0 at both steps", s1["distill_topk_kl"], s2["distill_topk_kl"])
		}
		return ""
	},
	// BuPO trains layer 0's policy at step 1 and the full model's at step 2.
	"bupo": func(s1, s2 map[string]float64) string {
		if l, ok := s1["policy_layer"]; !ok || l != 0 {
			return fmt.Sprintf("step 1 policy layer %v (present %v), want 0", l, ok)
		}
		if _, ok := s2["policy_layer"]; ok {
			return "step 2 still on an internal layer"
		}
		return ""
	},
	// segment_spo samples Monte-Carlo continuations at its cutpoints every step.
	"segment_spo": func(s1, s2 map[string]float64) string {
		for _, s := range []map[string]float64{s1, s2} {
			if !(s["segment_mc_rollouts"] > 0) || s["segment_mc_rollouts"] != 9*s["segment_cutpoints"] {
				return fmt.Sprintf("cutpoints %v, continuations %v; want 9 per cutpoint", s["segment_cutpoints"], s["segment_mc_rollouts"])
			}
		}
		return ""
	},
	"dcpo": func(s1, s2 map[string]float64) string {
		for _, s := range []map[string]float64{s1, s2} {
			if tt := s["dcpo_target_temp"]; tt != 0.8 && tt != 1.2 || !(s["dcpo_target_ratio_mean"] > 0) {
				return fmt.Sprintf("target temperature %v, mean q %v", tt, s["dcpo_target_ratio_mean"])
			}
		}
		return ""
	},
	// CHORD's expert rows enter the loss with weight μ = 0.1.
	"chord": func(s1, s2 map[string]float64) string {
		if s2["mu"] != 0.1 || !(s2["sft_loss"] > 0) || s2["expert_tokens"] == 0 {
			return fmt.Sprintf("expert rows did not enter the loss: mu %v, sft_loss %v, expert_tokens %v", s2["mu"], s2["sft_loss"], s2["expert_tokens"])
		}
		return ""
	},
}

// TestEveryPresetTrains runs two RL steps with every registered preset: none is refused, each trains —
// a finite loss, and a gradient wherever an advantage is non-zero —, every input it declares reaches
// it, and it shows its distinctive behaviour (presetEffects).
func TestEveryPresetTrains(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every preset")
	}
	names := append(objective.Names(), objective.PairNames()...)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sets := append([]string{"algo.name=" + name, "sft.steps=2", "rl.steps=2",
				"rl.mini_batches=2", "task.test_size=8", "sampling.prompts_per_step=4", "sampling.group_size=4", "checkpoint.every=0"}, presetRunSets[name]...)
			switch name { // the model folders these modes read: a short DPO run's final model
			case "rto":
				sets = append(sets, "reward.dpo_model="+dpoModelDir(t, "2"))
			case "distill":
				sets = append(sets, "distill.teacher="+dpoModelDir(t, "2"))
			}
			cfg := smallRun(t, filepath.Join(t.TempDir(), name), sets...)
			checkErr := Check(cfg)
			// Every declared input reaches the objective with a real value where it is read: the
			// drift after the step, everything else in each mini-batch.
			var obj objective.Objective
			if !objective.IsPair(name) {
				obj, _ = objective.New(name, nil)
			}
			seen := map[string]bool{}
			opts := Options{observe: func(stage string, b *objective.Batch) {
				for _, in := range obj.Inputs() {
					if (in == objective.InDrift) != (stage == "after") {
						continue
					}
					if !objective.Present(b, in) || (in == objective.InStep && b.Step < 1) {
						t.Errorf("%s: declared input %s missing at %s", name, in, stage)
					}
					seen[in] = true
				}
			}}
			_, runErr := Run(cfg, opts)
			switch {
			case checkErr != nil:
				t.Fatalf("refused: %v (Run said %v)", checkErr, runErr)
			case runErr != nil:
				t.Fatalf("passed Check but failed in training: %v", runErr)
			}
			recs, err := metrics.Read(filepath.Join(cfg.RunDir, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			var steps []map[string]float64
			for _, rec := range recs {
				if rec.Phase == "rl" {
					steps = append(steps, rec.Values)
				}
			}
			if len(steps) != 2 {
				t.Fatalf("%d rl records, want 2", len(steps))
			}
			for k, s := range steps {
				if s["rows_trained"] > 0 && math.IsNaN(s["loss"]) {
					t.Errorf("step %d: loss %v: want a finite loss", k+1, s["loss"])
				}
				// A batch with a non-zero advantage somewhere must move the policy.
				if z, ok := s["zero_adv_groups_frac"]; ok && z < 1 && !(s["grad_norm"] > 0) {
					t.Errorf("step %d: grad_norm %v with %v of the groups carrying advantages", k+1, s["grad_norm"], 1-z)
				}
			}
			// config.yaml records every resolved parameter of the objective.
			saved, err := LoadConfig(filepath.Join(cfg.RunDir, "config.yaml"), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, defs, ok := objective.Describe(name)
			if !ok {
				_, defs, _ = objective.DescribePair(name)
			}
			for k, v := range defs {
				if got, ok := saved.Algo.Set[k]; !ok || (cfg.Algo.Set[k] == "" && got != v) {
					t.Errorf("config.yaml algo.set.%s = %q (present %v), want the default %q", k, got, ok, v)
				}
			}
			if obj != nil {
				for _, in := range obj.Inputs() {
					if !seen[in] && !(in == objective.InDrift && !objective.Declares(obj, objective.InDrift)) {
						t.Errorf("declared input %s never reached the objective", in)
					}
				}
			}
			if effect, ok := presetEffects[name]; ok {
				if msg := effect(steps[0], steps[1]); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

// TestStatefulPresetsResumeBitIdentical: SPO's tracker with the trainer's drift memory, and HAPO's
// temperature statistics, survive a resume: a run resumed from its step-2 checkpoint repeats steps 3
// and 4 exactly (metrics and weights).
func TestStatefulPresetsResumeBitIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("trains small runs")
	}
	for _, name := range []string{"spo", "hapo", "ppo", "nlpo"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			sets := append([]string{"algo.name=" + name, "sft.steps=4", "rl.steps=4", "checkpoint.every=2", "checkpoint.keep=3",
				"task.test_size=8", "sampling.prompts_per_step=4"}, presetRunSets[name]...)
			whole := smallRun(t, filepath.Join(root, "whole"), sets...)
			if _, err := Run(whole, Options{}); err != nil {
				t.Fatal(err)
			}
			want := comparableMetrics(t, whole.RunDir)
			// "Kill" after step 2: copy the run and point latest at rl-000002.
			dir := filepath.Join(root, "resumed")
			if err := os.CopyFS(dir, os.DirFS(whole.RunDir)); err != nil {
				t.Fatal(err)
			}
			os.RemoveAll(filepath.Join(dir, "checkpoints", "rl-000004"))
			os.WriteFile(filepath.Join(dir, "checkpoints", "latest"), []byte("rl-000002\n"), 0o644)
			if _, err := Resume(dir, Options{}); err != nil {
				t.Fatal(err)
			}
			sameMetrics(t, want, comparableMetrics(t, dir))
			a, _ := os.ReadFile(filepath.Join(whole.RunDir, "checkpoints", "rl-000004", "model", "model.safetensors"))
			b, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000004", "model", "model.safetensors"))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Fatalf("final weights differ after resume")
			}
			// The state (objective state, value head, shaping and drift memories) too.
			a, _ = os.ReadFile(filepath.Join(whole.RunDir, "checkpoints", "rl-000004", "state.json"))
			b, _ = os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000004", "state.json"))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Fatalf("final state.json differs after resume")
			}
			if name == "ppo" && !bytes.Contains(a, []byte(criticStateKey)) {
				t.Fatalf("ppo checkpoint has no value head")
			}
			if name == "nlpo" { // the masking policy (synced before step 4) too
				a, _ = os.ReadFile(filepath.Join(whole.RunDir, "checkpoints", "rl-000004", "mask_model", "model.safetensors"))
				b, _ = os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000004", "mask_model", "model.safetensors"))
				if len(a) == 0 || !bytes.Equal(a, b) {
					t.Fatalf("final masking policy differs after resume")
				}
			}
		})
	}
}
