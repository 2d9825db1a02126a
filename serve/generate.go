package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
)

// maxTopLogprobs is OpenAI's bound on logprobs / top_logprobs.
const maxTopLogprobs = 20

// gen is one parsed generation request: its prompts, n samples of each, and how to sample.
type gen struct {
	prompts [][]int32
	n       int
	cfg     rollout.Config
	seed    uint64
	stops   []string
	top     int  // top log-probs per token
	lp      bool // logprobs requested
	idToks  bool // return_tokens_as_token_ids
	ids     bool // return_token_ids
	stream  bool
	usage   bool    // stream_options.include_usage
	eng     *engine // the served model (base or adapter) to sample from
	model   string  // its name, as answered
}

// sampling validates the shared parameters; promptMax is the longest prompt.
func (s *Server) sampling(p *samplingParams, g *gen, chat bool) *apiError {
	eng, ok := s.b.engine(p.Model)
	if !ok {
		return withCode(&apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("The model `%s` does not exist; this server serves `%s` and the LoRA adapters /v1/models lists.", p.Model, s.cfg.Name)}, "model_not_found")
	}
	g.eng, g.model = eng, eng.name
	g.n = 1
	if p.N != nil {
		g.n = *p.N
	}
	if g.n < 1 || g.n*len(g.prompts) > s.cfg.MaxN {
		return badRequest("n", "n = %d for %d prompt(s): want 1 <= n and n × prompts <= %d", g.n, len(g.prompts), s.cfg.MaxN)
	}
	c := rollout.Config{Temperature: 1, TopP: 1}
	if p.Temperature != nil {
		c.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		if *p.TopP <= 0 || *p.TopP > 1 {
			return badRequest("top_p", "top_p = %v, want 0 < top_p <= 1", *p.TopP)
		}
		c.TopP = *p.TopP
	}
	if p.TopK != nil {
		c.TopK = *p.TopK
	}
	if p.MinP != nil {
		c.MinP = *p.MinP
	}
	longest := 0
	for _, pr := range g.prompts {
		longest = max(longest, len(pr))
	}
	ctx := s.maxContext
	maxNew := p.MaxTokens
	if chat && p.MaxCompletionTokens != nil {
		maxNew = p.MaxCompletionTokens
	}
	if maxNew != nil {
		c.MaxNewTokens = *maxNew
		if c.MaxNewTokens < 1 {
			return badRequest("max_tokens", "max_tokens = %d, want >= 1", c.MaxNewTokens)
		}
	} else if ctx > 0 {
		c.MaxNewTokens = max(1, min(s.cfg.MaxTokens, ctx-longest))
	} else {
		c.MaxNewTokens = s.cfg.MaxTokens
	}
	if ctx > 0 && longest+c.MaxNewTokens > ctx {
		return withCode(badRequest("max_tokens", "This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the prompt, %d for the completion). Please reduce the prompt or max_tokens.",
			ctx, longest+c.MaxNewTokens, longest, c.MaxNewTokens), "context_length_exceeded")
	}
	if !p.IgnoreEOS {
		c.StopTokens = slices.Clone(s.tok.StopTokens())
	}
	for _, id := range p.StopTokenIDs {
		if id < 0 || int(id) >= s.vocab {
			return badRequest("stop_token_ids", "stop token id %d is outside the vocabulary [0, %d)", id, s.vocab)
		}
		c.StopTokens = append(c.StopTokens, id)
	}
	if err := c.Validate(); err != nil {
		field := strings.SplitN(strings.TrimPrefix(err.Error(), "rollout: "), " ", 2)[0]
		return badRequest(field, "%s", strings.TrimPrefix(err.Error(), "rollout: "))
	}
	g.cfg = c
	if len(p.Stop) > 0 && string(p.Stop) != "null" {
		var one string
		if json.Unmarshal(p.Stop, &one) == nil {
			g.stops = []string{one}
		} else if err := json.Unmarshal(p.Stop, &g.stops); err != nil {
			return badRequest("stop", "stop: want a string or an array of strings, got %s", p.Stop)
		}
		if len(g.stops) > 16 {
			return badRequest("stop", "%d stop strings, want at most 16", len(g.stops))
		}
		for _, st := range g.stops {
			if st == "" {
				return badRequest("stop", "stop strings must not be empty")
			}
		}
	}
	if p.Seed != nil {
		g.seed = uint64(*p.Seed)
	} else {
		g.seed = s.nextSeed()
	}
	g.idToks, g.ids, g.stream = p.ReturnTokensAsTokenIDs, p.ReturnTokenIDs, p.Stream
	g.usage = p.StreamOptions != nil && p.StreamOptions.IncludeUsage
	return nil
}

