"""Summarise a bench/gpu/run.sh output folder into OUT/summary.json and OUT/summary.md.

Reads OUT/env.json and OUT/parts/*.{status,out,log}; every part may be missing, failed or timed out,
and the summary says so instead of failing. Standard library only.
Usage: python3 bench/gpu/summarize.py OUT
"""
import json
import os
import re
import sys


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def read_json(path):
    s = read(path)
    if s is None:
        return None
    try:
        return json.loads(s)
    except ValueError:
        return None


def last_json(text):
    """The last line of text that parses as a JSON object."""
    for line in reversed((text or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def tail(text, n=8):
    return "\n".join((text or "").strip().splitlines()[-n:])


CHECK = re.compile(r"^(ok|FAIL)\s+(\S+)\s+(abs|rel|tokens)\s+(\S+)")


def parity(out):
    rows, cur = [], None
    for line in (out or "").splitlines():
        if line.startswith("== "):
            name, _, mode = line[3:].partition(" ")
            cur = {"fixture": name, "mode": mode, "checks": {}, "rc": None}
            rows.append(cur)
        elif cur is not None and line.startswith("rc "):
            cur["rc"] = int(line[3:])
        elif cur is not None:
            m = CHECK.match(line)
            if m:
                key = m.group(2)
                if key.startswith("grad."):
                    key = "grad (worst)"
                    try:
                        v = float(m.group(4))
                    except ValueError:
                        v = float("nan")
                    prev = cur["checks"].get(key)
                    if prev is None or v > prev["value"]:
                        cur["checks"][key] = {"ok": m.group(1) == "ok", "value": v}
                    continue
                try:
                    v = float(m.group(4))
                except ValueError:
                    v = m.group(4)
                cur["checks"][key] = {"ok": m.group(1) == "ok", "value": v}
    return rows


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def fmt(x, spec=".3f", none="—"):
    if x is None:
        return none
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def main():
    out = sys.argv[1]
    parts = os.path.join(out, "parts")
    env = read_json(os.path.join(out, "env.json")) or {}
    S = {"env": env, "parts": {}}
    for name in ["parity", "train_polo", "train_polo_noflash", "train_torch", "sample_polo", "sample_torch", "grpo", "sample_vllm"]:
        st = read_json(os.path.join(parts, name + ".status"))
        if st is None:
            if name == "train_polo_noflash":
                continue  # only runs when the flash step failed
            st = {"rc": None, "skipped": "did not run"}
        st["log_tail"] = tail(read(os.path.join(parts, name + ".log"), ""))
        S["parts"][name] = st

    # 1 parity
    S["parity"] = parity(read(os.path.join(parts, "parity.out"), ""))

    # 2 train step
    tp = last_json(read(os.path.join(parts, "train_polo.out"), "")) or last_json(read(os.path.join(parts, "train_polo_noflash.out"), ""))
    tt = last_json(read(os.path.join(parts, "train_torch.out"), ""))
    shapes = env.get("shapes", {})
    tokens = shapes.get("train_batch", 0) * shapes.get("train_seq", 0)
    train = {"polo": tp, "torch": tt}
    if tp:
        train["polo_step_median_s"] = median(tp.get("StepSeconds") or [])
        if train["polo_step_median_s"]:
            train["polo_tokens_per_s"] = tokens / train["polo_step_median_s"]
    if tt:
        train["torch_step_median_s"] = tt.get("step_median_s")
    if train.get("polo_step_median_s") and train.get("torch_step_median_s"):
        train["torch_over_polo"] = train["torch_step_median_s"] / train["polo_step_median_s"]
    S["train"] = train

    # 3 sampling
    sp = last_json(read(os.path.join(parts, "sample_polo.out"), ""))
    stt = last_json(read(os.path.join(parts, "sample_torch.out"), ""))
    sv = last_json(read(os.path.join(parts, "sample_vllm.out"), ""))
    bw = float(env.get("hbm_gbps") or 0) * 1e9
    sample = {"polo": sp, "torch": stt, "vllm": sv, "hbm_gbps": env.get("hbm_gbps")}
    if sp and bw > 0:
        # A decode step reads every float32 weight once and, at the end, the whole float32 KV cache
        # (polo's cache is fixed-size, so every step reads all of it).
        b = sp["weight_bytes"] + sp["kv_cache_bytes"]
        sample["polo_bound_s"] = b / bw
        sample["polo_bound_note"] = "float32 weights + full float32 KV cache per step at %s GB/s" % env.get("hbm_gbps")
        if sp.get("decode_step_median_s"):
            sample["polo_fraction_of_bound"] = sample["polo_bound_s"] / sp["decode_step_median_s"]
    if sp and bw > 0:
        p = sp["params"]
        sample["bf16_bound_s"] = 2 * p / bw  # what a bf16 weight copy would need (weights only)
    S["sample"] = sample

    # 4 GRPO
    run = os.path.join(parts, "grpo-run")
    recs = []
    for line in (read(os.path.join(run, "metrics.jsonl"), "") or "").splitlines():
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
    rl = [r for r in recs if r.get("phase") == "rl"]
    ev = [r for r in recs if r.get("phase", "").startswith("eval")]
    g = {"steps": len(rl)}
    if rl:
        g["reward_curve"] = [[r["step"], r["values"].get("reward_mean")] for r in rl]
        g["accuracy_curve"] = [[r["step"], r["values"].get("accuracy")] for r in rl]
        for k in ["rollout_s", "reward_s", "train_s", "tokens_per_s"]:
            g[k + "_median"] = median([r["values"].get(k) for r in rl])
        g["reward_first"] = rl[0]["values"].get("reward_mean")
        last = rl[-max(1, len(rl) // 10):]
        g["reward_last10pct"] = sum(r["values"].get("reward_mean", 0) for r in last) / len(last)
    g["eval"] = [[r["phase"], r["step"], r["values"].get("accuracy")] for r in ev]
    g["compile"] = read_json(os.path.join(run, "compile.json"))
    S["grpo"] = g

    # 5 compile
    S["compile"] = {"train_polo": tp and tp.get("Compile"), "train_warmup_s": tp and tp.get("WarmUpSeconds"),
                    "sample_polo": sp and sp.get("compile"), "sample_warmup_s": sp and sp.get("warmup_s"),
                    "grpo_run": g["compile"]}

    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(S, f, indent=1)

    # ------------------------------------------------------------ markdown
    L = []
    w = L.append
    w("# polo GPU benchmark%s" % (" (CPU dry run, tiny shapes)" if env.get("dry_run") else ""))
    w("")
    w("%s · GPU: %s · CPU: %s · backend `%s` · git %s · torch %s · transformers %s · vLLM %s" % (
        env.get("date"), env.get("gpu") or "none", env.get("cpu"), env.get("backend"), env.get("git"), env.get("torch"),
        env.get("transformers") or "—", env.get("vllm") or "—"))
    w("")
    w("| part | result | seconds |")
    w("|---|---|---|")
    for name, st in S["parts"].items():
        if st.get("skipped"):
            r = "skipped: " + st["skipped"]
        elif st.get("timed_out"):
            r = "**timed out** (%s s)" % st.get("timeout_s")
        elif st.get("rc") == 0:
            r = "ok"
        else:
            r = "**failed** (rc %s)" % st.get("rc")
        w("| %s | %s | %s |" % (name, r, fmt(st.get("seconds"), ".1f")))
    w("")
    w("## 1. Fixture parity (polo on this device vs transformers on CPU)")
    w("")
    w("| fixture | compute | logits max abs | logprobs max abs | greedy mismatches | loss rel | worst grad rel | verdict |")
    w("|---|---|---|---|---|---|---|---|")
    for r in S["parity"]:
        c = r["checks"]
        get = lambda k: fmt(c[k]["value"], ".2e") if k in c else "—"
        w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (r["fixture"], r["mode"], get("logits"), get("next_token_logprobs"),
                                                      fmt(c.get("greedy", {}).get("value"), ".0f"), get("loss"),
                                                      get("grad (worst)"), "pass" if r["rc"] == 0 else "FAIL"))
    w("")
    w("float32 rows use the CPU tolerances (1e-4, which GPU float32 matmuls may exceed if they run TF32-class); "
      "the bf16 rows 0.05 (greedy must still match exactly).")
    w("")
    w("## 2. Train step, %s, B=%s×T=%s" % (env.get("model_config"), shapes.get("train_batch"), shapes.get("train_seq")))
    w("")
    w("| engine | compute | first step / warm-up compile | step (median) | tokens/s | peak memory |")
    w("|---|---|---|---|---|---|")
    if tp:
        co = tp.get("Compute") or {}
        w("| polo | %s%s, f32 master weights | %s s / %s s | **%s s** | %s | RSS %s GiB |" % (
            co.get("dtype") or "float32", ", flash" if co.get("flash") else "", fmt(tp.get("FirstStepSeconds"), ".2f"),
            fmt(tp.get("WarmUpSeconds"), ".1f"), fmt(train.get("polo_step_median_s"), ".4f"), fmt(train.get("polo_tokens_per_s"), ".0f"),
            fmt((tp.get("PeakRSS") or 0) / 2 ** 30, ".2f")))
    else:
        w("| polo | — | — | failed | — | — |")
    if tt:
        w("| PyTorch %s (%s) | %s autocast, %s, fused AdamW %s | %s s | **%s s** | %s | %s GiB |" % (
            tt.get("torch"), tt.get("impl"), tt.get("dtype"), tt.get("attention"), tt.get("fused_adamw"), fmt(tt.get("first_step_s"), ".2f"),
            fmt(tt.get("step_median_s"), ".4f"), fmt(tt.get("tokens_per_s"), ".0f"), fmt((tt.get("peak_mem_bytes") or 0) / 2 ** 30, ".2f")))
    else:
        w("| PyTorch | — | — | failed | — | — |")
    if train.get("torch_over_polo"):
        w("")
        w("torch/polo step time: **%.2f** (above 1 means polo is faster)." % train["torch_over_polo"])
    w("")
    w("## 3. Sampling, batch %s, %s-token prompts, %s new tokens" % (shapes.get("sample_batch"), shapes.get("prompt_len"), shapes.get("new_tokens")))
    w("")
    w("| engine | weights | tokens/s | decode step | prefill | host sampling | compile |")
    w("|---|---|---|---|---|---|---|")
    if sp:
        w("| polo (KV cache %d slots) | %s | **%s** | %s s (median) | %s s | %s s | %s s warm-up |" % (
            sp.get("cache_slots", 0), (sp.get("compute") or {}).get("dtype") or "float32", fmt(sp.get("tokens_per_s"), ".0f"),
            fmt(sp.get("decode_step_median_s"), ".4f"), fmt(sp.get("prefill_s"), ".3f"), fmt(sp.get("host_sampling_s"), ".2f"),
            fmt(sp.get("warmup_s"), ".1f")))
    for src in (stt, sv):
        for r in (src or {}).get("runs", []):
            if r.get("error") or r.get("skipped"):
                w("| %s %s | — | %s | | | | |" % (r.get("engine"), r.get("dtype", ""), (r.get("error") or r.get("skipped"))[:80]))
            else:
                w("| %s | %s | **%s** | %s s (mean) | | | |" % (r["engine"], r["dtype"], fmt(r.get("tokens_per_s"), ".0f"), fmt(r.get("step_s"), ".4f")))
    if sample.get("polo_bound_s"):
        w("")
        w("Memory-bandwidth bound of polo's decode step: %s s (%s); polo reaches %.0f%% of it. A bf16 weight copy would "
          "bound it at %s s." % (fmt(sample["polo_bound_s"], ".5f"), sample["polo_bound_note"], 100 * sample.get("polo_fraction_of_bound", 0),
                                 fmt(sample.get("bf16_bound_s"), ".5f")))
    w("")
    w("## 4. GRPO, demo task, bigger batch")
    w("")
    if g.get("steps"):
        w("%d RL steps; mean reward first step %s → last 10%% %s; per step (median): rollout %s s, reward %s s, train %s s, %s tokens/s." % (
            g["steps"], fmt(g.get("reward_first")), fmt(g.get("reward_last10pct")), fmt(g.get("rollout_s_median")),
            fmt(g.get("reward_s_median"), ".4f"), fmt(g.get("train_s_median")), fmt(g.get("tokens_per_s_median"), ".0f")))
        w("")
        w("reward curve (step: reward_mean): " + ", ".join("%d: %s" % (s, fmt(v)) for s, v in g["reward_curve"]))
        if g["eval"]:
            w("")
            w("held-out greedy accuracy: " + ", ".join("%s %d: %s" % (p, s, fmt(v)) for p, s, v in g["eval"]))
    else:
        w("no RL steps recorded.")
    w("")
    w("## 5. Compilation")
    w("")
    w("| where | graphs | seconds (first calls) | by graph |")
    w("|---|---|---|---|")
    for k, c in [("train step (warm-up)", S["compile"]["train_polo"]), ("sampling (warm-up)", S["compile"]["sample_polo"]),
                 ("GRPO run (whole run)", S["compile"]["grpo_run"])]:
        if c:
            w("| %s | %d | %s | %s |" % (k, c.get("graphs", c.get("Graphs", 0)), fmt(c.get("seconds"), ".1f"),
                                         ", ".join("%s×%d" % (n, v) for n, v in sorted((c.get("by_name") or {}).items()))))
        else:
            w("| %s | — | — | — |" % k)
    w("")
    for name, st in S["parts"].items():
        if st.get("rc") not in (0, None) and st.get("log_tail"):
            w("<details><summary>%s log tail</summary>\n\n```\n%s\n```\n</details>\n" % (name, st["log_tail"]))
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
