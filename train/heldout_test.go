package train

import (
	"strings"
	"testing"
	"time"
)

// TestHeldOutLargerThanTask: a held-out set asking for more distinct prompts than the task has (or
// all of them, leaving none for training) is refused up front with an error naming task.test_size,
// instead of looping forever (issue 14, item 3).
func TestHeldOutLargerThanTask(t *testing.T) {
	cases := []struct {
		sets []string
		want string // "" = accepted
	}{
		{[]string{"task.options.digits=1", "task.test_size=101"}, "task.test_size: 101 held-out prompts asked, but task addition (digits=1) has only 100 distinct prompts"},
		{[]string{"task.test_size=10001"}, "task.test_size: 10001 held-out prompts asked, but task addition (digits=2) has only 10000 distinct prompts"},
		{[]string{"task.options.digits=1", "task.test_size=100"}, "task.test_size: the 100 held-out prompts leave too few of task addition (digits=1) for training"},
		{[]string{"task.options.digits=1", "task.test_size=50"}, ""},
		{[]string{"task.test_size=0"}, "config field task.test_size: want in [1, 1000000]"},
		{[]string{"task.test_size=1000001"}, "config field task.test_size: want in [1, 1000000]"},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() {
			cfg, err := LoadConfig("", c.sets)
			if err == nil {
				err = Check(cfg)
			}
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("%v: Check still running after 2 minutes (an endless held-out loop)", c.sets)
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v, want accepted", c.sets, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: err = %v, want one containing %q", c.sets, err, c.want)
		}
	}
}
