package objective

// DistConfig tells the trainer how to compute the inputs that need the old policy's full next-token
// distribution (the model computes them in its graph; see model.DistStats).
type DistConfig struct {
	// MinPKappa and MinPFixed define Lp-Reg's min-p proxy (proxy_logp): tokens with p ≥ kappa·max p
	// (fixed: p ≥ kappa) keep their mass.
	MinPKappa float64
	MinPFixed bool
	// TargetTemperature gives DCPO's target temperature from the policy's mean entropy (target_ratio),
	// one of TargetTemperatures; nil when the objective reads no target_ratio.
	TargetTemperature  func(meanEntropy float64) float64
	TargetTemperatures []float64
}

// DistInputs is implemented by objectives that declare proxy_logp or target_ratio.
type DistInputs interface {
	DistConfig() DistConfig
}

// DistConfig implements DistInputs.
func (s *Surrogate) DistConfig() DistConfig { return s.dist }
