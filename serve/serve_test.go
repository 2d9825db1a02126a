package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/polo-rl/polo/metrics"
	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
	"github.com/polo-rl/polo/train"
)

// The tests drive real `polo serve` processes built once in TestMain.
var (
	poloBin string
	charDir string // char-tokenizer checkpoint (seed 1)
	char2   string // same architecture, other weights (seed 2), for reload
	hfDir   string // Qwen3 tokenizer with a chat template on a tiny random model
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "polo-serve-test-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(tmp)
		poloBin = filepath.Join(tmp, "polo")
		args := []string{"build", "-o", poloBin}
		if os.Getenv("POLO_SERVE_RACE") != "" { // the server binary under the race detector (needs cgo)
			args = append(args, "-race", "-gcflags=all=-d=checkptr=0") // checkptr trips in third_party/compute's matmul
		}
		cmd := exec.Command("go", append(args, "../cmd/polo")...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build polo:", err)
			return 1
		}
		charDir, char2, hfDir = filepath.Join(tmp, "char"), filepath.Join(tmp, "char2"), filepath.Join(tmp, "hf")
		for _, f := range []func() error{
			func() error { return charCheckpoint(charDir, 1) },
			func() error { return charCheckpoint(char2, 2) },
			func() error { return hfCheckpoint(hfDir) },
		} {
			if err := f(); err != nil {
				fmt.Fprintln(os.Stderr, "make test checkpoint:", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

const alphabet = "0123456789+="

// charCheckpoint writes a random tiny model with the character tokenizer of the demo.
func charCheckpoint(dir string, seed int64) error {
	tok, err := tokenizer.NewChar(alphabet)
	if err != nil {
		return err
	}
	cfg, err := model.Preset("tiny", tok.VocabSize())
	if err != nil {
		return err
	}
	m, err := model.New(cfg, seed)
	if err != nil {
		return err
	}
	if err := m.Save(dir); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "polo_tokenizer.json"), []byte(`{"kind":"char","alphabet":"`+alphabet+`"}`), 0o644)
}

// hfCheckpoint writes a random model (d=16) over the Qwen3 tokenizer and chat template.
func hfCheckpoint(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizers", "qwen3", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			return err
		}
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return err
	}
	cfg, err := model.Preset("tiny", tok.VocabSize())
	if err != nil {
		return err
	}
	cfg.HiddenSize, cfg.NumHeads, cfg.NumKVHeads, cfg.IntermediateSize = 16, 2, 1, 32
	m, err := model.New(cfg, 3)
	if err != nil {
		return err
	}
	return m.Save(dir)
}

// server is a running `polo serve`.
type server struct {
	url    string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
	exited chan error
}

var listening = regexp.MustCompile(`on http://(\S+)`)

// startServer runs polo serve on a free loopback port and waits until it listens.
func startServer(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--model", dir, "--port", "0", "--served-model-name", "m"}, extra...)
	cmd := exec.Command(poloBin, args...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { s.exited <- cmd.Wait(); pw.Close() }()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-s.exited:
		t.Fatalf("polo serve exited before listening: %v\n%s", err, s.log())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("polo serve did not start in 60 s\n%s", s.log())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		if strings.Contains(s.log(), "DATA RACE") { // POLO_SERVE_RACE=1
			t.Errorf("the server reported a data race:\n%s", s.log())
		}
	})
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

func (s *server) client() openai.Client {
	return openai.NewClient(option.WithBaseURL(s.url+"/v1"), option.WithAPIKey("none"), option.WithMaxRetries(0))
}

// extra reads a non-OpenAI field (vLLM's token_ids) from a response part.
func extraIDs(t *testing.T, raw string, key string) []int32 {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	var ids []int32
	if err := json.Unmarshal(m[key], &ids); err != nil {
		t.Fatalf("field %s of %s: %v", key, raw, err)
	}
	return ids
}

// forwardLogProbs is what the trainer computes: log p(token | prefix) of every completion token
// from one full forward pass.
func forwardLogProbs(t *testing.T, m *model.Model, prompt, completion []int32) []float32 {
	t.Helper()
	ids := append(slices.Clone(prompt), completion...)
	mask := make([]int32, len(ids))
	for i := range mask {
		mask[i] = 1
	}
	lp, _, err := m.LogProbs([][]int32{ids}, [][]int32{mask})
	if err != nil {
		t.Fatal(err)
	}
	return lp[0][len(prompt)-1:]
}

func closeTo(a []float64, b []float32, tol float64) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Abs(a[i]-float64(b[i])) > tol {
			return i, false
		}
	}
	return 0, true
}

// sampleCLI runs `polo sample` and returns the token ids of each continuation.
func sampleCLI(t *testing.T, dir, prompt string, n int, temp float64, seed, maxNew int) [][]int32 {
	t.Helper()
	out, err := exec.Command(poloBin, "sample", "--model", dir, "--prompt", prompt, "--n", fmt.Sprint(n),
		"--temperature", fmt.Sprint(temp), "--seed", fmt.Sprint(seed), "--max-new-tokens", fmt.Sprint(maxNew)).Output()
	if err != nil {
		t.Fatalf("polo sample: %v", err)
	}
	var res [][]int32
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var line struct{ Tokens []int32 }
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		res = append(res, line.Tokens)
	}
	return res
}

