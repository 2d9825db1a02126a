package avxstate

import (
	"bufio"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/polo-rl/polo/internal/fmath"
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

// ExpPenalties measures Penalty for polo's host exp (fmath.Exp, plain SSE) and for math.Exp (whose
// assembly mixes VEX and SSE) over 2¹⁸ values, median of 7 runs each: the numbers `polo model
// bench` and engine's TestLegacySSEAfterDirtyUpper print. ok is false where Penalty cannot measure.
func ExpPenalties() (fmathRatio, mathRatio float64, ok bool) {
	x := make([]float64, 1<<18) // ~1–2 ms per loop when clean: a preemption rarely lands inside
	for i := range x {
		x[i] = float64(i%4001)/200 - 10 // [-10, 10]
	}
	ratio := func(exp func(float64) float64) (float64, bool) {
		return Penalty(func() {
			for _, v := range x {
				expSink += exp(v)
			}
		}, 7)
	}
	if fmathRatio, ok = ratio(fmath.Exp); !ok {
		return 0, 0, false
	}
	mathRatio, ok = ratio(math.Exp)
	return fmathRatio, mathRatio, ok
}

// expSink keeps ExpPenalties' loops from being optimised away.
var expSink float64

// CPUName returns the processor's name from /proc/cpuinfo, or "an unnamed CPU": results that
// depend on the hardware name it.
func CPUName() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "an unnamed CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "an unnamed CPU"
}
