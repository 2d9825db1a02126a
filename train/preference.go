package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/task"
)

// Preference mode: when algo.name is a pair loss (dpo, ipo, rdpo), every RL step trains on a batch of
// (prompt, chosen, rejected) pairs against the frozen reference instead of sampling. Pairs come from
// preference.path (JSONL) or, without a file, are made from the task: the reference answer is chosen
// and a corrupted answer that the verifier rejects is rejected.

// pair is one preference example.
type pair struct {
	ex               task.Example
	chosen, rejected string
}

// loadPairs reads a JSONL file of {"prompt", "chosen", "rejected"} objects; a malformed row is an
// error naming the file, line and field.
func loadPairs(path string) ([]pair, error) {
	var out []pair
	err := eachJSONLine(path, "preference pairs", func(line int, text []byte) error {
		var row map[string]any
		if err := json.Unmarshal(text, &row); err != nil {
			return fmt.Errorf("%s line %d: %v", path, line, err)
		}
		var p pair
		for _, f := range []struct {
			name string
			dst  *string
		}{{"prompt", &p.ex.Prompt}, {"chosen", &p.chosen}, {"rejected", &p.rejected}} {
			v, ok := row[f.name].(string)
			if !ok || v == "" {
				return fmt.Errorf("%s line %d: field %q: want a non-empty string", path, line, f.name)
			}
			*f.dst = v
		}
		p.ex.ID = fmt.Sprintf("%s:%d", path, line)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no preference pairs", path)
	}
	return out, nil
}

// eachJSONLine calls fn with the number (from 1) and text of every non-blank line of the file at
// path, lines up to 64 MiB; label names the file when it cannot be opened. fn's error stops the
// read and is returned as it is.
func eachJSONLine(path, label string, fn func(line int, text []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if err := fn(line, text); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// drawPairs returns the pairs of one step, reproducibly from (seed, step).
func (r *runner) drawPairs(step int) ([]pair, error) {
	n := r.cfg.Preference.BatchSize
	rng := rand.New(rand.NewPCG(seedFor(r.cfg.Seed, "pairs", step), 0))
	if r.pairData != nil {
		out := make([]pair, n)
		for i := range out {
			out[i] = r.pairData[rng.IntN(len(r.pairData))]
		}
		return out, nil
	}
	exs, err := r.prompts.draw("pairs", step, n)
	if err != nil {
		return nil, err
	}
	out := make([]pair, 0, n)
	for _, ex := range exs {
		wrong, ok := r.corrupt(ex, rng)
		if !ok {
			return nil, fmt.Errorf("example %s: could not make a wrong answer from %q for a synthetic pair; give preference.path", ex.ID, ex.Answer)
		}
		out = append(out, pair{ex: ex, chosen: ex.Answer, rejected: wrong})
	}
	return out, nil
}

// corrupt makes a near-miss wrong answer (one character changed, digits to other digits) that the
// verifier scores as incorrect.
func (r *runner) corrupt(ex task.Example, rng *rand.Rand) (string, bool) {
	ans := []rune(ex.Answer)
	if len(ans) == 0 {
		return "", false
	}
	alphabet := []rune(r.prompts.alphabet)
	for range 20 {
		out := append([]rune(nil), ans...)
		i := rng.IntN(len(out))
		switch {
		case out[i] >= '0' && out[i] <= '9':
			out[i] = '0' + (out[i]-'0'+rune(1+rng.IntN(9)))%10
		case len(alphabet) > 0:
			out[i] = alphabet[rng.IntN(len(alphabet))]
		default:
			out = append(out, out[i])
		}
		if s := string(out); !r.score(s, ex).Correct {
			return s, true
		}
	}
	return "", false
}

// preferenceStep is one optimizer step of the pair loss on a fresh batch of pairs.
func (r *runner) preferenceStep(step, total int) (map[string]float64, error) {
	pairs, err := r.drawPairs(step)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	n := len(pairs)
	prompts := make([][]int32, 2*n)
	conts := make([][]int32, 2*n)
	for i, p := range pairs {
		ids, err := r.codec.prompt(p.ex)
		if err != nil {
			return nil, err
		}
		prompts[i], prompts[n+i] = ids, ids
		conts[i] = append(r.codec.tok.Encode(p.chosen), r.codec.eos)
		conts[n+i] = append(r.codec.tok.Encode(p.rejected), r.codec.eos)
	}
	ids, mask := sequences(prompts, conts, r.codec.pad)
	logp, _, err := r.policy.LogProbs(ids, mask)
	if err != nil {
		return nil, err
	}
	refLogp, _, err := r.ref.LogProbs(ids, mask)
	if err != nil {
		return nil, err
	}
	seqSum := func(pos [][]float32, row int) float64 {
		s := 0.0
		for j := range conts[row] {
			s += float64(pos[row][len(prompts[row])-1+j])
		}
		return s
	}
	pb := &objective.PairBatch{}
	for i := range n {
		pb.ChosenLogP = append(pb.ChosenLogP, seqSum(logp, i))
		pb.RejectedLogP = append(pb.RejectedLogP, seqSum(logp, n+i))
		pb.RefChosenLogP = append(pb.RefChosenLogP, seqSum(refLogp, i))
		pb.RefRejectedLogP = append(pb.RefRejectedLogP, seqSum(refLogp, n+i))
		pb.ChosenLen = append(pb.ChosenLen, float64(len(conts[i])))
		pb.RejectedLen = append(pb.RejectedLen, float64(len(conts[n+i])))
	}
	res, err := r.pairObj.PairLoss(pb)
	if err != nil {
		return nil, err
	}
	// The loss depends on each sequence only through its log-prob sum, so every token of a response
	// gets that response's gradient.
	coef := make([][]float32, 2*n)
	for row := range coef {
		coef[row] = make([]float32, len(ids[row])-1)
		g := res.GradChosenLogP
		k := row
		if row >= n {
			g, k = res.GradRejectedLogP, row-n
		}
		for j := range conts[row] {
			coef[row][len(prompts[row])-1+j] = float32(g[k])
		}
	}
	nll, chosenTokens := 0.0, 0
	for i := range n {
		chosenTokens += len(conts[i])
		nll -= seqSum(logp, i)
	}
	if w := r.cfg.Preference.SFTWeight; w > 0 {
		for i := range n {
			for j := range conts[i] {
				coef[i][len(prompts[i])-1+j] -= float32(w / float64(chosenTokens))
			}
		}
	}
	lr := learningRate(r.cfg.Optim, r.cfg.Optim.LR, step, total)
	gradNorm, skipped := math.NaN(), 1.0
	loss := res.Loss + r.cfg.Preference.SFTWeight*nll/float64(chosenTokens)
	if ok, err := r.finiteLoss("rl", step, loss, [][]float64{res.GradChosenLogP, res.GradRejectedLogP}); err != nil {
		return nil, err
	} else if ok {
		if _, err := r.accumulate(ids, mask, coef, nil); err != nil {
			return nil, err
		}
		var applied bool
		if gradNorm, applied, err = r.applyStep("rl", step, lr); err != nil {
			return nil, err
		} else if applied {
			skipped = 0
		}
	}
	vals := map[string]float64{"loss": res.Loss + r.cfg.Preference.SFTWeight*nll/float64(chosenTokens),
		"chosen_nll": nll / float64(chosenTokens), "grad_norm": gradNorm, "lr": lr, "pairs": float64(n), "train_s": time.Since(t0).Seconds()}
	if skipped == 1 {
		vals["skipped"] = 1
		delete(vals, "grad_norm")
	}
	for k, v := range res.Metrics {
		vals[k] = v
	}
	return vals, nil
}
