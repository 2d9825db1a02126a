package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkEncode: mixed text of the fixtures, repeated, with the word cache warm.
func BenchmarkEncode(b *testing.B) {
	tok, f := loadFixture(b, "qwen3")
	var sb strings.Builder
	for sb.Len() < 1<<20 {
		for _, c := range f.Encode {
			sb.WriteString(c.Text)
			sb.WriteString(" ")
		}
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text)
	}
}

// BenchmarkLongWord shows BPE cost per byte staying flat as one word (no spaces, so one piece)
// grows 100-fold: the heap merge is O(n log n), not quadratic. Pieces this long bypass the cache.
func BenchmarkLongWord(b *testing.B) {
	tok, _ := loadFixture(b, "qwen3")
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1000, 10000, 100000} {
		word := make([]byte, n)
		for i := range word {
			word[i] = "etaoinshrdlucmfw"[r.IntN(16)]
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				tok.Encode(string(word))
			}
		})
	}
}

// BenchmarkChatTemplate renders Qwen3's template (tools, a tool call, thinking) with
// internal/jinja (a patched copy of github.com/ardanlabs/jinja).
func BenchmarkChatTemplate(b *testing.B) {
	tok, _ := loadFixture(b, "qwen3")
	msgs := []Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "Add 5 and 7."},
		{Role: "assistant", Content: "<think>\nUse the tool.\n</think>\n\n12"},
		{Role: "user", Content: "And 3+3?"},
	}
	opts := ChatOptions{AddGenerationPrompt: true, Vars: map[string]any{"enable_thinking": true}}
	for b.Loop() {
		if _, err := tok.ApplyChatTemplate(msgs, opts); err != nil {
			b.Fatal(err)
		}
	}
}
