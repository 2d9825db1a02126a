package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func runObjectiveCLI(t *testing.T, stdin string, args ...string) (int, objectiveOutput, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"objective"}, args...), strings.NewReader(stdin), &out, &errb)
	var res objectiveOutput
	if code != 0 {
		return code, res, errb.String()
	}
	if args[0] == "--list" || args[0] == "--help" {
		return code, res, out.String() + errb.String()
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	return code, res, errb.String()
}

func TestObjectiveCLIGRPO(t *testing.T) {
	// GRPO on r = [1,0,0,0] with rows of lengths 1..4, on-policy, no KL: SMTM gives
	// grad[i][t] = -A_i/(4·L_i), A = (r - 0.25)/(0.5 + 1e-6).
	in := `{"logp":[[-1,0,0,0],[-1,-1,0,0],[-1,-1,-1,0],[-1,-1,-1,-1]],
	        "old_logp":[[-1,0,0,0],[-1,-1,0,0],[-1,-1,-1,0],[-1,-1,-1,-1]],
	        "mask":[[1,0,0,0],[1,1,0,0],[1,1,1,0],[1,1,1,1]],
	        "rewards":[1,0,0,0],"group":[7,7,7,7]}`
	code, res, stderr := runObjectiveCLI(t, in, "--algo", "grpo", "--set", "beta=0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for i := range 4 {
		a := -0.25 / (0.5 + 1e-6)
		if i == 0 {
			a = 0.75 / (0.5 + 1e-6)
		}
		for j := 0; j <= i; j++ {
			if want := -a / (4 * float64(i+1)); math.Abs(res.GradLogP[i][j]-want) > 1e-12 {
				t.Errorf("grad[%d][%d] = %g, want %g", i, j, res.GradLogP[i][j], want)
			}
		}
		if math.Abs(res.Advantages[i][0]-a) > 1e-12 {
			t.Errorf("advantage[%d] = %g, want %g", i, res.Advantages[i][0], a)
		}
	}
	if res.Metrics["ratio_mean"] != 1 || res.Metrics["tokens"] != 10 {
		t.Errorf("metrics %v", res.Metrics)
	}
}

func TestObjectiveCLIFilterAndAdvantages(t *testing.T) {
	// dapo drops the all-equal group 1: its rows get zero gradient and N_tok counts group 0 only.
	in := `{"logp":[[-1,-1],[-1,-1],[-1,-1],[-1,-1]],"old_logp":[[-1,-1],[-1,-1],[-1,-1],[-1,-1]],
	        "mask":[[1,1],[1,1],[1,1],[1,1]],"rewards":[1,0,1,1],"group":[0,0,1,1]}`
	code, res, stderr := runObjectiveCLI(t, in, "--algo", "dapo")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	a := 0.5 / (math.Sqrt(0.5) + 1e-6)
	want := [][]float64{{-a / 4, -a / 4}, {a / 4, a / 4}, {0, 0}, {0, 0}}
	for i := range want {
		for j := range want[i] {
			if math.Abs(res.GradLogP[i][j]-want[i][j]) > 1e-12 {
				t.Errorf("grad[%d][%d] = %g, want %g", i, j, res.GradLogP[i][j], want[i][j])
			}
		}
	}
	if res.Metrics["select_dropped_groups"] != 1 {
		t.Errorf("metrics %v", res.Metrics)
	}
	// Given advantages bypass the estimator and the filters: token-mean over 2 tokens.
	in = `{"logp":[[-1,-1]],"old_logp":[[-1,-1]],"mask":[[1,1]],"advantages":[[2,-4]]}`
	code, res, stderr = runObjectiveCLI(t, in, "--algo", "dapo")
	if code != 0 || res.GradLogP[0][0] != -1 || res.GradLogP[0][1] != 2 {
		t.Errorf("exit %d %s grads %v, want [-1 2]", code, stderr, res.GradLogP)
	}
	// proxy_logp null means "filtered by the proxy" (-Inf): accepted.
	in = `{"logp":[[-1,-1]],"old_logp":[[-1,-1]],"mask":[[1,1]],"advantages":[[-1,-1]],"proxy_logp":[[null,-0.5]]}`
	if code, _, stderr := runObjectiveCLI(t, in, "--algo", "lp_reg"); code != 0 {
		t.Errorf("lp_reg with null proxy: exit %d %s", code, stderr)
	}
}

