"""Fixtures of the skills-slot tests: a tiny deterministic embedder and a small skill pool."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import pytest

from agentroute.routing.embeddings import Matrix, normalize
from agentroute.routing.skills import SkillIndex, SkillRecord, tokenize
from agentroute.routing.skills import _index as skills_index

DIM = 64


class FakeEmbedder:
    """Hashed bag of stemmed words: related texts share words, so cosine tracks overlap.

    Counts every text it embeds (`calls`, `texts`), and can be told to fail after N texts.
    """

    def __init__(self, fail_after: int | None = None, name: str = "fake") -> None:
        self._name = name
        self.fail_after = fail_after
        self.texts = 0
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> Matrix:
        if self.fail_after is not None and self.texts + len(texts) > self.fail_after:
            msg = "provider went away"
            raise ConnectionError(msg)
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for token in tokenize(text):
                h = int(hashlib.md5(token.encode()).hexdigest()[:8], 16)
                out[i, h % DIM] += 1.0 if (h >> 8) % 2 else -1.0
        return normalize(out)


POOL = [
    SkillRecord(
        id="refund-policy",
        name="Refund policy",
        description="When and how customers get their money back.",
        body="Refunds are issued within 5-10 business days to the original payment method. "
        "Partial refunds apply to opened items.",
        tags=("billing",),
    ),
    SkillRecord(
        id="lost-package",
        name="Lost package",
        description="What to do when a parcel never arrives.",
        body="Open a carrier trace, wait 48 hours, then reship or refund the lost parcel.",
    ),
    SkillRecord(
        id="twoFactorAuth",
        name="twoFactorAuth",
        description="Set up or reset two-factor authentication codes.",
        body="Use an authenticator app. Backup codes restore access when the phone is lost.",
    ),
    SkillRecord(
        id="weather-forecast",
        name="getWeatherForecast",
        description="Daily weather forecast for a city.",
        body="",
    ),
    SkillRecord(
        id="huge-doc",
        name="Currency converter",
        description="Convert an amount between currencies.",
        body=("Exchange rates are refreshed hourly from the central bank feed. " * 4000),
    ),
    SkillRecord(
        id="beijing",
        name="北京旅游",
        description="北京天气和景点介绍",
        body="故宫 长城 天坛",
    ),
]


@pytest.fixture
def pool() -> list[SkillRecord]:
    """Six skills: an empty body, a 250 KB body, a camelCase name, a Chinese skill."""
    return list(POOL)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    """A fresh counting fake embedder."""
    return FakeEmbedder()


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep embedding caches and distilled models of these tests out of the user's cache."""
    monkeypatch.setenv("AGENTROUTE_CACHE", str(tmp_path_factory.mktemp("cache")))


def count_mask_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap `SkillIndex._build_mask`; the returned list grows by one per mask built."""
    calls: list[int] = []
    build = SkillIndex._build_mask

    def counting(pos: dict[str, int], allowed: Sequence[str]) -> npt.NDArray[np.bool_]:
        calls.append(len(allowed))
        return build(pos, allowed)

    monkeypatch.setattr(SkillIndex, "_build_mask", staticmethod(counting))
    return calls


@contextmanager
def no_mask_cache() -> Iterator[None]:
    """Searches inside build every `allowed` mask afresh (the uncached baseline)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(skills_index, "_MASK_CACHE_SIZE", 0)
        yield
