// Package lynx implements LYNX early exit for reasoning traces (Akgül et al. 2025, spec C3): exit
// decisions are taken only at cue tokens of the reasoning (e.g. a step separator, "wait"); a probe
// on the model's hidden state at a cue scores whether stopping there and answering would still be
// right (labels come from forced exits: append the answer marker at the cue and let the model
// answer); split-conformal calibration on cues where exiting would be wrong turns the score into a
// threshold whose premature-exit rate is at most a user-set risk α.
package lynx

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/polo-rl/polo/rollout"
)

// Model gives logits and final hidden states at every position in one pass; *model.Model is one.
type Model interface {
	LogitsHidden(ids, mask [][]int32) (logits, hidden [][][]float32, err error)
}

// ConformalThreshold is the split-conformal threshold for calibration scores of negative cues
// (exiting there would be wrong): λ = the k-th smallest score, k = ⌈(n+1)(1−α)⌉, or +Inf when
// k > n (never exit). Exiting iff score > λ then has P(exit | negative) ≤ α for an exchangeable
// new negative.
func ConformalThreshold(neg []float64, alpha float64) (float64, error) {
	if !(alpha > 0 && alpha < 1) {
		return 0, fmt.Errorf("lynx: risk level α = %v, want 0 < α < 1", alpha)
	}
	n := len(neg)
	k := int(math.Ceil(float64(n+1) * (1 - alpha)))
	if k > n {
		return math.Inf(1), nil
	}
	s := slices.Clone(neg)
	sort.Float64s(s)
	return s[k-1], nil
}

// Exit configures decoding with early exit.
type Exit struct {
	Cues      []int32 // tokens at which an exit may be taken
	Marker    []int32 // appended to force the answer (e.g. "#")
	Stop      []int32 // end of response (EOS)
	MaxNew    int     // response token limit (reasoning + answer)
	MaxAnswer int     // tokens allowed after a forced exit
	// Score, when set, scores the hidden state at a cue; the row exits when Score > Lambda.
	Score  func(hidden []float32) float64
	Lambda float64
}

// Result is one decoded response.
type Result struct {
	Tokens []int32 // generated tokens (the marker included when the row exited)
	ExitAt int     // number of reasoning tokens before the exit (the cue included), -1 if none
}

// Decode decodes greedily (full forward passes; the sequences are short) and, when e.Score is
// set, exits at the first cue whose score exceeds e.Lambda: the marker is appended and the model
// answers within e.MaxAnswer tokens. Greedy decoding makes the result a deterministic function of
// the prompt, so an offline replay of forced exits sees the same hidden states.
func Decode(m Model, prompts [][]int32, e Exit) ([]Result, error) {
	if e.MaxNew < 1 || e.MaxAnswer < 1 {
		return nil, fmt.Errorf("lynx: MaxNew %d and MaxAnswer %d must be >= 1", e.MaxNew, e.MaxAnswer)
	}
	B := len(prompts)
	seqs := make([][]int32, B)
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("lynx: prompt %d is empty", i)
		}
		seqs[i] = slices.Clone(p)
	}
	out := make([]Result, B)
	answerLeft := make([]int, B) // > 0 while answering after an exit
	done := make([]bool, B)
	for i := range out {
		out[i].ExitAt = -1
	}
	for {
		var rows []int
		for i := range B {
			if !done[i] {
				rows = append(rows, i)
			}
		}
		if len(rows) == 0 {
			return out, nil
		}
		batch := make([][]int32, len(rows))
		for r, i := range rows {
			batch[r] = seqs[i]
		}
		ids, mask := pad(batch)
		logits, hidden, err := m.LogitsHidden(ids, mask)
		if err != nil {
			return nil, err
		}
		for r, i := range rows {
			last := len(seqs[i]) - 1
			gen := len(seqs[i]) - len(prompts[i])
			if e.Score != nil && out[i].ExitAt < 0 && gen > 0 && slices.Contains(e.Cues, seqs[i][last]) &&
				e.Score(hidden[r][last]) > e.Lambda {
				out[i].ExitAt = gen
				seqs[i] = append(seqs[i], e.Marker...)
				out[i].Tokens = append(out[i].Tokens, e.Marker...)
				answerLeft[i] = e.MaxAnswer
				continue
			}
			z := logits[r][last]
			tok := int32(0)
			for j, v := range z {
				if v > z[tok] {
					tok = int32(j)
				}
			}
			seqs[i] = append(seqs[i], tok)
			out[i].Tokens = append(out[i].Tokens, tok)
			if out[i].ExitAt >= 0 {
				answerLeft[i]--
			}
			if slices.Contains(e.Stop, tok) || len(out[i].Tokens) >= e.MaxNew || (out[i].ExitAt >= 0 && answerLeft[i] <= 0) {
				done[i] = true
			}
		}
	}
}

