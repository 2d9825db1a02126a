package train

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/polo-rl/polo/objective"
)

// This file computes the objective inputs that need the model beyond the rollout's own log-probs:
// each is computed only when the objective declares it.

// driftStateKey names the drift memory in checkpoints (runState.Extra).
const driftStateKey = "drift_memory"

// driftEntry is a prompt's last visit: one of its responses and that response's log-probs under the
// policy right after the visit's update (SPO's π_then).
type driftEntry struct {
	Prompt []int32   `json:"prompt"`
	Resp   []int32   `json:"resp"`
	LogP   []float64 `json:"logp"`
}

// measureDrift fills the objective's "drift" input after this step's update: for each row, the mean
// over tokens of |log π_now(y) − log π_then(y)| on the response y stored at its prompt's previous visit
// (0 on a first visit), π_now the policy after this update. It then stores this visit (the first row
// of each prompt) with its log-probs under π_now. One forward pass covers both.
func (r *runner) measureDrift(b *rolloutBatch) ([]float64, error) {
	if r.driftMem == nil {
		r.driftMem = map[string]driftEntry{}
	}
	first := map[string]int{}
	var keys []string
	for i := range b.rows() {
		k := promptKey(b, i)
		if _, ok := first[k]; !ok {
			first[k] = i
			keys = append(keys, k)
		}
	}
	var prompts, resps [][]int32
	var prev []string
	for _, k := range keys {
		if e, ok := r.driftMem[k]; ok {
			prompts, resps = append(prompts, e.Prompt), append(resps, e.Resp)
			prev = append(prev, k)
		}
	}
	for _, k := range keys {
		prompts, resps = append(prompts, b.prompts[first[k]]), append(resps, b.resps[first[k]])
	}
	lp, err := r.responseLogProbs(prompts, resps)
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	drift := map[string]float64{}
	for j, k := range prev {
		e := r.driftMem[k]
		var s float64
		for t := range e.Resp {
			s += math.Abs(lp[j][t] - e.LogP[t])
		}
		drift[k] = s / math.Max(float64(len(e.Resp)), 1)
	}
	for j, k := range keys {
		i := first[k]
		r.driftMem[k] = driftEntry{Prompt: b.prompts[i], Resp: b.resps[i], LogP: lp[len(prev)+j][:len(b.resps[i])]}
	}
	out := make([]float64, b.rows())
	for i := range out {
		out[i] = drift[promptKey(b, i)]
	}
	return out, nil
}

// responseLogProbs returns the policy's log-probs of each response's tokens given its prompt.
func (r *runner) responseLogProbs(prompts, resps [][]int32) ([][]float64, error) {
	ids, mask := sequences(prompts, resps, r.codec.pad)
	logp, _, err := r.policy.LogProbs(ids, mask)
	if err != nil {
		return nil, err
	}
	return responseValues(&rolloutBatch{prompts: prompts, resps: resps}, logp, r.cfg.Sampling.MaxNewTokens), nil
}

func (r *runner) saveDrift(st *runState) error {
	if r.driftMem == nil {
		return nil
	}
	data, err := json.Marshal(r.driftMem)
	if err != nil {
		return err
	}
	if st.Extra == nil {
		st.Extra = map[string][]byte{}
	}
	st.Extra[driftStateKey] = data
	return nil
}

func (r *runner) loadDrift(st runState) error {
	data, ok := st.Extra[driftStateKey]
	if !ok {
		return nil
	}
	r.driftMem = map[string]driftEntry{}
	if err := json.Unmarshal(data, &r.driftMem); err != nil {
		return fmt.Errorf("drift memory: %w", err)
	}
	return nil
}

// afterBatch tells a BatchObserver objective that this RL step's optimizer steps are done, with the
// inputs it declares for that moment (drift), and returns its metrics.
func (r *runner) afterBatch(b *rolloutBatch, ob *objective.Batch) (map[string]float64, error) {
	so, ok := r.obj.(objective.BatchObserver)
	if !ok {
		return nil, nil
	}
	if objective.Declares(r.obj, "drift") {
		d, err := r.measureDrift(b)
		if err != nil {
			return nil, err
		}
		ob.Drift = d
	}
	if r.opts.observe != nil {
		r.opts.observe("after", ob)
	}
	return so.AfterBatch(ob)
}

// temperatureStats summarises the per-token sampling temperatures of a rollout batch (objectives that
// set them: Tempering).
func temperatureStats(b *rolloutBatch, vals map[string]float64) {
	var n, sum float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, ts := range b.temps {
		for _, t := range ts {
			x := float64(t)
			n++
			sum += x
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	if n == 0 {
		return
	}
	vals["sampling_temp_mean"], vals["sampling_temp_min"], vals["sampling_temp_max"] = sum/n, lo, hi
}
