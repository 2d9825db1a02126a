package train

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/polo-rl/polo/model"
)

// A diverging run (loss, gradients or updated weights NaN or ±Inf) stops with an error by default
// (optim.on_nonfinite: stop); no checkpoint is written after the divergence, so the last checkpoint
// holds finite weights and checkpoint rotation never deletes it in favour of a broken one (the model
// also refuses to save non-finite weights). With optim.on_nonfinite: skip, the step is dropped
// (gradients discarded, weights and optimizer moments untouched: model.Trainer.Step does not apply
// a non-finite update) and the run goes on, until maxSkips steps in a row have been dropped.

// maxSkips is how many optimizer steps in a row may be dropped as non-finite before a run with
// optim.on_nonfinite: skip stops anyway (weights that produce NaN every time will not recover).
const maxSkips = 10

// finiteLoss checks a loss and its gradients before they are backpropagated. It returns ok=false
// (drop this optimizer step) or an error (stop).
func (r *runner) finiteLoss(phase string, step int, loss float64, grads ...[][]float64) (ok bool, err error) {
	what := ""
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		what = fmt.Sprintf("the loss is %v", loss)
	}
	for _, g := range grads {
		for i := range g {
			for j, x := range g[i] {
				if what == "" && (math.IsNaN(x) || math.IsInf(x, 0)) {
					what = fmt.Sprintf("the loss gradient [%d][%d] is %v", i, j, x)
				}
			}
		}
	}
	if what == "" {
		return true, nil
	}
	if r.trainer != nil {
		r.trainer.DropGradients()
	}
	return false, r.nonFinite(phase, step, what)
}

// applyStep takes the optimizer step. A step the model refused as non-finite is dropped
// (applied=false) or stops the run, per optim.on_nonfinite.
func (r *runner) applyStep(phase string, step int, lr float64) (gradNorm float64, applied bool, err error) {
	gradNorm, err = r.trainer.Step(lr)
	if errors.Is(err, model.ErrNonFinite) {
		return gradNorm, false, r.nonFinite(phase, step, err.Error())
	}
	if err != nil {
		return gradNorm, false, err
	}
	r.skips = 0
	return gradNorm, true, nil
}

// nonFinite decides between dropping the step (nil) and stopping (an error saying what diverged,
// which checkpoint is the last good one, and what to change).
func (r *runner) nonFinite(phase string, step int, what string) error {
	if r.cfg.Optim.OnNonFinite == "skip" && r.skips < maxSkips {
		r.skips++
		r.skipped++
		fmt.Fprintf(r.opts.Log, "%s step %d: %s; step dropped (optim.on_nonfinite=skip, %d in a row)\n", phase, step, what, r.skips)
		return nil
	}
	last := "none yet"
	if data, err := os.ReadFile(filepath.Join(r.ckptDir, latestFile)); err == nil {
		last = filepath.Join("checkpoints", strings.TrimSpace(string(data)))
	}
	fix := "lower the learning rate (" + map[bool]string{true: "sft.lr", false: "optim.lr"}[phase == "sft"] + "), set optim.clip_norm > 0, or set optim.on_nonfinite=skip"
	if r.skips >= maxSkips {
		fix = fmt.Sprintf("%d steps in a row were dropped; the weights do not recover: lower the learning rate or set optim.clip_norm > 0", r.skips)
	}
	return fmt.Errorf("training diverged at %s step %d: %s; nothing was checkpointed after it (last checkpoint: %s); %s", phase, step, what, last, fix)
}
