package train

import (
	"io"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/polo-rl/polo/objective"
)

// testRunner is a set-up runner (policy, objective, prompts) for tests that call trainer pieces
// directly, without the SFT or RL loop.
func testRunner(t *testing.T, sets ...string) *runner {
	t.Helper()
	cfg := smallRun(t, filepath.Join(t.TempDir(), "run"), append([]string{"log.progress=false"}, sets...)...)
	r := &runner{cfg: cfg, opts: Options{Log: io.Discard}, dir: cfg.RunDir, ckptDir: filepath.Join(cfg.RunDir, "checkpoints"), start: time.Now()}
	if err := r.setup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.log.Close() })
	return r
}

// logSoftmax64 is log softmax(x/temp) in float64.
func logSoftmax64(x []float32, temp float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v)/temp)
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(float64(v)/temp - mx)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)/temp - mx - math.Log(s)
	}
	return out
}

// TestDistInputsMatchFullLogits: the proxy_logp (lp_reg) and target_ratio / mean_entropy (dcpo) the
// trainer puts in the objective batch equal a float64 computation from the policy's full logits at
// the response positions; and each input changes what the objective computes (lp_reg's loss with
// and without the proxy, dcpo's advantages with q and with q = 0).
func TestDistInputsMatchFullLogits(t *testing.T) {
	for _, c := range []struct {
		name string
		sets []string
	}{
		{"lp_reg", []string{"algo.name=lp_reg", "algo.set.rho_neg=0.5", "algo.set.kappa=0.3"}},
		{"dcpo", []string{"algo.name=dcpo"}},
		{"oblr", []string{"algo.name=oblr"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := testRunner(t, c.sets...)
			b, _, _, err := r.collect("rollout", 1, r.cfg.Sampling.PromptsPerStep)
			if err != nil {
				t.Fatal(err)
			}
			ob, _, err := r.scoreBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			ids, mask := sequences(b.prompts, b.resps, r.codec.pad)
			logits, err := r.policy.Logits(ids, mask)
			if err != nil {
				t.Fatal(err)
			}
			dc := r.obj.(objective.DistInputs).DistConfig()
			gw := make([]float64, len(b.resps)) // oblr: Σ_t 1 − 2p(o_t) + Σ_v p(v)²
			// π_old's mean entropy over response tokens, then the target temperature it selects.
			var hSum, n float64
			for i := range b.resps {
				for j := range b.resps[i] {
					ls := logSoftmax64(logits[i][len(b.prompts[i])-1+j], 1)
					for _, l := range ls {
						hSum -= math.Exp(l) * l
					}
					n++
				}
			}
			meanH := hSum / n
			temp := 0.0
			if dc.TargetTemperature != nil {
				temp = dc.TargetTemperature(meanH)
				if math.Abs(ob.MeanEntropy-meanH) > 1e-5 {
					t.Errorf("mean_entropy %v, float64 %v", ob.MeanEntropy, meanH)
				}
			}
			worst, filtered := 0.0, 0
			for i := range b.resps {
				for j, tok := range b.resps[i] {
					row := logits[i][len(b.prompts[i])-1+j]
					ls := logSoftmax64(row, 1)
					p := make([]float64, len(ls))
					for v, l := range ls {
						p[v] = math.Exp(l)
					}
					if ob.ProxyLogP != nil {
						want := objective.MinPProxyLogP(p, int(tok), dc.MinPKappa, dc.MinPFixed)
						got := ob.ProxyLogP[i][j]
						if math.IsInf(want, -1) {
							filtered++
							if !math.IsInf(got, -1) {
								t.Errorf("proxy [%d][%d] = %v, want -Inf", i, j, got)
							}
						} else {
							worst = math.Max(worst, math.Abs(got-want))
						}
					}
					sq := 0.0
					for _, pv := range p {
						sq += pv * pv
					}
					gw[i] += 1 - 2*p[tok] + sq
					if ob.TargetRatio != nil {
						want := math.Exp(logSoftmax64(row, temp)[tok] - ls[tok])
						worst = math.Max(worst, math.Abs(ob.TargetRatio[i][j]-want)/want)
					}
				}
			}
			if ob.GradWeight != nil {
				for i := range gw {
					worst = math.Max(worst, math.Abs(ob.GradWeight[i]-gw[i])/gw[i])
				}
			}
			t.Logf("%s: %d tokens, %d filtered by the proxy, target T %v (mean H %.4f), max deviation %.3g", c.name, int(n), filtered, temp, meanH, worst)
			if worst > 1e-4 {
				t.Errorf("max deviation from float64 %.3g", worst)
			}
			switch c.name {
			case "lp_reg":
				if filtered == 0 || filtered == int(n) {
					t.Errorf("kappa 0.3 filtered %d of %d tokens: want some but not all", filtered, int(n))
				}
				// Effect: the same batch with every token filtered out of the proxy (nothing regularised).
				// One correct response per group gives the others negative advantages.
				for i := range ob.Rewards {
					if i%r.cfg.Sampling.GroupSize == 0 {
						ob.Rewards[i] = 1
					}
				}
				if _, _, err := r.prepare(ob); err != nil {
					t.Fatal(err)
				}
				with, err := r.obj.Loss(ob)
				if err != nil {
					t.Fatal(err)
				}
				none := *ob
				none.ProxyLogP = make([][]float64, len(ob.ProxyLogP))
				for i, row := range ob.ProxyLogP {
					none.ProxyLogP[i] = make([]float64, len(row))
					for j := range row {
						none.ProxyLogP[i][j] = math.Inf(-1)
					}
				}
				without, err := r.obj.Loss(&none)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("lp_reg loss with the proxy %.6g, without %.6g", with.Loss, without.Loss)
				if with.Loss == without.Loss {
					t.Error("proxy_logp did not change the loss")
				}
			case "oblr":
				if ob.GradWeight == nil {
					t.Fatal("no grad_weight")
				}
				// Effect: weighted baselines differ from the plain group mean when the weights differ.
				for i := range ob.Rewards {
					ob.Rewards[i] = float64(i % 3 % 2)
				}
				adv, err := r.obj.Advantages(ob)
				if err != nil {
					t.Fatal(err)
				}
				flat := *ob
				flat.GradWeight = make([]float64, len(ob.GradWeight))
				for i := range flat.GradWeight {
					flat.GradWeight[i] = 1
				}
				adv1, err := r.obj.Advantages(&flat)
				if err != nil {
					t.Fatal(err)
				}
				diff := 0.0
				for i := range adv {
					diff = math.Max(diff, math.Abs(adv[i][0]-adv1[i][0]))
				}
				t.Logf("oblr: max |A(grad_weight) - A(uniform)| = %.4g", diff)
				if diff == 0 {
					t.Error("grad_weight did not change the advantages")
				}
			case "dcpo":
				ob.Rewards[0] = 1 // one correct response, so that alpha > 0
				adv, err := r.obj.Advantages(ob)
				if err != nil {
					t.Fatal(err)
				}
				zero := *ob
				zero.TargetRatio = make([][]float64, len(ob.TargetRatio))
				for i, row := range ob.TargetRatio {
					zero.TargetRatio[i] = make([]float64, len(row))
				}
				adv0, err := r.obj.Advantages(&zero)
				if err != nil {
					t.Fatal(err)
				}
				if adv[0][0] == adv0[0][0] {
					t.Errorf("target_ratio did not change the advantage of the correct row: %v", adv[0][0])
				}
			}
		})
	}
}
