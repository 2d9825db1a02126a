package reward

import (
	"fmt"
	"regexp"
	"strings"
)

// This file finds the final answer in a response. Lenient extraction follows the reference
// graders (Math-Verify, lighteval): a response is right when its answer is right, whether or not
// it was boxed. Strict extraction (ExtractAnswer) only reads the marked places, for users who
// also reward the format.

// Extraction sources, in their default order.
const (
	SourceBoxed  = "boxed"  // the last \boxed{…} or \fbox{…}
	SourcePhrase = "phrase" // "final answer is …", "the answer is …", "Answer: …", "#### …"
	SourceLatex  = "latex"  // the last $…$, $$…$$, \(…\) or \[…\]
	SourceNumber = "number" // the last number
)

// DefaultExtractOrder is the lenient order of the "math" verifier.
var DefaultExtractOrder = []string{SourceBoxed, SourcePhrase, SourceLatex, SourceNumber}

// ExtractAnswer finds the final answer in a response the strict way. When the response has a
// "</think>" only the text after the last one is searched. The order is: the last \boxed{...}
// (balanced braces), the last "Answer: ..." line, the text after the last "####", and, when
// lastNumber is set, the last number in the text. method names which rule matched.
func ExtractAnswer(response string, lastNumber bool) (answer, method string, ok bool) {
	response = afterThink(response)
	if a, ok := boxedAnswer(response); ok {
		return a, "boxed", true
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
		if a, ok := lastNumberIn(response); ok {
			return a, "last_number", true
		}
	}
	return "", "", false
}

// ExtractAnswerFrom finds the final answer trying the sources in order (see DefaultExtractOrder).
func ExtractAnswerFrom(response string, order []string) (answer, method string, ok bool) {
	response = afterThink(response)
	for _, src := range order {
		var a string
		switch src {
		case SourceBoxed:
			a, ok = boxedAnswer(response)
		case SourcePhrase:
			a, ok = phraseAnswer(response)
		case SourceLatex:
			a, ok = lastLatex(response)
		case SourceNumber:
			a, ok = lastNumberIn(response)
		}
		if ok {
			return a, src, true
		}
	}
	return "", "", false
}

// parseExtractOrder reads the "extract" option: sources separated by commas.
func parseExtractOrder(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case SourceBoxed, SourcePhrase, SourceLatex, SourceNumber:
			out = append(out, f)
		default:
			return nil, fmt.Errorf("option extract=%q: %q is not one of boxed, phrase, latex, number", s, f)
		}
	}
	return out, nil
}

func afterThink(s string) string {
	if !strings.Contains(s, "</think>") { // Contains is a vectorised scan; LastIndex is not
		return s
	}
	if i := strings.LastIndex(s, "</think>"); i >= 0 {
		return s[i+len("</think>"):]
	}
	return s
}

func boxedAnswer(s string) (string, bool) {
	b, found := LastBoxed(s)
	if !found {
		return "", false
	}
	if in, ok := RemoveBoxed(b); ok {
		return strings.TrimSpace(in), true
	}
	if strings.HasPrefix(b, `\fbox{`) {
		return strings.TrimSpace(b[len(`\fbox{`) : len(b)-1]), true
	}
	return "", false
}

// phraseAnswer takes the math inside the last answer phrase ("final answer is …", "the answer
// is …", "Answer: …", "#### …"), not the whole sentence: "The final answer is 12,000,023. I hope
// it is correct." gives 12,000,023, and "Final answer: the largest $n$ is 34." gives 34. Only the
// last few phrases are tried, so a response full of phrases stays cheap.
func phraseAnswer(s string) (string, bool) {
	end := len(s)
	for tries := 0; tries < 3; tries++ {
		at := lastPhraseEnd(s[:end])
		if at.start < 0 {
			return "", false
		}
		if a, ok := mathInPhrase(sentence(s[at.end:])); ok {
			return a, true
		}
		end = at.start
	}
	return "", false
}

type span struct{ start, end int }

// lastPhraseEnd finds the last answer phrase in s by a backward byte scan (a regexp over a
// 1 MB response costs ~100 ms; this costs ~1 ms).
func lastPhraseEnd(s string) span {
	hashes := strings.LastIndex(s, "####")
	for i := len(s) - 6; i > hashes; i-- {
		if s[i]|0x20 != 'a' || !strings.EqualFold(s[i:i+6], "answer") {
			continue
		}
		j := skipSpaces(s, i+6)
		switch {
		case j < len(s) && s[j] == ':':
			return span{i, j + 1}
		case j+2 <= len(s) && strings.EqualFold(s[j:j+2], "is") && (j+2 == len(s) || !isLetter(s[j+2])):
			k := skipSpaces(s, j+2)
			if k < len(s) && s[k] == ':' {
				k++
			}
			return span{i, k}
		case hasFoldSuffix(strings.TrimRight(s[:i], " \t"), "final"):
			if j < len(s) && s[j] == '=' {
				j++
			}
			return span{i, j}
		}
	}
	if hashes >= 0 {
		return span{hashes, hashes + 4}
	}
	return span{-1, -1}
}

