package reward

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// num is a value of a parsed answer: an exact rational when every step was rational, otherwise a
// float64 (square roots of non-squares, \pi, \infty).
type num struct {
	r     *big.Rat
	f     float64
	exact bool
}

func exactNum(r *big.Rat) num { return num{r: r, exact: true} }
func floatNum(f float64) num  { return num{f: f} }

func (n num) float() float64 {
	if n.exact {
		f, _ := n.r.Float64()
		return f
	}
	return n.f
}

// floatTol is the relative tolerance for values that are not both exact rationals: equal when
// |a-b| <= floatTol * max(1, |a|, |b|) (about "equal to 6 decimals", as Math-Verify rounds).
const floatTol = 1e-6

// equalNum compares exactly when both are rational, else with floatTol; infinities must match.
func equalNum(a, b num) bool {
	if a.exact && b.exact {
		return a.r.Cmp(b.r) == 0
	}
	fa, fb := a.float(), b.float()
	if math.IsNaN(fa) || math.IsNaN(fb) {
		return false
	}
	if math.IsInf(fa, 0) || math.IsInf(fb, 0) {
		return fa == fb
	}
	scale := math.Max(1, math.Max(math.Abs(fa), math.Abs(fb)))
	return math.Abs(fa-fb) <= floatTol*scale
}

// exprParser evaluates the arithmetic subset of LaTeX found in final answers:
// numbers (12, 3.5, .5, 1.5e3), + - * / ^, \cdot \times \div, parentheses and braces, \frac{a}{b},
// \sqrt{x}, \sqrt[n]{x}, \pi, \infty, and implicit multiplication before a bracket or command
// (2\pi, 3\sqrt{2}, 2(3+1)). Anything else (a variable, an unknown command) is an error, which the
// comparator reports as unverifiable.
type exprParser struct {
	s   string
	pos int
}

func evalExpr(s string) (num, error) {
	s = strings.ReplaceAll(s, " ", "")
	if s == "" {
		return num{}, fmt.Errorf("empty")
	}
	p := &exprParser{s: s}
	v, err := p.sum()
	if err != nil {
		return num{}, err
	}
	if p.pos != len(p.s) {
		return num{}, fmt.Errorf("cannot read %q", clip(p.s[p.pos:], 20))
	}
	return v, nil
}

func (p *exprParser) peek(prefix string) bool { return strings.HasPrefix(p.s[p.pos:], prefix) }

func (p *exprParser) eat(prefix string) bool {
	if p.peek(prefix) {
		p.pos += len(prefix)
		return true
	}
	return false
}

func (p *exprParser) sum() (num, error) {
	v, err := p.term()
	if err != nil {
		return v, err
	}
	for {
		switch {
		case p.eat("+"):
			w, err := p.term()
			if err != nil {
				return v, err
			}
			v = add(v, w, 1)
		case p.eat("-"):
			w, err := p.term()
			if err != nil {
				return v, err
			}
			v = add(v, w, -1)
		default:
			return v, nil
		}
	}
}

func (p *exprParser) term() (num, error) {
	v, err := p.unary()
	if err != nil {
		return v, err
	}
	for {
		var div bool
		switch {
		case p.eat("*"), p.eat(`\cdot`), p.eat(`\times`):
		case p.eat("/"), p.eat(`\div`):
			div = true
		case p.startsAtom():
			// implicit multiplication: 2\pi, 3\sqrt{2}, 2(1+1)
		default:
			return v, nil
		}
		w, err := p.unary()
		if err != nil {
			return v, err
		}
		if div {
			if v, err = quo(v, w); err != nil {
				return v, err
			}
		} else {
			v = mul(v, w)
		}
	}
}

func (p *exprParser) startsAtom() bool {
	return p.peek("(") || p.peek("{") || p.peek(`\frac`) || p.peek(`\sqrt`) || p.peek(`\pi`)
}

func (p *exprParser) unary() (num, error) {
	if p.eat("-") {
		v, err := p.unary()
		return neg(v), err
	}
	if p.eat("+") {
		return p.unary()
	}
	return p.power()
}

func (p *exprParser) power() (num, error) {
	base, err := p.atom()
	if err != nil {
		return base, err
	}
	if !p.eat("^") {
		return base, nil
	}
	var e num
	if p.peek("{") || p.peek("(") {
		e, err = p.atom()
	} else if p.eat("-") {
		e, err = p.atom()
		e = neg(e)
	} else {
		e, err = p.atom()
	}
	if err != nil {
		return e, err
	}
	return pow(base, e)
}

func (p *exprParser) group(open, close string) (num, error) {
	if !p.eat(open) {
		return num{}, fmt.Errorf("expected %s at %d", open, p.pos)
	}
	v, err := p.sum()
	if err != nil {
		return v, err
	}
	if !p.eat(close) {
		return v, fmt.Errorf("missing %s", close)
	}
	return v, nil
}

func (p *exprParser) atom() (num, error) {
	switch {
	case p.peek("("):
		return p.group("(", ")")
	case p.peek("{"):
		return p.group("{", "}")
	case p.eat(`\frac`):
		a, err := p.group("{", "}")
		if err != nil {
			return a, err
		}
		b, err := p.group("{", "}")
		if err != nil {
			return b, err
		}
		return quo(a, b)
	case p.eat(`\sqrt`):
		deg := exactNum(big.NewRat(2, 1))
		if p.peek("[") {
			var err error
			if deg, err = p.group("[", "]"); err != nil {
				return deg, err
			}
		}
		x, err := p.group("{", "}")
		if err != nil {
			return x, err
		}
		return root(x, deg)
	case p.eat(`\pi`):
		return floatNum(math.Pi), nil
	case p.eat(`\infty`):
		return floatNum(math.Inf(1)), nil
	}
	return p.number()
}

