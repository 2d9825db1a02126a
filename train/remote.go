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
	"slices"
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
	// Async is the staleness bound s of asynchronous RL: the samples of steps k+1..k+s are drawn
	// on the servers while step k trains, so a step may train on samples up to s steps old
	// (0 = synchronous: every step samples from the current policy). Engine remote only.
	Async int `yaml:"async"`
}

// check validates the rollout block.
func (c RolloutConfig) check() error {
	switch c.Engine {
	case "local":
		if c.Async != 0 {
			return fmt.Errorf("config field rollout.async: %d needs rollout.engine remote (the local sampler shares the trainer's model)", c.Async)
		}
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
	case c.Async < 0:
		return fmt.Errorf("config field rollout.async: want >= 0 (0 = synchronous)")
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
	ahead   map[int]*future // async: sampling in flight for future steps
	current int             // the policy version when the current step's rollout was collected
}

// future is one step's sampling running in the background (asynchronous RL).
type future struct {
	prompts [][]int32
	version int // the policy version the servers held for all of it
	done    chan struct{}
	comps   []rollout.Completion
	err     error
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
	return &remoteEngine{cfg: cfg, dir: abs, client: &http.Client{}, version: -1, ahead: map[int]*future{}}, nil
}

// rolloutSample draws the responses of a training step: locally, or on the remote servers after
// making sure they hold the current policy (version = optimizer updates so far). It returns the
// policy version the responses were sampled with: the current one, or with rollout.async an older
// one (at most async steps older).
func (r *runner) rolloutSample(purpose string, step int, prompts [][]int32, scfg rollout.Config, seed uint64, version int) ([]rollout.Completion, int, error) {
	if r.cfg.Rollout.Engine != "remote" {
		comps, err := r.sample(prompts, scfg, seed)
		return comps, version, err
	}
	if scfg.TokenTemperature != nil {
		return nil, 0, fmt.Errorf("rollout.engine remote: the objective samples with per-token temperatures, which remote servers do not support; use rollout.engine: local")
	}
	if r.cfg.Rollout.Async > 0 && purpose == "rollout" {
		comps, v, err := r.asyncSample(step, prompts, scfg, seed, version)
		r.remote.current = version
		return comps, v, err
	}
	if err := r.publish(version); err != nil {
		return nil, 0, err
	}
	r.remote.current = version
	comps, err := r.remote.sample(prompts, scfg, seed)
	return comps, version, err
}

// asyncSample returns step's samples, drawn in the background since an earlier step when they
// were launched then, and launches steps step+1..step+async with the current weights. Before the
// servers get new weights every sampling in flight is awaited, so each step's samples come from
// exactly one recorded policy version.
func (r *runner) asyncSample(step int, prompts [][]int32, scfg rollout.Config, seed uint64, version int) ([]rollout.Completion, int, error) {
	if r.remote == nil {
		if err := r.publish(version); err != nil {
			return nil, 0, err
		}
	}
	e := r.remote
	for _, f := range e.ahead { // let in-flight sampling finish on the weights it started with
		<-f.done
	}
	if err := r.publish(version); err != nil {
		return nil, 0, err
	}
	launch := func(k int, p [][]int32, seed uint64) {
		f := &future{prompts: p, version: version, done: make(chan struct{})}
		e.ahead[k] = f
		go func() {
			defer close(f.done)
			f.comps, f.err = e.sample(p, scfg, seed)
		}()
	}
	if e.ahead[step] == nil { // the first step, or after a resume
		launch(step, prompts, seed)
	}
	for k := step + 1; k <= step+r.cfg.Rollout.Async && k <= r.cfg.RL.Steps; k++ {
		if e.ahead[k] != nil {
			continue
		}
		p, err := r.stepPrompts("rollout", k)
		if err != nil {
			return nil, 0, err
		}
		launch(k, p, seedFor(r.cfg.Seed, "rollout-sample", k))
	}
	f := e.ahead[step]
	<-f.done
	delete(e.ahead, step)
	if f.err != nil {
		return nil, 0, f.err
	}
	if len(f.prompts) != len(prompts) {
		return nil, 0, fmt.Errorf("async rollout: step %d was launched with %d prompts, the step has %d", step, len(f.prompts), len(prompts))
	}
	for i := range prompts {
		if !slices.Equal(f.prompts[i], prompts[i]) {
			return nil, 0, fmt.Errorf("async rollout: step %d's prompts changed after its sampling was launched", step)
		}
	}
	return f.comps, f.version, nil
}

// stepPrompts are the prompt ids collect samples for a step: prompts_per_step prompts drawn for
// (purpose, step), each repeated group_size times.
func (r *runner) stepPrompts(purpose string, step int) ([][]int32, error) {
	exs, err := r.prompts.draw(purpose, step, r.cfg.Sampling.PromptsPerStep)
	if err != nil {
		return nil, err
	}
	var out [][]int32
	for _, ex := range exs {
		p, err := r.codec.prompt(ex)
		if err != nil {
			return nil, err
		}
		for range r.cfg.Sampling.GroupSize {
			out = append(out, p)
		}
	}
	return out, nil
}

// versionStats logs, with the remote engine, the policy version (optimizer updates) the step
// started from and how many updates older its samples were (0 when synchronous).
func (r *runner) versionStats(b *rolloutBatch, vals map[string]float64) {
	if r.remote == nil || len(b.version) == 0 {
		return
	}
	now := r.remote.current
	vals["policy_version"] = float64(now)
	var sum, most float64
	for _, v := range b.version {
		st := float64(now - v)
		sum += st
		most = max(most, st)
	}
	vals["staleness_mean"], vals["staleness_max"] = sum/float64(len(b.version)), most
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
	if err := writeFolderAtomic(e.dir, name, r.saveMerged); err != nil {
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
		for j < len(prompts) && slices.Equal(prompts[j], prompts[i]) {
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
