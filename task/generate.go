package task

import (
	"fmt"
	"github.com/polo-rl/polo/internal/optparse"
	"math/big"
	"math/rand"
	"sort"
	"strconv"
	"strings"
)

// Generator is an unlimited, seeded source of synthetic examples with an exact checker.
//
// Prompts and answers are short and plain (addition: prompt "47+385=", answer "432") so a tiny
// character-level model can learn them.
type Generator interface {
	Source
	// Name is the generator's registry name; it is also stored in Example.Meta["task"].
	Name() string
	// Alphabet lists every character that prompts and answers can contain, for a char tokenizer.
	Alphabet() string
	// Check is the task's exact verifier (see CheckExample).
	Check(response string, ex Example) Check
}

// Check is the outcome of a task's exact verifier.
type Check struct {
	Correct   bool
	Extracted string // the answer as read from the response
	Reason    string // why it is wrong (empty when correct)
}

// GeneratorNames lists the registered synthetic tasks.
func GeneratorNames() []string {
	return []string{"addition", "arithmetic", "countdown", "sort", "reverse", "copy", "modular", "linear", "scratchpad"}
}

// NewGenerator builds a named generator. Integer options accept a single value ("3") or an
// inclusive range ("2..3") from which each example draws uniformly; see docs/rewards.md for
// the options of each task. Unknown names or options are errors that list the valid ones.
func NewGenerator(name string, opts map[string]string, seed int64) (Generator, error) {
	o := options{optparse.New("task "+name, opts)}
	base := genBase{name: name, rng: rand.New(rand.NewSource(seed)), seed: seed}
	var g Generator
	switch name {
	case "addition", "arithmetic":
		ops := "+"
		if name == "arithmetic" {
			ops = "+-*"
		}
		a := &arithGen{genBase: base, digits: o.intRange("digits", 2, 1, 18), ops: o.str("ops", ops, "+-*")}
		g = a
	case "countdown":
		g = &countdownGen{genBase: base, n: o.intRange("n", 3, 2, 6), max: o.intRange("max", 20, 1, 1000),
			ops: o.str("ops", "+-*/", "+-*/"), useAll: o.Bool("use_all", true)}
	case "sort":
		g = &sortGen{genBase: base, length: o.intRange("len", 5, 1, 64), max: o.intRange("max", 9, 0, 1<<30),
			desc: o.Choice("order", "asc", "asc", "desc") == "desc"}
	case "reverse", "copy":
		g = &stringGen{genBase: base, length: o.intRange("len", 5, 1, 256),
			letters: o.str("letters", "abcdefghijklmnopqrstuvwxyz", ""), reverse: name == "reverse"}
	case "modular":
		g = &modularGen{genBase: base, mod: o.intRange("mod", 7, 2, 1<<30), max: o.intRange("max", 99, 0, 1<<30),
			ops: o.str("ops", "+", "+-*")}
	case "linear":
		g = &linearGen{genBase: base, coef: o.intRange("coef", 9, 1, 1<<20), x: o.intRange("x", 9, 0, 1<<20),
			b: o.intRange("b", 20, 0, 1<<20)}
	case "scratchpad": // addition with a reasoning trace (task/scratchpad.go)
		g = &scratchGen{genBase: base, digits: o.intRange("digits", 3, 1, 9), check: o.Bool("check", true),
			early: o.intRange("early", 0, 0, 100)}
	default:
		return nil, fmt.Errorf("unknown task generator %q; choose one of %s", name, strings.Join(GeneratorNames(), ", "))
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	return g, nil
}

// CheckExample runs the exact checker of the generator named in ex.Meta["task"].
func CheckExample(response string, ex Example) (Check, error) {
	name := ex.Meta["task"]
	if name == "" {
		return Check{}, fmt.Errorf("example %s has no Meta[\"task\"]; the task verifier only scores generated examples", ex.ID)
	}
	g, err := NewGenerator(name, nil, 0)
	if err != nil {
		return Check{}, fmt.Errorf("example %s: %w", ex.ID, err)
	}
	return g.Check(response, ex), nil
}

// --- option parsing ---

type intRange struct{ lo, hi int }

func (r intRange) draw(rng *rand.Rand) int {
	if r.hi <= r.lo {
		return r.lo
	}
	return r.lo + rng.Intn(r.hi-r.lo+1)
}

// options adds the task generators' own option kinds to the shared parser.
type options struct{ *optparse.Parser }

func (o *options) intRange(key string, def, min, max int) intRange {
	v, ok := o.Get(key)
	if !ok {
		return intRange{def, def}
	}
	loS, hiS, isRange := strings.Cut(v, "..")
	lo, err1 := strconv.Atoi(strings.TrimSpace(loS))
	hi := lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(strings.TrimSpace(hiS))
	}
	if err1 != nil || err2 != nil || lo > hi || lo < min || hi > max {
		o.Fail("option %s=%q: want an integer or range like 2..3 within [%d, %d]", key, v, min, max)
		return intRange{def, def}
	}
	return intRange{lo, hi}
}

