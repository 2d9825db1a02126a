package reward

import (
	"errors"
	"fmt"
	"math"
	"math/big"
)

// This file evaluates expression trees. Values stay exact rationals (math/big) as long as every
// step is rational — so 10^{400} ≠ 10^{500} and 10^{-400} ≠ 0 are decided exactly — and become
// float64 otherwise (roots of non-powers, π, trig). A float that overflowed or underflowed is
// marked lost: it is never equal to anything, the comparison is "unverifiable" instead.

// val is the value of an expression: exact when r != nil, else the float f.
type val struct {
	r    *big.Rat
	f    float64
	lost bool // a float result out of float64 range (or an exact one past maxExactBits)
}

// maxExactBits bounds exact numbers (numerator plus denominator bits, about 10^9864); a result
// past it is lost rather than computed, which keeps 2^{9999999} and 10^{10^{10}} cheap.
const maxExactBits = 1 << 15

var (
	errUndefined = errors.New("undefined (division by zero, or outside the domain)")
	errNotNumber = errors.New("not a number")
)

func exact(r *big.Rat) val { return val{r: r} }

// float returns the value as a float64, marking lost range.
func (v val) float() (float64, bool) {
	if v.r == nil {
		return v.f, v.lost
	}
	f, _ := v.r.Float64()
	lost := math.IsInf(f, 0) || f == 0 && v.r.Sign() != 0
	return f, lost
}

// floatVal wraps a float result. An infinity from finite inputs is overflow and, for products,
// quotients and powers (scaling ops), a zero from non-zero finite inputs is underflow: both lost.
func floatVal(f float64, inputsLost, scaling bool, inputs ...float64) (val, error) {
	if math.IsNaN(f) {
		return val{}, errUndefined
	}
	lost := inputsLost
	switch {
	case math.IsInf(f, 0) && !anyInf(inputs):
		lost = true
	case f == 0 && scaling && !anyInf(inputs):
		for _, x := range inputs {
			if x == 0 {
				return val{f: f, lost: inputsLost}, nil
			}
		}
		lost = true
	}
	return val{f: f, lost: lost}, nil
}

func anyInf(xs []float64) bool {
	for _, x := range xs {
		if math.IsInf(x, 0) {
			return true
		}
	}
	return false
}

func checkBits(r *big.Rat) val {
	if r.Num().BitLen()+r.Denom().BitLen() > maxExactBits {
		return val{f: math.Inf(r.Sign()), lost: true}
	}
	return exact(r)
}

// env assigns values to free variables (random points when comparing expressions).
type env struct {
	names []string
	vals  []val
}

func (e *env) lookup(name string) (val, bool) {
	if e == nil {
		return val{}, false
	}
	for i, n := range e.names {
		if n == name {
			return e.vals[i], true
		}
	}
	return val{}, false
}

// eval computes the value of n. Structures (tuples, sets, relations) and text are errNotNumber.
func eval(n *node, e *env) (val, error) {
	switch n.op {
	case opNum:
		return exact(n.r), nil
	case opSym:
		if v, ok := e.lookup(n.name); ok {
			return v, nil
		}
		return val{}, fmt.Errorf("free variable %s", n.name)
	case opConst:
		switch n.name {
		case "pi":
			return val{f: math.Pi}, nil
		case "e":
			return val{f: math.E}, nil
		}
		return val{f: math.Inf(1)}, nil
	case opAdd:
		acc, err := eval(n.kids[0], e)
		for _, k := range n.kids[1:] {
			if err != nil {
				return acc, err
			}
			var w val
			if w, err = eval(k, e); err == nil {
				acc, err = addVal(acc, w)
			}
		}
		return acc, err
	case opMul, opCall:
		acc, err := eval(n.kids[0], e)
		for _, k := range n.kids[1:] {
			if err != nil {
				return acc, err
			}
			var w val
			if w, err = eval(k, e); err == nil {
				acc, err = mulVal(acc, w)
			}
		}
		return acc, err
	case opDiv:
		a, err := eval(n.kids[0], e)
		if err != nil {
			return a, err
		}
		b, err := eval(n.kids[1], e)
		if err != nil {
			return b, err
		}
		return divVal(a, b)
	case opNeg:
		a, err := eval(n.kids[0], e)
		if err != nil {
			return a, err
		}
		return negVal(a), nil
	case opPow:
		a, err := eval(n.kids[0], e)
		if err != nil {
			return a, err
		}
		b, err := eval(n.kids[1], e)
		if err != nil {
			return b, err
		}
		return powVal(a, b)
	case opPct, opDeg:
		return eval(n.kids[0], e)
	case opFact:
		a, err := eval(n.kids[0], e)
		if err != nil {
			return a, err
		}
		return factVal(a)
	case opFunc:
		return evalFunc(n, e)
	}
	return val{}, errNotNumber
}