// Cue is one cue position of a full trace.
type Cue struct {
	Row    int       // index of the prompt
	Pos    int       // generated tokens up to and including the cue
	Hidden []float32 // hidden state at the cue
	Label  bool      // a forced exit here gives a correct answer
}

// ForcedExits finds every cue of each full trace (Decode without Score), forces an exit after it
// and labels it with correct(row, response tokens); it returns the cues with their hidden states.
func ForcedExits(m Model, prompts [][]int32, traces []Result, e Exit, correct func(row int, resp []int32) bool) ([]Cue, error) {
	var cues []Cue
	var prefixes [][]int32
	full := make([][]int32, len(prompts))
	for i := range prompts {
		full[i] = append(slices.Clone(prompts[i]), traces[i].Tokens...)
	}
	ids, mask := pad(full)
	_, hidden, err := m.LogitsHidden(ids, mask)
	if err != nil {
		return nil, err
	}
	for i, tr := range traces {
		for j, tok := range tr.Tokens {
			if slices.Contains(e.Stop, tok) {
				break
			}
			if !slices.Contains(e.Cues, tok) {
				continue
			}
			p := len(prompts[i]) + j
			cues = append(cues, Cue{Row: i, Pos: j + 1, Hidden: slices.Clone(hidden[i][p])})
			prefixes = append(prefixes, append(slices.Clone(full[i][:p+1]), e.Marker...))
		}
	}
	if len(cues) == 0 {
		return nil, nil
	}
	ans := e
	ans.Score, ans.MaxNew = nil, e.MaxAnswer
	res, err := Decode(m, prefixes, ans)
	if err != nil {
		return nil, err
	}
	for k := range cues {
		c := &cues[k]
		resp := append(append(slices.Clone(traces[c.Row].Tokens[:c.Pos]), e.Marker...), res[k].Tokens...)
		c.Label = correct(c.Row, resp)
	}
	return cues, nil
}

// Probe is a logistic-regression probe on cue hidden states with its calibration scores.
type Probe struct {
	Head     *rollout.AcceptHead `json:"head"` // 0 residual blocks: logistic regression
	CalibNeg []float64           `json:"calib_negative_scores"`
	// CalibTrace holds, per calibration trace, the largest score of its negative cues (0 when it
	// has none): calibrating on these bounds the rate of traces with any premature exit.
	CalibTrace []float64 `json:"calib_trace_max_scores"`
	Cue        string    `json:"cue"`
	Marker     string    `json:"marker"`
	TrainPos   int       `json:"train_positive"`
	TrainNeg   int       `json:"train_negative"`
	CalibSize  int       `json:"calib_size"`
}

// TrainProbe fits the probe on labelled cues by BCE (Adam) and stores the scores of the
// calibration negatives.
func TrainProbe(train, calib []Cue, seed uint64) (*Probe, error) {
	if len(train) == 0 {
		return nil, fmt.Errorf("lynx: no cue to train the probe on")
	}
	dim := len(train[0].Hidden)
	xs := make([][]float32, len(train))
	ys := make([]float64, len(train))
	p := &Probe{Head: rollout.NewAcceptHead(dim, 0, seed), CalibSize: len(calib)}
	for i, c := range train {
		xs[i] = c.Hidden
		if c.Label {
			ys[i] = 1
			p.TrainPos++
		} else {
			p.TrainNeg++
		}
	}
	cfg := rollout.HeadTrainConfig{Epochs: 200, BatchSize: 64, LR: 1e-2, RejectWeight: 1, Seed: seed}
	if _, err := p.Head.Train(xs, ys, cfg); err != nil {
		return nil, err
	}
	traceMax := map[int]float64{}
	var rows []int
	for _, c := range calib {
		if _, ok := traceMax[c.Row]; !ok {
			traceMax[c.Row] = 0 // no wrong-exit cue: nothing to exit at prematurely
			rows = append(rows, c.Row)
		}
		if !c.Label {
			s := p.Head.Predict(c.Hidden)
			p.CalibNeg = append(p.CalibNeg, s)
			traceMax[c.Row] = math.Max(traceMax[c.Row], s)
		}
	}
	for _, r := range rows {
		p.CalibTrace = append(p.CalibTrace, traceMax[r])
	}
	return p, nil
}

func pad(rows [][]int32) (ids, mask [][]int32) {
	T := 0
	for _, r := range rows {
		T = max(T, len(r))
	}
	ids, mask = make([][]int32, len(rows)), make([][]int32, len(rows))
	for i, r := range rows {
		ids[i], mask[i] = make([]int32, T), make([]int32, T)
		copy(ids[i], r)
		for j := range r {
			mask[i][j] = 1
		}
	}
	return ids, mask
}
