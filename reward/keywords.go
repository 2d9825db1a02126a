package reward

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/polo-rl/polo/task"
)

// CogRE (Guo, Shi, Yang, Rahimi, Surdeanu 2025, "Peeking inside the Black-Box"): relation
// extraction as structured reasoning, rewarded for the right relation label and for naming the
// relation's keywords in the explanation (HIT@DICT). The keyword dictionary maps each relation to
// the phrases that signal it; the paper builds it from the explanations of correct predictions
// (BuildKeywordDict).

// KeywordDict maps a relation label to its keywords (lower case, single spaces).
type KeywordDict map[string][]string

// LoadKeywordDict reads a JSON object {"relation": ["keyword", ...], ...}.
func LoadKeywordDict(path string) (KeywordDict, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyword dictionary: %w", err)
	}
	var raw map[string][]string
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("keyword dictionary %s: want a JSON object of relation → list of keywords: %v", path, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("keyword dictionary %s has no relation", path)
	}
	d := KeywordDict{}
	for rel, kws := range raw {
		for _, k := range kws {
			if k = normPhrase(k); k != "" {
				d[normPhrase(rel)] = append(d[normPhrase(rel)], k)
			}
		}
		if len(d[normPhrase(rel)]) == 0 {
			return nil, fmt.Errorf("keyword dictionary %s: relation %q has no keyword", path, rel)
		}
	}
	return d, nil
}

// normPhrase lower-cases and collapses whitespace and surrounding punctuation.
func normPhrase(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.Trim(strings.TrimSpace(s), `"'.,;:!?`))), " ")
}

var (
	cogreKeywords = regexp.MustCompile(`(?is)<keywords>(.*?)</keywords>`)
	cogreRelation = regexp.MustCompile(`(?is)<relation>(.*?)</relation>`)
)

// CogREResponse is a response in the structured format: the explanation (everything before the
// <relation> tag), the listed keywords and the relation label.
type CogREResponse struct {
	Explanation string
	Keywords    []string
	Relation    string
	HasRelation bool
}

// ParseCogRE reads the last <keywords>…</keywords> (split at commas, semicolons and newlines) and
// the last <relation>…</relation> of a response.
func ParseCogRE(resp string) CogREResponse {
	var r CogREResponse
	r.Explanation = resp
	if m := cogreRelation.FindAllStringSubmatchIndex(resp, -1); m != nil {
		last := m[len(m)-1]
		r.Relation, r.HasRelation = normPhrase(resp[last[2]:last[3]]), true
		r.Explanation = resp[:last[0]]
	}
	if m := cogreKeywords.FindAllStringSubmatch(r.Explanation, -1); m != nil {
		for _, k := range strings.FieldsFunc(m[len(m)-1][1], func(c rune) bool { return c == ',' || c == ';' || c == '\n' }) {
			if k = normPhrase(k); k != "" {
				r.Keywords = append(r.Keywords, k)
			}
		}
	}
	return r
}

// containsPhrase reports whether phrase occurs in text as whole words (both normalised).
func containsPhrase(text, phrase string) bool {
	t := " " + strings.Join(strings.FieldsFunc(text, func(c rune) bool { return !isWordRune(c) }), " ") + " "
	p := " " + strings.Join(strings.FieldsFunc(phrase, func(c rune) bool { return !isWordRune(c) }), " ") + " "
	return strings.TrimSpace(p) != "" && strings.Contains(t, p)
}

func isWordRune(c rune) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c > 127
}

