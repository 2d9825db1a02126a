package reward

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file turns a final answer written in LaTeX or plain text into tokens for mathparse.go.
// Layout-only commands (\left, \displaystyle, spacing) disappear here, synonyms collapse
// (\dfrac → frac, \geq → >=, × → *), so the parser sees one spelling per idea.

type tokKind uint8

const (
	tEOF    tokKind = iota
	tNum            // digits with an optional fraction and exponent; separators removed
	tIdent          // a one-letter variable or a Greek letter (\alpha)
	tCmd            // a command the parser knows: frac, sqrt, sin, pi, infty, begin:pmatrix, …
	tWord           // a word of two or more letters (units, "and", text answers), lower case
	tOp             // + - * / ^ _ = < > <= >= != ! , ; & | ' % ° ± ∓ in cup …
	tOpen           // ( [ { \{ langle lfloor lceil
	tClose          // ) ] } \} rangle rfloor rceil
	tRowSep         // \\ (matrix rows)
	tText           // \text{...} and friends: the raw content, parsed on demand
)

type token struct {
	kind  tokKind
	text  string
	space bool // whitespace came before it
}

// maxAnswerLen bounds what the symbolic layer parses; longer answers are compared as strings.
const maxAnswerLen = 4000

var errTooLong = errors.New("answer too long to parse")

// cmdAlias maps LaTeX commands to the token the parser expects. Empty text means "drop it".
var cmdAlias = map[string]token{
	"left": {}, "right": {}, "big": {}, "Big": {}, "bigl": {}, "bigr": {}, "Bigl": {}, "Bigr": {},
	"bigg": {}, "Bigg": {}, "biggl": {}, "biggr": {}, "displaystyle": {}, "textstyle": {}, "limits": {},
	"boxed": {}, "fbox": {}, "mathstrut": {}, "hline": {}, "middle": {},
	"dfrac": {kind: tCmd, text: "frac"}, "tfrac": {kind: tCmd, text: "frac"}, "cfrac": {kind: tCmd, text: "frac"},
	"frac": {kind: tCmd, text: "frac"}, "dbinom": {kind: tCmd, text: "binom"}, "tbinom": {kind: tCmd, text: "binom"},
	"binom": {kind: tCmd, text: "binom"}, "sqrt": {kind: tCmd, text: "sqrt"},
	"cdot": {kind: tOp, text: "*"}, "times": {kind: tOp, text: "*"}, "ast": {kind: tOp, text: "*"}, "div": {kind: tOp, text: "/"},
	"le": {kind: tOp, text: "<="}, "leq": {kind: tOp, text: "<="}, "leqslant": {kind: tOp, text: "<="}, "lt": {kind: tOp, text: "<"},
	"ge": {kind: tOp, text: ">="}, "geq": {kind: tOp, text: ">="}, "geqslant": {kind: tOp, text: ">="}, "gt": {kind: tOp, text: ">"},
	"ne": {kind: tOp, text: "!="}, "neq": {kind: tOp, text: "!="}, "approx": {kind: tOp, text: "="},
	"pm": {kind: tOp, text: "±"}, "mp": {kind: tOp, text: "∓"}, "in": {kind: tOp, text: "in"},
	"cup": {kind: tOp, text: "cup"}, "circ": {kind: tOp, text: "°"}, "degree": {kind: tOp, text: "°"},
	"prime": {kind: tOp, text: "'"}, "mid": {kind: tOp, text: "|"}, "vert": {kind: tOp, text: "|"},
	"lvert": {kind: tOp, text: "|"}, "rvert": {kind: tOp, text: "|"}, "colon": {kind: tOp, text: ":"},
	"dots": {kind: tOp, text: "…"}, "ldots": {kind: tOp, text: "…"}, "cdots": {kind: tOp, text: "…"},
	"langle": {kind: tOpen, text: "<"}, "rangle": {kind: tClose, text: ">"},
	"lfloor": {kind: tOpen, text: "lfloor"}, "rfloor": {kind: tClose, text: "rfloor"},
	"lceil": {kind: tOpen, text: "lceil"}, "rceil": {kind: tClose, text: "rceil"},
	"infty": {kind: tCmd, text: "infty"}, "infin": {kind: tCmd, text: "infty"}, "pi": {kind: tCmd, text: "pi"},
	"emptyset": {kind: tCmd, text: "emptyset"}, "varnothing": {kind: tCmd, text: "emptyset"},
	"quad": {}, "qquad": {}, "enspace": {}, "thinspace": {}, "negthinspace": {},
}

