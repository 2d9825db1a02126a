"""PyTorch side of bench/gpu/run.sh: a train step and sampling of a decoder built from a Hugging Face
config.json (random weights), printed as one JSON object.

  python3 torch_ref.py train  --config cfg.json --batch 8 --seq 1024 --steps 5 [--device cuda] [--dtype bf16] [--impl auto|hf|plain]
  python3 torch_ref.py sample --config cfg.json --batch 64 --prompt-len 64 --new-tokens 256 [--engines hf,vllm]

train: PyTorch eager, float32 master weights, torch.autocast(bfloat16) with --dtype bf16, SDPA
attention, fused AdamW (CUDA), clip_grad_norm_(1.0); the loss is polo's surrogate sum(coef * logp)
with logp = log_softmax(logits.float()) of the next token (SFT cross-entropy, mean over tokens), and
the step also returns per-token logp and entropy to the host as polo's Accumulate does.
--impl hf uses transformers' model class for the config (attn_implementation="sdpa"); plain is the
same architecture written here (Llama/Qwen2/Qwen3: RMSNorm, RoPE, GQA, SwiGLU, Qwen2 q/k/v biases,
Qwen3 q/k norms, tied head), for machines without transformers (e.g. the CPU dry run).

sample: transformers' generate (do_sample, temperature 1, min_new_tokens = max_new_tokens so every
row generates them all) in float32 and bfloat16 weights, and vLLM when it is installed (bfloat16,
ignore_eos). Without transformers the plain model's KV-cache loop stands in (engine "plain").
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

import torch
import torch.nn.functional as F


def has_transformers():
    try:
        import transformers  # noqa: F401
        return True
    except Exception:
        return False


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---------------------------------------------------------------- plain model (no transformers)

class PlainBlock(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h, kv, hd, i = c["hidden_size"], c["num_attention_heads"], c["kv"], c["head_dim"], c["intermediate_size"]
        bias = c["model_type"] == "qwen2"
        self.input_layernorm = torch.nn.Parameter(torch.ones(d))
        self.post_attention_layernorm = torch.nn.Parameter(torch.ones(d))
        self.q = torch.nn.Linear(d, h * hd, bias=bias)
        self.k = torch.nn.Linear(d, kv * hd, bias=bias)
        self.v = torch.nn.Linear(d, kv * hd, bias=bias)
        self.o = torch.nn.Linear(h * hd, d, bias=False)
        self.qn = torch.nn.Parameter(torch.ones(hd)) if c["model_type"] == "qwen3" else None
        self.kn = torch.nn.Parameter(torch.ones(hd)) if c["model_type"] == "qwen3" else None
        self.gate = torch.nn.Linear(d, i, bias=False)
        self.up = torch.nn.Linear(d, i, bias=False)
        self.down = torch.nn.Linear(i, d, bias=False)


class Plain(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = dict(cfg)
        c["kv"] = c.get("num_key_value_heads") or c["num_attention_heads"]
        c["head_dim"] = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        self.c = c
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.embed = torch.nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.blocks = torch.nn.ModuleList([PlainBlock(c) for _ in range(c["num_hidden_layers"])])
        self.norm = torch.nn.Parameter(torch.ones(c["hidden_size"]))
        self.head = torch.nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        if c.get("tie_word_embeddings"):
            self.head.weight = self.embed.weight
        hd = c["head_dim"]
        theta = c.get("rope_theta") or (c.get("rope_parameters") or {}).get("rope_theta", 10000.0)
        self.register_buffer("inv", 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def rms(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * w.to(x.dtype)

    def rope(self, x, pos):  # x [B, H, T, hd], pos [B, T]
        ang = pos[:, None, :, None].float() * self.inv
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    def attend(self, q, k, v, causal, mask=None):
        rep = q.shape[1] // k.shape[1]
        if rep > 1:
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        if hasattr(F, "scaled_dot_product_attention"):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if causal:
            t = s.shape[-1]
            s = s.masked_fill(~torch.ones(t, t, dtype=torch.bool, device=s.device).tril(), float("-inf"))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s.float(), -1).to(v.dtype) @ v

    def layer(self, blk, h, pos, cache=None, valid=None):
        c = self.c
        b, t, _ = h.shape
        x = self.rms(h, blk.input_layernorm)
        q = blk.q(x).view(b, t, c["num_attention_heads"], c["head_dim"])
        k = blk.k(x).view(b, t, c["kv"], c["head_dim"])
        v = blk.v(x).view(b, t, c["kv"], c["head_dim"])
        if blk.qn is not None:
            q, k = self.rms(q, blk.qn), self.rms(k, blk.kn)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = self.rope(q, pos), self.rope(k, pos)
        if cache is not None:
            if cache[0] is not None:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[0], cache[1] = k, v
        causal = cache is None or t > 1
        a = self.attend(q, k, v, causal)
        h = h + blk.o(a.transpose(1, 2).reshape(b, t, -1))
        x = self.rms(h, blk.post_attention_layernorm)
        return h + blk.down(F.silu(blk.gate(x)) * blk.up(x))

    def forward(self, ids, caches=None, start=0):
        pos = torch.arange(start, start + ids.shape[1], device=ids.device)[None].expand(ids.shape[0], -1)
        h = self.embed(ids)
        for i, blk in enumerate(self.blocks):
            h = self.layer(blk, h, pos, None if caches is None else caches[i])
        return self.head(self.rms(h, self.norm))


def build(cfg, impl, device, dtype=torch.float32):
    if impl == "auto":
        impl = "hf" if has_transformers() else "plain"
    if impl == "hf":
        from transformers import AutoConfig, AutoModelForCausalLM
        kw = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures", "torch_dtype", "dtype", "transformers_version")}
        conf = AutoConfig.for_model(cfg["model_type"], **kw)
        torch.manual_seed(0)
        try:  # transformers 5 names it dtype, 4 torch_dtype
            m = AutoModelForCausalLM.from_config(conf, attn_implementation="sdpa", dtype=dtype)
        except TypeError:
            m = AutoModelForCausalLM.from_config(conf, attn_implementation="sdpa", torch_dtype=dtype)
        if next(m.parameters()).dtype != dtype:
            m = m.to(dtype)
        return m.to(device), impl
    torch.manual_seed(0)
    return Plain(cfg).to(device=device, dtype=dtype), impl


def logits_of(m, impl, ids):
    if impl == "hf":
        return m(input_ids=ids, use_cache=False).logits
    return m(ids)


# ---------------------------------------------------------------- train step

def train(a, cfg):
    dev = a.device
    m, impl = build(cfg, a.impl, dev)
    m.train()
    n_params = sum(p.numel() for p in m.parameters())
    V = cfg["vocab_size"]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (a.batch, a.seq), generator=g).to(dev)
    target = torch.roll(ids, -1, 1)
    coef = torch.full((a.batch, a.seq), -1.0 / (a.batch * (a.seq - 1)), device=dev)
    coef[:, -1] = 0
    no_decay = [p for p in m.parameters() if p.dim() == 1]
    decay = [p for p in m.parameters() if p.dim() != 1]
    kw = {}
    fused = dev.startswith("cuda")
    if fused:
        kw["fused"] = True
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.999), eps=1e-8, **kw)
    bf16 = a.dtype == "bf16"
    dev_type = "cuda" if dev.startswith("cuda") else "cpu"

    def step():
        with torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=bf16):
            logits = logits_of(m, impl, ids)
        lp_all = torch.log_softmax(logits.float(), -1)
        logp = lp_all.gather(-1, target[..., None])[..., 0]
        with torch.no_grad():
            ent = -(lp_all.exp() * lp_all).sum(-1)
        loss = (coef * logp).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        out = (logp.detach().cpu(), ent.cpu())  # polo's Accumulate returns both to the host
        return float(-(logp.detach()[:, :-1].mean()))

    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    loss = step()
    sync(dev)
    first = time.perf_counter() - t0
    for _ in range(max(0, a.warmup - 1)):
        step()
    times = []
    for _ in range(a.steps):
        sync(dev)
        t0 = time.perf_counter()
        step()
        sync(dev)
        times.append(time.perf_counter() - t0)
    times.sort()
    res = {"engine": "torch", "impl": impl, "torch": torch.__version__, "device": dev, "dtype": a.dtype,
           "attention": "sdpa" if hasattr(F, "scaled_dot_product_attention") else "manual", "fused_adamw": fused,
           "params": n_params, "batch": a.batch, "seq": a.seq, "first_step_s": first, "step_s": times,
           "step_median_s": times[len(times) // 2] if times else None,
           "tokens_per_s": a.batch * a.seq / times[len(times) // 2] if times else None, "loss": loss}
    if dev.startswith("cuda"):
        res["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
        res["gpu"] = torch.cuda.get_device_name()
    return res


# ---------------------------------------------------------------- sampling

def plain_generate(m, ids, new_tokens):
    caches = [[None, None] for _ in m.blocks]
    with torch.no_grad():
        logits = m(ids, caches, 0)[:, -1]
        out = []
        for s in range(new_tokens):
            tok = torch.multinomial(torch.softmax(logits.float(), -1), 1)
            out.append(tok)
            if s + 1 < new_tokens:
                logits = m(tok, caches, ids.shape[1] + s)[:, -1]
    return torch.cat(out, 1)


def sample_hf_or_plain(a, cfg, dtype_name):
    dev = a.device
    dt = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    m, impl = build(cfg, a.impl, dev, dt)
    m.eval()
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(3, cfg["vocab_size"], (a.batch, a.prompt_len), generator=g).to(dev)

    def gen(n):
        torch.manual_seed(3)
        if impl == "hf":
            with torch.no_grad():
                return m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                  top_k=0, top_p=1.0, max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
        return plain_generate(m, ids, n)

    gen(4)  # warm-up
    times = []
    for _ in range(a.rounds):
        sync(dev)
        t0 = time.perf_counter()
        out = gen(a.new_tokens)
        sync(dev)
        times.append(time.perf_counter() - t0)
    best = min(times)
    new = out.shape[1] - (ids.shape[1] if impl == "hf" else 0)
    return {"engine": "transformers" if impl == "hf" else "plain", "dtype": dtype_name, "round_s": times, "best_s": best,
            "new_tokens": int(new), "tokens_per_s": a.batch * new / best, "step_s": best / max(new, 1)}


def sample_vllm(a, cfg):
    try:
        import vllm  # noqa: F401
        from vllm import LLM, SamplingParams
    except Exception as e:
        return {"engine": "vllm", "skipped": "vllm not importable: %s" % e}
    m, impl = build(cfg, "hf", "cpu", torch.bfloat16)
    d = tempfile.mkdtemp(prefix="polo-vllm-")
    m.save_pretrained(d)
    del m
    llm = LLM(model=d, skip_tokenizer_init=True, dtype="bfloat16", gpu_memory_utilization=0.5, seed=0)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(3, cfg["vocab_size"], (a.batch, a.prompt_len), generator=g).tolist()
    prompts = [{"prompt_token_ids": r} for r in ids]
    sp = SamplingParams(temperature=1.0, max_tokens=a.new_tokens, min_tokens=a.new_tokens, ignore_eos=True, detokenize=False)
    llm.generate(prompts, SamplingParams(max_tokens=4, detokenize=False), use_tqdm=False)
    times = []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        outs = llm.generate(prompts, sp, use_tqdm=False)
        times.append(time.perf_counter() - t0)
    n = sum(len(o.outputs[0].token_ids) for o in outs)
    best = min(times)
    return {"engine": "vllm", "vllm": vllm.__version__, "dtype": "bf16", "round_s": times, "best_s": best,
            "new_tokens": n // a.batch, "tokens_per_s": n / best, "step_s": best / max(n // a.batch, 1)}


def sample(a, cfg):
    res = {"batch": a.batch, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "device": a.device,
           "torch": torch.__version__, "runs": []}
    if a.device.startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name()
    for eng in a.engines.split(","):
        if eng == "hf":
            for dt in a.sample_dtypes.split(","):
                try:
                    res["runs"].append(sample_hf_or_plain(a, cfg, dt))
                except Exception as e:  # report and go on with the next engine
                    res["runs"].append({"engine": "transformers", "dtype": dt, "error": repr(e)})
                if a.device.startswith("cuda"):
                    torch.cuda.empty_cache()
        elif eng == "vllm":
            try:
                res["runs"].append(sample_vllm(a, cfg))
            except Exception as e:
                res["runs"].append({"engine": "vllm", "error": repr(e)})
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["train", "sample"])
    p.add_argument("--config", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--impl", default="auto", choices=["auto", "hf", "plain"])
    p.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--engines", default="hf,vllm")
    p.add_argument("--sample-dtypes", default="f32,bf16")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    with open(a.config) as f:
        cfg = json.load(f)
    res = train(a, cfg) if a.what == "train" else sample(a, cfg)
    s = json.dumps(res)
    if a.out:
        with open(a.out, "w") as f:
            f.write(s + "\n")
    print(s)


if __name__ == "__main__":
    main()
