package tokenizer

import "fmt"

// idSlack is how far past the number of distinct tokens an id may lie. Hugging Face vocabularies
// are dense (ids 0..N-1, added tokens right after the model's), but a few leave small gaps; the
// tables polo builds are sized by the largest id, so an id far past the vocabulary (a typo, or a
// hostile 1e9 that would allocate gigabytes) is refused instead.
const idSlack = 1 << 16

// checkIDs validates every id of model.vocab and added_tokens before any table is sized by them:
// ids must be >= 0 and below (distinct tokens) + idSlack.
func checkIDs(tj *tokenizerJSON) error {
	limit := int64(len(tj.Model.Vocab)) + int64(len(tj.AddedTokens)) + idSlack
	for s, id := range tj.Model.Vocab {
		if id < 0 || int64(id) >= limit {
			return fmt.Errorf("field model.vocab[%q]: id %d is outside the vocabulary: ids must be in [0, %d) for %d tokens", s, id, limit, len(tj.Model.Vocab)+len(tj.AddedTokens))
		}
	}
	for i, a := range tj.AddedTokens {
		if a.ID < 0 || int64(a.ID) >= limit {
			return fmt.Errorf("field added_tokens[%d] (%q): id %d is outside the vocabulary: ids must be in [0, %d) for %d tokens", i, a.Content, a.ID, limit, len(tj.Model.Vocab)+len(tj.AddedTokens))
		}
	}
	return nil
}
