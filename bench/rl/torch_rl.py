"""PyTorch side of the RL-step benchmark: one GRPO step of polo's demo (train/demo.yaml) at the
demo's shapes, float32, 2 threads, split into the phases polo's trainer has.

Model: polo's "small" preset for the addition task's char tokenizer (model/config.go Preset):
Llama, 4 layers, d=128, 4 heads / 2 KV heads (GQA, head dim 32), SwiGLU MLP 384, vocab 15
(<pad> <bos> <eos> + "+0123456789="), tied embeddings, RoPE theta 10000, RMSNorm eps 1e-6,
no biases: 789,504 parameters. Random init (only shapes matter for time).

Batch: 16 prompts "a+b=" (a, b uniform in [0, 100), as task addition digits=2) with BOS, each
sampled 8 times = 128 rows, temperature 1, at most 6 new tokens, stop at <eos>.

Phases (seconds per RL step; each printed as "<name> <best seconds>" over the timed steps):
  rollout   prefill + KV-cache decode of the 128 rows with behaviour log-probs and entropy
  reward    decode the responses to text and check the sum (polo: reward_s)
  logprob   no-grad log-probs + entropies of the policy (pi_old) and of the frozen reference on
            the 128 prompt+response rows, then GRPO group z-score advantages
  train     rl.epochs=1 x rl.mini_batches=2 of 64 shuffled rows: forward with grad, GRPO loss
            (token ratio, PPO clip 0.2, k3 KL to the reference with beta 0.04, seq-mean-token-mean)
            in the graph, backward, global-norm clip 1.0, AdamW (lr 3e-4, betas 0.9/0.99,
            eps 1e-8, wd 0)
  train_polo_loop
            train with the passes polo's loop runs (train/rl.go update): the objective runs on
            the host and needs the current log-probs before the backward, so every mini-batch but
            the first (whose log-probs are the scoring pass's, the policy being unchanged) first
            gets a no-grad log-prob pass; then forward+backward of the surrogate
            sum(stopgrad(dL/dlogp) * logp), clip, AdamW

Two padding layouts are timed (suffix _pl for the second):
  natural   what plain PyTorch code does: prompts left-padded to the longest prompt (7), a KV cache
            of 7+6 slots attending only over the filled ones, sequences right-padded to the
            longest prompt+response of the batch (13)
  polo      polo's layouts, mirrored from model/model.go bucketLen and model/decode.go NewDecoder
            (as of commit bcaf3b0): prefill on bucketLen(longest prompt) columns, a cache of
            bucketLen(n + bucketStep(n) - 1) slots for n = longest prompt + 6, attended in full under a validity mask,
            sequences padded to bucketLen(longest row); bucketLen keeps lengths up to 16 exact,
            then rounds up to multiples of 8 (to 64), 16 (to 256), 64

Usage: torch_rl.py [timed steps] [warm-up steps]
"""
import copy
import math
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)

ALPHABET = "+0123456789="
PAD, BOS, EOS = 0, 1, 2
V = 3 + len(ALPHABET)
D, L, H, KVH, I = 128, 4, 4, 2, 384
HD = D // H
GROUPS = H // KVH
EPS, THETA = 1e-6, 10000.0
PROMPTS, G, MAX_NEW = 16, 8, 6
MINI_BATCHES = 2
CLIP_EPS, BETA, CLIP_NORM = 0.2, 0.04, 1.0


def encode(s):
    return [3 + ALPHABET.index(c) for c in s]


def decode(ids):
    out = []
    for t in ids:
        if t == EOS:
            break
        if t >= 3:
            out.append(ALPHABET[t - 3])
    return "".join(out)


def bucket_step(t):  # model/model.go bucketStep
    return 1 if t <= 16 else 8 if t <= 64 else 16 if t <= 256 else 64


