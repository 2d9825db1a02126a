package tokenizer

import (
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"
)

// Split patterns of the byte-level BPE families polo knows. Their `\s+(?!\S)` alternative needs a
// lookahead that Go's regexp lacks, so they are matched by splitScanner, a hand-written scanner
// that tries the alternatives in order exactly as a backtracking engine (Oniguruma) does.
const (
	// patternGPT2 is GPT-2's pattern (ByteLevel pre-tokenizer with use_regex=true).
	patternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// patternLlama3 is Llama-3's (tiktoken cl100k-like) pattern.
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patternQwen2 is Qwen2/Qwen2.5/Qwen3's pattern: Llama-3's with single digits.
	patternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// splitter cuts text into pre-tokens; each piece is then BPE-encoded on its own.
type splitter interface {
	// split calls emit with consecutive pieces that together cover s.
	split(s string, emit func(piece string))
}

// splitScanner matches one of the known patterns by hand. The fields select the family's variant
// of each alternative.
type splitScanner struct {
	foldContractions bool // (?i:'s|...) rather than 's|...
	gpt2Letters      bool // ` ?\p{L}+` rather than `[^\r\n\p{L}\p{N}]?\p{L}+`
	maxDigits        int  // \p{N}{1,maxDigits}; 0 means GPT-2's ` ?\p{N}+`
	punctNewlines    bool // ` ?[^\s\p{L}\p{N}]+[\r\n]*` and the `\s*[\r\n]+` alternative
}

// newSplitter returns the splitter for a Split pre-tokenizer pattern: the hand-written scanner for
// the known patterns, Go's regexp for patterns without lookaround, an error otherwise.
func newSplitter(pattern string) (splitter, error) {
	switch pattern {
	case patternGPT2:
		return &splitScanner{gpt2Letters: true}, nil
	case patternLlama3:
		return &splitScanner{foldContractions: true, maxDigits: 3, punctNewlines: true}, nil
	case patternQwen2:
		return &splitScanner{foldContractions: true, maxDigits: 1, punctNewlines: true}, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("split regex %q is not supported (Go regexp: %v); polo knows the GPT-2, Llama-3 and Qwen2 patterns", pattern, err)
	}
	return regexpSplitter{re}, nil
}

// regexpSplitter is the Isolated split of a pattern that Go's regexp can run: every match and
// every gap between matches is a piece.
type regexpSplitter struct{ re *regexp.Regexp }

func (r regexpSplitter) split(s string, emit func(string)) {
	last := 0
	for _, m := range r.re.FindAllStringIndex(s, -1) {
		if m[0] > last {
			emit(s[last:m[0]])
		}
		if m[1] > m[0] {
			emit(s[m[0]:m[1]])
		}
		last = m[1]
	}
	if last < len(s) {
		emit(s[last:])
	}
}

// Character classes as Oniguruma sees them: \s is Unicode White_Space, \p{L} letters, \p{N}
// numbers. ASCII is looked up in a table because it dominates real text.
const (
	clsOther  = 0
	clsSpace  = 1
	clsLetter = 2
	clsNumber = 3
)

var asciiClass = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		switch {
		case c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == ' ':
			t[c] = clsSpace
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			t[c] = clsLetter
		case c >= '0' && c <= '9':
			t[c] = clsNumber
		}
	}
	return
}()

// class returns the class and byte width of the rune at s[i]. Invalid UTF-8 bytes count as
// "other" one byte at a time, so they stay inside the piece around them.
func class(s string, i int) (cls uint8, r rune, size int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return asciiClass[c], rune(c), 1
	}
	r, size = utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && size == 1:
		return clsOther, r, 1
	case unicode.IsLetter(r):
		return clsLetter, r, size
	case unicode.IsNumber(r):
		return clsNumber, r, size
	case unicode.IsSpace(r):
		return clsSpace, r, size
	}
	return clsOther, r, size
}

