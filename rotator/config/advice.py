"""What ``check-config`` warns about: settings that load, but will not do what a person expects
once JFrog and the programs that read the secrets take part. Pure rules over a loaded
:class:`~rotator.config.Config` (no I/O); each warning names the target and gives the numbers.
The warnings are listed in docs/configuration.md ("What check-config warns about").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rotator.config import Config
from rotator.core.record import RETIRED_CAPACITY
from rotator.core.target import Target


@dataclass(frozen=True)
class ConsumerRefresh:
    """How often the usual consumers of a store read a changed secret again, by default."""

    consumer: str
    seconds: int
    setting: str
    url: str


#: The usual consumers of each built-in store type (the config's ``backends.<name>.type``).
CONSUMERS = {
    "vault": ConsumerRefresh(
        "Vault Agent re-renders KV secrets", 300, "static_secret_render_interval",
        "https://developer.hashicorp.com/vault/docs/agent-and-proxy/agent/template#static_secret_render_interval"),
    "aws-secretsmanager": ConsumerRefresh(
        "AWS Secrets Manager caching clients refresh a secret", 3600, "secret_refresh_interval",
        "https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets_cache-python.html"),
}


@dataclass(frozen=True)
class Advice:
    """One warning about one target."""

    target: str
    message: str

    def __str__(self) -> str:
        return f"{self.target}: {self.message}"


def config_advice(config: Config) -> list[Advice]:
    """Every warning about ``config``, target by target, in the order of the file."""
    threshold = config.jfrog.persistency_threshold
    leader = config.daemon.leader is not None
    return [Advice(target.name, message)
            for target in config.targets
            for message in target_advice(target, config.backend_types.get(target.backend), threshold,
                                         leader=leader)]


def target_advice(target: Target, store_type: str | None, persistency_threshold: int, *,
                  leader: bool = False) -> Iterator[str]:
    """The warnings about one target kept in a store of ``store_type``; ``leader``: the daemon
    replicas elect a leader (``daemon.leader``), and a refresh runs only under a claim."""
    expiry = target.token.expiry
    unstored = expiry is not None and 0 < expiry < persistency_threshold
    if unstored:
        yield (f"token.expiry {expiry}s is under JFrog's persistency threshold ({persistency_threshold}s, "
               "jfrog.persistency_threshold): JFrog does not store such tokens, so the previous token "
               "cannot be revoked and the orphan sweep cannot see it; it simply expires, at most "
               f"{expiry}s after it was minted")
    consumer = CONSUMERS.get(store_type or "")
    if target.strategy == "refresh":
        if consumer is not None:
            yield _outlived_by_consumers("the previous token stops working at once (strategy refresh)", consumer)
        if not leader:
            yield ("strategy refresh: a refresh token works once (reusing it answers 404), so only one daemon "
                   "replica may refresh this target at a time: run one replica, or set daemon.leader")
    elif consumer is not None and not unstored and target.overlap < consumer.seconds:
        yield _outlived_by_consumers(
            f"overlap {target.overlap}s is shorter than the usual refresh interval of its consumers", consumer)
    every = target.schedule.every if target.schedule.kind == "every" else None
    if target.format not in (None, "record") and not unstored and every and target.overlap // every >= RETIRED_CAPACITY:
        yield (f"format {target.format} keeps the retired tokens in the store's metadata, which lists "
               f"{RETIRED_CAPACITY}; rotating every {every}s with overlap {target.overlap}s keeps "
               f"{target.overlap // every} waiting, so rotations are refused until a sweep revokes the earliest: "
               "rotate less often, shorten overlap, or use format: record")


def _outlived_by_consumers(what: str, consumer: ConsumerRefresh) -> str:
    return (f"{what}: {consumer.consumer} every {consumer.seconds}s by default ({consumer.setting}, "
            f"{consumer.url}), so a consumer may still send the previous token after it stopped working")
