package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// fixture is expected.json, written by transformers for each tokenizer in testdata/tokenizers.
type fixture struct {
	Encode []struct {
		Text       string   `json:"text"`
		IDsSpecial []int32  `json:"ids_special"`
		IDs        []int32  `json:"ids"`
		Decoded    string   `json:"decoded"`
		Tokens     []string `json:"tokens"`
	} `json:"encode"`
	Chat []struct {
		Messages            []Message `json:"messages"`
		AddGenerationPrompt bool      `json:"add_generation_prompt"`
		EnableThinking      *bool     `json:"enable_thinking"`
		Text                string    `json:"text"`
		IDs                 []int32   `json:"ids"`
	} `json:"chat"`
}

var fixtureNames = []string{"qwen3", "llama3"}

// loaded caches the tokenizers: each takes ~0.5 s to parse.
var loaded sync.Map

func loadFixture(t testing.TB, name string) (*HF, *fixture) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "tokenizers", name)
	v, ok := loaded.Load(name)
	if !ok {
		tok, err := Load(dir)
		if err != nil {
			t.Fatalf("Load(%s): %v", dir, err)
		}
		v, _ = loaded.LoadOrStore(name, tok)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return v.(*HF), &f
}

func TestEncodeMatchesTransformers(t *testing.T) {
	for _, name := range fixtureNames {
		tok, f := loadFixture(t, name)
		if len(f.Encode) < 15 {
			t.Fatalf("%s: only %d encode cases in the fixture", name, len(f.Encode))
		}
		for _, c := range f.Encode {
			t.Run(name+"/"+c.Text, func(t *testing.T) {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
					t.Errorf("Encode = %v\nwant     %v", got, c.IDs)
				}
				if got := tok.EncodeWithSpecial(c.Text); !slices.Equal(got, c.IDsSpecial) {
					t.Errorf("EncodeWithSpecial = %v\nwant                %v", got, c.IDsSpecial)
				}
				var toks []string
				for _, id := range c.IDs {
					toks = append(toks, tok.Token(id))
				}
				if !slices.Equal(toks, c.Tokens) && !(len(toks) == 0 && len(c.Tokens) == 0) {
					t.Errorf("tokens = %q\nwant     %q", toks, c.Tokens)
				}
				if got := tok.Decode(c.IDsSpecial, false); got != c.Decoded {
					t.Errorf("Decode = %q, want %q", got, c.Decoded)
				}
			})
		}
	}
}

func TestChatTemplateMatchesTransformers(t *testing.T) {
	for _, name := range fixtureNames {
		tok, f := loadFixture(t, name)
		if len(f.Chat) < 6 {
			t.Fatalf("%s: only %d chat cases in the fixture", name, len(f.Chat))
		}
		for i, c := range f.Chat {
			opts := ChatOptions{AddGenerationPrompt: c.AddGenerationPrompt}
			if c.EnableThinking != nil {
				opts.Vars = map[string]any{"enable_thinking": *c.EnableThinking}
			}
			text, err := tok.ApplyChatTemplate(c.Messages, opts)
			if err != nil {
				t.Fatalf("%s chat %d: %v", name, i, err)
			}
			if text != c.Text {
				t.Errorf("%s chat %d: text\n%q\nwant\n%q", name, i, text, c.Text)
			}
			if got := tok.Encode(text); !slices.Equal(got, c.IDs) {
				t.Errorf("%s chat %d: ids %v\nwant %v", name, i, got, c.IDs)
			}
		}
	}
}

func TestSpecialTokenIDs(t *testing.T) {
	tests := []struct {
		name                 string
		bos, eos, pad        int32
		vocabSize            int
		skipSpecialDecodedOf string
		skipSpecialWant      string
	}{
		// Qwen3: no BOS; <|im_start|> is special, <think> is not.
		{"qwen3", -1, 151645, 151643, 151669, "<|im_start|>user\n<think>hi</think><|im_end|>", "user\n<think>hi</think>"},
		// Llama-3 base: eos is <|end_of_text|>, no pad token.
		{"llama3", 128000, 128001, -1, 128256, "<|begin_of_text|>Hi<|eot_id|>", "Hi"},
	}
	for _, tt := range tests {
		tok, _ := loadFixture(t, tt.name)
		if tok.BOS() != tt.bos || tok.EOS() != tt.eos || tok.PAD() != tt.pad || tok.VocabSize() != tt.vocabSize {
			t.Errorf("%s: BOS, EOS, PAD, VocabSize = %d, %d, %d, %d; want %d, %d, %d, %d", tt.name,
				tok.BOS(), tok.EOS(), tok.PAD(), tok.VocabSize(), tt.bos, tt.eos, tt.pad, tt.vocabSize)
		}
		if got := tok.Decode(tok.Encode(tt.skipSpecialDecodedOf), true); got != tt.skipSpecialWant {
			t.Errorf("%s: Decode(skipSpecial) = %q, want %q", tt.name, got, tt.skipSpecialWant)
		}
	}
}

// TestConcurrentEncode: the shared word cache gives every goroutine the serial result.
func TestConcurrentEncode(t *testing.T) {
	tok, f := loadFixture(t, "qwen3")
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(f.Encode))
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range f.Encode {
				c := f.Encode[(i+g)%len(f.Encode)]
				if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
					errs <- c.Text
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("concurrent Encode(%q) differs from transformers", s)
	}
}