func (p *exprParser) number() (num, error) {
	start := p.pos
	digitsAt := func() int {
		n := 0
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	n := digitsAt()
	if p.pos < len(p.s) && p.s[p.pos] == '.' {
		p.pos++
		n += digitsAt()
	}
	if n == 0 {
		p.pos = start
		if p.pos >= len(p.s) {
			return num{}, fmt.Errorf("expression ends early")
		}
		return num{}, fmt.Errorf("not a number: %q", clip(p.s[p.pos:], 20))
	}
	// scientific notation: 1.5e3, 2E-4 (only when digits follow the e)
	if p.pos < len(p.s) && (p.s[p.pos] == 'e' || p.s[p.pos] == 'E') {
		save := p.pos
		p.pos++
		if p.pos < len(p.s) && (p.s[p.pos] == '+' || p.s[p.pos] == '-') {
			p.pos++
		}
		if digitsAt() == 0 {
			p.pos = save
		}
	}
	r, ok := new(big.Rat).SetString(p.s[start:p.pos])
	if !ok {
		return num{}, fmt.Errorf("bad number %q", p.s[start:p.pos])
	}
	return exactNum(r), nil
}

func add(a, b num, sign int) num {
	if a.exact && b.exact {
		r := new(big.Rat)
		if sign > 0 {
			return exactNum(r.Add(a.r, b.r))
		}
		return exactNum(r.Sub(a.r, b.r))
	}
	return floatNum(a.float() + float64(sign)*b.float())
}

func neg(a num) num {
	if a.exact {
		return exactNum(new(big.Rat).Neg(a.r))
	}
	return floatNum(-a.f)
}

func mul(a, b num) num {
	if a.exact && b.exact {
		return exactNum(new(big.Rat).Mul(a.r, b.r))
	}
	return floatNum(a.float() * b.float())
}

func quo(a, b num) (num, error) {
	if a.exact && b.exact {
		if b.r.Sign() == 0 {
			return num{}, fmt.Errorf("division by zero")
		}
		return exactNum(new(big.Rat).Quo(a.r, b.r)), nil
	}
	if b.float() == 0 {
		return num{}, fmt.Errorf("division by zero")
	}
	return floatNum(a.float() / b.float()), nil
}

// pow is exact for a rational base and a small integer exponent; otherwise float.
func pow(a, e num) (num, error) {
	if a.exact && e.exact && e.r.IsInt() && e.r.Num().IsInt64() {
		n := e.r.Num().Int64()
		bits := int64(a.r.Num().BitLen() + a.r.Denom().BitLen())
		if n >= -256 && n <= 256 && bits*abs64(n) <= 1<<14 {
			if n < 0 && a.r.Sign() == 0 {
				return num{}, fmt.Errorf("division by zero")
			}
			num_ := new(big.Int).Exp(a.r.Num(), big.NewInt(abs64(n)), nil)
			den := new(big.Int).Exp(a.r.Denom(), big.NewInt(abs64(n)), nil)
			if n < 0 {
				num_, den = den, num_
			}
			return exactNum(new(big.Rat).SetFrac(num_, den)), nil
		}
	}
	return floatNum(math.Pow(a.float(), e.float())), nil
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// root is exact when the radicand is a perfect power of a rational (\sqrt{4} = 2, \sqrt{1/9} = 1/3).
func root(x, deg num) (num, error) {
	if !deg.exact || !deg.r.IsInt() || deg.r.Sign() <= 0 || !deg.r.Num().IsInt64() || deg.r.Num().Int64() > 64 {
		return floatNum(math.Pow(x.float(), 1/deg.float())), nil
	}
	n := deg.r.Num().Int64()
	if x.float() < 0 && n%2 == 0 {
		return num{}, fmt.Errorf("even root of a negative number")
	}
	if x.exact {
		if a, ok := intRoot(new(big.Int).Abs(x.r.Num()), n); ok {
			if b, ok := intRoot(x.r.Denom(), n); ok {
				r := new(big.Rat).SetFrac(a, b)
				if x.r.Sign() < 0 {
					r.Neg(r)
				}
				return exactNum(r), nil
			}
		}
	}
	f := x.float()
	if f < 0 {
		return floatNum(-math.Pow(-f, 1/float64(n))), nil
	}
	return floatNum(math.Pow(f, 1/float64(n))), nil
}

// intRoot returns the exact integer n-th root of v when there is one.
func intRoot(v *big.Int, n int64) (*big.Int, bool) {
	if n == 2 {
		r := new(big.Int).Sqrt(v)
		return r, new(big.Int).Mul(r, r).Cmp(v) == 0
	}
	f, _ := new(big.Float).SetInt(v).Float64()
	guess := int64(math.Round(math.Pow(f, 1/float64(n))))
	for _, g := range []int64{guess - 1, guess, guess + 1} {
		if g < 0 {
			continue
		}
		c := new(big.Int).Exp(big.NewInt(g), big.NewInt(n), nil)
		if c.Cmp(v) == 0 {
			return big.NewInt(g), true
		}
	}
	return nil, false
}
