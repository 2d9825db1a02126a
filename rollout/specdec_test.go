package rollout

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Spec C4 example: p = [0.5,0.3,0.2], q = [0.2,0.6,0.2] → output distribution p.
func TestSpecOutputDistSpec(t *testing.T) {
	p, q := []float64{0.5, 0.3, 0.2}, []float64{0.2, 0.6, 0.2}
	got := SpecOutputDist(p, q)
	for j := range p {
		if math.Abs(got[j]-p[j]) > 1e-12 {
			t.Fatalf("output %v, want %v", got, p)
		}
	}
	// Random p, q of 7 tokens, some with zero mass on either side.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		p, q := randDist(rng, 7), randDist(rng, 7)
		got := SpecOutputDist(p, q)
		for j := range p {
			if math.Abs(got[j]-p[j]) > 1e-12 {
				t.Fatalf("p %v q %v: output %v", p, q, got)
			}
		}
	}
}

func randDist(rng *rand.Rand, n int) []float64 {
	d := make([]float64, n)
	var s float64
	for j := range d {
		if rng.IntN(4) > 0 {
			d[j] = rng.Float64()
			s += d[j]
		}
	}
	if s == 0 {
		d[0], s = 1, 1
	}
	for j := range d {
		d[j] /= s
	}
	return d
}

// Spec C4 stopping-rule example.
func TestSpecDecPPLength(t *testing.T) {
	a := []float64{0.9, 0.8, 0.9, 0.95, 0.99, 0.99, 0.99}
	for _, c := range []struct{ kmin, kmax, want int }{{1, 20, 4}, {1, 3, 3}, {6, 20, 6}, {2, 20, 4}} {
		if got := SpecDecPPLength(a, 0.3, c.kmin, c.kmax); got != c.want {
			t.Errorf("kmin %d kmax %d: length %d, want %d", c.kmin, c.kmax, got, c.want)
		}
	}
}

// SpecVerify with a stubbed uniform: the acceptance frequency of a drafted token is min(1, p/q).
func TestSpecVerifyAcceptance(t *testing.T) {
	p, q := []float64{0.5, 0.3, 0.2}, []float64{0.2, 0.6, 0.2}
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 200000
	acc := 0
	for range n {
		_, a := SpecVerify([]int32{1}, [][]float64{q}, [][]float64{p, p}, rng)
		acc += a
	}
	if f := float64(acc) / n; math.Abs(f-0.5) > 0.005 {
		t.Fatalf("acceptance of token 1 = %v, want 0.5 (= 0.3/0.6)", f)
	}
}

// fakeLM gives deterministic logits as a function of the prefix (a hash seeds them), so the exact
// sequence distribution is computable; scale sharpens it, salt makes two different models.
type fakeLM struct {
	V     int
	salt  uint64
	scale float64
	calls int
}

func (f *fakeLM) row(prefix []int32) []float32 {
	h := fnv.New64a()
	var b [4]byte
	for _, x := range prefix {
		binary.LittleEndian.PutUint32(b[:], uint32(x))
		h.Write(b[:])
	}
	rng := rand.New(rand.NewPCG(h.Sum64(), f.salt))
	z := make([]float32, f.V)
	for j := range z {
		z[j] = float32(f.scale * rng.NormFloat64())
	}
	return z
}

func (f *fakeLM) Logits(ids, mask [][]int32) ([][][]float32, error) {
	f.calls++
	out := make([][][]float32, len(ids))
	for i, r := range ids {
		out[i] = make([][]float32, len(r))
		for j := range r {
			if mask[i][j] == 1 {
				out[i][j] = f.row(r[:j+1])
			} else {
				out[i][j] = make([]float32, f.V)
			}
		}
	}
	return out, nil
}

func (f *fakeLM) LogitsHidden(ids, mask [][]int32) ([][][]float32, [][][]float32, error) {
	l, err := f.Logits(ids, mask)
	hid := make([][][]float32, len(l))
	for i := range l {
		hid[i] = make([][]float32, len(l[i]))
		for j := range l[i] {
			hid[i][j] = l[i][j][:3] // the first logits double as a 3-dim feature
		}
	}
	return l, hid, err
}

// mixLM is a draft that is the target's logits plus noise of its own: close enough to the target
// for a realistic acceptance rate.
type mixLM struct{ t, n *fakeLM }

