#!/usr/bin/env python3
"""A polo environment process (docs/agents.md): multiplication with a calculator tool.

polo starts one process per trajectory and writes one JSON object per line on stdin; the
process answers each with one JSON object per line on stdout. Anything for humans goes to stderr.
"""
import json
import re
import sys

TOOLS = [{"type": "function", "function": {
    "name": "calculator", "description": "Exact integer arithmetic.",
    "parameters": {"type": "object", "required": ["expression"],
                   "properties": {"expression": {"type": "string"}}}}}]


def calculate(expr):
    if not re.fullmatch(r"[0-9+\-*/() ]{1,200}", expr):
        raise ValueError("only digits, + - * / and parentheses")
    return str(eval(expr, {"__builtins__": {}}))  # the pattern above admits only arithmetic


def main():
    answer = None
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["type"] == "reset":
            ex = msg["example"]
            answer = ex["answer"]
            reply = {"messages": [{"role": "user", "content": ex["prompt"]}], "tools": TOOLS}
        else:  # "step"
            turn = msg["turn"]
            calls = turn.get("tool_calls") or []
            if not calls and not turn.get("parse_error"):
                final = re.findall(r"-?\d+", turn["text"])
                ok = bool(final) and final[-1] == answer
                reply = {"done": True, "reward": 1.0 if ok else 0.0, "correct": ok}
            else:
                out, errors = [], 0
                for c in calls:
                    try:
                        out.append(calculate(c["arguments"]["expression"]))
                    except Exception as e:  # a failed call is shown to the policy
                        out.append("error: %s" % e)
                        errors += 1
                if turn.get("parse_error"):
                    out.append("error: " + turn["parse_error"])
                    errors += 1
                reply = {"messages": [{"role": "tool", "content": s} for s in out],
                         "tool_calls": len(out), "tool_errors": errors}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
