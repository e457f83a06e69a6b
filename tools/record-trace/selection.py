"""Selection rules: which past positions a sparse-attention method reads at one (step, layer).

Every rule works per query head on that head's attention probabilities over positions 0..n
(n = the current position, whose own entry is always read and is not part of the trace) and the
layer's read set is the union over heads (a KV entry serves every head of its layer). Ties are
broken by position (earlier first), so the selection is deterministic.

Rules (the `--rule` argument):
  mass:F     smallest set of past positions that, with the current position, holds >= F of the
             head's attention mass (0 < F <= 1), taken greedily from the largest probability.
  topk:N     the N past positions with the largest probability (all of them if n <= N).
  share:F    the ceil(F * n) past positions with the largest probability (at least 1).
  pages:B    Quest-like: past positions in pages of 16 (`pages:B:S` for size S), a page scored
             by its largest probability; the B best pages are read whole.
"""

import math

import numpy as np


class Rule:
    def __init__(self, spec):
        self.spec = spec
        parts = spec.split(":")
        self.kind = parts[0]
        try:
            if self.kind == "mass" and len(parts) == 2:
                self.frac = float(parts[1])
                ok = 0.0 < self.frac <= 1.0
            elif self.kind == "topk" and len(parts) == 2:
                self.k = int(parts[1])
                ok = self.k >= 1
            elif self.kind == "share" and len(parts) == 2:
                self.frac = float(parts[1])
                ok = 0.0 < self.frac <= 1.0
            elif self.kind == "pages" and len(parts) in (2, 3):
                self.budget = int(parts[1])
                self.page = int(parts[2]) if len(parts) == 3 else 16
                ok = self.budget >= 1 and self.page >= 1
            else:
                ok = False
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"bad rule {spec!r}: expected mass:F (0<F<=1), topk:N, share:F (0<F<=1) "
                "or pages:B[:S]"
            )

    def share_count(self, n):
        """Positions kept per head by `share:F` at position n."""
        return min(n, max(1, math.ceil(self.frac * n - 1e-9)))

    def select_head(self, p, own):
        """Kept past positions (unsorted int array) for one head.

        p: float64 probabilities of the past positions 0..n-1; own: the current position's.
        """
        n = len(p)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if self.kind == "pages":
            S = self.page
            npg = -(-n // S)
            if npg <= self.budget:
                return np.arange(n)
            padded = np.full(npg * S, -1.0)
            padded[:n] = p
            score = padded.reshape(npg, S).max(axis=1)
            best = np.argsort(-score, kind="stable")[: self.budget]
            return (best[:, None] * S + np.arange(S)[None, :]).ravel()
        order = np.argsort(-p, kind="stable")  # largest first, ties by position
        if self.kind == "mass":
            acc = np.cumsum(np.concatenate(([own], p[order])))
            hit = np.nonzero(acc >= self.frac)[0]
            k = int(hit[0]) if len(hit) else n
        elif self.kind == "topk":
            k = min(n, self.k)
        else:  # share
            k = self.share_count(n)
        return order[:k]

    def select(self, probs, n):
        """Read set of one (step, layer): a bool mask over positions 0..n-1.

        probs: (heads, >= n+1) attention probabilities of the query at position n.
        """
        keep = np.zeros(n, dtype=bool)
        pr = np.asarray(probs[:, : n + 1], dtype=np.float64)
        for h in range(pr.shape[0]):
            idx = self.select_head(pr[h, :n], pr[h, n])
            keep[idx[idx < n]] = True
        return keep


def skipped_ranges(keep):
    """Half-open ranges (a, b) of the positions NOT kept, sorted and disjoint."""
    skip = ~np.asarray(keep, dtype=bool)
    if not skip.any():
        return []
    d = np.diff(np.concatenate(([0], skip.astype(np.int8), [0])))
    starts = np.nonzero(d == 1)[0]
    ends = np.nonzero(d == -1)[0]
    return list(zip(starts.tolist(), ends.tolist()))


def format_line(n, layer, ranges):
    """One kvtrace v1 text line (with its newline), or '' when nothing is skipped."""
    if not ranges:
        return ""
    return f"{n} {layer} " + " ".join(f"{a}-{b}" for a, b in ranges) + "\n"
