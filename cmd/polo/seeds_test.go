package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
)

// Bad input to polo lynx, value and data: one line, exit 2.
func TestSeedCommandErrors(t *testing.T) {
	cfg, _ := model.Preset("tiny", 9)
	m, _ := model.New(cfg, 1)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "probe.json")
	os.WriteFile(bad, []byte(`{"head": null}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lynx"}, "usage: polo lynx calibrate"},
		{[]string{"lynx", "calibrate", "--model", dir}, "needs --model DIR -o FILE"},
		{[]string{"lynx", "eval", "--model", dir, "--probe", bad}, "not a probe written by polo lynx calibrate"},
		{[]string{"lynx", "eval", "--model", dir, "--probe", bad + "x"}, "no such file"},
		{[]string{"value"}, "usage: polo value train"},
		{[]string{"value", "train", "--model", dir}, "needs --model DIR -o FILE"},
		{[]string{"value", "eval", "--model", dir, "--critic", bad}, "model folder"},
		{[]string{"data"}, "usage: polo data select"},
		{[]string{"prompt"}, "usage: polo prompt optimize"},
		{[]string{"prompt", "optimize", "--model", dir, "--budget", "1"}, "--budget >= 2"},
		{[]string{"data", "select", "--model", dir}, "needs --model DIR --data FILE -o OUT"},
		{[]string{"data", "select", "--model", dir, "--data", bad, "-o", bad, "--quality", "best"}, "--quality"},
	} {
		var o, e bytes.Buffer
		code := run(c.args, strings.NewReader(""), &o, &e)
		if code != 2 || !strings.Contains(e.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, e.String(), c.want)
		}
	}
}
