package task

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

const fixtures = "../testdata/task/"

func TestLoadJSONLStyles(t *testing.T) {
	gf, gopts := GSM8K()
	mf, mopts := MATH()
	mf.Meta = []string{"level", "type"}
	tests := []struct {
		file    string
		fields  Fields
		opts    LoadOptions
		answers []string
		ids     []string
	}{
		{"gsm8k_sample.jsonl", gf, gopts, []string{"72", "10", "5000"}, []string{"gsm8k_sample.jsonl:1", "gsm8k_sample.jsonl:2", "gsm8k_sample.jsonl:4"}},
		{"math_sample.jsonl", mf, mopts, []string{`\frac{3}{4}`, "2"}, []string{"math_sample.jsonl:1", "math_sample.jsonl:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, err := LoadJSONL(fixtures+tt.file, tt.fields, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got, ids []string
			for _, ex := range d.Examples {
				got = append(got, ex.Answer)
				ids = append(ids, ex.ID)
			}
			if !reflect.DeepEqual(got, tt.answers) || !reflect.DeepEqual(ids, tt.ids) {
				t.Fatalf("answers %q ids %q, want %q %q", got, ids, tt.answers, tt.ids)
			}
		})
	}
	d, _ := LoadJSONL(fixtures+"math_sample.jsonl", mf, mopts)
	if d.Examples[0].Meta["level"] != "Level 1" || d.Examples[1].Meta["type"] != "Algebra" {
		t.Fatalf("meta not copied: %v", d.Examples[0].Meta)
	}
	if !strings.HasPrefix(d.Examples[0].Prompt, `What is $\frac{1}{2}`) {
		t.Fatalf("prompt %q", d.Examples[0].Prompt)
	}
}

func TestLoadJSONLMalformed(t *testing.T) {
	f, o := GSM8K()
	// stop: the first bad row (line 2, no marker) fails with file, line and field.
	_, err := LoadJSONL(fixtures+"malformed.jsonl", f, o)
	var re *RowError
	if !errors.As(err, &re) || re.Row != "line 2" || re.Field != "answer" || !strings.Contains(err.Error(), "malformed.jsonl") {
		t.Fatalf("stop mode error = %v", err)
	}
	// skip: every bad row is recorded, in order, and written to Warn.
	var warn bytes.Buffer
	o.OnError, o.Warn = "skip", &warn
	d, err := LoadJSONL(fixtures+"malformed.jsonl", f, o)
	if err != nil {
		t.Fatal(err)
	}
	// Line 5 has a numeric question: accepted as "5".
	if d.Len() != 2 || d.Examples[0].Answer != "1" || d.Examples[1].Prompt != "5" {
		t.Fatalf("kept %+v", d.Examples)
	}
	wantRows := []string{"line 2", "line 3", "line 4", "line 6"}
	wantFields := []string{"answer", "", "question", "question"}
	if len(d.Skipped) != len(wantRows) {
		t.Fatalf("skipped %v", d.Skipped)
	}
	for i, e := range d.Skipped {
		re := e.(*RowError)
		if re.Row != wantRows[i] || re.Field != wantFields[i] {
			t.Errorf("skip %d = %v, want %s field %q", i, e, wantRows[i], wantFields[i])
		}
	}
	if strings.Count(warn.String(), "skipped:") != 4 {
		t.Fatalf("warn output %q", warn.String())
	}
}

