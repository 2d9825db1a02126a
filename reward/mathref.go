package reward

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// This file reproduces the two reference math checkers of the spec (A7.1–A7.3) step by step:
// verl's Hendrycks-MATH checker (LastBoxed, RemoveBoxed, StripString, IsEquiv) and the
// DAPO/Minerva checker (NormalizeFinalAnswer, MathDAPOScore). They are string comparators; the
// "math" verifier (math.go) builds on them with exact arithmetic.

// LastBoxed returns the last \boxed{...} (or, if there is none, the last \fbox{...}) including the
// command and its balanced braces. As in verl, if the text contains "\boxed " (a space, no brace)
// it returns "\boxed " plus the text after the last "\boxed " up to the next "$".
func LastBoxed(s string) (string, bool) {
	if strings.Contains(s, `\boxed `) {
		parts := strings.Split(s, `\boxed `)
		tail, _, _ := strings.Cut(parts[len(parts)-1], "$")
		return `\boxed ` + tail, true
	}
	idx := -1
	if strings.Contains(s, `\boxed`) { // fast vectorised test before the slower LastIndex
		idx = strings.LastIndex(s, `\boxed`)
	}
	if idx < 0 {
		idx = strings.LastIndex(s, `\fbox`)
		if idx < 0 {
			return "", false
		}
	}
	depth, opened := 0, false
	for i := idx; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
			opened = true
		case '}':
			depth--
			if opened && depth == 0 {
				return s[idx : i+1], true
			}
		}
	}
	return "", false
}

// RemoveBoxed strips "\boxed{" ... "}" or a leading "\boxed ".
func RemoveBoxed(s string) (string, bool) {
	if strings.HasPrefix(s, `\boxed `) {
		return s[len(`\boxed `):], true
	}
	if strings.HasPrefix(s, `\boxed{`) && strings.HasSuffix(s, "}") {
		return s[len(`\boxed{`) : len(s)-1], true
	}
	return "", false
}

var errStrip = errors.New("normalisation failed")

// StripString applies the Hendrycks-MATH normalisation (spec A7.2, steps 1–17, in order). Where
// the reference implementation raises an exception, the input is returned unchanged (IsEquiv
// then falls back to raw equality, as verl does).
func StripString(s string) string {
	out, err := stripString(s)
	if err != nil {
		return s
	}
	return out
}

