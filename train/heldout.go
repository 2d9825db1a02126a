package train

import (
	"fmt"
	"sort"
	"strings"

	"github.com/polo-rl/polo/task"
)

// maxTestSize bounds task.test_size: every held-out prompt is sampled at each evaluation, so a
// larger set is a mistake (and would take gigabytes to hold).
const maxTestSize = 1_000_000

// fillHeldOut draws task.test_size distinct prompts from the test generator. A task with fewer
// distinct prompts than asked (single-digit addition has 100) would loop forever; instead, once no
// new prompt has turned up in 50 draws per prompt already seen (plus 1000), the generator is taken
// to be exhausted and the configuration is refused. The chance that a uniform generator with even
// one prompt left unseen goes that long without it is below e^-50. Then a probe draw checks that the
// held-out set leaves enough prompts for a training batch.
func (ps *promptSource) fillHeldOut(gen task.Generator) error {
	c := ps.cfg
	draws, misses := 0, 0
	for len(ps.test) < c.Task.TestSize {
		ex, err := gen.Next()
		if err != nil {
			return err
		}
		draws++
		if ps.testKeys[ex.Prompt] {
			if misses++; misses > 50*len(ps.testKeys)+1000 {
				return fmt.Errorf("config field task.test_size: %d held-out prompts asked, but task %s%s has only %d distinct prompts (no new one in the last %d of %d draws); lower task.test_size, leaving prompts for training",
					c.Task.TestSize, c.Task.Name, optionsText(c.Task.Options), len(ps.testKeys), misses-1, draws)
			}
			continue
		}
		misses = 0
		ps.testKeys[ex.Prompt] = true
		ps.test = append(ps.test, ex)
	}
	if len(ps.test) == 0 {
		return nil
	}
	n := max(c.SFT.BatchSize, c.Sampling.PromptsPerStep)
	if _, err := ps.draw("probe", 0, n); err != nil {
		return fmt.Errorf("config field task.test_size: the %d held-out prompts leave too few of task %s%s for training: %w", len(ps.test), c.Task.Name, optionsText(c.Task.Options), err)
	}
	return nil
}

func optionsText(opts map[string]string) string {
	if len(opts) == 0 {
		return ""
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + opts[k]
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
