"""Whether a finished report says what a document claims of it (issue 35: every verdict the
README attributes to the demo is checked on CI's own run).

A claims file is a YAML list of ``{dataset, strategy, verdict}`` (and ``table``: the
artefact whose CSV holds the verdict, ``statistics`` by default, or ``robustness``). Run:
``python -m medft.report.claims REPORT_FOLDER CLAIMS.yaml``; exits 1 naming each claim the
report does not hold, so a claim a machine does not reproduce fails CI instead of misleading.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml


def check(report: str | Path, claims: list[dict]) -> list[str]:
    """One line per claim the report at ``report`` (``<results>/report/<name>``) does not
    hold; empty when it holds them all."""
    failures = []
    for claim in claims:
        table = Path(report) / claim["dataset"] / f"{claim.get('table', 'statistics')}.csv"
        where = f"{claim['dataset']} {claim['strategy']} ({table.name})"
        if not table.exists():
            failures.append(f"{where}: no {table}")
            continue
        rows = pd.read_csv(table)
        found = rows.loc[rows["strategy"] == claim["strategy"], "verdict"]
        if found.empty:
            failures.append(f"{where}: no such row")
        elif set(found) != {claim["verdict"]}:
            failures.append(f"{where}: claimed {claim['verdict']}, the report says {found.iloc[0]}")
    return failures


def main(argv: list[str] | None = None) -> int:
    report, claims_file = argv if argv is not None else sys.argv[1:]
    claims = yaml.safe_load(Path(claims_file).read_text())
    failures = check(report, claims)
    for line in failures:
        print(f"claim not reproduced: {line}")
    print(f"{len(claims) - len(failures)} of {len(claims)} claims of {claims_file} hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
