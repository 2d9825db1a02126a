"""Writes qwen3/tools_expected.json: Qwen3's chat template rendered with tools and a tool call.

transformers does not render tools in the shared fixtures, so this script renders them the way
transformers.utils.chat_template_utils does (Jinja2 sandbox, trim_blocks, lstrip_blocks,
loopcontrols, tojson with ensure_ascii=False and key order kept). Needs only jinja2:

    python3 testdata/tokenizers/make_tools_case.py
"""
import json
import os

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.dirname(os.path.abspath(__file__))
cfg = json.load(open(os.path.join(here, "qwen3", "tokenizer_config.json")))


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise ValueError(message)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
template = env.from_string(cfg["chat_template"])

# Keys deliberately not in alphabetical order; text with non-ASCII and HTML characters.
tools = [
    {"type": "function", "function": {"name": "add", "description": "Add two integers — exactly & <fast>.",
     "parameters": {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
                    "required": ["b", "a"]}}},
    {"type": "function", "function": {"name": "zeta", "parameters": {"type": "object", "properties": {}}}},
]
messages = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Add 5 and 7."},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": {"b": 7, "a": 5}}}]},
    {"role": "tool", "content": "12"},
]
cases = []
for enable_thinking in (True, False):
    text = template.render(messages=messages, tools=tools, documents=None, add_generation_prompt=True,
                           enable_thinking=enable_thinking, eos_token=cfg["eos_token"], pad_token=cfg["pad_token"],
                           bos_token=None, unk_token=None)
    cases.append({"messages": messages, "tools": tools, "enable_thinking": enable_thinking, "text": text})
with open(os.path.join(here, "qwen3", "tools_expected.json"), "w") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
    f.write("\n")
