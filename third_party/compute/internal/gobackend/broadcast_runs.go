// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package gobackend

import "iter"

// BroadcastRun is a stretch of N consecutive target elements whose lhs and rhs elements start at
// LHS and RHS and advance by LHSStep and RHSStep (1, or 0 for a broadcast value).
type BroadcastRun struct {
	LHS, RHS, Out, N int
	LHSStep, RHSStep int
}

// IterRuns iterates the broadcast in runs over the innermost axes that share one broadcast
// pattern, so that binary ops run a tight loop per run instead of one iterator step per element
// (polo patch 0003: that per-element step was ~15% of a transformer train step).
func (zi *ZipIterator) IterRuns() iter.Seq[BroadcastRun] {
	return func(yield func(BroadcastRun) bool) {
		// Axes of target dimension 1 do not move any index: leave them out.
		var dims, lhsStrides, rhsStrides []int
		var lhsB, rhsB []bool
		for axis, d := range zi.tgtDims {
			if d != 1 {
				dims = append(dims, d)
				lhsB = append(lhsB, zi.lhsIsBroadcast[axis])
				rhsB = append(rhsB, zi.rhsIsBroadcast[axis])
				ls, rs := zi.lhsStrides[axis], zi.rhsStrides[axis]
				if zi.lhsIsBroadcast[axis] {
					ls = 0
				}
				if zi.rhsIsBroadcast[axis] {
					rs = 0
				}
				lhsStrides, rhsStrides = append(lhsStrides, ls), append(rhsStrides, rs)
			}
		}
		if len(dims) == 0 {
			yield(BroadcastRun{N: 1, LHSStep: 1, RHSStep: 1})
			return
		}
		// The run covers the innermost axes with the same broadcast pattern as the last one.
		rank := len(dims)
		inner := rank - 1
		for inner > 0 && lhsB[inner-1] == lhsB[rank-1] && rhsB[inner-1] == rhsB[rank-1] {
			inner--
		}
		run := BroadcastRun{N: 1, LHSStep: 1, RHSStep: 1}
		for _, d := range dims[inner:] {
			run.N *= d
		}
		if lhsB[rank-1] {
			run.LHSStep = 0
		}
		if rhsB[rank-1] {
			run.RHSStep = 0
		}
		idx := make([]int, inner)
		for run.Out = 0; run.Out < zi.tgtSize; run.Out += run.N {
			if !yield(run) {
				return
			}
			for axis := inner - 1; axis >= 0; axis-- {
				idx[axis]++
				run.LHS += lhsStrides[axis]
				run.RHS += rhsStrides[axis]
				if idx[axis] < dims[axis] {
					break
				}
				run.LHS -= idx[axis] * lhsStrides[axis]
				run.RHS -= idx[axis] * rhsStrides[axis]
				idx[axis] = 0
			}
		}
	}
}
