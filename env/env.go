// Package env runs multi-turn environments for agentic RL: the policy writes a turn, the
// environment answers (tool results, a user's next message, a reward), and the trajectory goes on
// until the environment says done or a limit is reached.
//
// Trajectories are token ids built only by appending: the policy's sampled ids verbatim and the
// chat template's rendering of each new environment message. A per-token mask marks the policy's
// tokens, which are the only ones trained on. Environments are Go values (Environment) or external
// processes speaking JSON lines (Process); built-in tools (calculator, sandboxed Python, a local
// search corpus) run inside ToolEnv.
package env

import (
	"context"
	"encoding/json"

	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
)

// Message is one chat message; tool results use Role "tool" (Qwen3) or "ipython" (Llama 3).
type Message = tokenizer.Message

// ToolCall is one call the policy asked for in its turn.
type ToolCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"` // a JSON object
}

// Turn is what the policy wrote in one turn, as the environment sees it.
type Turn struct {
	// Text is the decoded turn without special tokens (the end-of-turn token is not part of it).
	Text string `json:"text"`
	// Calls are the tool calls parsed from Text in the template's format.
	Calls []ToolCall `json:"tool_calls"`
	// ParseError describes a tool call that could not be parsed (malformed JSON, no name); the
	// environment decides what it costs (ToolEnv answers with an error message).
	ParseError string `json:"parse_error,omitempty"`
	// Truncated is true when the turn hit the per-turn token limit without its end-of-turn token.
	Truncated bool `json:"truncated,omitempty"`
}

// Result is the environment's answer to one turn.
type Result struct {
	// Messages are appended to the conversation (rendered by the chat template) unless Done.
	Messages []Message
	// Reward is added to the trajectory's reward.
	Reward float64
	// Done ends the trajectory.
	Done bool
	// ToolCalls and ToolErrors count the calls this step executed and how many of them failed
	// (OTC's m is the sum of ToolCalls over the trajectory).
	ToolCalls, ToolErrors int
	// Correct is the environment's verdict on the final answer (meaningful when Done).
	Correct bool
	// Info is free-form data kept with the trajectory (logged, not trained on).
	Info map[string]any
}

// Start is what Reset returns: the conversation's first messages and the tools the template
// should announce.
type Start struct {
	Messages []Message
	Tools    []json.RawMessage
}

// Environment is one episode's environment. Reset is called once, then Step after every policy
// turn until a Result has Done. Close is always called, also after an error. Methods must honour
// ctx (its deadline is the rollout's tool-time limit); an error ends only this trajectory.
type Environment interface {
	Reset(ctx context.Context, ex task.Example) (Start, error)
	Step(ctx context.Context, turn Turn) (Result, error)
	Close() error
}

// Factory makes the environment of one trajectory (i is its index in the batch).
type Factory func(i int) (Environment, error)
