package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

func TestChar(t *testing.T) {
	c, err := NewChar("0123456789+=")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text    string
		ids     []int32
		special []int32
		decoded string // Decode(ids, skipSpecial=true)
	}{
		{"12+34=46", []int32{4, 5, 13, 6, 7, 14, 7, 9}, []int32{1, 4, 5, 13, 6, 7, 14, 7, 9}, "12+34=46"},
		{"", []int32{}, []int32{1}, ""},
		{"9<eos>", []int32{12, 2}, []int32{1, 12, 2}, "9"},
		{"1 x2", []int32{4, 5}, []int32{1, 4, 5}, "12"}, // ' ' and 'x' are not in the alphabet
	}
	for _, tt := range tests {
		if got := c.Encode(tt.text); !slices.Equal(got, tt.ids) {
			t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.ids)
		}
		if got := c.EncodeWithSpecial(tt.text); !slices.Equal(got, tt.special) {
			t.Errorf("EncodeWithSpecial(%q) = %v, want %v", tt.text, got, tt.special)
		}
		if got := c.Decode(tt.special, true); got != tt.decoded {
			t.Errorf("Decode(%v, true) = %q, want %q", tt.special, got, tt.decoded)
		}
	}
	if got := c.Decode([]int32{1, 4, 2, 0, 99, -1}, false); got != "<bos>1<eos><pad>" {
		t.Errorf("Decode with specials = %q", got)
	}
	if c.VocabSize() != 15 || c.PAD() != 0 || c.BOS() != 1 || c.EOS() != 2 {
		t.Errorf("VocabSize, PAD, BOS, EOS = %d, %d, %d, %d", c.VocabSize(), c.PAD(), c.BOS(), c.EOS())
	}
	if got := string(c.Unknown("1 x2")); got != " x" {
		t.Errorf("Unknown = %q", got)
	}
}

func TestNewCharErrors(t *testing.T) {
	for _, tt := range []struct{ alphabet, want string }{
		{"", "empty alphabet"},
		{"abca", "appears twice"},
		{"a\xff", "not valid UTF-8"},
	} {
		if _, err := NewChar(tt.alphabet); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewChar(%q) error = %v, want %q", tt.alphabet, err, tt.want)
		}
	}
}
