package objective

import "math"

// need lists the batch fields a computation requires.
type need uint32

const (
	needLogP need = 1 << iota
	needOld
	needRef
	needRewards
	needGroup
	needAdv
	needEntropy
	needValues
	needPrompt
	needTokenIDs
	needProxy
	needTarget
	needSegments
	needGradWeight
	needComponents
	needTokenRewards
	// Declared only (not checked on a batch): the trainer provides them.
	needMeanEntropy
	needStep
	needDrift
	needTeacher
	needLayer
)

// needNames are the input names of the need bits (needAdv is an output of the whole-batch phase, not
// an input).
var needNames = []struct {
	bit  need
	name string
}{
	{needLogP, InLogP}, {needOld, InOldLogP}, {needRef, InRefLogP}, {needRewards, InRewards}, {needGroup, InGroup},
	{needEntropy, InEntropy}, {needValues, InValues}, {needPrompt, InPromptID}, {needTokenIDs, InTokenIDs},
	{needProxy, InProxyLogP}, {needTarget, InTargetRatio}, {needSegments, InSegments}, {needGradWeight, InGradWeight},
	{needComponents, InRewardComponents}, {needTokenRewards, InTokenRewards}, {needMeanEntropy, InMeanEntropy},
	{needStep, InStep}, {needDrift, InDrift}, {needTeacher, InTeacherLogP}, {needLayer, InLayerLogP},
}

// names lists the inputs of n, sorted.
func (n need) names() []string {
	var out []string
	for _, e := range needNames {
		if n&e.bit != 0 {
			out = append(out, e.name)
		}
	}
	return declared(out)
}

// check validates shapes and values of the fields b carries and that the needed ones are present.
// Errors wrap ErrBadInput and name the field, row and column.
func check(b *Batch, n need) error {
	if b == nil || len(b.Mask) == 0 {
		return badInput("mask: empty batch (need at least one row)")
	}
	rows, width := len(b.Mask), len(b.Mask[0])
	for i, row := range b.Mask {
		if len(row) != width {
			return badInput("mask: row %d has %d tokens, row 0 has %d (ragged)", i, len(row), width)
		}
		for t, m := range row {
			if m != 0 && m != 1 {
				return badInput("mask[%d][%d] = %v: want 0 or 1", i, t, m)
			}
		}
	}
	mats := []struct {
		name   string
		v      [][]float64
		bit    need
		negInf bool
	}{
		{"logp", b.LogP, needLogP, false},
		{"old_logp", b.OldLogP, needOld, false},
		{"ref_logp", b.RefLogP, needRef, false},
		{"advantages", b.Advantages, needAdv, false},
		{"entropy", b.Entropy, needEntropy, false},
		{"values", b.Values, needValues, false},
		{"token_rewards", b.TokenRewards, needTokenRewards, false},
		{"proxy_logp", b.ProxyLogP, needProxy, true},
		{"target_ratio", b.TargetRatio, needTarget, false},
		{"bound_target", b.BoundTarget, 0, false},
	}
	for _, m := range mats {
		if m.v == nil {
			if n&m.bit != 0 {
				return badInput("%s: missing (this objective needs it)", m.name)
			}
			continue
		}
		if err := checkMatrix(m.name, m.v, b.Mask, m.negInf); err != nil {
			return err
		}
	}
	vecs := []struct {
		name string
		n    int
		bit  need
	}{
		{"rewards", len(b.Rewards), needRewards},
		{"group", len(b.Group), needGroup},
		{"prompt_id", len(b.PromptID), needPrompt},
		{"token_ids", len(b.TokenIDs), needTokenIDs},
		{"segments", len(b.Segments), needSegments},
		{"grad_weight", len(b.GradWeight), needGradWeight},
		{"reward_components", len(b.RewardComponents), needComponents},
		{"truncated", len(b.Truncated), 0},
		{"lengths", len(b.Lengths), 0},
		{"drift", len(b.Drift), 0},
	}
	for _, v := range vecs {
		if v.n == 0 {
			if n&v.bit != 0 {
				return badInput("%s: missing (this objective needs it)", v.name)
			}
			continue
		}
		if v.n != rows {
			return badInput("%s: %d entries, mask has %d rows", v.name, v.n, rows)
		}
	}
	for i, r := range b.Rewards {
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return badInput("rewards[%d] = %v: want a finite number", i, r)
		}
	}
	for i, w := range b.GradWeight {
		if math.IsNaN(w) || w < 0 || math.IsInf(w, 0) {
			return badInput("grad_weight[%d] = %v: want a finite number >= 0", i, w)
		}
	}
	for i, row := range b.TokenIDs {
		if len(row) != width {
			return badInput("token_ids: row %d has %d tokens, mask has %d (ragged)", i, len(row), width)
		}
	}
	if len(b.RewardComponents) > 0 {
		k := len(b.RewardComponents[0])
		for i, row := range b.RewardComponents {
			if len(row) != k || k == 0 {
				return badInput("reward_components: row %d has %d components, row 0 has %d", i, len(row), k)
			}
			for j, x := range row {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return badInput("reward_components[%d][%d] = %v: want a finite number", i, j, x)
				}
			}
		}
	}
	if math.IsNaN(b.MeanEntropy) || math.IsInf(b.MeanEntropy, 0) {
		return badInput("mean_entropy = %v: want a finite number", b.MeanEntropy)
	}
	return checkExtra(b)
}

// checkMatrix checks that v has the mask's shape and finite values (negInf: -Inf allowed too).
func checkMatrix(name string, v, mask [][]float64, negInf bool) error {
	if len(v) != len(mask) {
		return badInput("%s: %d rows, mask has %d", name, len(v), len(mask))
	}
	for i, row := range v {
		if len(row) != len(mask[i]) {
			return badInput("%s: row %d has %d tokens, mask has %d (ragged)", name, i, len(row), len(mask[i]))
		}
		for t, x := range row {
			if math.IsNaN(x) || (math.IsInf(x, 0) && !(negInf && math.IsInf(x, -1))) {
				return badInput("%s[%d][%d] = %v: want a finite number", name, i, t, x)
			}
		}
	}
	return nil
}
