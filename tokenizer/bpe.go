package tokenizer

import (
	"container/heap"
	"strings"
	"sync"
)

// bpe is a byte-level BPE model: a vocabulary and merges ranked by priority.
type bpe struct {
	vocab        map[string]int32 // byte-level token string → id
	byteID       [256]int32       // id of each single byte's token, -1 if absent
	merges       map[uint64]merge // (left id, right id) → merge
	ignoreMerges bool             // a piece that is itself in the vocabulary is one token (Llama-3)
	cache        wordCache
}

// merge is one merge rule: its priority (lower first) and the id of the merged token.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// encodePiece appends the ids of one pre-token (raw bytes) to dst.
func (m *bpe) encodePiece(dst []int32, piece string) []int32 {
	if len(piece) == 1 {
		if id := m.byteID[piece[0]]; id >= 0 {
			return append(dst, id)
		}
	}
	if ids, ok := m.cache.get(piece); ok {
		return append(dst, ids...)
	}
	var ids []int32
	if m.ignoreMerges {
		if id, ok := m.vocab[byteLevel(piece)]; ok {
			ids = []int32{id}
		}
	}
	if ids == nil {
		ids = m.mergeWord(piece)
	}
	if len(piece) <= maxCachedPiece {
		m.cache.put(piece, ids)
	}
	return append(dst, ids...)
}

// symbol is one current token of a word being merged, in a doubly linked list over positions.
type symbol struct {
	id         int32
	prev, next int32 // neighbour positions, -1 at the ends
	dead       bool
}

// candidate is a possible merge of the symbols at pos and its successor, valid only while both
// still carry the ids it was made from.
type candidate struct {
	rank        int32
	pos         int32
	left, right int32
	id          int32
}

type candidateHeap []candidate

func (h candidateHeap) Len() int { return len(h) }
func (h candidateHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candidateHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candidateHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candidateHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeWord applies merges to the bytes of word, lowest rank first and leftmost first among equal
// ranks (as Hugging Face tokenizers does). A heap of candidate merges over a linked list makes it
// O(n log n) in the word length rather than quadratic.
func (m *bpe) mergeWord(word string) []int32 {
	syms := make([]symbol, 0, len(word))
	for i := 0; i < len(word); i++ {
		id := m.byteID[word[i]]
		if id < 0 {
			continue // a byte missing from the vocabulary is dropped, as with no unk_token
		}
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1})
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	h := make(candidateHeap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h = append(h, candidate{rank: mg.rank, pos: int32(i), left: syms[i].id, right: syms[i+1].id, id: mg.id})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(candidate)
		s := &syms[c.pos]
		if s.dead || s.id != c.left || s.next < 0 || syms[s.next].id != c.right {
			continue // stale: one side was merged since this candidate was made
		}
		r := &syms[s.next]
		r.dead = true
		s.id = c.id
		s.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = c.pos
		}
		if s.prev >= 0 {
			p := syms[s.prev]
			if mg, ok := m.merges[pairKey(p.id, s.id)]; ok {
				heap.Push(&h, candidate{rank: mg.rank, pos: s.prev, left: p.id, right: s.id, id: mg.id})
			}
		}
		if s.next >= 0 {
			n := syms[s.next]
			if mg, ok := m.merges[pairKey(s.id, n.id)]; ok {
				heap.Push(&h, candidate{rank: mg.rank, pos: c.pos, left: s.id, right: n.id, id: mg.id})
			}
		}
	}
	ids := make([]int32, 0, 4)
	for i := int32(0); i >= 0; i = syms[i].next {
		ids = append(ids, syms[i].id)
	}
	return ids
}

// Cache bounds: pieces longer than maxCachedPiece bytes are rare and not worth keeping; the cache
// holds at most 2*cacheGeneration pieces.
const (
	maxCachedPiece  = 256
	cacheGeneration = 1 << 15
)

// wordCache remembers the ids of recent pieces. It keeps two generations: when the current one
// fills up it becomes the old one, and hits in the old one are promoted, so frequent words stay
// while memory stays bounded. Safe for concurrent use.
type wordCache struct {
	mu       sync.RWMutex
	cur, old map[string][]int32
}

func (c *wordCache) get(k string) ([]int32, bool) {
	c.mu.RLock()
	v, ok := c.cur[k]
	promote := false
	if !ok {
		v, ok = c.old[k]
		promote = ok
	}
	c.mu.RUnlock()
	if promote {
		c.put(k, v)
	}
	return v, ok
}

func (c *wordCache) put(k string, v []int32) {
	c.mu.Lock()
	if c.cur == nil || len(c.cur) >= cacheGeneration {
		c.old, c.cur = c.cur, make(map[string][]int32, 1024)
	}
	c.cur[strings.Clone(k)] = v // k may be a slice of a large input text
	c.mu.Unlock()
}