func TestLoadChat(t *testing.T) {
	d, err := LoadJSONL(fixtures+"chat_sample.jsonl", Fields{ID: "id", Messages: "messages", Answer: "answer"}, LoadOptions{OnError: "skip"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Message{{"system", "Be brief."}, {"user", "2+2?"}}
	if d.Len() != 1 || d.Examples[0].ID != "c1" || d.Examples[0].Answer != "4" || !reflect.DeepEqual(d.Examples[0].Messages, want) {
		t.Fatalf("got %+v", d.Examples)
	}
	if len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0].Error(), `field "messages": message 0`) {
		t.Fatalf("skipped %v", d.Skipped)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		fields Fields
		opts   LoadOptions
		path   string
		want   string
	}{
		{Fields{Answer: "a"}, LoadOptions{}, fixtures + "gsm8k_sample.jsonl", "set Prompt or Messages"},
		{Fields{Prompt: "q"}, LoadOptions{}, fixtures + "gsm8k_sample.jsonl", "set Answer"},
		{Fields{Prompt: "q", Answer: "a"}, LoadOptions{OnError: "ignore"}, fixtures + "gsm8k_sample.jsonl", `on_error "ignore"`},
		{Fields{Prompt: "q", Answer: "a"}, LoadOptions{AnswerStyle: "latex"}, fixtures + "gsm8k_sample.jsonl", `answer_style "latex"`},
		{Fields{Prompt: "q", Answer: "a"}, LoadOptions{}, fixtures + "nope.jsonl", "no such file"},
	}
	for _, tt := range tests {
		_, err := LoadJSONL(tt.path, tt.fields, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
}

type pqMsg struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

type pqRow struct {
	Question string  `parquet:"question"`
	Answer   string  `parquet:"answer"`
	Messages []pqMsg `parquet:"messages,list"`
	Level    int64   `parquet:"level"`
}

// TestLoadParquet writes a small shard and checks it loads the same examples as the JSONL path.
func TestLoadParquet(t *testing.T) {
	rows := []pqRow{
		{"Natalia sold 48 clips.", "#### 72", []pqMsg{{"user", "hi"}}, 1},
		{"Empty answer row", "", nil, 2},
		{"Weng earns $12.", "so #### 10", nil, 3},
	}
	path := filepath.Join(t.TempDir(), "train.parquet")
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, o := GSM8K()
	f.Meta = []string{"level"}
	_, err := LoadParquet(path, f, o)
	if err == nil || !strings.Contains(err.Error(), `row 1: field "answer": empty`) {
		t.Fatalf("stop mode: %v", err)
	}
	o.OnError = "skip"
	d, err := LoadParquet(path, f, o)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 || d.Examples[0].Answer != "72" || d.Examples[1].Answer != "10" || d.Examples[1].Meta["level"] != "3" || len(d.Skipped) != 1 {
		t.Fatalf("got %+v skipped %v", d.Examples, d.Skipped)
	}
	d2, err := LoadParquet(path, Fields{Messages: "messages", Answer: "answer"}, LoadOptions{AnswerStyle: AnswerGSM8K, OnError: "skip"})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Len() != 1 || !reflect.DeepEqual(d2.Examples[0].Messages, []Message{{"user", "hi"}}) {
		t.Fatalf("messages: %+v", d2.Examples)
	}
	_, err = LoadParquet(path, Fields{Prompt: "problem", Answer: "answer"}, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), `no column "problem" (columns: question, answer, messages, level)`) {
		t.Fatalf("missing column: %v", err)
	}
	_, err = LoadParquet(fixtures+"gsm8k_sample.jsonl", f, o)
	if err == nil || !strings.Contains(err.Error(), "not a readable Parquet file") {
		t.Fatalf("not parquet: %v", err)
	}
}

func TestSplitShuffleIter(t *testing.T) {
	d := &Dataset{Name: "d"}
	for i := 0; i < 10; i++ {
		d.Examples = append(d.Examples, Example{ID: string(rune('a' + i))})
	}
	ids := func(xs []Example) string {
		var s strings.Builder
		for _, x := range xs {
			s.WriteString(x.ID)
		}
		return s.String()
	}
	tr, te := d.Split(0.3, 7)
	tr2, te2 := d.Split(0.3, 7)
	if te.Len() != 3 || tr.Len() != 7 || ids(te.Examples) != ids(te2.Examples) || ids(tr.Examples) != ids(tr2.Examples) {
		t.Fatalf("split not deterministic: %s|%s vs %s|%s", ids(tr.Examples), ids(te.Examples), ids(tr2.Examples), ids(te2.Examples))
	}
	all := []byte(ids(tr.Examples) + ids(te.Examples))
	if len(all) != 10 || ids(d.Shuffled(7).Examples) == ids(d.Shuffled(8).Examples) {
		t.Fatalf("split lost examples or seed ignored")
	}
	seen := map[byte]bool{}
	for _, c := range all {
		seen[c] = true
	}
	if len(seen) != 10 {
		t.Fatalf("split duplicated examples: %s", all)
	}
	if d.Examples[0].ID != "a" {
		t.Fatalf("Split mutated the dataset")
	}
	// A non-looping iterator yields a permutation then io.EOF; a looping one keeps going.
	it := d.Iter(3, false)
	got, err := Take(it, 20)
	if err != nil || len(got) != 10 {
		t.Fatalf("took %d, %v", len(got), err)
	}
	if _, err := it.Next(); err != io.EOF {
		t.Fatalf("want io.EOF, got %v", err)
	}
	loop, _ := Take(d.Iter(3, true), 25)
	if len(loop) != 25 || ids(loop[:10]) != ids(got) {
		t.Fatalf("looping iterator: %s vs %s", ids(loop[:10]), ids(got))
	}
	if ids(loop[10:20]) == ids(loop[:10]) {
		t.Fatalf("second epoch was not reshuffled")
	}
	inOrder, _ := Take(d.Iter(-1, false), 10)
	if ids(inOrder) != "abcdefghij" {
		t.Fatalf("seed -1 order %s", ids(inOrder))
	}
}
