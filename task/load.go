package task

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Fields names the columns of a dataset row. Prompt or Messages must be set; Answer is required.
type Fields struct {
	ID       string   // optional; defaults to "<file>:<row>"
	Prompt   string   // text prompt column, e.g. "question" (GSM8K) or "problem" (MATH)
	Messages string   // chat column: a list of {role, content}
	Answer   string   // reference answer column, e.g. "answer" or "solution"
	Meta     []string // extra columns copied into Example.Meta as strings
}

// Answer styles: how the reference answer is cut out of the answer column.
const (
	AnswerRaw   = ""      // use the column as is (trimmed)
	AnswerGSM8K = "gsm8k" // the text after the last "####", e.g. "... #### 42" -> "42"
	AnswerBoxed = "boxed" // the content of the last \boxed{...}, e.g. MATH solutions
)

// LoadOptions controls loading.
type LoadOptions struct {
	// AnswerStyle is AnswerRaw, AnswerGSM8K or AnswerBoxed.
	AnswerStyle string
	// OnError is "stop" (default: the first malformed row fails the load) or "skip" (the row is
	// dropped and its error recorded in Dataset.Skipped and written to Warn when set).
	OnError string
	// Warn receives one line per skipped row when OnError is "skip".
	Warn io.Writer
	// Limit stops after this many examples (0 = all).
	Limit int
}

// GSM8K returns the fields and options for GSM8K-style rows: {"question", "answer": "... #### 42"}.
func GSM8K() (Fields, LoadOptions) {
	return Fields{Prompt: "question", Answer: "answer"}, LoadOptions{AnswerStyle: AnswerGSM8K}
}

// MATH returns the fields and options for MATH-style rows: {"problem", "solution": "... \boxed{..}"}.
func MATH() (Fields, LoadOptions) {
	return Fields{Prompt: "problem", Answer: "solution"}, LoadOptions{AnswerStyle: AnswerBoxed}
}

// RowError is a malformed row: which file, which row (1-based line for JSONL, 0-based row for
// Parquet), which field, and what is wrong.
type RowError struct {
	File  string
	Row   string // "line 7" or "row 3"
	Field string
	Msg   string
}

func (e *RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s %s: %s", e.File, e.Row, e.Msg)
	}
	return fmt.Sprintf("%s %s: field %q: %s", e.File, e.Row, e.Field, e.Msg)
}

func (f Fields) check() error {
	if f.Prompt == "" && f.Messages == "" {
		return fmt.Errorf("task fields: set Prompt or Messages to the name of the prompt column")
	}
	if f.Answer == "" {
		return fmt.Errorf("task fields: set Answer to the name of the reference-answer column")
	}
	return nil
}

func (o LoadOptions) check() error {
	switch o.OnError {
	case "", "stop", "skip":
	default:
		return fmt.Errorf("task load option on_error %q: use \"stop\" or \"skip\"", o.OnError)
	}
	switch o.AnswerStyle {
	case AnswerRaw, AnswerGSM8K, AnswerBoxed:
	default:
		return fmt.Errorf("task load option answer_style %q: use \"\", \"gsm8k\" or \"boxed\"", o.AnswerStyle)
	}
	return nil
}

// loader accumulates rows into a Dataset, applying the error policy.
type loader struct {
	path   string
	fields Fields
	opts   LoadOptions
	ds     *Dataset
}

// add converts one row; it returns a non-nil error only when loading must stop.
func (l *loader) add(row map[string]any, where string, defID string) error {
	ex, rerr := rowToExample(row, l.fields, l.opts.AnswerStyle, defID)
	if rerr != nil {
		rerr.File, rerr.Row = l.path, where
		if l.opts.OnError == "skip" {
			l.ds.Skipped = append(l.ds.Skipped, rerr)
			if l.opts.Warn != nil {
				fmt.Fprintf(l.opts.Warn, "skipped: %v\n", rerr)
			}
			return nil
		}
		return fmt.Errorf("%w (fix the row or load with on_error=skip)", rerr)
	}
	l.ds.Examples = append(l.ds.Examples, ex)
	return nil
}

func (l *loader) full() bool { return l.opts.Limit > 0 && len(l.ds.Examples) >= l.opts.Limit }

// LoadJSONL reads one JSON object per line. Blank lines are ignored.
func LoadJSONL(path string, fields Fields, opts LoadOptions) (*Dataset, error) {
	if err := fields.check(); err != nil {
		return nil, err
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	defer f.Close()
	l := &loader{path: path, fields: fields, opts: opts, ds: &Dataset{Name: path}}
	r := bufio.NewReader(f)
	for lineNo := 1; !l.full(); lineNo++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var row map[string]any
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.UseNumber()
			where := "line " + strconv.Itoa(lineNo)
			if jerr := dec.Decode(&row); jerr != nil {
				if aerr := l.addBad(where, "not a JSON object: "+jerr.Error()); aerr != nil {
					return nil, aerr
				}
			} else if aerr := l.add(row, where, fmt.Sprintf("%s:%d", baseName(path), lineNo)); aerr != nil {
				return nil, aerr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load dataset %s: %w", path, err)
		}
	}
	return l.ds, nil
}

func (l *loader) addBad(where, msg string) error {
	rerr := &RowError{File: l.path, Row: where, Msg: msg}
	if l.opts.OnError == "skip" {
		l.ds.Skipped = append(l.ds.Skipped, rerr)
		if l.opts.Warn != nil {
			fmt.Fprintf(l.opts.Warn, "skipped: %v\n", rerr)
		}
		return nil
	}
	return fmt.Errorf("%w (fix the row or load with on_error=skip)", rerr)
}

