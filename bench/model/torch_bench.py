"""PyTorch side of the model benchmark: the same Llama-style decoder as polo's "bench" preset
(4 layers, d=256, 4 heads, SwiGLU MLP 1024, vocab 256, untied head, RMSNorm, RoPE), float32,
2 threads. Prints one line per measurement: "<name> <seconds per op>".

Train step  = forward + surrogate sum(coef * logp) + backward + global-norm clip + AdamW.
Forward     = per-token logp of the next token and entropy (no grad), as polo's LogProbs.
Decode step = one token for a batch of 16 against a preallocated 128-slot KV cache.
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)

V, D, L, H, I = 256, 256, 4, 4, 1024
HD = D // H
B, T = 16, 128
CACHE = 128
EPS = 1e-6


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.Parameter(torch.ones(D))
        self.ln2 = torch.nn.Parameter(torch.ones(D))
        self.q = torch.nn.Linear(D, D, bias=False)
        self.k = torch.nn.Linear(D, D, bias=False)
        self.v = torch.nn.Linear(D, D, bias=False)
        self.o = torch.nn.Linear(D, D, bias=False)
        self.gate = torch.nn.Linear(D, I, bias=False)
        self.up = torch.nn.Linear(D, I, bias=False)
        self.down = torch.nn.Linear(I, D, bias=False)


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def attend(q, k, v, allowed):  # torch 1.13 has no scaled_dot_product_attention
    s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(HD))
    return torch.softmax(s.masked_fill(~allowed, -1e30), -1) @ v


def rope(x, cos, sin):  # x [B, H, T, HD]; cos/sin [B, 1, T, HD/2]
    x1, x2 = x[..., : HD // 2], x[..., HD // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, D)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = torch.nn.Parameter(torch.ones(D))
        self.head = torch.nn.Linear(D, V, bias=False)
        self.register_buffer("inv", 1.0 / 10000 ** (torch.arange(0, HD, 2).float() / HD))

    def cos_sin(self, pos):  # pos [B, T]
        ang = pos[:, None, :, None].float() * self.inv
        return ang.cos(), ang.sin()

    def qkv(self, blk, x, cos, sin):
        b, t, _ = x.shape
        q = blk.q(x).view(b, t, H, HD).transpose(1, 2)
        k = blk.k(x).view(b, t, H, HD).transpose(1, 2)
        v = blk.v(x).view(b, t, H, HD).transpose(1, 2)
        return rope(q, cos, sin), rope(k, cos, sin), v

    def forward(self, ids, pos, allowed):  # allowed [B, 1, T, T] bool
        cos, sin = self.cos_sin(pos)
        h = self.embed(ids)
        for blk in self.blocks:
            q, k, v = self.qkv(blk, rms(h, blk.ln1), cos, sin)
            att = attend(q, k, v, allowed)
            h = h + blk.o(att.transpose(1, 2).reshape(h.shape))
            x = rms(h, blk.ln2)
            h = h + blk.down(F.silu(blk.gate(x)) * blk.up(x))
        return self.head(rms(h, self.norm))

    def step(self, tok, pos, slot, kc, vc, valid):  # one token per row; caches [L, B, H, CACHE, HD]
        cos, sin = self.cos_sin(pos[:, None])
        h = self.embed(tok[:, None])
        for i, blk in enumerate(self.blocks):
            q, k, v = self.qkv(blk, rms(h, blk.ln1), cos, sin)
            kc[i, :, :, slot] = k[:, :, 0]
            vc[i, :, :, slot] = v[:, :, 0]
            att = attend(q, kc[i], vc[i], valid[:, None, None, :])
            h = h + blk.o(att.transpose(1, 2).reshape(h.shape))
            x = rms(h, blk.ln2)
            h = h + blk.down(F.silu(blk.gate(x)) * blk.up(x))
        return self.head(rms(h, self.norm))[:, 0]


def stats(logits, target):
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, target[..., None])[..., 0]
    ent = -(logp_all.exp() * logp_all).sum(-1)
    return logp, ent


def timeit(fn, n, warm=1):
    for _ in range(warm):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    m = Model()
    for p in m.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.02)
    ids = torch.randint(0, V, (B, T))
    pos = torch.arange(T)[None].expand(B, T)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()[None, None].expand(B, 1, T, T)
    target = torch.roll(ids, -1, 1)
    coef = torch.full((B, T), -1.0 / (B * (T - 1)))
    coef[:, -1] = 0
    no_decay = [p for p in m.parameters() if p.dim() == 1]
    decay = [p for p in m.parameters() if p.dim() != 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.999), eps=1e-8, foreach=False)

    def train():
        logp, _ = stats(m(ids, pos, allowed), target)
        (coef * logp).sum().backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def forward():
        with torch.no_grad():
            stats(m(ids, pos, allowed), target)

    kc = torch.zeros(L, B, H, CACHE, HD)
    vc = torch.zeros(L, B, H, CACHE, HD)
    valid = torch.zeros(B, CACHE, dtype=torch.bool)
    valid[:, :16] = True
    tok = torch.zeros(B, dtype=torch.long)
    state = {"slot": 16}

    def decode():
        with torch.no_grad():
            s = state["slot"]
            valid[:, s] = True
            m.step(tok, torch.full((B,), s), s, kc, vc, valid)
            state["slot"] = 16 + (s - 15) % (CACHE - 16)

    print("params", sum(p.numel() for p in m.parameters()))
    print("train_step", timeit(train, n))
    print("forward", timeit(forward, n))
    print("decode_step", timeit(decode, 20 * n, warm=3))


if __name__ == "__main__":
    main()
