package train

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/polo-rl/polo/model"
	"github.com/polo-rl/polo/objective"
	"github.com/polo-rl/polo/reward"
	"github.com/polo-rl/polo/task"
	"github.com/polo-rl/polo/tokenizer"
)

// codec turns examples into token ids and sampled ids back into text.
type codec struct {
	tok      tokenizer.Tokenizer
	alphabet string // char tokenizer: its alphabet (saved with checkpoints)
	hfDir    string // hf tokenizer: the folder it was loaded from
	addBOS   bool   // prepend BOS by hand (the char tokenizer); HF tokenizers add it themselves
	hf       *tokenizer.HF
	eos, pad int32
}

func newCodec(c Config, alphabet string) (*codec, error) {
	switch c.Tokenizer.Kind {
	case "char":
		if alphabet == "" {
			return nil, fmt.Errorf("tokenizer kind char needs a synthetic task with an alphabet; use tokenizer.kind=hf for datasets")
		}
		t, err := tokenizer.NewChar(alphabet)
		if err != nil {
			return nil, err
		}
		return &codec{tok: t, alphabet: alphabet, addBOS: true, eos: t.EOS(), pad: t.PAD()}, nil
	default:
		dir := c.Tokenizer.Path
		if dir == "" {
			dir = c.Model.Path
		}
		return loadHFCodec(dir)
	}
}

func loadHFCodec(dir string) (*codec, error) {
	t, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	if t.EOS() < 0 {
		return nil, fmt.Errorf("tokenizer %s has no EOS token; RL needs one to end responses", dir)
	}
	pad := t.PAD()
	if pad < 0 {
		pad = t.EOS()
	}
	return &codec{tok: t, hf: t, hfDir: dir, eos: t.EOS(), pad: pad}, nil
}

// charTokenizerFile marks a checkpoint whose tokenizer is the character tokenizer.
const charTokenizerFile = "polo_tokenizer.json"