// textCmds wrap text or upright symbols; their braced content becomes one tText token.
var textCmds = map[string]bool{
	"text": true, "textnormal": true, "textrm": true, "textbf": true, "textit": true, "textsf": true,
	"mbox": true, "mathrm": true, "mathbf": true, "mathit": true, "mathsf": true, "operatorname": true,
	"boldsymbol": true, "mathnormal": true, "hbox": true,
}

// funcNames are the functions the evaluator knows, written with or without a backslash.
var funcNames = map[string]bool{
	"sin": true, "cos": true, "tan": true, "sec": true, "csc": true, "cot": true,
	"arcsin": true, "arccos": true, "arctan": true, "sinh": true, "cosh": true, "tanh": true,
	"ln": true, "log": true, "exp": true, "lg": true,
}

// plainWords are letter runs of plain text with a meaning; unitWords are short runs that are
// units, not products of variables (a longer run of four or more letters is always a word).
var plainWords = map[string]token{
	"sqrt": {kind: tCmd, text: "sqrt"}, "pi": {kind: tCmd, text: "pi"}, "inf": {kind: tCmd, text: "infty"},
	"infinity": {kind: tCmd, text: "infty"}, "infty": {kind: tCmd, text: "infty"}, "oo": {kind: tCmd, text: "infty"},
	"pct": {kind: tOp, text: "%"}, "percent": {kind: tOp, text: "%"}, "deg": {kind: tOp, text: "°"},
	"degree": {kind: tOp, text: "°"}, "degrees": {kind: tOp, text: "°"}, "in": {kind: tOp, text: "in"},
}

var unitWords = map[string]bool{
	"cm": true, "mm": true, "km": true, "kg": true, "mg": true, "ml": true, "ft": true, "yd": true, "mi": true,
	"hr": true, "hrs": true, "min": true, "lb": true, "lbs": true, "oz": true, "mph": true, "sq": true,
	"and": true, "or": true, "the": true, "is": true, "are": true, "of": true, "to": true, "rad": true,
	"am": true, "pm": true, "yes": true, "no": true,
}

// lexMath splits s into tokens. It fails on characters no answer contains and on over-long input.
func lexMath(s string) ([]token, error) {
	if len(s) > maxAnswerLen {
		return nil, errTooLong
	}
	l := lexer{s: s, toks: make([]token, 0, len(s)/2+2)}
	if err := l.run(); err != nil {
		return nil, err
	}
	return append(l.toks, token{kind: tEOF}), nil
}

type lexer struct {
	s     string
	i     int
	space bool
	toks  []token
}

func (l *lexer) emit(kind tokKind, text string) {
	l.toks = append(l.toks, token{kind: kind, text: text, space: l.space})
	l.space = false
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (l *lexer) run() error {
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~':
			l.space = true
			l.i++
		case c == '$':
			l.i++
		case c == '\\':
			if err := l.command(); err != nil {
				return err
			}
		case isDigit(c) || c == '.' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1]):
			l.number()
		case isLetter(c):
			l.letters()
		case c == '(' || c == '[' || c == '{':
			l.emit(tOpen, string(c))
			l.i++
		case c == ')' || c == ']' || c == '}':
			l.emit(tClose, string(c))
			l.i++
		case c == '<' || c == '>' || c == '!' || c == '=':
			if l.i+1 < len(l.s) && l.s[l.i+1] == '=' {
				op := l.s[l.i : l.i+2]
				if op == "==" {
					op = "="
				}
				l.emit(tOp, op)
				l.i += 2
			} else {
				l.emit(tOp, string(c))
				l.i++
			}
		case c == '*' && l.i+1 < len(l.s) && l.s[l.i+1] == '*':
			l.emit(tOp, "^")
			l.i += 2
		case strings.IndexByte("+-*/^_,;&|':%", c) >= 0:
			l.emit(tOp, string(c))
			l.i++
		case c == '.':
			l.i++ // a stray period (end of sentence)
		case c >= utf8.RuneSelf:
			if err := l.unicode(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %q", c)
		}
	}
	return nil
}

