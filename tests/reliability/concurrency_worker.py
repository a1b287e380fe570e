"""One of the rotating processes of the concurrency suite (tests/reliability/test_concurrency.py).

Run as ``python -m tests.reliability.concurrency_worker CONFIG DIR WORKER WORKERS ROUNDS``: for each
round it waits for ``DIR/go-<round>`` and rotates every target as ``jfrog-rotator rotate --all``
does (``build_engine`` + ``Engine.rotate``, built once per process), then writes what each
rotation answered to ``DIR/done-<round>-<worker>.json``. At READ-after the workers meet (each
touches ``read-<round>-<target>-<worker>`` and waits for the others), so all of them decide from
the same stored version: the race the suite is about, every round, not by luck of scheduling.
A worker that does not see the others in time goes on alone (the parent then finds the round
short of racers and fails it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rotator.config import load_config
from rotator.config.wiring import build_engine
from rotator.core.logs import setup_logging
from rotator.engine import RotationStep

MEET_TIMEOUT = 20.0


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def main(argv: list[str]) -> int:
    config_path, directory, me, workers, rounds = argv[0], Path(argv[1]), argv[2], int(argv[3]), int(argv[4])
    setup_logging("json")
    config = load_config(config_path)  # once: a round is the race, not the start of a process
    now = {"target": "", "round": -1}

    def hook(step, when, rotation_id):
        if step is RotationStep.READ and when == "after":
            stem = f"read-{now['round']}-{now['target']}-"
            (directory / f"{stem}{me}").touch()
            wait_for(lambda: len(list(directory.glob(f"{stem}*"))) >= workers, MEET_TIMEOUT)

    engine = build_engine(config, step_hook=hook)
    try:
        for number in range(rounds):
            if not wait_for((directory / f"go-{number}").exists, 120):
                return 3
            now["round"] = number
            answers = []
            for target in config.targets:
                now["target"] = target.name
                result = engine.rotate(target, reason=f"round {number}")
                answers.append({"target": target.name, "outcome": result.outcome, "token_id": result.token_id,
                                "previous": result.previous_token_id, "generation": result.generation,
                                "strategy": result.strategy, "error": result.error, "step": result.step,
                                "warnings": result.warnings})
            out = directory / f"done-{number}-{me}.json"
            out.with_suffix(".tmp").write_text(json.dumps(answers))
            out.with_suffix(".tmp").rename(out)
    finally:
        engine.jfrog.close()
        config.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
