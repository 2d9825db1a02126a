package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

var qwen3Dir = filepath.Join("..", "..", "testdata", "tokenizers", "qwen3")

func TestTokenizeCommand(t *testing.T) {
	llama3Dir := filepath.Join("..", "..", "testdata", "tokenizers", "llama3")
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantOut  string
		wantCode int
		wantErr  string
	}{
		// ids from testdata/tokenizers/*/expected.json (transformers)
		{"encode", []string{"--tokenizer", qwen3Dir}, "\"Hello, world! 12+34=46\"\n\" \"\n", "[9707,11,1879,0,220,16,17,10,18,19,28,19,21]\n[220]\n", 0, ""},
		{"specials in text", []string{"--tokenizer", qwen3Dir}, `"<|im_start|>user\nhi<|im_end|>"`, "[151644,872,198,6023,151645]\n", 0, ""},
		{"special adds nothing for qwen", []string{"--tokenizer", qwen3Dir, "--special"}, `" "`, "[220]\n", 0, ""},
		{"llama3", []string{"--tokenizer", llama3Dir}, `"Hello, world! 12+34=46"`, "[9906,11,1917,0,220,717,10,1958,28,2790]\n", 0, ""},
		{"decode", []string{"--tokenizer", qwen3Dir, "--decode"}, "[9707,11,1879,0]\n[151644,872]\n", "\"Hello, world!\"\n\"<|im_start|>user\"\n", 0, ""},
		{"decode skip special", []string{"--tokenizer", qwen3Dir, "--decode", "--skip-special"}, "[151644,872]\n", "\"user\"\n", 0, ""},
		{"not json", []string{"--tokenizer", qwen3Dir}, "hello\n", "", 2, "stdin line 1: want a JSON string"},
		{"no tokenizer flag", nil, "", "", 2, "need --tokenizer"},
		{"missing folder", []string{"--tokenizer", "no/such/dir"}, "", "", 2, "no/such/dir/tokenizer.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"tokenize"}, tt.args...), strings.NewReader(tt.stdin), &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr %s", code, tt.wantCode, errb.String())
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
			if tt.wantErr != "" && !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errb.String(), tt.wantErr)
			}
		})
	}
}
