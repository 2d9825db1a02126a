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
	// LoRASync is how a LoRA run's policy reaches the servers: merged (the adapter folded into its
	// base, a full checkpoint loaded through reload_path) or adapter (only the PEFT adapter folder,
	// loaded with vLLM's /v1/load_lora_adapter under the name polo-v<version>; the servers hold the
	// adapter's base). Needs lora.enabled.
	LoRASync string `yaml:"lora_sync"`
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
	case c.LoRASync == "adapter" && c.Model != "":
		return fmt.Errorf("config field rollout.model: %q is set, but with rollout.lora_sync adapter each request names the adapter of its policy version (polo-v<version>); leave rollout.model empty", c.Model)
	}
	return nil
}

// checkLoRASync validates rollout.lora_sync against the lora block.
func (c Config) checkLoRASync() error {
	switch c.Rollout.LoRASync {
	case "", "merged":
		return nil
	case "adapter":
	default:
		return fmt.Errorf("config field rollout.lora_sync: want merged or adapter, got %q", c.Rollout.LoRASync)
	}
	if c.Rollout.Engine != "remote" {
		return fmt.Errorf("config field rollout.lora_sync: adapter publishes LoRA adapters to remote servers; it needs rollout.engine remote (got %s)", c.Rollout.Engine)
	}
	if !c.LoRA.Enabled {
		return fmt.Errorf("config field rollout.lora_sync: adapter needs lora.enabled (a run without a LoRA adapter has only full weights to publish); use merged")
	}
	return nil
}

// adapterName is the model name under which the servers serve the LoRA adapter of a policy version
// (rollout.lora_sync adapter).
func adapterName(version int) string { return fmt.Sprintf("polo-v%06d", version) }

