package reward

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
)

// This file decides whether two parsed answers are equivalent. Numbers compare as exact
// rationals when both are rational and within a relative 1e-6 otherwise; expressions with free
// variables compare by evaluating both sides at seeded random points (exactly, with math/big,
// while the expressions are rational functions — polynomial identity testing — and as floats
// otherwise), skipping points where either side is undefined (poles, logs of negatives).
// Structures compare by their rules: sets and bare lists order-free, tuples and intervals in
// order with matching brackets, matrices entry by entry, equations up to side order and a
// constant factor, inequalities after normalising their direction.

// verdict is the outcome of one comparison; decided=false means unverifiable.
type verdict struct {
	eq, decided bool
	reason      string
}

func yes(reason string) verdict { return verdict{eq: true, decided: true, reason: reason} }
func no(format string, a ...any) verdict {
	return verdict{decided: true, reason: fmt.Sprintf(format, a...)}
}
func unsure(format string, a ...any) verdict {
	return verdict{reason: ReasonUnverifiable + ": " + fmt.Sprintf(format, a...)}
}

const (
	constTol    = 5e-7 // numbers that are not both rational: |a-b| <= constTol·max(1,|a|,|b|), about "equal to 6 decimals" as Math-Verify rounds
	pointTol    = 1e-8 // float values at random points, same form
	minPoints   = 3    // valid random points needed to call two expressions equal
	maxVars     = 12
	maxPairWork = 4096 // element pairs tried when matching two sets
	maxPMTerms  = 3    // ± signs expanded (2^3 values)
)

// samplePoints are the seeded random points (rationals in ±[0.6, 30]): three positive, two
// negative and one of mixed signs per variable, so √(x²) = x is caught as unequal.
var samplePoints = func() [][maxVars]*big.Rat {
	rng := rand.New(rand.NewPCG(20240615, 15))
	pts := make([][maxVars]*big.Rat, 6)
	for i := range pts {
		for j := range pts[i] {
			num := int64(5 + rng.IntN(56))
			den := int64(2 + rng.IntN(8))
			if i == 3 || i == 4 || i == 5 && j%2 == 1 {
				num = -num
			}
			pts[i][j] = big.NewRat(num, den)
		}
	}
	return pts
}()

// comparer compares answers under a work budget: nested sets can otherwise make matching
// exponential.
type comparer struct{ work int }

// maxCompareWork bounds the element comparisons of one MathEqual call.
const maxCompareWork = 5000

// equal compares two answers.
func (cm *comparer) equal(a, b *node) verdict {
	if cm.work++; cm.work > maxCompareWork {
		return unsure("comparison too large")
	}
	a, b = unwrapIn(a), unwrapIn(b)
	var okA, okB bool
	if a, okA = expandPM(a); !okA {
		return unsure("too many ± signs")
	}
	if b, okB = expandPM(b); !okB {
		return unsure("too many ± signs")
	}
	switch {
	case a.op == opRel && b.op == opRel:
		return cm.relEqual(a, b)
	case a.op == opRel:
		return cm.relVsValue(a, b)
	case b.op == opRel:
		return cm.relVsValue(b, a)
	}
	ca, cb := isCollection(a.op), isCollection(b.op)
	switch {
	case ca && cb:
		return cm.collectionEqual(a, b)
	case ca || cb:
		return no("different structure: %s vs %s", shapeName(a), shapeName(b))
	}
	if a.op == opPct || b.op == opPct {
		return cm.percentEqual(a, b)
	}
	return cm.exprEqual(a, b)
}

// unwrapIn turns "x \in S" into S.
func unwrapIn(n *node) *node {
	if n.op == opRel && len(n.rels) == 1 && n.rels[0] == "in" {
		return n.kids[1]
	}
	return n
}

func isCollection(op opKind) bool {
	return op == opList || op == opSet || op == opTuple || op == opMatrix || op == opUnion
}

func shapeName(n *node) string {
	switch n.op {
	case opList:
		return "list"
	case opSet:
		return "set"
	case opTuple:
		return "tuple"
	case opMatrix:
		return "matrix"
	case opUnion:
		return "union"
	case opRel:
		return "relation"
	case opText:
		return "text"
	}
	return "expression"
}

// expandPM replaces an expression with ± by the list of its values (1 ± √2 → 1+√2, 1-√2).
func expandPM(n *node) (*node, bool) {
	if isCollection(n.op) || !hasPM(n) {
		return n, true
	}
	vs := pmVariants(n)
	if len(vs) > 1<<maxPMTerms {
		return nil, false
	}
	return &node{op: opList, kids: vs}, true
}

