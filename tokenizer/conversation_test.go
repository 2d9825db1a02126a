package tokenizer

import (
	"slices"
	"testing"
)

func mustID(t *testing.T, tok *HF, s string) int32 {
	t.Helper()
	id, ok := tok.TokenID(s)
	if !ok {
		t.Fatalf("no token %q", s)
	}
	return id
}

// TestConversationMatchesFixture: when the policy's turn is canonical and the template keeps it,
// building the conversation turn by turn gives transformers' ids for the whole conversation.
func TestConversationMatchesFixture(t *testing.T) {
	tests := []struct {
		name    string
		endTurn string // the token the policy ends its turn with
		fixture int    // index of the 3-message chat case with the generation prompt
	}{
		{"qwen3", "<|im_end|>", 8},
		{"llama3", "<|eot_id|>", 4},
	}
	for _, tt := range tests {
		tok, f := loadFixture(t, tt.name)
		want := f.Chat[tt.fixture]
		if len(want.Messages) != 3 || !want.AddGenerationPrompt {
			t.Fatalf("%s: fixture chat %d is not the 3-message case", tt.name, tt.fixture)
		}
		opts := ChatOptions{}
		if want.EnableThinking != nil {
			opts.Vars = map[string]any{"enable_thinking": *want.EnableThinking}
		}
		c, err := tok.NewConversation(want.Messages[:1], opts)
		if err != nil {
			t.Fatal(err)
		}
		promptLen := len(c.IDs)
		generated := append(tok.Encode(want.Messages[1].Content), mustID(t, tok, tt.endTurn))
		c.AppendGenerated(generated)
		if err := c.AppendMessages(want.Messages[2]); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.IDs, want.IDs) {
			t.Errorf("%s: incremental ids\n%v\nwant (transformers)\n%v", tt.name, c.IDs, want.IDs)
		}
		for i, g := range c.Generated {
			if inTurn := i >= promptLen && i < promptLen+len(generated); g != inTurn {
				t.Errorf("%s: Generated[%d] = %v, want %v", tt.name, i, g, inTurn)
			}
		}
	}
}

// TestConversationVersusNaiveRetokenization shows the two places where tokenizing the re-rendered
// conversation disagrees with the ids the policy actually saw and produced.
func TestConversationVersusNaiveRetokenization(t *testing.T) {
	tok, _ := loadFixture(t, "qwen3")
	imEnd := mustID(t, tok, "<|im_end|>")
	think := mustID(t, tok, "<think>")
	user1 := Message{Role: "user", Content: "What is 2+2?"}
	user2 := Message{Role: "user", Content: "And 3+3?"}

	t.Run("template drops earlier reasoning", func(t *testing.T) {
		c, err := tok.NewConversation([]Message{user1}, ChatOptions{})
		if err != nil {
			t.Fatal(err)
		}
		promptLen := len(c.IDs)
		reply := "<think>\nAdd them.\n</think>\n\n4"
		c.AppendGenerated(append(tok.Encode(reply), imEnd))
		if err := c.AppendMessages(user2); err != nil {
			t.Fatal(err)
		}
		wantText := "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n" +
			"<think>\nAdd them.\n</think>\n\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n"
		if got := tok.Decode(c.IDs, false); got != wantText {
			t.Fatalf("incremental text\n%q\nwant\n%q", got, wantText)
		}
		naiveText, err := tok.ApplyChatTemplate([]Message{user1, {Role: "assistant", Content: reply}, user2}, ChatOptions{AddGenerationPrompt: true})
		if err != nil {
			t.Fatal(err)
		}
		naive := tok.Encode(naiveText)
		at := firstDiff(c.IDs, naive)
		// They part right after the assistant header: the policy wrote <think>, the re-rendered
		// history starts with the answer "4" (id 19). The re-rendered one lacks the 7 tokens
		// <think> "\n" "Add" " them" ".\n" </think> "\n\n".
		if at != promptLen || c.IDs[at] != think || naive[at] != 19 || len(c.IDs)-len(naive) != 7 {
			t.Errorf("first difference at %d (prompt is %d ids): incremental %d, naive %d; lengths %d, %d",
				at, promptLen, c.IDs[at], naive[at], len(c.IDs), len(naive))
		}
	})

	t.Run("sampled tokens are not the canonical tokenization", func(t *testing.T) {
		c, err := tok.NewConversation([]Message{user1}, ChatOptions{Vars: map[string]any{"enable_thinking": false}})
		if err != nil {
			t.Fatal(err)
		}
		// The policy spelled "Hello" as "Hel" + "lo"; BPE of the same text is the single "Hello".
		sampled := []int32{mustID(t, tok, "Hel"), mustID(t, tok, "lo"), imEnd}
		c.AppendGenerated(sampled)
		if err := c.AppendMessages(user2); err != nil {
			t.Fatal(err)
		}
		text := tok.Decode(c.IDs, false)
		retok := tok.Encode(text)
		at := firstDiff(c.IDs, retok)
		hello := mustID(t, tok, "Hello")
		if text[len(text)-len("assistant\n<think>\n\n</think>\n\n"):] != "assistant\n<think>\n\n</think>\n\n" {
			t.Errorf("conversation does not end with the no-thinking generation prompt: %q", text)
		}
		if at >= len(c.IDs) || c.IDs[at] != sampled[0] || retok[at] != hello || len(c.IDs) != len(retok)+1 {
			t.Errorf("first difference at %d: incremental %v, re-tokenized %v", at, c.IDs[at:], retok[at:])
		}
	})

	t.Run("truncated turn is closed by the template", func(t *testing.T) {
		c, err := tok.NewConversation([]Message{user1}, ChatOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.AppendGenerated(tok.Encode("<think>\nAdd"))
		if err := c.AppendMessages(Message{Role: "tool", Content: "4"}); err != nil {
			t.Fatal(err)
		}
		want := "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nAdd<|im_end|>\n" +
			"<|im_start|>user\n<tool_response>\n4\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
		if got := tok.Decode(c.IDs, false); got != want {
			t.Errorf("text\n%q\nwant\n%q", got, want)
		}
	})
}

func firstDiff(a, b []int32) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
