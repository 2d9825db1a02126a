#!/usr/bin/env python3
"""Test environment: examples/env/arith_env.py's protocol, with a fault chosen by the example's
meta "fault" on the first step: crash, malformed, hang, error, or none."""
import json
import sys
import time

fault = None
for line in sys.stdin:
    msg = json.loads(line)
    if msg["type"] == "reset":
        ex = msg["example"]
        fault = (ex.get("meta") or {}).get("fault")
        if fault == "crash_reset":
            print("boom at reset", file=sys.stderr)
            sys.exit(3)
        reply = {"messages": [{"role": "user", "content": ex["prompt"]}]}
    else:
        turn = msg["turn"]
        if fault == "crash":
            print("Traceback: simulated crash", file=sys.stderr)
            sys.exit(7)
        if fault == "malformed":
            sys.stdout.write("{not json\n")
            sys.stdout.flush()
            continue
        if fault == "hang":
            time.sleep(3600)
        if fault == "error":
            reply = {"error": "no such puzzle"}
        else:
            calls = turn.get("tool_calls") or []
            if calls or turn.get("parse_error"):
                out = [json.dumps(c["arguments"], sort_keys=True) for c in calls]
                if turn.get("parse_error"):
                    out.append("error: " + turn["parse_error"])
                reply = {"messages": [{"role": "tool", "content": s} for s in out],
                         "tool_calls": len(out), "tool_errors": 1 if turn.get("parse_error") else 0,
                         "info": {"echo": len(calls)}}
            else:
                reply = {"done": True, "reward": 1.0, "correct": True}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
