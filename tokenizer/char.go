package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Char is a character tokenizer for synthetic tasks: ids 0, 1, 2 are <pad>, <bos>, <eos>, then
// one id per character of the alphabet in order. Tiny vocabularies keep demo models small.
type Char struct {
	alphabet []rune
	ids      map[rune]int32
}

// The fixed special tokens of Char.
const (
	CharPAD int32 = 0
	CharBOS int32 = 1
	CharEOS int32 = 2
)

var charSpecials = [...]string{"<pad>", "<bos>", "<eos>"}

// NewChar returns the character tokenizer of alphabet, whose characters must be distinct.
func NewChar(alphabet string) (*Char, error) {
	if alphabet == "" {
		return nil, fmt.Errorf("character tokenizer: empty alphabet; give the characters the task uses")
	}
	if !utf8.ValidString(alphabet) {
		return nil, fmt.Errorf("character tokenizer: alphabet %q is not valid UTF-8", alphabet)
	}
	c := &Char{ids: map[rune]int32{}}
	for _, r := range alphabet {
		if _, dup := c.ids[r]; dup {
			return nil, fmt.Errorf("character tokenizer: %q appears twice in the alphabet %q", r, alphabet)
		}
		c.ids[r] = int32(len(charSpecials) + len(c.alphabet))
		c.alphabet = append(c.alphabet, r)
	}
	return c, nil
}

// Encode returns one id per character. The texts "<pad>", "<bos>", "<eos>" are their special
// ids (so Decode with skipSpecial=false round-trips); characters outside the alphabet are dropped
// (use Unknown to check a text first).
func (c *Char) Encode(text string) []int32 {
	ids := make([]int32, 0, len(text))
	for i := 0; i < len(text); {
		if text[i] == '<' {
			if id, n := c.specialAt(text[i:]); n > 0 {
				ids = append(ids, id)
				i += n
				continue
			}
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		if id, ok := c.ids[r]; ok {
			ids = append(ids, id)
		}
		i += n
	}
	return ids
}

func (c *Char) specialAt(s string) (int32, int) {
	for id, sp := range charSpecials {
		if strings.HasPrefix(s, sp) {
			return int32(id), len(sp)
		}
	}
	return 0, 0
}

// Unknown returns the characters of text that are not in the alphabet, in order of appearance.
func (c *Char) Unknown(text string) []rune {
	var out []rune
	for _, r := range text {
		if _, ok := c.ids[r]; !ok {
			out = append(out, r)
		}
	}
	return out
}

// EncodeWithSpecial is <bos> followed by Encode(text).
func (c *Char) EncodeWithSpecial(text string) []int32 {
	return append([]int32{CharBOS}, c.Encode(text)...)
}

// Decode returns the characters of ids; special tokens are written as <pad>, <bos>, <eos> unless
// skipSpecial. Ids outside the vocabulary are dropped.
func (c *Char) Decode(ids []int32, skipSpecial bool) string {
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id >= 0 && int(id) < len(charSpecials):
			if !skipSpecial {
				b.WriteString(charSpecials[id])
			}
		case int(id) >= len(charSpecials) && int(id) < c.VocabSize():
			b.WriteRune(c.alphabet[int(id)-len(charSpecials)])
		}
	}
	return b.String()
}

// VocabSize is 3 special tokens plus the alphabet.
func (c *Char) VocabSize() int { return len(charSpecials) + len(c.alphabet) }

// EOS is CharEOS.
func (c *Char) EOS() int32 { return CharEOS }

// PAD is CharPAD.
func (c *Char) PAD() int32 { return CharPAD }

// BOS is CharBOS.
func (c *Char) BOS() int32 { return CharBOS }
