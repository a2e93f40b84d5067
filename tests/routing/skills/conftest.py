"""Fixtures of the skills-slot tests: a tiny deterministic embedder and a small skill pool."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from agentroute.routing.embeddings import Matrix, normalize
from agentroute.routing.skills import SkillRecord, tokenize

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
