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
}

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
	dir    atomic.Value  // string: the folder of the current weights
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
	s := &Server{cfg: cfg, b: newBatcher(pol, cfg.MaxBatch, cfg.MaxQueue), created: time.Now().Unix(),
		seeds: rand.New(rand.NewPCG(cfg.Seed, 0x5e7e)), tok: pol, vocab: mc.VocabSize, maxContext: mc.MaxPositionEmbeddings}
	s.dir.Store(cfg.ModelDir)
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
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, withCode(&apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("no route %s %s; see /v1/completions, /v1/chat/completions, /v1/models", r.Method, r.URL.Path)}, "not_found"))
	})
	return mux
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{{
		"id": s.cfg.Name, "object": "model", "created": s.created, "owned_by": "polo", "root": s.dir.Load(),
		"max_model_len": s.maxContext,
	}}})
}

func (s *Server) modelInfo(w http.ResponseWriter, _ *http.Request) {
	v := s.b.version.Load()
	writeJSON(w, http.StatusOK, map[string]any{"model_path": s.dir.Load(), "served_model_name": s.cfg.Name,
		"is_generation": true, "weight_version": fmt.Sprint(v), "num_requests": s.ids.Load()})
}

// updateWeights is SGLang's POST /update_weights_from_disk {"model_path": DIR}: it loads DIR's
// model.safetensors and swaps it in between two batches. Requests sampled after the answer use
// the new weights. Failure leaves the old weights and answers success=false with status 400.
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
	s.dir.Store(req.ModelPath)
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