func (o *options) str(key, def, allowed string) string {
	v, ok := o.Get(key)
	if !ok {
		return def
	}
	if v == "" {
		o.Fail("option %s is empty", key)
		return def
	}
	if allowed != "" {
		for _, r := range v {
			if !strings.ContainsRune(allowed, r) {
				o.Fail("option %s=%q: characters must come from %q", key, v, allowed)
				return def
			}
		}
	}
	return v
}

// --- shared pieces ---

type genBase struct {
	name string
	rng  *rand.Rand
	seed int64
	n    int
}

func (g *genBase) Name() string { return g.name }

func (g *genBase) example(prompt, answer string, meta map[string]string) Example {
	g.n++
	if meta == nil {
		meta = map[string]string{}
	}
	meta["task"] = g.name
	return Example{ID: fmt.Sprintf("%s-%d-%d", g.name, g.seed, g.n), Prompt: prompt, Answer: answer, Meta: meta}
}

// leading returns the longest prefix of s (after leading spaces) made of runes in set, and
// whether anything followed it. Junk after the answer is ignored: the checker compares only the
// answer-shaped prefix.
func leading(s, set string) (string, bool) {
	s = strings.TrimLeft(s, " \t")
	i := 0
	for i < len(s) && strings.IndexByte(set, s[i]) >= 0 {
		i++
	}
	return s[:i], i < len(s)
}

// exactCheck compares the answer-shaped prefix of response with the reference exactly.
func exactCheck(response string, ex Example, set string) Check {
	got, _ := leading(response, set)
	if got == "" {
		return Check{Reason: "no answer at the start of the response"}
	}
	if got != ex.Answer {
		return Check{Extracted: got, Reason: fmt.Sprintf("got %q, want %q", got, ex.Answer)}
	}
	return Check{Correct: true, Extracted: got}
}

// intCheck reads an optionally negative integer at the start of the response ("432", "-5") and
// compares it with the reference exactly; anything after the digits is ignored.
func intCheck(response string, ex Example) Check {
	s := strings.TrimLeft(response, " \t")
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	d, _ := leading(s, digits)
	if neg && d != "" {
		d = "-" + d
	}
	return exactCheck(d, ex, "-"+digits)
}

