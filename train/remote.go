package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/rollout"
)

// RolloutConfig picks where RL samples come from: the in-process KV-cache sampler, or a fleet of
// OpenAI-compatible servers (polo serve, vLLM, SGLang) that the trainer keeps in sync.
type RolloutConfig struct {
	Engine  string   `yaml:"engine"`  // local | remote
	Servers []string `yaml:"servers"` // base URLs of the servers (engine remote), e.g. http://10.0.0.5:8000
	Model   string   `yaml:"model"`   // model name sent with each request ("" = none: the server's only model)
	// PublishDir is where the policy's weights are written after each update, as
	// v<version>/{config.json, model.safetensors}; every server must read it at the same path
	// (a shared file system). "" = RUN_DIR/published.
	PublishDir string `yaml:"publish_dir"`
	// ReloadPath is the endpoint that loads a weights folder: SGLang's and polo serve's
	// /update_weights_from_disk, which take {"model_path": DIR}.
	ReloadPath string  `yaml:"reload_path"`
	Timeout    float64 `yaml:"timeout"` // seconds per HTTP request (sampling or reload)
	Retries    int     `yaml:"retries"` // further attempts of a failed sampling request, each on the next server
}

// check validates the rollout block.
func (c RolloutConfig) check() error {
	switch c.Engine {
	case "local":
		return nil
	case "remote":
	default:
		return fmt.Errorf("config field rollout.engine: want local or remote, got %q", c.Engine)
	}
	if len(c.Servers) == 0 {
		return fmt.Errorf("config field rollout.servers: engine remote needs at least one server URL")
	}
	for _, s := range c.Servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config field rollout.servers: %q is not an http(s) URL like http://host:8000", s)
		}
	}
	switch {
	case !(c.Timeout > 0):
		return fmt.Errorf("config field rollout.timeout: want > 0 seconds")
	case c.Retries < 0:
		return fmt.Errorf("config field rollout.retries: want >= 0")
	case !strings.HasPrefix(c.ReloadPath, "/"):
		return fmt.Errorf("config field rollout.reload_path: want a path such as /update_weights_from_disk")
	}
	return nil
}

// remoteEngine samples on OpenAI-compatible servers and publishes weights to them.
type remoteEngine struct {
	cfg     RolloutConfig
	dir     string // publish folder
	client  *http.Client
	version int // policy version the servers hold; -1 = none yet
	last    string
}

