package train

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/objective"
)

// writeOfflinePairs writes n off-policy pairs of the task (reference answer chosen, a near-miss
// rejected) as rl.offline_path JSONL.
func writeOfflinePairs(t *testing.T, path string, n int) {
	t.Helper()
	r := testRunner(t)
	exs, err := r.prompts.draw("offline-data", 1, n)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	for _, ex := range exs {
		wrong, ok := r.corrupt(ex, rng)
		if !ok {
			t.Fatalf("no wrong answer for %q", ex.Answer)
		}
		line, _ := json.Marshal(map[string]string{"prompt": ex.Prompt, "chosen": ex.Answer, "rejected": wrong})
		sb.Write(append(line, '\n'))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCoPGTrainsOnOfflinePairs: copg with rl.offline_path trains on the file's pairs instead of
// samples: every mini-batch holds the file's responses with rewards 1 (chosen) and 0 (rejected);
// at step 1 the policy is the reference, so Rb = R and CoPG's loss is (1 − 0)² = 1 exactly; then the
// loss falls as the policy learns to prefer the chosen answers ((1 − β·margin)² < 1).
func TestCoPGTrainsOnOfflinePairs(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "pairs.jsonl")
	writeOfflinePairs(t, data, 16)
	cfg := smallRun(t, filepath.Join(dir, "copg"), "algo.name=copg", "rl.offline_path="+data, "rl.steps=6", "sampling.prompts_per_step=8",
		"sft.steps=2", "task.test_size=8", "optim.lr=0.003", "algo.set.beta=0.5", "checkpoint.every=0")
	rows := 0
	opts := Options{observe: func(stage string, b *objective.Batch) {
		if stage != "loss" {
			return
		}
		for i, r := range b.Rewards {
			if r != 1 && r != 0 || (i%2 == 0) != (r == 1) {
				t.Errorf("row %d reward %v: want 1 for chosen (even rows), 0 for rejected", i, r)
			}
			rows++
		}
	}}
	if _, err := Run(cfg, opts); err != nil {
		t.Fatal(err)
	}
	loss := rlSeries(t, cfg.RunDir, "loss")
	t.Logf("%d rows; CoPG loss per step: %v", rows, loss)
	if rows != 6*16 || len(loss) != 6 || math.Abs(loss[0]-1) > 1e-9 || !(loss[5] < loss[0]-1e-3) {
		t.Errorf("rows %d, losses %v: want 96 rows, 1 at step 1, lower at step 6", rows, loss)
	}
}

// TestOfflineGroupsFile: groups and pairs (with optional rewards) load; malformed lines and
// objectives that read old_logp are refused, naming the field.
func TestOfflineGroupsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.jsonl")
	os.WriteFile(path, []byte(`{"prompt": "1+1=", "responses": ["2", "3", "11"], "rewards": [1, 0, 0.5]}
{"prompt": "2+2=", "chosen": "4", "rejected": "5", "rejected_reward": -0.25}
`), 0o644)
	gs, err := loadOfflineGroups(path)
	if err != nil || len(gs) != 2 || len(gs[0].responses) != 3 || gs[0].rewards[2] != 0.5 || gs[1].rewards[0] != 1 || gs[1].rewards[1] != -0.25 {
		t.Fatalf("groups %+v (%v)", gs, err)
	}
	for _, bad := range []string{`{"prompt": "x", "responses": ["a"], "rewards": [1]}`, `{"prompt": "x", "chosen": "a"}`, `{"responses": ["a", "b"], "rewards": [1, 0]}`,
		`{"prompt": "x", "responses": ["a", "b"], "rewards": [1]}`} {
		os.WriteFile(path, []byte(bad+"\n"), 0o644)
		if _, err := loadOfflineGroups(path); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	cfg := smallRun(t, filepath.Join(dir, "x"), "algo.name=grpo", "rl.offline_path="+path)
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), "old_logp") {
		t.Errorf("grpo on offline data: %v", err)
	}
}
