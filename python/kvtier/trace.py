"""Skip traces: per-layer statistics (``kvtier trace stats``)."""

from __future__ import annotations

import json
import os
from typing import Union

import pandas as pd

from . import _native
from ._errors import _reraise

STATS_COLUMNS = (
    "layer",
    "skipped_share",
    "jaccard",
    "layer_skip_rate",
    "mlp_skip_rate",
    "sink_share",
    "recent_share",
    "young_skip_share",
)


def stats(trace, sinks: int = 4, recent: int = 64) -> pd.DataFrame:
    """Per-layer statistics of a trace: a trace file (``.kvtrace`` or ``.kvtb``), a scenario
    file (``.toml``) or a :class:`kvtier.Scenario` (its synthetic or recorded trace).

    One row per layer (``layer`` 0, 1, ...) and a last row for the whole trace, whose
    ``layer`` is <NA> (the CLI's ``all`` row); the columns of ``kvtier trace stats --format
    csv``. ``sinks`` and ``recent`` say which positions count as attention sinks and as the
    recent window, as the CLI's flags.
    """
    from . import Scenario

    if isinstance(trace, (str, os.PathLike)) and os.fspath(trace).endswith(".toml"):
        trace = Scenario.load(trace)
    with _reraise():
        if isinstance(trace, Scenario):
            text = _native.trace_stats(None, trace._native, int(sinks), int(recent))
        else:
            text = _native.trace_stats(os.fspath(trace), None, int(sinks), int(recent))
    st = json.loads(text)
    rows = [dict(layer=i, **layer) for i, layer in enumerate(st["layers"])]
    rows.append(dict(layer=None, **st["all"]))
    df = pd.DataFrame.from_records(rows, columns=list(STATS_COLUMNS))
    df["layer"] = df["layer"].astype("Int64")
    return df
