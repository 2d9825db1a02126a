package jinja

import (
	"strings"
	"testing"

	"github.com/polo-rl/polo/internal/memlimit"
)

// TestRenderLimits: hostile templates end with an error naming the limit (issue 14, item 5), and
// Jinja2's errors (division by zero, reading from an undefined value) are errors here too.
func TestRenderLimits(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}`, "recursion deeper than 200 calls (macro f)"},
		{`{% macro f(n) %}x{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5000) }}`, "recursion deeper than 200 calls"},
		{`{% for i in range(100000000) %}{% endfor %}`, "range(0, 100000000, 1) has more than the 1000000 items"},
		{`{% for i in range(1000000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}`, "more than 1000000 loop iterations"},
		{`{% set ns = namespace(s="ab") %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}`, "is more than the 67108864 a template may build"},
		{`{% set ns = namespace(s="ab") %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}`, "is more than the 67108864 a template may build"},
		{`{{ "ab" * 1000000000000 }}`, "1000000000000 × a 2-byte string is more than the 67108864 bytes"},
		{`{% for i in range(1000000) %}{{ "x" * 100 }}{% endfor %}`, "output of more than 67108864 bytes"},
		{`{{ "a\nb" | indent(1000000000000) }}`, "indent: width 1000000000000 is outside"},
		{`{{ [1] | tojson(indent=-1) }}`, "tojson: indent -1 is outside"},
		{`{{ 1/0 }}`, "division by zero in 1 / 0"},
		{`{{ 7 // 0 }}`, "division by zero"},
		{`{{ 7 % 0.0 }}`, "division by zero"},
		{`{{ messages[5].content }}`, "messages[item] is undefined (reading its attribute \"content\")"},
		{`{{ nothing["x"] }}`, "nothing is undefined (reading an item of it)"},
		{strings.Repeat("(", 1000) + "1" + strings.Repeat(")", 1000), "expression nested deeper than 200 levels"},
		{"{{ " + strings.Repeat("not ", 1000) + "1 }}", "expression nested deeper than 200 levels"},
		{strings.Repeat("{% if 1 %}", 1000) + strings.Repeat("{% endif %}", 1000), "blocks nested deeper than 200 levels"},
	}
	for _, c := range cases {
		src := c.src
		if !strings.Contains(src, "{") {
			src = "{{ " + src + " }}"
		}
		tmpl, err := Compile(src)
		if err == nil {
			_, err = tmpl.RenderValues(map[string]Value{"messages": NewList([]Value{NewString("hi")})})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.80s: err = %v, want one containing %q", c.src, err, c.want)
		}
	}
	// Within the limits everything renders as before; a missing list index is "" as in Jinja2.
	tmpl, err := Compile(`{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(150) | length }} {{ range(1000) | length }} {{ "ab" * 3 }} {{ [1, 2][5] }}|{{ 7 / 2 }}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.RenderValues(nil)
	if err != nil || out != "342 1000 ababab |3.5" {
		t.Fatalf("render within limits: %q, %v", out, err)
	}
}

// TestHostileTemplatesUnderMemoryLimit: unbounded recursion (a fatal Go stack overflow before) and
// range(100000000) (7 GB before) end with errors in a process limited to 512 MiB more than it started
// with.
func TestHostileTemplatesUnderMemoryLimit(t *testing.T) {
	srcs := []string{
		`{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}`,
		`{% for i in range(100000000) %}{{ i }}{% endfor %}`,
		`{% set ns = namespace(s="ab") %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}`,
	}
	if memlimit.InChild() {
		var msgs []string
		for _, src := range srcs {
			tmpl, err := Compile(src)
			if err == nil {
				_, err = tmpl.RenderValues(nil)
			}
			if err == nil {
				msgs = append(msgs, "rendered")
			} else {
				msgs = append(msgs, err.Error())
			}
		}
		memlimit.Report(errorString(strings.Join(msgs, " | ")))
	}
	res := memlimit.Run(t, "TestHostileTemplatesUnderMemoryLimit", 512)
	res.Expect(t, "recursion deeper than 200 calls (macro f): the template recurses without end | range(0, 100000000, 1) has more than the 1000000 items a template may build | a string of 134217728 bytes is more than the 67108864 a template may build")
}

type errorString string

func (e errorString) Error() string { return string(e) }
