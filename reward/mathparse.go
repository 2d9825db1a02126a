package reward

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// This file parses tokens (mathlex.go) into an expression tree. The grammar is forgiving the way
// graders are: implicit multiplication, \frac12, mixed numbers (1\frac12 = 3/2), functions
// without parentheses (\sin 2x), intervals with mixed brackets, units and filler words dropped.
// Recursion is bounded by maxParseDepth so hostile nesting fails fast instead of overflowing.

type opKind uint8

const (
	opNum    opKind = iota // r
	opSym                  // name
	opConst                // name: pi, e, inf
	opAdd                  // kids summed
	opMul                  // kids multiplied
	opDiv                  // kids[0] / kids[1]
	opPow                  // kids[0] ^ kids[1]
	opNeg                  // -kids[0]
	opFunc                 // name(kids[0]); log may carry a base in kids[1]
	opCall                 // f(x): kids[0] symbol, kids[1:] arguments; evaluates as a product
	opFact                 // kids[0]!
	opPM                   // kids[0] ± kids[1]
	opPct                  // kids[0] %
	opDeg                  // kids[0] degrees
	opBased                // name: digits "_" base, e.g. 4210_7
	opText                 // name: words, lower case, single spaces
	opTuple                // ordered: tuples, intervals, vectors (open, close brackets)
	opSet                  // \{…\}: order-free
	opList                 // a bare comma list: order-free, like a set
	opMatrix               // kids are rows (opTuple)
	opRel                  // kids are sides, rels the relations between them
	opUnion                // kids joined by \cup
)

type node struct {
	op          opKind
	name        string
	r           *big.Rat
	kids        []*node
	rels        []string
	open, close byte
}

const (
	maxParseDepth = 64  // nesting of brackets, powers and unary signs
	maxItems      = 256 // elements of one list, set or matrix
)

var errTooDeep = errors.New("answer nested too deeply")

// parseMath parses one final answer. Errors mean "not math we understand"; callers fall back to
// comparing text.
func parseMath(s string) (*node, error) {
	toks, err := lexMath(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.list()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("unexpected %q", t.text)
	}
	return n, nil
}

type parser struct {
	toks  []token
	pos   int
	depth int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}
func (p *parser) is(kind tokKind, text string) bool {
	t := p.toks[p.pos]
	return t.kind == kind && t.text == text
}
func (p *parser) eat(kind tokKind, text string) bool {
	if p.is(kind, text) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxParseDepth {
		return errTooDeep
	}
	return nil
}
func (p *parser) leave() { p.depth-- }

// isSep reports a list separator: a comma, a semicolon, or the words "and"/"or".
func (p *parser) isSep() bool {
	return isSepTok(p.peek())
}

func isSepTok(t token) bool {
	switch t.kind {
	case tOp:
		return t.text == "," || t.text == ";"
	case tWord:
		return t.text == "and" || t.text == "or"
	case tText:
		w := normText(t.text)
		return w == "and" || w == "or" || w == ","
	}
	return false
}

// list parses items separated by commas; one item is returned as itself.
func (p *parser) list() (*node, error) {
	var items []*node
	for {
		for p.isSep() { // leading or doubled separators
			p.next()
		}
		if t := p.peek(); t.kind == tEOF || t.kind == tClose || t.kind == tRowSep || t.kind == tCmd && strings.HasPrefix(t.text, "end:") {
			break
		}
		n, err := p.rel()
		if err != nil {
			return nil, err
		}
		items = append(items, n)
		if len(items) > maxItems {
			return nil, errors.New("too many elements")
		}
		if !p.isSep() {
			break
		}
	}
	switch len(items) {
	case 0:
		return nil, errors.New("empty answer")
	case 1:
		return items[0], nil
	}
	return &node{op: opList, kids: items}, nil
}

var relOps = map[string]bool{"=": true, "<": true, ">": true, "<=": true, ">=": true, "!=": true, "in": true}

