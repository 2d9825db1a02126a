package model

import (
	"math"
	"testing"
)

// refDist computes, in float64 from one row of full logits, the target's log-prob, its log-prob under
// the min-p proxy (kappa relative to max p, or fixed) and under softmax(logits/temp).
func refDist(logits []float32, target int, kappa float64, fixed bool, temp float64) (logp, proxy, tempLogp float64) {
	lse := func(scale float64) float64 {
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, float64(v)/scale)
		}
		s := 0.0
		for _, v := range logits {
			s += math.Exp(float64(v)/scale - mx)
		}
		return mx + math.Log(s)
	}
	z := lse(1)
	logp = float64(logits[target]) - z
	thr, pmax := kappa, 0.0
	for _, v := range logits {
		pmax = math.Max(pmax, math.Exp(float64(v)-z))
	}
	if !fixed {
		thr = kappa * pmax
	}
	kept := 0.0
	for _, v := range logits {
		if p := math.Exp(float64(v) - z); p >= thr {
			kept += p
		}
	}
	proxy = math.Inf(-1)
	if math.Exp(logp) >= thr {
		proxy = logp - math.Log(kept)
	}
	return logp, proxy, float64(logits[target])/temp - lse(temp)
}

// TestDistStatsMatchFullLogits: the in-graph min-p proxy log-probs and temperature log-probs equal a
// float64 computation from the full logits of the llama fixture (padding included), for the relative
// and the fixed threshold, with kappas that filter some targets out.
func TestDistStatsMatchFullLogits(t *testing.T) {
	m, err := Load(fixtureDir("llama"))
	if err != nil {
		t.Fatal(err)
	}
	ids := [][]int32{{12, 40, 7, 99, 250, 3, 18, 5}, {0, 0, 1, 2, 3, 4, 5, 6}}
	mask := [][]int32{{1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1, 1}}
	logits, err := m.Logits(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kappa float64
		fixed bool
		temp  float64
	}{{0.02, false, 1.2}, {0.5, false, 0.8}, {0.004, true, 1.5}} {
		got, err := m.DistStats(ids, mask, DistOptions{MinPKappa: c.kappa, MinPFixed: c.fixed, Temperatures: []float64{c.temp, 1 / c.temp}, SumSqProb: true})
		if err != nil {
			t.Fatal(err)
		}
		worst, filtered, n := 0.0, 0, 0
		for i := range ids {
			for j := 0; j+1 < len(ids[i]); j++ {
				if mask[i][j] == 0 {
					if got.ProxyLogP[i][j] != 0 || got.TempLogP[0][i][j] != 0 {
						t.Errorf("padding [%d][%d] not zero", i, j)
					}
					continue
				}
				lp, proxy, tl := refDist(logits[i][j], int(ids[i][j+1]), c.kappa, c.fixed, c.temp)
				_, _, tl2 := refDist(logits[i][j], int(ids[i][j+1]), c.kappa, c.fixed, 1/c.temp)
				sq := 0.0
				for v := range logits[i][j] {
					_, _, lv := refDist(logits[i][j], v, 0, false, 1)
					sq += math.Exp(2 * lv)
				}
				worst = math.Max(worst, math.Abs(float64(got.SumSqProb[i][j])-sq))
				n++
				if math.IsInf(proxy, -1) {
					filtered++
					if !math.IsInf(float64(got.ProxyLogP[i][j]), -1) {
						t.Errorf("kappa %v: [%d][%d] proxy %v, want -Inf (filtered)", c.kappa, i, j, got.ProxyLogP[i][j])
					}
				} else {
					worst = math.Max(worst, math.Abs(float64(got.ProxyLogP[i][j])-proxy))
				}
				worst = math.Max(worst, math.Abs(float64(got.LogP[i][j])-lp))
				worst = math.Max(worst, math.Abs(float64(got.TempLogP[0][i][j])-tl))
				worst = math.Max(worst, math.Abs(float64(got.TempLogP[1][i][j])-tl2))
			}
		}
		t.Logf("kappa %v fixed %v T %v: %d/%d targets filtered, max |graph - float64| = %.3g", c.kappa, c.fixed, c.temp, filtered, n, worst)
		if worst > 2e-5 {
			t.Errorf("kappa %v: max deviation %.3g", c.kappa, worst)
		}
		if c.kappa == 0.5 && filtered == 0 {
			t.Errorf("kappa 0.5 should filter some targets out")
		}
		if c.kappa == 0.02 && filtered == n {
			t.Errorf("kappa 0.02 should keep some targets")
		}
	}
	if _, err := m.DistStats(ids, mask, DistOptions{MinPKappa: 1.5}); err == nil {
		t.Error("kappa 1.5 must be refused")
	}
	if _, err := m.DistStats(ids, mask, DistOptions{Temperatures: []float64{1, 2, 3}}); err == nil {
		t.Error("three temperatures must be refused")
	}
}
