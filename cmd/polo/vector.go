package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/polo-rl/polo/vector"
)

func init() {
	register("vector", "reasoning vectors: 'vector extract' (tuned − base), 'vector apply' (model + scale·v)", runVector)
}

const vectorUsage = "usage: polo vector extract --base DIR --tuned DIR -o v.safetensors [--lenient]\n" +
	"       polo vector apply --model DIR --vector v.safetensors --scale S -o OUT_DIR [--lenient]"

func runVector(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", vectorUsage)
	}
	switch args[0] {
	case "extract":
		return vectorExtract(args[1:], stdout, stderr)
	case "apply":
		return vectorApply(args[1:], stdout, stderr)
	}
	return usagef("unknown subcommand %q; %s", args[0], vectorUsage)
}

func vectorExtract(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vector extract", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", "", "checkpoint folder the tuned model started from (e.g. the SFT model)")
	tuned := fs.String("tuned", "", "checkpoint folder after tuning (e.g. the RL model)")
	out := fs.String("o", "", "output .safetensors file")
	lenient := fs.Bool("lenient", false, "skip tensors present in only one checkpoint instead of failing")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *base == "" || *tuned == "" || *out == "" || fs.NArg() > 0 {
		return usagef("vector extract needs --base DIR --tuned DIR -o FILE and no other arguments")
	}
	v, err := vector.Extract(*base, *tuned, vector.Options{Lenient: *lenient, Warn: stderr})
	if err != nil {
		return usagef("%v", err)
	}
	if err := v.Save(*out, map[string]string{"base": *base, "tuned": *tuned}); err != nil {
		return err
	}
	n := 0
	for _, t := range v.Tensors {
		n += len(t.Data)
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors, %d elements, ‖v‖₂ = %.6g\n", *out, len(v.Tensors), n, v.Norm())
	return nil
}

func vectorApply(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vector apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("model", "", "checkpoint folder to add the vector to")
	vpath := fs.String("vector", "", "vector file from polo vector extract")
	scale := fs.Float64("scale", 1, "multiplier of the vector (negative subtracts it)")
	out := fs.String("o", "", "output checkpoint folder")
	lenient := fs.Bool("lenient", false, "skip vector tensors the model lacks instead of failing")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *dir == "" || *vpath == "" || *out == "" || fs.NArg() > 0 {
		return usagef("vector apply needs --model DIR --vector FILE -o DIR (and --scale S) and no other arguments")
	}
	v, err := vector.Load(*vpath)
	if err != nil {
		return usagef("%v", err)
	}
	rep, err := vector.Apply(*dir, v, *scale, *out, vector.Options{Lenient: *lenient, Warn: stderr})
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors (%d elements) += %g·v; %d skipped, %d vocabulary matrices partly updated\n",
		*out, rep.Tensors, rep.Elements, *scale, rep.Skipped, rep.PartialVocab)
	return nil
}