func hasPM(n *node) bool {
	if n.op == opPM {
		return true
	}
	for _, k := range n.kids {
		if hasPM(k) {
			return true
		}
	}
	return false
}

func pmVariants(n *node) []*node {
	if !hasPM(n) {
		return []*node{n}
	}
	if n.op == opPM {
		var out []*node
		for _, x := range pmVariants(n.kids[0]) {
			for _, y := range pmVariants(n.kids[1]) {
				out = append(out, &node{op: opAdd, kids: []*node{x, y}},
					&node{op: opAdd, kids: []*node{x, {op: opNeg, kids: []*node{y}}}})
				if len(out) > 1<<maxPMTerms {
					return out
				}
			}
		}
		return out
	}
	out := []*node{n}
	for i, k := range n.kids {
		if !hasPM(k) {
			continue
		}
		var next []*node
		for _, o := range out {
			for _, v := range pmVariants(k) {
				c := *o
				c.kids = append([]*node(nil), o.kids...)
				c.kids[i] = v
				next = append(next, &c)
			}
		}
		if out = next; len(out) > 1<<maxPMTerms {
			return out
		}
	}
	return out
}

// collectionEqual compares lists, sets, tuples, intervals, matrices and unions.
func (cm *comparer) collectionEqual(a, b *node) verdict {
	setLike := func(op opKind) bool { return op == opList || op == opSet }
	switch {
	case setLike(a.op) && setLike(b.op), a.op == opUnion && b.op == opUnion:
		return cm.multisetEqual(a.kids, b.kids)
	case a.op == opTuple && b.op == opTuple:
		if a.open != b.open || a.close != b.close {
			return no("brackets differ: %c%c vs %c%c", a.open, a.close, b.open, b.close)
		}
		return cm.seqEqual(a.kids, b.kids)
	case a.op == opMatrix && b.op == opMatrix:
		if len(a.kids) != len(b.kids) {
			return no("%d rows vs %d", len(a.kids), len(b.kids))
		}
		for i := range a.kids {
			if v := cm.seqEqual(a.kids[i].kids, b.kids[i].kids); !v.eq {
				v.reason = fmt.Sprintf("row %d: %s", i+1, v.reason)
				return v
			}
		}
		return yes("equal matrices")
	}
	return no("different structure: %s vs %s", shapeName(a), shapeName(b))
}

func (cm *comparer) seqEqual(a, b []*node) verdict {
	if len(a) != len(b) {
		return no("%d elements vs %d", len(a), len(b))
	}
	for i := range a {
		if v := cm.equal(a[i], b[i]); !v.eq {
			v.reason = fmt.Sprintf("element %d: %s", i+1, v.reason)
			return v
		}
	}
	return yes("equal element-wise")
}

// multisetEqual matches elements greedily; order does not matter, multiplicity does.
func (cm *comparer) multisetEqual(a, b []*node) verdict {
	if len(a) != len(b) {
		return no("%d elements vs %d", len(a), len(b))
	}
	if len(a)*len(b) > maxPairWork {
		return unsure("sets too large to match")
	}
	used := make([]bool, len(b))
	undecided := false
	for _, x := range a {
		found := false
		for j, y := range b {
			if used[j] {
				continue
			}
			v := cm.equal(x, y)
			if v.eq {
				used[j], found = true, true
				break
			}
			undecided = undecided || !v.decided
		}
		if !found {
			if undecided {
				return unsure("set element %s could not be matched", describe(x))
			}
			return no("set element %s has no match", describe(x))
		}
	}
	return yes("equal as sets")
}

func describe(n *node) string {
	if v, err := eval(n, nil); err == nil {
		return valString(v)
	}
	return shapeName(n)
}

// percentEqual: p% matches p, and p/100 (50% = 50 = 0.5).
func (cm *comparer) percentEqual(a, b *node) verdict {
	strip := func(n *node) *node {
		if n.op == opPct {
			return n.kids[0]
		}
		return n
	}
	first := cm.exprEqual(strip(a), strip(b))
	if first.eq {
		return first
	}
	hundred := numNode(100)
	if a.op == opPct && b.op != opPct {
		if v := cm.exprEqual(&node{op: opDiv, kids: []*node{a.kids[0], hundred}}, b); v.eq {
			return yes("equal as a percentage")
		}
	}
	if b.op == opPct && a.op != opPct {
		if v := cm.exprEqual(a, &node{op: opDiv, kids: []*node{b.kids[0], hundred}}); v.eq {
			return yes("equal as a percentage")
		}
	}
	return first
}

