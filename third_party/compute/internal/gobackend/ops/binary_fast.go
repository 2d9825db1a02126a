// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
	"github.com/gomlx/compute/shapes"
)

// Float32 Add, Sub, Mul, Div, Max and Min split over the workers (polo patch 0004).
//
// The generated binary ops run on one core. On the 2-core machines a transformer step spends
// ~15% in them (RMSNorm, SwiGLU, RoPE, residuals and their gradients), so large float32 ones are
// split into chunks of the output here; everything else goes to the generated executors.

func init() {
	for op, generic := range map[compute.OpType]gobackend.NodeExecutor{
		compute.OpTypeAdd: execAdd, compute.OpTypeSub: execSub, compute.OpTypeMul: execMul,
		compute.OpTypeDiv: execDiv, compute.OpTypeMax: execMax, compute.OpTypeMin: execMin,
	} {
		gobackend.SetNodeExecutor(op, gobackend.PriorityArch, parallelBinaryFloat32(op, generic))
	}
}

// binaryMinParallel is the output size below which splitting costs more than it saves.
const binaryMinParallel = 32768

// binaryShortRun is the broadcast run length below which runs go to the rows loops (patch 0013).
const binaryShortRun = 64

// binaryMinFast is the output size from which the loops here (vector loops, patch 0009) replace
// the generated executors; below it, splitting into runs costs more than it saves. Outputs under
// binaryMinParallel run on one core.
const binaryMinFast = 256

func parallelBinaryFloat32(op compute.OpType, generic gobackend.NodeExecutor) gobackend.NodeExecutor {
	f := withVectorLoops(op, float32BinaryFunc(op)) // polo patch 0009
	rows := vectorRows(op)                          // polo patch 0013
	return func(backend *gobackend.Backend, node *gobackend.Node, inputs []*gobackend.Buffer, inputsOwned []bool) (*gobackend.Buffer, error) {
		lhsShape, rhsShape := inputs[0].RawShape, inputs[1].RawShape
		if node.Shape.DType != dtypes.Float32 || node.Shape.IsDynamic() || node.Shape.Size() < binaryMinFast ||
			!backend.Workers.IsEnabled() {
			return generic(backend, node, inputs, inputsOwned)
		}
		if lhsShape.Rank() != rhsShape.Rank() {
			// Polo patch 0009: a one-element operand of another rank (e.g. a scalar factor).
			n := node.Shape.Size()
			lStep, rStep := 1, 1
			switch {
			case rhsShape.Size() == 1 && lhsShape.Size() == n:
				rStep = 0
			case lhsShape.Size() == 1 && rhsShape.Size() == n:
				lStep = 0
			default:
				return generic(backend, node, inputs, inputsOwned)
			}
			lhs, rhs, output, _, _ := binaryOperandsAndOutputForExecution(backend, node, inputs, inputsOwned, node.Shape)
			binaryOneElementFloat32(backend, f, lhs.Flat.([]float32), rhs.Flat.([]float32), output.Flat.([]float32), lStep, rStep)
			return output, nil
		}
		lhs, rhs, output, _, _ := binaryOperandsAndOutputForExecution(backend, node, inputs, inputsOwned, node.Shape)
		binaryFloat32(backend, f, rows, lhs.Flat.([]float32), rhs.Flat.([]float32), output.Flat.([]float32), lhsShape, rhsShape, node.Shape)
		return output, nil
	}
}

// binaryOneElementFloat32 computes out = f(l, r) where the operand with step 0 has one element.
func binaryOneElementFloat32(backend *gobackend.Backend, f func(l, r, out []float32, lStep, rStep int), l, r, out []float32, lStep, rStep int) {
	parallelFor(backend, len(out), binaryMinParallel/2, func(lo, hi int) {
		f(l[lo*lStep:], r[lo*rStep:], out[lo:hi], lStep, rStep)
	})
}

// binaryFloat32 computes out = f(l, r) with broadcasting (equal ranks), split over the workers.
// rows, if not nil, runs the short runs of the innermost outer axis in one call (patch 0013).
func binaryFloat32(backend *gobackend.Backend, f func(l, r, out []float32, lStep, rStep int),
	rows func(l, r, out []float32, n, rows, ls, rs, lStep, rStep int), l, r, out []float32, lhsShape, rhsShape, outShape shapes.Shape) {
	if lhsShape.Equal(rhsShape) {
		parallelFor(backend, len(out), binaryMinParallel/2, func(lo, hi int) {
			f(l[lo:hi], r[lo:hi], out[lo:hi], 1, 1)
		})
		return
	}
	runs := gobackend.NewZippedBroadcastIterator(lhsShape, rhsShape, outShape).Runs()
	if first := runs.First(); rows != nil && first.N < binaryShortRun {
		if outer, d, ls, rs, ok := runs.SplitInner(); ok {
			n := first.N
			parallelFor(backend, outer.Count(), max(1, binaryMinParallel/2/(n*d)), func(lo, hi int) {
				for g := range outer.Range(lo, hi) {
					rows(l[g.LHS:], r[g.RHS:], out[g.Out:g.Out+g.N], n, d, ls, rs, first.LHSStep, first.RHSStep)
				}
			})
			return
		}
	}
	count := runs.Count()
	perRun := max(1, len(out)/count)
	parallelFor(backend, count, max(1, binaryMinParallel/2/perRun), func(lo, hi int) {
		for run := range runs.Range(lo, hi) {
			f(l[run.LHS:], r[run.RHS:], out[run.Out:run.Out+run.N], run.LHSStep, run.RHSStep)
		}
	})
}

