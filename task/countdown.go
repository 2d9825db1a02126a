package task

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// countdown: reach a target with the given numbers and + - * / and parentheses.
// Prompt "3,5,7:22=" (numbers, then the target); any correct expression is accepted,
// e.g. "3*5+7". With use_all (default) every number is used exactly once; otherwise at most once.
type countdownGen struct {
	genBase
	n, max intRange
	ops    string
	useAll bool
}

// term is a partial expression while building a puzzle.
type term struct {
	expr  string
	val   int64
	atom  bool
	depth int
}

func (g *countdownGen) Next() (Example, error) {
	n, hi := g.n.draw(g.rng), g.max.draw(g.rng)
	nums := make([]int64, n)
	pool := make([]term, n)
	for i := range nums {
		nums[i] = 1 + g.rng.Int63n(int64(hi))
		pool[i] = term{expr: strconv.FormatInt(nums[i], 10), val: nums[i], atom: true}
	}
	// Combine random pairs until one expression uses every number. Subtraction keeps the larger
	// operand first and division is used only when exact, so every intermediate value is a
	// non-negative integer and the target is reachable by construction.
	for len(pool) > 1 {
		i := g.rng.Intn(len(pool))
		a := pool[i]
		pool = append(pool[:i], pool[i+1:]...)
		j := g.rng.Intn(len(pool))
		b := pool[j]
		pool = append(pool[:j], pool[j+1:]...)
		op := g.ops[g.rng.Intn(len(g.ops))]
		var v int64
		switch op {
		case '+':
			v = a.val + b.val
		case '*':
			v = a.val * b.val
		case '-':
			if a.val < b.val {
				a, b = b, a
			}
			v = a.val - b.val
		case '/':
			if b.val != 0 && a.val%b.val == 0 {
				v = a.val / b.val
			} else if a.val != 0 && b.val%a.val == 0 {
				a, b = b, a
				v = a.val / b.val
			} else {
				op, v = '+', a.val+b.val
			}
		}
		pool = append(pool, term{expr: wrap(a) + string(op) + wrap(b), val: v})
	}
	target := pool[0].val
	meta := map[string]string{"nums": joinInt64(nums), "target": strconv.FormatInt(target, 10),
		"use_all": strconv.FormatBool(g.useAll)}
	return g.example(fmt.Sprintf("%s:%d=", joinInt64(nums), target), pool[0].expr, meta), nil
}

func wrap(t term) string {
	if t.atom {
		return t.expr
	}
	return "(" + t.expr + ")"
}

func joinInt64(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

func (g *countdownGen) Alphabet() string { return uniqueChars(digits, ",:=()", g.ops) }

// Check evaluates the expression at the start of the response exactly (rational arithmetic) and
// checks the numbers it uses against the puzzle.
func (g *countdownGen) Check(response string, ex Example) Check {
	expr, _ := leading(response, digits+"+-*/() ")
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return Check{Reason: "no expression at the start of the response"}
	}
	target, ok := new(big.Rat).SetString(ex.Meta["target"])
	if !ok {
		return Check{Extracted: expr, Reason: "example has no valid Meta[\"target\"]"}
	}
	want, err := parseInts(ex.Meta["nums"])
	if err != nil {
		return Check{Extracted: expr, Reason: "example has no valid Meta[\"nums\"]"}
	}
	useAll := ex.Meta["use_all"] != "false"
	p := &exprParser{s: expr}
	v, err := p.parse()
	if err != nil {
		return Check{Extracted: expr, Reason: "expression: " + err.Error()}
	}
	if msg := multisetCheck(p.nums, want, useAll); msg != "" {
		return Check{Extracted: expr, Reason: msg}
	}
	if v.Cmp(target) != 0 {
		return Check{Extracted: expr, Reason: fmt.Sprintf("expression equals %s, want %s", v.RatString(), target.RatString())}
	}
	return Check{Correct: true, Extracted: expr}
}

func parseInts(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func multisetCheck(used, allowed []int64, useAll bool) string {
	count := map[int64]int{}
	for _, x := range allowed {
		count[x]++
	}
	for _, x := range used {
		if count[x] == 0 {
			return fmt.Sprintf("uses %d more often than given (numbers %s)", x, joinInt64(allowed))
		}
		count[x]--
	}
	if useAll && len(used) != len(allowed) {
		u := append([]int64(nil), used...)
		sort.Slice(u, func(i, j int) bool { return u[i] < u[j] })
		return fmt.Sprintf("uses %s but must use each of %s exactly once", joinInt64(u), joinInt64(allowed))
	}
	return ""
}

// exprParser is a recursive-descent parser for integer expressions with + - * / and parentheses,
// evaluated exactly with big.Rat. It records every literal it reads.
type exprParser struct {
	s    string
	pos  int
	nums []int64
}

func (p *exprParser) parse() (*big.Rat, error) {
	v, err := p.sum()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at position %d", p.s[p.pos:], p.pos)
	}
	return v, nil
}

func (p *exprParser) space() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *exprParser) sum() (*big.Rat, error) {
	v, err := p.product()
	if err != nil {
		return nil, err
	}
	for {
		p.space()
		if p.pos >= len(p.s) || (p.s[p.pos] != '+' && p.s[p.pos] != '-') {
			return v, nil
		}
		op := p.s[p.pos]
		p.pos++
		w, err := p.product()
		if err != nil {
			return nil, err
		}
		if op == '+' {
			v.Add(v, w)
		} else {
			v.Sub(v, w)
		}
	}
}

func (p *exprParser) product() (*big.Rat, error) {
	v, err := p.atom()
	if err != nil {
		return nil, err
	}
	for {
		p.space()
		if p.pos >= len(p.s) || (p.s[p.pos] != '*' && p.s[p.pos] != '/') {
			return v, nil
		}
		op := p.s[p.pos]
		p.pos++
		w, err := p.atom()
		if err != nil {
			return nil, err
		}
		if op == '*' {
			v.Mul(v, w)
		} else {
			if w.Sign() == 0 {
				return nil, fmt.Errorf("division by zero")
			}
			v.Quo(v, w)
		}
	}
}

func (p *exprParser) atom() (*big.Rat, error) {
	p.space()
	if p.pos >= len(p.s) {
		return nil, fmt.Errorf("expression ends early")
	}
	if p.s[p.pos] == '(' {
		p.pos++
		v, err := p.sum()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return v, nil
	}
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if start == p.pos {
		return nil, fmt.Errorf("expected a number at position %d", start)
	}
	x, err := strconv.ParseInt(p.s[start:p.pos], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("number %q too large", p.s[start:p.pos])
	}
	p.nums = append(p.nums, x)
	return new(big.Rat).SetInt64(x), nil
}
