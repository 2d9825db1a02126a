package avxstate

import "testing"

func TestClearAndDirty(t *testing.T) {
	if _, known := Dirty(); !known {
		t.Skip("the CPU cannot report XINUSE (no XGETBV with ECX=1)")
	}
	MakeDirty()
	if dirty, _ := Dirty(); !dirty {
		if !hasAVX {
			t.Skip("no AVX: MakeDirty cannot dirty the upper state")
		}
		t.Fatal("Dirty() = false right after MakeDirty")
	}
	Clear()
	dirty, _ := Dirty()
	if !clears {
		t.Skipf("Clear is a no-op in this build (GOEXPERIMENT=simd on amd64 only); Dirty() = %v", dirty)
	}
	if dirty {
		t.Fatal("Dirty() = true right after Clear")
	}
}

func TestPenalty(t *testing.T) {
	x := 0.0
	loop := func() {
		for i := range 1 << 16 {
			x += float64(i) * 1.0000001
		}
	}
	ratio, ok := Penalty(loop, 3)
	if !ok {
		t.Skip("the upper state cannot be both dirtied and cleared in this build on this CPU")
	}
	if !(ratio > 0) {
		t.Fatalf("Penalty = %v, want a positive ratio", ratio)
	}
	t.Logf("a scalar float64 loop entered dirty runs %.2f× its time entered clean (x = %g)", ratio, x)
}
