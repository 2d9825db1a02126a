package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestChatCommand(t *testing.T) {
	// Texts and ids from testdata/tokenizers/qwen3/expected.json (transformers).
	const prompt = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{"array", nil, `[{"role": "user", "content": "What is 2+2?"}]`, prompt, 0, ""},
		{"no thinking", []string{"--var", "enable_thinking=false"}, `[{"role": "user", "content": "What is 2+2?"}]`,
			prompt + "<think>\n\n</think>\n\n", 0, ""},
		{"object with vars", nil, `{"messages": [{"role": "user", "content": "What is 2+2?"}], "add_generation_prompt": false, "enable_thinking": false}`,
			"<|im_start|>user\nWhat is 2+2?<|im_end|>\n", 0, ""},
		{"ids", []string{"--ids"}, `[{"role": "user", "content": "What is 2+2?"}]`,
			`{"text":"<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n","ids":[151644,872,198,3838,374,220,17,10,17,30,151645,198,151644,77091,198]}` + "\n", 0, ""},
		{"bad json", nil, `[{"role": "user"`, "", 2, "stdin: want a JSON array of messages"},
		{"no role", nil, `[{"content": "hi"}]`, "", 2, "role"},
		{"bad var", []string{"--var", "novalue"}, `[]`, "", 2, "want key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"chat", "--tokenizer", qwen3Dir}, tt.args...)
			code := run(args, strings.NewReader(tt.stdin), &out, &errb)
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
