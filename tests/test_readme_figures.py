"""Every table of measured figures in the README is exactly what benchmarks/readme_tables.py renders from
the result files under benchmarks/results/ (each written by a command, with its machine, versions and
date), and each such file names the command that wrote it."""

from __future__ import annotations

import json
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import readme_tables  # noqa: E402
import results  # noqa: E402


def test_readme_tables_match_the_result_files():
    found = readme_tables.blocks((REPO / "README.md").read_text())
    assert {name for name, _ in found} >= {"default-runs", "cpu-side-by-side", "startup"}
    for name, body in found:
        assert body == readme_tables.render(name), f"README table {name!r} differs from its result file"


def test_every_result_file_says_how_it_was_made():
    files = sorted(results.RESULTS.glob("*.json"))
    assert files
    for path in files:
        record = json.loads(path.read_text())
        assert {"command", "date", "machine", "versions", "figures"} <= set(record), path.name
        assert record["command"].startswith(("hf-finetune ", "benchmarks/", "python benchmarks/")), path.name
        assert record["machine"]["cores"] and record["versions"]["hf-finetune"], path.name
