package metrics

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Sample is one logged generation: a training rollout or a held-out evaluation answer. Reward
// hacking shows in what the model writes long before it shows in the mean reward, so the text is
// kept next to every number that judged it.
type Sample struct {
	Step       int                `json:"step"`
	Phase      string             `json:"phase"` // "rl", or the evaluation's phase ("eval-sft", "eval")
	Kind       string             `json:"kind"`  // "rollout", "eval-greedy", "eval-sampled"
	Group      int                `json:"group"` // prompt index within the step (rollouts)
	Prompt     string             `json:"prompt"`
	Response   string             `json:"response"`
	Reward     float64            `json:"reward"`
	Components map[string]float64 `json:"components,omitempty"` // the named parts the reward combines
	Correct    bool               `json:"correct"`
	Advantage  float64            `json:"advantage"` // mean over the response tokens
	Length     int                `json:"length"`    // response tokens, EOS included
	Finish     string             `json:"finish"`    // "stop" or "length"
	Time       float64            `json:"time,omitempty"`

	// Per response token (log.sample_tokens): the token texts and, where known, the policy's
	// log-prob, the entropy of its distribution, and the token's advantage.
	Tokens     []string  `json:"tokens,omitempty"`
	LogProbs   []float64 `json:"logprobs,omitempty"`
	Entropy    []float64 `json:"entropy,omitempty"`
	Advantages []float64 `json:"advantages,omitempty"`
}

// SamplesLog appends samples as JSON lines to dir/samples-NNNNNN.jsonl, starting a new file when
// the current one passes MaxBytes and deleting the oldest beyond MaxFiles, so a long run's samples
// stay bounded on disk.
type SamplesLog struct {
	dir      string
	maxBytes int64
	maxFiles int
	f        *os.File
	index    int
	size     int64
}

// SampleFilePrefix names the rotated files.
const SampleFilePrefix = "samples-"

// OpenSamples opens dir for appending, continuing the newest existing file. maxBytes ≤ 0 means
// 16 MiB; maxFiles ≤ 0 keeps every file.
func OpenSamples(dir string, maxBytes int64, maxFiles int) (*SamplesLog, error) {
	if maxBytes <= 0 {
		maxBytes = 16 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	files, err := SampleFiles(dir)
	if err != nil {
		return nil, err
	}
	s := &SamplesLog{dir: dir, maxBytes: maxBytes, maxFiles: maxFiles}
	if len(files) > 0 {
		fmt.Sscanf(strings.TrimPrefix(filepath.Base(files[len(files)-1]), SampleFilePrefix), "%d", &s.index)
	}
	return s, s.open()
}

func (s *SamplesLog) open() error {
	path := filepath.Join(s.dir, fmt.Sprintf("%s%06d.jsonl", SampleFilePrefix, s.index))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("samples: %w", err)
	}
	s.f, s.size = f, st.Size()
	return nil
}

// Write appends the samples of one step (one write, so a reader never sees half a step unless
// the process dies mid-write; Read drops a torn last line). Non-finite numbers become 0: JSON has
// none, and a token's -Inf log-prob is rare enough to not be worth a special encoding.
func (s *SamplesLog) Write(samples []Sample) error {
	var buf []byte
	for _, smp := range samples {
		smp.Reward = finite(smp.Reward)
		smp.Advantage = finite(smp.Advantage)
		for k, v := range smp.Components {
			smp.Components[k] = finite(v)
		}
		for _, xs := range [][]float64{smp.LogProbs, smp.Entropy, smp.Advantages} {
			for i := range xs {
				xs[i] = finite(xs[i])
			}
		}
		line, err := json.Marshal(smp)
		if err != nil {
			return fmt.Errorf("samples: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if s.size > 0 && s.size+int64(len(buf)) > s.maxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(buf)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	return nil
}

func (s *SamplesLog) rotate() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	s.index++
	if err := s.open(); err != nil {
		return err
	}
	if s.maxFiles > 0 {
		files, err := SampleFiles(s.dir)
		if err != nil {
			return err
		}
		for len(files) > s.maxFiles {
			os.Remove(files[0])
			files = files[1:]
		}
	}
	return nil
}

// Close closes the current file.
func (s *SamplesLog) Close() error { return s.f.Close() }

// SampleFiles lists dir's sample files, oldest first (an absent dir has none).
func SampleFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), SampleFilePrefix) && strings.HasSuffix(e.Name(), ".jsonl") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadSamples returns every sample in dir's files, oldest first. A torn last line of a file is
// ignored, as in Read.
func ReadSamples(dir string) ([]Sample, error) {
	files, err := SampleFiles(dir)
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("samples: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		var pending error
		line := 0
		for sc.Scan() {
			line++
			if pending != nil {
				f.Close()
				return nil, pending
			}
			var smp Sample
			if err := json.Unmarshal(sc.Bytes(), &smp); err != nil {
				pending = fmt.Errorf("%s line %d: %w", path, line, err)
				continue
			}
			out = append(out, smp)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("samples: %w", err)
		}
	}
	return out, nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// KeepSamples rewrites dir's sample files with only the samples keep accepts (atomically per
// file); a resumed run drops the samples of the steps it will redo, as it does with metrics.
func KeepSamples(dir string, keep func(Sample) bool) error {
	files, err := SampleFiles(dir)
	if err != nil {
		return err
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("samples: %w", err)
		}
		var out []byte
		for _, line := range strings.SplitAfter(string(data), "\n") {
			var s Sample
			if !strings.HasSuffix(line, "\n") || json.Unmarshal([]byte(line), &s) != nil || !keep(s) {
				continue
			}
			out = append(out, line...)
		}
		if len(out) == len(data) {
			continue
		}
		if err := os.WriteFile(path+".tmp", out, 0o644); err != nil {
			return fmt.Errorf("samples: %w", err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return fmt.Errorf("samples: %w", err)
		}
	}
	return nil
}
