package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/polo-rl/polo/train"
)

func init() {
	register("compare", "run several algorithms × seeds on the same task and budget; table + curves", runCompare)
}

func runCompare(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	algos := fs.String("algos", "grpo,dapo,gspo,sapo", "comma-separated objective presets")
	seeds := fs.Int("seeds", 3, "seeds per algorithm (seed, seed+1, …)")
	out := fs.String("out", "runs/compare", "output folder (one run per algorithm and seed)")
	var sets setFlags
	fs.Var(&sets, "set", "override a config field for every run (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: polo compare [config.yaml] --algos grpo,dapo,gspo,sapo --seeds 3 [--out DIR] [--set key=value]...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorder(args)); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 1 {
		return usagef("want at most one config file, got %d", fs.NArg())
	}
	cfg, err := train.LoadConfig(fs.Arg(0), sets)
	if err != nil {
		return usageError{err}
	}
	var names []string
	seen := map[string]bool{}
	for _, a := range strings.Split(*algos, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if seen[a] {
				return usagef("--algos names %s twice; each algorithm runs once per seed", a)
			}
			seen[a] = true
			names = append(names, a)
		}
	}
	if len(names) == 0 || *seeds < 1 {
		return usagef("--algos needs at least one preset and --seeds at least 1")
	}
	if len(cfg.Algo.Set) > 0 && !slices.Contains(names, cfg.Algo.Name) {
		return usagef("algo.set applies to the preset algo.name names (%s), which is not among --algos; add --set algo.name=PRESET for the preset it is meant for", cfg.Algo.Name)
	}
	for _, a := range names {
		c := cfg
		c.Algo = train.AlgoConfig{Name: a}
		if a == cfg.Algo.Name { // as Compare: the config's overrides apply to the preset it names
			c.Algo.Set = cfg.Algo.Set
		}
		if err := train.Check(c); err != nil {
			return usageError{err}
		}
	}
	_, err = train.Compare(cfg, names, *seeds, *out, train.Options{Log: stderr}, stdout)
	return err
}
