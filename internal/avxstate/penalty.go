package avxstate

import (
	"slices"
	"time"
)

// Penalty reports how many times slower loop runs when entered with the AVX upper state dirty
// than when entered clean, comparing the median of rounds runs of each. loop should be scalar code
// that runs for a few milliseconds. The state can change while it runs (a preemption dirties it,
// and it was seen to turn clean during dirty runs), which the median tolerates better than the
// minimum. ok is false where the state cannot be both set and cleared (Clear is a no-op in builds
// without GOEXPERIMENT=simd, whose preemptions leave the state clean, and without AVX there is no
// upper state).
func Penalty(loop func(), rounds int) (ratio float64, ok bool) {
	MakeDirty()
	dirty, known := Dirty()
	Clear()
	if clean, _ := Dirty(); !known || !dirty || clean {
		return 0, false
	}
	rounds = max(rounds, 1)
	var times [2][]time.Duration // clean, dirty
	for r := range 2 * rounds {
		if r%2 == 0 {
			Clear()
		} else {
			MakeDirty()
		}
		start := time.Now()
		loop()
		times[r%2] = append(times[r%2], time.Since(start))
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2])
	}
	return median(times[1]) / median(times[0]), true
}