// save writes the tokenizer next to the model weights, so a checkpoint folder is self-contained:
// the character tokenizer as polo_tokenizer.json, an HF tokenizer as copies of its files.
func (c *codec) save(dir string) error {
	if c.hf == nil {
		return writeJSONFile(filepath.Join(dir, charTokenizerFile), map[string]string{"kind": "char", "alphabet": c.alphabet})
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		data, err := os.ReadFile(filepath.Join(c.hfDir, name))
		if errors.Is(err, os.ErrNotExist) && name != "tokenizer.json" {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loadCodec reads the tokenizer saved in a checkpoint's model folder (or any HF folder).
func loadCodec(dir string) (*codec, error) {
	var meta struct{ Kind, Alphabet string }
	err := readJSONFile(filepath.Join(dir, charTokenizerFile), &meta)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return loadHFCodec(dir)
	case err != nil:
		return nil, err
	case meta.Kind != "char" || meta.Alphabet == "":
		return nil, fmt.Errorf("%s: want kind char and a non-empty alphabet", filepath.Join(dir, charTokenizerFile))
	}
	t, err := tokenizer.NewChar(meta.Alphabet)
	if err != nil {
		return nil, err
	}
	return &codec{tok: t, alphabet: meta.Alphabet, addBOS: true, eos: t.EOS(), pad: t.PAD()}, nil
}

// Policy is a saved model with its tokenizer, as `polo eval` and `polo sample` use it.
type Policy struct {
	Model *model.Model
	codec *codec
}

// LoadPolicy loads a model folder written by polo (checkpoints/<name>/model) or any HF folder that
// holds a tokenizer; a LoRA checkpoint (PEFT adapter folder) is loaded onto the base it names.
func LoadPolicy(dir string) (*Policy, error) {
	m, err := model.LoadAny(dir)
	if err != nil {
		return nil, err
	}
	c, err := loadCodec(dir)
	if err != nil && model.IsAdapterDir(dir) { // an adapter folder without a tokenizer: its base's
		if base, e := model.AdapterBase(dir); e == nil {
			c, err = loadCodec(base)
		}
	}
	if err != nil {
		return nil, err
	}
	if c.tok.VocabSize() > m.Config().VocabSize {
		return nil, fmt.Errorf("%s: tokenizer has %d ids but the model only %d", dir, c.tok.VocabSize(), m.Config().VocabSize)
	}
	return &Policy{Model: m, codec: c}, nil
}

// Prompt returns the ids a prompt is sampled from (BOS or the chat template included).
func (p *Policy) Prompt(ex task.Example) ([]int32, error) { return p.codec.prompt(ex) }

// Text decodes a response, cut at the first EOS.
func (p *Policy) Text(ids []int32) string { return p.codec.text(ids) }

// StopTokens are the ids that end a response.
func (p *Policy) StopTokens() []int32 { return []int32{p.codec.eos} }

// Tokenizer is the policy's tokenizer.
func (p *Policy) Tokenizer() tokenizer.Tokenizer { return p.codec.tok }

// prompt returns the ids the policy is conditioned on.
func (c *codec) prompt(ex task.Example) ([]int32, error) {
	if c.hf != nil && len(ex.Messages) > 0 {
		msgs := make([]tokenizer.Message, len(ex.Messages))
		for i, m := range ex.Messages {
			msgs[i] = tokenizer.Message{Role: m.Role, Content: m.Content}
		}
		text, err := c.hf.ApplyChatTemplate(msgs, tokenizer.ChatOptions{AddGenerationPrompt: true})
		if err != nil {
			return nil, fmt.Errorf("example %s: %w", ex.ID, err)
		}
		return c.tok.Encode(text), nil
	}
	if c.addBOS {
		return append([]int32{c.tok.BOS()}, c.tok.Encode(ex.Prompt)...), nil
	}
	return c.tok.EncodeWithSpecial(ex.Prompt), nil
}

// answer returns the supervised target ids for SFT: the reference answer followed by EOS.
func (c *codec) answer(ex task.Example) []int32 {
	return append(c.tok.Encode(ex.Answer), c.eos)
}

// text decodes a response, cut at the first EOS.
func (c *codec) text(ids []int32) string {
	for i, id := range ids {
		if id == c.eos {
			ids = ids[:i]
			break
		}
	}
	return c.tok.Decode(ids, true)
}

// promptSource yields the training prompts of a step and the held-out test set, reproducibly from
// the seed, so that a resumed run sees exactly the prompts an uninterrupted one would.
type promptSource struct {
	cfg      Config
	data     []task.Example // dataset rows (nil for a generator)
	test     []task.Example
	testKeys map[string]bool
	alphabet string
	skipped  []error // dataset rows dropped under task.on_error: skip
}

func newPromptSource(c Config) (*promptSource, error) {
	ps := &promptSource{cfg: c, testKeys: map[string]bool{}}
	if c.Task.Name == "dataset" {
		if c.Task.Path == "" {
			return nil, fmt.Errorf("config field task.path: a dataset file is needed when task.name is dataset")
		}
		fields := task.Fields{Prompt: c.Task.PromptField, Answer: c.Task.AnswerField}
		opts := task.LoadOptions{AnswerStyle: c.Task.AnswerStyle, OnError: c.Task.OnError}
		load := task.LoadJSONL
		if strings.HasSuffix(strings.ToLower(c.Task.Path), ".parquet") {
			load = task.LoadParquet
		}
		ds, err := load(c.Task.Path, fields, opts)
		var rowErr *task.RowError
		if errors.As(err, &rowErr) { // the loader's hint names its Go option; name the config field
			return nil, fmt.Errorf("%v (fix the row, or set task.on_error: skip to drop malformed rows)", rowErr)
		}
		if err != nil {
			return nil, err
		}
		ps.skipped = ds.Skipped
		n := ds.Len()
		if n < 2 {
			return nil, fmt.Errorf("dataset %s has %d usable rows; need at least 2", c.Task.Path, n)
		}
		testN := min(c.Task.TestSize, n/2)
		train, test := ds.Split(float64(testN)/float64(n), c.Seed)
		ps.data, ps.test = train.Examples, test.Examples
		return ps, nil
	}
	gen, err := task.NewGenerator(c.Task.Name, c.Task.Options, int64(seedFor(c.Seed, "test", 0)))
	if err != nil {
		return nil, err
	}
	ps.alphabet = gen.Alphabet()
	return ps, ps.fillHeldOut(gen) // refuses a test_size the task cannot fill
}

// HeldOut returns the held-out examples a run with this configuration evaluates on (the same ones,
// in the same order), so that `polo eval` scores a checkpoint on prompts its training never saw.
func HeldOut(c Config) ([]task.Example, error) {
	ps, err := newPromptSource(c)
	if err != nil {
		return nil, err
	}
	return ps.test, nil
}

// draw returns n training examples for (purpose, step); generator prompts that are in the test set are
// skipped so held-out accuracy measures generalisation.
func (ps *promptSource) draw(purpose string, step, n int) ([]task.Example, error) {
	seed := seedFor(ps.cfg.Seed, purpose, step)
	out := make([]task.Example, 0, n)
	if ps.data != nil {
		rng := rand.New(rand.NewPCG(seed, 0))
		for range n {
			out = append(out, ps.data[rng.IntN(len(ps.data))])
		}
		return out, nil
	}
	gen, err := task.NewGenerator(ps.cfg.Task.Name, ps.cfg.Task.Options, int64(seed>>1))
	if err != nil {
		return nil, err
	}
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n+1000 {
			return nil, fmt.Errorf("task %s: could not draw %d training prompts outside the test set; lower task.test_size", ps.cfg.Task.Name, n)
		}
		ex, err := gen.Next()
		if err != nil {
			return nil, err
		}
		if !ps.testKeys[ex.Prompt] {
			out = append(out, ex)
		}
	}
	return out, nil
}

// checkModelVocab refuses a model.path whose vocabulary does not fit the tokenizer, before the run
// folder is touched: the character tokenizer must match the model's vocab_size exactly (its ids mean
// nothing to a model trained with another tokenizer); an HF tokenizer may not exceed it.
func checkModelVocab(c Config, vocab int) error {
	if c.Model.Path == "" {
		return nil
	}
	mc, err := model.LoadConfig(c.Model.Path)
	if err != nil {
		return err
	}
	switch {
	case c.Tokenizer.Kind == "char" && mc.VocabSize != vocab:
		return fmt.Errorf("model.path %s has vocab_size %d, but tokenizer.kind char has %d tokens; use tokenizer.kind: hf with this model's tokenizer, or a model trained with the char tokenizer", c.Model.Path, mc.VocabSize, vocab)
	case mc.VocabSize < vocab:
		return fmt.Errorf("model.path %s has vocab_size %d, smaller than the tokenizer's %d", c.Model.Path, mc.VocabSize, vocab)
	}
	return nil
}

// newPolicy builds the initial policy: a seeded from-scratch preset or a Hugging Face checkpoint.
func newPolicy(c Config, vocab int) (*model.Model, error) {
	if c.Model.Path != "" {
		m, err := model.Load(c.Model.Path)
		if err != nil {
			return nil, err
		}
		if m.Config().VocabSize < vocab {
			return nil, fmt.Errorf("model %s has vocab %d, smaller than the tokenizer's %d", c.Model.Path, m.Config().VocabSize, vocab)
		}
		return m, nil
	}
	mc, err := model.Preset(c.Model.Preset, vocab)
	if err != nil {
		return nil, err
	}
	return model.New(mc, int64(seedFor(c.Seed, "init", 0)>>1))
}

// trainerInput says whether polo train provides an input an objective declares, under configuration c,
// and if not, what it would take. Every input name an objective can declare has an entry: a new input
// is added here together with the code that computes it.
func trainerInput(c Config, name string) (ok bool, why string) {
	switch name {
	case objective.InLogP, objective.InOldLogP, objective.InRewards, objective.InGroup, objective.InPromptID,
		objective.InEntropy, objective.InTruncated, objective.InLengths, objective.InTokenIDs,
		objective.InRewardComponents, objective.InStep:
		return true, "" // objectiveBatch and scoreBatch fill these for every rollout batch
	case objective.InRefLogP:
		return true, "" // the reference model: a frozen copy of the policy, or distill.teacher
	case objective.InDrift:
		return true, "" // measureDrift, after each step's update
	case objective.InRolloutLogP:
		return true, "" // the sampler's log-probs, local or remote (setRolloutLogP)
	case objective.InTeacherLogP:
		return c.Distill.Teacher != "", "a teacher: set distill.teacher to a model folder"
	case objective.InValues:
		return true, "" // the value head of an objective.Critic (critic.go; missingInputs checks the objective)
	case objective.InProxyLogP, objective.InTargetRatio, objective.InMeanEntropy:
		return true, "" // oldPolicyDist (distinputs.go), in the model graph
	case objective.InGradWeight:
		return true, "" // oldPolicyDist (distinputs.go): the logits-gradient norm proxy per response
	case objective.InSegments:
		return true, "" // segments.go: Monte-Carlo continuations at the cutpoints
	case objective.InLayerLogP:
		return true, "" // layer.go: model.LayerLogProbs and AccumulateLayer while the objective says so
	case objective.InTokenRewards:
		return c.Reward.DPOModel != "" || c.Reward.DPOSteps > 0, "dense token rewards (token_rewards): set reward.dpo_model to a DPO-trained model folder, or reward.dpo_steps to train one in this run"
	}
	return false, fmt.Sprintf("input %q, which the trainer does not know", name)
}

// missingInputs lists, for each declared input the trainer cannot provide, what it would take.
func missingInputs(c Config, obj objective.Objective) []string {
	var out []string
	for _, name := range obj.Inputs() {
		ok, why := trainerInput(c, name)
		if _, _, critic := criticOf(obj); name == objective.InValues && !critic {
			ok, why = false, "critic values (values) from an objective without a critic (objective.Critic)"
		}
		if !ok && !slices.Contains(out, why) {
			out = append(out, why)
		}
	}
	return out
}

// objectives is what algo.name selects: a token objective (RL, distillation, hybrid) or a pair loss
// (preference mode), and whether the run needs a frozen reference model.
type objectives struct {
	token   objective.Objective
	pair    objective.PairObjective
	needRef bool // the objective declares ref_logp (a KL term, a pair loss, a teacher)
}

// newObjective builds algo.name and refuses it up front when it declares an input the trainer does
// not provide (never a silent fallback).
func newObjective(c Config) (objectives, error) {
	name := c.Algo.Name
	if objective.IsPair(name) {
		pair, err := objective.NewPair(name, c.Algo.Set)
		return objectives{pair: pair, needRef: true}, err
	}
	obj, err := objective.New(name, c.Algo.Set)
	if err != nil {
		return objectives{}, err
	}
	if missing := missingInputs(c, obj); len(missing) > 0 {
		return objectives{}, fmt.Errorf("objective %s cannot be trained with polo train yet: it needs %s (it works in polo objective)", name, strings.Join(missing, "; "))
	}
	if c.Reward.DPOModel != "" && !objective.Declares(obj, objective.InTokenRewards) {
		return objectives{}, fmt.Errorf("config: reward.dpo_model is set but objective %s reads no token rewards; use an objective that does (rto)", name)
	}
	switch {
	case c.Reward.DPOSteps < 0:
		return objectives{}, fmt.Errorf("config field reward.dpo_steps = %d: want >= 0", c.Reward.DPOSteps)
	case c.Reward.DPOSteps > 0 && c.Reward.DPOModel != "":
		return objectives{}, fmt.Errorf("config fields reward.dpo_steps and reward.dpo_model: set one (train the DPO model in this run, or read one)")
	case c.Reward.DPOSteps > 0 && !objective.Declares(obj, objective.InTokenRewards):
		return objectives{}, fmt.Errorf("config: reward.dpo_steps is set but objective %s reads no token rewards; use an objective that does (rto)", name)
	}
	if _, _, critic := criticOf(obj); c.RL.CriticModel != "" && !critic {
		return objectives{}, fmt.Errorf("config: rl.critic_model is set but objective %s has no critic; use an actor-critic objective (ppo)", name)
	}
	if err := checkSegmentRewards(c, obj); err != nil {
		return objectives{}, err
	}
	if err := checkPolicyLayer(c, obj); err != nil {
		return objectives{}, err
	}
	if err := checkOffline(c, obj); err != nil { // offline.go
		return objectives{}, err
	}
	if err := checkActionMask(c, obj); err != nil { // nlpo.go
		return objectives{}, err
	}
	if c.Distill.TopK < 0 || c.Distill.TopK > 0 && (c.Distill.Teacher == "" || !(c.Distill.TopKCoef > 0)) {
		return objectives{}, fmt.Errorf("config field distill.top_k = %d: want 0, or > 0 with distill.teacher set and distill.top_k_coef > 0", c.Distill.TopK)
	}
	if c.Distill.Teacher != "" && !objective.Declares(obj, objective.InTeacherLogP) {
		return objectives{}, fmt.Errorf("config: distill.teacher is set but objective %s reads no teacher; use an objective that does (distill)", name)
	}
	if _, mixes := obj.(objective.ExpertMixer); c.Hybrid.ExpertRows > 0 && !mixes {
		return objectives{}, fmt.Errorf("config field hybrid.expert_rows: want 0 unless the objective mixes expert rows (%s does not; chord does)", name)
	}
	return objectives{token: obj, needRef: objective.Declares(obj, objective.InRefLogP)}, nil
}

// Check reports the configuration mistakes that can be found without training: the objective preset
// and its parameters, the task and its options, the verifiers and reward components. The CLI runs it
// first so that such mistakes are usage errors.
func Check(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if _, err := newObjective(c); err != nil {
		return err
	}
	if _, err := newOTR(c); err != nil { // sft.otr (otr.go)
		return err
	}
	if c.SFT.Source == sourceBestOfNQ && c.SFT.Steps > 0 { // the critic and its feature model load and fit
		if _, err := newBestOfN(c); err != nil {
			return err
		}
	}
	if c.Task.Name != "dataset" {
		ps, err := newPromptSource(c) // the generator, its options, the held-out set
		if err != nil {
			return err
		}
		if c.Tokenizer.Kind == "char" && c.Model.Path != "" {
			cd, err := newCodec(c, ps.alphabet)
			if err != nil {
				return err
			}
			if err := checkModelVocab(c, cd.tok.VocabSize()); err != nil {
				return err
			}
		}
	}
	if _, err := reward.NewVerifier(c.Reward.Verifier, c.Reward.Options); err != nil {
		return err
	}
	_, err := newRewarder(c)
	return err
}
