package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/polo-rl/polo/internal/jinja"
)

// Message is one turn of a conversation, as transformers' chat templates expect it.
type Message struct {
	Role    string
	Content string
	// Extra holds the message's other keys (tool_calls, reasoning_content, tool_call_id, name, or a
	// content that is not a string) as raw JSON; objects inside keep their key order when rendered.
	Extra map[string]json.RawMessage
}

// UnmarshalJSON reads {"role": ..., "content": ..., other keys...}.
func (m *Message) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	*m = Message{}
	for k, v := range fields {
		switch k {
		case "role":
			if err := json.Unmarshal(v, &m.Role); err != nil {
				return fmt.Errorf("message field role: want a string, got %s", v)
			}
			continue
		case "content":
			if json.Unmarshal(v, &m.Content) == nil {
				continue
			}
		}
		if m.Extra == nil {
			m.Extra = map[string]json.RawMessage{}
		}
		m.Extra[k] = v
	}
	if m.Role == "" {
		return errors.New(`message has no "role"`)
	}
	return nil
}

// MarshalJSON writes the message back with role and content first.
func (m Message) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"role":`)
	r, _ := json.Marshal(m.Role)
	buf.Write(r)
	if _, ok := m.Extra["content"]; !ok {
		c, _ := json.Marshal(m.Content)
		buf.WriteString(`,"content":`)
		buf.Write(c)
	}
	for _, k := range sortedKeys(m.Extra) {
		kk, _ := json.Marshal(k)
		buf.WriteByte(',')
		buf.Write(kk)
		buf.WriteByte(':')
		buf.Write(m.Extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// ChatOptions are the arguments of transformers' apply_chat_template besides the messages.
type ChatOptions struct {
	// AddGenerationPrompt ends the text with the header of an assistant turn, for sampling.
	AddGenerationPrompt bool
	// Tools are tool (function) definitions as JSON objects; their key order is kept, because
	// templates print them with tojson and the model saw them in that order.
	Tools []json.RawMessage
	// Vars are extra template variables, e.g. {"enable_thinking": false} for Qwen3.
	Vars map[string]any
}

// HasChatTemplate reports whether the tokenizer came with a chat template.
func (t *HF) HasChatTemplate() bool { return t.template != nil }

// ApplyChatTemplate renders messages with the tokenizer's chat template, as transformers'
// apply_chat_template(messages, tokenize=False, ...). Encode the result with Encode (not
// EncodeWithSpecial): the template already writes the special tokens.
func (t *HF) ApplyChatTemplate(messages []Message, opts ChatOptions) (string, error) {
	if t.template == nil {
		return "", errors.New("the tokenizer has no chat template (tokenizer_config.json field chat_template, or chat_template.jinja)")
	}
	data := make(map[string]jinja.Value, 8+len(opts.Vars))
	for k, v := range opts.Vars {
		data[k] = jinja.FromGoValue(v)
	}
	for k, v := range t.names {
		data[k] = jinja.NewString(v)
	}
	msgs := make([]jinja.Value, len(messages))
	for i, m := range messages {
		v, err := messageValue(m)
		if err != nil {
			return "", fmt.Errorf("message %d: %w", i, err)
		}
		msgs[i] = v
	}
	data["messages"] = jinja.NewList(msgs)
	data["add_generation_prompt"] = jinja.NewBool(opts.AddGenerationPrompt)
	if len(opts.Tools) > 0 {
		tools := make([]jinja.Value, len(opts.Tools))
		for i, raw := range opts.Tools {
			v, err := orderedJSON(raw)
			if err != nil {
				return "", fmt.Errorf("tool %d: %w", i, err)
			}
			tools[i] = v
		}
		data["tools"] = jinja.NewList(tools)
	} else {
		data["tools"] = jinja.None()
	}
	out, err := t.template.RenderValues(data)
	if err != nil {
		return "", fmt.Errorf("render chat template: %w", err)
	}
	return out, nil
}

func messageValue(m Message) (jinja.Value, error) {
	d := jinja.NewDict()
	dict := d.AsDict()
	dict.Set("role", jinja.NewString(m.Role))
	dict.Set("content", jinja.NewString(m.Content))
	for _, k := range sortedKeys(m.Extra) {
		v, err := orderedJSON(m.Extra[k])
		if err != nil {
			return d, fmt.Errorf("field %s: %w", k, err)
		}
		dict.Set(k, v)
	}
	return d, nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// orderedJSON converts JSON to a template value, keeping object key order (Go maps would not)
// and integers as integers.
func orderedJSON(raw []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return v, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, errors.New("invalid JSON: trailing data after the value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (jinja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return jinja.Undefined(), err
	}
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return d, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return d, err
				}
				d.AsDict().Set(kt.(string), v)
			}
			_, err := dec.Token() // '}'
			return d, err
		case '[':
			var items []jinja.Value
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return jinja.Undefined(), err
				}
				items = append(items, v)
			}
			_, err := dec.Token() // ']'
			return jinja.NewList(items), err
		}
		return jinja.Undefined(), fmt.Errorf("unexpected %v", x)
	default:
		return jinja.FromGoValue(x), nil // string, json.Number, bool, nil
	}
}

// loadTemplate compiles chat_template.jinja or tokenizer_config.json's chat_template (a string,
// or a list of named templates of which "default" is used).
func (t *HF) loadTemplate(dir string, cfg *configJSON) error {
	src, where := "", ""
	jinjaPath := filepath.Join(dir, "chat_template.jinja")
	if b, err := os.ReadFile(jinjaPath); err == nil {
		src, where = string(b), jinjaPath
	} else if len(cfg.ChatTemplate) > 0 && string(cfg.ChatTemplate) != "null" {
		where = filepath.Join(dir, "tokenizer_config.json") + ": field chat_template"
		if json.Unmarshal(cfg.ChatTemplate, &src) != nil {
			var named []struct{ Name, Template string }
			if err := json.Unmarshal(cfg.ChatTemplate, &named); err != nil {
				return fmt.Errorf("%s: want a string or a list of {name, template}", where)
			}
			var names []string
			for _, n := range named {
				if n.Name == "default" {
					src = n.Template
				}
				names = append(names, n.Name)
			}
			if src == "" {
				return fmt.Errorf("%s: no template named \"default\" among %v", where, names)
			}
		}
	}
	if src == "" {
		return nil
	}
	tmpl, err := jinja.Compile(src)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	t.template = tmpl
	return nil
}
