package optparse

import "testing"

func TestParser(t *testing.T) {
	p := New("task addition", map[string]string{"order": " desc ", "flag": "yes", "typo": "1"})
	if got := p.Choice("order", "asc", "asc", "desc"); got != "desc" {
		t.Fatalf("Choice = %q", got)
	}
	if got := p.Bool("absent", true); !got {
		t.Fatal("Bool default")
	}
	if got := p.Bool("flag", false); got {
		t.Fatal("a bad bool must fall back to the default")
	}
	want := `task addition: option flag="yes": want true or false`
	if err := p.Finish(); err == nil || err.Error() != want {
		t.Fatalf("Finish = %v, want %q", err, want)
	}

	p = New("verifier math", map[string]string{"typo": "1", "mode": "x"})
	p.Get("mode")
	want = "verifier math: unknown option(s) typo; valid options: mode"
	if err := p.Finish(); err == nil || err.Error() != want {
		t.Fatalf("Finish = %v, want %q", err, want)
	}
	if err := New("x", nil).Finish(); err != nil {
		t.Fatal(err)
	}
}
