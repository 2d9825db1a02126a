package objective

// Prepared is what the whole-batch phase gives the mini-batches: advantages, which rows and tokens
// take part in the loss, and whole-batch per-token targets (gbpo), all over the rows of the batch
// Prepare saw.
type Prepared struct {
	Advantages [][]float64
	Keep       []bool                 // per row; false drops it from the loss
	Mask       [][]float64            // token selection to multiply into Batch.Mask; nil: unchanged
	Targets    map[string][][]float64 // per-token inputs the loss reads, by input name (bound_target)
	Stats      map[string]float64     // filter statistics (dropped_groups, d3s_smp_keep, …)
}

// Prepare is the whole-batch phase, one call on the whole rollout batch (group statistics need whole
// groups): the advantages, the preset's whole-batch targets (BoundTargeter) and its row and token
// selection (Selector: dynamic sampling, overlong filtering, d3s, TIP, …).
func Prepare(o Objective, b *Batch) (Prepared, error) {
	adv, err := o.Advantages(b)
	if err != nil {
		return Prepared{}, err
	}
	p := Prepared{Advantages: adv, Keep: make([]bool, len(b.Mask)), Targets: map[string][][]float64{}}
	for i := range p.Keep {
		p.Keep[i] = true
	}
	if bt, ok := o.(BoundTargeter); ok {
		if p.Targets[InBoundTarget], err = bt.BoundTargets(b); err != nil {
			return Prepared{}, err
		}
	}
	if s, ok := o.(Selector); ok {
		sel, err := s.Select(b, adv)
		if err != nil {
			return Prepared{}, err
		}
		if sel.Keep != nil {
			p.Keep = sel.Keep
		}
		p.Mask, p.Stats = sel.Mask, sel.Stats
	}
	return p, nil
}

// Apply sets the advantages and targets on b and multiplies its mask by the token selection
// (in place: b.Mask's rows are written).
func (p Prepared) Apply(b *Batch) {
	b.Advantages = p.Advantages
	for name, v := range p.Targets {
		inputSpecs[name].Set(b, v)
	}
	if p.Mask != nil {
		for i := range b.Mask {
			for t := range b.Mask[i] {
				b.Mask[i][t] *= p.Mask[i][t]
			}
		}
	}
}

// Rows lists the kept rows.
func (p Prepared) Rows() []int {
	var rows []int
	for i, k := range p.Keep {
		if k {
			rows = append(rows, i)
		}
	}
	return rows
}