// relVsValue compares a relation with a plain value: "x = 3" vs "3" compares 3 (also
// "f(x) = 2x+3", "(p,q) = (3,2)"); "x ≥ 5" vs "[5, ∞)" compares intervals.
func (cm *comparer) relVsValue(r, v *node) verdict {
	if allRels(r, "=") {
		if isAssignLHS(r.kids[0]) {
			return cm.equal(r.kids[len(r.kids)-1], v)
		}
		if len(r.kids) == 2 && isAssignLHS(r.kids[1]) {
			return cm.equal(r.kids[0], v)
		}
		return no("an equation vs a value")
	}
	if iv, ok := ineqToInterval(r); ok && (v.op == opTuple || v.op == opUnion) {
		return cm.equal(iv, v)
	}
	return no("different structure: %s vs %s", shapeName(r), shapeName(v))
}

func allRels(r *node, op string) bool {
	for _, x := range r.rels {
		if x != op {
			return false
		}
	}
	return true
}

// isAssignLHS reports a left side that only names the answer: x, a_1, f(x), (p, q).
func isAssignLHS(n *node) bool {
	switch n.op {
	case opSym:
		return true
	case opCall, opTuple:
		for _, k := range n.kids {
			if k.op != opSym {
				return false
			}
		}
		return true
	}
	return false
}

// ineqToInterval turns "x < 3", "5 ≤ x" or "1 < x ≤ 3" into the interval of x.
func ineqToInterval(r *node) (*node, bool) {
	r = normIneq(r)
	if r == nil {
		return nil, false
	}
	inf := &node{op: opConst, name: "inf"}
	ninf := &node{op: opNeg, kids: []*node{inf}}
	side := func(op string, lo bool) byte {
		switch {
		case op == "<=" && lo:
			return '['
		case op == "<=":
			return ']'
		case lo:
			return '('
		}
		return ')'
	}
	switch len(r.kids) {
	case 2:
		if r.kids[0].op == opSym && !hasVars(r.kids[1]) {
			return &node{op: opTuple, kids: []*node{ninf, r.kids[1]}, open: '(', close: side(r.rels[0], false)}, true
		}
		if r.kids[1].op == opSym && !hasVars(r.kids[0]) {
			return &node{op: opTuple, kids: []*node{r.kids[0], inf}, open: side(r.rels[0], true), close: ')'}, true
		}
	case 3:
		if r.kids[1].op == opSym && !hasVars(r.kids[0]) && !hasVars(r.kids[2]) {
			return &node{op: opTuple, kids: []*node{r.kids[0], r.kids[2]}, open: side(r.rels[0], true), close: side(r.rels[1], false)}, true
		}
	}
	return nil, false
}

// normIneq rewrites a chain of > / ≥ as the reversed chain of < / ≤; nil if r is not an
// inequality chain of one direction.
func normIneq(r *node) *node {
	up, down := 0, 0
	for _, op := range r.rels {
		switch op {
		case "<", "<=":
			up++
		case ">", ">=":
			down++
		default:
			return nil
		}
	}
	if up > 0 && down > 0 {
		return nil
	}
	if down == 0 {
		return r
	}
	n := &node{op: opRel}
	for i := len(r.kids) - 1; i >= 0; i-- {
		n.kids = append(n.kids, r.kids[i])
	}
	for i := len(r.rels) - 1; i >= 0; i-- {
		n.rels = append(n.rels, map[string]string{">": "<", ">=": "<="}[r.rels[i]])
	}
	return n
}