// TestCompletionsMatchModel: greedy and seeded completions return the token ids `polo sample`
// draws, and log-probs equal to the model's own forward pass (the trainer's log-probs); the top
// list holds the sampled token at temperature 0; usage counts tokens.
func TestCompletionsMatchModel(t *testing.T) {
	s := startServer(t, charDir)
	c := s.client()
	pol, err := train.LoadPolicy(charDir)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := pol.Prompt(task.Example{Prompt: "12+34="})
	for _, tc := range []struct {
		temp float64
		n    int
		seed int
	}{{0, 1, 1}, {0.8, 3, 5}} {
		t.Run(fmt.Sprintf("T=%v", tc.temp), func(t *testing.T) {
			resp, err := c.Completions.New(context.Background(), openai.CompletionNewParams{
				Model:       openai.CompletionNewParamsModel("m"),
				Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String("12+34=")},
				MaxTokens:   openai.Int(10),
				Temperature: openai.Float(tc.temp),
				N:           openai.Int(int64(tc.n)),
				Seed:        openai.Int(int64(tc.seed)),
				Logprobs:    openai.Int(2),
			}, option.WithJSONSet("return_token_ids", true), option.WithJSONSet("top_k", 0))
			if err != nil {
				t.Fatal(err)
			}
			want := sampleCLI(t, charDir, "12+34=", tc.n, tc.temp, tc.seed, 10)
			if len(resp.Choices) != tc.n {
				t.Fatalf("%d choices, want %d", len(resp.Choices), tc.n)
			}
			total := 0
			for i, ch := range resp.Choices {
				ids := extraIDs(t, ch.RawJSON(), "token_ids")
				if !slices.Equal(ids, want[i]) {
					t.Errorf("choice %d token ids %v, polo sample drew %v", i, ids, want[i])
				}
				fwd := forwardLogProbs(t, pol.Model, prompt, ids)
				if k, ok := closeTo(ch.Logprobs.TokenLogprobs, fwd, 1e-4); !ok {
					t.Errorf("choice %d log-probs %v differ from the forward pass %v (at %d)", i, ch.Logprobs.TokenLogprobs, fwd, k)
				}
				if ch.Text != pol.Text(ids) {
					t.Errorf("choice %d text %q, want %q", i, ch.Text, pol.Text(ids))
				}
				if tc.temp == 0 {
					for k, top := range ch.Logprobs.TopLogprobs {
						best := math.Inf(-1)
						for _, v := range top {
							best = max(best, v)
						}
						if best != ch.Logprobs.TokenLogprobs[k] || len(top) != 2 {
							t.Errorf("greedy token %d: top %v, sampled log-prob %v", k, top, ch.Logprobs.TokenLogprobs[k])
						}
					}
				}
				total += len(ids)
			}
			if resp.Usage.PromptTokens != int64(len(prompt)) || resp.Usage.CompletionTokens != int64(total) {
				t.Errorf("usage %+v, want prompt %d completion %d", resp.Usage, len(prompt), total)
			}
		})
	}
	// vLLM's return_tokens_as_token_ids names tokens "token_id:ID".
	resp, err := c.Completions.New(context.Background(), openai.CompletionNewParams{
		Model: "m", Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: []int64{int64(prompt[0]), int64(prompt[1])}},
		MaxTokens: openai.Int(3), Temperature: openai.Float(0), Logprobs: openai.Int(0),
	}, option.WithJSONSet("return_tokens_as_token_ids", true), option.WithJSONSet("return_token_ids", true))
	if err != nil {
		t.Fatal(err)
	}
	ids := extraIDs(t, resp.Choices[0].RawJSON(), "token_ids")
	for k, tok := range resp.Choices[0].Logprobs.Tokens {
		if tok != fmt.Sprintf("token_id:%d", ids[k]) {
			t.Errorf("token %d named %q, want token_id:%d", k, tok, ids[k])
		}
	}
}

