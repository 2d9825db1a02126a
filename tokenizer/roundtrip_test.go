package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// TestRoundTrip: decode(encode(s)) gives s back, up to what transformers itself changes: Qwen3's
// NFC normalizer and Llama-3's clean_up_tokenization_spaces. Strings with invalid UTF-8 come back
// byte for byte from DecodeBytes, and as U+FFFD from Decode.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		want func(string) string // what Decode(Encode(s)) must be for valid s
	}{
		{"qwen3", norm.NFC.String},
		{"llama3", cleanUpTokenization},
	}
	for _, tt := range tests {
		tok, _ := loadFixture(t, tt.name)
		r := rand.New(rand.NewPCG(7, uint64(len(tt.name))))
		for i := range 3000 {
			s := randomText(r, 30)
			ids := tok.Encode(s)
			wantBytes := s
			if tok.normalize != nil {
				wantBytes = tok.normalize(s)
			}
			if got := string(tok.DecodeBytes(ids, false)); got != wantBytes {
				t.Fatalf("%s case %d: DecodeBytes(Encode(%q)) = %q, want %q", tt.name, i, s, got, wantBytes)
			}
			got := tok.Decode(ids, false)
			if utf8.ValidString(s) {
				if want := tt.want(s); got != want {
					t.Fatalf("%s case %d: Decode(Encode(%q)) = %q, want %q", tt.name, i, s, got, want)
				}
			} else if !utf8.ValidString(got) || !strings.ContainsRune(got, utf8.RuneError) {
				t.Fatalf("%s case %d: Decode of invalid UTF-8 %q = %q, want valid text with U+FFFD", tt.name, i, s, got)
			}
			for _, id := range ids {
				if id < 0 || int(id) >= tok.VocabSize() {
					t.Fatalf("%s: Encode(%q) gave id %d outside [0, %d)", tt.name, s, id, tok.VocabSize())
				}
			}
		}
	}
}

func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "\xff\xfe", "👩\u200d💻 e\u0301", "<|im_end|><|im_end", "数学题"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range fixtureNames {
			tok, _ := loadFixture(t, name)
			ids := tok.Encode(s)
			want := s
			if tok.normalize != nil {
				want = tok.normalize(s)
			}
			if got := string(tok.DecodeBytes(ids, false)); got != want {
				t.Fatalf("%s: DecodeBytes(Encode(%q)) = %q", name, s, got)
			}
		}
	})
}

// TestLossyDecode checks the U+FFFD rule against Python's bytes.decode("utf-8", "replace").
func TestLossyDecode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"\xe2\x82", "\ufffd"},                           // truncated 3-byte sequence: one U+FFFD
		{"\xe2\x82x", "\ufffdx"},                         // ... followed by ASCII
		{"\xff\xfe", "\ufffd\ufffd"},                     // two invalid bytes
		{"\xf0\x9f\xa4", "\ufffd"},                       // truncated emoji
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"},           // surrogate: ED A0 is not a valid prefix
		{"\xc3\xa9\xc3", "é\ufffd"},                      // valid then truncated
		{"\xe0\x80\x80", "\ufffd\ufffd\ufffd"},           // overlong: E0 80 is not a valid prefix
		{"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"}, // above U+10FFFF
	}
	for _, tt := range tests {
		if got := validUTF8Lossy([]byte(tt.in)); got != tt.want {
			t.Errorf("validUTF8Lossy(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A character split across tokens decodes whole once both tokens are there.
	tok, _ := loadFixture(t, "qwen3")
	ids := tok.Encode(" 🤖") // the fixture's tokens: " \xf0\x9f", "\xa4", "\x96"
	if !slices.Equal(ids, []int32{11162, 97, 244}) {
		t.Fatalf("Encode(\" 🤖\") = %v, want [11162 97 244]", ids)
	}
	if got := tok.Decode(ids[:1], false); got != " \ufffd" {
		t.Errorf("Decode(first half) = %q, want \" U+FFFD\"", got)
	}
	if got := tok.Decode(ids, false); got != " 🤖" {
		t.Errorf("Decode(both) = %q", got)
	}
}

// naiveBPE is the textbook algorithm: repeatedly merge the lowest-ranked adjacent pair, leftmost
// first. Quadratic, obviously right.
func naiveBPE(m *bpe, word string) []int32 {
	var ids []int32
	for i := 0; i < len(word); i++ {
		ids = append(ids, m.byteID[word[i]])
	}
	for {
		best, at := merge{rank: -1}, -1
		for i := 0; i+1 < len(ids); i++ {
			if mg, ok := m.merges[pairKey(ids[i], ids[i+1])]; ok && (at < 0 || mg.rank < best.rank) {
				best, at = mg, i
			}
		}
		if at < 0 {
			return ids
		}
		ids = append(ids[:at+1], ids[at+2:]...)
		ids[at] = best.id
	}
}

func TestMergeWordMatchesNaiveBPE(t *testing.T) {
	tok, _ := loadFixture(t, "qwen3")
	r := rand.New(rand.NewPCG(3, 4))
	words := []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "internationalization", " antidisestablishmentarianism", "数学题数学题"}
	for range 2000 {
		var b strings.Builder
		for range 1 + r.IntN(40) {
			b.WriteByte("etaoinshrdlu  "[r.IntN(14)])
		}
		words = append(words, b.String())
	}
	for _, w := range words {
		if got, want := tok.model.mergeWord(w), naiveBPE(&tok.model, w); !slices.Equal(got, want) {
			t.Fatalf("mergeWord(%q) = %v, naive BPE %v", w, got, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	good := filepath.Join("..", "testdata", "tokenizers", "qwen3")
	cfg, err := os.ReadFile(filepath.Join(good, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		tokenizer string // "" means no tokenizer.json
		config    string
		wantAll   []string // substrings of the error
	}{
		{"missing", "", "", []string{"tokenizer.json", "no such file"}},
		{"bad json", `{"model": {`, "", []string{"tokenizer.json", "invalid JSON"}},
		{"wrong type", `{"model": {"type": "BPE", "vocab": {"a": "x"}}}`, "", []string{"tokenizer.json", "model.vocab"}},
		{"no model", `{}`, "", []string{"tokenizer.json", "field model"}},
		{"wordpiece", `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`, "", []string{"tokenizer.json", "model.type", "WordPiece"}},
		{"bad merge", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`, "", []string{"model.merges[0]", "not in model.vocab"}},
		{"no byte level", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}`, "", []string{"pre_tokenizer.type", "Whitespace"}},
		{"lookaround regex", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a(?=b)"}, "behavior": "Isolated"}}`, "", []string{"pre_tokenizer.pattern", "not supported"}},
		{"bad config", "", `{"eos_token": 5}`, []string{"tokenizer_config.json", "eos_token"}},
		{"unknown eos", "", `{"eos_token": "<nope>"}`, []string{"tokenizer_config.json", "eos_token", "<nope>"}},
		{"bad template", "", `{"chat_template": "{% if %}"}`, []string{"tokenizer_config.json", "chat_template"}},
	}
	goodTok, err := os.ReadFile(filepath.Join(good, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tj := tt.tokenizer
			if tt.config != "" {
				tj = string(goodTok)
			}
			if tj != "" {
				os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(tj), 0o644)
			}
			c := tt.config
			if c == "" {
				c = string(cfg)
			}
			os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(c), 0o644)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has several lines: %q", msg)
			}
			for _, w := range tt.wantAll {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}
