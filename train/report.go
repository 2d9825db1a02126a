package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/polo-rl/polo/metrics"
)

// plotKeys are the curves drawn at the end of a run: metric key, phase, file name, axis label.
var plotKeys = []struct{ key, phase, file, label string }{
	{"reward_mean", "rl", "reward.png", "mean reward"},
	{"accuracy", "eval", "accuracy.png", "held-out accuracy (greedy)"},
	{"kl_ref_k3", "rl", "kl.png", "KL(policy ‖ reference), k3"},
	{"entropy", "rl", "entropy.png", "entropy (nats/token)"},
	{"response_len", "rl", "response_length.png", "response length (tokens)"},
}

// finish writes the plots of the whole run (read back from metrics.jsonl, so a resumed run plots
// everything).
func (r *runner) finish() error {
	if !r.cfg.Log.Plots {
		return nil
	}
	records, err := metrics.Read(filepath.Join(r.dir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	return writePlots(filepath.Join(r.dir, "plots"), records)
}

func writePlots(dir string, records []metrics.Record) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range plotKeys {
		xs, ys := metrics.Series(records, p.phase, p.key)
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
	fmt.Fprintf(tw, "held-out accuracy: start\t%.3f\n", s.AccuracyStart)
	fmt.Fprintf(tw, "held-out accuracy: after SFT\t%.3f\n", s.AccuracySFT)
	fmt.Fprintf(tw, "held-out accuracy: after RL\t%.3f\n", s.AccuracyRL)
	fmt.Fprintf(tw, "mean reward: first RL step → last 10%%\t%.3f → %.3f\n", s.RewardFirst, s.RewardLast)
	fmt.Fprintf(tw, "seconds per RL step: rollout / reward / train\t%.3f / %.4f / %.3f\n", s.RolloutS, s.RewardS, s.TrainS)
	fmt.Fprintf(tw, "wall time\t%.1f s\n", s.WallSeconds)
	fmt.Fprintf(tw, "files\tconfig.yaml, metrics.jsonl, plots/*.png, checkpoints/\n")
	tw.Flush()
}
