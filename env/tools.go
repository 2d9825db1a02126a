package env

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"
	"unicode"

	"github.com/polo-rl/polo/reward"
)

// Tool is a function the policy may call. Call returns the text shown to the policy; an error is
// a failed call (its message is shown instead, and it counts as a tool error).
type Tool interface {
	Name() string
	// Schema is the tool's definition as the chat template announces it
	// ({"type": "function", "function": {"name", "description", "parameters"}}).
	Schema() json.RawMessage
	Call(ctx context.Context, args json.RawMessage) (string, error)
}

func functionSchema(name, desc, param, paramDesc string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]any{
		"name": name, "description": desc,
		"parameters": map[string]any{"type": "object", "required": []string{param},
			"properties": map[string]any{param: map[string]any{"type": "string", "description": paramDesc}}},
	}})
	return b
}

// stringArg reads one required string argument.
func stringArg(args json.RawMessage, name string) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil {
		return "", fmt.Errorf("arguments are not a JSON object")
	}
	var s string
	if err := json.Unmarshal(m[name], &s); err != nil {
		return "", fmt.Errorf("missing string argument %q", name)
	}
	return s, nil
}

// ---------------------------------------------------------------------------------------------
// Calculator

// Calculator evaluates arithmetic exactly over the rationals: integers and decimals, + - * /,
// parentheses, unary minus and ^ with an integer exponent. A result that is not an integer is
// written as a reduced fraction "p/q", so no precision is ever lost (the point of giving a small
// model a calculator).
type Calculator struct{}

func (Calculator) Name() string { return "calculator" }

func (Calculator) Schema() json.RawMessage {
	return functionSchema("calculator", "Exact arithmetic: + - * / ^ and parentheses on integers and decimals.",
		"expression", "e.g. 1234*5678")
}

func (Calculator) Call(_ context.Context, args json.RawMessage) (string, error) {
	expr, err := stringArg(args, "expression")
	if err != nil {
		return "", err
	}
	v, err := Calculate(expr)
	if err != nil {
		return "", err
	}
	return FormatRat(v), nil
}

// Limits of one calculation, so that a policy cannot ask for 10^10^10.
const (
	maxExprLen  = 1000
	maxExponent = 4096
	maxBits     = 1 << 16
)

// Calculate evaluates an expression exactly.
func Calculate(expr string) (*big.Rat, error) {
	if len(expr) > maxExprLen {
		return nil, fmt.Errorf("expression longer than %d characters", maxExprLen)
	}
	p := &calcParser{s: expr}
	v, err := p.sum(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, fmt.Errorf("unexpected %q at position %d", p.s[p.i], p.i+1)
	}
	return v, nil
}

// FormatRat writes an integer as is and any other rational as "p/q".
func FormatRat(v *big.Rat) string {
	if v.IsInt() {
		return v.Num().String()
	}
	return v.String()
}

type calcParser struct {
	s string
	i int
}

func (p *calcParser) space() {
	for p.i < len(p.s) && unicode.IsSpace(rune(p.s[p.i])) {
		p.i++
	}
}

func (p *calcParser) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func checkSize(v *big.Rat) error {
	if v.Num().BitLen()+v.Denom().BitLen() > maxBits {
		return fmt.Errorf("result larger than %d bits", maxBits)
	}
	return nil
}

func (p *calcParser) sum(depth int) (*big.Rat, error) {
	v, err := p.product(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch op := p.peek(); op {
		case '+', '-':
			p.i++
			w, err := p.product(depth)
			if err != nil {
				return nil, err
			}
			if op == '+' {
				v.Add(v, w)
			} else {
				v.Sub(v, w)
			}
		default:
			return v, nil
		}
	}
}

func (p *calcParser) product(depth int) (*big.Rat, error) {
	v, err := p.power(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch op := p.peek(); op {
		case '*', '/':
			p.i++
			w, err := p.power(depth)
			if err != nil {
				return nil, err
			}
			if op == '/' {
				if w.Sign() == 0 {
					return nil, errors.New("division by zero")
				}
				v.Quo(v, w)
			} else {
				v.Mul(v, w)
			}
			if err := checkSize(v); err != nil {
				return nil, err
			}
		default:
			return v, nil
		}
	}
}

func (p *calcParser) power(depth int) (*big.Rat, error) {
	base, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	if p.peek() != '^' {
		return base, nil
	}
	p.i++
	e, err := p.power(depth + 1) // right-associative
	if err != nil {
		return nil, err
	}
	if !e.IsInt() || e.Num().BitLen() > 16 || e.Num().Int64() > maxExponent || e.Num().Int64() < -maxExponent {
		return nil, fmt.Errorf("exponent must be an integer in [-%d, %d]", maxExponent, maxExponent)
	}
	n := e.Num().Int64()
	neg := n < 0
	if neg {
		n = -n
		if base.Sign() == 0 {
			return nil, errors.New("division by zero")
		}
	}
	num := new(big.Int).Exp(base.Num(), big.NewInt(n), nil)
	den := new(big.Int).Exp(base.Denom(), big.NewInt(n), nil)
	if num.BitLen()+den.BitLen() > maxBits {
		return nil, fmt.Errorf("result larger than %d bits", maxBits)
	}
	if neg {
		num, den = den, num
	}
	return new(big.Rat).SetFrac(num, den), nil
}