func (p *parser) rel() (*node, error) {
	first, err := p.union()
	if err != nil {
		return nil, err
	}
	n := &node{op: opRel, kids: []*node{first}}
	for {
		t := p.peek()
		if t.kind == tOp && t.text == "!" && p.toks[p.pos+1].kind == tOp && p.toks[p.pos+1].text == "=" {
			p.pos++
			t.text = "!="
		} else if t.kind != tOp || !relOps[t.text] {
			break
		}
		p.next()
		side, err := p.union()
		if err != nil {
			return nil, err
		}
		n.rels = append(n.rels, t.text)
		n.kids = append(n.kids, side)
	}
	if len(n.rels) == 0 {
		return first, nil
	}
	return n, nil
}

func (p *parser) union() (*node, error) {
	first, err := p.expr()
	if err != nil {
		return nil, err
	}
	if !p.is(tOp, "cup") {
		return first, nil
	}
	n := &node{op: opUnion, kids: []*node{first}}
	for p.eat(tOp, "cup") {
		k, err := p.expr()
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, k)
	}
	return n, nil
}

// expr parses sums, including ± and ∓.
func (p *parser) expr() (*node, error) {
	var acc *node
	if p.eat(tOp, "±") || p.eat(tOp, "∓") {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		acc = &node{op: opPM, kids: []*node{numNode(0), t}}
	} else {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		acc = t
	}
	for {
		tok := p.peek()
		if tok.kind != tOp || (tok.text != "+" && tok.text != "-" && tok.text != "±" && tok.text != "∓") {
			return acc, nil
		}
		p.next()
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		switch tok.text {
		case "+":
			acc = addNode(acc, t)
		case "-":
			acc = addNode(acc, &node{op: opNeg, kids: []*node{t}})
		default:
			acc = &node{op: opPM, kids: []*node{acc, t}}
		}
	}
}

func addNode(a, b *node) *node {
	if a.op == opAdd {
		a.kids = append(a.kids, b)
		return a
	}
	return &node{op: opAdd, kids: []*node{a, b}}
}

func mulNode(a, b *node) *node {
	if a.op == opMul {
		a.kids = append(a.kids, b)
		return a
	}
	return &node{op: opMul, kids: []*node{a, b}}
}

func numNode(n int64) *node { return &node{op: opNum, r: big.NewRat(n, 1)} }

// term parses products and quotients, with implicit multiplication (2x, 2\pi, x(x+1), 2^6 3^5).
func (p *parser) term() (*node, error) {
	acc, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		tok := p.peek()
		switch {
		case tok.kind == tOp && (tok.text == "*" || tok.text == "/"):
			p.next()
			f, err := p.unary()
			if err != nil {
				return nil, err
			}
			if tok.text == "/" {
				acc = &node{op: opDiv, kids: []*node{acc, f}}
			} else {
				acc = mulNode(acc, f)
			}
		case (tok.kind == tWord || tok.kind == tText && isUnitText(tok.text)) && !isSepTok(tok):
			p.next() // a unit or filler word after a value: 125 miles, 10\text{ cm}, 10\text{ cm}^2
			if p.is(tOp, "^") && (p.toks[p.pos+1].kind == tNum || p.toks[p.pos+1].kind == tOpen) {
				p.next()
				if _, err := p.arg(); err != nil {
					return nil, err
				}
			}
		case p.startsFactor():
			f, err := p.power()
			if err != nil {
				return nil, err
			}
			acc = mulNode(acc, f)
		default:
			return acc, nil
		}
	}
}

// startsFactor reports whether the next token can begin an implicitly multiplied factor.
func (p *parser) startsFactor() bool {
	t := p.peek()
	switch t.kind {
	case tNum, tIdent:
		return true
	case tCmd:
		return !strings.HasPrefix(t.text, "end:")
	case tOpen:
		return t.text == "(" || t.text == "{" || t.text == "lfloor" || t.text == "lceil"
	case tText:
		return !isUnitText(t.text)
	}
	return false
}

