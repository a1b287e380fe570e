"""The daemon's ``/metrics`` read twice and compared: which series moved during the demo."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, tuple[tuple[str, str], ...]]  # name and sorted labels


def scrape(metrics_url: str) -> dict[Sample, float]:
    """Every sample of the page but histogram buckets and ``_created`` stamps."""
    text = requests.get(metrics_url, timeout=5).text
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@dataclass(frozen=True)
class Moved:
    name: str
    labels: dict[str, str]
    before: float
    after: float

    def line(self) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        series = f"{self.name}{{{labels}}}" if labels else self.name
        return f"{series} {_value(self.name, self.before)} -> {_value(self.name, self.after)}"


def moved(before: dict[Sample, float], after: dict[Sample, float]) -> list[Moved]:
    """Series whose value changed; a series that did not exist yet counts as 0."""
    return [Moved(name, dict(labels), before.get((name, labels), 0.0), value)
            for (name, labels), value in sorted(after.items()) if value != before.get((name, labels), 0.0)]


def _value(name: str, value: float) -> str:
    if name.endswith("_timestamp_seconds") and value > 0:
        return time.strftime("%H:%M:%S", time.localtime(value))
    if name.endswith("_sum"):
        return f"{value:.3f}"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
