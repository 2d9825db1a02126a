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
	register("lora", "LoRA adapters: 'lora merge' folds a PEFT adapter into its base and writes a full checkpoint", runLoRA)
}

// tokenizerFiles are copied next to a merged model so that it is a complete folder.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
	"merges.txt", "chat_template.jinja", "polo_tokenizer.json"}

func runLoRA(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	const usage = "usage: polo lora merge [--base DIR] --adapter DIR -o OUT"
	if len(args) == 0 || args[0] != "merge" {
		return usagef("%s", usage)
	}
	fs := flag.NewFlagSet("lora merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", "", "base model folder (default: the adapter's base_model_name_or_path, if a local folder)")
	adapter := fs.String("adapter", "", "PEFT adapter folder (adapter_config.json + adapter_model.safetensors)")
	out := fs.String("o", "", "output folder for the merged Hugging Face checkpoint")
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("%v", err)
	}
	if *adapter == "" || *out == "" || fs.NArg() > 0 {
		return usagef("%s", usage)
	}
	if !model.IsAdapterDir(*adapter) {
		return usagef("lora merge: %s holds no adapter_config.json", *adapter)
	}
	m, err := model.LoadAdapted(*adapter, *base, 0)
	if err != nil {
		return err
	}
	merged, err := m.Merged()
	if err != nil {
		return err
	}
	if err := merged.Save(*out); err != nil {
		return err
	}
	copied := 0
	for _, f := range tokenizerFiles {
		for _, dir := range []string{*adapter, *base} {
			if dir == "" {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				continue
			}
			if err := os.WriteFile(filepath.Join(*out, f), data, 0o644); err != nil {
				return fmt.Errorf("lora merge: %w", err)
			}
			copied++
			break
		}
	}
	c, _ := m.AdapterConfig()
	fmt.Fprintf(stdout, "merged r=%d alpha=%g adapter on %v (%d adapter parameters) into %s: %d parameters, %s, %d tokenizer files\n",
		c.Rank, c.Alpha, c.Targets, m.NumAdapterParams(), *out, merged.NumParams(), merged.DType(), copied)
	return nil
}