func (m *mixLM) LogitsHidden(ids, mask [][]int32) ([][][]float32, [][][]float32, error) {
	a, _ := m.t.Logits(ids, mask)
	b, hid, _ := m.n.LogitsHidden(ids, mask)
	for i := range a {
		for j := range a[i] {
			for k := range a[i][j] {
				a[i][j][k] += b[i][j][k]
			}
		}
	}
	return a, hid, nil
}

// exactJoint enumerates the target's distribution over all sequences of n tokens (no stop
// tokens) under cfg's transforms.
func exactJoint(t *testing.T, tg *fakeLM, prompt []int32, n int, cfg Config) map[string]float64 {
	out := map[string]float64{}
	var rec func(prefix []int32, pr float64)
	rec = func(prefix []int32, pr float64) {
		if len(prefix)-len(prompt) == n {
			out[key(prefix[len(prompt):])] += pr
			return
		}
		p, err := specProbs(tg.row(prefix), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for j, x := range p {
			if x > 0 {
				rec(append(slices.Clone(prefix), int32(j)), pr*x)
			}
		}
	}
	rec(prompt, 1)
	return out
}

func key(toks []int32) string {
	b := make([]byte, len(toks))
	for i, x := range toks {
		b[i] = byte('a' + x)
	}
	return string(b)
}

// The sequences speculative sampling emits follow the target's distribution (chi-square over all
// 3-token sequences), with fixed K and with the adaptive SpecDec++ length, under plain sampling and
// under temperature + top-k.
func TestSpecSampleChiSquare(t *testing.T) {
	const V, n, N = 4, 3, 12000
	target := &fakeLM{V: V, salt: 1, scale: 1.2}
	draft := &mixLM{t: &fakeLM{V: V, salt: 1, scale: 1.2}, n: &fakeLM{V: V, salt: 2, scale: 0.8}}
	prompt := []int32{1, 2}
	head := NewAcceptHead(3, 2, 7)
	head.Wo[0], head.Bo = 2, 0.5 // predictions that vary with the feature
	for _, tc := range []struct {
		name string
		cfg  SpecConfig
	}{
		{"K=2", SpecConfig{Sampling: Config{Temperature: 1, MaxNewTokens: n}, K: 2}},
		{"adaptive", SpecConfig{Sampling: Config{Temperature: 1, MaxNewTokens: n}, Head: head, Threshold: 0.3, KMin: 1, KMax: 3}},
		{"T=0.7 top-k 3, K=3", SpecConfig{Sampling: Config{Temperature: 0.7, TopK: 3, MaxNewTokens: n}, K: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := exactJoint(t, target, prompt, n, tc.cfg.Sampling)
			prompts := make([][]int32, N)
			for i := range prompts {
				prompts[i] = prompt
			}
			comps, st, err := SpecSample(target, draft, prompts, tc.cfg, 11)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]float64{}
			for _, c := range comps {
				if len(c.Tokens) != n || c.Finish != FinishLength {
					t.Fatalf("completion %v finish %s", c.Tokens, c.Finish)
				}
				counts[key(c.Tokens)]++
			}
			var chi float64
			df := -1
			for k, p := range want {
				e := p * N
				if e < 5 {
					continue // pooled below
				}
				chi += (counts[k] - e) * (counts[k] - e) / e
				df++
				delete(counts, k)
			}
			var rest, restE float64
			for k, p := range want {
				if p*N < 5 {
					restE += p * N
					rest += counts[k]
					delete(counts, k)
				}
			}
			if restE > 0 {
				chi += (rest - restE) * (rest - restE) / restE
				df++
			}
			if len(counts) != 0 {
				t.Fatalf("sequences the target cannot produce: %v", counts)
			}
			pv := chiSquarePValue(chi, df)
			t.Logf("χ² = %.1f, df %d, p = %.3f; accept rate %.3f, mean accept len %.2f, rounds %d", chi, df, pv, st.AcceptRate(), st.MeanAcceptLen(), st.Rounds)
			if pv < 1e-3 {
				t.Fatalf("χ² = %.1f with %d df: p = %g, the output is not the target's distribution", chi, df, pv)
			}
			if st.AcceptRate() <= 0.2 || st.AcceptRate() >= 1 {
				t.Fatalf("accept rate %v: the test's draft should be neither useless nor perfect", st.AcceptRate())
			}
		})
	}
}

