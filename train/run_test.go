package train

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/task"
)

// smallRun is a run that takes seconds: single-digit addition, a tiny model, small batches.
func smallRun(t *testing.T, dir string, sets ...string) Config {
	t.Helper()
	base := []string{
		"run_dir=" + dir, "task.options.digits=1", "task.test_size=32",
		"sampling.prompts_per_step=8", "sampling.group_size=4", "sampling.max_new_tokens=3",
		"sft.steps=6", "sft.batch_size=32", "rl.steps=8", "eval.every=4",
		"checkpoint.every=2", "checkpoint.keep=2", "log.plots=false", "optim.warmup_steps=2",
		// Pinned so that changes to the demo's defaults do not change these runs.
		"model.preset=tiny", "sft.lr=0.003", "optim.lr=0.0005", "rl.mini_batches=1", "rl.epochs=1",
		"optim.schedule=cosine", "sampling.temperature=1", "seed=1",
	}
	cfg, err := LoadConfig("", append(base, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// timingKeys vary from run to run; everything else in metrics.jsonl must be reproducible.
var timingKeys = map[string]bool{"rollout_s": true, "reward_s": true, "train_s": true, "tokens_per_s": true, "segment_mc_s": true, "segment_tree_s": true}

func comparableMetrics(t *testing.T, dir string) []metrics.Record {
	t.Helper()
	recs, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		for k := range r.Values {
			if timingKeys[k] {
				delete(r.Values, k)
			}
		}
	}
	return recs
}

func sameMetrics(t *testing.T, want, got []metrics.Record) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("metrics: %d records, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Step != g.Step || w.Phase != g.Phase || len(w.Values) != len(g.Values) {
			t.Fatalf("record %d: got %s/%d (%d values), want %s/%d (%d values)", i, g.Phase, g.Step, len(g.Values), w.Phase, w.Step, len(w.Values))
		}
		for k, v := range w.Values {
			if gv, ok := g.Values[k]; !ok || gv != v {
				t.Fatalf("record %d (%s step %d) %s: got %v, want %v (bit-identical)", i, w.Phase, w.Step, k, gv, v)
			}
		}
	}
}

// TestMain lets the kill test run a training process that it can SIGKILL.
func TestMain(m *testing.M) {
	if cfgPath := os.Getenv("POLO_TRAIN_CHILD"); cfgPath != "" {
		var err error
		if os.Getenv("POLO_TRAIN_CHILD_RESUME") != "" {
			_, err = Resume(cfgPath, Options{})
		} else {
			var cfg Config
			if cfg, err = LoadConfig(cfgPath, nil); err == nil {
				_, err = Run(cfg, Options{})
			}
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild trains in a separate process (fresh, or resuming dir).
func startChild(t *testing.T, arg string, resume bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "POLO_TRAIN_CHILD="+arg)
	if resume {
		cmd.Env = append(cmd.Env, "POLO_TRAIN_CHILD_RESUME=1")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// killWhenPast SIGKILLs the child once checkpoints/latest names a checkpoint at or after `after`
// (checkpoint names sort by phase then step when "sft-" < "rl-" is taken into account).
func killWhenPast(t *testing.T, cmd *exec.Cmd, dir, afterPhase string, afterStep int) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case err := <-done:
			t.Fatalf("child finished before it could be killed (err %v)", err)
		case <-deadline:
			t.Fatal("child made no progress in 5 minutes")
		case <-time.After(20 * time.Millisecond):
		}
		var st runState
		if path, err := latestCheckpoint(filepath.Join(dir, "checkpoints")); err == nil && readJSONFile(filepath.Join(path, "state.json"), &st) == nil {
			past := st.Phase == afterPhase && st.Step >= afterStep || afterPhase == "sft" && st.Phase == "rl"
			if past {
				// Let it run into the next step so the kill lands mid-work, then kill -9.
				time.Sleep(150 * time.Millisecond)
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				return
			}
		}
	}
}

func TestKillAndResumeIsBitIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three small runs")
	}
	root := t.TempDir()
	// HAPO's per-prompt history and an extra reward component ride along: resuming must restore the
	// history from the checkpoint, or the rewards after the kill would differ.
	shaping := []string{"reward.hapo.weight=0.5", "reward.extra=[{name: exact, kind: exact, weight: 0.25}]", "sft.steps=30", "checkpoint.every=4"}
	whole := smallRun(t, filepath.Join(root, "whole"), shaping...)
	if _, err := Run(whole, Options{}); err != nil {
		t.Fatal(err)
	}
	want := comparableMetrics(t, whole.RunDir)
	hapoSeen := false
	for _, rec := range want {
		v := rec.Values
		if rec.Phase != "rl" {
			continue
		}
		hapoSeen = hapoSeen || v["reward_hapo_mean"] != 0
		combined := v["reward_verifier_mean"] + 0.25*v["reward_exact_mean"] + 0.5*v["reward_hapo_mean"]
		if math.Abs(combined-v["reward_mean"]) > 1e-12 {
			t.Fatalf("step %d: reward_mean %v is not the weighted sum of its components %v", rec.Step, v["reward_mean"], combined)
		}
	}
	if !hapoSeen {
		t.Fatal("the HAPO component never moved; the test would not notice a lost history")
	}

	dir := filepath.Join(root, "killed")
	cfg := smallRun(t, dir, shaping...)
	cfgPath := filepath.Join(root, "killed.yaml")
	os.WriteFile(cfgPath, cfg.YAML(), 0o644)

	// Killed once during SFT and once during RL, resumed each time.
	killWhenPast(t, startChild(t, cfgPath, false), dir, "sft", 8)
	killWhenPast(t, startChild(t, dir, true), dir, "rl", 2)
	sum, err := Resume(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, want, comparableMetrics(t, dir))
	if math.IsNaN(sum.AccuracySFT) || math.IsNaN(sum.AccuracyRL) {
		t.Fatalf("resumed summary lost the evaluations: %+v", sum)
	}
	// The final weights are the same too.
	a, _ := os.ReadFile(filepath.Join(whole.RunDir, "checkpoints", "rl-000008", "model", "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000008", "model", "model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("final weights differ after kill and resume (%d vs %d bytes)", len(a), len(b))
	}
}

func TestSameSeedSameRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two small runs")
	}
	root := t.TempDir()
	var runs [][]metrics.Record
	for _, name := range []string{"a", "b"} {
		cfg := smallRun(t, filepath.Join(root, name), "rl.steps=3", "sft.steps=2")
		if _, err := Run(cfg, Options{}); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, comparableMetrics(t, cfg.RunDir))
	}
	sameMetrics(t, runs[0], runs[1])
}

func TestBadInputsAreClearErrorsAndLoseNothing(t *testing.T) {
	root := t.TempDir()
	cases := []struct {
		name string
		sets []string
		want string
	}{
		{"unknown preset", []string{"algo.name=grpoo"}, `unknown objective "grpoo"`},
		{"unknown parameter", []string{"algo.set.eps_hgh=0.2"}, `unknown parameter "eps_hgh"`},
		{"unknown task", []string{"task.name=division"}, "division"},
		{"unknown verifier", []string{"reward.verifier=vibes"}, "vibes"},
		{"missing model folder", []string{"model.path=" + filepath.Join(root, "nope")}, "nope"},
		{"unknown model preset", []string{"model.preset=huge"}, "huge"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallRun(t, filepath.Join(root, strings.ReplaceAll(tc.name, " ", "_")), tc.sets...)
			_, err := Run(cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("want one-line error containing %q, got %v", tc.want, err)
			}
		})
	}

	// Resuming a folder without checkpoints, or one that does not exist.
	if _, err := Resume(filepath.Join(root, "absent"), Options{}); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("resume of a missing run: %v", err)
	}

	// A finished run is not overwritten by a new run pointed at it.
	cfg := smallRun(t, filepath.Join(root, "done"), "sft.steps=2", "rl.steps=2")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(cfg.RunDir, "checkpoints", "rl-000002", "model", "model.safetensors")
	before, _ := os.ReadFile(ckpt)
	_, err := Run(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("second run into the same folder: %v", err)
	}
	after, _ := os.ReadFile(ckpt)
	if len(before) == 0 || !bytes.Equal(before, after) {
		t.Fatal("checkpoint changed by a refused run")
	}
}

// hostileVerifier panics on some responses, hangs on others and returns NaN on a third kind.
type hostileVerifier struct{}

func (hostileVerifier) Verify(resp string, ex task.Example) reward.Score {
	switch {
	case strings.HasPrefix(resp, "1"):
		panic("boom")
	case strings.HasPrefix(resp, "2"):
		time.Sleep(time.Hour)
	case strings.HasPrefix(resp, "3"):
		return reward.Score{Value: math.NaN()}
	}
	ok := strings.TrimSpace(resp) == ex.Answer
	if ok {
		return reward.Score{Value: 1, Correct: true}
	}
	return reward.Score{}
}

func TestPanickingOrHangingRewardScoresZero(t *testing.T) {
	cfg := smallRun(t, filepath.Join(t.TempDir(), "r"), "sft.steps=4", "rl.steps=2", "reward.timeout=0.05", "task.test_size=8")
	var log bytes.Buffer
	sum, err := Run(cfg, Options{Log: &log, Verifier: hostileVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"verifier panicked: boom", "verifier timed out", "verifier returned NaN"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if math.IsNaN(sum.RewardFirst) || sum.RewardFirst < 0 || sum.RewardFirst > 1 {
		t.Fatalf("reward %v", sum.RewardFirst)
	}
	if _, err := latestCheckpoint(filepath.Join(cfg.RunDir, "checkpoints")); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointHoldsItsTokenizer(t *testing.T) {
	cfg := smallRun(t, filepath.Join(t.TempDir(), "p"), "sft.steps=2", "rl.steps=0")
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(filepath.Join(cfg.RunDir, "checkpoints", "sft-000002", "model"))
	if err != nil {
		t.Fatal(err)
	}
	ex := task.Example{Prompt: "3+4="}
	ids, err := p.Prompt(ex)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 5 || ids[0] != p.Tokenizer().BOS() || p.Text(append(ids[1:], p.StopTokens()[0], ids[1])) != "3+4=" {
		t.Fatalf("prompt ids %v do not round-trip", ids)
	}
}