def bucket(t):  # model/model.go bucketLen
    step = bucket_step(t)
    return (t + step - 1) // step * step


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.Parameter(torch.ones(D))
        self.ln2 = torch.nn.Parameter(torch.ones(D))
        self.q = torch.nn.Linear(D, H * HD, bias=False)
        self.k = torch.nn.Linear(D, KVH * HD, bias=False)
        self.v = torch.nn.Linear(D, KVH * HD, bias=False)
        self.o = torch.nn.Linear(H * HD, D, bias=False)
        self.gate = torch.nn.Linear(D, I, bias=False)
        self.up = torch.nn.Linear(D, I, bias=False)
        self.down = torch.nn.Linear(I, D, bias=False)


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, cos, sin):  # x [B, heads, T, HD]; cos/sin [B, 1, T, HD/2]
    x1, x2 = x[..., : HD // 2], x[..., HD // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def attend(q, k, v, allowed):  # q [B, H, Tq, HD], k/v [B, KVH, Tk, HD], allowed [B, 1, Tq, Tk]
    k = k.repeat_interleave(GROUPS, 1)  # GQA as transformers' repeat_kv
    v = v.repeat_interleave(GROUPS, 1)
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(HD))
    return torch.softmax(s.masked_fill(~allowed, -1e30), -1) @ v


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, D)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = torch.nn.Parameter(torch.ones(D))
        self.register_buffer("inv", 1.0 / THETA ** (torch.arange(0, HD, 2).float() / HD))

    def head(self, h):  # tied embeddings
        return h @ self.embed.weight.t()

    def cos_sin(self, pos):  # pos [B, T]
        ang = pos[:, None, :, None].float() * self.inv
        return ang.cos(), ang.sin()

    def qkv(self, blk, x, cos, sin):
        b, t, _ = x.shape
        q = blk.q(x).view(b, t, H, HD).transpose(1, 2)
        k = blk.k(x).view(b, t, KVH, HD).transpose(1, 2)
        v = blk.v(x).view(b, t, KVH, HD).transpose(1, 2)
        return rope(q, cos, sin), rope(k, cos, sin), v

    def layer(self, blk, h, cos, sin, kv_fn):
        q, k, v = self.qkv(blk, rms(h, blk.ln1), cos, sin)
        att = kv_fn(q, k, v)
        h = h + blk.o(att.transpose(1, 2).reshape(h.shape[0], h.shape[1], H * HD))
        x = rms(h, blk.ln2)
        return h + blk.down(F.silu(blk.gate(x)) * blk.up(x))

    def forward(self, ids, pos, allowed, keep_kv=None):  # allowed [B, 1, T, T]; returns final-normed h
        cos, sin = self.cos_sin(pos)
        h = self.embed(ids)
        for i, blk in enumerate(self.blocks):
            def kv_fn(q, k, v, i=i):
                if keep_kv is not None:
                    keep_kv(i, k, v)
                return attend(q, k, v, allowed)
            h = self.layer(blk, h, cos, sin, kv_fn)
        return rms(h, self.norm)


def token_stats(logits, target):
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, target[..., None])[..., 0]
    ent = -(logp_all.exp() * logp_all).sum(-1)
    return logp, ent


def causal_allowed(mask):  # mask [B, T] bool -> [B, 1, T, T]
    t = mask.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    return causal[None, None] & mask[:, None, None, :]


def positions(mask):  # number of real tokens before each position (polo's pos)
    return (mask.long().cumsum(1) - 1).clamp(min=0)


