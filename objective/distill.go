package objective

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/polo-rl/polo/internal/fmath"
)

// Distill is on-policy distillation with a per-token reverse KL (spec B8, Thinking Machines /
// tinker-cookbook): the student samples, a teacher scores the same tokens, and each token's advantage
// is the negative sampled reverse-KL estimate
//
//	Akl[t] = −κ·(lpSamp[t] − lpTch[t])   (then, if γ > 0, the discounted sum over later tokens)
//
// optimised with an importance-sampled policy-gradient loss −Σ M·exp(lp − lpSamp)·A / Ntok (or PPO's
// clipped form). With TIP token selection (spec B9) as a Selector, only the chosen tokens train.
//
// Field mapping on Batch (no new fields): OldLogP is lpSamp (the student's log-prob at sampling time),
// RefLogP carries the teacher's log-prob lpTch of the same tokens (same tokenizer), Entropy is the
// student's entropy (TIP rules that use it), LogP the current student. With task_coef > 0, Rewards and
// Group add a group-normalised task advantage task_coef·(r − mean_g)/(std_g + 1e-6) to every token.
type Distill struct {
	KLCoef     float64 `param:"kl_coef"`               // κ, tinker's kl_penalty_coef (1)
	KLDiscount float64 `param:"kl_discount"`           // γ, tinker's kl_discount_factor (0: each token credited with its own divergence)
	TaskCoef   float64 `param:"task_coef"`             // weight of the optional group-normalised task advantage (0: pure distillation)
	LossKind   string  `param:"loss" choices:"is|ppo"` // "is" (importance-sampled PG, default) or "ppo" (clipped)
	Clip       float64 `param:"clip"`                  // PPO clip range ε (loss=ppo)
	TIP        TIPRule // token selection
}

// TIPRule is a TIP token-selection rule (spec B9). Thresholds are batch quantiles over valid tokens of
// the student entropy H and the teacher–student divergence D = |lpSamp − lpTch| (linear interpolation).
type TIPRule struct {
	Rule     string  `param:"select" choices:"all|entropy_topk|entropy_sample|q3_only|type_aware"`
	Rho      float64 `param:"rho"`          // fraction of valid tokens kept by entropy_topk / entropy_sample / type_aware
	QEntropy float64 `param:"q_entropy"`    // quantile of H giving the entropy threshold hH (q3_only, type_aware)
	QDiverge float64 `param:"q_divergence"` // quantile of D giving the divergence threshold hD
	Seed     uint64  `param:"seed"`         // entropy_sample's seed (mixed with a hash of the batch, so reruns repeat)
}

// TIPRules lists the rule names.
var TIPRules = []string{"all", "entropy_topk", "entropy_sample", "q3_only", "type_aware"}

func init() {
	RegisterTyped("distill", "on-policy distillation: per-token reverse KL to a teacher (ref_logp = teacher logp) with TIP token selection",
		Distill{KLCoef: 1, LossKind: "is", Clip: 0.2, TIP: TIPRule{Rule: "all", Rho: 0.5, QEntropy: 0.5, QDiverge: 0.5}},
		func(d Distill) (Objective, error) {
			switch {
			case d.KLDiscount < 0 || d.KLDiscount > 1:
				return nil, fmt.Errorf("kl_discount=%g: want a value in [0, 1]", d.KLDiscount)
			case d.Clip <= 0:
				return nil, fmt.Errorf("clip=%g: want a positive number", d.Clip)
			}
			if err := d.TIP.check(); err != nil {
				return nil, err
			}
			return &d, nil
		})
}

