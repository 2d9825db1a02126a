// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

package ops

import (
	"testing"

	"github.com/gomlx/compute/internal/gobackend"
)

// TestReduceLogicalToOneValue checks the one-output path of ReduceLogicalAnd/Or (polo patch 0016).
func TestReduceLogicalToOneValue(t *testing.T) {
	for _, tc := range []struct {
		in       []bool
		and, or_ bool
	}{
		{nil, true, false},
		{[]bool{true, true, true}, true, true},
		{[]bool{true, false, true}, false, true},
		{[]bool{false, false}, false, false},
	} {
		operand := &gobackend.Buffer{Flat: tc.in}
		out := &gobackend.Buffer{Flat: []bool{false}}
		if err := execReduceLogicalAnd(operand, out, nil, 0); err != nil || out.Flat.([]bool)[0] != tc.and {
			t.Errorf("And(%v) = %v (err %v), want %v", tc.in, out.Flat.([]bool)[0], err, tc.and)
		}
		out = &gobackend.Buffer{Flat: []bool{true}}
		if err := execReduceLogicalOr(operand, out, nil, 0); err != nil || out.Flat.([]bool)[0] != tc.or_ {
			t.Errorf("Or(%v) = %v (err %v), want %v", tc.in, out.Flat.([]bool)[0], err, tc.or_)
		}
	}
}
