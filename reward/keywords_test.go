package reward

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polo-rl/polo/task"
)

func writeDict(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kw.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Hand-worked scores: gold born_in with dictionary {born, birthplace, native of}.
func TestKeywordsVerifier(t *testing.T) {
	dict := writeDict(t, `{"born_in": ["born", "Birthplace", "native of"], "works_for": ["works for", "hired"]}`)
	ex := task.Example{Answer: "born_in"}
	resp := "<focus>Ana, a native of Lyon, was born there</focus><keywords>a native of, Lyon, the</keywords><relation>Born_In</relation>"
	cases := []struct {
		opts  map[string]string
		resp  string
		value float64
		ok    bool
	}{
		// hit: "a native of" contains "native of" → 1; right relation → 1 + 1.
		{map[string]string{}, resp, 2, true},
		// precision: 1 of 3 listed keywords matches → 1/3, weight 0.5.
		{map[string]string{"score": "precision", "weight": "0.5"}, resp, 1 + 0.5/3, true},
		// coverage: "native of" and "born" occur in the explanation, "birthplace" does not → 2/3.
		{map[string]string{"score": "coverage"}, resp, 1 + 2.0/3, true},
		// max_keywords=1 keeps only "a native of" → precision 1.
		{map[string]string{"score": "precision", "max_keywords": "1"}, resp, 2, true},
		// wrong relation with the right keyword: 0 + 1.
		{map[string]string{}, "<keywords>born</keywords><relation>works_for</relation>", 1, false},
		// keyword of another relation: no hit; "reborn" is not the whole word "born".
		{map[string]string{}, "<keywords>hired, reborn</keywords><relation>born_in</relation>", 1, true},
		// no tags at all: nothing.
		{map[string]string{}, "born_in", 0, false},
		// incorrect=-1 shifts only the accuracy part.
		{map[string]string{"incorrect": "-1"}, "<keywords>born</keywords>", 0, false},
	}
	for i, c := range cases {
		opts := map[string]string{"dict": dict}
		for k, v := range c.opts {
			opts[k] = v
		}
		v, err := NewVerifier("keywords", opts)
		if err != nil {
			t.Fatal(err)
		}
		s := v.Verify(c.resp, ex)
		if math.Abs(s.Value-c.value) > 1e-12 || s.Correct != c.ok {
			t.Errorf("case %d: value %v correct %v (%s), want %v %v", i, s.Value, s.Correct, s.Reason, c.value, c.ok)
		}
	}
}

func TestKeywordsErrors(t *testing.T) {
	for _, c := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{}, "needs option dict=FILE"},
		{map[string]string{"dict": "/nonexistent/kw.json"}, "keyword dictionary"},
		{map[string]string{"dict": writeDict(t, `["born"]`)}, "JSON object of relation"},
		{map[string]string{"dict": writeDict(t, `{"born_in": [" "]}`)}, "has no keyword"},
		{map[string]string{"dict": writeDict(t, `{"a": ["b"]}`), "score": "f1"}, "score"},
	} {
		_, err := NewVerifier("keywords", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.opts, err, c.want)
		}
	}
}

// The dictionary is rebuilt from correct responses only; a keyword used across relations drops out.
func TestBuildKeywordDict(t *testing.T) {
	r := func(kw, rel string) string { return "<keywords>" + kw + "</keywords><relation>" + rel + "</relation>" }
	resps := []string{r("born, the", "born_in"), r("born", "born_in"), r("the, hired", "works_for"), r("hired", "works_for"), r("married", "born_in")}
	gold := []string{"born_in", "born_in", "works_for", "works_for", "spouse_of"}
	d, err := BuildKeywordDict(resps, gold, 2, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || strings.Join(d["born_in"], ",") != "born" || strings.Join(d["works_for"], ",") != "hired" {
		t.Fatalf("dict %v", d)
	}
}

// The committed demo set: every prompt is in the structured format, every gold relation is in the
// dictionary, and the four response kinds score as designed under hit.
func TestCogRETestdata(t *testing.T) {
	dir := filepath.Join("..", "testdata", "cogre")
	d, err := LoadKeywordDict(filepath.Join(dir, "keywords.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 6 {
		t.Fatalf("%d relations", len(d))
	}
	prompt := task.CogREPrompt("A was born in B.", "A", "B", []string{"born_in"})
	if !strings.Contains(prompt, "Step 2 (keywords)") || !strings.HasSuffix(prompt, "<relation>...</relation>") {
		t.Fatalf("prompt %q", prompt)
	}
}
