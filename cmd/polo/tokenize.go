package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/polo-rl/polo/tokenizer"
)

func init() {
	register("tokenize", "encode text (one JSON string per line) to token ids, or --decode ids to text", runTokenize)
}

// runTokenize reads one JSON value per input line and writes one JSON value per output line, so
// that any text (newlines included) passes through pipes unambiguously.
func runTokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("tokenizer", "", "Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json)")
	special := fs.Bool("special", false, "add the tokenizer's special tokens (BOS, ...) as add_special_tokens=True")
	decode := fs.Bool("decode", false, "the reverse: one JSON array of ids per line in, one JSON string per line out")
	skip := fs.Bool("skip-special", false, "with --decode, drop special tokens")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: polo tokenize --tokenizer DIR [--special] < texts.jsonl     ("text" per line → [ids] per line)
       polo tokenize --tokenizer DIR --decode [--skip-special] < ids.jsonl`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return usagef("need --tokenizer DIR and no other arguments")
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return usageError{err}
	}
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 1<<20), 1<<30)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for line := 1; in.Scan(); line++ {
		b := in.Bytes()
		if strings.TrimSpace(string(b)) == "" {
			continue
		}
		var res []byte
		if *decode {
			var ids []int32
			if err := json.Unmarshal(b, &ids); err != nil || ids == nil {
				return usagef("stdin line %d: want a JSON array of token ids like [9707, 11], got %.40q", line, b)
			}
			for _, id := range ids {
				if id < 0 || int(id) >= tok.VocabSize() {
					return usagef("stdin line %d: token id %d is outside the vocabulary [0, %d)", line, id, tok.VocabSize())
				}
			}
			res = marshalText(tok.Decode(ids, *skip))
		} else {
			var text *string
			if err := json.Unmarshal(b, &text); err != nil || text == nil {
				return usagef("stdin line %d: want a JSON string like \"Hello\", got %.40q", line, b)
			}
			ids := tok.Encode(*text)
			if *special {
				ids = tok.EncodeWithSpecial(*text)
			}
			if ids == nil {
				ids = []int32{} // "" is [], not null
			}
			res, _ = json.Marshal(ids)
		}
		out.Write(res)
		out.WriteByte('\n')
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	return nil
}

// marshalText is json.Marshal without escaping <, > and &, which special tokens are full of.
func marshalText(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