// parsePrompt reads a completions prompt: a string, an array of strings, an array of token ids
// or an array of arrays of token ids.
func (s *Server) parsePrompt(raw json.RawMessage) ([][]int32, *apiError) {
	var texts []string
	var one string
	var ids []int32
	var idss [][]int32
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, badRequest("prompt", "need a prompt: a string, an array of strings, or token ids")
	// (a failed Unmarshal may leave a partly filled slice: each case starts from nil)
	case json.Unmarshal(raw, &one) == nil:
		texts = []string{one}
	case json.Unmarshal(raw, &texts) == nil:
	case json.Unmarshal(raw, &ids) == nil:
		texts, idss = nil, [][]int32{ids}
	case json.Unmarshal(raw, &idss) == nil:
		texts = nil
	default:
		return nil, badRequest("prompt", "prompt: want a string, an array of strings, an array of token ids or an array of those, got %.80s", raw)
	}
	for i, t := range texts {
		if c, ok := s.tok.Tokenizer().(*tokenizer.Char); ok {
			if bad := c.Unknown(t); len(bad) > 0 {
				return nil, badRequest("prompt", "prompt %d has characters the model's tokenizer does not know: %q", i, string(bad))
			}
		}
		p, err := s.tok.Prompt(task.Example{Prompt: t})
		if err != nil {
			return nil, badRequest("prompt", "%v", err)
		}
		idss = append(idss, p)
	}
	if len(idss) == 0 {
		return nil, badRequest("prompt", "prompt is an empty array")
	}
	for i, p := range idss {
		if len(p) == 0 {
			return nil, badRequest("prompt", "prompt %d has no tokens", i)
		}
		for _, id := range p {
			if id < 0 || int(id) >= s.vocab {
				return nil, badRequest("prompt", "token id %d in prompt %d is outside the vocabulary [0, %d)", id, i, s.vocab)
			}
		}
	}
	return idss, nil
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := decodeBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	var g gen
	var e *apiError
	if g.prompts, e = s.parsePrompt(req.Prompt); e == nil {
		e = s.sampling(&req.samplingParams, &g, false)
	}
	if e == nil && req.Echo {
		e = badRequest("echo", "echo is not supported")
	}
	if e == nil && req.Suffix != nil && *req.Suffix != "" {
		e = badRequest("suffix", "suffix is not supported")
	}
	if e == nil && req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > maxTopLogprobs {
			e = badRequest("logprobs", "logprobs = %d, want 0..%d", *req.Logprobs, maxTopLogprobs)
		}
		g.lp, g.top = true, *req.Logprobs
	}
	if e != nil {
		writeError(w, e)
		return
	}
	s.generate(w, r, &g, false)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := decodeBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	hf, ok := s.tok.Tokenizer().(*tokenizer.HF)
	if !ok || !hf.HasChatTemplate() {
		writeError(w, badRequest("messages", "this model's tokenizer has no chat template; use /v1/completions"))
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, badRequest("messages", "messages is empty; send at least one message"))
		return
	}
	for i := range req.Messages {
		flattenContent(&req.Messages[i])
	}
	opts := tokenizer.ChatOptions{AddGenerationPrompt: req.AddGenerationPrompt == nil || *req.AddGenerationPrompt,
		Tools: req.Tools, Vars: req.ChatTemplateKwargs}
	text, err := hf.ApplyChatTemplate(req.Messages, opts)
	if err != nil {
		writeError(w, badRequest("messages", "chat template: %v", err))
		return
	}
	g := gen{prompts: [][]int32{hf.Encode(text)}}
	e := s.sampling(&req.samplingParams, &g, true)
	if e == nil && len(g.prompts[0]) == 0 {
		e = badRequest("messages", "the rendered conversation has no tokens")
	}
	if e == nil && req.TopLogprobs != nil {
		if *req.TopLogprobs < 0 || *req.TopLogprobs > maxTopLogprobs {
			e = badRequest("top_logprobs", "top_logprobs = %d, want 0..%d", *req.TopLogprobs, maxTopLogprobs)
		} else if !req.Logprobs {
			e = badRequest("top_logprobs", "top_logprobs needs logprobs: true")
		}
		g.top = *req.TopLogprobs
	}
	if e != nil {
		writeError(w, e)
		return
	}
	g.lp = req.Logprobs
	s.generate(w, r, &g, true)
}