// LoadParquet reads every row of a Parquet file (e.g. a Hugging Face datasets shard). Columns are
// matched by name as in LoadJSONL; list-of-struct columns work for Messages.
func LoadParquet(path string, fields Fields, opts LoadOptions) (*Dataset, error) {
	if err := fields.check(); err != nil {
		return nil, err
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load dataset %s: %w", path, err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("load dataset %s: not a readable Parquet file: %w", path, err)
	}
	for _, name := range []string{fields.Prompt, fields.Messages, fields.Answer} {
		if name == "" {
			continue
		}
		if !hasColumn(pf.Schema(), name) {
			return nil, fmt.Errorf("load dataset %s: no column %q (columns: %s)", path, name, columnNames(pf.Schema()))
		}
	}
	l := &loader{path: path, fields: fields, opts: opts, ds: &Dataset{Name: path}}
	r := parquet.NewReader(pf)
	defer r.Close()
	for i := 0; !l.full(); i++ {
		row := map[string]any{}
		if err := r.Read(&row); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("load dataset %s row %d: %w", path, i, err)
		}
		if err := l.add(row, "row "+strconv.Itoa(i), fmt.Sprintf("%s:%d", baseName(path), i)); err != nil {
			return nil, err
		}
	}
	return l.ds, nil
}

func hasColumn(s *parquet.Schema, name string) bool {
	for _, f := range s.Fields() {
		if f.Name() == name {
			return true
		}
	}
	return false
}

func columnNames(s *parquet.Schema) string {
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name())
	}
	return strings.Join(names, ", ")
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// rowToExample converts a decoded row; errors name the field (File and Row are filled by the caller).
func rowToExample(row map[string]any, f Fields, style string, defID string) (Example, *RowError) {
	ex := Example{ID: defID}
	if f.ID != "" {
		if v, ok := row[f.ID]; ok && v != nil {
			s, err := scalarString(v)
			if err != nil {
				return ex, &RowError{Field: f.ID, Msg: err.Error()}
			}
			ex.ID = s
		}
	}
	if f.Prompt != "" {
		s, rerr := requiredString(row, f.Prompt)
		if rerr != nil {
			if f.Messages == "" {
				return ex, rerr
			}
		} else {
			ex.Prompt = s
		}
	}
	if f.Messages != "" && ex.Prompt == "" {
		v, ok := row[f.Messages]
		if !ok || v == nil {
			return ex, &RowError{Field: f.Messages, Msg: "missing (expected a list of {role, content})"}
		}
		msgs, err := toMessages(v)
		if err != nil {
			return ex, &RowError{Field: f.Messages, Msg: err.Error()}
		}
		ex.Messages = msgs
	}
	ans, rerr := requiredString(row, f.Answer)
	if rerr != nil {
		return ex, rerr
	}
	switch style {
	case AnswerGSM8K:
		i := strings.LastIndex(ans, "####")
		if i < 0 {
			return ex, &RowError{Field: f.Answer, Msg: `no "####" marker before the final answer (use answer_style "" for plain answers)`}
		}
		ans = strings.TrimSpace(ans[i+4:])
		ans = strings.ReplaceAll(ans, ",", "")
	case AnswerBoxed:
		b, ok := lastBoxedContent(ans)
		if !ok {
			return ex, &RowError{Field: f.Answer, Msg: `no complete \boxed{...} in the solution (use answer_style "" for plain answers)`}
		}
		ans = b
	}
	ans = strings.TrimSpace(ans)
	if ans == "" {
		return ex, &RowError{Field: f.Answer, Msg: "empty reference answer"}
	}
	ex.Answer = ans
	for _, m := range f.Meta {
		v, ok := row[m]
		if !ok || v == nil {
			continue
		}
		s, err := scalarString(v)
		if err != nil {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		if ex.Meta == nil {
			ex.Meta = map[string]string{}
		}
		ex.Meta[m] = s
	}
	return ex, nil
}

func requiredString(row map[string]any, name string) (string, *RowError) {
	v, ok := row[name]
	if !ok || v == nil {
		return "", &RowError{Field: name, Msg: "missing"}
	}
	s, err := scalarString(v)
	if err != nil {
		return "", &RowError{Field: name, Msg: err.Error()}
	}
	if strings.TrimSpace(s) == "" {
		return "", &RowError{Field: name, Msg: "empty"}
	}
	return s, nil
}

// scalarString accepts strings and numbers (a numeric answer column is common).
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case json.Number:
		return x.String(), nil
	case int, int32, int64, uint32, uint64, bool:
		return fmt.Sprint(x), nil
	case float32, float64:
		return strconv.FormatFloat(toFloat(x), 'g', -1, 64), nil
	}
	return "", fmt.Errorf("expected a string or number, got %T", v)
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

func toMessages(v any) ([]Message, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a list of {role, content}, got %T", v)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("empty conversation")
	}
	out := make([]Message, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("message %d: expected an object, got %T", i, item)
		}
		role, _ := m["role"].(string)
		content, ok := m["content"].(string)
		if role == "" || !ok {
			return nil, fmt.Errorf("message %d: needs string fields \"role\" and \"content\"", i)
		}
		out = append(out, Message{Role: role, Content: content})
	}
	return out, nil
}

// lastBoxedContent returns the inside of the last \boxed{...} (or \fbox{...}) with balanced braces.
func lastBoxedContent(s string) (string, bool) {
	i := strings.LastIndex(s, `\boxed`)
	if i < 0 {
		i = strings.LastIndex(s, `\fbox`)
	}
	if i < 0 {
		return "", false
	}
	depth, open := 0, -1
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '{':
			if depth == 0 {
				open = j
			}
			depth++
		case '}':
			depth--
			if depth == 0 && open >= 0 {
				return s[open+1 : j], true
			}
		}
	}
	return "", false
}
