package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChatTemplateTools checks tool definitions and tool calls against Jinja2 (see
// testdata/tokenizers/make_tools_case.py): key order, Python's JSON separators, no escaping of
// non-ASCII or HTML characters.
func TestChatTemplateTools(t *testing.T) {
	tok, _ := loadFixture(t, "qwen3")
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizers", "qwen3", "tools_expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Messages       []Message         `json:"messages"`
		Tools          []json.RawMessage `json:"tools"`
		EnableThinking bool              `json:"enable_thinking"`
		Text           string            `json:"text"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 {
		t.Fatalf("%d cases, want 2", len(cases))
	}
	for _, c := range cases {
		got, err := tok.ApplyChatTemplate(c.Messages, ChatOptions{
			AddGenerationPrompt: true, Tools: c.Tools, Vars: map[string]any{"enable_thinking": c.EnableThinking}})
		if err != nil {
			t.Fatal(err)
		}
		if got != c.Text {
			t.Errorf("enable_thinking=%v: rendered\n%s\nwant (Jinja2)\n%s", c.EnableThinking, got, c.Text)
		}
	}
	if !strings.Contains(cases[0].Text, `"properties": {"b": {"type": "integer"}, "a": {"type": "integer"}}`) {
		t.Error("fixture does not exercise key order")
	}
}

func TestChatTemplateErrors(t *testing.T) {
	tok, _ := loadFixture(t, "qwen3")
	_, err := tok.ApplyChatTemplate([]Message{{Role: "user", Content: "hi"}}, ChatOptions{Tools: []json.RawMessage{json.RawMessage(`{"a": `)}})
	if err == nil || !strings.Contains(err.Error(), "tool 0") {
		t.Errorf("malformed tool: err = %v, want one naming tool 0", err)
	}
	var m Message
	if err := json.Unmarshal([]byte(`{"content": "x"}`), &m); err == nil || !strings.Contains(err.Error(), "role") {
		t.Errorf("message without role: err = %v", err)
	}
}

func TestMessageJSONRoundTrip(t *testing.T) {
	in := `{"role":"assistant","content":"","tool_calls":[{"function":{"name":"add","arguments":{"b":7,"a":5}}}]}`
	var m Message
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("round trip\n%s\nwant\n%s", out, in)
	}
}