// flattenContent turns OpenAI content parts [{"type": "text", "text": …}] into plain content.
func flattenContent(m *tokenizer.Message) {
	raw, ok := m.Extra["content"]
	if !ok {
		return
	}
	var parts []struct{ Type, Text string }
	if json.Unmarshal(raw, &parts) != nil {
		return
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return
		}
		b.WriteString(p.Text)
	}
	m.Content = b.String()
	delete(m.Extra, "content")
}

// event is one sampled token of one row, for streaming.
type event struct {
	row   int
	token int32
	lp    float32
	top   []rollout.TopToken
	cut   int // >= 0: the row's text ends here (a stop string starts at this byte)
}

// state is what the batching goroutine records for one request while it samples.
type state struct {
	g    *gen
	s    *Server
	tops [][][]rollout.TopToken // per row, per token (when logprobs are asked for)
	cut  []int                  // per row: byte where a stop string starts, -1 if none

	mu     sync.Mutex
	events []event
	notify chan struct{}
}

func (st *state) step(row int, c *rollout.Completion, top []rollout.TopToken) bool {
	var topCopy []rollout.TopToken
	if st.g.lp {
		topCopy = slices.Clone(top)
		st.tops[row] = append(st.tops[row], topCopy)
	}
	end := false
	if len(st.g.stops) > 0 {
		text := st.s.tok.Text(c.Tokens)
		best := -1
		for _, stop := range st.g.stops {
			if k := strings.Index(text, stop); k >= 0 && (best < 0 || k < best) {
				best = k
			}
		}
		if best >= 0 {
			st.cut[row], end = best, true
		}
	}
	if st.g.stream {
		n := len(c.Tokens) - 1
		st.mu.Lock()
		st.events = append(st.events, event{row: row, token: c.Tokens[n], lp: c.ModelLogProbs[n], top: topCopy, cut: st.cut[row]})
		st.mu.Unlock()
		select {
		case st.notify <- struct{}{}:
		default:
		}
	}
	return end
}

