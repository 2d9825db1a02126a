package rollout_test

import (
	"testing"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/rollout"
)

// kvDecoder returns the model's KV-cache decoder once model provides one; nil until then.
func kvDecoder(t *testing.T, m *model.Model, b, maxLen int) rollout.Decoder { return nil }
