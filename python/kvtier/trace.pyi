import os
from typing import Tuple, Union

import pandas as pd

from . import Scenario

STATS_COLUMNS: Tuple[str, ...]

def stats(
    trace: Union[str, os.PathLike[str], Scenario], sinks: int = ..., recent: int = ...
) -> pd.DataFrame: ...