// generate queues the request's rows and answers, streaming or not.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, g *gen, chat bool) {
	rows := make([]rollout.Row, 0, len(g.prompts)*g.n)
	for _, p := range g.prompts {
		for range g.n {
			rows = append(rows, rollout.Row{Prompt: p, Config: g.cfg, Seed: g.seed, Stream: uint64(len(rows)), TopLogProbs: g.top})
		}
	}
	st := &state{g: g, s: s, tops: make([][][]rollout.TopToken, len(rows)), cut: make([]int, len(rows)), notify: make(chan struct{}, 1)}
	for i := range st.cut {
		st.cut[i] = -1
	}
	j := &job{ctx: r.Context(), eng: g.eng, rows: rows, step: st.step, done: make(chan jobResult, 1)}
	if e := s.submit(j); e != nil {
		writeError(w, e)
		return
	}
	id := fmt.Sprintf("%s-%x", map[bool]string{false: "cmpl", true: "chatcmpl"}[chat], s.ids.Add(1))
	if g.stream {
		s.stream(w, r, st, j, id, chat)
		return
	}
	res := <-j.done
	if res.err != nil {
		writeError(w, sampleError(res.err))
		return
	}
	u := s.usage(g, res.comps)
	if chat {
		resp := chatResponse{ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: g.model, Usage: &u}
		if g.ids {
			resp.PromptTokens = g.prompts[0]
		}
		for i, c := range res.comps {
			text := st.text(i, c.Tokens)
			fin := c.Finish
			ch := chatChoice{Index: i, Message: &chatMessage{Role: "assistant", Content: &text}, FinishReason: &fin}
			if g.lp {
				ch.Logprobs = s.chatLogprobs(g, c.Tokens, c.ModelLogProbs, st.tops[i])
			}
			if g.ids {
				ch.TokenIDs = c.Tokens
			}
			resp.Choices = append(resp.Choices, ch)
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	resp := completionResponse{ID: id, Object: "text_completion", Created: time.Now().Unix(), Model: g.model, Usage: &u}
	for i, c := range res.comps {
		fin := c.Finish
		ch := completionChoice{Index: i, Text: st.text(i, c.Tokens), FinishReason: &fin}
		if g.lp {
			ch.Logprobs = s.completionLogprobs(g, c.Tokens, c.ModelLogProbs, st.tops[i], 0)
		}
		if g.ids {
			ch.TokenIDs, ch.PromptIDs = c.Tokens, g.prompts[i/g.n]
		}
		resp.Choices = append(resp.Choices, ch)
	}
	writeJSON(w, http.StatusOK, resp)
}

// text is the response text of row i: stop tokens and special tokens dropped, cut before a
// matched stop string.
func (st *state) text(i int, tokens []int32) string {
	t := st.s.tok.Text(tokens)
	if k := st.cut[i]; k >= 0 && k <= len(t) {
		t = t[:k]
	}
	return t
}

func (s *Server) usage(g *gen, comps []rollout.Completion) usage {
	var u usage
	for _, p := range g.prompts {
		u.PromptTokens += len(p)
	}
	for _, c := range comps {
		u.CompletionTokens += len(c.Tokens)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// tokenText is a token as the logprobs objects name it: its text, or vLLM's "token_id:ID" with
// return_tokens_as_token_ids.
func (s *Server) tokenText(g *gen, id int32) (string, []int) {
	if g.idToks {
		t := fmt.Sprintf("token_id:%d", id)
		return t, bytesOf([]byte(t))
	}
	var raw []byte
	if hf, ok := s.tok.Tokenizer().(*tokenizer.HF); ok {
		raw = hf.DecodeBytes([]int32{id}, false)
	} else {
		raw = []byte(s.tok.Tokenizer().Decode([]int32{id}, false))
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD"), bytesOf(raw)
}

func bytesOf(b []byte) []int {
	out := make([]int, len(b))
	for i, x := range b {
		out[i] = int(x)
	}
	return out
}

func (s *Server) chatLogprobs(g *gen, tokens []int32, lps []float32, tops [][]rollout.TopToken) *chatLogprobs {
	out := &chatLogprobs{Content: make([]chatTokenLogprob, len(tokens))}
	for t, id := range tokens {
		tok, b := s.tokenText(g, id)
		e := chatTokenLogprob{Token: tok, Logprob: lps[t], Bytes: b, TopLogprobs: []chatTop{}}
		if t < len(tops) {
			for _, tt := range tops[t] {
				ts, tb := s.tokenText(g, tt.Token)
				e.TopLogprobs = append(e.TopLogprobs, chatTop{Token: ts, Logprob: tt.LogProb, Bytes: tb})
			}
		}
		out.Content[t] = e
	}
	return out
}

// completionLogprobs is the legacy logprobs object; offset is the text offset of the first token.
func (s *Server) completionLogprobs(g *gen, tokens []int32, lps []float32, tops [][]rollout.TopToken, offset int) *completionLogprobs {
	out := &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float32{}, TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
	for t, id := range tokens {
		tok, _ := s.tokenText(g, id)
		out.Tokens = append(out.Tokens, tok)
		out.TokenLogprobs = append(out.TokenLogprobs, lps[t])
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(tok)
		m := map[string]float32{tok: lps[t]}
		if t < len(tops) {
			for _, tt := range tops[t] {
				ts, _ := s.tokenText(g, tt.Token)
				m[ts] = tt.LogProb
			}
		}
		out.TopLogprobs = append(out.TopLogprobs, m)
	}
	return out
}

// stream answers with server-sent events: one chunk per sampled token (text deltas held back
// while they might be the start of a stop string or of a UTF-8 character), a last chunk per
// choice with its finish reason, the usage chunk when asked for, and [DONE].
func (s *Server) stream(w http.ResponseWriter, r *http.Request, st *state, j *job, id string, chat bool) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	g := st.g
	created := time.Now().Unix()
	nrows := len(j.rows)
	tokens := make([][]int32, nrows)
	sent := make([]int, nrows)   // bytes of text sent per row
	offset := make([]int, nrows) // text offset of the next token's logprobs entry
	hold := 0
	for _, stop := range g.stops {
		hold = max(hold, len(stop)-1)
	}
	var buf bytes.Buffer
	send := func(v any) {
		buf.Reset()
		buf.WriteString("data: ")
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		buf.WriteString("\n")
		_, _ = w.Write(buf.Bytes())
	}
	chunk := func(row int, text string, toks []int32, lps []float32, tops [][]rollout.TopToken, finish *string, first bool) any {
		if chat {
			d := &chatMessage{Content: &text}
			if first {
				d.Role = "assistant"
			}
			ch := chatChoice{Index: row, Delta: d, FinishReason: finish}
			if g.lp && len(toks) > 0 {
				ch.Logprobs = s.chatLogprobs(g, toks, lps, tops)
			}
			if g.ids {
				ch.TokenIDs = toks
			}
			return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: g.model, Choices: []chatChoice{ch}}
		}
		ch := completionChoice{Index: row, Text: text, FinishReason: finish}
		if g.lp && len(toks) > 0 {
			ch.Logprobs = s.completionLogprobs(g, toks, lps, tops, offset[row])
		}
		if g.ids {
			ch.TokenIDs = toks
		}
		return completionResponse{ID: id, Object: "text_completion", Created: created, Model: g.model, Choices: []completionChoice{ch}}
	}
	if chat {
		for row := range nrows {
			send(chunk(row, "", nil, nil, nil, nil, true))
		}
	}
	flush := func() {
		st.mu.Lock()
		evs := st.events
		st.events = nil
		st.mu.Unlock()
		for _, ev := range evs {
			tokens[ev.row] = append(tokens[ev.row], ev.token)
			text := st.s.tok.Text(tokens[ev.row])
			limit := len(text)
			if ev.cut >= 0 {
				limit = min(ev.cut, limit)
			} else {
				limit = max(limit-hold, 0)
				for limit > 0 && limit < len(text) && !utf8.RuneStart(text[limit]) {
					limit--
				}
				if strings.HasSuffix(text[:limit], "\uFFFD") {
					limit -= len("\uFFFD")
				}
			}
			delta := ""
			if limit > sent[ev.row] {
				delta = text[sent[ev.row]:limit]
				sent[ev.row] = limit
			}
			var tops [][]rollout.TopToken
			if g.lp {
				tops = [][]rollout.TopToken{ev.top}
			}
			send(chunk(ev.row, delta, []int32{ev.token}, []float32{ev.lp}, tops, nil, false))
			if g.lp {
				tok, _ := s.tokenText(g, ev.token)
				offset[ev.row] += len(tok)
			}
		}
		if fl != nil && len(evs) > 0 {
			fl.Flush()
		}
	}
	var res jobResult
	for done := false; !done; {
		select {
		case <-st.notify:
			flush()
		case res = <-j.done:
			done = true
		case <-r.Context().Done():
			return // the batcher sees the cancelled context and frees the rows
		}
	}
	flush()
	if res.err != nil {
		e := sampleError(res.err)
		send(map[string]any{"error": e})
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
		return
	}
	for row, c := range res.comps {
		text := st.text(row, c.Tokens)
		rest := ""
		if len(text) > sent[row] {
			rest = text[sent[row]:]
		}
		fin := c.Finish
		send(chunk(row, rest, nil, nil, nil, &fin, false))
	}
	if g.usage {
		u := s.usage(g, res.comps)
		if chat {
			send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: g.model, Choices: []chatChoice{}, Usage: &u})
		} else {
			send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: g.model, Choices: []completionChoice{}, Usage: &u})
		}
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	if fl != nil {
		fl.Flush()
	}
}
