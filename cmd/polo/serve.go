package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/polo-rl/polo/serve"
)

func init() {
	register("serve", "serve a checkpoint over an OpenAI-compatible HTTP API", runServe)
}

func runServe(args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := serve.DefaultConfig()
	dir := fs.String("model", "", "model folder: RUN_DIR/checkpoints/<name>/model or a Hugging Face folder with a tokenizer")
	host := fs.String("host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	port := fs.Int("port", 8000, "port to listen on (0 = any free port; the chosen one is printed)")
	name := fs.String("served-model-name", "", "model id clients send (default: the --model path, as vLLM)")
	fs.IntVar(&def.MaxBatch, "max-batch", def.MaxBatch, "most sequences decoded together")
	fs.IntVar(&def.MaxQueue, "max-queue", def.MaxQueue, "most sequences waiting; beyond it requests get 429")
	fs.IntVar(&def.MaxTokens, "max-tokens", def.MaxTokens, "default max_tokens of a request that sends none")
	fs.IntVar(&def.MaxN, "max-n", def.MaxN, "most sequences (prompts × n) one request may ask for")
	fs.Uint64Var(&def.Seed, "seed", 0, "seed of the seeds of requests that send none")
	fs.Func("lora", "serve a PEFT LoRA adapter on top of the model as NAME=DIR (repeatable; vLLM's --lora-modules)", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=DIR, got %q", v)
		}
		def.Adapters = append(def.Adapters, serve.Adapter{Name: name, Dir: path})
		return nil
	})
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long running requests may finish")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: polo serve --model DIR [--lora NAME=ADAPTER_DIR]... [--host 127.0.0.1] [--port 8000]
OpenAI-compatible API: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health,
POST /update_weights_from_disk {"model_path": DIR} (reload weights without a restart),
POST /v1/load_lora_adapter {"lora_name", "lora_path"}, POST /v1/unload_lora_adapter {"lora_name"}.
DIR may also be a PEFT adapter folder (served on the local base model it names). See docs/serving.md.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *dir == "":
		return usagef("need --model DIR (a checkpoint's model folder)")
	case *port < 0 || *port > 65535:
		return usagef("--port = %d, want 0..65535", *port)
	}
	pol, _, err := loadPolicy(*dir, stderr)
	if err != nil {
		return err
	}
	def.Name, def.ModelDir = *name, *dir
	if def.Name == "" {
		def.Name = filepath.Clean(*dir)
	}
	srv, err := serve.New(pol, def)
	if err != nil {
		return usagef("%s", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		srv.Close()
		return usagef("listen: %v", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stderr, "polo serve: model %s on http://%s\n", def.Name, ln.Addr())
	select {
	case err := <-served:
		srv.Close()
		return err
	case s := <-sig:
		fmt.Fprintf(stderr, "polo serve: %v: finishing running requests (at most %v)\n", s, *grace)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	err = hs.Shutdown(ctx) // stops accepting, waits for running handlers
	srv.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stderr, "polo serve: stopped")
	return nil
}
