package train

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/polo-rl/polo/metrics"
)

// CompareResult is one algorithm's runs over several seeds.
type CompareResult struct {
	Algo      string
	Summaries []Summary
}

// Compare runs the same configuration (same task, model, budget) once per algorithm and seed, into
// outDir/<algo>-seed<k>, then writes outDir/compare.md (a table of means and spreads) and overlaid
// learning curves (mean with a min–max band over seeds) in outDir/plots.
func Compare(base Config, algos []string, seeds int, outDir string, opts Options, table io.Writer) ([]CompareResult, error) {
	if len(algos) == 0 || seeds < 1 {
		return nil, fmt.Errorf("compare needs at least one algorithm and one seed")
	}
	lock, err := lockRunDir(outDir)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	var results []CompareResult
	for _, algo := range algos {
		res := CompareResult{Algo: algo}
		for k := range seeds {
			cfg := base
			cfg.Algo = AlgoConfig{Name: algo, Set: base.Algo.Set}
			if algo != base.Algo.Name {
				cfg.Algo.Set = nil // overrides are per preset; they rarely apply to another
			}
			cfg.Seed = base.Seed + int64(k)
			cfg.RunDir = filepath.Join(outDir, fmt.Sprintf("%s-seed%d", algo, cfg.Seed))
			cfg.Log.Plots = false
			if opts.Log != nil {
				fmt.Fprintf(opts.Log, "compare: %s seed %d → %s\n", algo, cfg.Seed, cfg.RunDir)
			}
			s, err := Run(cfg, opts)
			if err != nil {
				return results, fmt.Errorf("compare %s seed %d: %w", algo, cfg.Seed, err)
			}
			res.Summaries = append(res.Summaries, s)
		}
		results = append(results, res)
	}
	var md strings.Builder
	writeCompareTable(&md, results)
	if err := os.WriteFile(filepath.Join(outDir, "compare.md"), []byte(md.String()), 0o644); err != nil {
		return results, err
	}
	if table != nil {
		io.WriteString(table, md.String())
	}
	return results, comparePlots(outDir, results)
}

func writeCompareTable(w io.Writer, results []CompareResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| algo\t seeds\t held-out acc after SFT\t held-out acc after RL\t reward first step\t reward last 10%\t s/step (rollout/reward/train)\t wall s\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range results {
		col := func(f func(Summary) float64) string {
			xs := make([]float64, len(r.Summaries))
			for i, s := range r.Summaries {
				xs[i] = f(s)
			}
			m, sd := meanStd(xs)
			return fmt.Sprintf("%.3f ± %.3f", m, sd)
		}
		ro, _ := meanStd(collectF(r.Summaries, func(s Summary) float64 { return s.RolloutS }))
		rw, _ := meanStd(collectF(r.Summaries, func(s Summary) float64 { return s.RewardS }))
		tr, _ := meanStd(collectF(r.Summaries, func(s Summary) float64 { return s.TrainS }))
		wall, _ := meanStd(collectF(r.Summaries, func(s Summary) float64 { return s.WallSeconds }))
		fmt.Fprintf(tw, "| %s\t %d\t %s\t %s\t %s\t %s\t %.3f/%.4f/%.3f\t %.0f\t\n", r.Algo, len(r.Summaries),
			col(func(s Summary) float64 { return s.AccuracySFT }), col(func(s Summary) float64 { return s.AccuracyRL }),
			col(func(s Summary) float64 { return s.RewardFirst }), col(func(s Summary) float64 { return s.RewardLast }),
			ro, rw, tr, wall)
	}
	tw.Flush()
}

func collectF(ss []Summary, f func(Summary) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// meanStd returns the mean and the sample standard deviation (0 for one value).
func meanStd(xs []float64) (float64, float64) {
	m := mean(xs)
	if len(xs) < 2 {
		return m, 0
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(xs)-1))
}

// comparePlots overlays each algorithm's curve (mean over seeds, min–max band).
func comparePlots(outDir string, results []CompareResult) error {
	dir := filepath.Join(outDir, "plots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range plotKeys {
		var curves []Curve
		for _, r := range results {
			var runs [][2][]float64
			for _, s := range r.Summaries {
				recs, err := metrics.Read(filepath.Join(s.RunDir, "metrics.jsonl"))
				if err != nil {
					return err
				}
				xs, ys := series(recs, p.phase, p.key)
				runs = append(runs, [2][]float64{xs, ys})
			}
			if c, ok := bandCurve(r.Algo, runs); ok {
				curves = append(curves, c)
			}
		}
		if len(curves) == 0 {
			continue
		}
		if err := metrics.PlotPNG(filepath.Join(dir, p.file), p.label, "RL step", p.label, curves); err != nil {
			return err
		}
	}
	return nil
}

// Curve aliases metrics.Curve for brevity here.
type Curve = metrics.Curve

// bandCurve aligns runs on their common x values and returns mean, min and max per x.
func bandCurve(name string, runs [][2][]float64) (Curve, bool) {
	if len(runs) == 0 || len(runs[0][0]) == 0 {
		return Curve{}, false
	}
	n := len(runs[0][0])
	for _, r := range runs {
		n = min(n, len(r[0]))
	}
	c := Curve{Name: name}
	for j := range n {
		vals := make([]float64, len(runs))
		lo, hi := math.Inf(1), math.Inf(-1)
		for k, r := range runs {
			vals[k] = r[1][j]
			lo, hi = math.Min(lo, vals[k]), math.Max(hi, vals[k])
		}
		c.X = append(c.X, runs[0][0][j])
		c.Y = append(c.Y, mean(vals))
		c.Lo = append(c.Lo, lo)
		c.Hi = append(c.Hi, hi)
	}
	return c, true
}
