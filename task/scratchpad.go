package task

import (
	"fmt"
	"strconv"
	"strings"
)

// scratchGen is addition with a worked reasoning part, for early-exit experiments (LYNX): the
// answer is the whole trace, column sums from the right separated by the cue character '|', the
// result, a redundant check by subtraction of each operand, then '#' and the result:
//
//	"347+285=" → "7+5=12|4+8+1=13|3+2+1=6|=632|632-285=347|632-347=285|#632"
//
// With option early=P, P% of the traces stop after the result ("...|=632|#632"), as reasoning
// models sometimes do; the model then knows how to answer from that point, which is what makes
// exiting there possible.
// The checker reads the number after the last '#', so a response that stops reasoning early and
// answers ("7+5=12|#632") is still scored on its answer.
type scratchGen struct {
	genBase
	digits intRange
	check  bool
	early  intRange
}

func (g *scratchGen) Next() (Example, error) {
	nd := g.digits.draw(g.rng)
	a, b := randDigits(g.rng, nd), randDigits(g.rng, nd)
	sum := a + b
	as, bs := fmt.Sprintf("%0*d", nd, a), fmt.Sprintf("%0*d", nd, b)
	var steps []string
	carry := 0
	for i := nd - 1; i >= 0; i-- {
		x, y := int(as[i]-'0'), int(bs[i]-'0')
		s := x + y + carry
		step := fmt.Sprintf("%d+%d", x, y)
		if carry > 0 {
			step += "+1"
		}
		steps = append(steps, fmt.Sprintf("%s=%d", step, s))
		carry = s / 10
	}
	r := strconv.FormatInt(sum, 10)
	steps = append(steps, "="+r)
	if g.check && g.rng.Intn(100) >= g.early.draw(g.rng) {
		steps = append(steps, fmt.Sprintf("%s-%d=%d", r, b, a), fmt.Sprintf("%s-%d=%d", r, a, b))
	}
	trace := strings.Join(steps, "|") + "|#" + r
	prompt := fmt.Sprintf("%d+%d=", a, b)
	return g.example(prompt, trace, map[string]string{"result": r}), nil
}

func (g *scratchGen) Alphabet() string { return uniqueChars(digits, "+-=|#") }

// Check compares the number after the last '#' with the result.
func (g *scratchGen) Check(response string, ex Example) Check {
	i := strings.LastIndexByte(response, '#')
	if i < 0 {
		return Check{Reason: "no '#' answer marker"}
	}
	want := ex.Meta["result"]
	if want == "" {
		return Check{Reason: "example has no result"}
	}
	got, _ := leading(response[i+1:], digits)
	if got != want {
		return Check{Extracted: got, Reason: fmt.Sprintf("got %q, want %q", got, want)}
	}
	return Check{Correct: true, Extracted: got}
}