func (p *calcParser) unary(depth int) (*big.Rat, error) {
	if depth > 100 {
		return nil, errors.New("expression nested more than 100 deep")
	}
	switch c := p.peek(); {
	case c == '-':
		p.i++
		v, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return v.Neg(v), nil
	case c == '+':
		p.i++
		return p.unary(depth + 1)
	case c == '(':
		p.i++
		v, err := p.sum(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("missing ) at position %d", p.i+1)
		}
		p.i++
		return v, nil
	case c >= '0' && c <= '9' || c == '.':
		start := p.i
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.' || p.s[p.i] == '_') {
			p.i++
		}
		lit := strings.ReplaceAll(p.s[start:p.i], "_", "")
		v, ok := new(big.Rat).SetString(lit)
		if !ok || strings.Count(lit, ".") > 1 {
			return nil, fmt.Errorf("bad number %q", lit)
		}
		return v, nil
	case c == 0:
		return nil, errors.New("unexpected end of expression")
	default:
		return nil, fmt.Errorf("unexpected %q at position %d", c, p.i+1)
	}
}

// ---------------------------------------------------------------------------------------------
// Python

// Python runs a program in reward's bubblewrap sandbox and returns its standard output (and the
// reason when it failed). The sandbox's wall-clock limit applies as well as the rollout's.
type Python struct{ Sandbox *reward.Sandbox }

func (Python) Name() string { return "python" }

func (Python) Schema() json.RawMessage {
	return functionSchema("python", "Run a Python 3 program in a sandbox (no network, no files) and return what it prints.",
		"code", "the program")
}

func (t Python) Call(ctx context.Context, args json.RawMessage) (string, error) {
	code, err := stringArg(args, "code")
	if err != nil {
		return "", err
	}
	res, err := t.Sandbox.Run(ctx, code, "")
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	if res.Reason != "" {
		return "", fmt.Errorf("%s", clipText(strings.TrimSpace(res.Stdout+"\n"+res.Reason), 2000))
	}
	return clipText(res.Stdout, 4000), nil
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ---------------------------------------------------------------------------------------------
// Search

// Search looks a query up in a local JSONL corpus of {"id", "title", "text"} rows: documents are
// ranked by how many distinct query words (lower-cased letters and digits) they contain, ties by
// file order, and the top K are returned as "[id] title: text" lines. It is the offline stand-in
// for a web-search tool; the corpus is read once.
type Search struct {
	K    int
	docs []searchDoc
}

type searchDoc struct {
	ID, Title, Text string
	words           map[string]bool
}

// LoadSearch reads a corpus; a malformed row is an error naming its line.
func LoadSearch(path string, k int) (*Search, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("search corpus: %w", err)
	}
	defer f.Close()
	s := &Search{K: max(k, 1)}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var d struct{ ID, Title, Text string }
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("search corpus %s line %d: %v", path, line, err)
		}
		if d.Text == "" {
			return nil, fmt.Errorf("search corpus %s line %d: no \"text\"", path, line)
		}
		s.docs = append(s.docs, searchDoc{ID: d.ID, Title: d.Title, Text: d.Text, words: wordSet(d.Title + " " + d.Text)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("search corpus %s: %w", path, err)
	}
	return s, nil
}

func wordSet(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		out[w] = true
	}
	return out
}

func (*Search) Name() string { return "search" }

func (*Search) Schema() json.RawMessage {
	return functionSchema("search", "Search a local document collection; returns the best matching passages.", "query", "keywords")
}

func (s *Search) Call(_ context.Context, args json.RawMessage) (string, error) {
	q, err := stringArg(args, "query")
	if err != nil {
		return "", err
	}
	qw := wordSet(q)
	if len(qw) == 0 {
		return "", errors.New("empty query")
	}
	type hit struct{ i, score int }
	var hits []hit
	for i, d := range s.docs {
		n := 0
		for w := range qw {
			if d.words[w] {
				n++
			}
		}
		if n > 0 {
			hits = append(hits, hit{i, n})
		}
	}
	sort.SliceStable(hits, func(a, b int) bool { return hits[a].score > hits[b].score })
	if len(hits) == 0 {
		return "no results", nil
	}
	var b strings.Builder
	for k, h := range hits[:min(s.K, len(hits))] {
		if k > 0 {
			b.WriteByte('\n')
		}
		d := s.docs[h.i]
		fmt.Fprintf(&b, "[%s] %s: %s", d.ID, d.Title, clipText(d.Text, 500))
	}
	return b.String(), nil
}
