package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/polo-rl/polo/internal/avxstate"
	"github.com/polo-rl/polo/model"
)

// benchModes are the configurations `polo model bench` compares.
var benchModes = []string{"full", "full-remat", "lora", "lora-remat"}

// runModelBench times training steps of a published architecture with random weights. Without
// --mode it runs each mode of --modes in its own process (so that each peak RSS is its own) and
// prints a table; with --mode it runs one and prints its result as JSON.
func runModelBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("model bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	preset := fs.String("preset", "", "published configuration: "+strings.Join(model.HFPresets(), ", "))
	modes := fs.String("modes", strings.Join(benchModes, ","), "modes to compare: "+strings.Join(benchModes, ", "))
	mode := fs.String("mode", "", "run one mode in this process and print JSON")
	r := fs.Int("r", 16, "LoRA rank")
	alpha := fs.Float64("alpha", 32, "LoRA alpha")
	targets := fs.String("targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "LoRA target modules")
	batch := fs.Int("batch", 1, "rows per step")
	seq := fs.Int("seq", 512, "tokens per row")
	steps := fs.Int("steps", 1, "timed steps after the first (which includes compilation)")
	seed := fs.Int64("seed", 1, "seed of the random weights and batch")
	cfgFile := fs.String("config", "", "a config.json to use instead of --preset")
	computeDT := fs.String("compute", "float32", "matmul dtype inside the graphs: float32 or bf16 (weights and AdamW state stay float32)")
	flash := fs.Bool("flash", false, "fused attention (cuDNN flash on XLA CUDA with bf16)")
	warm := fs.Bool("warmup", false, "compile the graphs before the first step and report the compile time apart")
	promptLen := fs.Int("prompt-len", 64, "mode sample: tokens per prompt")
	newTokens := fs.Int("new-tokens", 256, "mode sample: tokens generated per row")
	rounds := fs.Int("rounds", 2, "mode sample: generations (the best is reported)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	var cfg model.Config
	var err error
	if *cfgFile != "" {
		data, rerr := os.ReadFile(*cfgFile)
		if rerr != nil {
			return usagef("model bench: %v", rerr)
		}
		if cfg, err = model.ParseConfig(data); err != nil {
			return usagef("model bench: %s: %v", *cfgFile, err)
		}
		*preset = *cfgFile
	} else if cfg, err = model.HFPreset(*preset); err != nil {
		return usagef("model bench: %v", err)
	}
	co := model.ComputeOptions{DType: *computeDT, Flash: *flash}
	if *mode == "sample" {
		return benchSample(cfg, sampleBenchOptions{Name: *preset, Batch: *batch, PromptLen: *promptLen, NewTokens: *newTokens, Rounds: *rounds,
			Seed: *seed, Compute: co, WarmUp: *warm}, stdout, stderr)
	}
	if *batch < 1 || *seq < 2 || *steps < 0 {
		return usagef("model bench: want --batch >= 1, --seq >= 2, --steps >= 0")
	}
	if *mode != "" {
		if !contains(benchModes, *mode) {
			return usagef("model bench: unknown mode %q (want one of %s, or sample)", *mode, strings.Join(benchModes, ", "))
		}
		o := model.BenchOptions{Batch: *batch, Seq: *seq, Steps: *steps, Seed: *seed, Remat: strings.HasSuffix(*mode, "-remat"), Compute: co, WarmUp: *warm,
			Verbose: func(f string, a ...any) { fmt.Fprintf(stderr, "%s: "+f+"\n", append([]any{*mode}, a...)...) }}
		if strings.HasPrefix(*mode, "lora") {
			o.LoRA = &model.LoRAConfig{Rank: *r, Alpha: *alpha, Targets: strings.Split(*targets, ","), Seed: *seed}
		}
		res, err := model.Bench(cfg, o)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(res)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "polo model bench --preset %s: B=%d×T=%d, random weights, float32, %d CPU threads (GOMAXPROCS), LoRA r=%d alpha=%g on %s\n\n",
		*preset, *batch, *seq, runtime.GOMAXPROCS(0), *r, *alpha, *targets)
	if line := dirtyUpperLine(); line != "" {
		fmt.Fprintf(stdout, "%s\n\n", line)
	}
	fmt.Fprintln(stdout, "| mode | params | trainable | RSS after init | peak RSS | first step (compile) | step |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|")
	for _, md := range strings.Split(*modes, ",") {
		if !contains(benchModes, md) {
			return usagef("model bench: unknown mode %q (want one of %s)", md, strings.Join(benchModes, ", "))
		}
		cmd := exec.Command(self, "model", "bench", "--preset", *preset, "--config", *cfgFile, "--compute", *computeDT, fmt.Sprintf("--flash=%v", *flash), fmt.Sprintf("--warmup=%v", *warm), "--mode", md, "--r", fmt.Sprint(*r), "--alpha", fmt.Sprint(*alpha),
			"--targets", *targets, "--batch", fmt.Sprint(*batch), "--seq", fmt.Sprint(*seq), "--steps", fmt.Sprint(*steps), "--seed", fmt.Sprint(*seed))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stdout, "| %s | failed: %v | | | | | |\n", md, err)
			continue
		}
		var res model.BenchResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			return fmt.Errorf("model bench %s: %w", md, err)
		}
		stepS := "—"
		if len(res.StepSeconds) > 0 {
			var s float64
			for _, x := range res.StepSeconds {
				s += x
			}
			stepS = fmt.Sprintf("%.1f s", s/float64(len(res.StepSeconds)))
		}
		fmt.Fprintf(stdout, "| %s | %.0fM | %.2fM | %.2f GiB | **%.2f GiB** | %.1f s | %s |\n", md, float64(res.Params)/1e6, float64(res.Trainable)/1e6,
			gibs(res.RSSAfterInit), gibs(res.PeakRSS), res.FirstStepSeconds, stepS)
	}
	return nil
}

// dirtyUpperLine says how much slower host-side scalar exp runs on this machine when entered with
// the AVX upper state dirty, as every preemption leaves it in GOEXPERIMENT=simd builds (see package
// avxstate), or returns "" where that cannot be measured.
func dirtyUpperLine() string {
	f, m, ok := avxstate.ExpPenalties()
	if !ok {
		return ""
	}
	return fmt.Sprintf("Scalar exp entered with a dirty AVX upper state (as after a preemption) on %s: fmath.Exp %.1f×, math.Exp %.1f× its clean time.",
		avxstate.CPUName(), f, m)
}

func gibs(b uint64) float64 { return float64(b) / (1 << 30) }

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
