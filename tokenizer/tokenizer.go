// Package tokenizer turns text into token ids and back exactly as Hugging Face transformers does,
// so that a policy trained by polo sees the ids its model was trained on.
//
// HF loads a model folder's tokenizer.json and tokenizer_config.json (byte-level BPE: Qwen2/Qwen3,
// Llama-3, GPT-2 families) and renders chat templates; Char is a character tokenizer for the
// synthetic tasks of the built-in demo. A policy sampled token by token is extended with
// Conversation, which never re-tokenizes earlier turns.
package tokenizer

// Tokenizer is what the trainer and the sampler need from any tokenizer.
type Tokenizer interface {
	// Encode returns the ids of text without adding special tokens (transformers'
	// add_special_tokens=False). Special tokens written in the text are still recognized.
	Encode(text string) []int32
	// EncodeWithSpecial is Encode plus the tokens the tokenizer adds around a sequence (BOS for
	// Llama-style tokenizers), as transformers' add_special_tokens=True.
	EncodeWithSpecial(text string) []int32
	// Decode returns the text of ids; skipSpecial drops special tokens. Ids outside the
	// vocabulary are dropped.
	Decode(ids []int32, skipSpecial bool) string
	// VocabSize is one more than the largest id the tokenizer produces.
	VocabSize() int
	// EOS, PAD and BOS are the ids of those special tokens, -1 when the tokenizer has none.
	EOS() int32
	PAD() int32
	BOS() int32
}

var (
	_ Tokenizer = (*HF)(nil)
	_ Tokenizer = (*Char)(nil)
)
