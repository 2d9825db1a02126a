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
		// 3 column steps, the result, the check: 5 cues, the last one before '#'.
		if r != strconv.Itoa(a+b) || !strings.HasSuffix(ex.Answer, "|#"+r) || strings.Count(ex.Answer, "|") != 5 ||
			!strings.Contains(ex.Answer, "|="+r+"|"+r+"-"+ab[1]+"="+strconv.Itoa(a)+"|") {
			t.Fatalf("%s → %s", ex.Prompt, ex.Answer)
		}
		if c := g.Check(ex.Answer, ex); !c.Correct {
			t.Fatalf("reference %q fails: %s", ex.Answer, c.Reason)
		}
		if c, _ := CheckExample("1+1=2|#"+r, ex); !c.Correct {
			t.Fatalf("early answer not read: %+v", c)
		}
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
