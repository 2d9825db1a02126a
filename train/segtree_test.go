package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestSegmentTreeMatchesEnumeration: SPO-tree with branching 3×200 and one-token first edges on the
// tiny model. Each first-level node's value (the mean reward of its 200 leaves) agrees with the
// exact expected reward of its prefix by enumerating every continuation on the tiny vocabulary;
// the root's value is the mean of its children's; the objective's advantages equal a brute-force
// recomputation from the leaves' rewards (V(child) − V(parent) per edge, zero where p_old > 0.9);
// the shared first edge is trained in one row only; and the sampling saved by sharing is logged.
func TestSegmentTreeMatchesEnumeration(t *testing.T) {
	const k = 200
	r := testRunner(t, "algo.name=segment_spo", "algo.set.variant=tree", "algo.set.tree_branching=3x200", "algo.set.tree_segment_len=1",
		"reward.verifier=format", `reward.options={pattern: "[0-4]"}`)
	b, _, _, err := r.collect("rollout", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	ob, _, err := r.scoreBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.prepare(ob); err != nil {
		t.Fatal(err)
	}
	// Brute force: rows by first-level node (identified by the tree), values from the rewards only.
	byNode := map[int][]int{}
	var order []int
	for i, row := range b.tree {
		n := row.path[0]
		if _, ok := byNode[n]; !ok {
			order = append(order, n)
		}
		byNode[n] = append(byNode[n], i)
	}
	if len(order) != 3 {
		t.Fatalf("%d first-level nodes, want 3", len(order))
	}
	meanReward := func(rows []int) float64 {
		s := 0.0
		for _, i := range rows {
			s += b.rewards[i]
		}
		return s / float64(len(rows))
	}
	nodes := b.tree[0].tree.nodes
	var rootV float64
	for _, n := range order {
		v := meanReward(byNode[n])
		rootV += v / 3
		if nodes[n].value != v {
			t.Errorf("node %d: value %v, mean of its leaves %v", n, nodes[n].value, v)
		}
		if len(byNode[n]) == 1 && len(b.tree[byNode[n][0]].path) == 1 {
			continue // the first token stopped: a leaf at depth 1
		}
		if len(byNode[n]) != k {
			t.Fatalf("node %d has %d leaves, want %d", n, len(byNode[n]), k)
		}
		prefix := nodes[n].toks
		exact := exactValue(t, r, byNode[n][0], b, prefix, r.cfg.Sampling.MaxNewTokens-len(prefix))
		se := math.Sqrt(math.Max(exact*(1-exact), 0.01) / k)
		t.Logf("node after %v: tree value %.4f, exact %.4f (±%.4f)", prefix, v, exact, 4*se)
		if math.Abs(v-exact) > 4*se {
			t.Errorf("node after %v: tree value %.4f, exact %.4f", prefix, v, exact)
		}
	}
	root := nodes[nodes[order[0]].parent]
	if math.Abs(root.value-rootV) > 1e-12 {
		t.Errorf("root value %v, mean of its children %v", root.value, rootV)
	}
	worst := 0.0
	for i := range b.rows() {
		n := b.tree[i].path[0]
		v1 := meanReward(byNode[n])
		for j := range b.resps[i] {
			want := b.rewards[i] - v1 // the leaf's own edge
			if j == 0 {
				want = v1 - rootV // the shared first edge
			}
			if len(b.tree[i].path) == 1 {
				want = b.rewards[i] - rootV
			}
			if math.Exp(ob.OldLogP[i][j]) > 0.9 {
				want = 0
			}
			worst = math.Max(worst, math.Abs(ob.Advantages[i][j]-want))
		}
	}
	t.Logf("%d leaves: max |advantage − brute force| = %.3g", b.rows(), worst)
	if worst > 1e-12 {
		t.Errorf("advantages off the brute force by %.3g", worst)
	}
	// Each first edge in one row's loss mask (zero-advantage edges in none).
	applyTreeMask(b, ob)
	for _, n := range order {
		trained := 0
		for _, i := range byNode[n] {
			if ob.Mask[i][0] != 0 {
				trained++
			}
		}
		want := 1
		if nodes[n].value == rootV {
			want = 0 // zero advantage: dropped
		}
		if trained != want {
			t.Errorf("node %d's edge trained in %d rows, want %d", n, trained, want)
		}
	}
	vals := map[string]float64{}
	r.segmentMetrics(vals)
	t.Logf("sampling: %v", vals)
	if vals["segment_tree_leaves"] != float64(b.rows()) || !(vals["segment_tree_tokens"] < vals["segment_tree_path_tokens"]) ||
		vals["segment_tree_path_tokens"]-vals["segment_tree_tokens"] != float64(b.rows()-3) {
		t.Errorf("tree sampling logged as %v: want the %d shared first tokens sampled 3 times, not once per leaf", vals, b.rows())
	}
}

// TestSegmentTreeTrains: two RL steps of SPO-tree (2×2×free) through polo train: rows are the
// leaves, the extra sampling is logged, and the policy moves.
func TestSegmentTreeTrains(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small run")
	}
	cfg := smallRun(t, filepath.Join(t.TempDir(), "tree"), "algo.name=segment_spo", "algo.set.variant=tree", "algo.set.tree_branching=2x2x2",
		"algo.set.tree_segment_len=1", "sft.steps=2", "rl.steps=2", "task.test_size=8", "sampling.prompts_per_step=4",
		"reward.verifier=format", `reward.options={pattern: "[0-4]"}`) // rewards that vary within a tree
	if _, err := Run(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	leaves, tokens, paths := rlSeries(t, cfg.RunDir, "segment_tree_leaves"), rlSeries(t, cfg.RunDir, "segment_tree_tokens"), rlSeries(t, cfg.RunDir, "segment_tree_path_tokens")
	rows, grad := rlSeries(t, cfg.RunDir, "rows_sampled"), rlSeries(t, cfg.RunDir, "grad_norm")
	t.Logf("leaves %v, tokens sampled %v vs %v for independent leaves, grad norm %v", leaves, tokens, paths, grad)
	for s := range 2 {
		if leaves[s] < 4 || leaves[s] > 32 || rows[s] != leaves[s] || !(tokens[s] < paths[s]) {
			t.Errorf("step %d: %v leaves, %v rows, %v tokens vs %v", s+1, leaves[s], rows[s], tokens[s], paths[s])
		}
	}
	if !(grad[0] > 0) && !(grad[1] > 0) {
		t.Errorf("no gradient in two steps")
	}
}

// TestSegmentTreeResumeBitIdentical: the tree's sampling is seeded by (seed, level, step), so a run
// resumed from its step-2 checkpoint repeats steps 3 and 4 exactly (metrics and weights).
func TestSegmentTreeResumeBitIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("trains small runs")
	}
	root := t.TempDir()
	whole := smallRun(t, filepath.Join(root, "whole"), "algo.name=segment_spo", "algo.set.variant=tree", "algo.set.tree_branching=2x2x2",
		"algo.set.tree_segment_len=1", "sft.steps=2", "rl.steps=4", "checkpoint.every=2", "checkpoint.keep=3", "task.test_size=8",
		"sampling.prompts_per_step=4", "reward.verifier=format", `reward.options={pattern: "[0-4]"}`)
	if _, err := Run(whole, Options{}); err != nil {
		t.Fatal(err)
	}
	want := comparableMetrics(t, whole.RunDir)
	dir := filepath.Join(root, "resumed")
	if err := os.CopyFS(dir, os.DirFS(whole.RunDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "checkpoints", "rl-000004"))
	os.WriteFile(filepath.Join(dir, "checkpoints", "latest"), []byte("rl-000002\n"), 0o644)
	if _, err := Resume(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	sameMetrics(t, want, comparableMetrics(t, dir))
	a, _ := os.ReadFile(filepath.Join(whole.RunDir, "checkpoints", "rl-000004", "model", "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "rl-000004", "model", "model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("final weights differ after resume")
	}
}

// TestSegmentTreeGRPOMode: with tree_adv=grpo every edge's advantage is divided by the std of its
// parent's children's values + 1e-8; checked against a brute-force recomputation from the leaves'
// rewards on a 3×20 tree.
func TestSegmentTreeGRPOMode(t *testing.T) {
	r := testRunner(t, "algo.name=segment_spo", "algo.set.variant=tree", "algo.set.tree_branching=3x20", "algo.set.tree_segment_len=1",
		"algo.set.tree_adv=grpo", "reward.verifier=format", `reward.options={pattern: "[0-4]"}`)
	b, _, _, err := r.collect("rollout", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	ob, _, err := r.scoreBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.prepare(ob); err != nil {
		t.Fatal(err)
	}
	byNode := map[int][]float64{}
	var order []int
	for i, row := range b.tree {
		n := row.path[0]
		if _, ok := byNode[n]; !ok {
			order = append(order, n)
		}
		byNode[n] = append(byNode[n], b.rewards[i])
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	sd := func(xs []float64) float64 {
		if len(xs) < 2 {
			return 0
		}
		m, s := mean(xs), 0.0
		for _, x := range xs {
			s += (x - m) * (x - m)
		}
		return math.Sqrt(s / float64(len(xs)-1))
	}
	var first []float64
	for _, n := range order {
		first = append(first, mean(byNode[n]))
	}
	rootV, rootS := mean(first), sd(first)+1e-8
	worst, nonzero := 0.0, 0
	for i := range b.rows() {
		n := b.tree[i].path[0]
		v1, s1 := mean(byNode[n]), sd(byNode[n])+1e-8
		for j := range b.resps[i] {
			want := (b.rewards[i] - v1) / s1
			if j == 0 {
				want = (v1 - rootV) / rootS
			}
			if len(b.tree[i].path) == 1 {
				want = (b.rewards[i] - rootV) / rootS
			}
			if math.Exp(ob.OldLogP[i][j]) > 0.9 {
				want = 0
			}
			if want != 0 {
				nonzero++
			}
			worst = math.Max(worst, math.Abs(ob.Advantages[i][j]-want)/math.Max(1, math.Abs(want)))
		}
	}
	t.Logf("%d leaves, %d non-zero advantages: max relative |advantage − brute force| = %.3g", b.rows(), nonzero, worst)
	if worst > 1e-9 || nonzero == 0 {
		t.Errorf("grpo-mode advantages off the brute force by %.3g (%d non-zero)", worst, nonzero)
	}
}
