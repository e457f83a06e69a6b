"""kvtier from Python: the same engine as the ``kvtier`` command, with pandas results.

Load a scenario, run a placement and migration strategy (Rhai scripts: a file path, a
built-in name, or source text), compare or sweep them, and get DataFrames with the same
columns as the command line's CSV output::

    import kvtier
    sc = kvtier.Scenario.load("scenarios/seed-w100.toml")
    res = kvtier.run(sc, placement="split_token", migration="alpha", rows=True)
    res.summary["decode_time_s"], res.rows.groupby("step").time_s.sum()
    table = kvtier.compare(sc)                       # every seed strategy pair
    sweep = kvtier.sweep(sc, vary={"initial.weights_on_hbm": [0.5, 0.8, 1.0]})

Every number means what the simulation contract (docs/spec.md) says; a result equals the
CLI's for the same scenario and pair, bit for bit. Long calls release the GIL, run pairs on
all cores, and stop on Ctrl-C (``KeyboardInterrupt``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _native
from . import trace  # noqa: F401  (kvtier.trace.stats)
from ._errors import Error, PolicyError, ScenarioError, _from_message, _reraise

__all__ = [
    "Error",
    "PolicyError",
    "Result",
    "Scenario",
    "ScenarioError",
    "Strategy",
    "compare",
    "run",
    "strategies",
    "sweep",
    "trace",
]

__version__ = _native.version()

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Strategy:
    """A strategy given as Rhai source text, under a name for tables and messages.

    Errors in it name it ``<name>``: ``PolicyError.file == "<name>"``.
    """

    name: str
    source: str


StrategyLike = Union[str, "os.PathLike[str]", Strategy]

# Source text rather than a name or path: a hook definition.
_SOURCE = re.compile(r"\bfn\s+\w+\s*\(")


def _strategy(s: StrategyLike) -> Tuple[str, Optional[str]]:
    if isinstance(s, Strategy):
        return (s.name, s.source)
    if isinstance(s, os.PathLike):
        return (os.fspath(s), None)
    if not isinstance(s, str):
        raise TypeError(
            f"a strategy is a name, a path, Rhai source text or kvtier.Strategy, not {type(s).__name__}"
        )
    if "\n" in s or _SOURCE.search(s):
        return ("inline", s)
    return (s, None)


def _strategies(given: Union[None, StrategyLike, Iterable[StrategyLike]]) -> List[Tuple[str, Optional[str]]]:
    if given is None:
        return []
    if isinstance(given, (str, os.PathLike, Strategy)):
        given = [given]
    out = [_strategy(s) for s in given]
    names = [n for n, src in out if src is not None]
    for n in set(names):
        if names.count(n) > 1:
            raise PolicyError(
                f"two strategies given as text are both named {n!r}: name them with "
                "kvtier.Strategy(name, source)"
            )
    return out


def _param_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, str):
        return v
    raise TypeError(f"a parameter is a number, a bool or a string, not {type(v).__name__}")


def _params(params: Optional[Mapping[str, Any]]) -> List[str]:
    return [f"{k}={_param_text(v)}" for k, v in (params or {}).items()]


def _json_value(v: Any) -> Any:
    """A Python value as JSON-ready data (numpy scalars as plain numbers)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Mapping):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


