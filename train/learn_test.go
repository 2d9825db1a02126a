package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/metrics"
)

// TestRLRaisesReward trains each headline preset briefly on single-digit addition after a short
// warm-up and checks that the mean reward of the last RL steps clearly exceeds that of the first.
func TestRLRaisesReward(t *testing.T) {
	if testing.Short() {
		t.Skip("trains four small runs")
	}
	for _, algo := range []string{"grpo", "dapo", "gspo", "sapo"} {
		t.Run(algo, func(t *testing.T) {
			sets := learnSettings(algo)
			if x := os.Getenv("POLO_LEARN_EXTRA"); x != "" {
				sets = append(sets, strings.Fields(x)...)
			}
			cfg := smallRun(t, filepath.Join(t.TempDir(), algo), sets...)
			if _, err := Run(cfg, Options{}); err != nil {
				t.Fatal(err)
			}
			recs, err := metrics.Read(filepath.Join(cfg.RunDir, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			_, rewards := metrics.Series(recs, "rl", "reward_mean")
			n := len(rewards) / 5
			first, last := mean(rewards[:n]), mean(rewards[len(rewards)-n:])
			t.Logf("%s: mean reward first %d steps %.3f, last %d steps %.3f", algo, n, first, n, last)
			if last < first+learnMargin {
				t.Fatalf("%s did not learn: reward %.3f → %.3f (want a rise of at least %.2f)", algo, first, last, learnMargin)
			}
		})
	}
}

const learnMargin = 0.10

func learnSettings(algo string) []string {
	return []string{
		"algo.name=" + algo, "sft.steps=60", "sft.lr=0.003", "rl.steps=100",
		"optim.lr=0.001", "optim.warmup_steps=5", "optim.schedule=constant", "rl.mini_batches=2",
		"sampling.prompts_per_step=16", "sampling.group_size=8", "eval.every=0", "checkpoint.every=0",
	}
}
