package tokenizer

import (
	"errors"
	"fmt"
	"strings"
)

// Conversation is the token ids of a multi-turn rollout, built only by appending: the policy's
// sampled ids verbatim, and the chat template's rendering of each new message. Earlier turns are
// never re-tokenized, so the ids the trainer scores are exactly those the policy saw and sampled.
//
// Re-rendering the whole conversation and tokenizing it again is not the same: templates rewrite
// earlier turns (Qwen3 drops the <think> block of assistant turns before the last user message),
// and a sampled token sequence need not be the canonical BPE tokenization of its text.
type Conversation struct {
	tok  *HF
	opts ChatOptions
	// IDs is the whole conversation so far.
	IDs []int32
	// Generated marks the ids the policy sampled: the loss mask of multi-turn RL.
	Generated []bool
}

// turnMarker stands for an assistant message's content when rendering the text that follows a
// turn; it has no spaces so that templates that trim content keep it whole.
const turnMarker = "POLO_TURN_MARKER_7f3a"

// NewConversation renders messages with the generation prompt and tokenizes them, ready for the
// policy's first turn. opts.AddGenerationPrompt is ignored (always true).
func (t *HF) NewConversation(messages []Message, opts ChatOptions) (*Conversation, error) {
	opts.AddGenerationPrompt = true
	text, err := t.ApplyChatTemplate(messages, opts)
	if err != nil {
		return nil, err
	}
	ids := t.Encode(text)
	return &Conversation{tok: t, opts: opts, IDs: ids, Generated: make([]bool, len(ids))}, nil
}

// AppendGenerated appends ids the policy sampled, as they are.
func (c *Conversation) AppendGenerated(ids []int32) {
	c.IDs = append(c.IDs, ids...)
	for range ids {
		c.Generated = append(c.Generated, true)
	}
}

// AppendMessages appends new messages (tool results, the user's next turn) after the policy's
// turn, followed by the generation prompt. Their ids are the template's text after an assistant
// turn, found by rendering a stand-in conversation [user, assistant] + messages. If the policy's
// last id is the template's end-of-turn token (<|im_end|>, <|eot_id|>) it is kept and the text
// continues after it; otherwise (a truncated turn) the template's own end of turn is appended.
func (c *Conversation) AppendMessages(messages ...Message) error {
	if len(messages) == 0 {
		return errors.New("append to conversation: no messages")
	}
	standIn := append([]Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: turnMarker}}, messages...)
	text, err := c.tok.ApplyChatTemplate(standIn, c.opts)
	if err != nil {
		return fmt.Errorf("append to conversation: %w", err)
	}
	i := strings.Index(text, turnMarker)
	if i < 0 {
		return errors.New("append to conversation: the chat template does not render assistant content verbatim, so the text after a turn cannot be found")
	}
	after := text[i+len(turnMarker):]
	if n := len(c.IDs); n > 0 && c.Generated[n-1] {
		if last := c.IDs[n-1]; c.isAdded(last) {
			if s := c.tok.Token(last); strings.HasPrefix(after, s) {
				after = after[len(s):]
			}
		}
	}
	ids := c.tok.Encode(after)
	c.IDs = append(c.IDs, ids...)
	c.Generated = append(c.Generated, make([]bool, len(ids))...)
	return nil
}

func (c *Conversation) isAdded(id int32) bool {
	s := c.tok.Token(id)
	got, ok := c.tok.added[s]
	return ok && got == id
}