func TestObjectiveCLIErrors(t *testing.T) {
	ok := `{"logp":[[-1]],"old_logp":[[-1]],"mask":[[1]],"rewards":[1],"group":[0]}`
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"unknown algo", ok, []string{"--algo", "grpoo"}, `unknown objective "grpoo"`},
		{"unknown param", ok, []string{"--algo", "grpo", "--set", "epsilon=0.1"}, `unknown parameter "epsilon"`},
		{"bad param value", ok, []string{"--algo", "grpo", "--set", "eps_low=abc"}, `eps_low="abc"`},
		{"bad agg", ok, []string{"--algo", "grpo", "--set", "agg=mean"}, `agg="mean"`},
		{"ragged", `{"logp":[[-1,-1]],"old_logp":[[-1]],"mask":[[1]],"rewards":[1],"group":[0]}`, []string{"--algo", "grpo"}, "logp: row 0 has 2 tokens"},
		{"NaN", `{"logp":[[NaN]],"old_logp":[[-1]],"mask":[[1]]}`, []string{"--algo", "grpo"}, "invalid JSON"},
		{"null", `{"logp":[[null]],"old_logp":[[-1]],"mask":[[1]],"rewards":[1],"group":[0]}`, []string{"--algo", "grpo"}, "logp[0][0] is null"},
		{"unknown field", `{"logp":[[-1]],"old_logp":[[-1]],"mask":[[1]],"rewardz":[1]}`, []string{"--algo", "grpo"}, `unknown field "rewardz"`},
		{"missing rewards", `{"logp":[[-1]],"old_logp":[[-1]],"mask":[[1]],"group":[0]}`, []string{"--algo", "grpo"}, "rewards: missing"},
		{"missing ref", ok, []string{"--algo", "grpo", "--set", "beta=0.1"}, "ref_logp: missing"},
		{"bad mask", `{"logp":[[-1]],"old_logp":[[-1]],"mask":[[0.5]],"rewards":[1],"group":[0]}`, []string{"--algo", "grpo"}, "mask[0][0] = 0.5"},
		{"no algo", ok, []string{}, "need --algo"},
		// issue 14's minor items: nulls where a number is wanted, rewards whose statistics overflow,
		// an infinite loss that JSON cannot carry; the NaN hint only where NaN or Infinity was used.
		{"null reward", `{"logp":[[-1]],"old_logp":[[-1]],"mask":[[1]],"rewards":[null],"group":[0]}`, []string{"--algo", "grpo"}, "rewards contains null"},
		{"null group", `{"logp":[[-1]],"old_logp":[[-1]],"mask":[[1]],"rewards":[1],"group":[null]}`, []string{"--algo", "grpo"}, "group contains null"},
		{"huge reward", `{"logp":[[-1],[-1]],"old_logp":[[-1],[-1]],"mask":[[1],[1]],"rewards":[1e308,-1e308],"group":[0,0]}`, []string{"--algo", "grpo"}, "rewards[0] = 1e+308"},
		{"infinite loss", `{"logp":[[-1e300]],"old_logp":[[-1]],"ref_logp":[[1e300]],"mask":[[1]],"rewards":[1],"group":[0]}`, []string{"--algo", "grpo", "--set", "beta=0.1", "--set", "kl_estimator=k2"}, "the loss is +Inf"},
		{"NaN hint", `{"logp":[[NaN]]}`, []string{"--algo", "grpo"}, "(NaN and Infinity are not JSON numbers)"},
		{"spo reward range", `{"logp":[[-1]],"old_logp":[[-1]],"mask":[[1]],"rewards":[2],"group":[0],"prompt_id":["p"]}`, []string{"--algo", "spo"}, "spo: rewards[0] = 2"},
	} {
		code, _, stderr := runObjectiveCLI(t, c.stdin, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line containing %q", c.name, code, stderr, c.want)
		}
	}
	if _, _, stderr := runObjectiveCLI(t, `{"logp": [[1,2]`, "--algo", "grpo"); strings.Contains(stderr, "NaN") {
		t.Errorf("truncated JSON: the NaN hint is not the cause: %q", stderr)
	}
}

func TestObjectiveCLIListAndHelp(t *testing.T) {
	code, _, out := runObjectiveCLI(t, "", "--list")
	if code != 0 || !strings.Contains(out, "grpo") || !strings.Contains(out, "eps_high=0.28") || !strings.Contains(out, "tau_neg=1.05") {
		t.Errorf("--list exit %d output %q", code, out)
	}
	code, _, out = runObjectiveCLI(t, "", "--help")
	if code != 0 || !strings.Contains(out, "proxy_logp") || !strings.Contains(out, "segments") {
		t.Errorf("--help exit %d output %q", code, out)
	}
}
