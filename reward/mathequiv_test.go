package reward

import (
	"bufio"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/polo-rl/polo/task"
)

type graderCase struct {
	line                   int
	category               string
	response, answer, note string
	want                   bool
}

// loadGraderCases reads testdata/reward/math_grader_cases.txt (format in its header).
func loadGraderCases(t testing.TB) []graderCase {
	t.Helper()
	f, err := os.Open("../testdata/reward/math_grader_cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []graderCase
	category, raw := "", false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			category = strings.TrimSpace(strings.TrimPrefix(line, "## "))
			raw = strings.HasSuffix(category, "[raw]")
			category = strings.TrimSpace(strings.TrimSuffix(category, "[raw]"))
			continue
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
			continue
		}
		parts := strings.Split(line, " | ")
		if len(parts) != 4 || (parts[2] != "0" && parts[2] != "1") || category == "" {
			t.Fatalf("math_grader_cases.txt line %d: want 'response | reference | 0/1 | note' under a '## category', got %q", n, line)
		}
		nl := func(s string) string { return strings.ReplaceAll(s, "⏎", "\n") }
		c := graderCase{line: n, category: category, response: nl(parts[0]), answer: nl(parts[1]), want: parts[2] == "1", note: parts[3]}
		if !raw {
			c.response = `\boxed{` + c.response + `}`
		}
		out = append(out, c)
	}
	return out
}

// TestMathGraderTable checks the math verifier against the graders' documented behaviour and
// reports the agreement per category.
func TestMathGraderTable(t *testing.T) {
	cases := loadGraderCases(t)
	if len(cases) < 400 {
		t.Fatalf("only %d cases; the table must have at least 400", len(cases))
	}
	v, err := NewVerifier("math", nil)
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ agree, total int }
	per := map[string]*tally{}
	var order []string
	for _, c := range cases {
		if per[c.category] == nil {
			per[c.category] = &tally{}
			order = append(order, c.category)
		}
		s := v.Verify(c.response, task.Example{Answer: c.answer})
		per[c.category].total++
		if s.Correct == c.want {
			per[c.category].agree++
			continue
		}
		t.Errorf("line %d [%s] %s: %q vs %q: correct=%v, want %v (extracted %q, reason %q)",
			c.line, c.category, c.note, c.response, c.answer, s.Correct, c.want, s.Extracted, s.Reason)
	}
	agree := 0
	for _, cat := range order {
		p := per[cat]
		agree += p.agree
		t.Logf("%-40s %3d/%3d", cat, p.agree, p.total)
	}
	t.Logf("%-40s %3d/%3d", "all", agree, len(cases))
}

// TestMathExtractOptions covers strict mode and a custom extraction order.
func TestMathExtractOptions(t *testing.T) {
	ex := task.Example{Answer: "5"}
	tests := []struct {
		opts     map[string]string
		response string
		want     bool
		reason   string
	}{
		{nil, "so it is $5$", true, ""},
		{map[string]string{"strict": "true"}, "so it is $5$", false, ReasonNoAnswer},
		{map[string]string{"strict": "true"}, `\boxed{5}`, true, ""},
		{map[string]string{"strict": "true", "fallback": "last_number"}, "so it is 5", true, ""},
		{map[string]string{"extract": "boxed"}, "The answer is 5", false, "nothing found by boxed"},
		{map[string]string{"extract": "number,boxed"}, `\boxed{4} then 5`, true, ""},
		{map[string]string{"extract": "latex"}, "$4$ and $5$", true, ""},
	}
	for _, tt := range tests {
		v, err := NewVerifier("math", tt.opts)
		if err != nil {
			t.Fatalf("%v: %v", tt.opts, err)
		}
		s := v.Verify(tt.response, ex)
		if s.Correct != tt.want || !strings.Contains(s.Reason, tt.reason) {
			t.Errorf("%v %q: %+v, want correct=%v reason ~%q", tt.opts, tt.response, s, tt.want, tt.reason)
		}
	}
	for _, tt := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"extract": "boxed,guess"}, `"guess" is not one of boxed, phrase, latex, number`},
		{map[string]string{"extract": "boxed", "strict": "true"}, "exclude each other"},
		{map[string]string{"strict": "maybe"}, "strict"},
	} {
		if _, err := NewVerifier("math", tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want ~%q", tt.opts, err, tt.want)
		}
	}
}

