package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/polo-rl/polo/model"
)

func init() {
	register("model", "model tools: 'model check' compares a checkpoint with a transformers reference; 'model bench' times train steps and memory", runModel)
}

func runModel(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "bench" {
		return runModelBench(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		return usagef("usage: polo model check --model DIR --reference FILE [--tol 1e-4] [--rel-tol 1e-4]\n       polo model bench --preset qwen2.5-0.5b|qwen2.5-1.5b [--modes full,lora,lora-remat]")
	}
	fs := flag.NewFlagSet("model check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "Hugging Face checkpoint folder (config.json + model.safetensors)")
	ref := fs.String("reference", "", "reference.safetensors made with transformers (input_ids, attention_mask, logits, ...)")
	tol := fs.Float64("tol", 1e-4, "max absolute difference of logits and logprobs")
	rel := fs.Float64("rel-tol", 1e-4, "max relative error of loss and gradients")
	computeDT := fs.String("compute", "float32", "matmul dtype inside the graphs: float32 or bf16 (then loosen --tol/--rel-tol)")
	flash := fs.Bool("flash", false, "fused attention")
	all := fs.String("all", "", "check every subfolder of DIR that holds a reference.safetensors, in one process (e.g. testdata/models)")
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("%v", err)
	}
	co := model.ComputeOptions{DType: *computeDT, Flash: *flash}
	if *all != "" {
		return checkAll(*all, co, model.CheckTolerance{Logits: *tol, Rel: *rel}, stdout)
	}
	if *dir == "" || *ref == "" {
		return usagef("model check needs --model DIR and --reference FILE (or --all DIR)")
	}
	m, err := model.Load(*dir)
	if err != nil {
		return err
	}
	if err := m.SetCompute(co); err != nil {
		return usagef("model check: %v", err)
	}
	items, err := model.CheckReference(m, *ref, model.CheckTolerance{Logits: *tol, Rel: *rel})
	if err != nil {
		return err
	}
	failed := 0
	for _, it := range items {
		fmt.Fprintln(stdout, it)
		if !it.OK {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks past tolerance", failed, len(items))
	}
	fmt.Fprintf(stdout, "all %d checks within tolerance\n", len(items))
	return nil
}

// checkAll checks every model folder under root that has a reference.safetensors: "== NAME COMPUTE"
// then its checks and "rc 0" or "rc 1" per folder (bench/gpu/summarize.py reads this).
func checkAll(root string, co model.ComputeOptions, tol model.CheckTolerance, stdout io.Writer) error {
	ents, err := os.ReadDir(root)
	if err != nil {
		return usagef("model check --all: %v", err)
	}
	mode := co.DType
	if mode == "" {
		mode = "float32"
	}
	if co.Flash {
		mode += " flash"
	}
	failed, n := 0, 0
	for _, e := range ents {
		ref := filepath.Join(root, e.Name(), "reference.safetensors")
		if _, err := os.Stat(ref); !e.IsDir() || err != nil {
			continue
		}
		n++
		fmt.Fprintf(stdout, "== %s %s\n", e.Name(), mode)
		ok := func() bool {
			m, err := model.Load(filepath.Join(root, e.Name()))
			if err == nil {
				err = m.SetCompute(co)
			}
			var items []model.CheckItem
			if err == nil {
				items, err = model.CheckReference(m, ref, tol)
			}
			if err != nil {
				fmt.Fprintf(stdout, "error: %v\n", err)
				return false
			}
			good := true
			for _, it := range items {
				fmt.Fprintln(stdout, it)
				good = good && it.OK
			}
			return good
		}()
		if ok {
			fmt.Fprintln(stdout, "rc 0")
		} else {
			fmt.Fprintln(stdout, "rc 1")
			failed++
		}
	}
	if n == 0 {
		return usagef("model check --all: no folder under %s holds a reference.safetensors", root)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d models past tolerance", failed, n)
	}
	fmt.Fprintf(stdout, "all %d models within tolerance\n", n)
	return nil
}