@torch.no_grad()
def rollout(m, prompts, gen, bucketed):
    """KV-cache sampling: returns per-row response ids and behaviour log-probs / entropies."""
    B = len(prompts)
    P = max(len(p) for p in prompts)
    if bucketed:
        P = bucket(P)
        max_len = max(len(p) for p in prompts) + MAX_NEW
        cap = bucket(max_len + bucket_step(max_len) - 1)  # model.NewDecoder
    else:
        cap = P + MAX_NEW
    ids = torch.full((B, P), PAD, dtype=torch.long)
    mask = torch.zeros(B, P, dtype=torch.bool)
    for i, p in enumerate(prompts):  # left padding
        ids[i, P - len(p):] = torch.tensor(p)
        mask[i, P - len(p):] = True
    pos = positions(mask)
    kc = torch.zeros(L, B, KVH, cap, HD)
    vc = torch.zeros(L, B, KVH, cap, HD)
    valid = torch.zeros(B, cap, dtype=torch.bool)
    valid[:, :P] = mask

    def keep(i, k, v):
        kc[i, :, :, :P] = k
        vc[i, :, :, :P] = v

    h = m(ids, pos, causal_allowed(mask), keep)
    logits = m.head(h[:, -1])
    next_pos = mask.sum(1)
    slot = P
    toks, lps, ents = [], [], []
    done = torch.zeros(B, dtype=torch.bool)
    while True:
        logp_all = torch.log_softmax(logits, -1)  # temperature 1, no filters
        tok = torch.multinomial(logp_all.exp(), 1, generator=gen)[:, 0]
        tok = torch.where(done, torch.full_like(tok, EOS), tok)
        toks.append(tok)
        lps.append(logp_all.gather(-1, tok[:, None])[:, 0])
        ents.append(-(logp_all.exp() * logp_all).sum(-1))
        done = done | (tok == EOS)
        if bool(done.all()) or len(toks) == MAX_NEW:
            break
        # one decode step: write slot, attend over the cache
        valid[:, slot] = True
        cos, sin = m.cos_sin(next_pos[:, None])
        hh = m.embed(tok[:, None])
        width = cap if bucketed else slot + 1
        allowed = valid[:, None, None, :width]
        for i, blk in enumerate(m.blocks):
            def kv_fn(q, k, v, i=i):
                kc[i, :, :, slot] = k[:, :, 0]
                vc[i, :, :, slot] = v[:, :, 0]
                return attend(q, kc[i, :, :, :width], vc[i, :, :, :width], allowed)
            hh = m.layer(blk, hh, cos, sin, kv_fn)
        logits = m.head(rms(hh, m.norm))[:, 0]
        next_pos = next_pos + 1
        slot += 1
    toks = torch.stack(toks, 1)
    resps = []
    for i in range(B):
        row = toks[i].tolist()
        n = row.index(EOS) + 1 if EOS in row else len(row)
        resps.append(row[:n])
    return resps, torch.stack(lps, 1), torch.stack(ents, 1)


def sequences(prompts, resps, bucketed):
    """Right-padded prompt+response rows (train/run.go sequences), plus response index/mask."""
    W = max(len(p) + len(r) for p, r in zip(prompts, resps))
    T = bucket(W) if bucketed else W
    B = len(prompts)
    ids = torch.full((B, T), PAD, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.bool)
    col = torch.zeros(B, MAX_NEW, dtype=torch.long)  # position whose next-token logp is response token j
    rmask = torch.zeros(B, MAX_NEW)
    for i, (p, r) in enumerate(zip(prompts, resps)):
        row = p + r
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = True
        col[i, : len(r)] = torch.arange(len(p) - 1, len(p) - 1 + len(r))
        rmask[i, : len(r)] = 1
    return ids, mask, col, rmask


def response_stats(m, ids, mask, col):
    h = m(ids, positions(mask), causal_allowed(mask))
    target = torch.roll(ids, -1, 1)
    logp, ent = token_stats(m.head(h), target)  # [B, T]
    return logp.gather(1, col), ent.gather(1, col)


