"""`snakemake --lint`, failing on any item not accepted below (CI: `make lint`).

    .venv/bin/python tests/lint_workflow.py

Accepted (one item per rule with a shell command):
  - "Specify a conda environment or container for each rule.": every job runs the project's own .venv,
    built from requirements.lock (`make setup`); a conda environment or container per rule would be a
    second, unpinned description of the same environment. On a cluster the nodes share .venv
    (docs/cluster.md).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACCEPTED = {"Specify a conda environment or container for each rule."}


def lint_items(text: str) -> list[tuple[str, str]]:
    """[(where, title)] from `snakemake --lint`'s text output (its JSON mode prints text in 9.x)."""
    items, where = [], None
    for line in text.splitlines():
        m = re.match(r"^Lints for (.+):$", line)
        if m:
            where = m.group(1)
            continue
        m = re.match(r"^    \* (.+?):?$", line)
        if m and where:
            items.append((where, m.group(1).rstrip(":")))
    return items


def main() -> int:
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "snakemake"), "--lint"], cwd=REPO,
                          capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    items = lint_items(text)
    unexpected = [(w, t) for w, t in items if t not in ACCEPTED]
    if "Lints for" in text and not items:
        print(text, file=sys.stderr)
        print("lint: could not read snakemake --lint's output", file=sys.stderr)
        return 1
    if proc.returncode not in (0, 1) or ("Error" in text and not items):
        print(text, file=sys.stderr)
        return 1
    for where, title in unexpected:
        print(f"lint: {where}: {title}", file=sys.stderr)
    accepted = len(items) - len(unexpected)
    print(f"snakemake --lint: {len(unexpected)} new item(s), {accepted} accepted "
          f"({'; '.join(sorted(ACCEPTED))})")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
