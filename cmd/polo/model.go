package main

import (
	"flag"
	"fmt"
	"io"

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
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("%v", err)
	}
	if *dir == "" || *ref == "" {
		return usagef("model check needs --model DIR and --reference FILE")
	}
	m, err := model.Load(*dir)
	if err != nil {
		return err
	}
	if err := m.SetCompute(model.ComputeOptions{DType: *computeDT, Flash: *flash}); err != nil {
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
