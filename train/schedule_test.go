package train

import (
	"math"
	"testing"
)

func TestLearningRate(t *testing.T) {
	o := OptimConfig{WarmupSteps: 4, Schedule: "cosine", MinLRRatio: 0.1}
	cases := []struct {
		step int
		want float64
	}{
		{1, 0.25}, {2, 0.5}, {4, 1},
		{5, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*1/8))},
		{8, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*4/8))}, // half way: 0.55
		{12, 0.1}, {20, 0.1},
	}
	for _, c := range cases {
		if got := learningRate(o, 1, c.step, 12); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("step %d: lr %v, want %v", c.step, got, c.want)
		}
	}
	if got := learningRate(o, 1, 8, 12); math.Abs(got-0.55) > 1e-12 {
		t.Errorf("midpoint %v", got)
	}
	o.Schedule = "constant"
	if got := learningRate(o, 2, 9, 12); got != 2 {
		t.Errorf("constant schedule gave %v", got)
	}
}