class Scenario:
    """A checked scenario (SPEC 2): what a run simulates.

    Make one with :meth:`load` (a TOML file), :meth:`from_dict` (its sections as a dict), or
    :meth:`with_` (a copy with dotted keys set). A scenario is immutable.
    """

    __slots__ = ("_native",)

    def __init__(self, native: "_native.NativeScenario") -> None:
        self._native = native

    @classmethod
    def load(cls, path: PathLike) -> "Scenario":
        """Reads and checks a scenario file. Raises :class:`ScenarioError` (with the file,
        line and column of a bad field) when it is not valid."""
        with _reraise():
            return cls(_native.load(os.fspath(path)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: Optional[PathLike] = None) -> "Scenario":
        """A scenario from its sections as a dict (``{"model": {...}, "hbm": {...}}``), as the
        TOML file would hold them. Relative paths in it (a trace file) resolve against
        ``path``'s folder if given, else the working directory."""
        with _reraise():
            text = json.dumps(_json_value(d), allow_nan=False)
            return cls(_native.from_json(text, None if path is None else os.fspath(path)))

    def with_(self, **assignments: Any) -> "Scenario":
        """A copy with dotted keys set, as a sweep sets them::

            sc.with_(**{"hbm.kv_budget": "40 GB", "initial.weights_on_hbm": 0.8})
        """
        pairs = [[k, _json_value(v)] for k, v in assignments.items()]
        with _reraise():
            return Scenario(self._native.with_json(json.dumps(pairs, allow_nan=False)))

    def show(self) -> Dict[str, Any]:
        """The derived sizes and bounds (``kvtier scenario show``) as a dict: numbers under
        their names (``weights_bytes``, ``kv_budget_bytes``, ``alpha_target``,
        ``no_skip_ideal_bound_s``, ...) and the CLI's rows as text under ``"rows"``."""
        with _reraise():
            return json.loads(self._native.show_json())

    def to_toml(self) -> str:
        """The scenario's fields as TOML (presets not expanded)."""
        with _reraise():
            return self._native.toml()

    @property
    def name(self) -> str:
        """The scenario's name (its ``name`` field, else the file stem)."""
        return self._native.name

    @property
    def path(self) -> Optional[str]:
        """The file it was read from, if any."""
        return self._native.path

    def __repr__(self) -> str:
        where = f" from {self.path!r}" if self.path else ""
        return f"<kvtier.Scenario {self.name!r}{where}>"


ScenarioLike = Union[Scenario, PathLike]


def _scenario(s: ScenarioLike) -> Scenario:
    return s if isinstance(s, Scenario) else Scenario.load(s)


def _column(values: List[Any]) -> Any:
    """One column of JSON records with the dtype its values call for: JSON integers (u64 in
    Rust; floats are always written with a point) as int64, or nullable Int64 when some rows
    have none; numbers as float64 with NaN for none (an empty column too); bools as bool."""
    present = [v for v in values if v is not None]
    if not present:
        return np.full(len(values), np.nan)
    if all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        if len(present) == len(values):
            return np.array(values, dtype=np.int64)
        return pd.array(values, dtype="Int64")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return pd.Series(values, dtype=object)


def _frame(records_json: str) -> pd.DataFrame:
    """The CLI's JSON records as a DataFrame with the CSV's columns, in order."""
    records = json.loads(records_json)
    columns = list(records[0].keys()) if records else []
    return pd.DataFrame({c: _column([r[c] for r in records]) for c in columns}, columns=columns)


def _check_errors(errors: str) -> None:
    if errors not in ("raise", "keep"):
        raise ValueError('errors is "raise" or "keep"')


def _table(records_json: str, errors: str, what: str) -> pd.DataFrame:
    """A compare's or sweep's table; with ``errors="raise"``, its first failure raised."""
    df = _frame(records_json)
    if errors == "raise":
        _raise_failures(df, what)
    return df


def _raise_failures(df: pd.DataFrame, what: str) -> None:
    failed = df[df["status"] != "ok"]
    if failed.empty:
        return
    first = failed.iloc[0]
    err = _from_message(
        f"{len(failed)} of {len(df)} {what} failed; first {first['placement']} + "
        f"{first['migration']}: {first['status']}"
    )
    err.frame = df
    raise err


class Result:
    """One run: :attr:`summary` (the CLI's ``run --format json`` record as a dict) and, when
    asked with ``rows=True``, :attr:`rows` (one row per sublayer and step phase, SPEC 9/9b)."""

    __slots__ = ("summary", "rows")

    def __init__(self, summary: Dict[str, Any], rows: Optional[pd.DataFrame]) -> None:
        self.summary = summary
        self.rows = rows

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<kvtier.Result {s['placement']} + {s['migration']} on {s['scenario']}: "
            f"decode {s['decode_time_s']:.6g} s, x ideal {s['x_ideal']:.4g}>"
        )


# The per-sublayer CSV's columns (SPEC 9, then 9b), in order.
ROW_COLUMNS = tuple(_native.row_columns())
_SUBLAYERS = pd.CategoricalDtype(["attn", "mlp", "step"])