func (sc *splitScanner) split(s string, emit func(string)) {
	for i := 0; i < len(s); {
		end := sc.match(s, i)
		emit(s[i:end])
		i = end
	}
}

// match returns the end of the match that starts at i, trying the pattern's alternatives in
// order. Every rune belongs to some alternative, so a match always exists and is non-empty.
func (sc *splitScanner) match(s string, i int) int {
	cls, r, size := class(s, i)

	// 's|'t|'re|'ve|'m|'ll|'d
	if r == '\'' {
		if e := sc.contraction(s, i+1); e > 0 {
			return e
		}
	}

	if sc.gpt2Letters {
		// ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
		j := i
		if r == ' ' && i+1 < len(s) {
			if c2, _, _ := class(s, i+1); c2 != clsSpace {
				j = i + 1
				cls, _, _ = class(s, j)
			}
		}
		if cls != clsSpace {
			return runOf(s, j, cls, 0)
		}
	} else {
		// `[^\r\n\p{L}\p{N}]?\p{L}+`
		if cls == clsLetter {
			return runOf(s, i, clsLetter, 0)
		}
		if cls != clsNumber && r != '\r' && r != '\n' && i+size < len(s) {
			if c2, _, _ := class(s, i+size); c2 == clsLetter {
				return runOf(s, i+size, clsLetter, 0)
			}
		}
		// `\p{N}{1,n}`
		if cls == clsNumber {
			return runOf(s, i, clsNumber, sc.maxDigits)
		}
		// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
		j := i
		if r == ' ' && i+1 < len(s) {
			if c2, _, _ := class(s, i+1); c2 == clsOther {
				j = i + 1
				cls = clsOther
			}
		}
		if cls == clsOther {
			e := runOf(s, j, clsOther, 0)
			for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
				e++
			}
			return e
		}
	}

	// Only whitespace is left. ws is the maximal run of whitespace at i; last is its final rune.
	ws, last := i, i
	for ws < len(s) {
		c, _, n := class(s, ws)
		if c != clsSpace {
			break
		}
		last = ws
		ws += n
	}
	if sc.punctNewlines {
		// `\s*[\r\n]+`: greedy \s* backs off to the last newline of the run.
		for k := ws - 1; k >= i; k-- {
			if s[k] == '\r' || s[k] == '\n' {
				return k + 1
			}
		}
	}
	// `\s+(?!\S)`: the whole run at the end of the text, else the run less its last rune.
	if ws == len(s) || last > i {
		if ws == len(s) {
			return ws
		}
		return last
	}
	// `\s+`
	return ws
}

// contraction matches the letters of 's|'t|'re|'ve|'m|'ll|'d after the apostrophe at j-1.
func (sc *splitScanner) contraction(s string, j int) int {
	lower := func(k int) (rune, int) {
		if k >= len(s) {
			return -1, 0
		}
		r, n := rune(s[k]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[k:])
		}
		if sc.foldContractions {
			switch r {
			case 'S', 'T', 'R', 'E', 'V', 'M', 'L', 'D':
				r += 'a' - 'A'
			case 'ſ': // U+017F LATIN SMALL LETTER LONG S case-folds to s.
				r = 's'
			}
		}
		return r, n
	}
	r1, n1 := lower(j)
	switch r1 {
	case 's', 't', 'm', 'd':
		return j + n1
	}
	r2, n2 := lower(j + n1)
	switch {
	case r1 == 'r' && r2 == 'e', r1 == 'v' && r2 == 'e', r1 == 'l' && r2 == 'l':
		return j + n1 + n2
	}
	return 0
}

// runOf returns the end of the run of runes of class cls starting at i (at most max runes when
// max > 0).
func runOf(s string, i int, cls uint8, max int) int {
	n := 0
	for i < len(s) {
		c, _, size := class(s, i)
		if c != cls {
			break
		}
		i += size
		n++
		if max > 0 && n == max {
			break
		}
	}
	return i
}
