package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/polo-rl/polo/internal/jinja"
)

// HF is a Hugging Face byte-level BPE tokenizer loaded from tokenizer.json and
// tokenizer_config.json. It is safe for concurrent use.
//
// Encoding follows the tokenizers library: added tokens are cut out of the raw text first (they
// are never split), the rest is normalized, split by the pre-tokenizer, mapped to bytes and merged
// by BPE rank. Special tokens written in the text are recognized by Encode too, as transformers
// does with split_special_tokens=False.
type HF struct {
	model          bpe
	rawAdded       addedSet // added tokens matched in the raw text (normalized=false)
	normAdded      addedSet // added tokens matched after normalization (normalized=true)
	normalize      func(string) string
	splitters      []splitter
	addPrefixSpace bool

	tokens  []string // id → token as in the vocabulary ("" for unused ids)
	idBytes [][]byte // id → bytes the ByteLevel decoder gives it
	special []bool   // id → special added token (dropped by skipSpecial)
	added   map[string]int32

	prefix, suffix []int32 // what EncodeWithSpecial adds around the text
	bos, eos, pad  int32
	names          map[string]string // bos_token, eos_token, ... as text, for chat templates
	clean          bool              // clean_up_tokenization_spaces

	template *jinja.Template // chat template, nil when the tokenizer has none
}

// Encode returns the ids of text without added special tokens (add_special_tokens=False).
func (t *HF) Encode(text string) []int32 { return t.AppendEncode(nil, text) }

// EncodeWithSpecial returns the ids of text with the tokens the post-processor adds
// (add_special_tokens=True): BOS for Llama-3.1-style tokenizers, nothing for Qwen.
func (t *HF) EncodeWithSpecial(text string) []int32 {
	dst := append([]int32(nil), t.prefix...)
	dst = t.AppendEncode(dst, text)
	return append(dst, t.suffix...)
}

// AppendEncode appends the ids of text (as Encode) to dst, to build sequences without copying.
func (t *HF) AppendEncode(dst []int32, text string) []int32 {
	for pos := 0; pos < len(text); {
		start, end, id, ok := t.rawAdded.next(text, pos)
		if !ok {
			return t.encodeUnnormalized(dst, text[pos:])
		}
		dst = t.encodeUnnormalized(dst, text[pos:start])
		dst = append(dst, id)
		pos = end
	}
	return dst
}

func (t *HF) encodeUnnormalized(dst []int32, s string) []int32 {
	if s == "" {
		return dst
	}
	if t.normalize != nil {
		s = t.normalize(s)
	}
	for pos := 0; pos < len(s); {
		start, end, id, ok := t.normAdded.next(s, pos)
		if !ok {
			return t.encodeSegment(dst, s[pos:])
		}
		dst = t.encodeSegment(dst, s[pos:start])
		dst = append(dst, id)
		pos = end
	}
	return dst
}

// encodeSegment pre-tokenizes and BPE-encodes text that holds no added token.
func (t *HF) encodeSegment(dst []int32, s string) []int32 {
	if s == "" {
		return dst
	}
	if t.addPrefixSpace && s[0] != ' ' {
		s = " " + s
	}
	var visit func(level int, piece string)
	visit = func(level int, piece string) {
		if level == len(t.splitters) {
			dst = t.model.encodePiece(dst, piece)
			return
		}
		t.splitters[level].split(piece, func(p string) { visit(level+1, p) })
	}
	visit(0, s)
	return dst
}

// Decode returns the text of ids as transformers' decode: bytes of byte-level tokens, invalid
// UTF-8 (a character cut between tokens) replaced by U+FFFD, and clean_up_tokenization_spaces
// applied when the config asks for it. Ids outside the vocabulary are dropped.
func (t *HF) Decode(ids []int32, skipSpecial bool) string {
	s := validUTF8Lossy(t.DecodeBytes(ids, skipSpecial))
	if t.clean {
		s = cleanUpTokenization(s)
	}
	return s
}