def _rows(columns: Sequence[Tuple[str, str, bytes]]) -> pd.DataFrame:
    """The per-sublayer records from the engine's byte columns, by kind: ``i64``, ``f64``
    (NaN where the CSV is empty), ``i64?`` (nullable: the ``valid`` column that follows says
    where) and ``sublayer`` (category codes)."""
    data: Dict[str, Any] = {}
    valid = {name: np.frombuffer(raw, dtype=np.uint8).astype(bool) for name, kind, raw in columns if kind == "valid"}
    for name, kind, raw in columns:
        if kind == "i64":
            data[name] = np.frombuffer(raw, dtype=np.int64)
        elif kind == "f64":
            data[name] = np.frombuffer(raw, dtype=np.float64)
        elif kind == "i64?":
            data[name] = pd.arrays.IntegerArray(np.frombuffer(raw, dtype=np.int64), ~valid[name])
        elif kind == "sublayer":
            codes = np.frombuffer(raw, dtype=np.int8)
            data[name] = pd.Categorical.from_codes(codes, dtype=_SUBLAYERS)
    return pd.DataFrame(data, columns=list(ROW_COLUMNS), copy=False)


def run(
    scenario: ScenarioLike,
    placement: Optional[StrategyLike] = None,
    migration: Optional[StrategyLike] = None,
    params: Optional[Mapping[str, Any]] = None,
    rows: bool = False,
) -> Result:
    """Runs one placement + migration pair (the scenario's own ``policy`` section where not
    given) and returns its :class:`Result`.

    ``rows=True`` also collects every per-sublayer record as :attr:`Result.rows`, a DataFrame
    with the per-sublayer CSV's columns: integers as int64 (``layer`` as nullable Int64, empty
    on step phases), ``sublayer`` categorical, ``alpha`` and ``flops`` NaN where the CSV is
    empty. Raises :class:`PolicyError` for a strategy that does not load or fails while it runs.
    """
    sc = _scenario(scenario)
    p = None if placement is None else _strategy(placement)
    m = None if migration is None else _strategy(migration)
    with _reraise():
        record, columns = _native.run(sc._native, p, m, _params(params), bool(rows))
    summary = json.loads(record)[0]
    return Result(summary, None if columns is None else _rows(columns))


def compare(
    scenario: ScenarioLike,
    placements: Union[None, StrategyLike, Iterable[StrategyLike]] = None,
    migrations: Union[None, StrategyLike, Iterable[StrategyLike]] = None,
    params: Optional[Mapping[str, Any]] = None,
    baselines: bool = False,
    best_static: bool = False,
    errors: str = "raise",
) -> pd.DataFrame:
    """Runs every placement with every migration (the seed's scripts under ``policies/`` when
    not given, as ``kvtier compare``), on all cores, sharing one trace. Returns one row per pair
    with the CLI's CSV columns (``kvtier compare --format csv``).

    ``baselines`` adds the deployed systems' strategies; ``best_static`` fills
    ``x_best_static``. With ``errors="raise"`` (the default) a failed pair raises its
    :class:`PolicyError` (the whole table is on its ``frame`` attribute); ``errors="keep"``
    returns the table with the error in that row's ``status``.
    """
    _check_errors(errors)
    sc = _scenario(scenario)
    with _reraise():
        text = _native.compare(
            sc._native,
            _strategies(placements),
            _strategies(migrations),
            bool(baselines),
            bool(best_static),
            _params(params),
        )
    return _table(text, errors, "pairs")


def sweep(
    scenario: ScenarioLike,
    vary: Mapping[str, Sequence[Any]],
    placements: Union[None, StrategyLike, Iterable[StrategyLike]] = None,
    migrations: Union[None, StrategyLike, Iterable[StrategyLike]] = None,
    params: Optional[Mapping[str, Any]] = None,
    baselines: bool = False,
    best_static: bool = False,
    errors: str = "raise",
) -> pd.DataFrame:
    """Runs every combination of the varied keys' values (the first key changes slowest) with
    every pair (``prefer_hbm`` with ``none`` and ``alpha`` when not given, as ``kvtier
    sweep``). Returns the CLI's ``sweep --format csv`` table: the varied keys first, then one
    column per summary field. ``errors`` as in :func:`compare`.
    """
    _check_errors(errors)
    if not vary:
        raise ScenarioError("a sweep needs at least one key to vary")
    sc = _scenario(scenario)
    spec = [[k, _json_value(list(v))] for k, v in vary.items()]
    with _reraise():
        text = _native.sweep(
            sc._native,
            json.dumps(spec, allow_nan=False),
            _strategies(placements),
            _strategies(migrations),
            bool(baselines),
            bool(best_static),
            _params(params),
        )
    return _table(text, errors, "runs")


def strategies() -> pd.DataFrame:
    """The built-in strategies (``kvtier policies``): name, kind, whether it is a deployed
    system's baseline, and what it does."""
    rows = _native.builtin_strategies()
    return pd.DataFrame(rows, columns=["name", "kind", "baseline", "summary"])
