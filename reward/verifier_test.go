package reward

import (
	"bufio"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/polo-rl/polo/task"
)

type verifierCase struct {
	line                   int
	kind, response, answer string
	meta                   map[string]string
	want                   bool
	note                   string
}

// loadCases reads testdata/reward/verifier_cases.txt (see its header for the format).
func loadCases(t testing.TB) []verifierCase {
	t.Helper()
	f, err := os.Open("../testdata/reward/verifier_cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []verifierCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		parts := strings.Split(line, " | ")
		if len(parts) != 5 || (parts[3] != "0" && parts[3] != "1") {
			t.Fatalf("verifier_cases.txt line %d: want 5 fields 'kind | response | answer | 0/1 | note', got %q", n, line)
		}
		nl := func(s string) string { return strings.ReplaceAll(s, "⏎", "\n") }
		c := verifierCase{line: n, kind: parts[0], response: nl(parts[1]), answer: nl(parts[2]), want: parts[3] == "1", note: parts[4]}
		if c.kind == "task" {
			fields := strings.Split(c.answer, ";")
			c.answer, c.meta = fields[0], map[string]string{}
			for _, kv := range fields[1:] {
				k, v, _ := strings.Cut(kv, "=")
				c.meta[k] = v
			}
		}
		out = append(out, c)
	}
	return out
}

// generatedCases adds systematic pairs whose expected verdicts come from math/big, not from the
// verifier: fractions and their exact decimals, thousands separators, and wrong-but-close values.
func generatedCases() []verifierCase {
	var out []verifierCase
	add := func(kind, resp, ans string, want bool, note string) {
		out = append(out, verifierCase{kind: kind, response: resp, answer: ans, want: want, note: note})
	}
	// Terminating fractions: exact decimal equal; decimal off by 0.001 not equal.
	for _, pq := range [][2]int64{{1, 2}, {3, 4}, {5, 8}, {7, 20}, {9, 40}, {-3, 5}, {13, 16}, {21, 25}, {1, 80}, {-7, 4}, {11, 10}, {3, 125}} {
		r := big.NewRat(pq[0], pq[1])
		dec := r.FloatString(6)
		dec = strings.TrimRight(strings.TrimRight(dec, "0"), ".")
		frac := fmt.Sprintf(`\frac{%d}{%d}`, pq[0], pq[1])
		slash := fmt.Sprintf("%d/%d", pq[0], pq[1])
		off := new(big.Rat).Add(r, big.NewRat(1, 1000)).FloatString(6)
		add("math", `\boxed{`+frac+`}`, dec, true, "fraction vs exact decimal")
		add("math", `\boxed{`+dec+`}`, frac, true, "decimal vs fraction")
		add("math", `\boxed{`+slash+`}`, `\dfrac{`+fmt.Sprint(pq[0])+`}{`+fmt.Sprint(pq[1])+`}`, true, "slash vs dfrac")
		add("math", `\boxed{`+off+`}`, frac, false, "decimal off by 0.001")
		add("numeric", "Answer: "+dec, slash, true, "decimal vs slash")
		add("numeric", "Answer: "+off, frac, false, "off by 0.001")
	}
	// Repeating fractions: no finite decimal is equal.
	for _, pq := range [][2]int64{{1, 3}, {2, 3}, {1, 7}, {5, 6}, {4, 9}, {10, 11}} {
		r := big.NewRat(pq[0], pq[1])
		frac := fmt.Sprintf(`\frac{%d}{%d}`, pq[0], pq[1])
		for _, digits := range []int{2, 4, 8} {
			add("math", `\boxed{`+r.FloatString(digits)+`}`, frac, false, "rounded repeating decimal")
		}
		add("numeric", "Answer: "+r.FloatString(3), frac, false, "rounded repeating decimal")
	}
	// Thousands separators.
	for _, n := range []int64{1000, 2500, 12345, 999999, 1000000, 7654321, 1048576, 31000} {
		s := fmt.Sprint(n)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		sep := b.String()
		add("math", `\boxed{`+sep+`}`, s, true, "thousands separator")
		add("math", `\boxed{`+s+`}`, sep, true, "thousands separator in reference")
		add("numeric", "The answer is "+sep+".", s, true, "thousands separator in text")
		add("math", `\boxed{`+fmt.Sprint(n+1)+`}`, sep, false, "off by one")
		add("numeric", "#### "+fmt.Sprint(n-1), s, false, "off by one")
	}
	return out
}

