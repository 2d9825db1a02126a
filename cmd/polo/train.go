package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/polo-rl/polo/train"
)

// setFlags collects repeated --set key=value flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func init() {
	register("train", "train a policy (no config: the built-in demo)", runTrain)
}

func runTrain(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets setFlags
	fs.Var(&sets, "set", "override a config field, e.g. --set algo.name=dapo (repeatable)")
	resume := fs.String("resume", "", "continue the run in this directory from its latest checkpoint")
	printCfg := fs.Bool("print-config", false, "print the resolved configuration and exit")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: polo train [config.yaml] [--set key=value]... | polo train --resume RUN_DIR\n\nWith no config file, runs the built-in demo (small model, 2-digit addition, SFT then GRPO, CPU).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorder(args)); err != nil {
		return usageError{err}
	}
	opts := train.Options{Log: stderr}
	if !*quiet {
		opts.Progress = stderr
	}
	var (
		sum train.Summary
		err error
	)
	if *resume != "" {
		if fs.NArg() > 0 || len(sets) > 0 {
			return usagef("--resume takes no config file or --set: the run continues with its own config.yaml")
		}
		if _, statErr := os.Stat(*resume); statErr != nil {
			return usagef("resume: %v", statErr)
		}
		sum, err = train.Resume(*resume, opts)
	} else {
		if fs.NArg() > 1 {
			return usagef("want at most one config file, got %d", fs.NArg())
		}
		cfg, cerr := train.LoadConfig(fs.Arg(0), sets)
		if cerr != nil {
			return usageError{cerr}
		}
		if cerr := train.Check(cfg); cerr != nil {
			return usageError{cerr}
		}
		if *printCfg {
			_, werr := stdout.Write(cfg.YAML())
			return werr
		}
		sum, err = train.Run(cfg, opts)
	}
	if err != nil {
		return err
	}
	train.PrintSummary(stdout, sum)
	return nil
}

// reorder moves flags before positional arguments so `polo train cfg.yaml --set k=v` works like the
// standard `polo train --set k=v cfg.yaml`.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && takesValue(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func takesValue(flagName string) bool {
	switch strings.TrimLeft(flagName, "-") {
	case "set", "resume", "algos", "seeds", "out", "model", "task", "k", "n", "prompt", "tokenizer", "reference":
		return true
	}
	return false
}