// hostileInputs are responses built to be slow or to crash a parser; each must give a verdict
// quickly (see BenchmarkMathHostile) and never panic.
func hostileInputs() map[string][2]string {
	deep := strings.Repeat("{", 100000) + "1" + strings.Repeat("}", 100000)
	parens := strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	nestA, nestB := "x", "y"
	for len(nestA) < 1800 {
		nestA, nestB = `\{`+nestA+`,`+nestA+`\}`, `\{`+nestB+`,`+nestB+`\}`
	}
	return map[string][2]string{
		"nested sets":             {`\boxed{` + nestA + `}`, nestB},
		"nested braces 100k":      {`\boxed{` + deep + `}`, "1"},
		"nested braces unboxed":   {deep, "1"},
		"nested parens 100k":      {parens, "1"},
		"unclosed braces 100k":    {`\boxed{` + strings.Repeat("{", 100000), "1"},
		"1 MB response":           {strings.Repeat("We add 12 and 30 to get $42$. ", 1<<20/31) + `\boxed{42}`, "42"},
		"1 MB of dollars":         {strings.Repeat("$", 1<<20), "1"},
		"1 MB of \\(":             {strings.Repeat(`\(`, 1<<19), "1"},
		"1 MB digits":             {strings.Repeat("9", 1<<20), "1"},
		"1 MB answer phrases":     {strings.Repeat("answer: ", 1<<17), "1"},
		"power tower":             {`\boxed{10^{10^{10}}}`, `10^{10^{10}}+1`},
		"power tower of towers":   {`\boxed{10^{10^{10^{10^{10}}}}}`, `2`},
		"exponent near int64 max": {`\boxed{10^{70^{10}}}`, "55!"},
		"huge exponent":           {`\boxed{2^{9999999}}`, `2^{9999998}`},
		"huge factorial":          {`\boxed{100000000!}`, `1`},
		"huge binomial":           {`\boxed{\binom{100000000}{50000000}}`, `1`},
		"long sum":                {`\boxed{` + strings.Repeat("x+", 1900) + `x}`, "1900x"},
		"many pm":                 {`\boxed{` + strings.Repeat(`1\pm `, 30) + `1}`, "1"},
		"many variables":          {`\boxed{` + strings.Repeat("a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+", 4) + `1}`, "1"},
		"big set":                 {`\boxed{\{` + strings.Repeat("x,", 250) + `x\}}`, `\{` + strings.Repeat("y,", 250) + `y\}`},
		"deep fractions":          {`\boxed{` + strings.Repeat(`\frac{1}{`, 2000) + "2" + strings.Repeat("}", 2000) + `}`, "2"},
		"deep roots":              {`\boxed{` + strings.Repeat(`\sqrt{`, 60) + "2" + strings.Repeat("}", 60) + `}`, "1"},
		"huge matrix":             {`\boxed{\begin{pmatrix}` + strings.Repeat("1&", 3000) + `1\end{pmatrix}}`, "1"},
		"minus chain":             {`\boxed{` + strings.Repeat("-", 3000) + `1}`, "1"},
		"nested sqrt power":       {`\boxed{\sqrt[1000000]{2}^{1000000}}`, "2"},
		"long number":             {`\boxed{` + strings.Repeat("7", 3900) + `}`, strings.Repeat("7", 3900) + "1"},
		"exponent of long number": {`\boxed{7^{` + strings.Repeat("7", 3000) + `}}`, "1"},
	}
}

// hostileCorrect lists the hostile inputs whose answer is in fact right.
var hostileCorrect = map[string]bool{
	"1 MB response":         true, // \boxed{42}
	"nested braces unboxed": true, // the last number is 1
	"nested parens 100k":    true, // the last number is 1
	"nested sqrt power":     true, // (2^{1/10^6})^{10^6} = 2 within float tolerance
}

func TestMathHostileInputs(t *testing.T) {
	v, _ := NewVerifier("math", nil)
	names := make([]string, 0)
	for name := range hostileInputs() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		in := hostileInputs()[name]
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", name, r)
				}
			}()
			s := v.Verify(in[0], task.Example{Answer: in[1]})
			want := hostileCorrect[name]
			if s.Correct != want {
				t.Errorf("%s: correct=%v, want %v (%s)", name, s.Correct, want, s.Reason)
			}
		}()
	}
}

// BenchmarkMathHostile times each hostile input; every verdict must stay well under 50 ms.
func BenchmarkMathHostile(b *testing.B) {
	v, _ := NewVerifier("math", nil)
	for name, in := range hostileInputs() {
		ex := task.Example{Answer: in[1]}
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				v.Verify(in[0], ex)
			}
		})
	}
}

// BenchmarkMathVerifySimple measures simple answers (numbers, fractions, short expressions in a
// ~550-character response): the throughput the trainer sees on typical math data.
func BenchmarkMathVerifySimple(b *testing.B) {
	pairs := [][2]string{
		{`\boxed{42}`, "42"}, {`\boxed{\frac{3}{4}}`, "0.75"}, {`\boxed{1,000}`, "1000"}, {`\boxed{7}`, "8"},
		{`The answer is 12.`, "12"}, {`\boxed{2\sqrt{3}}`, `\sqrt{12}`}, {`\boxed{-5}`, "-5"}, {`so $x = 4$`, "4"},
		{`\boxed{\frac{1}{2}}`, `\frac12`}, {`\boxed{0.333}`, `\frac13`}, {`\boxed{(1,2)}`, "(1,2)"}, {`\boxed{3\pi}`, `3\pi`},
	}
	prefix := "Let me think step by step. " + strings.Repeat("We compute a few things. ", 20)
	v, _ := NewVerifier("math", nil)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		p := pairs[i%len(pairs)]
		v.Verify(prefix+p[0], task.Example{Answer: p[1]})
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "verifications/s")
}

// FuzzMathEqual checks that no pair of answers panics the parser or the comparator. The seeds
// run in every `go test`; `go test ./reward -fuzz FuzzMathEqual` explores further.
func FuzzMathEqual(f *testing.F) {
	for _, s := range [][2]string{
		{`\frac{1}{2}`, "0.5"}, {`x^2+2x+1`, `(x+1)^2`}, {`\begin{pmatrix}1&2\end{pmatrix}`, `(1,2)`},
		{`x \in [0, \infty)`, `x \geq 0`}, {`1 \pm \sqrt{2}`, `\{1\}`}, {`\sqrt[3]{-8}`, `\log_2 8`},
		{`4210_{7}`, `\text{ and }`}, {`f(x)=|x|`, `\lfloor x \rfloor`}, {`10^{10^{10}}`, `5!`},
		{`\sin^{-1} x`, `1\frac12`}, {`{`, `}`}, {`\left.`, `\\`}, {`^`, `_`}, {`\frac`, `\sqrt[`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		MathEqual(a, b)
		ExtractAnswerFrom(a, DefaultExtractOrder)
	})
}
