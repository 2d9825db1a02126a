package objective

import (
	"slices"
	"testing"
)

// TestSegmentTreeConfig: variant=tree hands the trainer its branching and edge length; chain has no
// tree; malformed branchings are refused.
func TestSegmentTreeConfig(t *testing.T) {
	o, err := New("segment_spo", map[string]string{"variant": "tree", "tree_branching": "6x4,2", "tree_segment_len": "16"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, ok := o.(SegmentSampler).SegmentConfig()
	if !ok || cfg.Tree == nil || !slices.Equal(cfg.Tree.Branching, []int{6, 4, 2}) || cfg.Tree.SegmentLen != 16 {
		t.Fatalf("tree config %+v", cfg.Tree)
	}
	o, _ = New("segment_spo", nil)
	if cfg, _ := o.(SegmentSampler).SegmentConfig(); cfg.Tree != nil {
		t.Error("the default (chain) has a tree")
	}
	for _, bad := range []map[string]string{{"variant": "tree", "tree_branching": "6x0"}, {"variant": "tree", "tree_branching": "x"},
		{"variant": "tree", "tree_segment_len": "0"}, {"variant": "forest"}} {
		if _, err := New("segment_spo", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestTreeGRPOScale: the spec's example (children values [1, 0, 0.5] under a parent of value 0.5)
// through the segments the trainer builds: rloo gives [0.5, −0.5, 0]; grpo, with the parent's scale
// = std 0.5 + 1e-8, gives [1, −1, 0] as TreeAdvantages.
func TestTreeGRPOScale(t *testing.T) {
	want, _ := TreeAdvantages([]float64{1, 0, 0.5}, "grpo")
	for k, r := range []float64{1, 0, 0.5} {
		for _, c := range []struct {
			scale, want float64
		}{{0, r - 0.5}, {0.5 + 1e-8, want[k]}} {
			adv, err := SegmentAdvantages([]Segment{{End: -1, Value: 0.5, Scale: c.scale}}, []float64{1, 1}, r)
			if err != nil || !near(adv[0], c.want, 1e-12) || !near(adv[1], c.want, 1e-12) {
				t.Errorf("child %d scale %v: %v (%v), want %v", k, c.scale, adv, err, c.want)
			}
		}
	}
	if !near(want[0], 1, 1e-7) || !near(want[1], -1, 1e-7) || want[2] != 0 {
		t.Errorf("TreeAdvantages grpo %v, want [1 -1 0]", want)
	}
	if _, err := SegmentAdvantages([]Segment{{End: -1, Value: 0.5, Scale: -1}}, []float64{1}, 1); err == nil {
		t.Error("negative scale accepted")
	}
}
