package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Example is the n samples drawn for one prompt.
type Example struct {
	ID      string   `json:"id"`
	Samples []Sample `json:"samples"`
}

// Options configure Run. The zero value gives the defaults documented on each field.
type Options struct {
	// K are the k of pass@k and maj@k; default 1, 2, 4, … and the samples per example n.
	K []int
	// N are the Best-of-N sizes; default 1, 2, 4, … and n.
	N []int
	// Strategies are the Best-of-N selectors; default DefaultStrategies().
	Strategies []Strategy
	// Equal compares extracted answers; default exact string equality (normalise when extracting).
	Equal Equal
	// Trials is the number of seeded random subsets per example for maj@k and Best-of-N when the
	// size is below the samples per example; default 64. At full size the result is exact.
	Trials int
	// Seed seeds the subset draws.
	Seed uint64
}

// AtK is one row of the k table.
type AtK struct {
	K       int     `json:"k"`
	PassAtK float64 `json:"pass_at_k"`
	MajAtK  float64 `json:"maj_at_k"`
}

// BestOfN is the accuracy of each strategy (rows) for each N (columns), averaged over examples.
type BestOfN struct {
	N          []int       `json:"n"`
	Strategies []string    `json:"strategies"`
	Accuracy   [][]float64 `json:"accuracy"`
}

// Report is the evaluation of a set of examples.
type Report struct {
	Examples          int     `json:"examples"`
	SamplesPerExample int     `json:"samples_per_example"` // the smallest n over examples
	PassAt1           float64 `json:"pass_at_1"`           // mean correctness over all samples of each example, averaged over examples
	AtK               []AtK   `json:"at_k"`
	MeanLength        float64 `json:"mean_length"`     // mean response tokens over all samples
	TruncationRate    float64 `json:"truncation_rate"` // fraction of samples that hit the token limit
	NoAnswerRate      float64 `json:"no_answer_rate"`  // fraction of samples without an extracted answer
	BestOfN           BestOfN `json:"best_of_n"`
	// PerExample holds one row per example for WriteJSONL.
	PerExample []ExampleResult `json:"-"`
}

// ExampleResult is the per-example line of the JSONL output.
type ExampleResult struct {
	ID        string  `json:"id"`
	N         int     `json:"n"`
	Correct   int     `json:"correct"`
	AtK       []AtK   `json:"at_k"`
	MajAnswer *string `json:"maj_answer"` // majority answer over all n samples (nil: none extracted)
	// Selected is the sample index each strategy picks among all n samples (-1: none).
	Selected   map[string]int `json:"selected"`
	MeanLength float64        `json:"mean_length"`
	Truncated  int            `json:"truncated"`
}