// isUnitText reports \text{…} content that is only words (a unit or a remark), not math.
func isUnitText(s string) bool {
	letters := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c):
			letters++
		case c == ' ' || c == '.' || c == '~' || c == '\\' || c == '^' || c == '2' || c == '3' || c == '{' || c == '}' || c == '/':
		default:
			return false
		}
	}
	return letters > 0
}

func (p *parser) unary() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.eat(tOp, "-") {
		f, err := p.unary()
		if err != nil {
			return nil, err
		}
		if f.op == opNum {
			return &node{op: opNum, r: new(big.Rat).Neg(f.r)}, nil
		}
		return &node{op: opNeg, kids: []*node{f}}, nil
	}
	if p.eat(tOp, "+") {
		return p.unary()
	}
	return p.power()
}

// power parses base^exponent (right associative) and degree marks (30^\circ).
func (p *parser) power() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	base, err := p.postfix()
	if err != nil {
		return nil, err
	}
	if !p.is(tOp, "^") {
		return base, nil
	}
	p.next()
	if p.eat(tOp, "°") {
		return p.afterPower(&node{op: opDeg, kids: []*node{base}})
	}
	if p.is(tOpen, "{") && p.toks[p.pos+1].kind == tOp && p.toks[p.pos+1].text == "°" && p.toks[p.pos+2].kind == tClose {
		p.pos += 3
		return p.afterPower(&node{op: opDeg, kids: []*node{base}})
	}
	var e *node
	if p.eat(tOp, "-") {
		f, err := p.power()
		if err != nil {
			return nil, err
		}
		e = &node{op: opNeg, kids: []*node{f}}
	} else if e, err = p.power(); err != nil {
		return nil, err
	}
	return p.afterPower(&node{op: opPow, kids: []*node{base, e}})
}

// afterPower applies postfix marks that follow a power: 5^2\%, 2^3!.
func (p *parser) afterPower(n *node) (*node, error) {
	for {
		switch {
		case p.eat(tOp, "%"):
			n = &node{op: opPct, kids: []*node{n}}
		case p.eat(tOp, "°"):
			n = &node{op: opDeg, kids: []*node{n}}
		default:
			return n, nil
		}
	}
}

func (p *parser) postfix() (*node, error) {
	n, err := p.atom()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.is(tOp, "!") && !(p.toks[p.pos+1].kind == tOp && p.toks[p.pos+1].text == "="):
			p.next()
			n = &node{op: opFact, kids: []*node{n}}
		case p.eat(tOp, "%"):
			n = &node{op: opPct, kids: []*node{n}}
		case p.eat(tOp, "°"):
			n = &node{op: opDeg, kids: []*node{n}}
		case p.is(tOp, "'") && n.op == opSym:
			p.next()
			n = &node{op: opSym, name: n.name + "'"}
		case p.is(tOp, "_") && (n.op == opSym || n.op == opNum):
			p.next()
			sub, err := p.subscript()
			if err != nil {
				return nil, err
			}
			if n.op == opSym {
				n = &node{op: opSym, name: n.name + "_" + sub}
			} else {
				n = &node{op: opBased, name: strings.TrimLeft(n.r.RatString(), "0") + "_" + strings.TrimLeft(sub, "0")}
			}
		default:
			return n, nil
		}
	}
}

// subscript reads x_1, x_{12}, a_n, 4210_{7} and returns the subscript's text.
func (p *parser) subscript() (string, error) {
	if p.eat(tOpen, "{") {
		var b strings.Builder
		for !p.is(tClose, "}") {
			t := p.next()
			if t.kind == tEOF || t.kind == tOpen {
				return "", errors.New("unsupported subscript")
			}
			b.WriteString(t.text)
		}
		p.next()
		return b.String(), nil
	}
	t := p.next()
	if t.kind != tNum && t.kind != tIdent {
		return "", errors.New("unsupported subscript")
	}
	return t.text, nil
}

