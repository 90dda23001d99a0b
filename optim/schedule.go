package optim

// LRAt is the learning rate of optimizer step s (0-based): linear warmup, then linear decay.
//
//	s < W:       LR · (s+1)/W                          (the first step already learns)
//	W ≤ s < D:   LR − (LR − FinalLR) · (s − W)/(D − W)
//	s ≥ D:       FinalLR                               (D = DecaySteps; D = 0: LR forever)
func (c Config) LRAt(s int64) float64 {
	W, D := c.WarmupSteps, c.DecaySteps
	switch {
	case s < 0:
		return 0
	case s < W:
		return c.LR * float64(s+1) / float64(W)
	case D == 0:
		return c.LR
	case s >= D:
		return c.FinalLR
	}
	return c.LR - (c.LR-c.FinalLR)*float64(s-W)/float64(D-W)
}
