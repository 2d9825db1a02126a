package jinja

// polo patch: limits on one render.
//
// Upstream (github.com/ardanlabs/jinja v1.8.0) renders without bounds: a recursive macro overflows
// the Go stack (a fatal error, not a panic), range(100000000) builds a 100-million-item list, and a
// loop that doubles a string grows until the process is killed. Chat templates come with model
// folders, which are user input, so every render here runs under a budget and exceeding it is an
// error naming the limit:
//
//   - MaxDepth: nested macro and caller() calls (Jinja2 stops at Python's recursion limit);
//   - MaxIterations: for-loop iterations in all, loop filters included;
//   - MaxOutput: bytes written in all, and the size of any one string (or items of a list) that an
//     operator, filter, method or function call produces;
//
// and, in the builtins (which have no evaluator at hand), range() and repetitions are bounded by
// maxItems and indentation widths by maxIndent. The template parser refuses expressions and blocks
// nested deeper than maxNesting. Besides limits, the patch makes a division by zero and reading an
// attribute or item of an undefined value errors, as Jinja2 raises on them, and turns a panic
// inside a render into an error.

import (
	"fmt"
	"strings"
)

// Limits bound one render.
type Limits struct {
	MaxDepth      int   // nested macro / caller() calls
	MaxIterations int64 // for-loop iterations in all
	MaxOutput     int64 // bytes written in all, and the largest string a single operation may build
}

// DefaultLimits are far above what chat templates need (a few nested macros, a loop over the
// messages and tools, kilobytes to megabytes of output) and far below what hurts a machine.
var DefaultLimits = Limits{MaxDepth: 200, MaxIterations: 1_000_000, MaxOutput: 64 << 20}

const (
	maxItems   = 1_000_000 // largest list range(), repetition or batch may build
	maxIndent  = 1 << 12   // widest indentation (indent, tojson)
	maxNesting = 200       // deepest nesting of expressions or blocks the parser accepts
)

// budget is what one render has used of its Limits.
type budget struct {
	Limits
	depth int
	iters int64
	out   int64
}

func (b *budget) enter(what string) error {
	if b.depth >= b.MaxDepth {
		return fmt.Errorf("recursion deeper than %d calls (%s): the template recurses without end", b.MaxDepth, what)
	}
	b.depth++
	return nil
}

func (b *budget) leave() { b.depth-- }

func (b *budget) iterate() error {
	if b.iters++; b.iters > b.MaxIterations {
		return fmt.Errorf("more than %d loop iterations: the template loops too long", b.MaxIterations)
	}
	return nil
}

// checkValue refuses a string longer than MaxOutput or a list with more than maxItems items.
func (b *budget) checkValue(v Value) (Value, error) {
	switch {
	case v.IsString() && int64(len(v.AsString())) > b.MaxOutput:
		return Undefined(), fmt.Errorf("a string of %d bytes is more than the %d a template may build", len(v.AsString()), b.MaxOutput)
	case v.IsList() && v.AsList().Len() > maxItems:
		return Undefined(), fmt.Errorf("a list of %d items is more than the %d a template may build", v.AsList().Len(), maxItems)
	}
	return v, nil
}

func (b *budget) checkResult(v Value, err error) (Value, error) {
	if err != nil {
		return v, err
	}
	return b.checkValue(v)
}

// repeat is the * operator: a string times a count is checked before it is built.
func (b *budget) repeat(a, n Value) (Value, error) {
	if a.IsString() && n.IsInt() {
		count := n.AsInt()
		if count <= 0 || a.AsString() == "" {
			return NewString(""), nil
		}
		if size := int64(len(a.AsString())); count > b.MaxOutput/size {
			return Undefined(), fmt.Errorf("%d × a %d-byte string is more than the %d bytes a template may build", count, size, b.MaxOutput)
		}
		return NewString(strings.Repeat(a.AsString(), int(count))), nil
	}
	return mulValues(a, n), nil
}

// write appends to the evaluator's output, counting against MaxOutput.
func (e *evaluator) write(s string) error {
	if e.lim.out += int64(len(s)); e.lim.out > e.lim.MaxOutput {
		return fmt.Errorf("output of more than %d bytes: the template writes too much", e.lim.MaxOutput)
	}
	e.output.WriteString(s)
	return nil
}

// isZero reports a numeric zero divisor.
func isZero(v Value) bool {
	return (v.IsInt() || v.IsFloat() || v.IsBool()) && toFloat64(v) == 0
}

// rangeLen is the number of items range(start, stop, step) yields, capped at maxItems+1.
func rangeLen(start, stop, step int64) int64 {
	var n float64
	if step > 0 && stop > start {
		n = (float64(stop) - float64(start)) / float64(step)
	} else if step < 0 && stop < start {
		n = (float64(start) - float64(stop)) / -float64(step)
	}
	if n > maxItems {
		return maxItems + 1
	}
	return int64(n)
}