func newRemoteEngine(cfg RolloutConfig, runDir string) (*remoteEngine, error) {
	dir := cfg.PublishDir
	if dir == "" {
		dir = filepath.Join(runDir, "published")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &remoteEngine{cfg: cfg, dir: abs, client: &http.Client{}, version: -1}, nil
}

// rolloutSample draws the responses of a training step: locally, or on the remote servers after
// making sure they hold the current policy (version = optimizer updates so far).
func (r *runner) rolloutSample(prompts [][]int32, scfg rollout.Config, seed uint64, version int) ([]rollout.Completion, error) {
	if r.cfg.Rollout.Engine != "remote" {
		return r.sample(prompts, scfg, seed)
	}
	if err := r.publish(version); err != nil {
		return nil, err
	}
	if scfg.TokenTemperature != nil {
		return nil, fmt.Errorf("rollout.engine remote: the objective samples with per-token temperatures, which remote servers do not support; use rollout.engine: local")
	}
	return r.remote.sample(prompts, scfg, seed)
}

// publish writes the policy for the servers and makes each reload it, unless they already hold
// this version. A server that does not confirm the reload stops the run: sampling with stale
// weights would silently train off-policy.
func (r *runner) publish(version int) error {
	if r.remote == nil {
		e, err := newRemoteEngine(r.cfg.Rollout, r.dir)
		if err != nil {
			return err
		}
		r.remote = e
	}
	e := r.remote
	if e.version == version {
		return nil
	}
	name := fmt.Sprintf("v%06d", version)
	if err := writeFolderAtomic(e.dir, name, func(tmp string) error { return r.policy.Save(tmp) }); err != nil {
		return fmt.Errorf("publish weights: %w", err)
	}
	path := filepath.Join(e.dir, name)
	errs := make([]error, len(e.cfg.Servers))
	var wg sync.WaitGroup
	for i, s := range e.cfg.Servers {
		wg.Go(func() { errs[i] = e.reload(s, path) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("weight sync of policy version %d: %w; stopping rather than sampling with stale weights", version, err)
	}
	if e.last != "" && e.last != path {
		os.RemoveAll(e.last)
	}
	e.version, e.last = version, path
	return nil
}

// reload asks one server to load the weights folder and checks that it says it did.
func (e *remoteEngine) reload(server, path string) error {
	body, _ := json.Marshal(map[string]any{"model_path": path})
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout())
	defer cancel()
	status, resp, err := e.post(ctx, server+e.cfg.ReloadPath, body)
	if err != nil {
		return fmt.Errorf("server %s did not reload %s: %w", server, path, err)
	}
	var ans struct {
		Success *bool  `json:"success"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(resp, &ans)
	if status != http.StatusOK || ans.Success == nil || !*ans.Success {
		msg := ans.Message
		if msg == "" {
			msg = strings.TrimSpace(string(resp))
		}
		return fmt.Errorf("server %s did not reload %s: status %d: %.300s", server, path, status, msg)
	}
	return nil
}

func (e *remoteEngine) timeout() time.Duration {
	return time.Duration(e.cfg.Timeout * float64(time.Second))
}

func (e *remoteEngine) post(ctx context.Context, u string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, data, err
}

// sample sends each run of identical prompts (a group) as one /v1/completions request with n =
// group size, the prompt as token ids, and the seed derived from (seed, group). Groups go to the
// servers round-robin, all at once (the servers batch them); a failed request is retried on the
// next server.
func (e *remoteEngine) sample(prompts [][]int32, scfg rollout.Config, seed uint64) ([]rollout.Completion, error) {
	type group struct{ start, n int }
	var groups []group
	for i := 0; i < len(prompts); {
		j := i + 1
		for j < len(prompts) && sameIDs(prompts[j], prompts[i]) {
			j++
		}
		groups = append(groups, group{i, j - i})
		i = j
	}
	out := make([]rollout.Completion, len(prompts))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for k, g := range groups {
		wg.Go(func() {
			comps, err := e.request(k, prompts[g.start], g.n, scfg, int64(seedFor(int64(seed), "remote-group", k)>>1))
			if err != nil {
				errs[k] = fmt.Errorf("remote sampling of prompt group %d: %w", k, err)
				return
			}
			copy(out[g.start:g.start+g.n], comps)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func sameIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// request runs one group, trying the servers from k mod len(servers) on.
func (e *remoteEngine) request(k int, prompt []int32, n int, c rollout.Config, seed int64) ([]rollout.Completion, error) {
	topK := c.TopK
	if topK == 0 {
		topK = -1 // vLLM's "off"
	}
	req := map[string]any{"prompt": prompt, "n": n, "temperature": c.Temperature, "top_p": c.TopP, "top_k": topK,
		"min_p": c.MinP, "max_tokens": c.MaxNewTokens, "seed": seed, "stop_token_ids": c.StopTokens, "logprobs": 0,
		"return_tokens_as_token_ids": true, "return_token_ids": true, "skip_special_tokens": false}
	if c.TopP == 0 {
		req["top_p"] = 1.0
	}
	if e.cfg.Model != "" {
		req["model"] = e.cfg.Model
	}
	body, _ := json.Marshal(req)
	servers := e.cfg.Servers
	var last error
	for a := 0; a <= e.cfg.Retries; a++ {
		if a > 0 {
			time.Sleep(time.Duration(a) * 200 * time.Millisecond)
		}
		s := servers[(k+a)%len(servers)]
		ctx, cancel := context.WithTimeout(context.Background(), e.timeout())
		status, resp, err := e.post(ctx, s+"/v1/completions", body)
		cancel()
		switch {
		case err != nil:
			last = fmt.Errorf("server %s: %w", s, err)
			continue
		case status == http.StatusTooManyRequests || status >= 500:
			last = fmt.Errorf("server %s: status %d: %.300s", s, status, resp)
			continue
		case status != http.StatusOK:
			return nil, fmt.Errorf("server %s refused the request: status %d: %.300s", s, status, resp)
		}
		comps, err := parseCompletions(resp, n, c.MaxNewTokens)
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", s, err)
		}
		return comps, nil
	}
	return nil, fmt.Errorf("%d attempt(s) failed, the last: %w", e.cfg.Retries+1, last)
}

// parseCompletions reads the n choices of a completions answer: token ids from vLLM's token_ids
// field or from logprobs tokens named "token_id:ID" (return_tokens_as_token_ids), and the model
// log-probs of the sampled tokens.
func parseCompletions(data []byte, n, maxNew int) ([]rollout.Completion, error) {
	var ans struct {
		Choices []struct {
			Index        int     `json:"index"`
			FinishReason string  `json:"finish_reason"`
			TokenIDs     []int32 `json:"token_ids"`
			Logprobs     *struct {
				Tokens        []string  `json:"tokens"`
				TokenLogprobs []float32 `json:"token_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, fmt.Errorf("answer is not a completions response: %v", err)
	}
	if len(ans.Choices) != n {
		return nil, fmt.Errorf("answer has %d choices, asked for %d", len(ans.Choices), n)
	}
	out := make([]rollout.Completion, n)
	seen := make([]bool, n)
	for _, ch := range ans.Choices {
		if ch.Index < 0 || ch.Index >= n || seen[ch.Index] {
			return nil, fmt.Errorf("answer has a bad or repeated choice index %d", ch.Index)
		}
		seen[ch.Index] = true
		ids := ch.TokenIDs
		if ids == nil && ch.Logprobs != nil {
			for _, t := range ch.Logprobs.Tokens {
				id, err := strconv.Atoi(strings.TrimPrefix(t, "token_id:"))
				if err != nil || !strings.HasPrefix(t, "token_id:") {
					return nil, fmt.Errorf("choice %d: token %q is not token_id:ID; the server ignores return_tokens_as_token_ids", ch.Index, t)
				}
				ids = append(ids, int32(id))
			}
		}
		if len(ids) == 0 || len(ids) > maxNew {
			return nil, fmt.Errorf("choice %d has %d tokens, want 1..%d (max_tokens)", ch.Index, len(ids), maxNew)
		}
		c := rollout.Completion{Tokens: ids, Finish: ch.FinishReason}
		if c.Finish != rollout.FinishStop && c.Finish != rollout.FinishLength {
			return nil, fmt.Errorf("choice %d: finish_reason %q, want stop or length", ch.Index, c.Finish)
		}
		if ch.Logprobs != nil && len(ch.Logprobs.TokenLogprobs) == len(ids) {
			c.ModelLogProbs = ch.Logprobs.TokenLogprobs
		}
		out[ch.Index] = c
	}
	return out, nil
}

// syncFinal publishes the policy after the last update, so the servers end holding what the run
// saved.
func (r *runner) syncFinal(version int) error {
	if r.cfg.Rollout.Engine != "remote" {
		return nil
	}
	return r.publish(version)
}

// setRolloutLogP gives the objective the sampler's log-probs of every response token (the input
// rollout_logp of the off-policy correction and the mismatch metrics), when every row has them:
// the local sampler's model log-probs, or those a remote server returned.
func setRolloutLogP(ob *objective.Batch, b *rolloutBatch, width int) {
	if len(b.rollout) != b.rows() {
		return
	}
	m := make([][]float64, b.rows())
	for i, lp := range b.rollout {
		if len(lp) != len(b.resps[i]) {
			return
		}
		m[i] = make([]float64, width)
		for j, v := range lp {
			m[i][j] = float64(v)
		}
	}
	if ob.Extra == nil {
		ob.Extra = map[string]any{}
	}
	ob.Extra[objective.InRolloutLogP] = m
}
