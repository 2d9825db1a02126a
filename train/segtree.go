package train

import (
	"fmt"
	"math"
	"time"

	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/rollout"
	"github.com/polo-rl/polo/task"
)

// This file samples SPO-tree (segment_spo with variant=tree; spec objectives §16.2): per prompt, a
// tree instead of a group. The root is the prompt; each node at depth d gets Branching[d] children,
// continuations of at most SegmentLen tokens, except at the last level, which generates to the
// response budget. A child that stops (EOS, or the budget) is a leaf. Every leaf is one row (the
// whole root-to-leaf response), so leaves share the tokens of their common ancestors: those are
// sampled once. Leaf value = its reward; node value V = mean of its children's values; the edge
// into node n has advantage V(n) − V(parent) (rloo mode; grpo mode divides by the std of the
// parent's children's values + 1e-8) — as segment_spo's chain segments with cutpoints at the tree's
// nodes (and objective.Segment.Scale), so the objective is unchanged (input segments). Each edge is
// trained once: its tokens are in the loss mask only of the first leaf below it, and edges with
// zero advantage are dropped (their tokens leave the mask).

// treeNode is one node of a sampled tree; the root has parent -1 and no tokens.
type treeNode struct {
	prompt   int
	parent   int
	depth    int
	toks     []int32   // the response so far (root to this node)
	lps      []float32 // the sampler's model log-probs of toks
	finish   string    // "" while it can be expanded, else the completion's finish reason
	children []int
	value    float64
	owner    int // the first leaf row below (DFS order)
}

// treeRow is a leaf row's place in its tree: the nodes from the root's first child to the leaf.
type treeRow struct {
	path []int
	own  []bool // per path node: this row is the first leaf below it (it trains the edge)
	tree *sampledTree
}

// sampledTree holds one step's trees (all prompts).
type sampledTree struct {
	nodes []treeNode
}

// segmentTree returns the tree sampling settings when the objective samples trees.
func (r *runner) segmentTree() (*objective.TreeConfig, float64) {
	cfg, ok := segmentConfig(r.obj)
	if !ok || cfg.Tree == nil {
		return nil, 0
	}
	return cfg.Tree, cfg.ProbThreshold
}

