// Command serve-bench drives a running OpenAI-compatible server (polo serve, vLLM, SGLang) with C
// concurrent clients and reports requests/s, completion tokens/s and latency percentiles.
//
// Every client sends /v1/completions requests back to back, each a random "a+b=" prompt
// (seeded) with max_tokens fixed and ignore_eos, so every request decodes the same number of
// tokens and tokens/s compares across concurrency levels; with --min-tokens, max_tokens is drawn
// per request (mixed lengths, where continuous batching matters). Usage (see run.sh):
//
//	go run ./bench/serve --url http://127.0.0.1:8000 --clients 1,8,64 --requests 8 --max-tokens 16
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8000", "server base URL")
	clients := flag.String("clients", "1,8,64", "comma-separated numbers of concurrent clients")
	perClient := flag.Int("requests", 8, "requests per client at each level")
	minReq := flag.Int("min-requests", 32, "at least this many requests per level (spread over the clients)")
	maxTokens := flag.Int("max-tokens", 16, "max_tokens of every request (ignore_eos: every request decodes this many)")
	minTokens := flag.Int("min-tokens", 0, "when > 0, each request's max_tokens is drawn uniformly from [min-tokens, max-tokens] (mixed lengths)")
	model := flag.String("model", "", "model name to send (\"\" = none)")
	rounds := flag.Int("rounds", 1, "run the list of levels this many times (later rounds: graphs compiled)")
	warm := flag.Int("warmup", 4, "single requests sent before timing (then a burst of 64), to compile graphs")
	flag.Parse()
	rng := rand.New(rand.NewPCG(1, 2))
	var rngMu sync.Mutex // the clients share the seeded source of prompts and seeds
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	send := func() (int, time.Duration, error) {
		rngMu.Lock()
		mt := *maxTokens
		if *minTokens > 0 && *minTokens < mt {
			mt = *minTokens + rng.IntN(mt-*minTokens+1)
		}
		req := map[string]any{"prompt": fmt.Sprintf("%d+%d=", rng.IntN(100), rng.IntN(100)),
			"max_tokens": mt, "temperature": 1.0, "ignore_eos": true, "seed": rng.Int64()}
		rngMu.Unlock()
		if *model != "" {
			req["model"] = *model
		}
		body, _ := json.Marshal(req)
		t0 := time.Now()
		resp, err := client.Post(*url+"/v1/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		var ans struct {
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if err := json.Unmarshal(data, &ans); err != nil {
			return 0, 0, err
		}
		return ans.Usage.CompletionTokens, time.Since(t0), nil
	}
	// warm-up: a few single requests and one burst of 64 at once, so that the decode graphs of the
	// batch sizes the levels use are compiled before timing
	var wg sync.WaitGroup
	for range *warm {
		if _, _, err := send(); err != nil {
			fmt.Fprintln(os.Stderr, "warm-up:", err)
			os.Exit(1)
		}
	}
	for range 64 {
		wg.Go(func() { send() })
	}
	wg.Wait()
	fmt.Printf("%-8s %9s %10s %11s %9s %9s %9s\n", "clients", "requests", "req/s", "tokens/s", "p50_s", "p99_s", "errors")
	levels := strings.Split(*clients, ",")
	for r := 1; r < *rounds; r++ {
		levels = append(levels, strings.Split(*clients, ",")...)
	}
	for _, f := range levels {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			fmt.Fprintf(os.Stderr, "bad --clients entry %q\n", f)
			os.Exit(2)
		}
		n := max(*perClient, (*minReq+c-1)/c)
		lat := make([]time.Duration, 0, c*n)
		tokens, errs := 0, 0
		var lmu sync.Mutex
		t0 := time.Now()
		for range c {
			wg.Go(func() {
				for range n {
					k, d, err := send()
					lmu.Lock()
					if err != nil {
						errs++
					} else {
						tokens += k
						lat = append(lat, d)
					}
					lmu.Unlock()
				}
			})
		}
		wg.Wait()
		wall := time.Since(t0).Seconds()
		slices.Sort(lat)
		pct := func(p float64) float64 {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(p*float64(len(lat))))].Seconds()
		}
		fmt.Printf("%-8d %9d %10.2f %11.1f %9.3f %9.3f %9d\n", c, len(lat), float64(len(lat))/wall, float64(tokens)/wall, pct(0.5), pct(0.99), errs)
	}
}