// Advantages returns Akl (+ the task advantage). It reads OldLogP, RefLogP, Mask and, with task_coef,
// Rewards and Group (nil: one group).
func (d *Distill) Advantages(b *Batch) ([][]float64, error) {
	n := needOld | needRef
	if d.TaskCoef != 0 {
		n |= needRewards
	}
	if err := check(b, n); err != nil {
		return nil, err
	}
	var task []float64
	if d.TaskCoef != 0 {
		task = GroupAdvantages(b.Rewards, groupOrOne(b), b.Mask, "group", 1e-6, SingletonVerl)
	}
	adv := newLike(b.Mask)
	for i, row := range b.Mask {
		run := 0.0 // discounted sum of later tokens' Akl
		for t := len(row) - 1; t >= 0; t-- {
			if row[t] == 0 {
				continue
			}
			kl, _ := KL(KLk1, b.OldLogP[i][t], b.RefLogP[i][t]) // the sampled reverse-KL estimate
			run = -d.KLCoef*kl + d.KLDiscount*run
			adv[i][t] = run
			if task != nil {
				adv[i][t] += d.TaskCoef * task[i]
			}
		}
	}
	return adv, nil
}

// Inputs implements Objective: the teacher's log-probs (in ref_logp), the rewards with task_coef,
// the entropy for TIP rules other than all.
func (d *Distill) Inputs() []string {
	n := needLogP | needOld | needRef | needTeacher
	if d.TaskCoef != 0 {
		n |= needRewards
	}
	if d.TIP.Rule != "all" {
		n |= needEntropy
	}
	return n.names()
}

// Loss implements Objective: token-mean (over Mask, or NormTokens) of −ratio·A (is) or PPO's
// −min(ratio·A, clip(ratio)·A) (ppo), ratio = exp(LogP − OldLogP).
func (d *Distill) Loss(b *Batch) (Result, error) {
	if err := check(b, needLogP|needOld|needRef|needAdv); err != nil {
		return Result{}, err
	}
	clip := 0.0
	if d.LossKind == "ppo" {
		clip = d.Clip
	}
	loss, grad, acc := policyGradient(b.LogP, b.OldLogP, b.Advantages, tokenMean(b.Mask, b.NormTokens), clip)
	var kl float64
	for i, row := range b.Mask {
		for t, m := range row {
			if m != 0 {
				v, _ := KL(KLk1, b.OldLogP[i][t], b.RefLogP[i][t])
				kl += v
			}
		}
	}
	res := Result{Loss: loss, GradLogP: grad}
	res.Metrics = map[string]float64{"reverse_kl": kl / math.Max(acc.n, 1), "ratio_mean": acc.ratioMean(), "tokens": acc.n}
	if d.LossKind == "ppo" {
		res.Metrics["clip_frac"] = acc.clipFrac()
	}
	return res, nil
}

// Select implements Selector with the TIP rule: every row is kept, Mask is the 0/1 token selection
// (nil for rule all). It reads Entropy (rules with an entropy axis), OldLogP and RefLogP (divergence).
func (d *Distill) Select(b *Batch, _ [][]float64) (Selection, error) {
	keep := make([]bool, len(b.Mask))
	for i := range keep {
		keep[i] = true
	}
	if d.TIP.Rule == "all" {
		return Selection{Keep: keep}, nil
	}
	if err := check(b, needOld|needRef|needEntropy); err != nil {
		return Selection{}, err
	}
	div := newLike(b.Mask)
	for i := range div {
		for t := range div[i] {
			div[i][t] = math.Abs(b.OldLogP[i][t] - b.RefLogP[i][t])
		}
	}
	sel, stats, err := d.TIP.Select(b.Entropy, div, b.Mask)
	if err != nil {
		return Selection{}, err
	}
	return Selection{Keep: keep, Mask: sel, Stats: stats}, nil
}

func (r *TIPRule) check() error {
	if r.Rho <= 0 || r.Rho > 1 {
		return fmt.Errorf("rho=%g: want a fraction in (0, 1]", r.Rho)
	}
	if r.QEntropy < 0 || r.QEntropy > 1 || r.QDiverge < 0 || r.QDiverge > 1 {
		return fmt.Errorf("q_entropy=%g, q_divergence=%g: want quantiles in [0, 1]", r.QEntropy, r.QDiverge)
	}
	for _, n := range TIPRules {
		if r.Rule == n {
			return nil
		}
	}
	return fmt.Errorf("select=%q: want one of %v", r.Rule, TIPRules)
}