func (cm *comparer) relEqual(a, b *node) verdict {
	if ia, ib := normIneq(a), normIneq(b); ia != nil && ib != nil {
		if strings.Join(ia.rels, " ") != strings.Join(ib.rels, " ") {
			return no("inequalities differ: %s vs %s", strings.Join(ia.rels, " "), strings.Join(ib.rels, " "))
		}
		if len(ia.kids) == 2 { // l < r  ⇔  l - r < 0, equal up to a positive factor
			if v := cm.seqEqual(ia.kids, ib.kids); v.eq {
				return yes("equal inequalities")
			}
			return cm.proportional(diff(ia.kids[0], ia.kids[1]), diff(ib.kids[0], ib.kids[1]), true)
		}
		return cm.seqEqual(ia.kids, ib.kids)
	}
	if strings.Join(a.rels, " ") != strings.Join(b.rels, " ") {
		return no("relations differ: %s vs %s", strings.Join(a.rels, " "), strings.Join(b.rels, " "))
	}
	if len(a.kids) != 2 {
		return cm.seqEqual(a.kids, b.kids)
	}
	if v := cm.seqEqual(a.kids, b.kids); v.eq {
		return yes("equal equations")
	}
	if v := cm.seqEqual(a.kids, []*node{b.kids[1], b.kids[0]}); v.eq { // a = b is b = a
		return yes("equal equations (sides swapped)")
	}
	if a.rels[0] != "=" && a.rels[0] != "!=" {
		return no("relations differ")
	}
	if isAssignLHS(a.kids[0]) && isAssignLHS(b.kids[0]) && !hasVars(a.kids[1]) && !hasVars(b.kids[1]) {
		return no("different names or values") // x = 3 vs y = 3, x = 3 vs x = 4
	}
	return cm.proportional(diff(a.kids[0], a.kids[1]), diff(b.kids[0], b.kids[1]), false)
}

func diff(l, r *node) *node {
	return &node{op: opAdd, kids: []*node{l, {op: opNeg, kids: []*node{r}}}}
}

// proportional decides d1 = k·d2 for a constant k ≠ 0 (k > 0 when positive), at random points:
// 2x + 2y - 2 = 0 is the equation x + y - 1 = 0.
func (cm *comparer) proportional(d1, d2 *node, positive bool) verdict {
	vars, ok := freeVars(d1, d2)
	if !ok {
		return unsure("too many variables")
	}
	if len(vars) == 0 {
		return no("relations between different numbers")
	}
	var k val
	haveK, valid := false, 0
	for _, pt := range samplePoints {
		e := &env{names: vars, vals: pointVals(pt, len(vars))}
		v1, err1 := eval(d1, e)
		v2, err2 := eval(d2, e)
		if err1 != nil || err2 != nil || v1.lost || v2.lost {
			if isStructural(err1) || isStructural(err2) {
				return unsure("cannot evaluate the relation")
			}
			continue
		}
		z1, z2 := isZero(v1), isZero(v2)
		if z1 != z2 {
			return no("relations differ at %s", pointString(vars, pt))
		}
		if z1 {
			continue
		}
		if !haveK {
			var err error
			if k, err = divVal(v1, v2); err != nil {
				continue
			}
			if f, _ := k.float(); positive && f < 0 {
				return no("inequalities point in opposite directions")
			}
			haveK = true
			valid++
			continue
		}
		kv2, err := mulVal(k, v2)
		if err != nil {
			continue
		}
		if c := compareVals(v1, kv2, pointTol); !c.eq {
			return no("relations differ at %s", pointString(vars, pt))
		}
		valid++
	}
	if valid < minPoints {
		return unsure("too few points where both relations are defined")
	}
	return yes("equivalent relations")
}

func isZero(v val) bool {
	if v.r != nil {
		return v.r.Sign() == 0
	}
	return math.Abs(v.f) < 1e-12
}

func isStructural(err error) bool {
	return err != nil && err != errUndefined
}

