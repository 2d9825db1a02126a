// Command makeset writes the small relation-extraction set of the CogRE demo (docs/cogre.md):
// testdata/cogre/relations.jsonl (structured-reasoning prompts and gold relations),
// testdata/cogre/keywords.json (the relation keyword dictionary) and testdata/cogre/responses.jsonl
// (four kinds of response per example, for `polo verify --kind keywords`). Seeded: the same files
// every run.
//
//	go run ./bench/cogre/makeset
package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/polo-rl/polo/task"
)

type template struct {
	text    string // {H} and {T} are the entities
	focus   string // the linking words, {H}/{T} allowed
	keyword string // the relation keyword the sentence uses
}

type relation struct {
	name       string
	head, tail []string
	templates  []template
}

var (
	people  = []string{"Ana Silva", "Omar Haddad", "Mei Lin", "Jonas Berg", "Priya Nair", "Lucas Moreau", "Sara Cohen", "Kenji Sato", "Olga Petrova", "Diego Ruiz"}
	cities  = []string{"Lyon", "Porto", "Osaka", "Bergen", "Pune", "Haifa", "Cordoba", "Graz", "Tartu", "Leeds"}
	orgs    = []string{"Nordlight", "Bluefin Labs", "Kasa Motors", "Veritas Bank", "Orbis Media", "Helix Foods"}
	capital = [][2]string{{"Lisbon", "Portugal"}, {"Oslo", "Norway"}, {"Lima", "Peru"}, {"Hanoi", "Vietnam"}, {"Nairobi", "Kenya"}, {"Ottawa", "Canada"}, {"Canberra", "Australia"}, {"Dublin", "Ireland"}}
	country = []string{"France", "Portugal", "Japan", "Norway", "India", "Israel", "Spain", "Austria", "Estonia", "England"}
)

var relations = []relation{
	{"born_in", people, cities, []template{
		{"{H} was born in {T} and later moved abroad.", "was born in", "born"},
		{"{T} is the birthplace of {H}, who still visits every summer.", "is the birthplace of", "birthplace"},
		{"{H}, a native of {T}, won the regional prize.", "a native of", "native of"},
	}},
	{"works_for", people, orgs, []template{
		{"{H} works for {T} as a data analyst.", "works for", "works for"},
		{"{T} hired {H} after a long interview process.", "hired", "hired"},
		{"{H} is employed by {T} in the sales team.", "is employed by", "employed by"},
	}},
	{"spouse_of", people, people, []template{
		{"{H} married {T} in a small ceremony.", "married", "married"},
		{"{H} and her husband {T} opened a bakery.", "her husband", "husband"},
		{"{H} is the spouse of {T}, according to the registry.", "is the spouse of", "spouse"},
	}},
	{"founded", people, orgs, []template{
		{"{H} founded {T} in a garage.", "founded", "founded"},
		{"{T} was started by {H} with two friends.", "was started by", "started by"},
		{"{H}, the founder of {T}, spoke at the meeting.", "the founder of", "founder"},
	}},
	{"located_in", cities, country, []template{
		{"{H} is located in {T}, near the coast.", "is located in", "located in"},
		{"{H} lies in the north of {T}.", "lies in", "lies in"},
		{"{H} is a city in {T} known for its bridges.", "is a city in", "city in"},
	}},
}

// capital_of uses fixed (city, country) pairs.
var capitalTemplates = []template{
	{"{H} is the capital of {T}.", "is the capital of", "capital"},
	{"The government of {T} sits in {H}.", "the government of ... sits in", "government"},
	{"{H}, the seat of government of {T}, hosted the summit.", "the seat of government of", "seat of government"},
}

func fill(s, h, t string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "{H}", h), "{T}", t)
}

type row struct {
	ID       string `json:"id"`
	Question string `json:"question"`
	Answer   string `json:"answer"`
	Keyword  string `json:"keyword"`
}

// resp is one line for polo verify; the kind cycles through the four kinds in order, line i
// being kind i mod 4.
type resp struct {
	ID       string `json:"-"`
	Kind     string `json:"-"`
	Response string `json:"response"`
	Answer   string `json:"answer"`
}

func main() {
	rng := rand.New(rand.NewPCG(21, 5))
	labels := []string{"born_in", "works_for", "spouse_of", "founded", "capital_of", "located_in"}
	var rows []row
	var resps []resp
	dict := map[string][]string{}
	add := func(rel string, tp template, h, t string) {
		id := fmt.Sprintf("re-%03d", len(rows))
		rows = append(rows, row{id, task.CogREPrompt(fill(tp.text, h, t), h, t, labels), rel, tp.keyword})
		focus := fill(tp.focus, h, t)
		wrong := labels[(indexOf(labels, rel)+1+rng.IntN(len(labels)-1))%len(labels)]
		wrongKW := dictFirst(wrong)
		resps = append(resps,
			resp{id, "right relation, right keywords", fmt.Sprintf("<focus>%s</focus><keywords>%s</keywords><reasoning>%q signals %s.</reasoning><relation>%s</relation>", focus, tp.keyword, tp.keyword, rel, rel), rel},
			resp{id, "right relation, generic keywords", fmt.Sprintf("<focus>%s and %s</focus><keywords>%s, %s</keywords><reasoning>The entities appear together.</reasoning><relation>%s</relation>", h, t, h, t, rel), rel},
			resp{id, "wrong relation, its keywords", fmt.Sprintf("<focus>%s</focus><keywords>%s</keywords><reasoning>%q signals %s.</reasoning><relation>%s</relation>", focus, wrongKW, wrongKW, wrong, wrong), rel},
			resp{id, "right relation, no structure", rel, rel},
		)
	}
	for _, r := range relations {
		for i := 0; i < 10; i++ {
			h := r.head[rng.IntN(len(r.head))]
			t := r.tail[rng.IntN(len(r.tail))]
			for t == h {
				t = r.tail[rng.IntN(len(r.tail))]
			}
			add(r.name, r.templates[i%len(r.templates)], h, t)
		}
	}
	for i := 0; i < 10; i++ {
		p := capital[rng.IntN(len(capital))]
		add("capital_of", capitalTemplates[i%len(capitalTemplates)], p[0], p[1])
	}
	for _, r := range relations {
		for _, tp := range r.templates {
			dict[r.name] = append(dict[r.name], tp.keyword)
		}
	}
	for _, tp := range capitalTemplates {
		dict["capital_of"] = append(dict["capital_of"], tp.keyword)
	}
	dir := filepath.Join("testdata", "cogre")
	must(os.MkdirAll(dir, 0o755))
	writeJSONL(filepath.Join(dir, "relations.jsonl"), rows)
	writeJSONL(filepath.Join(dir, "responses.jsonl"), resps)
	keys := make([]string, 0, len(dict))
	for k := range dict {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	data, err := json.MarshalIndent(dict, "", "  ")
	must(err)
	must(os.WriteFile(filepath.Join(dir, "keywords.json"), append(data, '\n'), 0o644))
	fmt.Printf("wrote %d examples, %d responses, %d relations to %s\n", len(rows), len(resps), len(keys), dir)
}

// dictFirst is the first keyword of a relation (for wrong answers that sound confident).
func dictFirst(rel string) string {
	if rel == "capital_of" {
		return capitalTemplates[0].keyword
	}
	for _, r := range relations {
		if r.name == rel {
			return r.templates[0].keyword
		}
	}
	return ""
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}

func writeJSONL[T any](path string, xs []T) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, x := range xs {
		must(enc.Encode(x))
	}
	must(os.WriteFile(path, []byte(b.String()), 0o644))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "makeset:", err)
		os.Exit(1)
	}
}
