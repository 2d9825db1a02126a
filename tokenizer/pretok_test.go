package tokenizer

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// oracle splits text by a pattern the slow, obvious way: Go's regexp (leftmost-first, as a
// backtracking engine) for the alternatives without lookahead, and a literal backtracking loop for
// `\s+(?!\S)`. \s is spelled out as Unicode White_Space because Go's \s is ASCII only.
type oracle struct {
	head   *regexp.Regexp // the alternatives before `\s+(?!\S)|\s+`, anchored
	space  *regexp.Regexp
	noLook *regexp.Regexp // the whole pattern, for patterns without lookahead (nil otherwise)
}

const unicodeSpace = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`

func newOracle(pattern string) *oracle {
	head, ok := strings.CutSuffix(pattern, `|\s+(?!\S)|\s+`)
	if !ok {
		panic("oracle: pattern does not end with the whitespace alternatives: " + pattern)
	}
	head = strings.ReplaceAll(head, `[^\s`, `[^`+unicodeSpace)
	head = strings.ReplaceAll(head, `\s`, `[`+unicodeSpace+`]`)
	return &oracle{
		head:  regexp.MustCompile(`^(?:` + head + `)`),
		space: regexp.MustCompile(`^[` + unicodeSpace + `]+`),
	}
}

func (o *oracle) split(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		end := -1
		if m := o.head.FindStringIndex(s[i:]); m != nil && m[1] > 0 {
			end = i + m[1]
		} else if m := o.space.FindStringIndex(s[i:]); m != nil {
			// \s+(?!\S): greedy, then back off one rune at a time until the lookahead holds.
			run := s[i : i+m[1]]
			for e := len(run); e > 0; {
				if i+e == len(s) || o.space.MatchString(s[i+e:]) {
					end = i + e
					break
				}
				_, n := utf8.DecodeLastRuneInString(run[:e])
				e -= n
			}
			if end < 0 {
				end = i + m[1] // \s+
			}
		} else {
			_, n := utf8.DecodeRuneInString(s[i:]) // unmatched: a gap of one rune
			end = i + n
		}
		out = append(out, s[i:end])
		i = end
	}
	return out
}

func scan(sp splitter, s string) []string {
	var out []string
	sp.split(s, func(p string) { out = append(out, p) })
	return out
}

// runePool has the characters that exercise each alternative's edge: contractions (with case
// and the long s that case-folds to s), whitespace of every kind, newlines, digits of other
// scripts, letters without case, combining marks, emoji with ZWJ, and invalid UTF-8 bytes.
var runePool = []string{
	"a", "Z", "é", "ß", "ﬁ", "数", "学", "ア", "ж", "ſ", "'", "'s", "'S", "'ll", "'LL", "'re", "'Ve", "'m", "'d", "'t", "'x",
	" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u00a0", "\u3000", "\u2028", "\u200b", "\u0085",
	"0", "7", "123", "٣", "²", "Ⅻ", "½",
	".", ",", "!", "?", "-", "+", "=", "(", ")", "{", "}", "\\", "#", "*", "…", "—", "：", "。", "$",
	"\u0301", "\u0308", "🤖", "👩\u200d💻", "🇫🇷", "\ufffd",
	"\xff", "\xe2\x82", "\xc3", "\x80",
	"<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|begin_of_text|>",
}

func randomText(r *rand.Rand, maxParts int) string {
	var b strings.Builder
	n := r.IntN(maxParts + 1)
	for range n {
		b.WriteString(runePool[r.IntN(len(runePool))])
	}
	return b.String()
}

func TestSplitScannerMatchesBacktrackingOracle(t *testing.T) {
	_, qwen := loadFixture(t, "qwen3")
	_, llama := loadFixture(t, "llama3")
	var fixtureTexts []string
	for _, c := range append(qwen.Encode, llama.Encode...) {
		fixtureTexts = append(fixtureTexts, c.Text)
	}
	for _, pattern := range []string{patternGPT2, patternLlama3, patternQwen2} {
		sp, err := newSplitter(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sp.(*splitScanner); !ok {
			t.Fatalf("pattern %q did not get the hand-written scanner", pattern)
		}
		o := newOracle(pattern)
		r := rand.New(rand.NewPCG(1, 2))
		texts := slices.Clone(fixtureTexts)
		for range 20000 {
			texts = append(texts, randomText(r, 12))
		}
		for _, s := range texts {
			got, want := scan(sp, s), o.split(s)
			if !slices.Equal(got, want) {
				t.Fatalf("pattern %q, text %q:\nscanner %q\noracle  %q", pattern, s, got, want)
			}
		}
	}
}

// TestSplitScannerCases pins pieces where the alternatives interact.
func TestSplitScannerCases(t *testing.T) {
	qwen, _ := newSplitter(patternQwen2)
	llama, _ := newSplitter(patternLlama3)
	gpt2, _ := newSplitter(patternGPT2)
	tests := []struct {
		sp   splitter
		text string
		want []string
	}{
		{qwen, "a  b", []string{"a", " ", " b"}},                     // \s+(?!\S) leaves one space for " b"
		{qwen, "x   ", []string{"x", "   "}},                         // trailing run is whole
		{qwen, "a \n\n  b", []string{"a", " \n\n", " ", " b"}},       // \s*[\r\n]+ stops at the last newline
		{qwen, "12345", []string{"1", "2", "3", "4", "5"}},           // \p{N}
		{llama, "12345", []string{"123", "45"}},                      // \p{N}{1,3}
		{gpt2, " 12345", []string{" 12345"}},                         // ` ?\p{N}+`
		{qwen, "I'M", []string{"I", "'M"}},                           // (?i:'m)
		{gpt2, "I'M", []string{"I", "'", "M"}},                       // case-sensitive
		{qwen, "it'ſ", []string{"it", "'ſ"}},                         // ſ case-folds to s
		{qwen, "\"quote", []string{"\"quote"}},                       // [^\r\n\p{L}\p{N}]?\p{L}+
		{qwen, " ...\n\nx", []string{" ...\n\n", "x"}},               // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
		{qwen, "a\u3000\u3000b", []string{"a", "\u3000", "\u3000b"}}, // Unicode whitespace
	}
	for _, tt := range tests {
		if got := scan(tt.sp, tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("split(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func FuzzSplitScanner(f *testing.F) {
	for _, s := range []string{"Hello, world!", "a  b\n\n c", "I'LL 123456", "\xff\xe2\x82 x", "👩\u200d💻  \t\n"} {
		f.Add(s)
	}
	type pair struct {
		sp splitter
		o  *oracle
	}
	var pairs []pair
	for _, p := range []string{patternGPT2, patternLlama3, patternQwen2} {
		sp, _ := newSplitter(p)
		pairs = append(pairs, pair{sp, newOracle(p)})
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range pairs {
			got, want := scan(p.sp, s), p.o.split(s)
			if !slices.Equal(got, want) {
				t.Fatalf("text %q:\nscanner %q\noracle  %q", s, got, want)
			}
			if strings.Join(got, "") != s {
				t.Fatalf("pieces of %q do not cover it: %q", s, got)
			}
		}
	})
}
