package model

import (
	"errors"
	"fmt"
)

// ErrTooLarge marks a request (rows × positions) that does not fit the model's context or the
// memory at hand; it is the caller's input that must shrink.
var ErrTooLarge = errors.New("too large for the model's context or the memory at hand")

// sizeError is an ErrTooLarge with its own message.
type sizeError struct{ msg string }

func (e sizeError) Error() string        { return e.msg }
func (e sizeError) Is(target error) bool { return target == ErrTooLarge }

func tooLarge(format string, a ...any) error { return sizeError{fmt.Sprintf(format, a...)} }

// decodeBytes estimates the memory a Decoder of batch rows and capacity slots allocates: the key and
// value caches of every layer, the logits of a step, and the sampler's per-row, per-position state.
func (c Config) decodeBytes(batch, capacity int) float64 {
	b, cp := float64(batch), float64(capacity)
	kv := b * cp * float64(c.NumLayers) * 2 * float64(c.NumKVHeads*c.HeadDim) * 4
	logits := 4 * b * float64(c.VocabSize) * 4 // a few copies of [batch, vocab] float32
	rows := b * cp * 32                        // ids, masks, log-probs, statistics per position
	return kv + logits + rows
}

// checkDecodeSize refuses a decoder whose rows exceed the model's context, or whose estimated
// memory exceeds what the process may still allocate (see memoryAvailable).
func (m *Model) checkDecodeSize(batch, maxLen, capacity int) error {
	if ctx := m.cfg.MaxPositionEmbeddings; maxLen > ctx {
		return tooLarge("model NewDecoder: rows of up to %d tokens (prompt + new tokens) exceed the model's context of %d positions (max_position_embeddings); lower the new-token limit", maxLen, ctx)
	}
	need := m.cfg.decodeBytes(batch, capacity)
	if avail, from, ok := memoryAvailable(); ok && need > 0.8*float64(avail) {
		return tooLarge("model NewDecoder: %d rows × %d positions need about %s (KV cache and sampler state), more than the %s available (%s); lower the number of rows or the new-token limit",
			batch, capacity, gib(need), gib(float64(avail)), from)
	}
	return nil
}

func gib(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	default:
		return fmt.Sprintf("%.0f MiB", b/(1<<20))
	}
}
