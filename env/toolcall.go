package env

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Tool-call formats: how a chat template's model writes a call.
const (
	// FormatQwen3 is Qwen2.5/Qwen3's <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>,
	// any number per turn, anywhere in the turn.
	FormatQwen3 = "qwen3"
	// FormatLlama3 is Llama 3.x's JSON tool call: the whole turn (after an optional
	// <|python_tag|>) is {"name": ..., "parameters": {...}} ("arguments" is accepted too).
	FormatLlama3 = "llama3"
	// FormatCalc is a compact format for character-level demo models: every {expression} in the
	// turn is a call of the calculator.
	FormatCalc = "calc"
	// FormatNone parses no tool calls (plain multi-turn conversation).
	FormatNone = "none"
)

// ParseToolCalls returns the tool calls of a turn's text in the given format. A call that is
// meant (an opening tag, a turn that starts with "{") but cannot be read gives a non-nil error
// naming the problem; the calls read before it are returned too.
func ParseToolCalls(format, text string) ([]ToolCall, error) {
	switch format {
	case FormatQwen3:
		return parseTagged(text, "<tool_call>", "</tool_call>")
	case FormatLlama3:
		return parseLlama3(text)
	case FormatCalc:
		return parseCalc(text)
	case FormatNone, "":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown tool-call format %q (want qwen3, llama3, calc or none)", format)
}

func parseCalc(text string) ([]ToolCall, error) {
	var calls []ToolCall
	for n := 1; ; n++ {
		i := strings.IndexByte(text, '{')
		if i < 0 {
			return calls, nil
		}
		j := strings.IndexByte(text[i:], '}')
		if j < 0 {
			return calls, fmt.Errorf("tool call %d: { without }", n)
		}
		args, _ := json.Marshal(map[string]string{"expression": text[i+1 : i+j]})
		calls = append(calls, ToolCall{Name: "calculator", Arguments: args})
		text = text[i+j+1:]
	}
}

func parseTagged(text, open, close string) ([]ToolCall, error) {
	var calls []ToolCall
	for n := 1; ; n++ {
		i := strings.Index(text, open)
		if i < 0 {
			return calls, nil
		}
		text = text[i+len(open):]
		j := strings.Index(text, close)
		if j < 0 {
			return calls, fmt.Errorf("tool call %d: %s without %s", n, open, close)
		}
		c, err := decodeCall(text[:j], "arguments")
		if err != nil {
			return calls, fmt.Errorf("tool call %d: %w", n, err)
		}
		calls = append(calls, c)
		text = text[j+len(close):]
	}
}

func parseLlama3(text string) ([]ToolCall, error) {
	s := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(text), "<|python_tag|>"))
	if !strings.HasPrefix(s, "{") {
		return nil, nil
	}
	c, err := decodeCall(s, "parameters")
	if err != nil {
		return nil, fmt.Errorf("tool call 1: %w", err)
	}
	return []ToolCall{c}, nil
}

// decodeCall reads {"name": string, argsKey|"arguments": object or JSON-object string}.
func decodeCall(s, argsKey string) (ToolCall, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(strings.TrimSpace(s)))
	if err := dec.Decode(&raw); err != nil {
		return ToolCall{}, fmt.Errorf("malformed JSON: %v", err)
	}
	if dec.More() {
		return ToolCall{}, errors.New("malformed JSON: text after the call object")
	}
	var c ToolCall
	if err := json.Unmarshal(raw["name"], &c.Name); err != nil || c.Name == "" {
		return ToolCall{}, errors.New(`no "name" string`)
	}
	args, ok := raw[argsKey]
	if !ok {
		args, ok = raw["arguments"]
	}
	if !ok || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	var str string
	if json.Unmarshal(args, &str) == nil { // arguments given as a JSON string
		args = json.RawMessage(str)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil {
		return ToolCall{}, fmt.Errorf("arguments of %s are not a JSON object", c.Name)
	}
	c.Arguments = bytes.Clone(args)
	return c, nil
}
