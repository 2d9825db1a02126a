// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"unsafe"

	"github.com/gomlx/compute/internal/gobackend"
)

// Fast transpose (polo patch 0001).
//
// The element-by-element TransposeIterator spent ~20% of a transformer train step. Here the
// permutation is first simplified (unit axes dropped, axes that stay adjacent and in order merged),
// then one of two kernels runs, split over the workers:
//   - the innermost axis stays innermost: copy contiguous runs;
//   - otherwise: transpose 2D tiles between the operand's innermost axis and the axis that becomes
//     the output's innermost, so both reads and writes stay within a few cache lines.

// transposePlan is a transpose with unit axes removed and adjacent axes merged.
type transposePlan struct {
	dims []int // merged operand dimensions
	perm []int // output axis i is merged operand axis perm[i]
}

func newTransposePlan(dims, perm []int) transposePlan {
	// Drop unit axes: renumber the remaining operand axes.
	newAxis := make([]int, len(dims))
	var kept []int
	for axis, d := range dims {
		newAxis[axis] = -1
		if d != 1 {
			newAxis[axis] = len(kept)
			kept = append(kept, d)
		}
	}
	var order []int // operand axes (renumbered) in output order
	for _, axis := range perm {
		if newAxis[axis] >= 0 {
			order = append(order, newAxis[axis])
		}
	}
	// Merge runs of consecutive operand axes that are also consecutive in the output.
	groupOf := make([]int, len(kept)) // operand axis → group id (the group's first axis)
	for i, axis := range order {
		if i > 0 && axis == order[i-1]+1 {
			groupOf[axis] = groupOf[order[i-1]]
		} else {
			groupOf[axis] = axis
		}
	}
	mergedIndex := make([]int, len(kept)) // group's first axis → merged axis index
	var plan transposePlan
	for axis, d := range kept {
		if groupOf[axis] == axis {
			mergedIndex[axis] = len(plan.dims)
			plan.dims = append(plan.dims, d)
		} else {
			plan.dims[len(plan.dims)-1] *= d
		}
	}
	for i, axis := range order {
		if i == 0 || axis != order[i-1]+1 {
			plan.perm = append(plan.perm, mergedIndex[groupOf[axis]])
		}
	}
	return plan
}

// transposeFast transposes operand (flat, row-major) into output according to plan.
func transposeFast[T any](backend *gobackend.Backend, operand, output []T, plan transposePlan) {
	if len(operand) == 0 {
		return
	}
	rank := len(plan.dims)
	if rank <= 1 {
		copy(output, operand)
		return
	}
	// Strides of each merged operand axis, in the operand and in the output.
	inStride := make([]int, rank)
	outStride := make([]int, rank)
	s := 1
	for axis := rank - 1; axis >= 0; axis-- {
		inStride[axis] = s
		s *= plan.dims[axis]
	}
	s = 1
	for i := rank - 1; i >= 0; i-- {
		outStride[plan.perm[i]] = s
		s *= plan.dims[plan.perm[i]]
	}

	last := rank - 1
	if plan.perm[last] == last {
		// The innermost axis stays innermost: copy runs of dims[last] elements. The outer axes are
		// walked in output order so the writes are sequential.
		run := plan.dims[last]
		outer := plan.perm[:last]
		count := len(operand) / run
		parallelFor(backend, count, max(1, 16384/run), func(lo, hi int) {
			idx, in := startOdometer(lo, outer, plan.dims, inStride)
			for o := lo; o < hi; o++ {
				copy(output[o*run:(o+1)*run], operand[in:in+run])
				in = advanceOdometer(idx, outer, plan.dims, inStride, in)
			}
		})
		return
	}

	// 2D tiles between the operand's innermost axis (l, output stride outStride[last]) and the
	// axis becoming the output's innermost (r, operand stride inStride[r]).
	const tile = 8
	r := plan.perm[last]
	rows, cols := plan.dims[r], plan.dims[last]
	var outer []int // the remaining axes, in output order
	for _, axis := range plan.perm[:last] {
		if axis != last {
			outer = append(outer, axis)
		}
	}
	rowTiles := (rows + tile - 1) / tile
	count := len(operand) / (rows * cols) * rowTiles
	inR, outL := inStride[r], outStride[last]
	var zero T
	tile32 := transposeTile32 != nil && unsafe.Sizeof(zero) == 4
	parallelFor(backend, count, max(1, 8192/(tile*cols)), func(lo, hi int) {
		for u := lo; u < hi; u++ {
			block, rt := u/rowTiles, u%rowTiles
			in, out := 0, 0
			for i := len(outer) - 1; i >= 0; i-- {
				axis := outer[i]
				k := block % plan.dims[axis]
				block /= plan.dims[axis]
				in += k * inStride[axis]
				out += k * outStride[axis]
			}
			r0, r1 := rt*tile, min(rt*tile+tile, rows)
			c := 0
			if tile32 && r1-r0 == tile {
				c = transposeTile32(as32(operand), as32(output), in+r0*inR, out+r0, cols, inR, outL)
			}
			transposeTileScalar(operand, output, in+r0*inR, out+r0, r1-r0, c, cols, inR, outL)
		}
	})
}

// transposeTileScalar copies operand[in + row*inR + col] to output[out + col*outL + row] for
// row < rows and col in [c0, cols).
func transposeTileScalar[T any](operand, output []T, in, out, rows, c0, cols, inR, outL int) {
	for c := c0; c < cols; c++ {
		dst := output[out+c*outL : out+c*outL+rows]
		for i := range dst {
			dst[i] = operand[in+i*inR+c]
		}
	}
}

// transposeTile32, when the CPU has a vector kernel, transposes 8 rows of 32-bit elements in 8×8
// blocks (same indexing as transposeTileScalar) and returns the first column it did not do.
var transposeTile32 func(operand, output []uint32, in, out, cols, inR, outL int) int

func as32[T any](s []T) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// startOdometer returns the multi-index (over axes, the last one fastest) of the linear position
// pos, and the matching offset under stride.
func startOdometer(pos int, axes, dims, stride []int) (idx []int, offset int) {
	idx = make([]int, len(axes))
	for i := len(axes) - 1; i >= 0; i-- {
		d := dims[axes[i]]
		idx[i] = pos % d
		pos /= d
		offset += idx[i] * stride[axes[i]]
	}
	return idx, offset
}

// advanceOdometer moves idx one position forward and returns the updated offset.
func advanceOdometer(idx, axes, dims, stride []int, offset int) int {
	for i := len(axes) - 1; i >= 0; i-- {
		axis := axes[i]
		idx[i]++
		offset += stride[axis]
		if idx[i] < dims[axis] {
			return offset
		}
		offset -= idx[i] * stride[axis]
		idx[i] = 0
	}
	return offset
}
