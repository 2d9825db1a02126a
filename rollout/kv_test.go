package rollout_test

import (
	"testing"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
)

// kvDecoder is the model's KV-cache decoder, the one training and evaluation use.
func kvDecoder(t *testing.T, m *model.Model, b, maxLen int) rollout.Decoder {
	t.Helper()
	d, err := m.NewDecoder(b, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