// Run computes pass@1, pass@k, maj@k, length statistics and the Best-of-N table. Its results are
// a deterministic function of examples and opts.
func Run(examples []Example, opts Options) (Report, error) {
	if len(examples) == 0 {
		return Report{}, fmt.Errorf("eval: no examples to evaluate")
	}
	nMin := len(examples[0].Samples)
	for i, ex := range examples {
		if len(ex.Samples) == 0 {
			return Report{}, fmt.Errorf("eval: example %d (%q) has no samples", i, ex.ID)
		}
		nMin = min(nMin, len(ex.Samples))
	}
	ks, err := sizes(opts.K, nMin, "k")
	if err != nil {
		return Report{}, err
	}
	ns, err := sizes(opts.N, nMin, "Best-of-N size")
	if err != nil {
		return Report{}, err
	}
	sts := opts.Strategies
	if len(sts) == 0 {
		sts = DefaultStrategies()
	}
	for i, st := range sts {
		if st.Name == "" || st.Select == nil {
			return Report{}, fmt.Errorf("eval: strategy %d has no name or no Select function", i)
		}
	}
	trials := opts.Trials
	if trials == 0 {
		trials = 64
	} else if trials < 0 {
		return Report{}, fmt.Errorf("eval: trials = %d, want >= 1", trials)
	}

	r := Report{Examples: len(examples), SamplesPerExample: nMin, AtK: make([]AtK, len(ks))}
	r.BestOfN = BestOfN{N: ns, Accuracy: make([][]float64, len(sts))}
	for k, st := range sts {
		r.BestOfN.Strategies = append(r.BestOfN.Strategies, st.Name)
		r.BestOfN.Accuracy[k] = make([]float64, len(ns))
	}
	for i := range ks {
		r.AtK[i].K = ks[i]
	}
	var nSamples, lengthSum, truncated, noAnswer float64
	majority := []Strategy{Majority()}
	for e, ex := range examples {
		n := len(ex.Samples)
		res := ExampleResult{ID: ex.ID, N: n, AtK: make([]AtK, len(ks)), Selected: map[string]int{}}
		for _, s := range ex.Samples {
			if s.Correct {
				res.Correct++
			}
			if s.Truncated {
				res.Truncated++
			}
			if s.Answer == nil {
				noAnswer++
			}
			res.MeanLength += float64(s.Length)
		}
		lengthSum += res.MeanLength
		res.MeanLength /= float64(n)
		nSamples += float64(n)
		truncated += float64(res.Truncated)
		r.PassAt1 += float64(res.Correct) / float64(n)

		for i, k := range ks {
			p, err := PassAtK(n, res.Correct, k)
			if err != nil {
				return Report{}, fmt.Errorf("example %q: %w", ex.ID, err)
			}
			rng := rand.New(rand.NewPCG(opts.Seed, stream(e, k, 0)))
			m := subsetAccuracy(ex.Samples, k, trials, majority, opts.Equal, rng)[0]
			res.AtK[i] = AtK{K: k, PassAtK: p, MajAtK: m}
			r.AtK[i].PassAtK += p
			r.AtK[i].MajAtK += m
		}
		for j, N := range ns {
			rng := rand.New(rand.NewPCG(opts.Seed, stream(e, N, 1)))
			for k, a := range subsetAccuracy(ex.Samples, N, trials, sts, opts.Equal, rng) {
				r.BestOfN.Accuracy[k][j] += a
			}
		}
		for _, st := range sts {
			res.Selected[st.Name] = st.Select(ex.Samples, opts.Equal)
		}
		if w, _ := MajorityVote(answersOf(ex.Samples), opts.Equal); w >= 0 {
			res.MajAnswer = ex.Samples[w].Answer
		}
		r.PerExample = append(r.PerExample, res)
	}
	E := float64(len(examples))
	r.PassAt1 /= E
	for i := range r.AtK {
		r.AtK[i].PassAtK /= E
		r.AtK[i].MajAtK /= E
	}
	for k := range r.BestOfN.Accuracy {
		for j := range r.BestOfN.Accuracy[k] {
			r.BestOfN.Accuracy[k][j] /= E
		}
	}
	r.MeanLength = lengthSum / nSamples
	r.TruncationRate = truncated / nSamples
	r.NoAnswerRate = noAnswer / nSamples
	return r, nil
}

// stream gives each (example, size, kind) its own PCG stream, so adding an example, a k or a
// strategy does not change the subsets drawn for the others.
func stream(example, size, kind int) uint64 {
	return uint64(example)<<32 | uint64(size)<<1 | uint64(kind)
}

// sizes validates the requested k (or N) values, or returns 1, 2, 4, … below n, then n.
func sizes(req []int, n int, what string) ([]int, error) {
	if len(req) == 0 {
		for k := 1; k < n; k *= 2 {
			req = append(req, k)
		}
		return append(req, n), nil
	}
	out := slices.Clone(req)
	slices.Sort(out)
	out = slices.Compact(out)
	for _, k := range out {
		if k < 1 || k > n {
			return nil, fmt.Errorf("eval: %s = %d, want 1 <= %s <= %d (the fewest samples of any example)", what, k, what, n)
		}
	}
	return out, nil
}

// WriteJSONL writes one JSON object per example.
func WriteJSONL(w io.Writer, results []ExampleResult) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("eval: write example %q: %w", r.ID, err)
		}
	}
	return bw.Flush()
}

// WriteTable writes the report as two aligned text tables: the k table and the Best-of-N table
// (strategies × N).
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "examples\tsamples\tpass@1\tmean length\ttruncated\tno answer\t\n")
	fmt.Fprintf(tw, "%d\t%d\t%.4f\t%.1f\t%.4f\t%.4f\t\n\n", r.Examples, r.SamplesPerExample, r.PassAt1,
		r.MeanLength, r.TruncationRate, r.NoAnswerRate)
	fmt.Fprintf(tw, "k\tpass@k\tmaj@k\t\n")
	for _, a := range r.AtK {
		fmt.Fprintf(tw, "%d\t%.4f\t%.4f\t\n", a.K, a.PassAtK, a.MajAtK)
	}
	fmt.Fprintln(tw)
	head := []string{"strategy \\ N"}
	for _, n := range r.BestOfN.N {
		head = append(head, strconv.Itoa(n))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for k, name := range r.BestOfN.Strategies {
		row := []string{name}
		for _, a := range r.BestOfN.Accuracy[k] {
			row = append(row, strconv.FormatFloat(a, 'f', 4, 64))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}