func (p *parser) atom() (*node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	t := p.next()
	switch t.kind {
	case tNum:
		r, ok := parseRat(t.text)
		if !ok {
			return nil, fmt.Errorf("bad number %q", t.text)
		}
		n := &node{op: opNum, r: r}
		if r.IsInt() && !strings.ContainsAny(t.text, ".eE") && p.is(tCmd, "frac") {
			return p.mixed(n)
		}
		return n, nil
	case tIdent:
		if t.text == "e" {
			return &node{op: opConst, name: "e"}, nil
		}
		n := &node{op: opSym, name: t.text}
		if p.is(tOpen, "(") && !p.peek().space && len(t.text) == 1 {
			return p.call(n)
		}
		return n, nil
	case tCmd:
		return p.command(t.text)
	case tOpen:
		return p.bracket(t.text)
	case tOp:
		if t.text == "|" {
			return p.abs()
		}
	case tText:
		return parseText(t.text, p.depth)
	case tWord:
		words := []string{t.text}
		for p.peek().kind == tWord && p.peek().text != "and" && p.peek().text != "or" {
			words = append(words, p.next().text)
		}
		return &node{op: opText, name: strings.Join(words, " ")}, nil
	}
	if t.kind == tEOF {
		return nil, errors.New("answer ends early")
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}

// parseRat reads a lexed number; short integers skip big.Rat's general parser.
func parseRat(s string) (*big.Rat, bool) {
	if len(s) <= 18 {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return big.NewRat(n, 1), true
		}
	}
	return new(big.Rat).SetString(s)
}

// mixed reads 1\frac12 as 1 + 1/2 when the fraction has integer parts; otherwise a product.
func (p *parser) mixed(whole *node) (*node, error) {
	save := p.pos
	p.next()
	a, errA := p.arg()
	if errA == nil {
		b, errB := p.arg()
		if errB == nil && a.op == opNum && b.op == opNum && a.r.IsInt() && b.r.IsInt() && a.r.Sign() > 0 && b.r.Sign() > 0 {
			frac := &node{op: opDiv, kids: []*node{a, b}}
			if whole.r.Sign() < 0 {
				frac = &node{op: opNeg, kids: []*node{frac}}
			}
			return &node{op: opAdd, kids: []*node{whole, frac}}, nil
		}
	}
	p.pos = save
	return whole, nil
}

// parseText reads \text{…}: math inside (\text{(B)}, \text{12}) or words (a text answer).
func parseText(s string, depth int) (*node, error) {
	if isUnitText(s) || strings.TrimSpace(s) == "" {
		return &node{op: opText, name: normText(s)}, nil
	}
	toks, err := lexMath(s)
	if err != nil {
		return nil, err
	}
	q := &parser{toks: toks, depth: depth}
	n, err := q.list()
	if err != nil {
		return nil, err
	}
	if q.peek().kind != tEOF {
		return nil, fmt.Errorf("unexpected %q", q.peek().text)
	}
	return n, nil
}

// normText lower-cases and collapses spaces: text answers compare case- and space-insensitively.
func normText(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.NewReplacer(`\ `, " ", "~", " ", ".", "").Replace(s))), " ")
}

// call reads f(x) or f(x, y): a function name applied to arguments, which evaluates as the
// product f·x (so x(x+1) still works) but lets "f(x) = 2x+3" count as an assignment.
func (p *parser) call(f *node) (*node, error) {
	p.next()
	inner, err := p.list()
	if err != nil {
		return nil, err
	}
	if !p.eat(tClose, ")") {
		return nil, errors.New("missing )")
	}
	n := &node{op: opCall, kids: []*node{f}}
	if inner.op == opList {
		n.kids = append(n.kids, inner.kids...)
	} else {
		n.kids = append(n.kids, inner)
	}
	return n, nil
}

func (p *parser) abs() (*node, error) {
	inner, err := p.expr()
	if err != nil {
		return nil, err
	}
	if !p.eat(tOp, "|") {
		return nil, errors.New("missing closing |")
	}
	return &node{op: opFunc, name: "abs", kids: []*node{inner}}, nil
}

var closers = map[string]string{"lfloor": "rfloor", "lceil": "rceil", "<": ">", `\{`: `\}`, "{": "}"}

