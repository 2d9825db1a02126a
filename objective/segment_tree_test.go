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
