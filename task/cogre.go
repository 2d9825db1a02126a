package task

import (
	"fmt"
	"strings"
)

// CogREPrompt renders a relation-extraction query in CogRE's structured-reasoning format (Guo et
// al. 2025): the model is led through the text-processing steps the paper takes from cognitive
// science — focus on the words that link the two entities, name the relation keywords among them,
// abstract them to the level of the label set, answer — and replies in tags that the keywords
// verifier reads (<keywords>, <relation>). The step wording is ours; the paper's exact prompt is
// not reproduced.
func CogREPrompt(sentence, head, tail string, labels []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Sentence: %s\nHead entity: %s\nTail entity: %s\nRelations: %s\n", sentence, head, tail, strings.Join(labels, ", "))
	b.WriteString("Step 1 (focus): quote the words of the sentence that connect the head and the tail entity.\n")
	b.WriteString("Step 2 (keywords): list the relation keywords among those words.\n")
	b.WriteString("Step 3 (abstract): say which relation the keywords express, at the level of the relation names.\n")
	b.WriteString("Step 4 (answer): give one relation name.\n")
	b.WriteString("Reply as <focus>...</focus><keywords>...</keywords><reasoning>...</reasoning><relation>...</relation>")
	return b.String()
}
