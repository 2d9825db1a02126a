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