func TestVerifierTable(t *testing.T) {
	cases := append(loadCases(t), generatedCases()...)
	if len(cases) < 300 {
		t.Fatalf("only %d verifier cases; the table must have at least 300", len(cases))
	}
	verifiers := map[string]Verifier{}
	perKind := map[string][2]int{}
	for _, c := range cases {
		v, ok := verifiers[c.kind]
		if !ok {
			var err error
			if v, err = NewVerifier(c.kind, nil); err != nil {
				t.Fatalf("kind %s: %v", c.kind, err)
			}
			verifiers[c.kind] = v
		}
		s := v.Verify(c.response, task.Example{ID: "case", Answer: c.answer, Meta: c.meta})
		if s.Correct != c.want {
			t.Errorf("line %d %s (%s): %q vs %q: correct=%v, want %v (extracted %q, reason %q)",
				c.line, c.kind, c.note, c.response, c.answer, s.Correct, c.want, s.Extracted, s.Reason)
		}
		wantValue := 0.0
		if s.Correct {
			wantValue = 1
		}
		if c.kind == "math_dapo" && !s.Correct {
			wantValue = -1
		}
		if s.Value != wantValue {
			t.Errorf("line %d: value %v, want %v", c.line, s.Value, wantValue)
		}
		pn := perKind[c.kind]
		if c.want {
			pn[0]++
		} else {
			pn[1]++
		}
		perKind[c.kind] = pn
	}
	t.Logf("%d cases; equivalent/non-equivalent per kind: %v", len(cases), perKind)
}

