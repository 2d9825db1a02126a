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

// The text of a default: shortest decimal, a compact exponent for small magnitudes, and always one
// for fields tagged format:"exp" (disco's beta=1e3).
func TestFormatFloat(t *testing.T) {
	for _, c := range []struct {
		x        float64
		plain, e string
	}{{0, "0", "0"}, {1, "1", "1"}, {1000, "1000", "1e3"}, {3000, "3000", "3e3"}, {1e-6, "1e-6", "1e-6"}, {3e-4, "3e-4", "3e-4"}, {0.05, "0.05", "5e-2"}, {1e21, "1e21", "1e21"}} {
		if got := formatFloat(c.x); got != c.plain {
			t.Errorf("formatFloat(%v) = %q, want %q", c.x, got, c.plain)
		}
		if got := formatExp(c.x); got != c.e {
			t.Errorf("formatExp(%v) = %q, want %q", c.x, got, c.e)
		}
	}
	if _, p, _ := Describe("disco"); p["beta"] != "1e3" || p["delta"] != "1e-4" {
		t.Errorf("disco defaults %v, want beta=1e3 delta=1e-4", p)
	}
}
