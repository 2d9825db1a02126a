package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/polo-rl/polo/objective"
)

// TestRunPairObjective: DPO on two pairs with margins u = 2 and u = 0 (beta 0.1) gives the spec's
// per-pair losses 0.598139 and ln 2 averaged, gradients ℓ'(u)/2 and the implicit-reward metrics.
func TestRunPairObjective(t *testing.T) {
	in := `{"chosen_logp":[-8, -5], "rejected_logp":[-12, -6], "ref_chosen_logp":[-10, -5],
		"ref_rejected_logp":[-12, -6], "chosen_len":[3, 4], "rejected_len":[5, 2]}`
	var out bytes.Buffer
	if err := runPairObjective("dpo", nil, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Loss             float64            `json:"loss"`
		GradChosenLogP   []float64          `json:"grad_chosen_logp"`
		GradRejectedLogP []float64          `json:"grad_rejected_logp"`
		Metrics          map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	l2 := math.Log1p(math.Exp(-0.2)) // spec: 0.598139
	if want := (l2 + math.Ln2) / 2; math.Abs(got.Loss-want) > 1e-12 || math.Abs(l2-0.598139) > 1e-6 {
		t.Errorf("loss %.15f, want %.15f", got.Loss, want)
	}
	d2 := -0.1 / (1 + math.Exp(0.2)) // spec: −0.045017
	wantG := []float64{d2 / 2, -0.05 / 2}
	for k := range wantG {
		if math.Abs(got.GradChosenLogP[k]-wantG[k]) > 1e-12 || math.Abs(got.GradRejectedLogP[k]+wantG[k]) > 1e-12 {
			t.Errorf("pair %d: grads %g %g, want %g %g", k, got.GradChosenLogP[k], got.GradRejectedLogP[k], wantG[k], -wantG[k])
		}
	}
	if got.Metrics["reward_margin"] != 0.1 || got.Metrics["reward_accuracy"] != 0.5 || got.Metrics["reward_chosen"] != 0.1 {
		t.Errorf("metrics %v", got.Metrics)
	}

	// ipo with its length normalisation: u = 2/3 − 0 → (2/3 − 5)² and gradient 2(2/3 − 5)/3 on chosen.
	out.Reset()
	one := `{"chosen_logp":[-8], "rejected_logp":[-12], "ref_chosen_logp":[-10], "ref_rejected_logp":[-12], "chosen_len":[3], "rejected_len":[5]}`
	if err := runPairObjective("ipo", map[string]string{"beta": "0.1"}, strings.NewReader(one), &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	c := 2.0/3 - 5
	if math.Abs(got.Loss-c*c) > 1e-12 || math.Abs(got.GradChosenLogP[0]-2*c/3) > 1e-12 {
		t.Errorf("ipo: loss %g grad %g, want %g %g", got.Loss, got.GradChosenLogP[0], c*c, 2*c/3)
	}
}

func TestRunPairObjectiveErrors(t *testing.T) {
	good := `"ref_chosen_logp":[-10], "ref_rejected_logp":[-12]`
	cases := []struct {
		name, algo, in string
		set            map[string]string
		badInput       bool
		want           string
	}{
		{"ragged", "dpo", `{"chosen_logp":[-8, -1], "rejected_logp":[-12], ` + good + `}`, nil, true, "rejected_logp has 1 values"},
		{"nan", "dpo", `{"chosen_logp":[NaN], "rejected_logp":[-12], ` + good + `}`, nil, true, "pair batch JSON"},
		{"null", "dpo", `{"chosen_logp":[null], "rejected_logp":[-12], ` + good + `}`, nil, true, "chosen_logp[0] is null"},
		{"unknown field", "dpo", `{"chosen":[1]}`, nil, true, `unknown field "chosen"`},
		{"missing", "dpo", `{"chosen_logp":[-8], "rejected_logp":[-12]}`, nil, true, "ref_chosen_logp has 0 values"},
		{"ipo needs len", "ipo", `{"chosen_logp":[-8], "rejected_logp":[-12], ` + good + `}`, nil, true, "chosen_len"},
		{"bad param", "rdpo", `{}`, map[string]string{"label_smoothing": "0.7"}, false, "label_smoothing"},
		{"unknown algo", "dpoo", `{}`, nil, false, "unknown preference loss"},
	}
	for _, c := range cases {
		err := runPairObjective(c.algo, c.set, strings.NewReader(c.in), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, objective.ErrBadInput) != c.badInput {
			t.Errorf("%s: err %v, want mention of %q (bad input %v)", c.name, err, c.want, c.badInput)
		}
	}
}
