package train

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is the console progress bar (a no-op without a writer). On a terminal it redraws one
// line; written to a file or a pipe it prints a plain line every 5% of the steps instead (a redrawn
// bar would repeat itself thousands of times in a log).
type progress struct {
	bar *progressbar.ProgressBar

	plain       io.Writer // non-terminal destination
	total, done int
	every       int
	start       time.Time
}

func newProgress(w io.Writer, total, done int) *progress {
	if w == nil || total == 0 {
		return &progress{}
	}
	if !isTerminal(w) {
		return &progress{plain: w, total: total, done: done, every: max(1, total/20), start: time.Now()}
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

// isTerminal reports whether w is a character device (a terminal), not a file or pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) advance(desc string) {
	if p.plain != nil {
		p.done++
		if p.done%p.every == 0 || p.done == p.total {
			fmt.Fprintf(p.plain, "[%d/%d %3.0f%% %s] %s\n", p.done, p.total, 100*float64(p.done)/float64(p.total), time.Since(p.start).Round(time.Second), desc)
		}
		return
	}
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
