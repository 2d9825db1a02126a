// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"sync"

	"github.com/gomlx/compute/internal/gobackend"
)

// parallelFor splits [0, n) into at most AdjustedMaxParallelism chunks of at least minChunk items
// and runs fn on each. Extra chunks go to idle workers when there are any; otherwise they run
// inline, so it never blocks waiting for a worker (the pool may be saturated by the op scheduler).
func parallelFor(backend *gobackend.Backend, n, minChunk int, fn func(lo, hi int)) {
	chunks := 1
	if backend != nil && backend.Workers.IsEnabled() && minChunk > 0 {
		chunks = min(backend.Workers.AdjustedMaxParallelism(), n/minChunk)
	}
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	size := (n + chunks - 1) / chunks
	for lo := size; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		task := func() { fn(lo, hi); wg.Done() }
		if !backend.Workers.StartIfAvailable(task) {
			task()
		}
	}
	fn(0, min(size, n))
	wg.Wait()
}
