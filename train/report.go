package train

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/polo-rl/polo/metrics"
)

// plotKeys are the curves drawn at the end of a run: metric key, phase, file name, axis label.
var plotKeys = []struct{ key, phase, file, label string }{
	{"reward_mean", "rl", "reward.png", "mean reward"},
	{"accuracy", "eval", "accuracy.png", "held-out accuracy (greedy)"},
	{"pass1_sampled", "eval", "pass1_sampled.png", "held-out pass@1 (one sample, training temperature)"},
	{"kl_ref_k3", "rl", "kl.png", "KL(policy ‖ reference), k3"},
	{"entropy", "rl", "entropy.png", "entropy (nats/token)"},
	{"response_len", "rl", "response_length.png", "response length (tokens)"},
	// agent mode (agent.go)
	{"tool_calls_per_traj", "rl", "tool_calls.png", "tool calls per trajectory"},
	{"turns_per_traj", "rl", "turns.png", "policy turns per trajectory"},
	{"tool_error_rate", "rl", "tool_errors.png", "tool error rate (errors / calls)"},
}

// summarize computes the end-of-run figures from the whole metrics log, so a resumed run reports
// (and plots) everything, not only what the last process saw. WallSeconds is the caller's.
func summarize(records []metrics.Record) Summary {
	nan := math.NaN()
	s := Summary{AccuracyStart: nan, AccuracySFT: nan, AccuracyRL: nan, Pass1Start: nan, Pass1SFT: nan, Pass1RL: nan,
		RewardFirst: nan, RewardLast: nan, RolloutS: nan, RewardS: nan, TrainS: nan}
	var rewards, rollout, reward, train []float64
	for _, rec := range records {
		v := rec.Values
		switch rec.Phase {
		case "eval-start": // also the SFT and RL figures until those phases say otherwise
			s.AccuracyStart, s.AccuracySFT, s.AccuracyRL = v["accuracy"], v["accuracy"], v["accuracy"]
			s.Pass1Start, s.Pass1SFT, s.Pass1RL = v["pass1_sampled"], v["pass1_sampled"], v["pass1_sampled"]
		case "eval-sft":
			s.AccuracySFT, s.AccuracyRL = v["accuracy"], v["accuracy"]
			s.Pass1SFT, s.Pass1RL = v["pass1_sampled"], v["pass1_sampled"]
		case "eval":
			s.AccuracyRL, s.Pass1RL = v["accuracy"], v["pass1_sampled"]
		case "rl":
			if _, ok := v["reward_mean"]; !ok { // preference steps have no rollouts
				continue
			}
			rewards = append(rewards, v["reward_mean"])
			rollout = append(rollout, v["rollout_s"])
			reward = append(reward, v["reward_s"])
			train = append(train, v["train_s"])
		}
	}
	if len(rewards) > 0 {
		s.RewardFirst = rewards[0]
		s.RewardLast = mean(rewards[len(rewards)-max(1, len(rewards)/10):])
		s.RolloutS, s.RewardS, s.TrainS = mean(rollout), mean(reward), mean(train)
	}
	return s
}

func writePlots(dir string, records []metrics.Record) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range plotKeys {
		xs, ys := series(records, p.phase, p.key)
		if len(xs) == 0 {
			continue
		}
		if err := metrics.PlotPNG(filepath.Join(dir, p.file), p.label, "RL step", p.label, []metrics.Curve{{X: xs, Y: ys}}); err != nil {
			return err
		}
	}
	return nil
}

// PrintSummary writes the end-of-run table.
func PrintSummary(w io.Writer, s Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", s.RunDir)
	fmt.Fprintf(tw, "held-out\tstart\tafter SFT\tafter RL\n")
	fmt.Fprintf(tw, "  accuracy, greedy\t%.3f\t%.3f\t%.3f\n", s.AccuracyStart, s.AccuracySFT, s.AccuracyRL)
	fmt.Fprintf(tw, "  pass@1, one sample at the training temperature\t%.3f\t%.3f\t%.3f\n", s.Pass1Start, s.Pass1SFT, s.Pass1RL)
	if !math.IsNaN(s.RewardFirst) { // runs with sampled RL steps (not preference training)
		fmt.Fprintf(tw, "mean reward: first RL step → last 10%%\t%.3f → %.3f\n", s.RewardFirst, s.RewardLast)
		fmt.Fprintf(tw, "seconds per RL step: rollout / reward / train\t%.3f / %.4f / %.3f\n", s.RolloutS, s.RewardS, s.TrainS)
	}
	fmt.Fprintf(tw, "wall time\t%.1f s\n", s.WallSeconds)
	if s.Graphs > 0 {
		fmt.Fprintf(tw, "graphs compiled\t%d (%.1f s of first calls; compile.json)\n", s.Graphs, s.CompileS)
	}
	files := "config.yaml, metrics.jsonl, "
	if s.Plots {
		files += "plots/*.png, "
	}
	fmt.Fprintf(tw, "files\t%scheckpoints/\n", files)
	tw.Flush()
}

// series is metrics.Series, except that RL evaluation curves start with the post-SFT evaluation as
// step 0.
func series(records []metrics.Record, phase, key string) (xs, ys []float64) {
	if phase == "eval" {
		xs, ys = metrics.Series(records, "eval-sft", key)
	}
	x2, y2 := metrics.Series(records, phase, key)
	return append(xs, x2...), append(ys, y2...)
}
