// Copyright 2023-2026 The GoMLX Authors. SPDX-License-Identifier: Apache-2.0

//go:build amd64 && goexperiment.simd

package gobackend

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestNoLegacySSEWhileUpperDirty guards polo patch 0019 without timing anything: it compiles the
// vector kernels with -S and checks the compiled code of every function that writes a YMM or ZMM
// register.
//
// Why: executing a legacy-SSE instruction (Go's scalar float code, struct copies through X
// registers, the compiler's MOVQ into an X register) while the upper halves of the vector
// registers are dirty costs an AVX-SSE transition on Intel Xeons (Go issue 80835; 860 ns instead
// of 7 ns per math.Exp was measured on a Sapphire Rapids machine). The Go compiler emits no
// VZEROUPPER (archsimd.ClearAVXUpperBits) by itself, so each kernel must clear the state before
// any scalar code it runs and before it returns to its (scalar) caller. AMD CPUs have no such
// penalty, so only a check of the code itself protects the Intel machines.
//
// Rules, checked with a data-flow pass over each function's control-flow graph (the state is
// dirty after an instruction with a Y or Z register operand, clean after VZEROUPPER/VZEROALL,
// clean at entry):
//   - kernels: no legacy-SSE instruction, no call and no return while dirty (calls to runtime
//     panics and to the vector helpers below are allowed);
//   - vector helpers (they take or return vectors, so they run between vector code and may return
//     dirty): no legacy-SSE instruction at all and no calls but to other vector helpers.
func TestNoLegacySSEWhileUpperDirty(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the kernels with -S: skipped with -short")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "build", "-gcflags=github.com/gomlx/compute/...=-S", "-o", "/dev/null",
		"./internal/gobackend/...", "./dtypes/...")
	cmd.Dir = "../.." // the compute module's root
	var listing bytes.Buffer
	cmd.Stderr = &listing
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build -S: %v\n%s", err, tail(listing.String(), 2000))
	}
	funcs := parseListing(listing.Bytes())
	if len(funcs) < 500 {
		t.Fatalf("only %d functions in the -S listing: did the build print it?", len(funcs))
	}

	var checked []string
	problems := map[string][]string{}
	for _, f := range funcs {
		if !f.writesWide() {
			continue
		}
		checked = append(checked, f.name)
		if p := f.violations(isVectorHelper(f.name)); len(p) > 0 {
			problems[f.name] = p
		}
	}
	t.Logf("%d functions with YMM/ZMM code checked", len(checked))
	if len(checked) < 50 {
		t.Fatalf("only %d functions with YMM/ZMM code: the listing format may have changed", len(checked))
	}

	names := make([]string, 0, len(problems))
	for name := range problems {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Errorf("%s runs legacy-SSE code, calls or returns while the upper vector state is dirty "+
			"(add archsimd.ClearAVXUpperBits before it; see third_party/README.md, patch 0019):\n  %s",
			name, strings.Join(problems[name], "\n  "))
	}
}

// isVectorHelper reports the functions that take or return vectors: they run in the middle of
// vector code and may return with the upper state dirty.
func isVectorHelper(name string) bool {
	return vectorHelperRE.MatchString(name)
}

var vectorHelperRE = regexp.MustCompile(`\.(avx512Transpose4x|avx2Transpose4x|exp8$|logistic8$|tanh8$|` +
	`avx512SumBits|avx2SumBits|storeBits32|castToArray)|bfloat16\.BroadcastFloat32x|float16\.BroadcastFloat32x|float16\.avx(2|512)ConvertF16ToF32|float16\.avx2LeadingZeros|(BFloat16|Float16)x\d+\)?\.ToFloat32$|\.Load(BFloat16|Float16)x`)

type instruction struct {
	pc   int
	pos  string // file:line
	op   string
	args string
}

type function struct {
	name  string
	insts []instruction
}

var (
	listingLine = regexp.MustCompile(`^\t0x[0-9a-f]+ (\d+) \(([^)]*)\)\t(\S+)\s*(.*)$`)
	xmmOperand  = regexp.MustCompile(`(^|[\s,(])X\d+($|[\s,)])`)
	wideOperand = regexp.MustCompile(`(^|[\s,(])[YZ]\d+($|[\s,)])`)
)

// parseListing reads the compiler's -S output: a "name STEXT ..." header per function followed by
// "\t0xOFFSET PC (file:line)\tOP\tARGS" lines.
func parseListing(b []byte) []*function {
	var funcs []*function
	var cur *function
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "\t") {
			cur = nil
			if strings.Contains(line, " STEXT ") {
				cur = &function{name: strings.Fields(line)[0]}
				funcs = append(funcs, cur)
			}
			continue
		}
		m := listingLine.FindStringSubmatch(line)
		if cur == nil || m == nil || m[3] == "PCDATA" || m[3] == "FUNCDATA" {
			continue
		}
		pc, _ := strconv.Atoi(m[1])
		pos := m[2]
		if i := strings.LastIndex(pos, "/"); i >= 0 {
			pos = pos[i+1:]
		}
		cur.insts = append(cur.insts, instruction{pc: pc, pos: pos, op: m[3], args: m[4]})
	}
	return funcs
}

func (f *function) writesWide() bool {
	for _, in := range f.insts {
		if wideOperand.MatchString(in.args) {
			return true
		}
	}
	return false
}

