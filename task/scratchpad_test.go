package task

import (
	"strconv"
	"strings"
	"testing"
)

func TestScratchpad(t *testing.T) {
	g, err := NewGenerator("scratchpad", map[string]string{"digits": "3"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		ex, _ := g.Next()
		ab := strings.Split(strings.TrimSuffix(ex.Prompt, "="), "+")
		a, _ := strconv.Atoi(ab[0])
		b, _ := strconv.Atoi(ab[1])
		r := ex.Meta["result"]
		// 3 column steps, the result, two checks: 6 cues, the last one before '#'.
		if r != strconv.Itoa(a+b) || !strings.HasSuffix(ex.Answer, "|#"+r) || strings.Count(ex.Answer, "|") != 6 ||
			!strings.Contains(ex.Answer, "|="+r+"|"+r+"-"+ab[1]+"="+strconv.Itoa(a)+"|"+r+"-"+ab[0]+"="+strconv.Itoa(b)+"|") {
			t.Fatalf("%s → %s", ex.Prompt, ex.Answer)
		}
		if c := g.Check(ex.Answer, ex); !c.Correct {
			t.Fatalf("reference %q fails: %s", ex.Answer, c.Reason)
		}
		if c, _ := CheckExample("1+1=2|#"+r, ex); !c.Correct {
			t.Fatalf("early answer not read: %+v", c)
		}
	}
	// early=100: every trace stops after the result.
	ge, _ := NewGenerator("scratchpad", map[string]string{"digits": "2", "early": "100"}, 1)
	if ex, _ := ge.Next(); strings.Count(ex.Answer, "|") != 3 || strings.Contains(ex.Answer, "-") {
		t.Fatalf("early trace %q", ex.Answer)
	}
	ex := Example{Meta: map[string]string{"task": "scratchpad", "result": "632"}}
	for resp, ok := range map[string]bool{
		"7+5=12|4+8+1=13|3+2+1=6|=632|632-285=347|#632": true,
		"7+5=12|#631": false, "=632": false, "#63": false, "#6320": false,
	} {
		if c := g.Check(resp, ex); c.Correct != ok {
			t.Errorf("%q: correct %v, want %v (%s)", resp, c.Correct, ok, c.Reason)
		}
	}
}
