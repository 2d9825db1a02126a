package objective

import (
	"strings"
	"testing"
)

// TestTypedParameters: typed presets list their defaults as text, decode overrides into their
// config struct, and reject bad values with the same messages as every preset.
func TestTypedParameters(t *testing.T) {
	_, defs, _ := Describe("distill")
	for k, want := range map[string]string{"kl_coef": "1", "loss": "is", "select": "all", "rho": "0.5", "seed": "0", "clip": "0.2"} {
		if defs[k] != want {
			t.Errorf("distill default %s = %q, want %q", k, defs[k], want)
		}
	}
	d := mustNew(t, "distill", map[string]string{"loss": "ppo", "seed": "7", "select": "q3_only", "kl_discount": "0.5"}).(*Distill)
	if d.LossKind != "ppo" || d.TIP.Seed != 7 || d.TIP.Rule != "q3_only" || d.KLDiscount != 0.5 || d.KLCoef != 1 {
		t.Errorf("decoded %+v", *d)
	}
	c := mustNew(t, "chord", map[string]string{"warmup": "4", "phi": "off"}).(*CHORD)
	if c.Warmup != 4 || c.Phi || c.MuPeak != 0.1 {
		t.Errorf("decoded %+v", *c)
	}
	for _, e := range []struct {
		name string
		set  map[string]string
		want string
	}{
		{"chord", map[string]string{"warmup": "1.5"}, `objective chord: parameter warmup="1.5": want an integer`},
		{"chord", map[string]string{"phi": "maybe"}, `parameter phi="maybe": want true or false`},
		{"distill", map[string]string{"loss": "mse"}, `parameter loss="mse": want one of is|ppo`},
		{"rto", map[string]string{"gamma": "abc"}, `parameter gamma="abc": want a number`},
		{"rto", map[string]string{"gama": "1"}, `objective rto: unknown parameter "gama"`},
		{"copg", map[string]string{"beta": "-1"}, `beta=-1: want a number >= 0`},
	} {
		if _, err := New(e.name, e.set); err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("%s %v: %v, want %q", e.name, e.set, err, e.want)
		}
	}
	if _, err := NewPair("ipo", map[string]string{"length_normalize": "no"}); err != nil {
		t.Error(err)
	}
	p, err := Resolve("dpo", map[string]string{"beta": "0.3"})
	if err != nil || p["beta"] != "0.3" || p["label_smoothing"] != "0" {
		t.Errorf("resolved dpo %v (%v)", p, err)
	}
}
