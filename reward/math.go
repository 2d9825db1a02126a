package reward

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/polo-rl/polo/task"
)

// ExtractAnswer finds the final answer in a response. When the response has a "</think>" only the
// text after the last one is searched. The order is: the last \boxed{...} (balanced braces), the
// last "Answer: ..." line, the text after the last "####", and, when lastNumber is set, the last
// number in the text. method names which rule matched.
func ExtractAnswer(response string, lastNumber bool) (answer, method string, ok bool) {
	if i := strings.LastIndex(response, "</think>"); i >= 0 {
		response = response[i+len("</think>"):]
	}
	if b, found := LastBoxed(response); found {
		if in, ok := RemoveBoxed(b); ok {
			return strings.TrimSpace(in), "boxed", true
		}
		if strings.HasPrefix(b, `\fbox{`) {
			return strings.TrimSpace(b[len(`\fbox{`) : len(b)-1]), "boxed", true
		}
	}
	if m := reAnswer.FindAllStringSubmatch(response, -1); len(m) > 0 {
		a := strings.TrimSpace(m[len(m)-1][1])
		a = strings.TrimSuffix(a, ".")
		a = strings.TrimSpace(strings.Trim(a, "$"))
		if a != "" {
			return a, "answer_line", true
		}
	}
	if i := strings.LastIndex(response, "####"); i >= 0 {
		a, _, _ := strings.Cut(response[i+4:], "\n")
		a = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(a), "."))
		if a != "" {
			return a, "hashes", true
		}
	}
	if lastNumber {
		if m := reNumber.FindAllString(response, -1); len(m) > 0 {
			return m[len(m)-1], "last_number", true
		}
	}
	return "", "", false
}

// reNumber finds numbers in free text: thousands separators, decimals, scientific notation,
// simple fractions and percentages.
var reNumber = regexp.MustCompile(`-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\s*/\s*\d+)?%?|-?\.\d+%?`)

// mathVerifier extracts the final answer and decides equivalence with MathEqual.
type mathVerifier struct {
	rv       rewardValues
	fallback string
}

func (m *mathVerifier) Verify(response string, ex task.Example) Score {
	pred, _, ok := ExtractAnswer(response, m.fallback == "last_number")
	if !ok {
		return m.rv.score(false, "", ReasonNoAnswer+`: no \boxed{...}, "Answer:" or "####" in the response`)
	}
	gt := ex.Answer
	if b, found := LastBoxed(gt); found {
		if in, ok := RemoveBoxed(b); ok {
			gt = in
		}
	}
	eq, reason := MathEqual(pred, gt)
	return m.rv.score(eq, pred, reason)
}

// MathEqual decides whether two final answers are equivalent (spec A7.5 profile):
//  1. string equality after the Hendrycks normalisation (StripString) and light clean-up
//     (units in \text{}, spacing commands, $, a trailing period);
//  2. tuples, intervals and sets: split at top-level commas and compare element-wise; tuple and
//     interval brackets must match, sets (\{...\} or a bare list) are order-free multisets;
//  3. numbers: evaluate integers, decimals, fractions, roots, powers and \pi; exact rational
//     comparison when both are rational, else relative tolerance 1e-6;
//  4. anything else is false with a reason starting with ReasonUnverifiable.
//
// The reason says how it was decided.
func MathEqual(pred, gt string) (bool, string) {
	if IsEquiv(&pred, &gt) {
		return true, "equal after normalisation"
	}
	a, b := cleanAnswer(pred), cleanAnswer(gt)
	if a == b {
		return true, "equal after normalisation"
	}
	return equalStruct(a, b)
}

var (
	reTextUnit = regexp.MustCompile(`\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}(?:\^[23]|\^\{[23]\})?$`)
	reWrapped  = regexp.MustCompile(`^\\(?:text|textbf|mathrm|mathbf|mbox)\{([^{}]*)\}$`)
	reThousand = regexp.MustCompile(`^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$`)
)