func skipSpaces(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func hasFoldSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// sentence cuts text at the end of its first sentence or line (a period followed by a space or
// the end, outside $…$; decimals like 3.5 do not end a sentence).
func sentence(s string) string {
	if len(s) > 1000 {
		s = s[:1000]
	}
	inMath := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '$':
			inMath = !inMath
		case '\n':
			if strings.TrimSpace(s[:i]) != "" {
				return s[:i]
			}
		case '.':
			if !inMath && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n') {
				return s[:i]
			}
		}
	}
	return s
}

func mathInPhrase(c string) (string, bool) {
	c = strings.TrimSpace(c)
	c = strings.TrimSpace(strings.TrimLeft(c, ":= "))
	if c == "" {
		return "", false
	}
	if strings.HasPrefix(c, "$") || strings.HasPrefix(c, `\(`) || strings.HasPrefix(c, `\[`) {
		if a, ok := firstLatex(c); ok {
			return a, true
		}
	}
	if n, err := parseMath(c); err == nil && !hasText(n) {
		return c, true
	}
	// the later of the last LaTeX piece and the last number
	env, envEnd := lastLatexAt(c)
	num, numEnd := lastNumberAt(c)
	switch {
	case envEnd < 0 && numEnd < 0:
		return "", false
	case envEnd >= numEnd:
		return env, true
	}
	return num, true
}

func hasText(n *node) bool {
	if n.op == opText {
		return true
	}
	for _, k := range n.kids {
		if hasText(k) {
			return true
		}
	}
	return false
}

func lastLatex(s string) (string, bool) {
	a, end := lastLatexAt(s)
	return a, end >= 0
}

func firstLatex(s string) (string, bool) {
	var first string
	found := false
	scanLatex(s, func(body string, end int) bool {
		first, found = body, true
		return false
	})
	return first, found
}

// lastLatexAt returns the content of the last non-empty math environment and where it ends (-1
// when there is none).
func lastLatexAt(s string) (string, int) {
	last, lastEnd := "", -1
	scanLatex(s, func(body string, end int) bool {
		last, lastEnd = body, end
		return true
	})
	return last, lastEnd
}

// scanLatex calls f for each math environment in s, in order, until f returns false. It is
// linear in len(s): once a closing delimiter is known to be missing it is not searched again.
func scanLatex(s string, f func(body string, end int) bool) {
	missing := map[string]bool{}
	for i := 0; i < len(s); {
		j := strings.IndexAny(s[i:], `$\`)
		if j < 0 {
			return
		}
		i += j
		var open, closer string
		switch {
		case strings.HasPrefix(s[i:], `\(`):
			open, closer = `\(`, `\)`
		case strings.HasPrefix(s[i:], `\[`):
			open, closer = `\[`, `\]`
		case s[i] == '\\':
			i += 2 // \$ and other escapes
			continue
		case strings.HasPrefix(s[i:], "$$"):
			open, closer = "$$", "$$"
		default:
			open, closer = "$", "$"
		}
		if missing[closer] {
			i += len(open)
			continue
		}
		k := indexUnescaped(s[i+len(open):], closer)
		if k < 0 {
			missing[closer] = true
			i += len(open)
			continue
		}
		body := strings.TrimSpace(s[i+len(open) : i+len(open)+k])
		end := i + len(open) + k + len(closer)
		i = end
		if body != "" && !f(body, end) {
			return
		}
	}
}

// indexUnescaped is strings.Index that skips a closer preceded by a backslash (\$ in $\$5$).
func indexUnescaped(s, closer string) int {
	off := 0
	for {
		k := strings.Index(s[off:], closer)
		if k < 0 {
			return -1
		}
		if closer != "$" || off+k == 0 || s[off+k-1] != '\\' {
			return off + k
		}
		off += k + 1
	}
}

// reNumber finds numbers in free text: thousands separators, decimals, scientific notation,
// simple fractions and percentages.
var reNumber = regexp.MustCompile(`-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\s*/\s*\d+)?%?|-?\.\d+%?`)

func lastNumberIn(s string) (string, bool) {
	a, end := lastNumberAt(s)
	return a, end >= 0
}

// lastNumberAt finds the last number without scanning the whole text: it runs the regexp on a
// window that starts before the number containing the last digit.
func lastNumberAt(s string) (string, int) {
	last := strings.LastIndexAny(s, "0123456789")
	if last < 0 {
		return "", -1
	}
	start := last
	for start > 0 && strings.IndexByte("0123456789,./ eE+-%", s[start-1]) >= 0 && last-start < 400 {
		start--
	}
	if start -= 8; start < 0 {
		start = 0
	}
	m := reNumber.FindAllStringIndex(s[start:], -1)
	if len(m) == 0 {
		return "", -1
	}
	loc := m[len(m)-1]
	return s[start+loc[0] : start+loc[1]], start + loc[1]
}
