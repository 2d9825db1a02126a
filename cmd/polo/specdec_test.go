package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
)

// Bad input to polo specdec: one line, exit 2.
func TestSpecdecErrors(t *testing.T) {
	cfg, _ := model.Preset("tiny", 9)
	m, _ := model.New(cfg, 1)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"specdec"}, "usage: polo specdec train-head"},
		{[]string{"specdec", "run"}, `unknown subcommand "run"`},
		{[]string{"specdec", "bench", "--target", dir}, "need --target DIR and --draft DIR"},
		{[]string{"specdec", "bench", "--target", dir + "/nope", "--draft", dir}, "model folder"},
		{[]string{"specdec", "train-head", "--target", dir, "--draft", dir}, "-o FILE"},
		{[]string{"specdec", "bench", "--target", dir, "--draft", dir, "--limit", "0"}, "--limit/--batch < 1"},
	} {
		var o, e bytes.Buffer
		code := run(c.args, strings.NewReader(""), &o, &e)
		if code != 2 || !strings.Contains(e.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, e.String(), c.want)
		}
	}
}