// bracket reads what follows an opening bracket: a group, a tuple, an interval or a set.
func (p *parser) bracket(open string) (*node, error) {
	inner, err := p.list()
	if err != nil {
		if open == `\{` && p.eat(tClose, `\}`) {
			return &node{op: opSet}, nil // \{\}
		}
		return nil, err
	}
	t := p.next()
	if t.kind != tClose {
		return nil, fmt.Errorf("missing closing bracket for %s", open)
	}
	switch open {
	case "(", "[":
		if t.text != ")" && t.text != "]" {
			return nil, fmt.Errorf("%s closed by %s", open, t.text)
		}
		if inner.op != opList {
			if t.text == map[string]string{"(": ")", "[": "]"}[open] {
				return inner, nil
			}
			return nil, fmt.Errorf("%s closed by %s", open, t.text)
		}
		return &node{op: opTuple, kids: inner.kids, open: open[0], close: t.text[0]}, nil
	}
	if want := closers[open]; t.text != want {
		return nil, fmt.Errorf("%s closed by %s", open, t.text)
	}
	switch open {
	case "lfloor", "lceil":
		return &node{op: opFunc, name: map[string]string{"lfloor": "floor", "lceil": "ceil"}[open], kids: []*node{inner}}, nil
	case "<":
		return &node{op: opTuple, kids: listKids(inner), open: '(', close: ')'}, nil
	case `\{`:
		return &node{op: opSet, kids: listKids(inner)}, nil
	}
	if inner.op == opList { // {1, 2}
		return &node{op: opSet, kids: inner.kids}, nil
	}
	return inner, nil
}

func listKids(n *node) []*node {
	if n.op == opList {
		return n.kids
	}
	return []*node{n}
}

// arg reads one argument of \frac or \sqrt: a {group} or a single character (\frac12).
func (p *parser) arg() (*node, error) {
	t := p.peek()
	switch t.kind {
	case tOpen:
		if t.text == "{" {
			p.next()
			if err := p.enter(); err != nil {
				return nil, err
			}
			defer p.leave()
			inner, err := p.list()
			if err != nil {
				return nil, err
			}
			if !p.eat(tClose, "}") {
				return nil, errors.New("missing }")
			}
			return inner, nil
		}
	case tNum:
		if len(t.text) > 1 { // \frac12: one digit at a time
			p.toks[p.pos].text = t.text[1:]
			p.toks[p.pos].space = false
			return &node{op: opNum, r: big.NewRat(int64(t.text[0]-'0'), 1)}, nil
		}
		p.next()
		return &node{op: opNum, r: big.NewRat(int64(t.text[0]-'0'), 1)}, nil
	case tIdent, tCmd:
		return p.atom()
	}
	return nil, fmt.Errorf("missing argument near %q", t.text)
}

func (p *parser) command(name string) (*node, error) {
	switch name {
	case "frac", "binom":
		a, err := p.arg()
		if err != nil {
			return nil, err
		}
		b, err := p.arg()
		if err != nil {
			return nil, err
		}
		if name == "binom" {
			return &node{op: opFunc, name: "binom", kids: []*node{a, b}}, nil
		}
		return &node{op: opDiv, kids: []*node{a, b}}, nil
	case "sqrt":
		deg := numNode(2)
		if p.eat(tOpen, "[") {
			d, err := p.expr()
			if err != nil {
				return nil, err
			}
			if !p.eat(tClose, "]") {
				return nil, errors.New("missing ] in \\sqrt[n]")
			}
			deg = d
		}
		var x *node
		var err error
		if p.is(tOpen, "(") {
			p.next()
			x, err = p.bracket("(")
		} else {
			x, err = p.arg()
		}
		if err != nil {
			return nil, err
		}
		return &node{op: opPow, kids: []*node{x, {op: opDiv, kids: []*node{numNode(1), deg}}}}, nil
	case "pi":
		return &node{op: opConst, name: "pi"}, nil
	case "infty":
		return &node{op: opConst, name: "inf"}, nil
	case "emptyset":
		return &node{op: opSet}, nil
	}
	if strings.HasPrefix(name, "begin:") {
		return p.environment(strings.TrimPrefix(name, "begin:"))
	}
	if funcNames[name] || name == "det" {
		return p.function(name)
	}
	return nil, fmt.Errorf("unexpected \\%s", name)
}