// Greedy speculative decoding emits exactly the target's greedy tokens, stopping at a stop token.
func TestSpecSampleGreedy(t *testing.T) {
	const V = 6
	target := &fakeLM{V: V, salt: 3, scale: 1}
	draft := &mixLM{t: &fakeLM{V: V, salt: 3, scale: 1}, n: &fakeLM{V: V, salt: 4, scale: 0.7}}
	prompts := [][]int32{{0}, {1, 2}, {3, 3, 3}, {5}}
	cfg := SpecConfig{Sampling: Config{Temperature: 0, MaxNewTokens: 9, StopTokens: []int32{2}}, K: 3}
	comps, st, err := SpecSample(target, draft, prompts, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		var want []int32
		seq := slices.Clone(p)
		for len(want) < 9 {
			z := target.row(seq)
			tok := int32(slices.Index(z, slices.Max(z)))
			want, seq = append(want, tok), append(seq, tok)
			if tok == 2 {
				break
			}
		}
		if !slices.Equal(comps[i].Tokens, want) {
			t.Fatalf("row %d: %v, want %v", i, comps[i].Tokens, want)
		}
		if len(comps[i].LogProbs) != len(want) || len(comps[i].Entropy) != len(want) {
			t.Fatalf("row %d: per-token fields not filled", i)
		}
	}
	if st.Accepted == 0 || st.Accepted == st.Drafted {
		t.Fatalf("stats %+v: want some but not all drafts accepted", st)
	}
	if _, _, err := SpecSample(target, draft, prompts, SpecConfig{Sampling: cfg.Sampling, K: 0}, 1); err == nil {
		t.Fatal("K = 0 accepted")
	}
}

// The head's gradient matches central finite differences.
func TestAcceptHeadGradient(t *testing.T) {
	h := NewAcceptHead(4, 3, 1)
	for l := range h.W {
		for j := range h.W[l] {
			h.W[l][j] *= 5 // away from the identity so every path matters
		}
	}
	x := []float32{0.3, -1.2, 0.7, 2}
	y, w := 0.3, 6.0
	g := h.zeroLike()
	h.grads(x, y, w, g)
	loss := func() float64 { z, _, _ := h.forward(x, false); return headLoss(z, y, w) }
	const eps = 1e-6
	check := func(name string, p *float64, analytic float64) {
		old := *p
		*p = old + eps
		up := loss()
		*p = old - eps
		down := loss()
		*p = old
		if num := (up - down) / (2 * eps); math.Abs(num-analytic) > 1e-6*(1+math.Abs(num)) {
			t.Errorf("%s: analytic %v, numeric %v", name, analytic, num)
		}
	}
	check("bo", &h.Bo, g.Bo)
	check("wo[2]", &h.Wo[2], g.Wo[2])
	for l := range 3 {
		check("w", &h.W[l][5], g.W[l][5])
		check("b", &h.B[l][1], g.B[l][1])
	}
}

// Trained on features whose first coordinate decides acceptance, the head separates them.
func TestAcceptHeadLearns(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var xs [][]float32
	var ys []float64
	for range 2000 {
		x := []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64())}
		y := 0.05
		if x[0] > 0 {
			y = 0.95
		}
		xs, ys = append(xs, x), append(ys, y)
	}
	h := NewAcceptHead(2, 3, 1)
	losses, err := h.Train(xs, ys, DefaultHeadTrainConfig())
	if err != nil {
		t.Fatal(err)
	}
	if losses[len(losses)-1] >= losses[0] {
		t.Fatalf("loss did not fall: %v", losses)
	}
	hi, lo := h.Predict([]float32{1.5, 0}), h.Predict([]float32{-1.5, 0})
	if hi < 0.7 || lo > 0.3 {
		t.Fatalf("predictions %v (x0 > 0) and %v (x0 < 0)", hi, lo)
	}
	path := t.TempDir() + "/head.json"
	if err := h.Save(path); err != nil {
		t.Fatal(err)
	}
	h2, err := LoadAcceptHead(path)
	if err != nil || h2.Predict([]float32{1.5, 0}) != hi {
		t.Fatalf("round trip: %v", err)
	}
}

// AcceptanceData labels each token with min(1, p/q) of the distributions that produced it.
func TestAcceptanceData(t *testing.T) {
	target := &fakeLM{V: 5, salt: 8, scale: 1}
	draft := &fakeLM{V: 5, salt: 9, scale: 1}
	cfg := Config{Temperature: 1, MaxNewTokens: 4}
	prompts := [][]int32{{1}, {2, 3}}
	xs, ys, err := AcceptanceData(target, draft, prompts, cfg, 0.15, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 8 || len(ys) != 8 {
		t.Fatalf("%d examples, want 2 prompts × 4 tokens", len(xs))
	}
	for i, y := range ys {
		if !(y > 0 && y <= 1) {
			t.Fatalf("target %d = %v", i, y)
		}
	}
}