// TestChatAndStreaming: a chat request is rendered with the checkpoint's chat template (the
// prompt ids are the template's), n > 1 choices come back with log-probs equal to the forward pass,
// and the streamed answer (text deltas and token ids) equals the non-streamed one for the same seed.
func TestChatAndStreaming(t *testing.T) {
	s := startServer(t, hfDir)
	c := s.client()
	pol, err := train.LoadPolicy(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	hf := pol.Tokenizer().(*tokenizer.HF)
	text, err := hf.ApplyChatTemplate([]tokenizer.Message{{Role: "user", Content: "What is 2+2?"}}, tokenizer.ChatOptions{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	prompt := hf.Encode(text)
	params := openai.ChatCompletionNewParams{
		Model:       "m",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is 2+2?")},
		MaxTokens:   openai.Int(6),
		Temperature: openai.Float(0.7),
		N:           openai.Int(2),
		Seed:        openai.Int(11),
		Logprobs:    openai.Bool(true),
		TopLogprobs: openai.Int(3),
	}
	ids := option.WithJSONSet("return_token_ids", true)
	resp, err := c.Chat.Completions.New(context.Background(), params, ids)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.PromptTokens != int64(len(prompt)) || len(resp.Choices) != 2 {
		t.Fatalf("usage %+v, %d choices; want %d prompt tokens (the chat template's) and 2 choices", resp.Usage, len(resp.Choices), len(prompt))
	}
	if got := extraIDs(t, resp.RawJSON(), "prompt_token_ids"); !slices.Equal(got, prompt) {
		t.Errorf("prompt ids %v, want the chat template's %v", got, prompt)
	}
	toks := make([][]int32, 2)
	for i, ch := range resp.Choices {
		toks[i] = extraIDs(t, ch.RawJSON(), "token_ids")
		fwd := forwardLogProbs(t, pol.Model, prompt, toks[i])
		lps := make([]float64, len(ch.Logprobs.Content))
		for k, e := range ch.Logprobs.Content {
			lps[k] = e.Logprob
			if len(e.TopLogprobs) != 3 || e.TopLogprobs[0].Logprob < e.TopLogprobs[2].Logprob {
				t.Errorf("choice %d token %d: top list %+v, want 3 sorted entries", i, k, e.TopLogprobs)
			}
		}
		if k, ok := closeTo(lps, fwd, 1e-4); !ok {
			t.Errorf("choice %d log-probs %v differ from the forward pass %v (at %d)", i, lps, fwd, k)
		}
		if ch.Message.Content != pol.Text(toks[i]) {
			t.Errorf("choice %d content %q, want %q", i, ch.Message.Content, pol.Text(toks[i]))
		}
	}
	if slices.Equal(toks[0], toks[1]) {
		t.Errorf("both choices drew %v; n = 2 samples should differ at temperature 0.7", toks[0])
	}

	// Streaming, same request: the deltas add up to the same texts and token ids.
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	st := c.Chat.Completions.NewStreaming(context.Background(), params, ids)
	texts := make([]string, 2)
	sids := make([][]int32, 2)
	finish := make([]string, 2)
	var usage int64
	for st.Next() {
		ch := st.Current()
		if ch.Usage.TotalTokens > 0 {
			usage = ch.Usage.CompletionTokens
		}
		for _, d := range ch.Choices {
			texts[d.Index] += d.Delta.Content
			if f, ok := d.JSON.ExtraFields["token_ids"]; ok && f.Raw() != "null" {
				var x []int32
				json.Unmarshal([]byte(f.Raw()), &x)
				sids[d.Index] = append(sids[d.Index], x...)
			}
			if d.FinishReason != "" {
				finish[d.Index] = d.FinishReason
			}
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if texts[i] != resp.Choices[i].Message.Content || !slices.Equal(sids[i], toks[i]) || finish[i] != resp.Choices[i].FinishReason {
			t.Errorf("streamed choice %d: %q %v %s; non-streamed %q %v %s", i, texts[i], sids[i], finish[i],
				resp.Choices[i].Message.Content, toks[i], resp.Choices[i].FinishReason)
		}
	}
	if usage != resp.Usage.CompletionTokens {
		t.Errorf("streamed usage %d completion tokens, want %d", usage, resp.Usage.CompletionTokens)
	}
}

// TestCompletionStreamAndStop: a streamed completion with a stop string ends before the stop
// string, and its deltas equal the non-streamed text.
func TestCompletionStreamAndStop(t *testing.T) {
	s := startServer(t, charDir)
	c := s.client()
	base := openai.CompletionNewParams{Model: "m", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("7+")},
		MaxTokens: openai.Int(24), Temperature: openai.Float(1), Seed: openai.Int(3), N: openai.Int(3)}
	full, err := c.Completions.New(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	// stop at the first character of choice 0 that occurs after its first character
	text := full.Choices[0].Text
	if len(text) < 3 {
		t.Fatalf("choice 0 %q is too short to test stop strings", text)
	}
	stop := text[1:2]
	want := make([]string, 3)
	for i, ch := range full.Choices {
		want[i] = ch.Text
		if k := strings.Index(ch.Text, stop); k >= 0 {
			want[i] = ch.Text[:k]
		}
	}
	base.Stop = openai.CompletionNewParamsStopUnion{OfString: openai.String(stop)}
	cut, err := c.Completions.New(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	for i, ch := range cut.Choices {
		if ch.Text != want[i] {
			t.Errorf("choice %d with stop %q: %q, want %q", i, stop, ch.Text, want[i])
		}
	}
	if cut.Choices[0].FinishReason != "stop" {
		t.Errorf("choice 0 finish %q, want stop", cut.Choices[0].FinishReason)
	}
	st := c.Completions.NewStreaming(context.Background(), base)
	got := make([]string, 3)
	chunks := 0
	for st.Next() {
		for _, ch := range st.Current().Choices {
			got[ch.Index] += ch.Text
			chunks++
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || chunks < 4 {
		t.Errorf("streamed %q in %d chunks, want %q", got, chunks, want)
	}
}

// TestBadRequests: invalid requests get 4xx answers in OpenAI's error shape, which the SDK reads.
func TestBadRequests(t *testing.T) {
	s := startServer(t, charDir)
	c := s.client()
	prompt := openai.CompletionNewParamsPromptUnion{OfString: openai.String("1+1=")}
	sdk := []struct {
		name   string
		params openai.CompletionNewParams
		opts   []option.RequestOption
		status int
		param  string
		want   string
	}{
		{"temperature", openai.CompletionNewParams{Model: "m", Prompt: prompt, Temperature: openai.Float(-1)}, nil, 400, "temperature", "temperature"},
		{"n", openai.CompletionNewParams{Model: "m", Prompt: prompt, N: openai.Int(0)}, nil, 400, "n", "n = 0"},
		{"model", openai.CompletionNewParams{Model: "gpt-4", Prompt: prompt}, nil, 404, "", "does not exist"},
		{"logprobs", openai.CompletionNewParams{Model: "m", Prompt: prompt, Logprobs: openai.Int(21)}, nil, 400, "logprobs", "logprobs = 21"},
		{"token", openai.CompletionNewParams{Model: "m", Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: []int64{1, 999}}}, nil, 400, "prompt", "outside the vocabulary"},
		{"context", openai.CompletionNewParams{Model: "m", Prompt: prompt, MaxTokens: openai.Int(5000)}, nil, 400, "max_tokens", "maximum context length is 2048"},
		{"top_p", openai.CompletionNewParams{Model: "m", Prompt: prompt, TopP: openai.Float(2)}, nil, 400, "top_p", "top_p = 2"},
		{"unknown character", openai.CompletionNewParams{Model: "m", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("1+x=")}}, nil, 400, "prompt", `does not know: "x"`},
		{"top_k", openai.CompletionNewParams{Model: "m", Prompt: prompt}, []option.RequestOption{option.WithJSONSet("top_k", -5)}, 400, "top_k", "top_k = -5"},
		{"stop type", openai.CompletionNewParams{Model: "m", Prompt: prompt}, []option.RequestOption{option.WithJSONSet("stop", 3)}, 400, "stop", "stop"},
		{"prompt type", openai.CompletionNewParams{Model: "m", Prompt: prompt}, []option.RequestOption{option.WithJSONSet("prompt", map[string]int{"a": 1})}, 400, "prompt", "prompt"},
	}
	for _, tc := range sdk {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Completions.New(context.Background(), tc.params, tc.opts...)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v, want an API error", err)
			}
			if apiErr.StatusCode != tc.status || apiErr.Param != tc.param || !strings.Contains(apiErr.Message, tc.want) || apiErr.Type == "" {
				t.Errorf("status %d type %q param %q message %q; want %d, param %q, message with %q",
					apiErr.StatusCode, apiErr.Type, apiErr.Param, apiErr.Message, tc.status, tc.param, tc.want)
			}
		})
	}
	// chat on a tokenizer without a chat template, malformed JSON, unknown route
	_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "no chat template") {
		t.Errorf("chat without a template: %v", err)
	}
	for _, raw := range []struct{ path, body string }{{"/v1/completions", `{"prompt": "1+`}, {"/v1/nothing", `{}`}, {"/v1/completions", `{"prompt": "1", "n": "two"}`}} {
		resp, err := http.Post(s.url+raw.path, "application/json", strings.NewReader(raw.body))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct {
				Message, Type string
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode/100 != 4 || body.Error.Message == "" || body.Error.Type == "" {
			t.Errorf("POST %s %s: status %d, body %+v (%v); want 4xx with error.message and error.type", raw.path, raw.body, resp.StatusCode, body, err)
		}
	}
	// the server survived all of it
	if _, err := c.Completions.New(context.Background(), openai.CompletionNewParams{Model: "m", Prompt: prompt, MaxTokens: openai.Int(2)}); err != nil {
		t.Errorf("a good request after the bad ones: %v", err)
	}
}

// TestConcurrent: 200 concurrent greedy requests, batched together, each get the completion of
// their own prompt (equal to a direct decode of that prompt) — none lost, none mixed up.
func TestConcurrent(t *testing.T) {
	s := startServer(t, charDir, "--max-batch", "64")
	c := s.client()
	pol, err := train.LoadPolicy(charDir)
	if err != nil {
		t.Fatal(err)
	}
	const N = 200
	texts := make([]string, N)
	prompts := make([][]int32, N)
	for i := range N {
		texts[i] = fmt.Sprintf("%d+%d=", i/10, i%17)
		prompts[i], _ = pol.Prompt(task.Example{Prompt: texts[i]})
	}
	dec, err := pol.Model.NewDecoder(N, 16)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rollout.Config{Temperature: 0, MaxNewTokens: 6, StopTokens: pol.StopTokens()}
	want, err := rollout.Sample(dec, prompts, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]int32, N)
	errs := make([]error, N)
	var wg sync.WaitGroup
	for i := range N {
		wg.Go(func() {
			resp, err := c.Completions.New(context.Background(), openai.CompletionNewParams{Model: "m",
				Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(texts[i])}, MaxTokens: openai.Int(6), Temperature: openai.Float(0)},
				option.WithJSONSet("return_token_ids", true))
			if err != nil {
				errs[i] = err
				return
			}
			got[i] = extraIDs(t, resp.Choices[0].RawJSON(), "token_ids")
		})
	}
	wg.Wait()
	bad := 0
	for i := range N {
		if errs[i] != nil || !slices.Equal(got[i], want[i].Tokens) {
			bad++
			if bad < 5 {
				t.Errorf("request %d (%q): %v %v, want %v", i, texts[i], got[i], errs[i], want[i].Tokens)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d requests lost or wrong", bad, N)
	}
}

// TestQueueBound: beyond --max-queue sequences waiting, requests are refused at once with 429 in
// OpenAI's shape, the others are answered.
func TestQueueBound(t *testing.T) {
	s := startServer(t, charDir, "--max-batch", "2", "--max-queue", "2")
	const N = 12
	status := make([]int, N)
	types := make([]string, N)
	var wg sync.WaitGroup
	for i := range N {
		wg.Go(func() {
			resp, err := http.Post(s.url+"/v1/completions", "application/json",
				strings.NewReader(`{"prompt": "1+2=", "n": 2, "max_tokens": 64, "temperature": 1, "stop_token_ids": [], "ignore_eos": true}`))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			status[i] = resp.StatusCode
			var body struct{ Error struct{ Type string } }
			json.NewDecoder(resp.Body).Decode(&body)
			types[i] = body.Error.Type
		})
	}
	wg.Wait()
	ok, busy := 0, 0
	for i := range N {
		switch {
		case status[i] == 200:
			ok++
		case status[i] == 429 && types[i] == "rate_limit_exceeded":
			busy++
		default:
			t.Errorf("request %d: status %d type %q", i, status[i], types[i])
		}
	}
	if ok == 0 || busy == 0 {
		t.Errorf("%d answered, %d refused; want both with a queue of 2 and %d requests of 2 sequences", ok, busy, N)
	}
}

// TestReloadWeights: after POST /update_weights_from_disk the server's log-probs are those of the
// new weights (equal to their forward pass); a failed reload answers success=false and keeps
// serving the old weights.
func TestReloadWeights(t *testing.T) {
	s := startServer(t, charDir)
	c := s.client()
	pol2, err := train.LoadPolicy(char2)
	if err != nil {
		t.Fatal(err)
	}
	pol1, err := train.LoadPolicy(charDir)
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := pol1.Prompt(task.Example{Prompt: "5+5="})
	check := func(m *model.Model, label string) {
		t.Helper()
		resp, err := c.Completions.New(context.Background(), openai.CompletionNewParams{Model: "m",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("5+5=")}, MaxTokens: openai.Int(5),
			Temperature: openai.Float(1), Seed: openai.Int(9), Logprobs: openai.Int(0)}, option.WithJSONSet("return_token_ids", true))
		if err != nil {
			t.Fatal(err)
		}
		ids := extraIDs(t, resp.Choices[0].RawJSON(), "token_ids")
		if k, ok := closeTo(resp.Choices[0].Logprobs.TokenLogprobs, forwardLogProbs(t, m, prompt, ids), 1e-4); !ok {
			t.Errorf("%s: log-probs differ from the expected weights' forward pass at %d", label, k)
		}
	}
	post := func(body string) (int, map[string]any) {
		resp, err := http.Post(s.url+"/update_weights_from_disk", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	check(pol1.Model, "before reload")
	code, body := post(fmt.Sprintf(`{"model_path": %q}`, char2))
	if code != 200 || body["success"] != true || body["weight_version"] != "1" {
		t.Fatalf("reload: %d %v", code, body)
	}
	check(pol2.Model, "after reload")
	code, body = post(`{"model_path": "/nonexistent/folder"}`)
	if code != 400 || body["success"] != false || !strings.Contains(fmt.Sprint(body["message"]), "nonexistent") {
		t.Errorf("reload from a missing folder: %d %v; want 400, success false and the folder named", code, body)
	}
	code, body = post(fmt.Sprintf(`{"model_path": %q}`, hfDir))
	if code != 400 || body["success"] != false {
		t.Errorf("reload of another architecture: %d %v; want 400 and success false", code, body)
	}
	check(pol2.Model, "after failed reloads")
}

// TestShutdown: SIGTERM lets a running request finish, then the process exits 0.
func TestShutdown(t *testing.T) {
	s := startServer(t, charDir)
	c := s.client()
	st := c.Completions.NewStreaming(context.Background(), openai.CompletionNewParams{Model: "m",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("1+")}, MaxTokens: openai.Int(200), Temperature: openai.Float(1)},
		option.WithJSONSet("ignore_eos", true))
	if !st.Next() {
		t.Fatalf("no first chunk: %v", st.Err())
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var finish string
	for st.Next() {
		for _, ch := range st.Current().Choices {
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
	}
	if err := st.Err(); err != nil || finish != "length" {
		t.Errorf("the running request after SIGTERM: finish %q, error %v; want it to complete", finish, err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, s.log())
		}
		s.exited <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM\n%s", s.log())
	}
	if !strings.Contains(s.log(), "stopped") {
		t.Errorf("log %q lacks the shutdown line", s.log())
	}
}

// TestTrainRemote: `polo train` with rollout.engine remote samples on two polo serve processes
// (both get requests, both reload the weights at every policy version), and after the run a
// server's log-probs equal the forward pass of the trainer's final checkpoint. A server that
// fails to reload stops the run with an error naming it.
func TestTrainRemote(t *testing.T) {
	tmp := t.TempDir()
	base := []string{"task.options.digits=1", "task.test_size=16", "sft.steps=20", "sft.batch_size=32", "sft.lr=0.003",
		"optim.warmup_steps=2", "model.preset=tiny", "eval.every=0", "log.plots=false", "log.progress=false",
		"sampling.prompts_per_step=4", "sampling.group_size=4", "rl.mini_batches=1", "rl.epochs=1"}
	runWith := func(dir string, extra ...string) error {
		cfg, err := train.LoadConfig("", append(append([]string{"run_dir=" + dir}, base...), extra...))
		if err != nil {
			t.Fatal(err)
		}
		_, err = train.Run(cfg, train.Options{Log: io.Discard})
		return err
	}
	if err := runWith(filepath.Join(tmp, "warm"), "rl.steps=0"); err != nil {
		t.Fatal(err)
	}
	start := filepath.Join(tmp, "warm", "checkpoints", "sft-000020", "model")
	s1, s2 := startServer(t, start), startServer(t, start)
	run := filepath.Join(tmp, "remote")
	if err := runWith(run, "rl.steps=3", "rollout.engine=remote", fmt.Sprintf("rollout.servers=[%s, %s]", s1.url, s2.url)); err != nil {
		t.Fatal(err)
	}
	info := func(s *server) map[string]any {
		resp, err := http.Get(s.url + "/get_model_info")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	for i, s := range []*server{s1, s2} {
		m := info(s)
		// versions 0, 1, 2 before steps 1-3, and 3 after the last update
		if m["weight_version"] != "4" || m["num_requests"].(float64) < 3 {
			t.Errorf("server %d: %v; want 4 reloads and a share of the 12 sampling requests", i, m)
		}
	}
	final, err := model.Load(filepath.Join(run, "checkpoints", "rl-000003", "model"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := train.LoadPolicy(filepath.Join(run, "checkpoints", "rl-000003", "model"))
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := pol.Prompt(task.Example{Prompt: "3+4="})
	c2 := s2.client()
	resp, err := c2.Completions.New(context.Background(), openai.CompletionNewParams{Model: "m",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(prompt)},
		MaxTokens: openai.Int(4), Temperature: openai.Float(1), Seed: openai.Int(1), Logprobs: openai.Int(0)},
		option.WithJSONSet("return_token_ids", true))
	if err != nil {
		t.Fatal(err)
	}
	ids := extraIDs(t, resp.Choices[0].RawJSON(), "token_ids")
	fwd := forwardLogProbs(t, final, prompt, ids)
	if k, ok := closeTo(resp.Choices[0].Logprobs.TokenLogprobs, fwd, 1e-4); !ok {
		t.Errorf("server log-probs %v, trainer's final policy %v (at %d)", resp.Choices[0].Logprobs.TokenLogprobs, fwd, k)
	}
	checkOnPolicy(t, run, 3)

	// A LoRA run publishes its policy merged into the base: still on-policy.
	lora := filepath.Join(tmp, "lora")
	if err := runWith(lora, "rl.steps=2", "rollout.engine=remote", "lora.enabled=true", "lora.r=4", fmt.Sprintf("rollout.servers=[%s]", s1.url)); err != nil {
		t.Fatal(err)
	}
	checkOnPolicy(t, lora, 2)

	// A server that refuses the weights stops the run.
	bad := http.NewServeMux()
	bad.HandleFunc("/update_weights_from_disk", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(400)
		w.Write([]byte(`{"success": false, "message": "disk full"}`))
	})
	hs := &http.Server{Handler: bad}
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	defer hs.Close()
	err = runWith(filepath.Join(tmp, "stale"), "rl.steps=2", "rollout.engine=remote", fmt.Sprintf("rollout.servers=[%s, http://%s]", s1.url, ln.Addr()))
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "stale weights") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("run with a server that fails to reload: %v; want an error naming the server, its message and stale weights", err)
	}
}

// TestTrainRemoteLoRAAdapter: with rollout.lora_sync adapter a LoRA run publishes only its PEFT
// adapter per policy version and has polo serve load it as polo-v<version>: every step is
// on-policy, the server ends serving the latest adapter only, the published folder holds adapter
// files (and, with lora.phase rl, the post-SFT base once), and a server that refuses the adapter
// stops the run with an error naming it.
func TestTrainRemoteLoRAAdapter(t *testing.T) {
	tmp := t.TempDir()
	base := []string{"task.options.digits=1", "task.test_size=16", "sft.steps=20", "sft.batch_size=32", "sft.lr=0.003",
		"optim.warmup_steps=2", "model.preset=tiny", "eval.every=0", "log.plots=false", "log.progress=false",
		"sampling.prompts_per_step=4", "sampling.group_size=4", "rl.mini_batches=1", "rl.epochs=1", "optim.lr=0.01",
		"rollout.engine=remote", "rollout.lora_sync=adapter", "lora.enabled=true", "lora.r=4"}
	runWith := func(dir string, extra ...string) error {
		cfg, err := train.LoadConfig("", append(append([]string{"run_dir=" + dir}, base...), extra...))
		if err != nil {
			t.Fatal(err)
		}
		_, err = train.Run(cfg, train.Options{Log: io.Discard})
		return err
	}
	getJSON := func(u string, v any) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	adapters := func(s *server) []string { // the adapters /v1/models lists (entries with a parent)
		var ans struct {
			Data []struct {
				ID     string  `json:"id"`
				Parent *string `json:"parent"`
			} `json:"data"`
		}
		getJSON(s.url+"/v1/models", &ans)
		var out []string
		for _, m := range ans.Data {
			if m.Parent != nil {
				out = append(out, m.ID)
			}
		}
		return out
	}
	weightVersion := func(s *server) string {
		var m map[string]any
		getJSON(s.url+"/get_model_info", &m)
		return fmt.Sprint(m["weight_version"])
	}
	checkPublished := func(run, latest string, withBase bool) {
		t.Helper()
		pub := filepath.Join(run, "published")
		ents, _ := os.ReadDir(pub)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		want := []string{latest}
		if withBase {
			want = []string{"base", latest}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s holds %v, want %v", pub, names, want)
		}
		for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
			if _, err := os.Stat(filepath.Join(pub, latest, f)); err != nil {
				t.Errorf("published adapter: %v", err)
			}
		}
		if _, err := os.Stat(filepath.Join(pub, latest, "model.safetensors")); err == nil {
			t.Errorf("%s holds model.safetensors: a full checkpoint, not only the adapter", filepath.Join(pub, latest))
		}
		if withBase {
			if _, err := os.Stat(filepath.Join(pub, "base", "model.safetensors")); err != nil {
				t.Errorf("published LoRA base: %v", err)
			}
		}
	}
	if err := runWith(filepath.Join(tmp, "warm"), "rl.steps=0", "lora.enabled=false", "rollout.lora_sync=merged", "rollout.engine=local"); err != nil {
		t.Fatal(err)
	}
	start := filepath.Join(tmp, "warm", "checkpoints", "sft-000020", "model")
	s1, s2 := startServer(t, start), startServer(t, start)

	// lora.phase rl: the base is the policy after this run's SFT (15 steps: not what the servers
	// were started with), published once by a full reload.
	run := filepath.Join(tmp, "rl")
	if err := runWith(run, "rl.steps=3", "sft.steps=15", "lora.phase=rl", fmt.Sprintf("rollout.servers=[%s, %s]", s1.url, s2.url)); err != nil {
		t.Fatal(err)
	}
	checkOnPolicy(t, run, 3)
	for i, s := range []*server{s1, s2} {
		if got := adapters(s); !slices.Equal(got, []string{"polo-v000003"}) {
			t.Errorf("server %d serves adapters %v, want only the final polo-v000003", i, got)
		}
		if v := weightVersion(s); v != "1" {
			t.Errorf("server %d: weight_version %s, want 1 (one full reload: the LoRA base)", i, v)
		}
	}
	checkPublished(run, "v000003", true)
	// The server's answers under the final adapter's name are the trainer's final policy.
	final, err := train.LoadPolicy(filepath.Join(run, "checkpoints", "rl-000003", "model"))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := final.Model.Merged()
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := final.Prompt(task.Example{Prompt: "3+4="})
	c1 := s1.client()
	resp, err := c1.Completions.New(context.Background(), openai.CompletionNewParams{Model: "polo-v000003",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: int64s(prompt)},
		MaxTokens: openai.Int(4), Temperature: openai.Float(1), Seed: openai.Int(1), Logprobs: openai.Int(0)},
		option.WithJSONSet("return_token_ids", true))
	if err != nil {
		t.Fatal(err)
	}
	ids := extraIDs(t, resp.Choices[0].RawJSON(), "token_ids")
	if k, ok := closeTo(resp.Choices[0].Logprobs.TokenLogprobs, forwardLogProbs(t, merged, prompt, ids), 1e-4); !ok {
		t.Errorf("server log-probs under polo-v000003 differ from the trainer's final policy at %d", k)
	}

	// lora.phase all on model.path: the servers hold the base from the start; no full reload.
	s3 := startServer(t, start)
	all := filepath.Join(tmp, "all")
	if err := runWith(all, "rl.steps=2", "sft.steps=0", "lora.phase=all", "model.path="+start, fmt.Sprintf("rollout.servers=[%s]", s3.url)); err != nil {
		t.Fatal(err)
	}
	checkOnPolicy(t, all, 2)
	if got, v := adapters(s3), weightVersion(s3); !slices.Equal(got, []string{"polo-v000002"}) || v != "0" {
		t.Errorf("phase all: server serves adapters %v at weight_version %s, want only polo-v000002 and no reload", got, v)
	}
	checkPublished(all, "v000002", false)

	// Asynchronous sampling keeps the adapter name of the version it was launched with: the run
	// completes, and its first (fresh) step is on-policy.
	async := filepath.Join(tmp, "async")
	if err := runWith(async, "rl.steps=3", "sft.steps=0", "lora.phase=all", "model.path="+start, "rollout.async=1", fmt.Sprintf("rollout.servers=[%s]", s3.url)); err != nil {
		t.Fatal(err)
	}
	if got := adapters(s3); !slices.Equal(got, []string{"polo-v000003"}) {
		t.Errorf("async: server serves adapters %v, want only polo-v000003", got)
	}
	var first map[string]float64
	if rl := rlValues(t, async); len(rl) > 0 {
		first = rl[0]
	}
	if k3, ok := first["mismatch_kl_k3"]; !ok || k3 > 1e-8 {
		t.Errorf("async: first step %v, want mismatch_kl_k3 < 1e-8", first)
	}

	// A server that refuses the adapter stops the run, named with its message.
	bad := http.NewServeMux()
	bad.HandleFunc("/update_weights_from_disk", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"success": true}`))
	})
	bad.HandleFunc("/v1/unload_lora_adapter", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) })
	bad.HandleFunc("/v1/load_lora_adapter", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(400)
		w.Write([]byte(`{"error": {"message": "LoRA is not enabled", "type": "BadRequestError", "code": 400}}`))
	})
	hs := &http.Server{Handler: bad}
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	defer hs.Close()
	err = runWith(filepath.Join(tmp, "stale"), "rl.steps=1", "sft.steps=0", "lora.phase=all", "model.path="+start, fmt.Sprintf("rollout.servers=[%s, http://%s]", s3.url, ln.Addr()))
	if err == nil || !strings.Contains(err.Error(), "LoRA is not enabled") || !strings.Contains(err.Error(), "stale weights") ||
		!strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "polo-v000000") {
		t.Errorf("run with a server that fails to load the adapter: %v; want an error naming the server, the adapter, its message and stale weights", err)
	}
}

// checkOnPolicy: every RL step's samples came from the weights being trained: the servers'
// log-probs of the sampled tokens equal the trainer's π_old up to float noise (stale weights would
// show here).
func checkOnPolicy(t *testing.T, run string, wantSteps int) {
	t.Helper()
	rl := rlValues(t, run)
	for i, v := range rl {
		k3, ok := v["mismatch_kl_k3"]
		lo, hi := v["is_ratio_min"], v["is_ratio_max"]
		t.Logf("rl step %d: mismatch_kl_k3 %.3g, π_old/π_sampler in [%.7f, %.7f]", i+1, k3, lo, hi)
		if !ok || k3 > 1e-8 || lo < 0.999 || hi > 1.001 {
			t.Errorf("rl record %v: want mismatch_kl_k3 < 1e-8 and ratios π_old/π_sampler within 1e-3 of 1", v)
		}
	}
	if len(rl) != wantSteps {
		t.Errorf("metrics.jsonl: %d rl records, want %d", len(rl), wantSteps)
	}
}

// rlValues are the metrics of a run's RL steps, in order.
func rlValues(t *testing.T, run string) []map[string]float64 {
	t.Helper()
	recs, err := metrics.Read(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]float64
	for _, r := range recs {
		if r.Phase == "rl" {
			out = append(out, r.Values)
		}
	}
	return out
}

func int64s(ids []int32) []int64 {
	out := make([]int64, len(ids))
	for i, x := range ids {
		out[i] = int64(x)
	}
	return out
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// TestTrainRemoteAsync: with rollout.async s, step k trains on samples drawn with the policy of
// step k−s (after the first steps), each sample's version is recorded (staleness_max = s updates
// at one update per step), the samples' log-probs differ from the trainer's π_old exactly when
// they are stale, and TIS reweights them.
func TestTrainRemoteAsync(t *testing.T) {
	tmp := t.TempDir()
	base := []string{"task.options.digits=1", "task.test_size=16", "sft.steps=20", "sft.batch_size=32", "sft.lr=0.003",
		"optim.warmup_steps=2", "model.preset=tiny", "eval.every=0", "log.plots=false", "log.progress=false",
		"sampling.prompts_per_step=4", "sampling.group_size=4", "rl.mini_batches=1", "rl.epochs=1", "optim.lr=0.01"}
	runWith := func(dir string, extra ...string) error {
		cfg, err := train.LoadConfig("", append(append([]string{"run_dir=" + dir}, base...), extra...))
		if err != nil {
			t.Fatal(err)
		}
		_, err = train.Run(cfg, train.Options{Log: io.Discard})
		return err
	}
	if err := runWith(filepath.Join(tmp, "warm"), "rl.steps=0"); err != nil {
		t.Fatal(err)
	}
	start := filepath.Join(tmp, "warm", "checkpoints", "sft-000020", "model")
	s1, s2 := startServer(t, start), startServer(t, start)
	for _, s := range []int{1, 2} {
		run := filepath.Join(tmp, fmt.Sprintf("async%d", s))
		if err := runWith(run, "rl.steps=5", "rollout.engine=remote", fmt.Sprintf("rollout.async=%d", s), "algo.set.is=tis",
			fmt.Sprintf("rollout.servers=[%s, %s]", s1.url, s2.url)); err != nil {
			t.Fatal(err)
		}
		rl := rlValues(t, run)
		for i, v := range rl {
			step := i + 1
			want := float64(min(step-1, s)) // step k trains on samples of version k-1-s (from step 1's)
			t.Logf("async %d step %d: version %v staleness %v mismatch_kl_k3 %.3g is_weight_mean %.6f", s, step, v["policy_version"], v["staleness_max"], v["mismatch_kl_k3"], v["is_weight_mean"])
			if v["staleness_max"] != want || v["staleness_mean"] != want || v["policy_version"] != float64(step-1) {
				t.Errorf("async %d step %d: version %v staleness %v/%v, want version %d staleness %v", s, step, v["policy_version"], v["staleness_mean"], v["staleness_max"], step-1, want)
			}
			stale := v["mismatch_kl_k3"] > 1e-6
			if stale != (want > 0) {
				t.Errorf("async %d step %d: mismatch_kl_k3 %v with staleness %v", s, step, v["mismatch_kl_k3"], want)
			}
			if _, ok := v["is_weight_mean"]; !ok {
				t.Errorf("async %d step %d: no is_weight_mean: TIS did not run", s, step)
			}
		}
		if len(rl) != 5 {
			t.Errorf("async %d: %d rl steps logged, want 5", s, len(rl))
		}
	}
}
