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
	"strconv"
	"strings"
	"time"

	"github.com/polo-rl/polo/dash"
)

func init() {
	register("dash", "live web dashboard over run folders: curves, samples, configs, checkpoints", runDash)
}

func runDash(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return serveDash(ctx, args, stdout, stderr)
}

// serveDash is the command without its signal handling: it serves until ctx ends (the browser
// test cancels it).
func serveDash(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 6060, "TCP port (0 = any free port)")
	host := fs.String("host", "127.0.0.1", "address to listen on; the default is reachable from this machine only (0.0.0.0 = every interface)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: polo dash [RUN_DIR...] [--port P] [--host ADDR]\n\nServes a live dashboard of the runs in RUN_DIR (default runs/: every run folder one or two levels below).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(dashFlagsFirst(args)); err != nil {
		return usageError{err}
	}
	if *port < 0 || *port > 65535 {
		return usagef("--port %d: want 0..65535", *port)
	}
	roots := fs.Args()
	if len(roots) == 0 {
		roots = []string{"runs"}
	}
	srv, err := dash.New(roots)
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "polo dash: %d run(s) at http://%s/ (Ctrl-C stops)\n", len(srv.Runs()), ln.Addr())
	if ip := net.ParseIP(*host); *host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(stderr, "polo dash: listening on %s: other machines can read these runs\n", *host)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// dashFlagsFirst moves flags (and the values of --port and --host) before the run folders, so
// that `polo dash runs/a --port 8080` works as the usage line says.
func dashFlagsFirst(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if (name == "port" || name == "host") && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, pos...)
}