// exprEqual compares two scalar expressions (numbers, or formulas in free variables).
func (cm *comparer) exprEqual(a, b *node) verdict {
	if a.op == opText || b.op == opText {
		ta, okA := textOf(a)
		tb, okB := textOf(b)
		switch {
		case okA && okB && ta == tb:
			return yes("equal as text")
		case okA && okB:
			return no("different text: %q vs %q", clip(ta, 30), clip(tb, 30))
		}
		return no("different structure: %s vs %s", shapeName(a), shapeName(b))
	}
	if a.op == opBased || b.op == opBased {
		return basedEqual(a, b)
	}
	vars, ok := freeVars(a, b)
	if !ok {
		return unsure("too many variables")
	}
	if len(vars) == 0 {
		va, errA := eval(a, nil)
		vb, errB := eval(b, nil)
		switch {
		case errA != nil && errB != nil:
			return unsure("neither side evaluates (%v; %v)", errA, errB)
		case errA != nil:
			return no("answer does not evaluate (%v); reference is %s", errA, valString(vb))
		case errB != nil:
			return unsure("reference does not evaluate (%v)", errB)
		}
		return compareVals(va, vb, constTol)
	}
	valid, exactAll := 0, true
	for _, pt := range samplePoints {
		e := &env{names: vars, vals: pointVals(pt, len(vars))}
		va, errA := eval(a, e)
		vb, errB := eval(b, e)
		if errA != nil || errB != nil || va.lost || vb.lost {
			if isStructural(errA) || isStructural(errB) {
				return unsure("cannot evaluate (%v)", firstErr(errA, errB))
			}
			continue // a pole or outside the domain of one side: try the next point
		}
		c := compareVals(va, vb, pointTol)
		if !c.decided {
			continue
		}
		if !c.eq {
			return no("differ at %s: %s vs %s", pointString(vars, pt), valString(va), valString(vb))
		}
		exactAll = exactAll && va.r != nil && vb.r != nil
		valid++
	}
	if valid < minPoints {
		return unsure("defined at only %d of %d random points", valid, len(samplePoints))
	}
	if exactAll {
		return yes(fmt.Sprintf("equal as rational functions (exact at %d random points)", valid))
	}
	return yes(fmt.Sprintf("equal at %d random points", valid))
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// textOf returns the comparable text of a text answer or a bare name (\text{B} vs B).
func textOf(n *node) (string, bool) {
	switch n.op {
	case opText:
		return n.name, true
	case opSym:
		if !strings.HasPrefix(n.name, `\`) {
			return strings.ToLower(n.name), true
		}
	}
	return "", false
}

// basedEqual compares numbers in a base: 4210_7 = 4210_{7}, and 4210 (base left implicit).
func basedEqual(a, b *node) verdict {
	digits := func(n *node) (string, bool) {
		switch n.op {
		case opBased:
			return n.name, true
		case opNum:
			if n.r.IsInt() {
				return n.r.RatString(), true
			}
		}
		return "", false
	}
	da, okA := digits(a)
	db, okB := digits(b)
	if !okA || !okB {
		return no("a number in a base vs %s", shapeName(b))
	}
	if a.op != opBased {
		db, _, _ = strings.Cut(db, "_")
	}
	if b.op != opBased {
		da, _, _ = strings.Cut(da, "_")
	}
	if da == db {
		return yes("equal numbers in base notation")
	}
	return no("%s != %s", da, db)
}

// compareVals: exact rationals exactly, floats within tol; a lost float is never equal.
func compareVals(a, b val, tol float64) verdict {
	if a.r != nil && b.r != nil {
		if a.r.Cmp(b.r) == 0 {
			return yes("equal as exact rationals")
		}
		return no("%s != %s", valString(a), valString(b))
	}
	fa, la := a.float()
	fb, lb := b.float()
	switch {
	case la || lb:
		if !la && math.IsInf(fa, 0) || !lb && math.IsInf(fb, 0) {
			return no("infinity vs a finite number")
		}
		return unsure("a value is beyond float64 range")
	case math.IsInf(fa, 0) || math.IsInf(fb, 0):
		if fa == fb {
			return yes("both infinite")
		}
		return no("%s != %s", valString(a), valString(b))
	}
	scale := math.Max(1, math.Max(math.Abs(fa), math.Abs(fb)))
	if math.Abs(fa-fb) <= tol*scale {
		if tol == constTol {
			return yes("equal within 5e-7")
		}
		return yes("equal within 1e-8")
	}
	return no("%s != %s", valString(a), valString(b))
}

func valString(v val) string {
	if v.r != nil {
		if v.r.Num().BitLen() > 200 || v.r.Denom().BitLen() > 200 {
			f, _ := v.float()
			return fmt.Sprintf("%.9g (exact)", f)
		}
		return v.r.RatString()
	}
	return fmt.Sprintf("%.9g", v.f)
}

func pointVals(pt [maxVars]*big.Rat, n int) []val {
	out := make([]val, n)
	for i := range out {
		out[i] = exact(pt[i])
	}
	return out
}

func pointString(vars []string, pt [maxVars]*big.Rat) string {
	var b strings.Builder
	for i, v := range vars {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v + " = " + pt[i].RatString())
	}
	return b.String()
}

// freeVars lists the variables of a and b in order of appearance; false past maxVars.
func freeVars(a, b *node) ([]string, bool) {
	var out []string
	var walk func(n *node) bool
	walk = func(n *node) bool {
		if n.op == opSym {
			for _, v := range out {
				if v == n.name {
					return true
				}
			}
			out = append(out, n.name)
			return len(out) <= maxVars
		}
		for _, k := range n.kids {
			if !walk(k) {
				return false
			}
		}
		return true
	}
	return out, walk(a) && walk(b)
}

func hasVars(n *node) bool {
	if n.op == opSym {
		return true
	}
	for _, k := range n.kids {
		if hasVars(k) {
			return true
		}
	}
	return false
}
