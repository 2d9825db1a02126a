package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/polo-rl/polo/task"
)

// ToolEnv is the built-in tool-use environment: the example's prompt is the user's message, every
// policy turn with tool calls gets one tool message per call, and the first turn without a call is
// the final answer, scored by Score.
type ToolEnv struct {
	Tools []Tool
	// ToolRole is the role of tool results: "tool" (Qwen3; the default) or "ipython" (Llama 3.1).
	ToolRole string
	// System, when set, is a system message before the prompt.
	System string
	// Score rates the final answer (the last turn's text): reward and correctness.
	Score func(answer string, ex task.Example) (float64, bool)
	// MaxCallsPerTurn caps the calls executed in one turn (extra calls get an error message);
	// 0 means 8.
	MaxCallsPerTurn int
}

// Factory returns a Factory of independent episodes sharing the tools.
func (e *ToolEnv) Factory() Factory {
	return func(int) (Environment, error) {
		if e.Score == nil {
			return nil, errors.New("tool env: no Score function")
		}
		return &toolEpisode{cfg: e}, nil
	}
}

// Schemas returns the tools' definitions for the chat template.
func (e *ToolEnv) Schemas() []json.RawMessage {
	out := make([]json.RawMessage, len(e.Tools))
	for i, t := range e.Tools {
		out[i] = t.Schema()
	}
	return out
}

type toolEpisode struct {
	cfg *ToolEnv
	ex  task.Example
}

func (t *toolEpisode) Reset(_ context.Context, ex task.Example) (Start, error) {
	t.ex = ex
	var msgs []Message
	if t.cfg.System != "" {
		msgs = append(msgs, Message{Role: "system", Content: t.cfg.System})
	}
	if len(ex.Messages) > 0 {
		for _, m := range ex.Messages {
			msgs = append(msgs, Message{Role: m.Role, Content: m.Content})
		}
	} else {
		msgs = append(msgs, Message{Role: "user", Content: ex.Prompt})
	}
	return Start{Messages: msgs, Tools: t.cfg.Schemas()}, nil
}

func (t *toolEpisode) Step(ctx context.Context, turn Turn) (Result, error) {
	role := t.cfg.ToolRole
	if role == "" {
		role = "tool"
	}
	if len(turn.Calls) == 0 && turn.ParseError == "" {
		r, ok := t.cfg.Score(turn.Text, t.ex)
		return Result{Done: true, Reward: r, Correct: ok}, nil
	}
	limit := t.cfg.MaxCallsPerTurn
	if limit <= 0 {
		limit = 8
	}
	var res Result
	for i, c := range turn.Calls {
		res.ToolCalls++
		out, err := t.call(ctx, c, i >= limit, limit)
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, fmt.Errorf("tool %s: %w", c.Name, ctx.Err())
			}
			res.ToolErrors++
			out = "error: " + err.Error()
		}
		res.Messages = append(res.Messages, Message{Role: role, Content: out})
	}
	if turn.ParseError != "" {
		res.ToolCalls++
		res.ToolErrors++
		res.Messages = append(res.Messages, Message{Role: role, Content: "error: " + turn.ParseError})
	}
	return res, nil
}

func (t *toolEpisode) call(ctx context.Context, c ToolCall, over bool, limit int) (string, error) {
	if over {
		return "", fmt.Errorf("more than %d calls in one turn", limit)
	}
	for _, tool := range t.cfg.Tools {
		if tool.Name() == c.Name {
			return tool.Call(ctx, c.Arguments)
		}
	}
	names := make([]string, len(t.cfg.Tools))
	for i, tool := range t.cfg.Tools {
		names[i] = tool.Name()
	}
	return "", fmt.Errorf("no tool %q (tools: %s)", c.Name, strings.Join(names, ", "))
}

func (t *toolEpisode) Close() error { return nil }
