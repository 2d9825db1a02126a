package metrics

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Curve is one line on a plot; when Lo and Hi are set (same length as Y) a shaded band is drawn
// between them (e.g. min/max or ±std over seeds).
type Curve struct {
	Name   string
	X, Y   []float64
	Lo, Hi []float64
}

var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

// PlotPNG writes a line plot of the curves to path (PNG, 6×4 inches).
func PlotPNG(path, title, xlabel, ylabel string, curves []Curve) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for i, c := range curves {
		if len(c.X) != len(c.Y) {
			return fmt.Errorf("plot %s: curve %q has %d x and %d y values", title, c.Name, len(c.X), len(c.Y))
		}
		if len(c.X) == 0 {
			continue
		}
		col := palette[i%len(palette)]
		if len(c.Lo) == len(c.Y) && len(c.Hi) == len(c.Y) {
			band := make(plotter.XYs, 0, 2*len(c.X))
			for j := range c.X {
				band = append(band, plotter.XY{X: c.X[j], Y: c.Hi[j]})
			}
			for j := len(c.X) - 1; j >= 0; j-- {
				band = append(band, plotter.XY{X: c.X[j], Y: c.Lo[j]})
			}
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return err
			}
			poly.Color = color.RGBA{col.R, col.G, col.B, 60}
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		pts := make(plotter.XYs, len(c.X))
		for j := range c.X {
			pts[j] = plotter.XY{X: c.X[j], Y: c.Y[j]}
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", title, err)
		}
		line.Color = col
		line.Width = vg.Points(1.5)
		p.Add(line)
		if c.Name != "" {
			p.Legend.Add(c.Name, line)
		}
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}
