"""Render docs/reliability.md from the tallies a run of the suites wrote (``.reliability/*.json``)
and the bugs they found (:mod:`tests.reliability.bugs`, one module per suite), so the figures cannot drift from the code.

    .venv/bin/python -m tests.reliability.report [--results .reliability] [--out docs/reliability.md]

``make reliability-page`` runs the whole suite (``make test-reliability``) and then this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.reliability.bugs import all_bugs
from tests.reliability.harness import SUITES

INTRO = """\
# Reliability

What the reliability suites (`tests/reliability/`) did in their last full run, written by the suites
themselves (`make reliability-page`: the whole suite, then `tests/reliability/report.py`). After every
case the invariants of [the architecture](architecture.md#invariants) are checked against the real
servers (OpenBao, moto's server, the Access API emulator over HTTP):

1. every store's current token is accepted by JFrog;
2. every stored value parses (our record, or a document and the metadata beside it);
3. after a sweep past overlap and orphan grace, every live token tagged for a target is its current
   token or a retired one not yet revoked, in some output: no live orphan;
4. no token, refresh token, reference token, Vault token or AWS secret appears in any log line (at
   every level), error message, `status`, `/status`, `/metrics` or traceback.

`make test` runs a fast, seeded subset of the same suites (the tests not marked `slow`); the counts
below are from the full run. A violation fails its case, so "violations" is 0 in a green run; the bugs
the suites found on the way are listed at the end with their fixes.

Known limits, each checked by a case that asserts the recovery rather than counted as a violation:

- `strategy: refresh` ends the previous token the moment JFrog serves the refresh. When the answer is
  only slow (the client gives up, JFrog serves it later) or the store is down for the STORE that
  follows, the store holds a dead token until the next rotation, which finds the refresh token used
  and recreates (`fallback_to_recreate`); the run's error and `jfrog_rotator_rotations_total{result="failed"}`
  say so meanwhile ("dead after slow refresh" below). `recreate` and `self` have no such window.
- A daemon sweeps with an orphan grace of at least 60 s whatever a target sets, so a token another
  process has minted but not yet stored is never revoked; an orphan a crash left is revoked by the
  first sweep a minute on. `jfrog-rotator sweep` uses the grace as set.
"""


def render(results: Path) -> str:
    runs = {}
    for file in sorted(results.glob("*.json")):
        data = json.loads(file.read_text())
        runs[data["suite"]] = data
    missing = [name for name in SUITES if name not in runs]
    lines = [INTRO]
    if runs:
        first = next(iter(runs.values()))
        lines.append(f"Run: {first['date']}, {first['machine']}, {first['wall'] / 60:.1f} min for the whole run"
                     + (" (the fast subset only)" if any(r["subset"] for r in runs.values()) else "")
                     + ".\n")
        failed = first.get("failed") or []
        if isinstance(failed, list) and failed:
            page_check = [f for f in failed if f.startswith("tests/reliability/test_page.py")]
            lines.append(f"Failed in that run: {', '.join(f'`{f}`' for f in failed)}"
                         + (" (the check that this page lists every bug: it passes once the page is written from "
                            "the run)" if len(page_check) == len(failed) else "") + ".\n")
    lines += ["| suite | cases | faults injected | invariant checks | violations | run time | other counts |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for name, title in SUITES.items():
        run = runs.get(name)
        if run is None:
            lines.append(f"| {title} | not run | | | | | |")
            continue
        extra = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(run["extra"].items()))
        lines.append(f"| {title} | {run['cases']:,} | {run['faults']:,} | {run['checks']:,} | "
                     f"{len(run['violations'])} | {run['seconds']:.0f} s | {extra} |")
    if missing:
        lines.append(f"\nNot in this run: {', '.join(SUITES[m] for m in missing)}.")
    for name, run in runs.items():
        for violation in run["violations"]:
            lines.append(f"\n- {SUITES[name]}: {violation}")
    bugs = all_bugs()
    lines += ["", "## Bugs the suites found", "",
              f"{len(bugs)} so far, each fixed; the suite that found it now checks it every run.", "",
              "| suite | found | fix | commit |", "|---|---|---|---|"]
    for bug in bugs:
        lines.append(f"| {SUITES[bug.suite]} | {bug.found} | {bug.fix} | {bug.commit or 'this commit'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=".reliability", help="the directory the suites wrote (default: %(default)s)")
    parser.add_argument("--out", default="docs/reliability.md", help="the page to write (default: %(default)s)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        print(f"no results in {results}: run `make test-reliability` first", file=sys.stderr)
        return 2
    Path(args.out).write_text(render(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
