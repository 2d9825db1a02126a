package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/internal/memlimit"
)

// TestHugeAddedTokenID: an added-token id far past the vocabulary (1e9, 2^31-1) is refused with an
// error naming the field, under a memory limit, instead of allocating a table sized by the id or
// panicking (issue 14, item 4). Ids in the vocabulary itself are checked the same way.
func TestHugeAddedTokenID(t *testing.T) {
	cases := []struct{ vocabID, addedID int64 }{{2, 1_000_000_000}, {2, 1<<31 - 1}, {2, 70_000}, {1_000_000_000, 4}}
	if memlimit.InChild() {
		var errs []error
		for _, c := range cases {
			dir, err := os.MkdirTemp("", "polo-tok-")
			if err != nil {
				memlimit.Report(err)
			}
			tj := fmt.Sprintf(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": %d}, "merges": ["a b"]},
				"added_tokens": [{"id": 3, "content": "<s>", "special": true}, {"id": %d, "content": "<huge>", "special": true}]}`, c.vocabID, c.addedID)
			os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(tj), 0o644)
			_, err = Load(dir)
			os.RemoveAll(dir)
			if err == nil {
				err = fmt.Errorf("ids %d/%d: Load succeeded", c.vocabID, c.addedID)
			}
			errs = append(errs, err)
		}
		memlimit.Report(errors.Join(errs...))
	}
	res := memlimit.Run(t, "TestHugeAddedTokenID", 512)
	res.Expect(t, "outside the vocabulary")
	for _, want := range []string{
		`field added_tokens[1] ("<huge>"): id 1000000000 is outside the vocabulary: ids must be in [0, 65541) for 5 tokens`,
		`field added_tokens[1] ("<huge>"): id 2147483647 is outside the vocabulary`,
		`field added_tokens[1] ("<huge>"): id 70000 is outside the vocabulary`,
		`field model.vocab["ab"]: id 1000000000 is outside the vocabulary`,
	} {
		if !strings.Contains(res.Err, want) {
			t.Errorf("child reported %q; want it to contain %q", res.Err, want)
		}
	}
}

// TestHostileChatTemplates: a model folder's chat template that recurses without end, loops too
// long, divides by zero or reads from an undefined value gives an error from ApplyChatTemplate
// (issue 14, item 5 and minor items); the limits themselves are tested in internal/jinja.
func TestHostileChatTemplates(t *testing.T) {
	good := filepath.Join("..", "testdata", "tokenizers", "qwen3")
	tj, err := os.ReadFile(filepath.Join(good, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tmpl, want string }{
		{`{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}`, "recursion deeper than 200 calls"},
		{`{% for i in range(100000000) %}{{ i }}{% endfor %}`, "more than the 1000000 items"},
		{`{{ 1/0 }}`, "division by zero"},
		{`{{ messages[3].content }}`, `is undefined (reading its attribute "content")`},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644)
		cfg, _ := json.Marshal(map[string]any{"eos_token": "<|im_end|>", "chat_template": c.tmpl})
		os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644)
		tok, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tok.ApplyChatTemplate([]Message{{Role: "user", Content: "hi"}}, ChatOptions{})
		if err == nil || !strings.Contains(err.Error(), "render chat template: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.tmpl, err, c.want)
		}
	}
}
