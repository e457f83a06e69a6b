# Type stub of the kvtier package (editors complete from it; kept in step with __init__.py by
# tests/test_stub.py).
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import pandas as pd

from . import trace as trace

__version__: str

PathLike = Union[str, os.PathLike[str]]

class Error(Exception):
    message: str
    file: Optional[str]
    line: Optional[int]
    column: Optional[int]
    frame: Optional[pd.DataFrame]
    def __init__(
        self,
        message: str,
        file: Optional[str] = ...,
        line: Optional[int] = ...,
        column: Optional[int] = ...,
    ) -> None: ...

class ScenarioError(Error, ValueError): ...
class PolicyError(Error): ...

class Strategy:
    name: str
    source: str
    def __init__(self, name: str, source: str) -> None: ...

StrategyLike = Union[str, os.PathLike[str], Strategy]
Strategies = Union[None, StrategyLike, Iterable[StrategyLike]]

class Scenario:
    @classmethod
    def load(cls, path: PathLike) -> Scenario: ...
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: Optional[PathLike] = ...) -> Scenario: ...
    def with_(self, **assignments: Any) -> Scenario: ...
    def show(self) -> Dict[str, Any]: ...
    def to_toml(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Optional[str]: ...

ScenarioLike = Union[Scenario, PathLike]

class Result:
    summary: Dict[str, Any]
    rows: Optional[pd.DataFrame]
    def __init__(self, summary: Dict[str, Any], rows: Optional[pd.DataFrame]) -> None: ...

ROW_COLUMNS: Tuple[str, ...]

def run(
    scenario: ScenarioLike,
    placement: Optional[StrategyLike] = ...,
    migration: Optional[StrategyLike] = ...,
    params: Optional[Mapping[str, Any]] = ...,
    rows: bool = ...,
) -> Result: ...
def compare(
    scenario: ScenarioLike,
    placements: Strategies = ...,
    migrations: Strategies = ...,
    params: Optional[Mapping[str, Any]] = ...,
    baselines: bool = ...,
    best_static: bool = ...,
    errors: str = ...,
) -> pd.DataFrame: ...
def sweep(
    scenario: ScenarioLike,
    vary: Mapping[str, Sequence[Any]],
    placements: Strategies = ...,
    migrations: Strategies = ...,
    params: Optional[Mapping[str, Any]] = ...,
    baselines: bool = ...,
    best_static: bool = ...,
    errors: str = ...,
) -> pd.DataFrame: ...
def strategies() -> pd.DataFrame: ...
