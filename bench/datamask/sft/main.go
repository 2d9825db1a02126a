// Command sft fine-tunes a character-level polo checkpoint on a JSONL subset {question, answer}
// (the trainer's SFT loss: mean NLL of answer+EOS tokens; AdamW at a constant rate) and writes
// the result with the checkpoint's tokenizer files — the DATAMASK demo's "SFT on the subset"
// (`polo train` takes datasets only with Hugging Face tokenizers).
//
//	go run ./bench/datamask/sft -model M -data subset.jsonl -steps 150 -o OUT
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/train"
)

func main() {
	dir := flag.String("model", "", "starting checkpoint")
	data := flag.String("data", "", "JSONL {question, answer}")
	steps := flag.Int("steps", 150, "SFT steps")
	batch := flag.Int("batch", 64, "rows per step")
	lr := flag.Float64("lr", 1e-3, "learning rate")
	seed := flag.Uint64("seed", 1, "batch sampling seed")
	out := flag.String("o", "", "output model folder")
	flag.Parse()
	if err := run(*dir, *data, *steps, *batch, *lr, *seed, *out); err != nil {
		fmt.Fprintln(os.Stderr, "sft:", err)
		os.Exit(1)
	}
}

func run(dir, data string, steps, batch int, lr float64, seed uint64, out string) error {
	pol, err := train.LoadPolicy(dir)
	if err != nil {
		return err
	}
	ds, err := task.LoadJSONL(data, task.Fields{Prompt: "question", Answer: "answer"}, task.LoadOptions{})
	if err != nil {
		return err
	}
	tr, err := model.NewTrainer(pol.Model, model.OptimConfig{LR: lr, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, ClipNorm: 1})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	eos := pol.StopTokens()[0]
	for step := 1; step <= steps; step++ {
		var seqs [][]int32
		var starts []int
		nTok := 0
		for range batch {
			ex := ds.Examples[rng.IntN(ds.Len())]
			p, err := pol.Prompt(ex)
			if err != nil {
				return err
			}
			a := append(pol.Tokenizer().Encode(strings.TrimSpace(ex.Answer)), eos)
			seqs = append(seqs, append(p, a...))
			starts = append(starts, len(p))
			nTok += len(a)
		}
		T := 0
		for _, s := range seqs {
			T = max(T, len(s))
		}
		ids, mask, coef := make([][]int32, batch), make([][]int32, batch), make([][]float32, batch)
		for b, s := range seqs {
			ids[b], mask[b], coef[b] = make([]int32, T), make([]int32, T), make([]float32, T-1)
			copy(ids[b], s)
			for j := range s {
				mask[b][j] = 1
			}
			for j := starts[b] - 1; j < len(s)-1; j++ {
				coef[b][j] = float32(-1 / float64(nTok))
			}
		}
		if _, _, err := tr.Accumulate(ids, mask, coef, nil); err != nil {
			return err
		}
		if _, err := tr.Step(lr); err != nil {
			return err
		}
	}
	if err := pol.Model.Save(out); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); n != "model.safetensors" && n != "config.json" && e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, n), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