func addVal(a, b val) (val, error) {
	if a.r != nil && b.r != nil {
		return checkBits(new(big.Rat).Add(a.r, b.r)), nil
	}
	fa, la := a.float()
	fb, lb := b.float()
	return floatVal(fa+fb, la || lb, false, fa, fb)
}

func negVal(a val) val {
	if a.r != nil {
		return exact(new(big.Rat).Neg(a.r))
	}
	return val{f: -a.f, lost: a.lost}
}

func mulVal(a, b val) (val, error) {
	if a.r != nil && b.r != nil {
		return checkBits(new(big.Rat).Mul(a.r, b.r)), nil
	}
	if a.r != nil && a.r.Sign() == 0 || b.r != nil && b.r.Sign() == 0 {
		return exact(new(big.Rat)), nil // 0·π = 0 exactly
	}
	fa, la := a.float()
	fb, lb := b.float()
	return floatVal(fa*fb, la || lb, true, fa, fb)
}

func divVal(a, b val) (val, error) {
	if b.r != nil && b.r.Sign() == 0 || b.r == nil && b.f == 0 && !b.lost {
		return val{}, errUndefined
	}
	if a.r != nil && b.r != nil {
		return checkBits(new(big.Rat).Quo(a.r, b.r)), nil
	}
	if a.r != nil && a.r.Sign() == 0 {
		return exact(new(big.Rat)), nil
	}
	fa, la := a.float()
	fb, lb := b.float()
	return floatVal(fa/fb, la || lb, true, fa, fb)
}

// powVal is exact for a rational base and an integer exponent whose result fits maxExactBits,
// and for rational roots of perfect powers (\sqrt{1/9} = 1/3, 8^{2/3} = 4).
func powVal(a, b val) (val, error) {
	if a.r != nil && b.r != nil {
		if v, ok, err := exactPow(a.r, b.r); ok || err != nil {
			return v, err
		}
	}
	fa, la := a.float()
	fb, lb := b.float()
	if fa < 0 && b.r != nil && !b.r.IsInt() && b.r.Denom().IsInt64() && b.r.Denom().Int64()%2 == 1 {
		// odd roots of negatives are real: (-8)^{1/3} = -2
		f := -math.Pow(-fa, fb)
		if b.r.Num().Bit(0) == 0 {
			f = -f
		}
		return floatVal(f, la || lb, true, fa, fb)
	}
	return floatVal(math.Pow(fa, fb), la || lb, true, fa, fb)
}