func TestMathReasons(t *testing.T) {
	tests := []struct{ pred, gt, reason string }{
		{"x+1", "x-1", "differ at x = "},
		{"x+1", "1+x", "equal as rational functions"},
		{`2^{9999999}`, `2^{9999998}`, ReasonUnverifiable},
		{"0.333", `\frac{1}{3}`, "333/1000 != 1/3"},
		{"(1,2)", "[1,2]", "brackets differ: () vs []"},
		{"2", "2.0000001", "2 != 20000001/10000000"},
		{`\sqrt{2}`, "1.414214", "equal within 5e-7"},
		{"1,000", "1000.0", "equal as exact rationals"},
		{`\{1,2\}`, `\{2,1\}`, "equal as sets"},
	}
	for _, tt := range tests {
		_, why := MathEqual(tt.pred, tt.gt)
		if !strings.Contains(why, tt.reason) {
			t.Errorf("MathEqual(%q, %q) reason %q, want ~%q", tt.pred, tt.gt, why, tt.reason)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{`\frac12`, `\frac{1}{2}`}, {`\frac1{72}`, `\frac{1}{72}`}, {"0.5", `\frac{1}{2}`}, {"3/4", `\frac{3}{4}`},
		{`\sqrt3`, `\sqrt{3}`}, {"x = 3", "3"}, {`10\text{ cm}`, "10"}, {`\left( 1 \right)`, "(1)"}, {`\dfrac{1}{2}`, `\frac{1}{2}`},
		{`5\%`, "5"}, {`\$3`, "3"}, {".5", `\frac{1}{2}`},
	} {
		if got := StripString(tt.in); got != tt.want {
			t.Errorf("StripString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{`x = \frac12`, `\frac{1}{2}`}, {"1,000", "1000"}, {`\text{5 dollars}`, "5"}, {`$\boxed{7}$`, "7"}, {`10^{\circ}`, "10"},
	} {
		if got := NormalizeFinalAnswer(tt.in); got != tt.want {
			t.Errorf("NormalizeFinalAnswer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	a, b := "1", "1"
	if !IsEquiv(nil, nil) || IsEquiv(&a, nil) || !IsEquiv(&a, &b) {
		t.Error("IsEquiv missing-value rules")
	}
	// DAPO keeps only the last 300 characters.
	long := "Answer: 5\n" + strings.Repeat("x", 300)
	if _, acc, pred := MathDAPOScore(long, "5"); acc || pred != "[INVALID]" {
		t.Errorf("300-char window: acc=%v pred=%q", acc, pred)
	}
}

func TestNewVerifierOptions(t *testing.T) {
	v, err := NewVerifier("math", map[string]string{"correct": "2", "incorrect": "-0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if s := v.Verify(`\boxed{3}`, task.Example{Answer: "3"}); s.Value != 2 {
		t.Errorf("correct value %v", s.Value)
	}
	if s := v.Verify(`\boxed{4}`, task.Example{Answer: "3"}); s.Value != -0.5 {
		t.Errorf("incorrect value %v", s.Value)
	}
	fb, _ := NewVerifier("math", map[string]string{"fallback": "last_number"})
	if s := fb.Verify("so it is 5", task.Example{Answer: "5"}); !s.Correct {
		t.Errorf("last_number fallback: %+v", s)
	}
	fold, _ := NewVerifier("exact", map[string]string{"casefold": "true", "after": "</think>"})
	if s := fold.Verify("<think>no</think> YES", task.Example{Answer: "yes"}); !s.Correct {
		t.Errorf("casefold/after: %+v", s)
	}
	for _, tt := range []struct {
		kind string
		opts map[string]string
		want string
	}{
		{"maths", nil, `unknown verifier kind "maths"`},
		{"math", map[string]string{"corect": "1"}, "unknown option(s) corect"},
		{"math", map[string]string{"correct": "one"}, `option correct="one": want a number`},
		{"format", map[string]string{"pattern": "("}, "pattern"},
		{"code", map[string]string{"timeout": "-1s"}, "want a positive duration"},
	} {
		_, err := NewVerifier(tt.kind, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %v: %v, want ~%q", tt.kind, tt.opts, err, tt.want)
		}
	}
}

func TestSafe(t *testing.T) {
	ex := task.Example{Answer: "1"}
	panicky := Safe(VerifierFunc(func(string, task.Example) Score { panic("bad regex") }), time.Second)
	if s := panicky.Verify("x", ex); s.Value != 0 || s.Correct || s.Reason != "verifier panicked: bad regex" {
		t.Errorf("panic: %+v", s)
	}
	slow := Safe(VerifierFunc(func(string, task.Example) Score {
		time.Sleep(2 * time.Second)
		return Score{Value: 1, Correct: true}
	}), 50*time.Millisecond)
	start := time.Now()
	if s := slow.Verify("x", ex); s.Value != 0 || s.Reason != "verifier timed out after 50ms" {
		t.Errorf("timeout: %+v", s)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Safe waited %v", d)
	}
	m, _ := NewVerifier("math", nil)
	if s := Safe(m, time.Second).Verify(`\boxed{1}`, ex); !s.Correct || s.Value != 1 {
		t.Errorf("pass-through: %+v", s)
	}
}

// BenchmarkMathVerify measures math verifications per second over 10k varied responses.
func BenchmarkMathVerify(b *testing.B) {
	cases := append(loadCases(b), generatedCases()...)
	var resp, ans []string
	for _, c := range cases {
		if c.kind == "math" {
			resp = append(resp, "Let me think step by step. "+strings.Repeat("We compute a few things. ", 20)+c.response)
			ans = append(ans, c.answer)
		}
	}
	const n = 10000
	exs := make([]task.Example, n)
	rs := make([]string, n)
	for i := range exs {
		exs[i] = task.Example{Answer: ans[i%len(ans)]}
		rs[i] = resp[i%len(resp)]
	}
	v, _ := NewVerifier("math", nil)
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for i := range rs {
			v.Verify(rs[i], exs[i])
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "verifications/s")
}
