package env

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
)

// agentCase is one model family of the token-exactness test.
type agentCase struct {
	name, format, end string
	// call writes the text of one tool call in the family's format ("" expression = malformed).
	call func(expr string) string
	// delta is the text the template must append after a turn that ends with the end-of-turn
	// token, for tool results contents (written by hand from the template, not by polo).
	delta func(contents []string) string
	// multi is whether the format allows several calls in one turn.
	multi bool
	// process runs examples/env/arith_env.py; otherwise the built-in ToolEnv with Calculator.
	process bool
}

var agentCases = []agentCase{
	{
		name: "qwen3", format: FormatQwen3, end: "<|im_end|>", multi: true, process: true,
		call: func(e string) string {
			if e == "" {
				return "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": }\n</tool_call>"
			}
			return "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"" + e + "\"}}\n</tool_call>"
		},
		delta: func(cs []string) string {
			s := "\n<|im_start|>user"
			for _, c := range cs {
				s += "\n<tool_response>\n" + c + "\n</tool_response>"
			}
			return s + "<|im_end|>\n<|im_start|>assistant\n"
		},
	},
	{
		name: "llama3", format: FormatLlama3, end: "<|eot_id|>",
		call: func(e string) string {
			if e == "" {
				return `{"name": "calculator", "parameters": {"expression": }`
			}
			return `{"name": "calculator", "parameters": {"expression": "` + e + `"}}`
		},
		delta: func(cs []string) string {
			s := ""
			for _, c := range cs {
				s += "<|start_header_id|>ipython<|end_header_id|>\n\n" + c + "<|eot_id|>"
			}
			return s + "<|start_header_id|>assistant<|end_header_id|>\n\n"
		},
	},
}

// agentScript is what the scripted policy does for one example: tool turns (the expressions
// called in each; "" is a malformed call), then the answer — or, with truncate, it never stops.
type agentScript struct {
	a, b     int
	turns    [][]string
	truncate bool
}

var agentScripts = []agentScript{
	{a: 12, b: 34, turns: [][]string{{"12*34"}, {"408+0"}}},
	{a: 7, b: 8},
	{a: 21, b: 2, turns: [][]string{{""}}},
	{a: 5, b: 5, truncate: true},
	{a: 99, b: 11, turns: [][]string{{"99*11", "9*11"}}}, // two calls in one turn (qwen3 only)
}

// spell writes text one character per token: a valid but non-canonical tokenization, so any
// re-tokenization of the policy's text would change the ids.
func spell(tok *tokenizer.HF, s string) []int32 {
	var ids []int32
	for _, special := range regexp.MustCompile(`(<[a-z_|/]+>)|[^<]+|<`).FindAllString(s, -1) {
		if id, ok := tok.TokenID(special); ok && strings.HasPrefix(special, "<") && len(special) > 1 {
			ids = append(ids, id)
			continue
		}
		for _, r := range special {
			ids = append(ids, tok.Encode(string(r))...)
		}
	}
	return ids
}

