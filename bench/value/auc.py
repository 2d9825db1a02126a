#!/usr/bin/env python3
"""Within-prompt ranking quality of each score in a `polo eval --out` folder's examples.jsonl:
AUC = P(score of a correct sample > score of a wrong sample of the same prompt), ties count 1/2.
0.5 is chance; a selector needs AUC > 0.5 within prompts to beat a random pick. Also the mean
score of correct and of wrong samples over all prompts (which also reflects prompt difficulty)."""
import json, sys

keys = ["q", "self_certainty", "mean_logprob"]
pairs, conc = 0, {k: 0.0 for k in keys}
tot = {k: {True: [], False: []} for k in keys}
for line in open(sys.argv[1]):
    s = json.loads(line)["samples"]
    for a in s:
        for k in keys:
            tot[k][a["correct"]].append(a.get(k, 0.0))
    for a in s:
        for b in s:
            if a["correct"] and not b["correct"]:
                pairs += 1
                for k in keys:
                    x, y = a.get(k, 0.0), b.get(k, 0.0)
                    conc[k] += 1.0 if x > y else 0.5 if x == y else 0.0
print(f"within-prompt AUC over {pairs} (correct, wrong) pairs; mean score of correct / wrong samples")
for k in keys:
    c, w = tot[k][True], tot[k][False]
    print(f"  {k:15s} AUC {conc[k] / max(pairs, 1):.3f}   mean {sum(c) / max(len(c), 1):.3f} / {sum(w) / max(len(w), 1):.3f}")
