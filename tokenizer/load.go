package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// The subset of tokenizer.json that byte-level BPE tokenizers use.
type tokenizerJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
	Model         *modelJSON       `json:"model"`
}

type addedTokenJSON struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string            `json:"type"`
	Vocab                   map[string]int32  `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	IgnoreMerges            bool              `json:"ignore_merges"`
	ByteFallback            bool              `json:"byte_fallback"`
	Dropout                 *float64          `json:"dropout"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
}

// component is a normalizer, pre-tokenizer, post-processor or decoder: a type and its options.
type component struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Processors     []json.RawMessage `json:"processors"`
	Decoders       []json.RawMessage `json:"decoders"`
	AddPrefixSpace bool              `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
	Pattern        struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior      string                           `json:"behavior"`
	Invert        bool                             `json:"invert"`
	Single        []templatePiece                  `json:"single"`
	SpecialTokens map[string]struct{ IDs []int32 } `json:"special_tokens"`
}

type templatePiece struct {
	SpecialToken *struct{ ID string } `json:"SpecialToken"`
	Sequence     *struct{ ID string } `json:"Sequence"`
}

// The subset of tokenizer_config.json that encoding, decoding and chat templates use.
type configJSON struct {
	BOS                       json.RawMessage `json:"bos_token"`
	EOS                       json.RawMessage `json:"eos_token"`
	PAD                       json.RawMessage `json:"pad_token"`
	UNK                       json.RawMessage `json:"unk_token"`
	ChatTemplate              json.RawMessage `json:"chat_template"`
	CleanUpTokenizationSpaces bool            `json:"clean_up_tokenization_spaces"`
	AddBOSToken               *bool           `json:"add_bos_token"`
	AddEOSToken               *bool           `json:"add_eos_token"`
	TokenizerClass            string          `json:"tokenizer_class"`
	AdditionalSpecialTokens   json.RawMessage `json:"additional_special_tokens"`
}

// Load reads a Hugging Face tokenizer from dir: tokenizer.json (required) and
// tokenizer_config.json (special tokens, chat template; optional), plus chat_template.jinja when
// present, which transformers prefers over the config's template.
func Load(dir string) (*HF, error) {
	tjPath := filepath.Join(dir, "tokenizer.json")
	raw, err := os.ReadFile(tjPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (point at a Hugging Face model folder that has tokenizer.json)", tjPath, errors.Unwrap(err))
	}
	var tj tokenizerJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, jsonError(tjPath, raw, err)
	}
	var cfg configJSON
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if rawCfg, err := os.ReadFile(cfgPath); err == nil {
		if err := json.Unmarshal(rawCfg, &cfg); err != nil {
			return nil, jsonError(cfgPath, rawCfg, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", cfgPath, err)
	}
	t, err := build(&tj, &cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tjPath, err)
	}
	if err := t.loadTemplate(dir, &cfg); err != nil {
		return nil, err
	}
	return t, nil
}

// jsonError names the file and, where encoding/json knows it, the field that failed.
func jsonError(path string, raw []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("%s: field %s: got JSON %s, want %s", path, field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(raw[:min(int(se.Offset), len(raw))], []byte("\n"))
		return fmt.Errorf("%s: invalid JSON at line %d: %v", path, line, se)
	}
	return fmt.Errorf("%s: %v", path, err)
}

// build turns the parsed files into a tokenizer, rejecting components it cannot reproduce exactly.
func build(tj *tokenizerJSON, cfg *configJSON) (*HF, error) {
	m := tj.Model
	if m == nil {
		return nil, errors.New("field model is missing")
	}
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("field model.type: %q is not supported; polo reads byte-level BPE tokenizers", m.Type)
	}
	if len(m.Vocab) == 0 {
		return nil, errors.New("field model.vocab is missing or empty")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("field model.dropout: %v is not supported (BPE dropout is for training tokenizers); set it to null", *m.Dropout)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" ||
		m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, errors.New("fields model.continuing_subword_prefix/end_of_word_suffix: not supported by byte-level BPE; they must be empty")
	}
	t := &HF{bos: -1, eos: -1, pad: -1, clean: cfg.CleanUpTokenizationSpaces}
	t.model.vocab = m.Vocab
	t.model.ignoreMerges = m.IgnoreMerges
	for b := 0; b < 256; b++ {
		id, ok := m.Vocab[string(byteToRune[b])]
		if !ok {
			id = -1
		}
		t.model.byteID[b] = id
	}
	t.model.merges = make(map[uint64]merge, len(m.Merges))
	for i, rawMerge := range m.Merges {
		a, b, err := parseMerge(rawMerge)
		if err != nil {
			return nil, fmt.Errorf("field model.merges[%d]: %v", i, err)
		}
		ia, oka := m.Vocab[a]
		ib, okb := m.Vocab[b]
		iab, okab := m.Vocab[a+b]
		if !oka || !okb || !okab {
			return nil, fmt.Errorf("field model.merges[%d]: %q + %q: a token is not in model.vocab", i, a, b)
		}
		k := pairKey(ia, ib)
		if _, dup := t.model.merges[k]; !dup {
			t.model.merges[k] = merge{rank: int32(i), id: iab}
		}
	}

	// Id → token text, for decoding.
	if err := checkIDs(tj); err != nil {
		return nil, err
	}
	maxID := int32(-1)
	for _, id := range m.Vocab {
		maxID = max(maxID, id)
	}
	for _, a := range tj.AddedTokens {
		maxID = max(maxID, a.ID)
	}
	tokens := make([]string, maxID+1)
	for s, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("field model.vocab[%q]: negative id %d", s, id)
		}
		tokens[id] = s
	}
	t.special = make([]bool, maxID+1)
	t.added = make(map[string]int32, len(tj.AddedTokens))
	for i, a := range tj.AddedTokens {
		if a.Content == "" || a.ID < 0 {
			return nil, fmt.Errorf("field added_tokens[%d]: needs a non-empty content and an id >= 0", i)
		}
		tokens[a.ID] = a.Content
		t.special[a.ID] = a.Special
		t.added[a.Content] = a.ID
		tok := addedToken{id: a.ID, content: a.Content, lstrip: a.LStrip, rstrip: a.RStrip, singleWord: a.SingleWord}
		if a.Normalized {
			t.normAdded.add(tok)
		} else {
			t.rawAdded.add(tok)
		}
	}
	t.rawAdded.sort()
	t.normAdded.sort()
	t.tokens = tokens
	t.idBytes = make([][]byte, len(tokens))
	for id, s := range tokens {
		t.idBytes[id] = tokenBytes(s)
	}

	var err error
	if t.normalize, err = buildNormalizer(tj.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.normalize != nil {
		// Normalized added tokens are matched in normalized text, so normalize them too.
		for i := range t.normAdded.tokens {
			t.normAdded.tokens[i].content = t.normalize(t.normAdded.tokens[i].content)
		}
		t.normAdded.sort()
	}
	if err = t.buildPreTokenizer(tj.PreTokenizer); err != nil {
		return nil, err
	}
	if err = checkDecoder(tj.Decoder, "decoder"); err != nil {
		return nil, err
	}

	// Special tokens named in tokenizer_config.json.
	for _, st := range []struct {
		name string
		raw  json.RawMessage
		dst  *int32
	}{{"bos_token", cfg.BOS, &t.bos}, {"eos_token", cfg.EOS, &t.eos}, {"pad_token", cfg.PAD, &t.pad}} {
		s, err := tokenContent(st.raw)
		if err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: field %s: %v", st.name, err)
		}
		if s == "" {
			continue
		}
		id, ok := t.TokenID(s)
		if !ok {
			return nil, fmt.Errorf("tokenizer_config.json: field %s: %q is not a token of tokenizer.json", st.name, s)
		}
		*st.dst = id
	}
	t.names = map[string]string{}
	for _, st := range []struct {
		name string
		raw  json.RawMessage
	}{{"bos_token", cfg.BOS}, {"eos_token", cfg.EOS}, {"pad_token", cfg.PAD}, {"unk_token", cfg.UNK}} {
		if s, _ := tokenContent(st.raw); s != "" {
			t.names[st.name] = s
		}
	}

	if err := t.buildPostProcessor(tj.PostProcessor, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

// parseMerge reads a merge written either as "a b" (older files) or as ["a", "b"].
func parseMerge(raw json.RawMessage) (string, string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", "", err
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok {
			return "", "", fmt.Errorf("%q is not two tokens separated by a space", s)
		}
		return a, b, nil
	}
	var p []string
	if err := json.Unmarshal(raw, &p); err != nil || len(p) != 2 {
		return "", "", fmt.Errorf("%s is neither \"a b\" nor [\"a\", \"b\"]", raw)
	}
	return p[0], p[1], nil
}

// tokenContent reads a special-token field: null, a string, or an object with "content".
func tokenContent(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("want a string or an object with \"content\", got %s", raw)
	}
	return obj.Content, nil
}

func parseComponent(raw json.RawMessage, field string) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("field %s: %v", field, err)
	}
	return &c, nil
}

// buildNormalizer supports the Unicode normal forms, lowercasing and sequences of them.
func buildNormalizer(raw json.RawMessage, field string) (func(string) string, error) {
	c, err := parseComponent(raw, field)
	if c == nil || err != nil {
		return nil, err
	}
	switch c.Type {
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return strings.ToLower, nil
	case "Sequence":
		var fs []func(string) string
		for i, sub := range c.Normalizers {
			f, err := buildNormalizer(sub, fmt.Sprintf("%s.normalizers[%d]", field, i))
			if err != nil {
				return nil, err
			}
			if f != nil {
				fs = append(fs, f)
			}
		}
		return func(s string) string {
			for _, f := range fs {
				s = f(s)
			}
			return s
		}, nil
	}
	return nil, fmt.Errorf("field %s.type: normalizer %q is not supported (polo supports NFC, NFD, NFKC, NFKD, Lowercase, Sequence)", field, c.Type)
}

// buildPreTokenizer accepts Split (Isolated) pre-tokenizers and exactly one ByteLevel, alone or
// in a Sequence.
func (t *HF) buildPreTokenizer(raw json.RawMessage) error {
	c, err := parseComponent(raw, "pre_tokenizer")
	if err != nil {
		return err
	}
	if c == nil {
		return errors.New("field pre_tokenizer is null; polo needs a ByteLevel pre-tokenizer (byte-level BPE)")
	}
	list := []json.RawMessage{raw}
	prefix := "pre_tokenizer"
	if c.Type == "Sequence" {
		list = c.Pretokenizers
		prefix = "pre_tokenizer.pretokenizers"
	}
	byteLevelSeen := false
	for i, sub := range list {
		field := prefix
		if c.Type == "Sequence" {
			field = fmt.Sprintf("%s[%d]", prefix, i)
		}
		p, err := parseComponent(sub, field)
		if err != nil {
			return err
		}
		if p == nil {
			continue
		}
		if byteLevelSeen {
			return fmt.Errorf("field %s: pre-tokenizers after ByteLevel are not supported", field)
		}
		switch p.Type {
		case "Split":
			if p.Behavior != "Isolated" || p.Invert {
				return fmt.Errorf("field %s: Split with behavior %q invert=%v is not supported (only Isolated, invert=false)", field, p.Behavior, p.Invert)
			}
			var sp splitter
			switch {
			case p.Pattern.Regex != nil:
				sp, err = newSplitter(*p.Pattern.Regex)
			case p.Pattern.String != nil:
				sp, err = newSplitter(regexp.QuoteMeta(*p.Pattern.String))
			default:
				err = errors.New("no Regex or String")
			}
			if err != nil {
				return fmt.Errorf("field %s.pattern: %v", field, err)
			}
			t.splitters = append(t.splitters, sp)
		case "ByteLevel":
			byteLevelSeen = true
			t.addPrefixSpace = p.AddPrefixSpace
			if p.UseRegex == nil || *p.UseRegex {
				sp, _ := newSplitter(patternGPT2)
				t.splitters = append(t.splitters, sp)
			}
		default:
			return fmt.Errorf("field %s.type: pre-tokenizer %q is not supported (polo supports Split, ByteLevel, Sequence)", field, p.Type)
		}
	}
	if !byteLevelSeen {
		return errors.New("field pre_tokenizer: no ByteLevel pre-tokenizer; polo reads byte-level BPE tokenizers only")
	}
	return nil
}

// checkDecoder accepts the ByteLevel decoder, alone or as the only real step of a Sequence.
func checkDecoder(raw json.RawMessage, field string) error {
	c, err := parseComponent(raw, field)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("field %s is null; polo needs the ByteLevel decoder", field)
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		if len(c.Decoders) != 1 {
			return fmt.Errorf("field %s.decoders: only a single ByteLevel decoder is supported", field)
		}
		return checkDecoder(c.Decoders[0], field+".decoders[0]")
	}
	return fmt.Errorf("field %s.type: decoder %q is not supported (polo supports ByteLevel)", field, c.Type)
}

// buildPostProcessor finds the special tokens that EncodeWithSpecial puts around a sequence.
// transformers' LlamaTokenizerFast rebuilds this from add_bos_token/add_eos_token, so for that
// class those config fields win over tokenizer.json.
func (t *HF) buildPostProcessor(raw json.RawMessage, cfg *configJSON) error {
	if cfg.TokenizerClass == "LlamaTokenizerFast" {
		if cfg.AddBOSToken == nil || *cfg.AddBOSToken {
			if t.bos < 0 {
				return errors.New("tokenizer_config.json: field add_bos_token is true but bos_token is not set")
			}
			t.prefix = []int32{t.bos}
		}
		if cfg.AddEOSToken != nil && *cfg.AddEOSToken {
			if t.eos < 0 {
				return errors.New("tokenizer_config.json: field add_eos_token is true but eos_token is not set")
			}
			t.suffix = []int32{t.eos}
		}
		return nil
	}
	return t.postProcessor(raw, "post_processor")
}

func (t *HF) postProcessor(raw json.RawMessage, field string) error {
	c, err := parseComponent(raw, field)
	if c == nil || err != nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		return nil // only adjusts offsets
	case "Sequence":
		for i, sub := range c.Processors {
			if err := t.postProcessor(sub, fmt.Sprintf("%s.processors[%d]", field, i)); err != nil {
				return err
			}
		}
		return nil
	case "TemplateProcessing":
		seen := false
		for i, p := range c.Single {
			switch {
			case p.Sequence != nil:
				if seen {
					return fmt.Errorf("field %s.single[%d]: more than one sequence", field, i)
				}
				seen = true
			case p.SpecialToken != nil:
				st, ok := c.SpecialTokens[p.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("field %s.single[%d]: %q is not in %s.special_tokens", field, i, p.SpecialToken.ID, field)
				}
				if seen {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("field %s.type: post-processor %q is not supported (polo supports ByteLevel, TemplateProcessing, Sequence)", field, c.Type)
}
