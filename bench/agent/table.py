"""Reads the three demo runs' metrics.jsonl and prints the agentic demo's table."""
import json
import os
import platform
import subprocess
import sys

out = sys.argv[1]


def records(run):
    with open(os.path.join(out, run, "metrics.jsonl")) as f:
        return [json.loads(l) for l in f]


def evals(run):
    return {r["phase"] + ("" if r["phase"] != "eval" else "-%d" % r["step"]): r["values"] for r in records(run) if r["phase"].startswith("eval")}


def last_eval(run):
    e = [r for r in records(run) if r["phase"] == "eval"]
    return e[-1]["values"]


def rl_mean(run, key, last=0.25):
    rs = [r["values"][key] for r in records(run) if r["phase"] == "rl" and key in r["values"]]
    n = max(1, int(len(rs) * last))
    return sum(rs[:n]) / n, sum(rs[-n:]) / n


cpu = "unknown"
try:
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
except OSError:
    pass
print("Agentic demo: 2-digit multiplication (a*b, a,b < 100), character-level transformer (preset small),")
print("256 held-out prompts, greedy decoding; calls = calculator calls per task. CPU: %s, %d cores visible." % (cpu, os.cpu_count()))
print("Command: bench/agent/run.sh (configs bench/agent/{notools,tools,otc}.yaml; seed 3)\n")
nt = evals("notools")
t = evals("tools")
o = evals("otc")
rows = [
    ("no tools, after SFT", nt["eval-sft"]["accuracy"], None, None),
    ("no tools, after RL (GRPO)", last_eval("notools")["accuracy"], None, None),
    ("tools, after SFT on traces", t["eval-sft"]["accuracy"], t["eval-sft"]["tool_calls_per_traj"], t["eval-sft"]["turns_per_traj"]),
    ("tools, after RL (GRPO)", last_eval("tools")["accuracy"], last_eval("tools")["tool_calls_per_traj"], last_eval("tools")["turns_per_traj"]),
    ("tools, after RL (GRPO + OTC)", last_eval("otc")["accuracy"], last_eval("otc")["tool_calls_per_traj"], last_eval("otc")["turns_per_traj"]),
]
print("| held-out | accuracy | calls per task | turns per task |")
print("|---|---|---|---|")
for name, acc, calls, turns in rows:
    f = lambda x: "—" if x is None else "%.3f" % x
    print("| %s | %.3f | %s | %s |" % (name, acc, f(calls), f(turns)))
print()
for run in ("tools", "otc"):
    a, b = rl_mean(run, "tool_calls_per_traj")
    ra, rb = rl_mean(run, "accuracy")
    print("%s: training rollouts, first → last 25%% of RL steps: calls/trajectory %.3f → %.3f, accuracy %.3f → %.3f" % (run, a, b, ra, rb))
print("\nEvaluations (greedy accuracy / calls per task):")
for run in ("notools", "tools", "otc"):
    e = [r for r in records(run) if r["phase"].startswith("eval")]
    print("  %s: %s" % (run, ", ".join("%s-%d %.3f/%s" % (r["phase"], r["step"], r["values"]["accuracy"], "%.2f" % r["values"]["tool_calls_per_traj"] if "tool_calls_per_traj" in r["values"] else "-") for r in e)))
