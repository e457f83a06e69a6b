#!/usr/bin/env python3
"""Honest checks of the numpy forward pass: a greedy chat answer and teacher-forced perplexity.

  python3 tools/record-trace/checks.py                       # the numbers in README.md
  python3 tools/record-trace/checks.py --rope half            # the wrong RoPE pairing, for contrast
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import smollm  # noqa: E402
import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def perplexity(model, ids):
    model.reset()
    model.forward(ids)
    lg = model.logits_all(model.last_hidden[:-1]).astype(np.float64)
    lg -= lg.max(axis=1, keepdims=True)
    lp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
    return float(np.exp(-lp[np.arange(len(ids) - 1), ids[1:]].mean()))


def chat(model, question, max_new=48):
    model.reset()
    logits = model.forward(model.encode(smollm.chat_prompt(question)))
    out = []
    for _ in range(max_new):
        t = int(np.argmax(logits))
        if t == model.eos_id:
            break
        out.append(t)
        logits = model.forward([t])
    return model.decode(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rope", default="interleaved", choices=["interleaved", "half"])
    ap.add_argument("--tokens", type=int, default=1024, help="tokens per text for perplexity")
    a = ap.parse_args()
    t = time.time()
    model = smollm.SmolLM(max_len=a.tokens + 64, rope=a.rope)
    print(f"model loaded in {time.time() - t:.1f} s (rope: {a.rope})")
    for q in ["What is the capital of France?", "Give me three tips for sleeping better."]:
        print(f"chat {q!r} -> {chat(model, q)!r}")
    texts = os.path.join(REPO, "traces", "texts")
    for name in ["essay-mill-town.txt", "declaration-of-independence.txt"]:
        ids = model.encode(open(os.path.join(texts, name), encoding="utf-8").read())[: a.tokens]
        t = time.time()
        p = perplexity(model, ids)
        print(f"perplexity {name} ({len(ids)} tokens, teacher-forced): {p:.2f} ({time.time() - t:.1f} s)")


if __name__ == "__main__":
    main()
