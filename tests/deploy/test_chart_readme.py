"""The chart README's values tables are hack/chart-readme.py's output for today's values.yaml,
and that output documents every value (a key the generator skipped would go unexplained)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "genvid"
SCRIPT = REPO / "hack" / "chart-readme.py"
ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| (?P<type>\w+) \| (?P<default>.*?) \| (?P<text>.*) \|$")


def generated() -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows() -> dict[str, dict[str, str]]:
    return {m["key"]: m.groupdict() for line in generated().splitlines() if (m := ROW.match(line))}


def leaves(values: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        return [leaf for key, value in values.items() for leaf in leaves(value, (*prefix, key))]
    return [prefix]


def test_the_readme_holds_the_generated_tables() -> None:
    readme = (CHART / "README.md").read_text()
    begin = readme.index("<!-- values:begin")
    tables = readme[readme.index("\n", begin) + 1 : readme.index("<!-- values:end -->")]
    assert tables.strip() == generated().strip(), "stale: run hack/chart-readme.py --write"


def test_every_value_has_exactly_one_row() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {key for key, row in rows().items() if row["default"]}
    for leaf in leaves(values):
        covering = [
            key for key in documented if leaf[: len(key.split("."))] == tuple(key.split("."))
        ]
        assert len(covering) == 1, f"{'.'.join(leaf)}: rows {covering}"


def test_a_row_takes_the_comment_above_its_key_and_the_default_below() -> None:
    table = rows()
    assert table["operator.config.maxRetries"] == {
        "key": "operator.config.maxRetries",
        "type": "int",
        "default": "`3`",
        "text": "The worker Job's backoffLimit (GENVID_MAX_RETRIES).",
    }
    assert table["image.tag"]["text"] == "Defaults to the chart's appVersion."
    assert table["image.repository"]["default"] == '`"genvid"`'
    # A mapping whose keys carry no comments is one row; the keys get none of their own.
    assert table["podSecurityContext"]["type"] == "object"
    assert "podSecurityContext.runAsUser" not in table
    # A section heading is no key's description.
    assert table["nameOverride"]["text"] == "Replaces the chart name in object names."