func exactPow(base, e *big.Rat) (val, bool, error) {
	if base.Sign() == 0 {
		switch e.Sign() {
		case -1:
			return val{}, false, errUndefined
		case 0:
			return exact(big.NewRat(1, 1)), true, nil
		}
		return exact(new(big.Rat)), true, nil
	}
	if base.Cmp(big.NewRat(1, 1)) == 0 {
		return exact(big.NewRat(1, 1)), true, nil
	}
	if !e.Num().IsInt64() || !e.Denom().IsInt64() || e.Denom().Int64() > 64 {
		return val{}, false, nil
	}
	p, q := e.Num().Int64(), e.Denom().Int64()
	if base.Cmp(big.NewRat(-1, 1)) == 0 && q == 1 {
		if p%2 == 0 {
			return exact(big.NewRat(1, 1)), true, nil
		}
		return exact(big.NewRat(-1, 1)), true, nil
	}
	// the q-th root first, when it is exact
	num, den := new(big.Int).Abs(base.Num()), base.Denom()
	neg := base.Sign() < 0
	if q > 1 {
		if neg && q%2 == 0 {
			return val{}, false, errUndefined
		}
		rn, ok1 := intRoot(num, q)
		rd, ok2 := intRoot(den, q)
		if !ok1 || !ok2 {
			return val{}, false, nil
		}
		num, den = rn, rd
	}
	ap := p
	if ap < 0 {
		ap = -ap
	}
	if ap > 2*maxExactBits || int64(num.BitLen()+den.BitLen())*ap > 2*maxExactBits { // first test: no int64 overflow
		f := math.Inf(1)
		if p < 0 {
			f = 0
		}
		if neg && ap%2 == 1 {
			f = -f
		}
		return val{f: f, lost: true}, true, nil
	}
	n := new(big.Int).Exp(num, big.NewInt(ap), nil)
	d := new(big.Int).Exp(den, big.NewInt(ap), nil)
	if p < 0 {
		n, d = d, n
	}
	if neg && ap%2 == 1 {
		n.Neg(n)
	}
	return checkBits(new(big.Rat).SetFrac(n, d)), true, nil
}

// intRoot returns the exact integer n-th root of v ≥ 0 when there is one.
func intRoot(v *big.Int, n int64) (*big.Int, bool) {
	if n == 1 || v.Sign() == 0 {
		return new(big.Int).Set(v), true
	}
	if n == 2 {
		r := new(big.Int).Sqrt(v)
		return r, new(big.Int).Mul(r, r).Cmp(v) == 0
	}
	if v.BitLen() > maxExactBits {
		return nil, false
	}
	// Newton's method on integers from a float estimate just above the root; it converges in a
	// few steps, and the cap keeps a bad estimate from looping.
	bn := big.NewInt(n)
	r := rootEstimate(v, n)
	for i := 0; i < 100; i++ {
		t := new(big.Int).Exp(r, big.NewInt(n-1), nil)
		t.Quo(v, t)
		t.Add(t, new(big.Int).Mul(r, big.NewInt(n-1)))
		t.Quo(t, bn)
		if t.Cmp(r) >= 0 {
			break
		}
		r = t
	}
	return r, new(big.Int).Exp(r, bn, nil).Cmp(v) == 0
}

// rootEstimate returns an integer slightly above v^(1/n): v = m·2^e, so the root is
// m^(1/n)·2^((e mod n)/n)·2^(e div n), computed in float64 and scaled back.
func rootEstimate(v *big.Int, n int64) *big.Int {
	if f, _ := new(big.Float).SetInt(v).Float64(); f < 1e15 {
		return new(big.Int).Add(big.NewInt(int64(math.Pow(f, 1/float64(n))*(1+1e-9))), big.NewInt(2))
	}
	mant := new(big.Float)
	e := int64(new(big.Float).SetInt(v).MantExp(mant))
	m, _ := mant.Float64()
	x := math.Pow(m, 1/float64(n)) * math.Pow(2, float64(e%n)/float64(n)) * (1 + 1e-9)
	est, _ := new(big.Float).SetMantExp(big.NewFloat(x), int(e/n)).Int(nil)
	return est.Add(est, big.NewInt(2))
}

func factVal(a val) (val, error) {
	if a.r == nil || !a.r.IsInt() || a.r.Sign() < 0 {
		return val{}, errUndefined
	}
	if !a.r.Num().IsInt64() || a.r.Num().Int64() > 3000 {
		return val{f: math.Inf(1), lost: true}, nil
	}
	return checkBits(new(big.Rat).SetInt(new(big.Int).MulRange(1, a.r.Num().Int64()))), nil
}