var unicodeAlias = map[rune]token{
	'−': {kind: tOp, text: "-"}, '–': {kind: tOp, text: "-"}, '×': {kind: tOp, text: "*"}, '·': {kind: tOp, text: "*"},
	'⋅': {kind: tOp, text: "*"}, '÷': {kind: tOp, text: "/"}, 'π': {kind: tCmd, text: "pi"}, '∞': {kind: tCmd, text: "infty"},
	'°': {kind: tOp, text: "°"}, '≤': {kind: tOp, text: "<="}, '≥': {kind: tOp, text: ">="}, '≠': {kind: tOp, text: "!="},
	'√': {kind: tCmd, text: "sqrt"}, '±': {kind: tOp, text: "±"}, '∪': {kind: tOp, text: "cup"}, '∈': {kind: tOp, text: "in"},
	'∅': {kind: tCmd, text: "emptyset"}, '…': {kind: tOp, text: "…"}, '\u00a0': {}, '\u2009': {}, '\u202f': {},
}

func (l *lexer) unicode() error {
	r, n := utf8.DecodeRuneInString(l.s[l.i:])
	l.i += n
	if t, ok := unicodeAlias[r]; ok {
		if t.kind == tEOF {
			l.space = true
		} else {
			l.emit(t.kind, t.text)
		}
		return nil
	}
	if unicode.IsLetter(r) {
		l.emit(tWord, strings.ToLower(string(r)))
		return nil
	}
	return fmt.Errorf("unexpected %q", r)
}