// collectTree samples one tree per example and returns its leaves as a scored rollout batch.
func (r *runner) collectTree(purpose string, step int, exs []task.Example, tc *objective.TreeConfig) (*rolloutBatch, float64, float64, error) {
	t0 := time.Now()
	s := r.cfg.Sampling
	prompts := make([][]int32, len(exs))
	tr := &sampledTree{}
	var frontier []int
	for i, ex := range exs {
		p, err := r.codec.prompt(ex)
		if err != nil {
			return nil, 0, 0, err
		}
		prompts[i] = p
		tr.nodes = append(tr.nodes, treeNode{prompt: i, parent: -1})
		frontier = append(frontier, len(tr.nodes)-1)
	}
	var sampledTokens int
	for d, bd := range tc.Branching {
		if len(frontier) == 0 {
			break
		}
		last := d == len(tc.Branching)-1
		budget := s.MaxNewTokens - len(tr.nodes[frontier[0]].toks) // every open node at depth d has d·SegmentLen tokens
		maxNew := budget
		if !last {
			maxNew = min(tc.SegmentLen, budget)
		}
		var batch [][]int32
		var from []int
		for _, n := range frontier {
			nd := tr.nodes[n]
			ctx := append(append([]int32(nil), prompts[nd.prompt]...), nd.toks...)
			for range bd {
				batch, from = append(batch, ctx), append(from, n)
			}
		}
		rows := len(batch)
		for size := 1; ; size *= 2 { // one decoder graph per power of two
			if size >= rows {
				for len(batch) < size {
					batch = append(batch, batch[0]) // padding rows, discarded
				}
				break
			}
		}
		scfg := rollout.Config{Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, MinP: s.MinP, MaxNewTokens: maxNew, StopTokens: []int32{r.codec.eos}}
		comps, err := r.sample(batch, scfg, seedFor(r.cfg.Seed, fmt.Sprintf("%s-tree%d-sample", purpose, d), step))
		if err != nil {
			return nil, 0, 0, fmt.Errorf("segment tree level %d: %w", d+1, err)
		}
		var next []int
		for k := range rows {
			c, parent := comps[k], tr.nodes[from[k]]
			sampledTokens += len(c.Tokens)
			child := treeNode{prompt: parent.prompt, parent: from[k], depth: d + 1,
				toks: append(append([]int32(nil), parent.toks...), c.Tokens...),
				lps:  append(append([]float32(nil), parent.lps...), c.ModelLogProbs...)}
			switch {
			case c.Finish == rollout.FinishStop:
				child.finish = rollout.FinishStop
			case len(child.toks) >= s.MaxNewTokens || last:
				child.finish = rollout.FinishLength
			}
			tr.nodes = append(tr.nodes, child)
			id := len(tr.nodes) - 1
			tr.nodes[from[k]].children = append(tr.nodes[from[k]].children, id)
			if child.finish == "" {
				next = append(next, id)
			}
		}
		frontier = next
	}
	// Leaves in depth-first order, prompt by prompt: the rows.
	b := &rolloutBatch{}
	version := 0
	if r.trainer != nil {
		version = r.trainer.StepCount()
	}
	var visit func(n int, path []int)
	visit = func(n int, path []int) {
		nd := &tr.nodes[n]
		nd.owner = b.rows()
		if nd.parent >= 0 {
			path = append(path, n)
		}
		if len(nd.children) == 0 && nd.parent >= 0 {
			b.examples = append(b.examples, exs[nd.prompt])
			b.prompts = append(b.prompts, prompts[nd.prompt])
			b.group = append(b.group, nd.prompt)
			b.resps = append(b.resps, nd.toks)
			b.finish = append(b.finish, nd.finish)
			b.temps = append(b.temps, nil)
			b.rollout = append(b.rollout, nd.lps)
			b.version = append(b.version, version)
			own := make([]bool, len(path))
			for k, p := range path {
				own[k] = tr.nodes[p].owner == b.rows()-1
			}
			b.tree = append(b.tree, treeRow{path: append([]int(nil), path...), own: own, tree: tr})
			return
		}
		for _, c := range nd.children {
			visit(c, path)
		}
	}
	for i := range exs {
		visit(i, nil)
	}
	rolloutS := time.Since(t0).Seconds()
	t1 := time.Now()
	texts := make([]string, b.rows())
	main := make([]reward.Score, b.rows())
	pathTokens := 0
	for i := range b.rows() {
		texts[i] = r.codec.text(b.resps[i])
		main[i] = r.score(texts[i], b.examples[i])
		pathTokens += len(b.resps[i])
	}
	if err := r.rewarder.components(r, b, texts, main); err != nil {
		return nil, 0, 0, err
	}
	// Values bottom-up: a leaf's is its reward, a node's the mean of its children's.
	for i, row := range b.tree {
		tr.nodes[row.path[len(row.path)-1]].value = b.rewards[i]
	}
	for n := len(tr.nodes) - 1; n >= 0; n-- { // children come after their parents
		nd := &tr.nodes[n]
		if len(nd.children) == 0 {
			continue
		}
		var sum float64
		for _, c := range nd.children {
			sum += tr.nodes[c].value
		}
		nd.value = sum / float64(len(nd.children))
	}
	r.segStats.add(segmentStats{treeNodes: len(tr.nodes) - len(exs), treeTokens: sampledTokens, treePathTokens: pathTokens,
		treeLeaves: b.rows(), seconds: rolloutS})
	return b, rolloutS, time.Since(t1).Seconds(), nil
}

// treeSegments are a tree row's segments: the root (End -1) and every inner node on its path, each
// at the index of its last token, with the node's value; in grpo mode each also carries the scale of
// its children's edges, the unbiased std of their values + 1e-8.
func treeSegments(row treeRow, mode string) []objective.Segment {
	nodes := row.tree.nodes
	seg := func(n, end int) objective.Segment {
		s := objective.Segment{End: end, Value: nodes[n].value}
		if mode == "grpo" {
			s.Scale = childStd(nodes, n) + 1e-8
		}
		return s
	}
	segs := []objective.Segment{seg(nodes[row.path[0]].parent, -1)}
	for _, n := range row.path[:len(row.path)-1] {
		segs = append(segs, seg(n, len(nodes[n].toks)-1))
	}
	return segs
}

// childStd is the unbiased std of node n's children's values (0 with fewer than two).
func childStd(nodes []treeNode, n int) float64 {
	cs := nodes[n].children
	if len(cs) < 2 {
		return 0
	}
	var m, s float64
	for _, c := range cs {
		m += nodes[c].value
	}
	m /= float64(len(cs))
	for _, c := range cs {
		s += (nodes[c].value - m) * (nodes[c].value - m)
	}
	return math.Sqrt(s / float64(len(cs)-1))
}

// applyTreeMask keeps each edge's tokens in the loss mask of its first leaf only, and drops edges
// with zero advantage (V(child) = V(parent)). It returns the fraction of response tokens kept.
func applyTreeMask(b *rolloutBatch, ob *objective.Batch) float64 {
	var kept, all float64
	for i, row := range b.tree {
		nodes := row.tree.nodes
		for k, n := range row.path {
			nd := nodes[n]
			par := nodes[nd.parent]
			own := row.own[k] && nd.value != par.value
			for t := len(par.toks); t < len(nd.toks); t++ {
				if ob.Mask[i][t] == 0 {
					continue
				}
				all++
				if own {
					kept++
				} else {
					ob.Mask[i][t] = 0
				}
			}
		}
	}
	if all == 0 {
		return 0
	}
	return kept / all
}