// Generated once by hand from one pattern: the loops are spelled out per op so that each
// compiles to a tight loop with no call per element.

// float32BinaryFunc returns the loop of op over out, reading l and r with steps 1 or 0.
func float32BinaryFunc(op compute.OpType) func(l, r, out []float32, lStep, rStep int) {
	switch op {
	case compute.OpTypeAdd:
		return binaryAddFloat32
	case compute.OpTypeSub:
		return binarySubFloat32
	case compute.OpTypeMul:
		return binaryMulFloat32
	case compute.OpTypeDiv:
		return binaryDivFloat32
	case compute.OpTypeMax:
		return binaryMaxFloat32
	default: // compute.OpTypeMin
		return binaryMinFloat32
	}
}

func binaryAddFloat32(l, r, out []float32, lStep, rStep int) {
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:len(out)], r[:len(out)]
		for i := range out {
			out[i] = l[i] + r[i]
		}
	case lStep == 1:
		l, c := l[:len(out)], r[0]
		for i := range out {
			out[i] = l[i] + c
		}
	case rStep == 1:
		c, r := l[0], r[:len(out)]
		for i := range out {
			out[i] = c + r[i]
		}
	default:
		v := l[0] + r[0]
		for i := range out {
			out[i] = v
		}
	}
}

func binarySubFloat32(l, r, out []float32, lStep, rStep int) {
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:len(out)], r[:len(out)]
		for i := range out {
			out[i] = l[i] - r[i]
		}
	case lStep == 1:
		l, c := l[:len(out)], r[0]
		for i := range out {
			out[i] = l[i] - c
		}
	case rStep == 1:
		c, r := l[0], r[:len(out)]
		for i := range out {
			out[i] = c - r[i]
		}
	default:
		v := l[0] - r[0]
		for i := range out {
			out[i] = v
		}
	}
}

func binaryMulFloat32(l, r, out []float32, lStep, rStep int) {
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:len(out)], r[:len(out)]
		for i := range out {
			out[i] = l[i] * r[i]
		}
	case lStep == 1:
		l, c := l[:len(out)], r[0]
		for i := range out {
			out[i] = l[i] * c
		}
	case rStep == 1:
		c, r := l[0], r[:len(out)]
		for i := range out {
			out[i] = c * r[i]
		}
	default:
		v := l[0] * r[0]
		for i := range out {
			out[i] = v
		}
	}
}

func binaryDivFloat32(l, r, out []float32, lStep, rStep int) {
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:len(out)], r[:len(out)]
		for i := range out {
			out[i] = l[i] / r[i]
		}
	case lStep == 1:
		l, c := l[:len(out)], r[0]
		for i := range out {
			out[i] = l[i] / c
		}
	case rStep == 1:
		c, r := l[0], r[:len(out)]
		for i := range out {
			out[i] = c / r[i]
		}
	default:
		v := l[0] / r[0]
		for i := range out {
			out[i] = v
		}
	}
}

func binaryMaxFloat32(l, r, out []float32, lStep, rStep int) {
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:len(out)], r[:len(out)]
		for i := range out {
			out[i] = max(l[i], r[i])
		}
	case lStep == 1:
		l, c := l[:len(out)], r[0]
		for i := range out {
			out[i] = max(l[i], c)
		}
	case rStep == 1:
		c, r := l[0], r[:len(out)]
		for i := range out {
			out[i] = max(c, r[i])
		}
	default:
		v := max(l[0], r[0])
		for i := range out {
			out[i] = v
		}
	}
}

func binaryMinFloat32(l, r, out []float32, lStep, rStep int) {
	switch {
	case lStep == 1 && rStep == 1:
		l, r := l[:len(out)], r[:len(out)]
		for i := range out {
			out[i] = min(l[i], r[i])
		}
	case lStep == 1:
		l, c := l[:len(out)], r[0]
		for i := range out {
			out[i] = min(l[i], c)
		}
	case rStep == 1:
		c, r := l[0], r[:len(out)]
		for i := range out {
			out[i] = min(c, r[i])
		}
	default:
		v := min(l[0], r[0])
		for i := range out {
			out[i] = v
		}
	}
}