// function reads \sin x, \sin(x), \sin^2 x, \sin^{-1} x, \log_2 8, \ln(x+1).
func (p *parser) function(name string) (*node, error) {
	var power, base *node
	for {
		if p.eat(tOp, "^") {
			e, err := p.power()
			if err != nil {
				return nil, err
			}
			power = e
			continue
		}
		if p.eat(tOp, "_") {
			b, err := p.arg()
			if err != nil {
				return nil, err
			}
			base = b
			continue
		}
		break
	}
	if power != nil && power.op == opNum && power.r.Cmp(big.NewRat(-1, 1)) == 0 && strings.Contains("sin cos tan", name) {
		name, power = "arc"+name, nil
	}
	var x *node
	var err error
	switch {
	case p.is(tOpen, "("):
		p.next()
		x, err = p.bracket("(")
	case p.is(tOpen, "{"):
		x, err = p.arg()
	default:
		// \sin 2x: the argument runs over numbers, letters and powers, not over another function
		x, err = p.power()
		for err == nil && (p.peek().kind == tNum || p.peek().kind == tIdent || p.is(tCmd, "pi")) {
			var f *node
			if f, err = p.power(); err == nil {
				x = mulNode(x, f)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if name == "lg" {
		name, base = "log", numNode(10)
	}
	n := &node{op: opFunc, name: name, kids: []*node{x}}
	if base != nil {
		n.kids = append(n.kids, base)
	}
	if power != nil {
		return &node{op: opPow, kids: []*node{n, power}}, nil
	}
	return n, nil
}

// environment reads matrices (any bracket style) and cases/aligned blocks (as lists).
func (p *parser) environment(env string) (*node, error) {
	if env == "array" && p.is(tOpen, "{") { // column spec {cc}
		for !p.is(tClose, "}") && p.peek().kind != tEOF {
			p.next()
		}
		p.next()
	}
	var rows [][]*node
	var row []*node
	var cell *node
	endRow := func() {
		row = append(row, cell)
		cell = nil
		for _, c := range row {
			if c != nil { // a trailing \\ leaves an empty row: skip it
				rows = append(rows, row)
				break
			}
		}
		row = nil
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tCmd && t.text == "end:"+env:
			p.next()
			endRow()
			return buildEnv(env, rows)
		case t.kind == tEOF:
			return nil, fmt.Errorf("missing \\end{%s}", env)
		case t.kind == tRowSep:
			p.next()
			endRow()
		case t.kind == tOp && t.text == "&":
			p.next()
			row = append(row, cell)
			cell = nil
		default:
			if cell != nil {
				return nil, fmt.Errorf("unexpected %q in \\begin{%s}", t.text, env)
			}
			c, err := p.rel()
			if err != nil {
				return nil, err
			}
			cell = c
			if len(rows)*len(row) > maxItems {
				return nil, errors.New("matrix too large")
			}
		}
	}
}

func buildEnv(env string, rows [][]*node) (*node, error) {
	if strings.HasSuffix(env, "matrix") || env == "array" {
		m := &node{op: opMatrix}
		for _, r := range rows {
			for _, c := range r {
				if c == nil {
					return nil, errors.New("empty matrix cell")
				}
			}
			m.kids = append(m.kids, &node{op: opTuple, kids: r, open: '[', close: ']'})
		}
		if len(m.kids) == 0 {
			return nil, errors.New("empty matrix")
		}
		return m, nil
	}
	var items []*node
	for _, r := range rows {
		for _, c := range r {
			if c != nil {
				items = append(items, c)
			}
		}
	}
	switch len(items) {
	case 0:
		return nil, fmt.Errorf("empty %s", env)
	case 1:
		return items[0], nil
	}
	return &node{op: opList, kids: items}, nil
}