// KeywordScore scores an explanation against the gold relation's dictionary entry:
//   - "hit" (HIT@DICT): 1 if any listed keyword (of the first maxTerms) contains a dictionary
//     keyword of the gold relation as whole words, else 0;
//   - "precision": the fraction of the first maxTerms listed keywords that do;
//   - "coverage": the fraction of the gold relation's dictionary keywords that occur anywhere in
//     the explanation.
//
// Only the first maxTerms listed keywords count, so listing every word of the vocabulary does not
// pay under "hit".
func KeywordScore(mode string, r CogREResponse, entry []string, maxTerms int) float64 {
	if len(entry) == 0 {
		return 0
	}
	terms := r.Keywords
	if maxTerms > 0 && len(terms) > maxTerms {
		terms = terms[:maxTerms]
	}
	matches := func(term string) bool {
		for _, k := range entry {
			if containsPhrase(term, k) {
				return true
			}
		}
		return false
	}
	switch mode {
	case "coverage":
		text := strings.ToLower(r.Explanation)
		n := 0
		for _, k := range entry {
			if containsPhrase(text, k) {
				n++
			}
		}
		return float64(n) / float64(len(entry))
	case "precision":
		if len(terms) == 0 {
			return 0
		}
		n := 0
		for _, t := range terms {
			if matches(t) {
				n++
			}
		}
		return float64(n) / float64(len(terms))
	default: // hit
		for _, t := range terms {
			if matches(t) {
				return 1
			}
		}
		return 0
	}
}

// keywordsVerifier is the CogRE reward: accuracy of the relation label plus weight × keyword score.
type keywordsVerifier struct {
	rv       rewardValues
	dict     KeywordDict
	weight   float64
	mode     string
	maxTerms int
}

func newKeywordsVerifier(o *opts, rv rewardValues) (Verifier, error) {
	path := o.str("dict", "")
	v := &keywordsVerifier{rv: rv, weight: o.float("weight", 1), mode: o.Choice("score", "hit", "hit", "precision", "coverage"),
		maxTerms: o.int("max_keywords", 5)}
	if path == "" {
		return nil, fmt.Errorf("verifier keywords needs option dict=FILE (a JSON object of relation → keywords)")
	}
	d, err := LoadKeywordDict(path)
	if err != nil {
		return nil, err
	}
	v.dict = d
	return v, nil
}

func (v *keywordsVerifier) Verify(resp string, ex task.Example) Score {
	r := ParseCogRE(resp)
	gold := normPhrase(ex.Answer)
	entry, known := v.dict[gold]
	correct := r.HasRelation && r.Relation == gold
	s := v.rv.score(correct, r.Relation, "")
	k := KeywordScore(v.mode, r, entry, v.maxTerms)
	s.Value += v.weight * k
	switch {
	case !known:
		s.Reason = fmt.Sprintf("relation %q is not in the keyword dictionary; keyword score 0", gold)
	case !r.HasRelation:
		s.Reason = fmt.Sprintf("no <relation> tag; keyword %s %.3g", v.mode, k)
	default:
		s.Reason = fmt.Sprintf("keyword %s %.3g", v.mode, k)
	}
	return s
}

// BuildKeywordDict builds a dictionary the way the paper's Algorithm 1 does, from explanations
// of correct predictions: every listed keyword of a response whose relation is right is counted
// for that relation; a keyword is kept for a relation when it was listed at least minCount times
// and at least minShare of its uses were for that relation (so that generic words like "is" that
// accompany every relation drop out). The paper extracts keywords with an LLM; here the model's
// own <keywords> lists are the explanations.
func BuildKeywordDict(responses []string, gold []string, minCount int, minShare float64) (KeywordDict, error) {
	if len(responses) != len(gold) {
		return nil, fmt.Errorf("%d responses but %d gold relations", len(responses), len(gold))
	}
	count := map[string]map[string]int{} // keyword → relation → uses in correct responses
	for i, resp := range responses {
		r := ParseCogRE(resp)
		g := normPhrase(gold[i])
		if !r.HasRelation || r.Relation != g {
			continue
		}
		seen := map[string]bool{}
		for _, k := range r.Keywords {
			if seen[k] {
				continue
			}
			seen[k] = true
			if count[k] == nil {
				count[k] = map[string]int{}
			}
			count[k][g]++
		}
	}
	d := KeywordDict{}
	for k, byRel := range count {
		total := 0
		for _, n := range byRel {
			total += n
		}
		for rel, n := range byRel {
			if n >= minCount && float64(n) >= minShare*float64(total) {
				d[rel] = append(d[rel], k)
			}
		}
	}
	for rel := range d {
		sort.Strings(d[rel])
	}
	return d, nil
}
