// Package serve is polo's OpenAI-compatible HTTP server over a checkpoint: /v1/completions and
// /v1/chat/completions (with vLLM's extra sampling parameters and token-id conventions),
// /v1/models, /health, and SGLang's /update_weights_from_disk for reloading weights without a
// restart. Concurrent requests are batched together on the model's KV-cache decoder.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/train"
)

// Config is a server's configuration.
type Config struct {
	// Name is the model id clients send and /v1/models lists.
	Name string
	// ModelDir is the folder the weights came from (reported by /get_model_info).
	ModelDir string
	// MaxBatch is the most rows (sequences) decoded together; MaxQueue the most rows waiting.
	MaxBatch, MaxQueue int
	// MaxTokens is the default max_tokens of a request that sends none.
	MaxTokens int
	// MaxN bounds n (and prompts × n) per request.
	MaxN int
	// Seed seeds the seeds of requests that send none (request k gets a seed drawn from it).
	Seed uint64
	// Adapters are PEFT LoRA adapters served on top of the model from the start, each under its
	// own model name (vLLM's --lora-modules name=path).
	Adapters []Adapter
}

// Adapter is a LoRA adapter folder served under a model name.
type Adapter struct{ Name, Dir string }

// DefaultConfig: batches of up to 64 rows, 1024 rows queued, 256 new tokens by default.
func DefaultConfig() Config {
	return Config{MaxBatch: 64, MaxQueue: 1024, MaxTokens: 256, MaxN: 64}
}

// Server answers the OpenAI-compatible API for one policy.
type Server struct {
	cfg     Config
	b       *batcher
	created int64
	// tok is the policy as loaded: its tokenizer, stop tokens and chat template never change;
	// reloads swap only the batcher's weights.
	tok        *train.Policy
	vocab      int
	maxContext int

	seedMu sync.Mutex
	seeds  *rand.Rand
	ids    atomic.Uint64 // generation requests accepted so far (also their id)
}

// New starts the batching loop over pol; call Close to stop it.
func New(pol *train.Policy, cfg Config) (*Server, error) {
	switch {
	case cfg.MaxBatch < 1:
		return nil, fmt.Errorf("serve: max batch = %d, want >= 1", cfg.MaxBatch)
	case cfg.MaxQueue < cfg.MaxBatch:
		return nil, fmt.Errorf("serve: max queue = %d rows, want >= max batch (%d)", cfg.MaxQueue, cfg.MaxBatch)
	case cfg.MaxTokens < 1:
		return nil, fmt.Errorf("serve: default max tokens = %d, want >= 1", cfg.MaxTokens)
	case cfg.MaxN < 1:
		return nil, fmt.Errorf("serve: max n = %d, want >= 1", cfg.MaxN)
	case cfg.Name == "":
		return nil, fmt.Errorf("serve: the served model needs a name")
	}
	mc := pol.Model.Config()
	base := &engine{name: cfg.Name, dir: cfg.ModelDir, pol: pol}
	s := &Server{cfg: cfg, b: newBatcher(base, cfg.MaxBatch, cfg.MaxQueue), created: time.Now().Unix(),
		seeds: rand.New(rand.NewPCG(cfg.Seed, 0x5e7e)), tok: pol, vocab: mc.VocabSize, maxContext: mc.MaxPositionEmbeddings}
	for _, a := range cfg.Adapters {
		if a.Name == "" {
			s.Close()
			return nil, fmt.Errorf("serve: LoRA adapter %s needs a name (name=DIR)", a.Dir)
		}
		if err := s.b.loadAdapter(a.Name, a.Dir); err != nil {
			s.Close()
			return nil, fmt.Errorf("serve: LoRA adapter %s: %w", a.Name, err)
		}
	}
	return s, nil
}

// Close refuses new work and waits until the queued requests are answered.
func (s *Server) Close() { s.b.close() }

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/completions", s.completions)
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /update_weights_from_disk", s.updateWeights)
	mux.HandleFunc("GET /get_model_info", s.modelInfo)
	mux.HandleFunc("POST /v1/load_lora_adapter", s.loadLoRA)
	mux.HandleFunc("POST /v1/unload_lora_adapter", s.unloadLoRA)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, withCode(&apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("no route %s %s; see /v1/completions, /v1/chat/completions, /v1/models", r.Method, r.URL.Path)}, "not_found"))
	})
	return mux
}

// models lists the served model, then its LoRA adapters as vLLM does (root: the adapter's folder,
// parent: the base model).
func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	base, ads := s.b.models()
	data := []map[string]any{{
		"id": s.cfg.Name, "object": "model", "created": s.created, "owned_by": "polo", "root": base.dir,
		"parent": nil, "max_model_len": s.maxContext,
	}}
	for _, a := range ads {
		data = append(data, map[string]any{"id": a.name, "object": "model", "created": s.created, "owned_by": "polo",
			"root": a.dir, "parent": s.cfg.Name, "max_model_len": s.maxContext})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) modelInfo(w http.ResponseWriter, _ *http.Request) {
	v := s.b.version.Load()
	base, _ := s.b.models()
	writeJSON(w, http.StatusOK, map[string]any{"model_path": base.dir, "served_model_name": s.cfg.Name,
		"is_generation": true, "weight_version": fmt.Sprint(v), "num_requests": s.ids.Load()})
}

