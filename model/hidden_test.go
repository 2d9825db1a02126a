package model

import (
	"math"
	"testing"
)

// LogitsHidden's logits equal Logits; its hidden state is the final RMSNorm of HiddenAt(NumLayers);
// projecting it with the (tied) embedding gives the logits.
func TestHiddenStates(t *testing.T) {
	cfg, err := Preset("tiny", 13)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	ids := [][]int32{{1, 4, 7, 2, 0}, {3, 3, 9, 0, 0}}
	mask := [][]int32{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}
	lg, hid, err := m.LogitsHidden(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := m.Logits(ids, mask)
	raw, err := m.HiddenAt(ids, mask, cfg.NumLayers)
	if err != nil {
		t.Fatal(err)
	}
	norm, _, _ := m.Weights("model.norm.weight")
	emb, _, _ := m.Weights("model.embed_tokens.weight")
	D := cfg.HiddenSize
	for b := range ids {
		for p := range ids[b] {
			if mask[b][p] == 0 {
				continue
			}
			var ss float64
			for _, x := range raw[b][p] {
				ss += float64(x) * float64(x)
			}
			r := 1 / math.Sqrt(ss/float64(D)+cfg.RMSNormEps)
			for j := range D {
				if want := float64(raw[b][p][j]) * r * float64(norm[j]); math.Abs(want-float64(hid[b][p][j])) > 1e-4 {
					t.Fatalf("[%d][%d][%d]: hidden %v, norm of HiddenAt %v", b, p, j, hid[b][p][j], want)
				}
			}
			for v := range cfg.VocabSize {
				var dot float64
				for j := range D {
					dot += float64(hid[b][p][j]) * float64(emb[v*D+j])
				}
				if math.Abs(dot-float64(lg[b][p][v])) > 1e-4 || lg[b][p][v] != ref[b][p][v] {
					t.Fatalf("[%d][%d] logit %d: %v, h·e %v, Logits %v", b, p, v, lg[b][p][v], dot, ref[b][p][v])
				}
			}
		}
	}
	if _, err := m.HiddenAt(ids, mask, cfg.NumLayers+1); err == nil {
		t.Fatal("layer past the last accepted")
	}
	h0, _ := m.HiddenAt(ids, mask, 0)
	if h0[0][1][3] != emb[4*D+3] {
		t.Fatalf("layer 0 is not the embedding: %v vs %v", h0[0][1][3], emb[4*D+3])
	}
}
