package objective

import (
	"math"
	"testing"
)

// rowsBatch builds an on-policy batch (logp = old_logp = -1) with the given row lengths, padded to the
// longest, one reward per row and the given groups.
func rowsBatch(lens []int, rewards []float64, group []int) *Batch {
	width := 0
	for _, l := range lens {
		width = max(width, l)
	}
	b := &Batch{Rewards: rewards, Group: group}
	for _, l := range lens {
		m, lp, old := make([]float64, width), make([]float64, width), make([]float64, width)
		for t := range m {
			lp[t], old[t] = -1, -1
			if t < l {
				m[t] = 1
			}
		}
		b.Mask, b.LogP, b.OldLogP = append(b.Mask, m), append(b.LogP, lp), append(b.OldLogP, old)
	}
	return b
}

func mustNew(t *testing.T, name string, over map[string]string) Objective {
	t.Helper()
	o, err := New(name, over)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// rowAdv returns the advantage of the first token of each row.
func rowAdv(a [][]float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i][0]
	}
	return out
}

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

func assertVec(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if !near(got[i], want[i], tol) {
			t.Errorf("%s[%d] = %.12g, want %.12g (tol %g)", what, i, got[i], want[i], tol)
		}
	}
}

func advOf(t *testing.T, o Objective, b *Batch) [][]float64 {
	t.Helper()
	a, err := o.Advantages(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func lossOf(t *testing.T, o Objective, b *Batch) Result {
	t.Helper()
	r, err := o.Loss(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
