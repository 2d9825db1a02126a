// Command makedata writes the DATAMASK demo dataset: 2-digit additions in the demo's format
// ("47+38=" → "85"), of which a fraction carry a wrong answer (label noise), as JSONL
// {question, answer}. Seeded.
//
//	go run ./bench/datamask/makedata -n 3000 -noise 0.4 -o runs/noisy-addition.jsonl
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	n := flag.Int("n", 3000, "rows")
	noise := flag.Float64("noise", 0.4, "fraction of rows with a wrong answer")
	out := flag.String("o", "runs/noisy-addition.jsonl", "output file")
	flag.Parse()
	rng := rand.New(rand.NewPCG(42, 7))
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	enc := json.NewEncoder(f)
	wrong := 0
	for range *n {
		a, b := rng.IntN(100), rng.IntN(100)
		ans := a + b
		if rng.Float64() < *noise {
			ans = max(0, ans+[]int{-10, -1, 1, 10, 7, -7}[rng.IntN(6)])
			if ans == a+b {
				ans++
			}
			wrong++
		}
		enc.Encode(map[string]string{"question": fmt.Sprintf("%d+%d=", a, b), "answer": strconv.Itoa(ans)})
	}
	f.Close()
	fmt.Printf("wrote %d rows (%d wrong) to %s\n", *n, wrong, *out)
}