// remoteEngine samples on OpenAI-compatible servers and publishes weights to them.
type remoteEngine struct {
	cfg     RolloutConfig
	dir     string // publish folder
	client  *http.Client
	version int    // policy version the servers hold; -1 = none yet
	phase   string // the phase whose trainer counted that version (SFT best-of-n and RL count from 0 each)
	last    string
	adapter string          // lora_sync adapter: the name the servers serve the current version under
	base    bool            // lora_sync adapter: the servers were given the adapter's base (or hold it from the start)
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
	comps, err := r.remote.sample(r.remote.model(), prompts, scfg, seed)
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
	model := e.model()
	launch := func(k int, p [][]int32, seed uint64) {
		f := &future{prompts: p, version: version, done: make(chan struct{})}
		e.ahead[k] = f
		go func() {
			defer close(f.done)
			f.comps, f.err = e.sample(model, p, scfg, seed)
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
	adapter := e.cfg.LoRASync == "adapter" && r.policy.HasAdapter() // before lora.phase rl begins (sft best-of-n) there is none: full weights
	if e.version == version && e.phase == r.state.Phase && (!adapter || e.adapter != "") {
		return nil
	}
	if adapter {
		return r.publishAdapter(version)
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
	e.version, e.phase, e.last = version, r.state.Phase, path
	return nil
}

// publishAdapter is publish with rollout.lora_sync adapter: it writes only the PEFT adapter folder,
// has every server load it as adapterName(version) with /v1/load_lora_adapter, switches sampling
// to that name, and then unloads the previous version's adapter. Before the first adapter the
// servers get the adapter's base through reload_path, unless it is model.path (which they must
// serve from the start): with lora.phase rl (or a run without model.path) the base is the policy
// the run wrote to checkpoints/base/model, which no server can hold beforehand.
func (r *runner) publishAdapter(version int) error {
	e := r.remote
	base, err := filepath.Abs(r.loraBase())
	if err != nil {
		return err
	}
	if !e.base {
		if r.loraBase() != r.cfg.Model.Path {
			if err := writeFolderAtomic(e.dir, "base", func(tmp string) error { return copyFiles(base, tmp) }); err != nil {
				return fmt.Errorf("publish the LoRA base: %w", err)
			}
			path := filepath.Join(e.dir, "base")
			if err := e.all(func(s string) error { return e.reload(s, path) }); err != nil {
				return fmt.Errorf("weight sync of the LoRA base %s: %w; stopping rather than sampling adapters on another base", path, err)
			}
		}
		e.base = true
	}
	dirName := fmt.Sprintf("v%06d", version)
	if err := writeFolderAtomic(e.dir, dirName, func(tmp string) error { return r.policy.SaveAdapter(tmp, base) }); err != nil {
		return fmt.Errorf("publish adapter: %w", err)
	}
	path, name := filepath.Join(e.dir, dirName), adapterName(version)
	if err := e.all(func(s string) error {
		e.unloadAdapter(s, name) // a server may still serve this name from an earlier run or process (a resume); 404 otherwise
		return e.loadAdapter(s, name, path)
	}); err != nil {
		return fmt.Errorf("adapter sync of policy version %d: %w; stopping rather than sampling with stale weights", version, err)
	}
	if old := e.adapter; old != "" && old != name {
		if err := e.all(func(s string) error { return e.unloadAdapter(s, old) }); err != nil {
			fmt.Fprintf(r.opts.Log, "rollout: warning: previous adapter not unloaded (it stays loaded on the server): %v\n", err)
		}
	}
	if e.last != "" && e.last != path {
		os.RemoveAll(e.last)
	}
	e.version, e.phase, e.last, e.adapter = version, r.state.Phase, path, name
	return nil
}

// all runs f on every server in parallel and joins the errors.
func (e *remoteEngine) all(f func(server string) error) error {
	errs := make([]error, len(e.cfg.Servers))
	var wg sync.WaitGroup
	for i, s := range e.cfg.Servers {
		wg.Go(func() { errs[i] = f(s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// model is the model name the sampling requests send: the current adapter's with lora_sync adapter,
// else rollout.model.
func (e *remoteEngine) model() string {
	if e.adapter != "" {
		return e.adapter
	}
	return e.cfg.Model
}

// loadAdapter asks one server to serve the PEFT adapter in path as model name (vLLM's
// /v1/load_lora_adapter: 200 on success, anything else is a failure with the server's message).
func (e *remoteEngine) loadAdapter(server, name, path string) error {
	body, _ := json.Marshal(map[string]any{"lora_name": name, "lora_path": path})
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout())
	defer cancel()
	status, resp, err := e.post(ctx, server+"/v1/load_lora_adapter", body)
	if err != nil {
		return fmt.Errorf("server %s did not load LoRA adapter %s from %s: %w", server, name, path, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("server %s did not load LoRA adapter %s from %s: status %d: %.300s", server, name, path, status, apiMessage(resp))
	}
	return nil
}

// unloadAdapter asks one server to stop serving the adapter name (/v1/unload_lora_adapter).
func (e *remoteEngine) unloadAdapter(server, name string) error {
	body, _ := json.Marshal(map[string]any{"lora_name": name})
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout())
	defer cancel()
	status, resp, err := e.post(ctx, server+"/v1/unload_lora_adapter", body)
	if err != nil {
		return fmt.Errorf("server %s did not unload LoRA adapter %s: %w", server, name, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("server %s did not unload LoRA adapter %s: status %d: %.300s", server, name, status, apiMessage(resp))
	}
	return nil
}

// apiMessage is the message of an OpenAI-shaped error answer, else the answer's text.
func apiMessage(resp []byte) string {
	var ans struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(resp, &ans) == nil {
		if ans.Error.Message != "" {
			return ans.Error.Message
		}
		if ans.Message != "" {
			return ans.Message
		}
	}
	return strings.TrimSpace(string(resp))
}

// copyFiles copies the plain files of folder src into dst.
func copyFiles(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		if !ent.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, ent.Name()), data, 0o644); err != nil {
			return err
		}
	}
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
func (e *remoteEngine) sample(model string, prompts [][]int32, scfg rollout.Config, seed uint64) ([]rollout.Completion, error) {
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
			comps, err := e.request(model, k, prompts[g.start], g.n, scfg, int64(seedFor(int64(seed), "remote-group", k)>>1))
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
func (e *remoteEngine) request(model string, k int, prompt []int32, n int, c rollout.Config, seed int64) ([]rollout.Completion, error) {
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
	if model != "" {
		req["model"] = model
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