// TIPQuadrant names a token's TIP quadrant: 1 (H ≥ hH, D ≥ hD), 2 (H ≥ hH, D < hD), 3 (H < hH,
// D ≥ hD: overconfident and wrong) or 4 (H < hH, D < hD).
func TIPQuadrant(h, d, hH, hD float64) int {
	switch {
	case h >= hH && d >= hD:
		return 1
	case h >= hH:
		return 2
	case d >= hD:
		return 3
	}
	return 4
}

// Select returns the 0/1 selection mask over the tokens where mask > 0, given the entropy H and
// divergence D of every token, and stats: tip_tokens (valid), tip_selected, tip_q1…tip_q4 (counts),
// tip_h_threshold, tip_d_threshold.
func (r *TIPRule) Select(H, D, mask [][]float64) ([][]float64, map[string]float64, error) {
	if err := r.check(); err != nil {
		return nil, nil, err
	}
	if err := check(&Batch{Mask: mask, Entropy: H}, needEntropy); err != nil {
		return nil, nil, err
	}
	if err := checkMatrix("divergence", D, mask, false); err != nil {
		return nil, nil, err
	}
	type pos struct{ i, t int }
	var valid []pos
	var hs, ds []float64
	for i, row := range mask {
		for t, m := range row {
			if m > 0 {
				valid = append(valid, pos{i, t})
				hs = append(hs, H[i][t])
				ds = append(ds, D[i][t])
			}
		}
	}
	sel := newLike(mask)
	n := len(valid)
	stats := map[string]float64{"tip_tokens": float64(n)}
	if n == 0 {
		return sel, stats, nil
	}
	hH, hD := quantileLinear(hs, r.QEntropy), quantileLinear(ds, r.QDiverge)
	stats["tip_h_threshold"], stats["tip_d_threshold"] = hH, hD
	for k, p := range valid {
		q := TIPQuadrant(hs[k], ds[k], hH, hD)
		stats[fmt.Sprintf("tip_q%d", q)]++
		if r.Rule == "all" || (q == 3 && (r.Rule == "q3_only" || r.Rule == "type_aware")) {
			sel[p.i][p.t] = 1
		}
	}
	nKeep := int(math.Ceil(r.Rho*float64(n) - 1e-9))
	switch r.Rule {
	case "entropy_topk", "type_aware":
		// Highest entropy first; ties keep the earlier token (row-major order).
		order := make([]int, n)
		for k := range order {
			order[k] = k
		}
		sort.SliceStable(order, func(a, b int) bool { return hs[order[a]] > hs[order[b]] })
		for _, k := range order[:nKeep] {
			sel[valid[k].i][valid[k].t] = 1
		}
	case "entropy_sample":
		// Weighted sampling without replacement ∝ H (Efraimidis–Spirakis keys log(u)/w, largest kept).
		rng := r.rngFor(hs)
		keys := make([]float64, n)
		order := make([]int, n)
		for k := range keys {
			order[k] = k
			u := 1 - rng.Float64() // in (0, 1]
			if hs[k] > 0 {
				keys[k] = math.Log(u) / hs[k]
			} else {
				keys[k] = math.Inf(-1)
			}
		}
		sort.SliceStable(order, func(a, b int) bool { return keys[order[a]] > keys[order[b]] })
		for _, k := range order[:nKeep] {
			sel[valid[k].i][valid[k].t] = 1
		}
	}
	for _, p := range valid {
		stats["tip_selected"] += sel[p.i][p.t]
	}
	return sel, stats, nil
}

// rngFor seeds entropy_sample from Seed and the batch's entropies, so the same batch and seed always
// give the same selection (also after a resume) without carrying generator state.
func (r *TIPRule) rngFor(hs []float64) *rand.Rand {
	h := fnv.New64a()
	var buf [8]byte
	for _, x := range hs {
		binary.LittleEndian.PutUint64(buf[:], math.Float64bits(x))
		h.Write(buf[:])
	}
	return rand.New(rand.NewPCG(r.Seed, h.Sum64()))
}

// ---- sparse knowledge distillation: probability-domain teacher operators (spec B10) ---------------

