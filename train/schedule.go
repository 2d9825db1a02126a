package train

import "math"

// learningRate is the rate for optimizer step `step` (1-based) of `total`: linear warm-up over
// warmup steps, then constant or cosine decay to minRatio·lr at the last step.
func learningRate(o OptimConfig, lr float64, step, total int) float64 {
	if o.WarmupSteps > 0 && step <= o.WarmupSteps {
		return lr * float64(step) / float64(o.WarmupSteps)
	}
	if o.Schedule != "cosine" || total <= o.WarmupSteps {
		return lr
	}
	progress := float64(step-o.WarmupSteps) / float64(total-o.WarmupSteps)
	progress = math.Min(math.Max(progress, 0), 1)
	floor := o.MinLRRatio * lr
	return floor + (lr-floor)*0.5*(1+math.Cos(math.Pi*progress))
}
