package train

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestProgressToNonTerminal: progress written to a file or pipe is a plain line every 5% of the
// steps, not a redrawn bar repeated at every step (issue 14, minor item).
func TestProgressToNonTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 700, 0)
	for i := 1; i <= 700; i++ {
		p.advance(fmt.Sprintf("sft %d/700 loss 0.5", i))
	}
	p.finish()
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 20 || strings.Contains(out, "\r") {
		t.Fatalf("%d lines (want 20), carriage returns %v:\n%.500s", len(lines), strings.Contains(out, "\r"), out)
	}
	if !strings.HasPrefix(lines[19], "[700/700 100% ") || !strings.HasSuffix(lines[19], "] sft 700/700 loss 0.5") {
		t.Errorf("last line %q", lines[19])
	}
}