// SoftenProbs tempers a probability vector: p_i^(1/T) / Σ_j p_j^(1/T). For p = softmax(z) it equals
// softmax(z/T), so a teacher known only through probabilities (a log-prob API) can be tempered. Zeros
// stay zero. It is computed in the log domain, so tiny probabilities do not underflow.
func SoftenProbs(p []float64, T float64) ([]float64, error) {
	if !(T > 0) || math.IsInf(T, 0) {
		return nil, fmt.Errorf("temperature %g: want a positive finite number", T)
	}
	if err := checkProbs(p); err != nil {
		return nil, err
	}
	out := make([]float64, len(p))
	m := math.Inf(-1)
	for _, x := range p {
		if x > 0 {
			m = math.Max(m, math.Log(x)/T)
		}
	}
	var z float64
	for i, x := range p {
		if x > 0 {
			out[i] = fmath.Exp(math.Log(x)/T - m)
			z += out[i]
		}
	}
	for i := range out {
		out[i] /= z
	}
	return out, nil
}

// TopKProbs keeps the k largest probabilities (ties: the lower index first) renormalised to sum 1 and
// zeroes the rest.
func TopKProbs(p []float64, k int) ([]float64, error) {
	if err := checkProbs(p); err != nil {
		return nil, err
	}
	if k < 1 {
		return nil, fmt.Errorf("top-k %d: want k >= 1", k)
	}
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
	if k > len(p) {
		k = len(p)
	}
	out := make([]float64, len(p))
	var z float64
	for _, i := range order[:k] {
		z += p[i]
	}
	for _, i := range order[:k] {
		out[i] = p[i] / z
	}
	return out, nil
}

// SparseKDLoss is Hinton distillation against a truncated, tempered teacher: pT = Soften_T(TopK_k(p)),
// U its support, qS = softmax(zS/T) renormalised over U, and
//
//	L = T²·Σ_{v∈U} pT(v)·(log pT(v) − log qS(v)),    ∂L/∂zS_v = T·(qS(v) − pT(v)) on U, 0 elsewhere.
//
// k <= 0 keeps the full teacher distribution. p and the student logits zS share the vocabulary.
func SparseKDLoss(p, zS []float64, k int, T float64) (loss float64, gradLogits []float64, err error) {
	if len(p) != len(zS) {
		return 0, nil, fmt.Errorf("teacher has %d probabilities, student %d logits: want the same vocabulary", len(p), len(zS))
	}
	for i, z := range zS {
		if math.IsNaN(z) || math.IsInf(z, 0) {
			return 0, nil, fmt.Errorf("student logit %d = %v: want a finite number", i, z)
		}
	}
	pt := p
	if k > 0 {
		if pt, err = TopKProbs(p, k); err != nil {
			return 0, nil, err
		}
	}
	if pt, err = SoftenProbs(pt, T); err != nil {
		return 0, nil, err
	}
	m := math.Inf(-1)
	for i, x := range pt {
		if x > 0 {
			m = math.Max(m, zS[i]/T)
		}
	}
	var z float64
	for i, x := range pt {
		if x > 0 {
			z += fmath.Exp(zS[i]/T - m)
		}
	}
	lse := m + math.Log(z)
	gradLogits = make([]float64, len(p))
	for i, x := range pt {
		if x > 0 {
			logq := zS[i]/T - lse
			loss += T * T * x * (math.Log(x) - logq)
			gradLogits[i] = T * (fmath.Exp(logq) - x)
		}
	}
	return loss, gradLogits, nil
}

func checkProbs(p []float64) error {
	if len(p) == 0 {
		return fmt.Errorf("empty probability vector")
	}
	var s float64
	for i, x := range p {
		if math.IsNaN(x) || x < 0 || math.IsInf(x, 0) {
			return fmt.Errorf("probability %d = %v: want a finite value >= 0", i, x)
		}
		s += x
	}
	if !(s > 0) {
		return fmt.Errorf("probabilities sum to %g: want a positive mass", s)
	}
	return nil
}
