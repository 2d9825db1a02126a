package eval

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlotStrategies draws the accuracy of each Best-of-N strategy against N (log scale) and saves
// it to path; the extension picks the format (.png, .svg, .pdf).
func PlotStrategies(b BestOfN, title, path string) error {
	if len(b.N) == 0 || len(b.Strategies) == 0 || len(b.Accuracy) != len(b.Strategies) {
		return fmt.Errorf("eval: plot %s: empty or inconsistent Best-of-N table", path)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png", ".svg", ".pdf":
	default:
		return fmt.Errorf("eval: plot %s: unsupported extension; use .png, .svg or .pdf", path)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "N (samples per prompt)"
	p.Y.Label.Text = "accuracy"
	p.Y.Min, p.Y.Max = 0, 1
	if len(b.N) > 1 && b.N[0] > 0 {
		p.X.Scale = plot.LogScale{}
	}
	ticks := make(plot.ConstantTicks, len(b.N))
	for i, n := range b.N {
		ticks[i] = plot.Tick{Value: float64(n), Label: strconv.Itoa(n)}
	}
	p.X.Tick.Marker = ticks
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	var lines []any
	for k, name := range b.Strategies {
		if len(b.Accuracy[k]) != len(b.N) {
			return fmt.Errorf("eval: plot %s: strategy %q has %d values for %d sizes", path, name, len(b.Accuracy[k]), len(b.N))
		}
		pts := make(plotter.XYs, len(b.N))
		for j, n := range b.N {
			pts[j] = plotter.XY{X: float64(n), Y: b.Accuracy[k][j]}
		}
		lines = append(lines, name, pts)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return fmt.Errorf("eval: plot %s: %w", path, err)
	}
	if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("eval: plot %s: %w", path, err)
	}
	return nil
}
