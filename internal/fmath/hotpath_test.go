package fmath

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHostCodeDoesNotCallMathExp keeps package math's assembly exp out of polo's per-token and
// per-vocabulary host code. On Intel Xeons, in binaries built with GOEXPERIMENT=simd, math.Exp
// measured 860 ns per call instead of 7 ns (its FMA path mixes VEX and legacy-SSE instructions,
// and the runtime leaves the upper vector state dirty after preemptions): the objective alone
// evaluates one exp per token. math.Tanh, Sinh and Cosh call it too. Use Exp here instead.
// (math.Pow with a fractional exponent and math.Erf call it as well; the one such use in these
// packages, SPO's forgetting factor, runs once per response, not per token.)
// A check of the source, not a timing, so it holds on every machine CI runs on.
func TestHostCodeDoesNotCallMathExp(t *testing.T) {
	banned := map[string]bool{"Exp": true, "Tanh": true, "Sinh": true, "Cosh": true}
	// The packages whose host code runs per token or per vocabulary entry.
	dirs := []string{"objective", "rollout", "train", "model", "serve", "value", "reward", "datamask"}
	checked := 0
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join("..", "..", dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v)", dir, err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			mathName := ""
			for _, imp := range f.Imports {
				if path, _ := strconv.Unquote(imp.Path.Value); path == "math" {
					mathName = "math"
					if imp.Name != nil {
						mathName = imp.Name.Name
					}
				}
			}
			checked++
			if mathName == "" {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == mathName && banned[sel.Sel.Name] {
					if file == filepath.Join("..", "..", "reward", "matheval.go") {
						return true // evaluates the user's exp(), once per answer
					}
					t.Errorf("%s: math.%s in host code: use fmath.Exp (math.Exp is ~120× slower on Intel Xeons with GOEXPERIMENT=simd)",
						fset.Position(sel.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
	}
	if checked < 50 {
		t.Fatalf("only %d files checked: the package list is stale", checked)
	}
}
