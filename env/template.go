package env

import (
	"fmt"

	"github.com/polo-rl/polo/tokenizer"
)

// Template turns messages into the token ids of one model family and the policy's turns back into
// text and tool calls.
type Template interface {
	// Begin tokenizes the first messages (with the tools announced) and the generation prompt.
	Begin(start Start) (Transcript, []int32, error)
	// StopTokens end a policy turn (the end-of-turn token, EOS).
	StopTokens() []int32
	// Text decodes a policy turn for the environment (special tokens dropped).
	Text(turn []int32) string
	// Format is the tool-call format of ParseToolCalls.
	Format() string
}

// Transcript is one trajectory's conversation state in the template.
type Transcript interface {
	// Continue returns the ids that follow the policy's turn: the template's rendering of msgs and
	// the next generation prompt. It never returns ids of earlier turns.
	Continue(turn []int32, msgs []Message) ([]int32, error)
}

// HFTemplate uses a Hugging Face tokenizer's chat template through tokenizer.Conversation, which
// renders only the text after a turn and never re-tokenizes what the policy sampled.
type HFTemplate struct {
	Tok *tokenizer.HF
	// ToolFormat is FormatQwen3, FormatLlama3 or FormatNone.
	ToolFormat string
	// Vars are template variables, e.g. {"enable_thinking": false}.
	Vars map[string]any
	// Stop are the ids ending a turn; empty means the template's end-of-turn tokens found in the
	// vocabulary (<|im_end|>, <|eot_id|>, <|eom_id|>) and EOS.
	Stop []int32
}

// NewHFTemplate checks the tokenizer has a chat template and fills in the stop tokens.
func NewHFTemplate(tok *tokenizer.HF, format string, vars map[string]any) (*HFTemplate, error) {
	if !tok.HasChatTemplate() {
		return nil, fmt.Errorf("env: the tokenizer has no chat template")
	}
	if _, err := ParseToolCalls(format, ""); err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	t := &HFTemplate{Tok: tok, ToolFormat: format, Vars: vars}
	for _, s := range []string{"<|im_end|>", "<|eot_id|>", "<|eom_id|>"} {
		if id, ok := tok.TokenID(s); ok {
			t.Stop = append(t.Stop, id)
		}
	}
	if eos := tok.EOS(); eos >= 0 && !containsID(t.Stop, eos) {
		t.Stop = append(t.Stop, eos)
	}
	if len(t.Stop) == 0 {
		return nil, fmt.Errorf("env: the tokenizer has no end-of-turn or EOS token to stop a turn")
	}
	return t, nil
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (t *HFTemplate) Begin(start Start) (Transcript, []int32, error) {
	conv, err := t.Tok.NewConversation(start.Messages, tokenizer.ChatOptions{Tools: start.Tools, Vars: t.Vars})
	if err != nil {
		return nil, nil, err
	}
	return &hfTranscript{conv: conv}, append([]int32(nil), conv.IDs...), nil
}

func (t *HFTemplate) StopTokens() []int32 { return t.Stop }

func (t *HFTemplate) Text(turn []int32) string { return t.Tok.Decode(turn, true) }

func (t *HFTemplate) Format() string { return t.ToolFormat }

type hfTranscript struct{ conv *tokenizer.Conversation }

func (h *hfTranscript) Continue(turn []int32, msgs []Message) ([]int32, error) {
	h.conv.AppendGenerated(turn)
	n := len(h.conv.IDs)
	if err := h.conv.AppendMessages(msgs...); err != nil {
		return nil, err
	}
	return append([]int32(nil), h.conv.IDs[n:]...), nil
}

// PlainTemplate is for tokenizers without a chat template (the character-level demo): the prompt
// is BOS + the messages' contents, and each environment message is Open + content + Close.
type PlainTemplate struct {
	Tok         tokenizer.Tokenizer
	Open, Close string
	Stop        []int32
	ToolFormat  string
}

func (t *PlainTemplate) Begin(start Start) (Transcript, []int32, error) {
	text := ""
	for _, m := range start.Messages {
		text += m.Content
	}
	return plainTranscript{t}, t.Tok.EncodeWithSpecial(text), nil
}

func (t *PlainTemplate) StopTokens() []int32 { return t.Stop }

func (t *PlainTemplate) Text(turn []int32) string { return t.Tok.Decode(turn, true) }

func (t *PlainTemplate) Format() string { return t.ToolFormat }

type plainTranscript struct{ t *PlainTemplate }

func (p plainTranscript) Continue(_ []int32, msgs []Message) ([]int32, error) {
	var ids []int32
	for _, m := range msgs {
		ids = append(ids, p.t.Tok.Encode(p.t.Open+m.Content+p.t.Close)...)
	}
	return ids, nil
}