// dirtyAfter is the transfer function: the state after in, given the state before it. A vector
// helper may return with the state dirty.
func dirtyAfter(in instruction, dirty bool) bool {
	switch {
	case in.op == "VZEROUPPER" || in.op == "VZEROALL":
		return false
	case wideOperand.MatchString(in.args):
		return true
	case in.op == "CALL" && calleeIsVectorHelper(in.args):
		return true
	}
	return dirty
}

func isLegacySSE(in instruction) bool {
	if in.op == "DUFFZERO" || in.op == "DUFFCOPY" {
		return true // they move through X registers with legacy encodings
	}
	return !strings.HasPrefix(in.op, "V") && !strings.HasPrefix(in.op, "K") && xmmOperand.MatchString(in.args)
}

// violations returns the instructions that break the rules (see TestNoLegacySSEWhileUpperDirty).
func (f *function) violations(helper bool) []string {
	index := make(map[int]int, len(f.insts))
	for i, in := range f.insts {
		index[in.pc] = i
	}
	successors := func(i int, visit func(int)) {
		in := f.insts[i]
		if in.op == "RET" || in.op == "UD2" || (in.op == "CALL" && strings.Contains(in.args, "runtime.panic")) {
			return // no successor (runtime.panic* never returns)
		}
		if strings.HasPrefix(in.op, "J") {
			if target, err := strconv.Atoi(strings.TrimSpace(in.args)); err == nil {
				if j, ok := index[target]; ok {
					visit(j)
				}
			}
			if in.op == "JMP" {
				return
			}
		}
		visit(i + 1)
	}
	// dirtyBefore[i]: the state may be dirty when instruction i starts.
	dirtyBefore := make([]bool, len(f.insts)+1)
	var work []int
	mark := func(j int) {
		if j < len(f.insts) && !dirtyBefore[j] {
			dirtyBefore[j] = true
			work = append(work, j)
		}
	}
	for i, in := range f.insts {
		if dirtyAfter(in, false) {
			successors(i, mark)
		}
	}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		if dirtyAfter(f.insts[i], true) {
			successors(i, mark)
		}
	}

	var out []string
	report := func(in instruction, what string) {
		out = append(out, fmt.Sprintf("%s: %s %s %s", in.pos, what, in.op, in.args))
	}
	for _, in := range f.insts {
		if strings.HasPrefix(in.op, "J") {
			if _, err := strconv.Atoi(strings.TrimSpace(in.args)); err != nil {
				// An indirect jump (a switch's jump table) hides its targets from this analysis.
				report(in, "indirect jump, cannot be checked:")
			}
		}
	}
	isMorestack := func(i int) bool {
		return i >= 0 && i < len(f.insts) && f.insts[i].op == "CALL" && strings.Contains(f.insts[i].args, "morestack")
	}
	for i, in := range f.insts {
		if isLegacySSE(in) && (isMorestack(i-1) || isMorestack(i+1)) {
			continue // the prologue's cold stack-growth path spills and reloads vector arguments
		}
		isCall := in.op == "CALL"
		if isCall && (strings.Contains(in.args, "runtime.panic") || strings.Contains(in.args, "morestack")) {
			continue // never returns, or runs before any vector code
		}
		switch {
		case helper && isLegacySSE(in):
			report(in, "legacy SSE in a vector helper:")
		case helper && isCall && !calleeIsVectorHelper(in.args):
			report(in, "call in a vector helper:")
		case helper || !dirtyBefore[i]:
		case isLegacySSE(in):
			report(in, "legacy SSE while dirty:")
		case isCall && !calleeIsVectorHelper(in.args):
			report(in, "call while dirty:")
		case in.op == "RET":
			report(in, "return while dirty:")
		}
	}
	return out
}

func calleeIsVectorHelper(args string) bool {
	name := strings.TrimSuffix(strings.TrimSpace(args), "(SB)")
	return strings.HasPrefix(name, "github.com/gomlx/compute/") && isVectorHelper(name)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestAssemblyKernelsLeaveCleanState applies the same rules to the hand-written assembly kernels,
// which the compiler's -S listing does not show: no legacy-SSE instruction anywhere (they are
// vector code throughout), and VZEROUPPER before every RET of a function that uses YMM or ZMM
// registers (read in source order, which is their control flow: each ends in one done: block).
func TestAssemblyKernelsLeaveCleanState(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("dot", "matmul", "*.s"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no assembly kernels found (%v)", err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var fn string
		wide, clean := false, true
		for n, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "//")
			code = strings.TrimSpace(code)
			if strings.HasPrefix(code, "#") || code == "" || strings.HasSuffix(code, ":") {
				continue
			}
			fields := strings.Fields(code)
			op, args := fields[0], strings.Join(fields[1:], " ")
			where := fmt.Sprintf("%s:%d", file, n+1)
			switch {
			case op == "TEXT":
				fn, wide, clean = args, false, true
			case op == "VZEROUPPER" || op == "VZEROALL":
				clean = true
			case wideOperand.MatchString(args):
				wide, clean = true, false
			case op == "RET" && wide && !clean:
				t.Errorf("%s: %s returns with the upper vector state dirty (no VZEROUPPER)", where, fn)
			}
			if !strings.HasPrefix(op, "V") && !strings.HasPrefix(op, "K") && xmmOperand.MatchString(args) {
				t.Errorf("%s: legacy-SSE instruction %s in %s", where, code, fn)
			}
		}
	}
}
