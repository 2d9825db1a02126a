package train

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestPublishPerPhase: policy versions count optimizer updates of the current phase's trainer, so
// SFT (best-of-n sampling) and RL both start at version 0. The servers must be given the policy
// again when the phase changes, even at the same version number, and only then.
func TestPublishPerPhase(t *testing.T) {
	var mu sync.Mutex
	var reloads []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			ModelPath string `json:"model_path"`
		}
		json.NewDecoder(req.Body).Decode(&body)
		mu.Lock()
		reloads = append(reloads, req.URL.Path+" "+body.ModelPath)
		mu.Unlock()
		w.Write([]byte(`{"success": true}`))
	}))
	defer srv.Close()
	r := testRunner(t, "rollout.engine=remote", "rollout.servers=["+srv.URL+"]")
	for _, c := range []struct {
		phase   string
		version int
		want    int // reloads so far
	}{{"sft", 0, 1}, {"sft", 0, 1}, {"sft", 1, 2}, {"rl", 1, 3}, {"rl", 0, 4}, {"rl", 0, 4}} {
		r.state.Phase = c.phase
		if err := r.publish(c.version); err != nil {
			t.Fatal(err)
		}
		if len(reloads) != c.want {
			t.Fatalf("after publishing %s version %d: %d reloads %v, want %d", c.phase, c.version, len(reloads), reloads, c.want)
		}
	}
}
