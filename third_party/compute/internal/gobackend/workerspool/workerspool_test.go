package workerspool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomlx/compute/support/testutil"
	"github.com/gomlx/compute/support/xsync"
)

func TestPool_Saturate(t *testing.T) {
	// Test saturation.
	pool := New()
	wantTasks := 5
	pool.SetMaxParallelism(wantTasks)

	var count atomic.Int32
	doneNewTasks := xsync.NewLatch()
	doneTest := xsync.NewLatch()

	go func() {
		pool.Saturate(func() {
			got := count.Add(1)
			runtime.Gosched()
			if int(got) == wantTasks {
				doneNewTasks.Trigger()
				return
			}
			doneNewTasks.Wait()
		})
		doneTest.Trigger()
	}()

	select {
	case <-doneTest.WaitChan():
		// Success
	case <-time.After(100 * time.Millisecond):
		t.Fatal("Timeout before all tasks were executed.")
	}
	if int(count.Load()) != wantTasks {
		t.Fatalf("Expected %d tasks, got %d", wantTasks, count.Load())
	}

	// Test No Parallelism
	pool.SetMaxParallelism(0)
	count.Store(0)
	pool.Saturate(func() { count.Add(1) })
	if ok, diff := testutil.IsEqual(int32(1), count.Load()); !ok {
		t.Errorf("Pool with parallelism 0 result mismatch:\n%s", diff)
	}

	// Test Unlimited
	pool.SetMaxParallelism(-1)
	count.Store(0)
	var started atomic.Int32
	pool.Saturate(func() {
		started.Add(1)
		runtime.Gosched()
		count.Add(1)
	})
	if started.Load() <= 1 {
		t.Errorf("Expected more than 1 started task for unlimited parallelism, got %d", started.Load())
	}
	if count.Load() != started.Load() {
		t.Errorf("Expected count %d to match started %d", count.Load(), started.Load())
	}
}

// TestPool_SaturateInsideWorkers is the parallel op scheduler's deadlock (polo patch 0018): every
// slot of the pool is held by a task (an op) that calls Saturate (its matmul). Saturate used to wait
// for a free slot before starting any work, so none of them ever finished.
func TestPool_SaturateInsideWorkers(t *testing.T) {
	for _, parallelism := range []int{1, 2, 4} {
		pool := New()
		pool.SetMaxParallelism(parallelism)
		var allHeld sync.WaitGroup
		allHeld.Add(parallelism)
		var done sync.WaitGroup
		var sum atomic.Int64
		for range parallelism {
			done.Add(1)
			pool.WaitToStart(func() {
				defer done.Done()
				allHeld.Done()
				allHeld.Wait() // every slot is now held by one of these tasks
				work := make(chan int, 100)
				for i := range 100 {
					work <- i
				}
				close(work)
				pool.Saturate(func() {
					for i := range work {
						sum.Add(int64(i))
					}
				})
			})
		}
		finished := make(chan struct{})
		go func() { done.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(20 * time.Second): // a deadlock, not a speed limit
			t.Fatalf("parallelism %d: Saturate inside all workers deadlocked", parallelism)
		}
		if got, want := sum.Load(), int64(parallelism*4950); got != want {
			t.Fatalf("parallelism %d: sum %d, want %d (work items lost or repeated)", parallelism, got, want)
		}
	}
}
