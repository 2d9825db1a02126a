package lynx

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Spec C3 examples.
func TestConformalThresholdSpec(t *testing.T) {
	neg := []float64{0.4, 0.05, 0.6, 0.1, 0.2, 0.35, 0.3, 0.5, 0.7} // unsorted on purpose
	for _, c := range []struct{ alpha, want float64 }{{0.1, 0.7}, {0.2, 0.6}, {0.05, math.Inf(1)}} {
		got, err := ConformalThreshold(neg, c.alpha)
		if err != nil || got != c.want {
			t.Errorf("α = %v: λ = %v (%v), want %v", c.alpha, got, err, c.want)
		}
	}
	if _, err := ConformalThreshold(neg, 1); err == nil {
		t.Error("α = 1 accepted")
	}
}

// Coverage on held-out draws: calibrate on 1000 exchangeable negative scores; the exceedance rate
// over 10^5 new negatives is at most α plus 3 standard errors of the calibration draw and of the
// test draw (the spec's bound omits the first, which alone is ±0.007 at α = 0.05 and fails about
// half the time); averaged over 200 calibrations it is at most α (the guarantee is marginal).
func TestConformalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	laws := map[string]func() float64{
		"uniform":  rng.Float64,
		"beta-ish": func() float64 { u := rng.Float64(); return u * u * u },
	}
	for name, draw := range laws {
		for _, alpha := range []float64{0.05, 0.1, 0.2} {
			calib := make([]float64, 1000)
			for i := range calib {
				calib[i] = draw()
			}
			lam, _ := ConformalThreshold(calib, alpha)
			const N = 100000
			exceed := 0
			for range N {
				if draw() > lam {
					exceed++
				}
			}
			rate := float64(exceed) / N
			if rate > alpha+3*math.Sqrt(alpha*(1-alpha)/1000)+3*math.Sqrt(alpha*(1-alpha)/N) {
				t.Errorf("%s α=%v: premature-exit rate %v", name, alpha, rate)
			}
			// Marginal: mean over many calibrations, each tested on 2000 draws.
			var mean float64
			for range 200 {
				for i := range calib {
					calib[i] = draw()
				}
				lam, _ := ConformalThreshold(calib, alpha)
				n := 0
				for range 2000 {
					if draw() > lam {
						n++
					}
				}
				mean += float64(n) / 2000 / 200
			}
			if mean > alpha+3*math.Sqrt(alpha*(1-alpha)/(2000*200)) {
				t.Errorf("%s α=%v: mean premature-exit rate %v", name, alpha, mean)
			}
		}
	}
}

// scripted is a fake model: after the prompt it writes the trace 4 | 5 | 6 # 7 EOS (tokens
// 4,1,5,1,6,2,7,3); after a marker it answers 7 if at least 4 reasoning tokens came before it,
// else 9. Its 1-dim "hidden state" is the number of generated tokens.
type scripted struct{ promptLen int }

var script = []int32{4, 1, 5, 1, 6, 2, 7, 3}

func (s scripted) LogitsHidden(ids, mask [][]int32) ([][][]float32, [][][]float32, error) {
	lg := make([][][]float32, len(ids))
	hd := make([][][]float32, len(ids))
	for i, row := range ids {
		n := 0
		for _, m := range mask[i] {
			n += int(m)
		}
		lg[i] = make([][]float32, len(row))
		hd[i] = make([][]float32, len(row))
		for p := range row {
			gen := row[s.promptLen:max(p+1, s.promptLen)]
			z := make([]float32, 10)
			next := int32(3)
			if k := slices.Index(gen, 2); k >= 0 {
				switch {
				case k == len(gen)-1 && k >= 4:
					next = 7
				case k == len(gen)-1:
					next = 9
				}
			} else if len(gen) < len(script) {
				next = script[len(gen)]
			}
			z[next] = 1
			lg[i][p] = z
			hd[i][p] = []float32{float32(len(gen))}
		}
		_ = n
	}
	return lg, hd, nil
}

func TestDecodeAndForcedExits(t *testing.T) {
	m := scripted{promptLen: 1}
	prompts := [][]int32{{0}}
	e := Exit{Cues: []int32{1}, Marker: []int32{2}, Stop: []int32{3}, MaxNew: 20, MaxAnswer: 3}
	full, err := Decode(m, prompts, e)
	if err != nil || !slices.Equal(full[0].Tokens, script) || full[0].ExitAt != -1 {
		t.Fatalf("full trace %v (%v)", full, err)
	}
	correct := func(_ int, resp []int32) bool {
		k := slices.Index(resp, 2)
		return k >= 0 && k+1 < len(resp) && resp[k+1] == 7
	}
	cues, err := ForcedExits(m, prompts, full, e, correct)
	if err != nil || len(cues) != 2 {
		t.Fatalf("cues %+v (%v)", cues, err)
	}
	if cues[0].Pos != 2 || cues[0].Label || cues[1].Pos != 4 || !cues[1].Label || cues[1].Hidden[0] != 4 {
		t.Fatalf("cues %+v: want an unsafe exit at 2 and a safe one at 4", cues)
	}
	// Exit when the feature (tokens so far) exceeds 3: at the second cue.
	e.Score, e.Lambda = func(h []float32) float64 { return float64(h[0]) }, 3
	got, err := Decode(m, prompts, e)
	if err != nil || !slices.Equal(got[0].Tokens, []int32{4, 1, 5, 1, 2, 7, 3}) || got[0].ExitAt != 4 {
		t.Fatalf("early exit: %+v (%v)", got, err)
	}
	// A probe trained on the two cues ranks the safe one higher.
	p, err := TrainProbe(cues, cues, 1)
	if err != nil || p.Head.Predict(cues[1].Hidden) <= p.Head.Predict(cues[0].Hidden) || len(p.CalibNeg) != 1 ||
		len(p.CalibTrace) != 1 || p.CalibTrace[0] != p.CalibNeg[0] {
		t.Fatalf("probe %+v (%v)", p, err)
	}
}
