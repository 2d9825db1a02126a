package tokenizer

import (
	"unicode/utf8"
)

// GPT-2's byte-level alphabet: each byte is shown as a printable rune so that vocabularies are
// valid text. Printable Latin-1 bytes map to themselves; the others to U+0100 onwards, in order.
var byteToRune, runeToByte = func() (b2r [256]rune, r2b map[rune]byte) {
	r2b = make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			b2r[b] = rune(b)
		} else {
			b2r[b] = next
			next++
		}
		r2b[b2r[b]] = byte(b)
	}
	return
}()

// byteLevel returns the byte-level form of s (each byte as its alphabet rune), as vocabularies
// spell tokens.
func byteLevel(s string) string {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, byteToRune[s[i]])
	}
	return string(out)
}

// tokenBytes is what the ByteLevel decoder makes of one token: its alphabet runes turned back into
// bytes, or, when some rune is outside the alphabet (added tokens such as "\n\n"), the token's
// own UTF-8 bytes. This mirrors the Hugging Face tokenizers ByteLevel decoder.
func tokenBytes(tok string) []byte {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeToByte[r]
		if !ok {
			return []byte(tok)
		}
		out = append(out, b)
	}
	return out
}

// validUTF8Lossy returns b as a string with every maximal invalid subsequence replaced by U+FFFD,
// the rule of Rust's String::from_utf8_lossy and Python's bytes.decode(errors="replace"). Go's
// own conversions replace byte by byte, which gives more U+FFFD for a truncated sequence.
func validUTF8Lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			out = append(out, b[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		// Invalid: skip the longest prefix that could still start a valid sequence, then emit one
		// replacement character for it.
		i += maximalSubpart(b[i:])
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return string(out)
}

// maximalSubpart returns the length (at least 1) of the invalid sequence at the start of b, per
// Unicode's "maximal subpart" definition (Table 3-7 well-formed byte sequences).
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC || c == 0xEE || c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if x < lo || x > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}
