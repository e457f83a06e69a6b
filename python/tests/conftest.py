"""Shared fixtures: the repository root as working directory, and the CLI built from it.

The package under test is the installed one (`pip install ./python`, see README.md); the
CLI is built here (`cargo build`, a no-op after `cargo test`), so both come from this tree.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="session")
def cli():
    """Runs the `kvtier` command; returns its stdout (fails the test on a non-zero exit)."""
    subprocess.run(
        ["cargo", "build", "--locked", "--quiet", "--bin", "kvtier"], cwd=ROOT, check=True
    )
    exe = ROOT / "target" / "debug" / "kvtier"

    def run(*args, ok=True):
        p = subprocess.run([str(exe), *map(str, args)], cwd=ROOT, capture_output=True, text=True)
        if ok and p.returncode != 0:
            raise AssertionError(f"kvtier {' '.join(map(str, args))} failed:\n{p.stderr}")
        return p

    return run


@pytest.fixture(scope="session")
def small_seed(tmp_path_factory):
    """The seed scenario with 64 decode steps and 4096 prefill positions (a debug CLI runs it
    in seconds), written as a file for the CLI."""
    import kvtier

    sc = kvtier.Scenario.load(ROOT / "scenarios" / "seed-w100.toml").with_(
        **{"workload.decode": 64, "workload.prefill": 4096}
    )
    path = tmp_path_factory.mktemp("scenarios") / "small-seed.toml"
    path.write_text(sc.to_toml())
    return kvtier.Scenario.load(path)


def cli_json(text):
    return json.loads(text)
