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

	"github.com/polo-rl/polo/model"
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
		cmd := exec.Command("go", "build", "-o", poloBin, "../cmd/polo")
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


var (
	_ = errors.New
	_ = http.StatusOK
)
