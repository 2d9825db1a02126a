package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuPOScoresTheLayerPolicy: during iterative_steps both old_logp and logp come from the chosen
// layer's policy (equal to model.LayerLogProbs at the response positions, not the full model's), and
// from the full model afterwards; a layer the model lacks is refused by Check with the field's name.
func TestBuPOScoresTheLayerPolicy(t *testing.T) {
	r := testRunner(t, "algo.name=bupo", "algo.set.layer=0", "algo.set.iterative_steps=1", "algo.set.apply_final_norm=true")
	b, _, _, err := r.collect("rollout", 1, r.cfg.Sampling.PromptsPerStep)
	if err != nil {
		t.Fatal(err)
	}
	ids, mask := sequences(b.prompts, b.resps, r.codec.pad)
	layerLP, _, err := r.policy.LayerLogProbs(ids, mask, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	fullLP, _, _ := r.policy.LogProbs(ids, mask)
	width := r.cfg.Sampling.MaxNewTokens
	wantLayer, wantFull := responseValues(b, layerLP, width), responseValues(b, fullLP, width)
	dist := func(a, b [][]float64) float64 {
		d := 0.0
		for i := range a {
			for j := range a[i] {
				d = math.Max(d, math.Abs(a[i][j]-b[i][j]))
			}
		}
		return d
	}
	ob, _, err := r.scoreBatch(b) // step 1
	if err != nil {
		t.Fatal(err)
	}
	if dist(ob.OldLogP, wantLayer) != 0 || dist(ob.LogP, wantLayer) != 0 || dist(wantLayer, wantFull) < 1e-3 {
		t.Errorf("step 1: old_logp off the layer policy by %v (full vs layer differ by %v)", dist(ob.OldLogP, wantLayer), dist(wantLayer, wantFull))
	}
	r.state.Step = 1 // step 2: past iterative_steps
	ob, _, err = r.scoreBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if dist(ob.OldLogP, wantFull) != 0 {
		t.Errorf("step 2: old_logp off the full policy by %v", dist(ob.OldLogP, wantFull))
	}
	cfg := smallRun(t, filepath.Join(t.TempDir(), "x"), "algo.name=bupo", "algo.set.layer=2")
	if err := Check(cfg); err == nil || !strings.Contains(err.Error(), "algo.set.layer = 2") {
		t.Errorf("layer 2 of the 2-layer tiny model: got %v", err)
	}
}
