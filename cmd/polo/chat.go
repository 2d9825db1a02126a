package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/polo-rl/polo/tokenizer"
)

func init() {
	register("chat", "render a JSON conversation with the model's chat template (and its ids with --ids)", runChat)
}

// varFlags collects repeated --var key=value flags; values are JSON, or plain strings.
type varFlags map[string]any

func (v varFlags) String() string { return "" }
func (v varFlags) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	var x any
	if json.Unmarshal([]byte(val), &x) != nil {
		x = val
	}
	v[k] = x
	return nil
}

func runChat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("tokenizer", "", "Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json)")
	ids := fs.Bool("ids", false, `print {"text": ..., "ids": [...]} instead of the text`)
	genPrompt := fs.Bool("generation-prompt", true, "end with the assistant header (add_generation_prompt)")
	vars := varFlags{}
	fs.Var(vars, "var", "template variable key=value, value as JSON (e.g. enable_thinking=false); repeatable")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: polo chat --tokenizer DIR [--ids] [--generation-prompt=false] [--var key=value]... < conversation.json
stdin: a JSON array of messages [{"role": "user", "content": "..."}], or an object
{"messages": [...], "tools": [...], "add_generation_prompt": true, other template variables...}`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return usagef("need --tokenizer DIR and no other arguments")
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	opts := tokenizer.ChatOptions{AddGenerationPrompt: *genPrompt, Vars: map[string]any{}}
	msgs, err := parseConversation(bytes.TrimSpace(raw), &opts)
	if err != nil {
		return usagef("stdin: %v", err)
	}
	for k, v := range vars {
		opts.Vars[k] = v
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return usageError{err}
	}
	text, err := tok.ApplyChatTemplate(msgs, opts)
	if err != nil {
		return usageError{err}
	}
	if !*ids {
		_, err = io.WriteString(stdout, text)
		return err
	}
	out := marshalText(struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}{text, tok.Encode(text)})
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// parseConversation reads a list of messages, or an object with messages, tools,
// add_generation_prompt and other template variables.
func parseConversation(raw []byte, opts *tokenizer.ChatOptions) ([]tokenizer.Message, error) {
	var msgs []tokenizer.Message
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return nil, fmt.Errorf("want a JSON array of messages: %v", err)
		}
		return msgs, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf(`want a JSON array of messages or an object {"messages": [...]}: %v`, err)
	}
	for k, v := range obj {
		var err error
		switch k {
		case "messages":
			err = json.Unmarshal(v, &msgs)
		case "tools":
			err = json.Unmarshal(v, &opts.Tools)
		case "add_generation_prompt":
			err = json.Unmarshal(v, &opts.AddGenerationPrompt)
		default:
			var x any
			err = json.Unmarshal(v, &x)
			opts.Vars[k] = x
		}
		if err != nil {
			return nil, fmt.Errorf("field %s: %v", k, err)
		}
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf(`no messages; give [{"role": "user", "content": "..."}]`)
	}
	return msgs, nil
}