func uniqueChars(parts ...string) string {
	seen := map[rune]bool{}
	var rs []rune
	for _, p := range parts {
		for _, r := range p {
			if !seen[r] {
				seen[r] = true
				rs = append(rs, r)
			}
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	return string(rs)
}

const digits = "0123456789"

func randDigits(rng *rand.Rand, nd int) int64 {
	// uniform over integers with at most nd digits: [0, 10^nd)
	var hi int64 = 1
	for i := 0; i < nd; i++ {
		hi *= 10
	}
	return rng.Int63n(hi)
}

// --- addition / arithmetic: "47+385=" -> "432" ---

type arithGen struct {
	genBase
	digits intRange
	ops    string
}

func (g *arithGen) Next() (Example, error) {
	a := randDigits(g.rng, g.digits.draw(g.rng))
	b := randDigits(g.rng, g.digits.draw(g.rng))
	op := g.ops[g.rng.Intn(len(g.ops))]
	x, y := new(big.Int).SetInt64(a), new(big.Int).SetInt64(b)
	var r big.Int
	switch op {
	case '+':
		r.Add(x, y)
	case '-':
		r.Sub(x, y)
	case '*':
		r.Mul(x, y)
	}
	return g.example(fmt.Sprintf("%d%c%d=", a, op, b), r.String(), nil), nil
}

func (g *arithGen) Alphabet() string { return uniqueChars(digits, "=", g.ops) }

func (g *arithGen) Check(response string, ex Example) Check { return intCheck(response, ex) }

// --- sort: "sort 3,1,2=" -> "1,2,3" ---

type sortGen struct {
	genBase
	length, max intRange
	desc        bool
}

func (g *sortGen) Next() (Example, error) {
	n, m := g.length.draw(g.rng), g.max.draw(g.rng)
	xs := make([]int, n)
	for i := range xs {
		xs[i] = g.rng.Intn(m + 1)
	}
	in := joinInts(xs)
	sort.Ints(xs)
	if g.desc {
		sort.Sort(sort.Reverse(sort.IntSlice(xs)))
	}
	word := "sort "
	if g.desc {
		word = "sortd "
	}
	return g.example(word+in+"=", joinInts(xs), nil), nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func (g *sortGen) Alphabet() string { return uniqueChars(digits, "sortd ,=") }

func (g *sortGen) Check(response string, ex Example) Check {
	return exactCheck(response, ex, digits+",")
}

// --- reverse / copy: "rev abc=" -> "cba", "copy abc=" -> "abc" ---

type stringGen struct {
	genBase
	length  intRange
	letters string
	reverse bool
}

func (g *stringGen) Next() (Example, error) {
	n := g.length.draw(g.rng)
	letters := []rune(g.letters)
	s := make([]rune, n)
	for i := range s {
		s[i] = letters[g.rng.Intn(len(letters))]
	}
	in := string(s)
	if g.reverse {
		for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
			s[i], s[j] = s[j], s[i]
		}
		return g.example("rev "+in+"=", string(s), map[string]string{"letters": g.letters}), nil
	}
	return g.example("copy "+in+"=", in, map[string]string{"letters": g.letters}), nil
}

func (g *stringGen) Alphabet() string { return uniqueChars(g.letters, "revcopy =") }

func (g *stringGen) Check(response string, ex Example) Check {
	letters := ex.Meta["letters"]
	if letters == "" {
		letters = g.letters
	}
	return exactCheck(response, ex, letters)
}

// --- modular: "17+5 mod 7=" -> "1" ---

type modularGen struct {
	genBase
	mod, max intRange
	ops      string
}

func (g *modularGen) Next() (Example, error) {
	m, hi := g.mod.draw(g.rng), g.max.draw(g.rng)
	a, b := g.rng.Intn(hi+1), g.rng.Intn(hi+1)
	op := g.ops[g.rng.Intn(len(g.ops))]
	var r int64
	switch op {
	case '+':
		r = int64(a) + int64(b)
	case '-':
		r = int64(a) - int64(b)
	case '*':
		r = int64(a) * int64(b)
	}
	r %= int64(m)
	if r < 0 {
		r += int64(m)
	}
	return g.example(fmt.Sprintf("%d%c%d mod %d=", a, op, b, m), strconv.FormatInt(r, 10), nil), nil
}

func (g *modularGen) Alphabet() string { return uniqueChars(digits, g.ops, " mod=") }

func (g *modularGen) Check(response string, ex Example) Check {
	return exactCheck(response, ex, digits)
}

// --- linear: "3x+5=20,x=" -> "5" ---

type linearGen struct {
	genBase
	coef, x, b intRange
}

func (g *linearGen) Next() (Example, error) {
	cmax, xmax, bmax := g.coef.draw(g.rng), g.x.draw(g.rng), g.b.draw(g.rng)
	a := 1 + g.rng.Intn(cmax)
	if g.rng.Intn(2) == 0 {
		a = -a
	}
	x := g.rng.Intn(2*xmax+1) - xmax
	b := g.rng.Intn(2*bmax+1) - bmax
	c := a*x + b
	var lhs strings.Builder
	switch a {
	case 1:
	case -1:
		lhs.WriteByte('-')
	default:
		lhs.WriteString(strconv.Itoa(a))
	}
	lhs.WriteByte('x')
	if b > 0 {
		fmt.Fprintf(&lhs, "+%d", b)
	} else if b < 0 {
		fmt.Fprintf(&lhs, "%d", b)
	}
	return g.example(fmt.Sprintf("%s=%d,x=", lhs.String(), c), strconv.Itoa(x), nil), nil
}

func (g *linearGen) Alphabet() string { return uniqueChars(digits, "x+-=,") }

func (g *linearGen) Check(response string, ex Example) Check { return intCheck(response, ex) }