def grpo_loss(logp, old, ref, adv, rmask):
    ratio = torch.exp(logp - old)
    a = adv[:, None]
    pg = -torch.min(ratio * a, ratio.clamp(1 - CLIP_EPS, 1 + CLIP_EPS) * a)
    d = (ref - logp).clamp(-20, 20)
    kl = (torch.exp(d) - d - 1).clamp(-10, 10)
    per_tok = (pg + BETA * kl) * rmask
    return (per_tok.sum(1) / rmask.sum(1).clamp(min=1)).mean()  # seq-mean-token-mean


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    warm = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.manual_seed(1)
    rng = torch.Generator().manual_seed(1)
    policy = Model()
    for p in policy.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.02)
    ref = copy.deepcopy(policy)
    for p in ref.parameters():
        p.requires_grad_(False)
    print("params", sum(p.numel() for p in policy.parameters()))
    print("vocab", V)

    def run(bucketed):
        # model A is the policy that samples and trains the plain PyTorch way; model B (a copy with its
        # own optimizer) trains on the same rows the way polo's loop does, so both train variants are
        # timed on identical batches within one step.
        models = [copy.deepcopy(policy), copy.deepcopy(policy)]
        opts = [torch.optim.AdamW(mm.parameters(), lr=3e-4, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0,
                                  foreach=False) for mm in models]
        best, lens, widths = {}, [], []

        def train(model, opt, polo_loop, prompts, resps, old, refl, adv, order):
            n = len(prompts)
            for k in range(MINI_BATCHES):
                mb = order[k * n // MINI_BATCHES:(k + 1) * n // MINI_BATCHES].tolist()
                sub_ids, sub_mask, sub_col, sub_rmask = sequences([prompts[i] for i in mb], [resps[i] for i in mb],
                                                                  bucketed)
                o, r_, a_ = old[mb], refl[mb], adv[mb]
                if polo_loop and k > 0:
                    with torch.no_grad():  # the re-score polo's host-side objective needs
                        cur, _ = response_stats(model, sub_ids, sub_mask, sub_col)
                    cur = cur.detach().requires_grad_(True)
                    loss = grpo_loss(cur, o, r_, a_, sub_rmask)
                    (coef,) = torch.autograd.grad(loss, cur)  # dL/dlogp, as the host objective returns it
                    logp, _ = response_stats(model, sub_ids, sub_mask, sub_col)
                    (coef * logp).sum().backward()
                elif polo_loop:  # first mini-batch: dL/dlogp from the scoring pass's log-probs
                    cur = o.clone().requires_grad_(True)
                    loss = grpo_loss(cur, o, r_, a_, sub_rmask)
                    (coef,) = torch.autograd.grad(loss, cur)
                    logp, _ = response_stats(model, sub_ids, sub_mask, sub_col)
                    (coef * logp).sum().backward()
                else:
                    logp, _ = response_stats(model, sub_ids, sub_mask, sub_col)
                    grpo_loss(logp, o, r_, a_, sub_rmask).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
                opt.step()
                opt.zero_grad(set_to_none=True)

        def one_step(timed):
            model = models[0]
            examples = []
            for _ in range(PROMPTS):
                a, b = (int(x) for x in torch.randint(0, 100, (2,), generator=rng))
                examples.append((encode(f"{a}+{b}="), a + b))
            prompts = [[BOS] + p for p, _ in examples for _ in range(G)]
            answers = [s for _, s in examples for _ in range(G)]
            t1 = time.perf_counter()  # drawing prompts is outside every phase in polo too
            resps, blp, _ = rollout(model, prompts, rng, bucketed)
            t2 = time.perf_counter()
            rewards = torch.tensor([1.0 if decode(r) == str(s) else 0.0 for r, s in zip(resps, answers)])
            t3 = time.perf_counter()
            ids, mask, col, rmask = sequences(prompts, resps, bucketed)
            with torch.no_grad():
                old, _ = response_stats(model, ids, mask, col)
                refl, _ = response_stats(ref, ids, mask, col)
            g = rewards.view(PROMPTS, G)
            adv = ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-6)).view(-1)
            t4 = time.perf_counter()
            order = torch.randperm(len(prompts), generator=rng)
            train(models[0], opts[0], False, prompts, resps, old, refl, adv, order)
            t5 = time.perf_counter()
            train(models[1], opts[1], True, prompts, resps, old, refl, adv, order)
            t6 = time.perf_counter()
            if timed:
                lens.append(sum(len(r) for r in resps) / len(resps))
                widths.append(ids.shape[1])
                for k, v in (("rollout", t2 - t1), ("reward", t3 - t2), ("logprob", t4 - t3), ("train", t5 - t4),
                             ("train_polo_loop", t6 - t5), ("step", t5 - t1)):
                    best[k] = min(best.get(k, v), v)

        for _ in range(warm):
            one_step(False)
        for _ in range(steps):
            one_step(True)
        return best, sum(lens) / len(lens), max(widths)

    for bucketed in (False, True):
        suffix = "_pl" if bucketed else ""
        best, rlen, width = run(bucketed)
        for k in ("rollout", "reward", "logprob", "train", "train_polo_loop", "step"):
            print(f"{k}{suffix} {best[k]:.5f}")
        print(f"resp_len{suffix} {rlen:.2f}")
        print(f"seq_width{suffix} {width}")


if __name__ == "__main__":
    main()
