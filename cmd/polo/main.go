// Command polo is the command-line interface of the polo RL post-training framework.
//
// Each subcommand lives in its own file and registers itself in init with register.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
)

// command is one subcommand: run gets the arguments after the subcommand name.
type command struct {
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdin io.Reader, stdout, stderr io.Writer) error) {
	if _, dup := commands[name]; dup {
		panic("polo: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// usageError marks a user mistake (bad flag, bad input): exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef builds a usageError.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	stop := startCPUProfile(os.Getenv("POLO_CPUPROFILE"), os.Stderr)
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// startCPUProfile writes a pprof CPU profile of the whole command to path (POLO_CPUPROFILE), for
// `go tool pprof`; it returns the function that finishes the file. An empty path does nothing.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "polo: POLO_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// run dispatches to a subcommand and maps errors to exit codes: 0 ok, 1 failure, 2 usage or input error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "polo: unknown command %q; run 'polo help' for the list\n", args[0])
		return 2
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "polo %s: internal error: %v\n", args[0], r)
			code = 1
		}
	}()
	err := cmd.run(args[1:], stdin, stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) { // -h: the flag package printed the usage
		return 0
	}
	fmt.Fprintf(stderr, "polo %s: %s\n", args[0], oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "polo — reinforcement-learning post-training of language models\n\nUsage: polo <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'polo <command> -h' for the flags of one command.")
}
