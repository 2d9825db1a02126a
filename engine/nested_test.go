package engine

import (
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestNestedExecutionsDoNotDeadlock runs eight independent While loops in one graph on the default
// parallel scheduler. Each loop runs its condition and body as nested executions from inside a
// worker slot of the outer execution; before compute patch 0020 the nested dispatchers waited for
// a free slot while every slot was held by a loop waiting for them, and the graph hung.
func TestNestedExecutionsDoNotDeadlock(t *testing.T) {
	backend, err := BackendFor(DefaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	const loops = 8
	exec, err := graph.NewExec(backend, func(x *graph.Node) []*graph.Node {
		g := x.Graph()
		var outs []*graph.Node
		for i := range loops {
			cond := graph.NewClosure(g, func(g *graph.Graph) []*graph.Node {
				counter := graph.Parameter(g, "counter", shapes.Make(dtypes.Int32))
				_ = graph.Parameter(g, "acc", shapes.Make(dtypes.Float32, 64))
				return []*graph.Node{graph.LessThan(counter, graph.Const(g, int32(50+i)))}
			})
			body := graph.NewClosure(g, func(g *graph.Graph) []*graph.Node {
				counter := graph.Parameter(g, "counter", shapes.Make(dtypes.Int32))
				acc := graph.Parameter(g, "acc", shapes.Make(dtypes.Float32, 64))
				// Independent ops in the body, so the nested execution has work to schedule.
				a := graph.Add(acc, graph.Const(g, float32(1)))
				b := graph.Mul(acc, graph.Const(g, float32(0)))
				return []*graph.Node{graph.Add(counter, graph.Const(g, int32(1))), graph.Add(a, b)}
			})
			res := graph.While(cond, body, graph.Const(g, int32(0)), x)
			outs = append(outs, res[1])
		}
		return outs
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()

	done := make(chan []*tensors.Tensor, 1)
	errs := make(chan error, 1)
	go func() {
		res, err := exec.Exec(make([]float32, 64))
		if err != nil {
			errs <- err
			return
		}
		done <- res
	}()
	select {
	case err := <-errs:
		t.Fatal(err)
	case res := <-done:
		for i, r := range res {
			got := tensors.MustCopyFlatData[float32](r)
			// acc ← (acc+1) + 0·acc, 50+i times from zeros.
			if want := float32(50 + i); got[0] != want || got[63] != want {
				t.Fatalf("loop %d: acc = %v…%v, want %v", i, got[0], got[63], want)
			}
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the graph did not finish in 2 minutes: nested executions deadlocked the parallel scheduler")
	}
}
