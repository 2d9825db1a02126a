package reward

import (
	"strings"

	"github.com/polo-rl/polo/task"
)

// mathVerifier extracts the final answer and decides equivalence with MathEqual.
type mathVerifier struct {
	rv         rewardValues
	strict     bool     // only the marked places (ExtractAnswer)
	lastNumber bool     // strict mode: fall back to the last number
	order      []string // lenient mode: sources in order
}

// newMathVerifier reads the options: strict=true (only \boxed, "Answer:" and "####", plus the
// last number with fallback=last_number) or extract=<sources> (default boxed,phrase,latex,number).
func newMathVerifier(o *opts, rv rewardValues) *mathVerifier {
	m := &mathVerifier{rv: rv, order: DefaultExtractOrder}
	m.strict = o.Bool("strict", false)
	m.lastNumber = o.Choice("fallback", "none", "none", "last_number") == "last_number"
	if s, ok := o.Get("extract"); ok {
		order, err := parseExtractOrder(s)
		switch {
		case err != nil:
			o.Fail("%v", err)
		case m.strict:
			o.Fail("options strict=true and extract=%s exclude each other", s)
		}
		m.order = order
	}
	return m
}

func (m *mathVerifier) Verify(response string, ex task.Example) Score {
	var pred string
	var ok bool
	if m.strict {
		pred, _, ok = ExtractAnswer(response, m.lastNumber)
	} else {
		pred, _, ok = ExtractAnswerFrom(response, m.order)
	}
	if !ok {
		if m.strict {
			return m.rv.score(false, "", ReasonNoAnswer+`: no \boxed{...}, "Answer:" or "####" in the response`)
		}
		return m.rv.score(false, "", ReasonNoAnswer+": nothing found by "+strings.Join(m.order, ", "))
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

// MathEqual decides whether two final answers are equivalent:
//  1. string equality, raw or after the Hendrycks normalisation (IsEquiv);
//  2. otherwise both are parsed (mathparse.go) and compared by comparer.equal (mathequiv.go):
//     exact rationals, random-point evaluation of formulas, and the rules of sets, tuples,
//     intervals, matrices, equations and inequalities;
//  3. answers that do not parse compare as text (case and spacing ignored).
//
// Undecidable comparisons are false with a reason starting with ReasonUnverifiable. The reason
// always says how it was decided.
func MathEqual(pred, gt string) (bool, string) {
	p, g := strings.TrimSpace(pred), strings.TrimSpace(gt)
	if p == "" || g == "" {
		return false, ReasonNoAnswer + ": empty answer"
	}
	if p == g {
		return true, "equal as strings"
	}
	if len(p) <= maxAnswerLen && len(g) <= maxAnswerLen && IsEquiv(&p, &g) {
		return true, "equal after normalisation"
	}
	np, errP := parseMath(p)
	ng, errG := parseMath(g)
	if errP == nil && errG == nil {
		v := new(comparer).equal(np, ng)
		if v.decided || v.eq {
			return v.eq, v.reason
		}
		if textKey(p) == textKey(g) {
			return true, "equal as text"
		}
		return false, v.reason
	}
	if textKey(p) == textKey(g) {
		return true, "equal as text"
	}
	switch {
	case errP != nil && errG != nil:
		return false, ReasonUnverifiable + ": neither answer parses (" + errP.Error() + ") and the texts differ"
	case errG != nil:
		return false, ReasonUnverifiable + ": reference does not parse (" + errG.Error() + ")"
	}
	return false, "answer " + `"` + clip(p, 30) + `"` + " does not parse (" + errP.Error() + ")"
}

// textKey is the case- and space-insensitive form used when math parsing does not apply.
func textKey(s string) string {
	if len(s) > maxAnswerLen {
		return s
	}
	s = strings.NewReplacer(`\text{`, "", `\mathrm{`, "", `\textbf{`, "", "{", "", "}", "", "$", "", `\ `, "", `\,`, "", "~", "").Replace(s)
	return strings.ToLower(strings.Join(strings.Fields(strings.TrimSuffix(strings.TrimSpace(s), ".")), ""))
}