// cleanAnswer is the normalisation on top of StripString: spacing commands, $, unicode signs,
// degree marks, a trailing unit in \text{...}, a trailing period or percent sign.
func cleanAnswer(s string) string {
	// verl's fixSqrt would turn \sqrt[3]{x} into \sqrt{[}3]{x}; protect n-th roots.
	const nthRoot = "\x00root["
	s = strings.ReplaceAll(s, `\sqrt[`, nthRoot)
	out, err := stripString(s)
	if err == nil {
		s = out
	}
	s = strings.ReplaceAll(s, nthRoot, `\sqrt[`)
	for _, r := range [][2]string{
		{`\displaystyle`, ""}, {`\,`, ""}, {`\;`, ""}, {`\:`, ""}, {`\ `, ""}, {"~", ""}, {"$", ""},
		{"−", "-"}, {"×", `\times`}, {"·", `\cdot`}, {"÷", `\div`}, {"π", `\pi`}, {"∞", `\infty`},
		{"°", ""}, {`^{\circ}`, ""}, {`^\circ`, ""}, {`\dfrac`, `\frac`}, {`\tfrac`, `\frac`}, {`\left`, ""}, {`\right`, ""},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	s = strings.TrimSpace(s)
	if m := reWrapped.FindStringSubmatch(s); m != nil {
		s = strings.TrimSpace(m[1])
	}
	if loc := reTextUnit.FindStringIndex(s); loc != nil && loc[0] > 0 {
		s = strings.TrimSpace(s[:loc[0]])
	}
	s = strings.TrimSuffix(s, ".")
	s = strings.TrimSuffix(s, `\%`)
	s = strings.TrimSuffix(s, "%")
	return strings.ReplaceAll(s, " ", "")
}

// shape is the top-level structure of an answer.
type shape struct {
	kind        string // "scalar", "seq" (tuple or interval), "set"
	open, close byte
	items       []string
}

func parseShape(s string) shape {
	if reThousand.MatchString(s) {
		return shape{kind: "scalar", items: []string{strings.ReplaceAll(s, ",", "")}}
	}
	if strings.HasPrefix(s, `\{`) && strings.HasSuffix(s, `\}`) && len(s) >= 4 {
		return shape{kind: "set", items: splitTop(s[2 : len(s)-2])}
	}
	if len(s) >= 2 && strings.IndexByte("([", s[0]) >= 0 && strings.IndexByte(")]", s[len(s)-1]) >= 0 && enclosed(s) {
		if items := splitTop(s[1 : len(s)-1]); len(items) > 1 {
			return shape{kind: "seq", open: s[0], close: s[len(s)-1], items: items}
		}
	}
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' && enclosed(s) {
		if items := splitTop(s[1 : len(s)-1]); len(items) > 1 {
			return shape{kind: "set", items: items}
		}
	}
	if items := splitTop(s); len(items) > 1 {
		return shape{kind: "set", items: items}
	}
	return shape{kind: "scalar", items: []string{s}}
}

// enclosed reports whether the bracket at s[0] closes only at the last character.
func enclosed(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 && i != len(s)-1 {
				return false
			}
		}
	}
	return depth == 0
}

// splitTop splits at commas outside any bracket.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func equalStruct(a, b string) (bool, string) {
	sa, sb := parseShape(a), parseShape(b)
	switch {
	case sa.kind != sb.kind:
		return false, fmt.Sprintf("different structure: %s %q vs %s %q", sa.kind, clip(a, 30), sb.kind, clip(b, 30))
	case sa.kind == "scalar":
		return equalScalar(sa.items[0], sb.items[0])
	case len(sa.items) != len(sb.items):
		return false, fmt.Sprintf("%d elements vs %d", len(sa.items), len(sb.items))
	case sa.kind == "seq":
		if sa.open != sb.open || sa.close != sb.close {
			return false, fmt.Sprintf("brackets differ: %c%c vs %c%c", sa.open, sa.close, sb.open, sb.close)
		}
		for i := range sa.items {
			if ok, why := equalElem(sa.items[i], sb.items[i]); !ok {
				return false, fmt.Sprintf("element %d: %s", i+1, why)
			}
		}
		return true, "equal element-wise"
	}
	// sets: multiset matching, order-free
	used := make([]bool, len(sb.items))
	for _, x := range sa.items {
		found := false
		for j, y := range sb.items {
			if !used[j] {
				if ok, _ := equalElem(x, y); ok {
					used[j], found = true, true
					break
				}
			}
		}
		if !found {
			return false, fmt.Sprintf("set element %q has no match", clip(x, 30))
		}
	}
	return true, "equal as sets"
}

func equalElem(a, b string) (bool, string) {
	if a == b {
		return true, "equal"
	}
	return equalStruct(a, b)
}

func equalScalar(a, b string) (bool, string) {
	if a == b {
		return true, "equal after normalisation"
	}
	va, errA := evalExpr(a)
	vb, errB := evalExpr(b)
	switch {
	case errA == nil && errB == nil:
		if equalNum(va, vb) {
			if va.exact && vb.exact {
				return true, "equal as exact rationals"
			}
			return true, "equal within 1e-6"
		}
		return false, fmt.Sprintf("%s != %s", numString(va), numString(vb))
	case errA != nil && errB != nil:
		return false, fmt.Sprintf("%s: %q vs %q are not numbers and differ as strings", ReasonUnverifiable, clip(a, 30), clip(b, 30))
	case errA != nil:
		return false, fmt.Sprintf("answer %q is not a number (%v); reference is %s", clip(a, 30), errA, numString(vb))
	default:
		return false, fmt.Sprintf("%s: reference %q is not a number (%v)", ReasonUnverifiable, clip(b, 30), errB)
	}
}

func numString(n num) string {
	if n.exact {
		return n.r.RatString()
	}
	return fmt.Sprintf("%.9g", n.f)
}