// DecodeBytes returns the raw bytes of ids, which may end inside a UTF-8 character. A streaming
// sampler keeps these bytes until the character is complete instead of printing U+FFFD.
func (t *HF) DecodeBytes(ids []int32, skipSpecial bool) []byte {
	var out []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.idBytes) || skipSpecial && t.special[id] {
			continue
		}
		out = append(out, t.idBytes[id]...)
	}
	return out
}

// cleanUpTokenization is transformers' clean_up_tokenization: spaces before punctuation and
// English contractions are removed.
var cleanUpTokenization = strings.NewReplacer(
	" .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'",
	" n't", "n't", " 'm", "'m", " 's", "'s", " 've", "'ve", " 're", "'re",
).Replace

// VocabSize is one more than the largest id (vocabulary and added tokens). A model's embedding
// table may be larger (Qwen3 pads to 151936).
func (t *HF) VocabSize() int { return len(t.tokens) }

// EOS is the id of tokenizer_config.json's eos_token, -1 if none.
func (t *HF) EOS() int32 { return t.eos }

// PAD is the id of tokenizer_config.json's pad_token, -1 if none.
func (t *HF) PAD() int32 { return t.pad }

// BOS is the id of tokenizer_config.json's bos_token, -1 if none.
func (t *HF) BOS() int32 { return t.bos }

// TokenID returns the id of a token as the vocabulary spells it (byte-level form, e.g. "Ġworld")
// or of an added token ("<|im_end|>").
func (t *HF) TokenID(tok string) (int32, bool) {
	if id, ok := t.added[tok]; ok {
		return id, true
	}
	id, ok := t.model.vocab[tok]
	return id, ok
}

// Token returns the vocabulary spelling of id, "" if it has none.
func (t *HF) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// IsSpecial reports whether id is a special added token (what skipSpecial drops).
func (t *HF) IsSpecial(id int32) bool {
	return id >= 0 && int(id) < len(t.special) && t.special[id]
}

// addedToken is a token of tokenizer.json's added_tokens, matched in text before BPE.
type addedToken struct {
	id         int32
	content    string
	lstrip     bool // also takes the whitespace before it
	rstrip     bool // also takes the whitespace after it
	singleWord bool // matches only between non-word characters
}

// addedSet finds added tokens in text, leftmost first and longest first at one position (the
// tokenizers library's Aho-Corasick LeftmostLongest rule).
type addedSet struct {
	tokens  []addedToken
	byFirst [256][]int32 // first byte → indices into tokens, longest content first
	any     bool
}

func (a *addedSet) add(tok addedToken) { a.tokens = append(a.tokens, tok) }

func (a *addedSet) sort() {
	a.byFirst = [256][]int32{}
	sort.SliceStable(a.tokens, func(i, j int) bool { return len(a.tokens[i].content) > len(a.tokens[j].content) })
	for i, tok := range a.tokens {
		if tok.content == "" {
			continue
		}
		c := tok.content[0]
		a.byFirst[c] = append(a.byFirst[c], int32(i))
	}
	a.any = len(a.tokens) > 0
}

// next returns the span [start, end) and id of the first added token in s at or after from.
func (a *addedSet) next(s string, from int) (start, end int, id int32, ok bool) {
	if !a.any {
		return 0, 0, 0, false
	}
	for i := from; i < len(s); i++ {
		cands := a.byFirst[s[i]]
		for _, k := range cands {
			tok := &a.tokens[k]
			if !strings.HasPrefix(s[i:], tok.content) {
				continue
			}
			b, e := i, i+len(tok.content)
			if tok.singleWord && (isWordBefore(s, b) || isWordAfter(s, e)) {
				continue
			}
			if tok.lstrip {
				for b > from {
					r, n := utf8.DecodeLastRuneInString(s[from:b])
					if !unicode.IsSpace(r) {
						break
					}
					b -= n
				}
			}
			if tok.rstrip {
				for e < len(s) {
					r, n := utf8.DecodeRuneInString(s[e:])
					if !unicode.IsSpace(r) {
						break
					}
					e += n
				}
			}
			return b, e, tok.id, true
		}
	}
	return 0, 0, 0, false
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

func isWordBefore(s string, i int) bool {
	if i == 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isWordRune(r)
}

func isWordAfter(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isWordRune(r)
}
