package train

import (
	"io"

	"github.com/schollz/progressbar/v3"
)

// progress is the console progress bar (a no-op without a writer).
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer, total, done int) *progress {
	if w == nil || total == 0 {
		return &progress{}
	}
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(0),
		progressbar.OptionClearOnFinish(),
	)
	if done > 0 {
		bar.Set(done)
	}
	return &progress{bar: bar}
}

func (p *progress) advance(desc string) {
	if p.bar == nil {
		return
	}
	p.bar.Describe(desc)
	p.bar.Add(1)
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Exit()
	}
}
