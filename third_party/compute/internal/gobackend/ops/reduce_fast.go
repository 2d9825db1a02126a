// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/internal/gobackend"
)

// Float32 ReduceSum and ReduceMax without the per-element output iterator (polo patch 0005).
//
// After dropping unit axes and merging neighbouring axes of the same kind, the reductions a
// transformer needs have one of the shapes [R], [K, R], [R, K] or [K1, R, K2] (K kept, R reduced):
// rows reduced with 8 partial accumulators, or rows of columns accumulated in order. Work is split
// over the kept axes, so each output element is computed by one worker: results do not depend on
// the number of workers. Other patterns use the generic code.

// reduceFloat32Fast reduces operand into output when the pattern is supported; it reports
// whether it did.
func reduceFloat32Fast(backend *gobackend.Backend, op compute.OpType, operand, output []float32, dims, reduceAxes []int) bool {
	if op != compute.OpTypeReduceSum && op != compute.OpTypeReduceMax {
		return false
	}
	reduced := make([]bool, len(dims))
	for _, a := range reduceAxes {
		reduced[a] = true
	}
	var sizes []int
	var kinds []bool // true: reduced
	for axis, d := range dims {
		if d == 1 {
			continue
		}
		if n := len(kinds); n > 0 && kinds[n-1] == reduced[axis] {
			sizes[n-1] *= d
			continue
		}
		sizes, kinds = append(sizes, d), append(kinds, reduced[axis])
	}
	isSum := op == compute.OpTypeReduceSum
	switch {
	case len(sizes) == 0: // everything has dimension 1
		copy(output, operand)
	case len(sizes) == 1 && kinds[0]: // [R]
		output[0] = reduceRow(operand, isSum)
	case len(sizes) == 1: // [K]: nothing is reduced
		copy(output, operand)
	case len(sizes) == 2 && !kinds[0]: // [K, R]
		k, r := sizes[0], sizes[1]
		parallelFor(backend, k, max(1, 16384/r), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				output[i] = reduceRow(operand[i*r:(i+1)*r], isSum)
			}
		})
	case len(sizes) == 2: // [R, K]
		reduceColumns(backend, operand, output, sizes[0], sizes[1], isSum)
	case len(sizes) == 3 && !kinds[0]: // [K1, R, K2]
		k1, r, k2 := sizes[0], sizes[1], sizes[2]
		parallelFor(backend, k1, max(1, 16384/(r*k2)), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				reduceColumns(nil, operand[i*r*k2:(i+1)*r*k2], output[i*k2:(i+1)*k2], r, k2, isSum)
			}
		})
	default:
		return false
	}
	return true
}

// reduceRow sums (or takes the maximum of) x with 8 partial results.
func reduceRow(x []float32, isSum bool) float32 {
	var acc [8]float32
	if !isSum {
		lowest := dtypes.Float32.LowestValue().(float32)
		acc = [8]float32{lowest, lowest, lowest, lowest, lowest, lowest, lowest, lowest}
	}
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		if isSum {
			acc[0] += v[0]
			acc[1] += v[1]
			acc[2] += v[2]
			acc[3] += v[3]
			acc[4] += v[4]
			acc[5] += v[5]
			acc[6] += v[6]
			acc[7] += v[7]
		} else {
			acc[0] = max(acc[0], v[0])
			acc[1] = max(acc[1], v[1])
			acc[2] = max(acc[2], v[2])
			acc[3] = max(acc[3], v[3])
			acc[4] = max(acc[4], v[4])
			acc[5] = max(acc[5], v[5])
			acc[6] = max(acc[6], v[6])
			acc[7] = max(acc[7], v[7])
		}
	}
	for j := 0; i < len(x); i, j = i+1, j+1 {
		if isSum {
			acc[j] += x[i]
		} else {
			acc[j] = max(acc[j], x[i])
		}
	}
	if isSum {
		return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
	}
	return max(max(max(acc[0], acc[1]), max(acc[2], acc[3])), max(max(acc[4], acc[5]), max(acc[6], acc[7])))
}

// reduceColumns reduces x [r, k] over its rows into out [k], in row order, split over columns.
func reduceColumns(backend *gobackend.Backend, x, out []float32, r, k int, isSum bool) {
	parallelFor(backend, k, max(16, 16384/r), func(lo, hi int) {
		o := out[lo:hi]
		copy(o, x[lo:hi])
		for row := 1; row < r; row++ {
			v := x[row*k+lo : row*k+hi]
			v = v[:len(o)]
			if isSum {
				for j := range o {
					o[j] += v[j]
				}
			} else {
				for j := range o {
					o[j] = max(o[j], v[j])
				}
			}
		}
	})
}