// command reads a backslash command.
func (l *lexer) command() error {
	l.i++
	if l.i >= len(l.s) {
		return errors.New("lone backslash")
	}
	c := l.s[l.i]
	if !isLetter(c) {
		l.i++
		switch c {
		case '\\':
			l.emit(tRowSep, `\\`)
		case '{':
			l.emit(tOpen, `\{`)
		case '}':
			l.emit(tClose, `\}`)
		case '%':
			l.emit(tOp, "%")
		case '|':
			l.emit(tOp, "|")
		case ',', ';', ':', '!', ' ', '>':
			l.space = true
		case '$', '.':
		case '(', ')', '[', ']':
			// \( \) \[ \] delimit math; inside an answer they are layout
		default:
			return fmt.Errorf(`unknown command \%c`, c)
		}
		return nil
	}
	start := l.i
	for l.i < len(l.s) && isLetter(l.s[l.i]) {
		l.i++
	}
	name := l.s[start:l.i]
	if t, ok := cmdAlias[name]; ok {
		if t.kind == tEOF {
			if name == "left" || name == "right" {
				if l.i < len(l.s) && l.s[l.i] == '.' {
					l.i++ // \left. has no delimiter
				}
			} else if name[0] == 'q' || strings.HasSuffix(name, "space") {
				l.space = true
			}
			return nil
		}
		l.emit(t.kind, t.text)
		return nil
	}
	switch {
	case textCmds[name]:
		body, ok := l.braced()
		if !ok {
			return fmt.Errorf(`\%s without {…}`, name)
		}
		l.emit(tText, body)
	case name == "begin" || name == "end":
		env, ok := l.braced()
		if !ok {
			return fmt.Errorf(`\%s without {…}`, name)
		}
		l.emit(tCmd, name+":"+strings.TrimSuffix(env, "*"))
	case funcNames[name] || name == "det":
		l.emit(tCmd, name)
	case name == "not":
		// \not= and friends
		l.emit(tOp, "!")
	default:
		l.emit(tIdent, `\`+name) // Greek letters and unknown symbols are variables
	}
	return nil
}

// braced reads {…} with balanced braces after optional spaces and returns the inside.
func (l *lexer) braced() (string, bool) {
	for l.i < len(l.s) && l.s[l.i] == ' ' {
		l.i++
	}
	if l.i >= len(l.s) || l.s[l.i] != '{' {
		return "", false
	}
	depth := 0
	for j := l.i; j < len(l.s); j++ {
		switch l.s[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				body := l.s[l.i+1 : j]
				l.i = j + 1
				return body, true
			}
		}
	}
	return "", false
}

// number reads 1,234.5e-3 style numbers. A comma, "{,}" or "\," is a thousands separator only
// when exactly three digits follow and the digits before form a 1–3 digit group, so "32, 349"
// and "1,2" stay lists.
func (l *lexer) number() {
	var b []byte // only when separators are dropped
	start := l.i
	for l.i < len(l.s) && isDigit(l.s[l.i]) {
		l.i++
	}
	if n := l.i - start; n >= 1 && n <= 3 {
		for {
			sep := 0
			switch {
			case strings.HasPrefix(l.s[l.i:], ","):
				sep = 1
			case strings.HasPrefix(l.s[l.i:], "{,}"):
				sep = 3
			case strings.HasPrefix(l.s[l.i:], `\,`):
				sep = 2
			}
			j := l.i + sep
			if sep == 0 || j+3 > len(l.s) || !isDigit(l.s[j]) || !isDigit(l.s[j+1]) || !isDigit(l.s[j+2]) ||
				j+3 < len(l.s) && isDigit(l.s[j+3]) {
				break
			}
			if b == nil {
				b = append(b, l.s[start:l.i]...)
			}
			b = append(b, l.s[j:j+3]...)
			l.i = j + 3
		}
	}
	mark := l.i // the rest is copied as written
	if l.i+1 < len(l.s) && l.s[l.i] == '.' && isDigit(l.s[l.i+1]) {
		l.i++
		for l.i < len(l.s) && isDigit(l.s[l.i]) {
			l.i++
		}
	}
	// scientific notation only when digits follow: 1.5e3, 2E-4 (a bare "2e" is 2·e)
	if l.i < len(l.s) && (l.s[l.i] == 'e' || l.s[l.i] == 'E') {
		j := l.i + 1
		if j < len(l.s) && (l.s[j] == '+' || l.s[j] == '-') {
			j++
		}
		k := j
		for k < len(l.s) && isDigit(l.s[k]) {
			k++
		}
		if k > j && (k == len(l.s) || !isLetter(l.s[k])) {
			l.i = k
		}
	}
	if b == nil {
		l.emit(tNum, l.s[start:l.i])
		return
	}
	l.emit(tNum, string(append(b, l.s[mark:l.i]...)))
}

// letters reads a run of ASCII letters: a known function or word, or one variable per letter.
func (l *lexer) letters() {
	start := l.i
	for l.i < len(l.s) && isLetter(l.s[l.i]) {
		l.i++
	}
	run := l.s[start:l.i]
	if len(run) == 1 {
		l.emit(tIdent, run)
		return
	}
	low := strings.ToLower(run)
	if t, ok := plainWords[low]; ok {
		l.emit(t.kind, t.text)
		return
	}
	if funcNames[low] {
		l.emit(tCmd, low)
		return
	}
	if len(run) >= 4 || unitWords[low] {
		l.emit(tWord, low)
		return
	}
	for i := 0; i < len(run); i++ { // xy = x·y
		l.emit(tIdent, run[i:i+1])
	}
}
