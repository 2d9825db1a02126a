// Package reward scores responses: verifiers (exact, numeric, math, format, code in a sandbox, and
// the synthetic tasks' own checkers) and reward shaping (DAPO overlong, OTC, HAPO, DRPO length
// weights, ASPO, rule-based rewards). It never touches log-probabilities.
//
// Shaping terms are plain functions or small stateful objects, so they compose with any verifier;
// per-response terms stay separate in a Components value until Combine applies the weights.
package reward

import (
	"fmt"
	"github.com/polo-rl/polo/internal/optparse"
	"strconv"
	"strings"
	"time"

	"github.com/polo-rl/polo/task"
)

// Score is a verifier's verdict on one response.
type Score struct {
	Value     float64 // the reward (by default 1 when correct, 0 otherwise)
	Correct   bool
	Extracted string // the answer as read from the response
	Reason    string // why it is wrong, or how it was decided
}

// Verifier scores one response against an example's reference answer.
type Verifier interface {
	Verify(response string, ex task.Example) Score
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(response string, ex task.Example) Score

// Verify calls f.
func (f VerifierFunc) Verify(response string, ex task.Example) Score { return f(response, ex) }

// Reasons that callers may count as metrics.
const (
	// ReasonUnverifiable starts the reason of a math comparison that could not be decided (e.g.
	// symbolic expressions); log the fraction as reward/unverifiable to monitor coverage.
	ReasonUnverifiable = "unverifiable"
	// ReasonNoAnswer starts the reason when no answer could be extracted.
	ReasonNoAnswer = "no answer"
)

// Kinds lists the verifier kinds NewVerifier accepts.
func Kinds() []string {
	return []string{"exact", "numeric", "math", "math_verl", "math_dapo", "format", "code", "task", "keywords"}
}

// NewVerifier builds a verifier by kind. Options (all kinds): correct=<value> (default 1) and
// incorrect=<value> (default 0) set the reward. Kind-specific options are documented on the
// constructor of each kind and in docs/rewards.md; unknown options are errors.
func NewVerifier(kind string, opts map[string]string) (Verifier, error) {
	o := newOpts(kind, opts)
	rv := rewardValues{correct: o.float("correct", 1), incorrect: o.float("incorrect", 0)}
	var v Verifier
	switch kind {
	case "exact":
		v = &exactVerifier{rv: rv, fold: o.Bool("casefold", false), after: o.str("after", "")}
	case "numeric":
		v = &numericVerifier{rv: rv}
	case "math":
		v = newMathVerifier(o, rv)
	case "math_verl":
		v = VerifierFunc(func(resp string, ex task.Example) Score { return rv.score(VerlMathScore(resp, ex.Answer)) })
	case "math_dapo":
		rv := rewardValues{correct: o.float("correct", 1), incorrect: o.float("incorrect", -1)}
		v = VerifierFunc(func(resp string, ex task.Example) Score {
			_, acc, pred := MathDAPOScore(resp, ex.Answer)
			return rv.score(acc, pred, "")
		})
	case "format":
		f, err := NewFormat(o.str("pattern", DefaultFormatPattern))
		if err != nil {
			return nil, err
		}
		f.rv = rv
		v = f
	case "code":
		cfg := DefaultSandboxConfig()
		cfg.WallTime = o.duration("timeout", cfg.WallTime)
		cfg.CPUTime = o.duration("cpu", cfg.CPUTime)
		cfg.MemoryMB = o.int("memory_mb", cfg.MemoryMB)
		cfg.Python = o.str("python", cfg.Python)
		frac := o.Choice("score", "all", "all", "fraction") == "fraction"
		if o.Err() == nil {
			c, err := NewCodeVerifier(cfg)
			if err != nil {
				return nil, err
			}
			c.fraction, c.rv = frac, rv
			v = c
		}
	case "keywords": // CogRE: relation label + keyword score (reward/keywords.go)
		kv, err := newKeywordsVerifier(o, rv)
		if err != nil {
			return nil, err
		}
		v = kv
	case "task":
		v = VerifierFunc(func(resp string, ex task.Example) Score {
			chk, err := task.CheckExample(resp, ex)
			if err != nil {
				return rv.score(false, "", err.Error())
			}
			return rv.score(chk.Correct, chk.Extracted, chk.Reason)
		})
	default:
		return nil, fmt.Errorf("unknown verifier kind %q; choose one of %s", kind, strings.Join(Kinds(), ", "))
	}
	if err := o.Finish(); err != nil {
		return nil, err
	}
	return v, nil
}

// rewardValues maps correctness to the configured reward values.
type rewardValues struct{ correct, incorrect float64 }

func (rv rewardValues) score(ok bool, extracted, reason string) Score {
	s := Score{Correct: ok, Extracted: extracted, Reason: reason, Value: rv.incorrect}
	if ok {
		s.Value = rv.correct
	}
	return s
}

// Safe wraps a verifier so that a panic or a call running past timeout yields a zero score with
// the reason instead of killing or stalling the trainer. A timed-out call keeps running in its
// goroutine (Go cannot stop it); the code verifier enforces its own limits and always returns.
// timeout <= 0 means no time limit (panics are still recovered).
func Safe(v Verifier, timeout time.Duration) Verifier {
	return VerifierFunc(func(response string, ex task.Example) Score {
		done := make(chan Score, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- Score{Reason: fmt.Sprintf("verifier panicked: %v", r)}
				}
			}()
			done <- v.Verify(response, ex)
		}()
		if timeout <= 0 {
			return <-done
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case s := <-done:
			return s
		case <-t.C:
			return Score{Reason: fmt.Sprintf("verifier timed out after %v", timeout)}
		}
	})
}

// --- exact ---

// exactVerifier compares the trimmed response (optionally only the text after the last `after`
// marker, e.g. "</think>") with the trimmed reference answer.
type exactVerifier struct {
	rv    rewardValues
	fold  bool
	after string
}

func (e *exactVerifier) Verify(response string, ex task.Example) Score {
	if e.after != "" {
		if i := strings.LastIndex(response, e.after); i >= 0 {
			response = response[i+len(e.after):]
		}
	}
	got, want := strings.TrimSpace(response), strings.TrimSpace(ex.Answer)
	ok := got == want || (e.fold && strings.EqualFold(got, want))
	reason := ""
	if !ok {
		reason = fmt.Sprintf("%q != %q", clip(got, 60), clip(want, 60))
	}
	return e.rv.score(ok, got, reason)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// --- option parsing shared by verifiers ---

// opts adds the verifiers' own option kinds to the shared parser.
type opts struct{ *optparse.Parser }

func newOpts(kind string, raw map[string]string) *opts {
	return &opts{optparse.New("verifier "+kind, raw)}
}

func (o *opts) str(k, def string) string {
	if v, ok := o.Get(k); ok {
		return v
	}
	return def
}

func (o *opts) float(k string, def float64) float64 {
	v, ok := o.Get(k)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		o.Fail("option %s=%q: want a number", k, v)
		return def
	}
	return f
}

func (o *opts) int(k string, def int) int {
	v, ok := o.Get(k)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		o.Fail("option %s=%q: want a positive integer", k, v)
		return def
	}
	return n
}

func (o *opts) duration(k string, def time.Duration) time.Duration {
	v, ok := o.Get(k)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		o.Fail("option %s=%q: want a positive duration like 6s", k, v)
		return def
	}
	return d
}