// TestMultiTurnTokenExact samples multi-turn tool-using trajectories with the Qwen3 and Llama 3
// tokenizers and chat templates (a random-weight model over the real vocabulary; a scripted bias
// forces the tool calls, other tokens are sampled freely) and proves, turn by turn, that the
// trajectory is the prompt, then each turn's sampled ids exactly as the sampler returned them,
// then the template's rendering of the environment's answer — and that the mask covers exactly
// the sampled ids.
func TestMultiTurnTokenExact(t *testing.T) {
	for _, ac := range agentCases {
		t.Run(ac.name, func(t *testing.T) {
			tok, err := tokenizer.Load(filepath.Join("..", "testdata", "tokenizers", ac.name))
			if err != nil {
				t.Fatal(err)
			}
			endID, _ := tok.TokenID(ac.end)
			scripts := agentScripts
			if !ac.multi {
				scripts = scripts[:4]
			}
			var exs []task.Example
			for i, s := range scripts {
				exs = append(exs, task.Example{ID: fmt.Sprint(i), Prompt: fmt.Sprintf("Q%d: What is %d*%d?", i, s.a, s.b), Answer: fmt.Sprint(s.a * s.b)})
			}
			var banned []int32 // special and added tokens never appear among the free tokens
			for id := int32(tok.VocabSize()) - 1; id >= 0; id-- {
				if s := tok.Token(id); s == "" || strings.HasPrefix(s, "<|") || strings.HasPrefix(s, "<tool") || strings.HasPrefix(s, "</tool") || strings.HasPrefix(s, "<think") || strings.HasPrefix(s, "</think") {
					banned = append(banned, id)
				}
			}
			// plan: which example and how many observations the context holds decide the turn.
			plan := func(ctx []int32) []int32 {
				text := tok.Decode(ctx, false)
				i := int(regexp.MustCompile(`Q(\d+):`).FindStringSubmatch(text)[1][0] - '0')
				s := scripts[i]
				if s.truncate {
					return nil
				}
				k := strings.Count(text, "<tool_response>") + strings.Count(text, "ipython<|end_header_id|>")
				if ac.multi && k > 0 { // several results of one turn share a user block
					k = strings.Count(text, "<|im_start|>user\n<tool_response>")
				}
				p := []int32{}
				if ac.multi {
					p = append(p, free, free)
				}
				if k < len(s.turns) {
					var calls []string
					for _, e := range s.turns[k] {
						calls = append(calls, ac.call(e))
					}
					if ac.multi {
						p = append(p, spell(tok, "Let me use the calculator.\n")...)
					}
					p = append(p, spell(tok, strings.Join(calls, "\n"))...)
				} else {
					if !ac.multi {
						p = append(p, free, free)
					}
					p = append(p, spell(tok, fmt.Sprintf(" The answer is %d.", s.a*s.b))...)
				}
				return append(p, endID)
			}
			cfg := model.Config{ModelType: "qwen3", VocabSize: tok.VocabSize(), HiddenSize: 16, NumLayers: 1, NumHeads: 2,
				NumKVHeads: 1, HeadDim: 8, IntermediateSize: 32, RMSNormEps: 1e-6, RopeTheta: 1e4, TieWordEmbeddings: true,
				MaxPositionEmbeddings: 2048, BOS: -1, Pad: -1}
			m, err := model.New(cfg, 5)
			if err != nil {
				t.Fatal(err)
			}
			const maxTokens = 1024
			inner, err := m.NewDecoder(len(exs), maxTokens)
			if err != nil {
				t.Fatal(err)
			}
			dec := &forcedDecoder{inner: inner, vocab: tok.VocabSize(), banned: banned, plan: plan}
			tmpl, err := NewHFTemplate(tok, ac.format, nil)
			if err != nil {
				t.Fatal(err)
			}
			var envs Factory
			if ac.process {
				envs = ProcessConfig{Command: []string{"python3", filepath.Join("..", "examples", "env", "arith_env.py")}}.Factory()
			} else {
				last := regexp.MustCompile(`-?\d+`)
				te := &ToolEnv{Tools: []Tool{Calculator{}}, ToolRole: "ipython", Score: func(ans string, ex task.Example) (float64, bool) {
					n := last.FindAllString(ans, -1)
					ok := len(n) > 0 && n[len(n)-1] == ex.Answer
					if ok {
						return 1, true
					}
					return 0, false
				}}
				envs = te.Factory()
			}
			sampled := make([][]rollout.Completion, len(exs))
			r := &Runner{
				Decoder: dec, Template: tmpl, Envs: envs,
				Sampling: rollout.Config{Temperature: 1, TopP: 1, MaxNewTokens: 200},
				Limits:   Limits{MaxTurns: 6, MaxTokens: maxTokens, StepTimeout: 20 * time.Second},
				OnTurn: func(rows []int, comps []rollout.Completion) {
					for k, i := range rows {
						sampled[i] = append(sampled[i], comps[k])
					}
				},
			}
			trajs, err := r.Run(exs, 11)
			if err != nil {
				t.Fatal(err)
			}
			var toolsJSON []json.RawMessage
			if ac.process {
				toolsJSON = []json.RawMessage{json.RawMessage(`{"type": "function", "function": {"name": "calculator", "description": "Exact integer arithmetic.", "parameters": {"type": "object", "required": ["expression"], "properties": {"expression": {"type": "string"}}}}}`)}
			} else {
				toolsJSON = []json.RawMessage{Calculator{}.Schema()}
			}
			nonCanonical := 0
			for i, tr := range trajs {
				s := scripts[i]
				// The prompt: the template's rendering of the first message with the tools.
				promptText, err := tok.ApplyChatTemplate([]tokenizer.Message{{Role: "user", Content: exs[i].Prompt}},
					tokenizer.ChatOptions{AddGenerationPrompt: true, Tools: toolsJSON})
				if err != nil {
					t.Fatal(err)
				}
				pos := tr.PromptLen
				if want := tok.Encode(promptText); !slices.Equal(tr.IDs[:pos], want) {
					t.Fatalf("%d: prompt ids differ from the template's rendering", i)
				}
				wantTurns := len(s.turns) + 1
				if s.truncate {
					wantTurns = 1
				}
				if tr.Turns != wantTurns || len(sampled[i]) != wantTurns {
					t.Fatalf("%d: %d turns, %d sampled, want %d (finish %s %s)", i, tr.Turns, len(sampled[i]), wantTurns, tr.Finish, tr.Reason)
				}
				modelTokens := 0
				for k, c := range sampled[i] {
					// The policy's turn: the sampler's ids, verbatim, masked in, with their log-probs.
					got := tr.IDs[pos:min(pos+len(c.Tokens), len(tr.IDs))]
					if !slices.Equal(got, c.Tokens) {
						t.Fatalf("%d turn %d: trajectory ids %v, sampled %v", i, k+1, got, c.Tokens)
					}
					for j := range c.Tokens {
						if !tr.Mask[pos+j] || tr.LogProbs[pos+j] != c.LogProbs[j] {
							t.Fatalf("%d turn %d token %d: mask %v logp %v, want true %v", i, k+1, j, tr.Mask[pos+j], tr.LogProbs[pos+j], c.LogProbs[j])
						}
					}
					if re := tok.Encode(tok.Decode(c.Tokens, false)); !slices.Equal(re, c.Tokens) {
						nonCanonical++
					}
					pos += len(c.Tokens)
					modelTokens += len(c.Tokens)
					if k == len(s.turns) || s.truncate {
						break
					}
					// The environment's answer: exactly the template's text after a turn.
					var contents []string
					for _, e := range s.turns[k] {
						if e == "" {
							_, perr := ParseToolCalls(ac.format, tmpl.Text(c.Tokens))
							contents = append(contents, "error: "+perr.Error())
							continue
						}
						v, err := Calculate(e)
						if err != nil {
							t.Fatal(err)
						}
						contents = append(contents, FormatRat(v))
					}
					want := tok.Encode(ac.delta(contents))
					got = tr.IDs[pos:min(pos+len(want), len(tr.IDs))]
					if !slices.Equal(got, want) {
						t.Fatalf("%d after turn %d: environment ids\n%q\nwant\n%q", i, k+1, tok.Decode(got, false), ac.delta(contents))
					}
					for j := range want {
						if tr.Mask[pos+j] || tr.LogProbs[pos+j] != 0 {
							t.Fatalf("%d: environment token %d is masked in", i, pos+j)
						}
					}
					pos += len(want)
				}
				if pos != len(tr.IDs) || len(tr.Mask) != len(tr.IDs) || len(tr.LogProbs) != len(tr.IDs) {
					t.Fatalf("%d: %d ids accounted for, trajectory has %d (mask %d, logp %d)", i, pos, len(tr.IDs), len(tr.Mask), len(tr.LogProbs))
				}
				masked := 0
				for _, b := range tr.Mask {
					if b {
						masked++
					}
				}
				if masked != modelTokens {
					t.Errorf("%d: mask covers %d ids, the policy sampled %d", i, masked, modelTokens)
				}
				// Outcome.
				wantCalls := 0
				for _, turn := range s.turns {
					wantCalls += len(turn)
				}
				switch {
				case s.truncate:
					if tr.Finish != FinishTruncated || tr.Reward != 0 || tr.ToolCalls != 0 {
						t.Errorf("%d: finish %s reward %v calls %d, want truncated, 0, 0", i, tr.Finish, tr.Reward, tr.ToolCalls)
					}
				default:
					wantFirst := -1
					if len(s.turns) > 0 {
						wantFirst = len(sampled[i][0].Tokens)
					}
					if tr.Finish != FinishDone || tr.Reward != 1 || !tr.Correct || tr.ToolCalls != wantCalls || tr.FirstCall != wantFirst {
						t.Errorf("%d: finish %s (%s) reward %v correct %v calls %d first call %d, want done, 1, true, %d, %d",
							i, tr.Finish, tr.Reason, tr.Reward, tr.Correct, tr.ToolCalls, tr.FirstCall, wantCalls, wantFirst)
					}
				}
			}
			// The model saw exactly the trained prefix at every turn: each prefilled context is a
			// trajectory's ids up to the start of one of its turns.
			prefilled := 0
			for _, batch := range dec.prefills {
				for _, ctx := range batch {
					found := false
					for _, tr := range trajs {
						if len(ctx) <= len(tr.IDs) && slices.Equal(ctx, tr.IDs[:len(ctx)]) {
							start := len(ctx)
							found = start < len(tr.IDs) && tr.Mask[start] && !tr.Mask[start-1]
							break
						}
					}
					if !found {
						t.Errorf("a prefilled context of %d ids is not a trajectory prefix ending before a policy turn", len(ctx))
					}
					prefilled++
				}
			}
			totalTurns := 0
			for _, tr := range trajs {
				totalTurns += tr.Turns
			}
			if prefilled != totalTurns {
				t.Errorf("%d contexts prefilled, %d turns", prefilled, totalTurns)
			}
			// The test has teeth: the spelled-out turns are not what BPE would give for their text.
			if nonCanonical < len(exs)-1 {
				t.Errorf("only %d turns are non-canonical tokenizations", nonCanonical)
			}
			st := Stats(trajs)
			t.Logf("%s: %d trajectories, %d turns, stats %v", ac.name, len(trajs), totalTurns, st)
		})
	}
}
