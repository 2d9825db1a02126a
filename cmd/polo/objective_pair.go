package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/polo-rl/polo/objective"
)

// pairObjectiveHelp documents the JSON of the preference losses for `polo objective --help`.
const pairObjectiveHelp = `Preference losses (dpo, ipo, rdpo) take one value per pair, sequence-level:
  {"chosen_logp": [...], "rejected_logp": [...],          sum of the response's token log-probs, policy
   "ref_chosen_logp": [...], "ref_rejected_logp": [...],  the same under the frozen reference
   "chosen_len": [...], "rejected_len": [...]}            token counts (ipo's length normalisation)
and print {"loss", "grad_chosen_logp", "grad_rejected_logp", "metrics"}; the gradients are
dLoss/d(sequence log-prob): every token of the response gets that value. Parameters: beta,
label_smoothing (dpo: conservative smoothing; rdpo: the label flip rate, < 0.5), length_normalize (ipo).`

// distillObjectiveHelp documents how the distillation inputs map onto the token batch.
const distillObjectiveHelp = `Distillation (distill) reads the token batch with: old_logp = the student's log-probs at
sampling time, ref_logp = the teacher's log-probs of the same tokens (same tokenizer), logp = the current
student, entropy = the student's entropy (TIP selection: select=entropy_topk|entropy_sample|q3_only|type_aware).`

// pairInput is the JSON batch of a preference loss. Pointers let a null entry be reported instead of
// silently read as 0.
type pairInput struct {
	ChosenLogP      []*float64 `json:"chosen_logp"`
	RejectedLogP    []*float64 `json:"rejected_logp"`
	RefChosenLogP   []*float64 `json:"ref_chosen_logp"`
	RefRejectedLogP []*float64 `json:"ref_rejected_logp"`
	ChosenLen       []*float64 `json:"chosen_len"`
	RejectedLen     []*float64 `json:"rejected_len"`
}

type pairOutput struct {
	Loss             float64            `json:"loss"`
	GradChosenLogP   []float64          `json:"grad_chosen_logp"`
	GradRejectedLogP []float64          `json:"grad_rejected_logp"`
	Metrics          map[string]float64 `json:"metrics"`
}

// runPairObjective evaluates the preference loss name (see objective.PairNames) with parameter
// overrides on the JSON pair batch read from stdin and writes the loss, gradients and metrics as one
// JSON object. Malformed, ragged or non-finite input is an error wrapping objective.ErrBadInput.
func runPairObjective(name string, overrides map[string]string, stdin io.Reader, stdout io.Writer) error {
	o, err := objective.NewPair(name, overrides)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("read batch: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in pairInput
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("%w: pair batch JSON: %v (want chosen_logp, rejected_logp, ref_chosen_logp, ref_rejected_logp, chosen_len, rejected_len)", objective.ErrBadInput, err)
	}
	var b objective.PairBatch
	for _, f := range []struct {
		name string
		src  []*float64
		dst  *[]float64
	}{
		{"chosen_logp", in.ChosenLogP, &b.ChosenLogP}, {"rejected_logp", in.RejectedLogP, &b.RejectedLogP},
		{"ref_chosen_logp", in.RefChosenLogP, &b.RefChosenLogP}, {"ref_rejected_logp", in.RefRejectedLogP, &b.RefRejectedLogP},
		{"chosen_len", in.ChosenLen, &b.ChosenLen}, {"rejected_len", in.RejectedLen, &b.RejectedLen},
	} {
		if f.src == nil {
			continue
		}
		*f.dst = make([]float64, len(f.src))
		for k, v := range f.src {
			if v == nil {
				return fmt.Errorf("%w: %s[%d] is null: want a number", objective.ErrBadInput, f.name, k)
			}
			(*f.dst)[k] = *v
		}
	}
	res, err := o.PairLoss(&b)
	if err != nil {
		return err
	}
	out, err := json.Marshal(pairOutput{res.Loss, res.GradChosenLogP, res.GradRejectedLogP, res.Metrics})
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