func stripString(s string) (string, error) {
	s = strings.ReplaceAll(s, "\n", "")
	s = strings.ReplaceAll(s, `\!`, "")
	s = strings.ReplaceAll(s, `\\`, `\`)
	s = strings.ReplaceAll(s, "tfrac", "frac")
	s = strings.ReplaceAll(s, "dfrac", "frac")
	s = strings.ReplaceAll(s, `\left`, "")
	s = strings.ReplaceAll(s, `\right`, "")
	s = strings.ReplaceAll(s, `^{\circ}`, "")
	s = strings.ReplaceAll(s, `^\circ`, "")
	s = strings.ReplaceAll(s, `\$`, "")
	if strings.Contains(s, `\text{ `) { // units on the right
		parts := strings.Split(s, `\text{ `)
		if len(parts) != 2 {
			return "", errStrip
		}
		s = parts[0]
	}
	s = strings.ReplaceAll(s, `\%`, "")
	s = strings.ReplaceAll(s, " .", " 0.")
	s = strings.ReplaceAll(s, "{.", "{0.")
	if s == "" {
		return s, nil
	}
	if s[0] == '.' {
		s = "0" + s
	}
	if parts := strings.Split(s, "="); len(parts) == 2 && len(parts[0]) <= 2 {
		s = parts[1]
	}
	var err error
	if s, err = fixSqrt(s); err != nil {
		return "", err
	}
	s = strings.ReplaceAll(s, " ", "")
	if s, err = fixFracs(s); err != nil {
		return "", err
	}
	if s == "0.5" {
		s = `\frac{1}{2}`
	}
	return fixSlash(s)
}

// fixSqrt turns \sqrt3 into \sqrt{3}.
func fixSqrt(s string) (string, error) {
	if !strings.Contains(s, `\sqrt`) {
		return s, nil
	}
	parts := strings.Split(s, `\sqrt`)
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		if p == "" {
			return "", errStrip
		}
		if p[0] != '{' {
			b.WriteString(`\sqrt{` + p[:1] + "}" + p[1:])
		} else {
			b.WriteString(`\sqrt` + p)
		}
	}
	return b.String(), nil
}

// fixFracs turns \frac12 into \frac{1}{2} and \frac1{72} into \frac{1}{72}.
func fixFracs(s string) (string, error) {
	parts := strings.Split(s, `\frac`)
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		b.WriteString(`\frac`)
		if p == "" {
			return "", errStrip
		}
		if p[0] == '{' {
			b.WriteString(p)
			continue
		}
		if len(p) < 2 {
			return s, nil
		}
		a, c := p[:1], p[1:2]
		if c != "{" {
			b.WriteString("{" + a + "}{" + c + "}" + p[2:])
		} else {
			b.WriteString("{" + a + "}" + c + p[2:])
		}
	}
	return b.String(), nil
}

// fixSlash turns "a/b" with integers a, b into \frac{a}{b}. Like the reference, a non-integer
// side is an error (so the comparison falls back to raw equality).
func fixSlash(s string) (string, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 2 {
		return s, nil
	}
	a, err1 := pyInt(parts[0])
	b, err2 := pyInt(parts[1])
	if err1 != nil || err2 != nil {
		return "", errStrip
	}
	if s != strconv.Itoa(a)+"/"+strconv.Itoa(b) {
		return s, nil
	}
	return `\frac{` + strconv.Itoa(a) + "}{" + strconv.Itoa(b) + "}", nil
}

// pyInt parses like Python's int(): surrounding whitespace and a sign are allowed.
func pyInt(s string) (int, error) {
	return strconv.Atoi(strings.TrimSpace(s))
}

// IsEquiv is verl's comparison: both missing is true, one missing is false, otherwise the
// normalised strings must be equal (raw equality if normalisation fails).
func IsEquiv(a, b *string) bool {
	if a == nil && b == nil {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	sa, err1 := stripString(*a)
	sb, err2 := stripString(*b)
	if err1 != nil || err2 != nil {
		return *a == *b
	}
	return sa == sb
}

// VerlMathScore is verl's math.compute_score: correct iff the last boxed answer of the response
// is IsEquiv to the ground truth.
func VerlMathScore(response, gt string) (correct bool, extracted, reason string) {
	boxed, ok := LastBoxed(response)
	if !ok {
		return false, "", ReasonNoAnswer + `: no complete \boxed{...}`
	}
	inner, ok := RemoveBoxed(boxed)
	if !ok {
		return false, boxed, ReasonNoAnswer + ": " + boxed + " is not \\boxed{...}"
	}
	if IsEquiv(&inner, &gt) {
		return true, inner, ""
	}
	return false, inner, "not equivalent after normalisation: " + StripString(inner) + " vs " + StripString(gt)
}

// --- DAPO / Minerva ---

var dapoSubstitutions = [][2]string{
	{"an ", ""}, {"a ", ""}, {".$", "$"}, {`\$`, ""}, {`\ `, ""}, {" ", ""}, {"mbox", "text"},
	{`,\text{and}`, ","}, {`\text{and}`, ","}, {`\text{m}`, `\text{}`},
}

var dapoRemoved = []string{
	"square", "ways", "integers", "dollars", "mph", "inches", "hours", "km", "units", `\ldots`, "sue",
	"points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals",
	"edges", "students", "childrentickets", "multiples", `\text{s}`, `\text{.}`, "\\text{\ns}",
	`\text{}^2`, `\text{}^3`, "\\text{\n}", `\text{}`, `\mathrm{th}`, `^\circ`, `^{\circ}`, `\;`, `,\!`,
	"{,}", `"`, `\dots`,
}

var (
	reDollar   = regexp.MustCompile(`(.*?)(\$)(.*?)(\$)(.*)`)
	reText     = regexp.MustCompile(`(\\text\{)(.*?)(\})`)
	reTextbf   = regexp.MustCompile(`(\\textbf\{)(.*?)(\})`)
	reOverline = regexp.MustCompile(`(\\overline\{)(.*?)(\})`)
	reBoxedAll = regexp.MustCompile(`(\\boxed\{)(.*)(\})`)
	reFracAB   = regexp.MustCompile(`(frac)([^{])(.)`)
	reSqrtA    = regexp.MustCompile(`(sqrt)([^{])`)
	reAnswer   = regexp.MustCompile(`(?i)Answer\s*:\s*([^\n]+)`)
)

// NormalizeFinalAnswer is the Minerva/DAPO answer normalisation (spec A7.3).
func NormalizeFinalAnswer(s string) string {
	parts := strings.Split(s, "=")
	s = parts[len(parts)-1]
	for _, sub := range dapoSubstitutions {
		s = strings.ReplaceAll(s, sub[0], sub[1])
	}
	for _, r := range dapoRemoved {
		s = strings.ReplaceAll(s, r, "")
	}
	s = reDollar.ReplaceAllString(s, "$$${3}$$")
	s = reText.ReplaceAllString(s, "${2}")
	s = reTextbf.ReplaceAllString(s, "${2}")
	s = reOverline.ReplaceAllString(s, "${2}")
	s = reBoxedAll.ReplaceAllString(s, "${2}")
	s = reFracAB.ReplaceAllString(s, "frac{${2}}{${3}}")
	s = reSqrtA.ReplaceAllString(s, "sqrt{${2}}")
	s = strings.ReplaceAll(s, "$", "")
	if d := strings.ReplaceAll(s, ",", ""); d != "" && isDigits(d) {
		s = d
	}
	return strings.TrimSpace(s)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// MathDAPOScore is the DAPO checker: the last "Answer: ..." line within the last 300 characters,
// normalised, must equal the normalised ground truth. score is +1 or -1.
func MathDAPOScore(response, gt string) (score float64, acc bool, pred string) {
	if r := []rune(response); len(r) > 300 {
		response = string(r[len(r)-300:])
	}
	pred = "[INVALID]"
	if m := reAnswer.FindAllStringSubmatch(response, -1); len(m) > 0 {
		pred = m[len(m)-1][1]
	}
	pred = NormalizeFinalAnswer(pred)
	acc = pred == NormalizeFinalAnswer(gt)
	if acc {
		return 1, true, pred
	}
	return -1, false, pred
}
