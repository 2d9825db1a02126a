package reward

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/polo-rl/polo/task"
)

// numericVerifier compares numbers: integers, decimals, fractions (3/4, \frac{3}{4}), percentages,
// thousands separators and scientific notation (1.5e3, 1.5\times10^{3}), exactly as rationals.
// The answer is taken from "####", an "Answer:" line or \boxed{...}, else the last number in the
// response. A percentage p% matches a reference equal to p or to p/100 (and vice versa).
type numericVerifier struct{ rv rewardValues }

func (v *numericVerifier) Verify(response string, ex task.Example) Score {
	pred, _, ok := ExtractAnswer(response, true)
	if !ok {
		return v.rv.score(false, "", ReasonNoAnswer+": no number in the response")
	}
	want, err := ParseNumber(ex.Answer)
	if err != nil {
		return v.rv.score(false, pred, fmt.Sprintf("reference answer %q: %v", clip(ex.Answer, 40), err))
	}
	got, err := ParseNumber(pred)
	if err != nil {
		// "Answer: 42 apples" -> 42
		if m := reNumber.FindAllString(pred, -1); len(m) > 0 {
			pred = m[len(m)-1]
			got, err = ParseNumber(pred)
		}
		if err != nil {
			return v.rv.score(false, pred, fmt.Sprintf("%s: %q is not a number", ReasonNoAnswer, clip(pred, 40)))
		}
	}
	if got.Equal(want) {
		return v.rv.score(true, pred, "")
	}
	return v.rv.score(false, pred, fmt.Sprintf("%s != %s", got, want))
}

// Number is a parsed numeric answer.
type Number struct {
	Value   *big.Rat // exact value (for p% this is p, not p/100)
	Percent bool     // written with a percent sign
}

func (n Number) String() string {
	s := n.Value.RatString()
	if n.Percent {
		s += "%"
	}
	return s
}

// Equal compares exactly; a percentage also matches its fraction (50% = 50 = 0.5).
func (n Number) Equal(m Number) bool {
	if n.Value.Cmp(m.Value) == 0 {
		return true
	}
	hundred := big.NewRat(100, 1)
	if n.Percent && new(big.Rat).Quo(n.Value, hundred).Cmp(m.Value) == 0 {
		return true
	}
	return m.Percent && new(big.Rat).Quo(m.Value, hundred).Cmp(n.Value) == 0
}

// ParseNumber reads one rational number written in any of the usual ways: "1,000", "-3.5",
// "3/4", "\frac{3}{4}", "\dfrac34", "50%", "50\%", "1.5e3", "1.5 \times 10^{3}", "$12.50".
// Irrational or symbolic input is an error.
func ParseNumber(s string) (Number, error) {
	s = strings.TrimSpace(s)
	for _, r := range [][2]string{{`\$`, ""}, {"$", ""}, {`\!`, ""}, {`\,`, ""}, {"{,}", ","}, {"−", "-"}, {"×", `\times`}, {`\left`, ""}, {`\right`, ""}, {`\dfrac`, `\frac`}, {`\tfrac`, `\frac`}} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "."))
	var n Number
	if strings.HasSuffix(s, `\%`) {
		n.Percent, s = true, strings.TrimSuffix(s, `\%`)
	} else if strings.HasSuffix(s, "%") {
		n.Percent, s = true, strings.TrimSuffix(s, "%")
	}
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if s == "" {
		return n, fmt.Errorf("empty")
	}
	if reThousand.MatchString(s) {
		s = strings.ReplaceAll(s, ",", "")
	}
	if strings.Contains(s, `\frac`) {
		if fixed, err := fixFracs(s); err == nil {
			s = fixed
		}
	}
	node, err := parseMath(s)
	if err != nil {
		return n, err
	}
	v, err := eval(node, nil)
	if err != nil {
		return n, err
	}
	if v.r == nil {
		return n, fmt.Errorf("%q is not a rational number", clip(s, 30))
	}
	n.Value = v.r
	return n, nil
}

var reThousand = regexp.MustCompile(`^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$`)