func evalFunc(n *node, e *env) (val, error) {
	x, err := eval(n.kids[0], e)
	if err != nil {
		return x, err
	}
	switch n.name {
	case "abs":
		if x.r != nil {
			return exact(new(big.Rat).Abs(x.r)), nil
		}
		return val{f: math.Abs(x.f), lost: x.lost}, nil
	case "floor", "ceil":
		if x.r != nil {
			q := new(big.Int).Div(x.r.Num(), x.r.Denom()) // Euclidean: floor for a positive denominator
			if n.name == "ceil" && !x.r.IsInt() {
				q.Add(q, big.NewInt(1))
			}
			return exact(new(big.Rat).SetInt(q)), nil
		}
		if n.name == "floor" {
			return val{f: math.Floor(x.f), lost: x.lost}, nil
		}
		return val{f: math.Ceil(x.f), lost: x.lost}, nil
	case "binom":
		k, err := eval(n.kids[1], e)
		if err != nil {
			return k, err
		}
		if x.r == nil || k.r == nil || !x.r.IsInt() || !k.r.IsInt() || !x.r.Num().IsInt64() || !k.r.Num().IsInt64() {
			return val{}, errUndefined
		}
		nn, kk := x.r.Num().Int64(), k.r.Num().Int64()
		if nn > 5000 || nn < 0 {
			return val{f: math.Inf(1), lost: true}, nil
		}
		if kk < 0 || kk > nn {
			return exact(new(big.Rat)), nil
		}
		return checkBits(new(big.Rat).SetInt(new(big.Int).Binomial(nn, kk))), nil
	}
	f, lost := x.float()
	if lost {
		return val{f: f, lost: true}, nil
	}
	if n.kids[0].op == opDeg && isTrig(n.name) {
		f *= math.Pi / 180
	}
	var y float64
	switch n.name {
	case "sin":
		y = math.Sin(f)
	case "cos":
		y = math.Cos(f)
	case "tan":
		y = math.Tan(f)
	case "sec":
		y = 1 / math.Cos(f)
	case "csc":
		y = 1 / math.Sin(f)
	case "cot":
		y = 1 / math.Tan(f)
	case "arcsin":
		y = math.Asin(f)
	case "arccos":
		y = math.Acos(f)
	case "arctan":
		y = math.Atan(f)
	case "sinh":
		y = math.Sinh(f)
	case "cosh":
		y = math.Cosh(f)
	case "tanh":
		y = math.Tanh(f)
	case "exp":
		y = math.Exp(f)
	case "ln", "log":
		if f <= 0 {
			return val{}, errUndefined
		}
		y = math.Log(f)
		if len(n.kids) > 1 {
			b, err := eval(n.kids[1], e)
			if err != nil {
				return b, err
			}
			fb, lb := b.float()
			if lb || fb <= 0 || fb == 1 {
				return val{}, errUndefined
			}
			y /= math.Log(fb)
			if x.r != nil && b.r != nil { // log_2 8 = 3 exactly
				if r := new(big.Rat).SetFloat64(math.Round(y)); r != nil && math.Abs(y-math.Round(y)) < 1e-9 {
					if v, ok, _ := exactPow(b.r, r); ok && v.r != nil && v.r.Cmp(x.r) == 0 {
						return exact(r), nil
					}
				}
			}
		}
	case "det":
		return val{}, errNotNumber
	default:
		return val{}, fmt.Errorf("unknown function %s", n.name)
	}
	if math.IsInf(y, 0) && !math.IsInf(f, 0) && n.name != "exp" && n.name != "sinh" && n.name != "cosh" {
		return val{}, errUndefined // a pole: tan(π/2), 1/sin(0)
	}
	return floatVal(y, false, false, f)
}

func isTrig(name string) bool {
	switch name {
	case "sin", "cos", "tan", "sec", "csc", "cot":
		return true
	}
	return false
}
