package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/model"
)

// polo vector extract / apply end to end: a negative scale arrives as a number and the written
// weights equal f32(m − f32(t − b)) bit for bit; bad input exits 2 with one line.
func TestVectorCommand(t *testing.T) {
	tiny, _ := model.Preset("tiny", 13)
	small, _ := model.Preset("small", 13)
	dirs := make([]string, 4)
	for i, c := range []model.Config{tiny, tiny, tiny, small} {
		m, err := model.New(c, int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = t.TempDir()
		if err := m.Save(dirs[i]); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	v := filepath.Join(tmp, "v.safetensors")
	out := filepath.Join(tmp, "out")
	call := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := run(args, strings.NewReader(""), &o, &e)
		return code, o.String(), e.String()
	}
	if code, o, e := call("vector", "extract", "--base", dirs[0], "--tuned", dirs[1], "-o", v); code != 0 || !strings.Contains(o, "wrote") {
		t.Fatalf("extract: exit %d %s %s", code, o, e)
	}
	if code, o, e := call("vector", "apply", "--model", dirs[2], "--vector", v, "--scale", "-1", "-o", out); code != 0 || !strings.Contains(o, "-1·v") {
		t.Fatalf("apply: exit %d %s %s", code, o, e)
	}
	b, _ := model.ReadCheckpointTensors(dirs[0])
	tu, _ := model.ReadCheckpointTensors(dirs[1])
	m, _ := model.ReadCheckpointTensors(dirs[2])
	got, err := model.ReadCheckpointTensors(out)
	if err != nil {
		t.Fatal(err)
	}
	const name = "model.layers.1.mlp.down_proj.weight"
	for i := range m[name].Data {
		want := float32(float64(m[name].Data[i]) - float64(float32(float64(tu[name].Data[i])-float64(b[name].Data[i]))))
		if math.Float32bits(got[name].Data[i]) != math.Float32bits(want) {
			t.Fatalf("%s[%d] = %v, want %v", name, i, got[name].Data[i], want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"vector"}, "usage: polo vector extract"},
		{[]string{"vector", "merge"}, `unknown subcommand "merge"`},
		{[]string{"vector", "extract", "--base", dirs[0]}, "needs --base DIR --tuned DIR -o FILE"},
		{[]string{"vector", "extract", "--base", dirs[0], "--tuned", dirs[3], "-o", v}, "different architectures (hidden_size 64 vs 128)"},
		{[]string{"vector", "apply", "--model", dirs[3], "--vector", v, "-o", out}, "different architecture than"},
		{[]string{"vector", "apply", "--model", dirs[2], "--vector", filepath.Join(dirs[0], "model.safetensors"), "-o", out}, "is not a reasoning vector"},
		{[]string{"vector", "apply", "--model", dirs[2], "--vector", v, "--scale", "x", "-o", out}, "invalid value"},
	} {
		code, _, e := call(c.args...)
		if code != 2 || !strings.Contains(e, c.want) || strings.Count(strings.TrimSpace(e), "\n") > 0 && !strings.Contains(e, "Usage") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, e, c.want)
		}
	}
}