// loadLoRA is vLLM's POST /v1/load_lora_adapter {"lora_name", "lora_path"}: the PEFT adapter in
// lora_path is served on top of the current weights as model lora_name. 200 with a plain-text
// message, as vLLM; 400 in OpenAI's error shape when the adapter cannot be loaded or the name is
// taken.
func (s *Server) loadLoRA(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"lora_name"`
		Path string `json:"lora_path"`
	}
	if e := decodeBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	switch {
	case req.Name == "":
		writeError(w, badRequest("lora_name", "need lora_name: the model name requests will use"))
		return
	case req.Path == "":
		writeError(w, badRequest("lora_path", "need lora_path: a folder with adapter_config.json and adapter_model.safetensors"))
		return
	}
	if err := s.b.loadAdapter(req.Name, req.Path); err != nil {
		if errors.Is(err, errClosed) {
			writeError(w, withCode(&apiError{status: http.StatusServiceUnavailable, Type: "service_unavailable", Message: "server shutting down"}, "shutting_down"))
			return
		}
		writeError(w, badRequest("lora_path", "LoRA adapter %s not loaded: %v", req.Name, err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "Success: LoRA adapter '%s' added successfully.", req.Name)
}

// unloadLoRA is vLLM's POST /v1/unload_lora_adapter {"lora_name"}; 404 when no such adapter is
// loaded. Requests already accepted for it finish.
func (s *Server) unloadLoRA(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"lora_name"`
	}
	if e := decodeBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	if err := s.b.unloadAdapter(req.Name); err != nil {
		writeError(w, withCode(&apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("The lora adapter '%s' cannot be found.", req.Name)}, "model_not_found"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "Success: LoRA adapter '%s' removed successfully.", req.Name)
}

// updateWeights is SGLang's POST /update_weights_from_disk {"model_path": DIR}: it loads DIR's
// model.safetensors and swaps it in when no row is running (admission pauses meanwhile; the
// running rows finish with the old weights). Requests sampled after the answer use the new
// weights; loaded LoRA adapters are re-applied on top of them. Failure leaves the old weights and answers success=false with status 400.
func (s *Server) updateWeights(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ModelPath string `json:"model_path"`
	}
	if e := decodeBody(r, &req); e != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "message": e.Message})
		return
	}
	if req.ModelPath == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "message": "need model_path: a folder with config.json and model.safetensors"})
		return
	}
	v, err := s.b.reload(req.ModelPath)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "message": fmt.Sprintf("weights not updated: %v", err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": "weights updated from " + req.ModelPath,
		"weight_version": fmt.Sprint(v), "num_paused_requests": 0})
}

// decodeBody reads a JSON request body (at most 32 MiB).
func decodeBody(r *http.Request, v any) *apiError {
	data, err := io.ReadAll(io.LimitReader(r.Body, 32<<20+1))
	if err != nil {
		return badRequest("", "reading the request body: %v", err)
	}
	if len(data) > 32<<20 {
		return badRequest("", "request body over 32 MiB")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badRequest(te.Field, "field %s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return badRequest("", "request body is not valid JSON: %v", err)
	}
	return nil
}

// nextSeed is the seed of a request that sends none.
func (s *Server) nextSeed() uint64 {
	s.seedMu.Lock()
	defer s.seedMu.Unlock()
	return s.seeds.Uint64()
}

// submit queues a job and waits for its result; the error is answered in the OpenAI shape.
func (s *Server) submit(j *job) *apiError {
	switch err := s.b.submit(j); {
	case errors.Is(err, errQueueFull):
		return withCode(&apiError{status: http.StatusTooManyRequests, Type: "rate_limit_exceeded",
			Message: fmt.Sprintf("server busy: more than %d sequences queued; retry later", s.cfg.MaxQueue)}, "queue_full")
	case errors.Is(err, errClosed):
		return withCode(&apiError{status: http.StatusServiceUnavailable, Type: "service_unavailable",
			Message: "server shutting down"}, "shutting_down")
	}
	return nil
}

// sampleError maps a sampling failure to an answer.
func sampleError(err error) *apiError {
	if errors.Is(err, model.ErrTooLarge) {
		return badRequest("max_tokens", "%v", err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{status: 499, Type: "cancelled", Message: "request cancelled"}
	}
	return &apiError{status: http.StatusInternalServerError, Type: "server_error", Message: fmt.Sprintf("sampling failed: %v", err)}
}
