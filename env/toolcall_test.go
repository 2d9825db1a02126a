package env

import (
	"strings"
	"testing"
)

func TestParseToolCalls(t *testing.T) {
	tests := []struct {
		name, format, text string
		want               []string // name|arguments
		err                string   // substring of the error, "" = none
	}{
		{"qwen3 one call", FormatQwen3, "Let me compute.\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*34\"}}\n</tool_call>",
			[]string{`calculator|{"expression": "12*34"}`}, ""},
		{"qwen3 two calls, string arguments", FormatQwen3, "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call> and <tool_call>{\"name\":\"b\",\"arguments\":\"{\\\"x\\\": 1}\"}</tool_call>",
			[]string{`a|{}`, `b|{"x": 1}`}, ""},
		{"qwen3 no call", FormatQwen3, "The answer is 408.", nil, ""},
		{"qwen3 malformed JSON keeps earlier calls", FormatQwen3, "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {</tool_call>",
			[]string{`a|{}`}, "tool call 2: malformed JSON"},
		{"qwen3 unclosed", FormatQwen3, "<tool_call>{\"name\":\"a\"}", nil, "without </tool_call>"},
		{"qwen3 no name", FormatQwen3, "<tool_call>{\"arguments\":{}}</tool_call>", nil, `no "name"`},
		{"qwen3 arguments not an object", FormatQwen3, "<tool_call>{\"name\":\"a\",\"arguments\":[1]}</tool_call>", nil, "not a JSON object"},
		{"llama3 parameters", FormatLlama3, " {\"name\": \"calculator\", \"parameters\": {\"expression\": \"2^10\"}}",
			[]string{`calculator|{"expression": "2^10"}`}, ""},
		{"llama3 python tag", FormatLlama3, "<|python_tag|>{\"name\": \"search\", \"arguments\": {\"query\": \"go\"}}",
			[]string{`search|{"query": "go"}`}, ""},
		{"llama3 prose", FormatLlama3, "It is 1024.", nil, ""},
		{"llama3 trailing text", FormatLlama3, "{\"name\": \"a\", \"parameters\": {}} thanks", nil, "text after the call"},
		{"calc", FormatCalc, "{12*34} and {5+5}", []string{`calculator|{"expression":"12*34"}`, `calculator|{"expression":"5+5"}`}, ""},
		{"calc unclosed", FormatCalc, "{12*34", nil, "{ without }"},
		{"none", FormatNone, "<tool_call>{}</tool_call>", nil, ""},
	}
	for _, tt := range tests {
		calls, err := ParseToolCalls(tt.format, tt.text)
		if (err != nil) != (tt.err != "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
		}
		var got []string
		for _, c := range calls {
			got = append(got, c.Name+"|"+string(c.Arguments))
		}
		if strings.Join(got, ";") != strings.Join(tt.want, ";") {
			t.Errorf("%s: calls %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := ParseToolCalls("hermes", ""); err == nil || !strings.Contains(err.Error(), "unknown tool-call format") {
		t.Errorf("unknown format: err = %v", err)
	}
}
