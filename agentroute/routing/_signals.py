"""Signals: named detectors over a routing context, composable with `&`, `|` and `~`."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agentroute.errors import ConfigurationError
from agentroute.routing._protocol import RoutingContext

__all__ = [
    "AllOf",
    "AnyOf",
    "Keywords",
    "Length",
    "Metadata",
    "Not",
    "Predicate",
    "Regex",
    "Signal",
    "SignalResult",
    "signal_from_config",
]

Field = Literal["task", "previous"]


@dataclass(frozen=True, slots=True)
class SignalResult:
    """Whether a signal fired, and what it saw."""

    matched: bool
    detail: dict[str, Any] = field(default_factory=dict)


def _text(ctx: RoutingContext, on: Field) -> str:
    return ctx.task if on == "task" else (ctx.previous or "")


def _check_on(who: str, on: str) -> None:
    if on not in ("task", "previous"):
        msg = f"{who}(on={on!r}): use 'task' or 'previous'"
        raise ConfigurationError(msg)


class Signal(ABC):
    """A detector over a routing context. Combine with `a & b`, `a | b`, `~a`."""

    @abstractmethod
    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Return whether the signal fires for `ctx`."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-ready description (the same form `signal_from_config` reads)."""

    def __and__(self, other: Signal) -> Signal:
        return AllOf(self, other)

    def __or__(self, other: Signal) -> Signal:
        return AnyOf(self, other)

    def __invert__(self) -> Signal:
        return Not(self)


class Keywords(Signal):
    """Fires when any (or all) of the words occur as whole words, case-insensitively.

    Multi-word phrases match with any whitespace between the words.
    """

    def __init__(
        self, *words: str, mode: Literal["any", "all"] = "any", on: Field = "task"
    ) -> None:
        if not words:
            msg = "Keywords() needs at least one word"
            raise ConfigurationError(msg)
        if not all(isinstance(w, str) and w.strip() for w in words):
            msg = f"Keywords{words!r}: every word must be a non-blank string"
            raise ConfigurationError(msg)
        if mode not in ("any", "all"):
            msg = f"Keywords(mode={mode!r}): use 'any' or 'all'"
            raise ConfigurationError(msg)
        _check_on("Keywords", on)
        self.words = tuple(words)
        self.mode = mode
        self.on = on
        # Whole words: no word character right before or after. (`\b` would never match a word
        # that starts or ends with punctuation, such as `c++` or `$5`.)
        self._patterns = [
            (
                w,
                re.compile(
                    r"(?<!\w)" + r"\s+".join(map(re.escape, w.split())) + r"(?!\w)", re.IGNORECASE
                ),
            )
            for w in words
        ]

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Match the words against the task (or previous answer)."""
        text = _text(ctx, self.on)
        hits = [w for w, pat in self._patterns if pat.search(text)]
        matched = bool(hits) if self.mode == "any" else len(hits) == len(self.words)
        return SignalResult(matched, {"keywords": hits} if hits else {})

    def describe(self) -> dict[str, Any]:
        """Config form."""
        return {"keywords": list(self.words), "mode": self.mode, "on": self.on}


class Regex(Signal):
    """Fires when the regular expression matches (case-insensitive unless told otherwise)."""

    def __init__(self, pattern: str, *, ignore_case: bool = True, on: Field = "task") -> None:
        _check_on("Regex", on)
        try:
            self._re = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            msg = f"Regex({pattern!r}) is not a valid regular expression: {exc}"
            raise ConfigurationError(msg) from exc
        self.pattern = pattern
        self.ignore_case = ignore_case
        self.on = on

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Search the task (or previous answer)."""
        m = self._re.search(_text(ctx, self.on))
        return SignalResult(m is not None, {"regex": m.group(0)} if m else {})

    def describe(self) -> dict[str, Any]:
        """Config form."""
        return {"regex": self.pattern, "ignore_case": self.ignore_case, "on": self.on}


class Length(Signal):
    """Fires when the task's length in characters is within `[min_chars, max_chars]`."""

    def __init__(self, *, min_chars: int | None = None, max_chars: int | None = None) -> None:
        if min_chars is None and max_chars is None:
            msg = "Length() needs min_chars and/or max_chars"
            raise ConfigurationError(msg)
        self.min_chars = min_chars
        self.max_chars = max_chars

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Compare the task's length."""
        n = len(ctx.task)
        ok = (self.min_chars is None or n >= self.min_chars) and (
            self.max_chars is None or n <= self.max_chars
        )
        return SignalResult(ok, {"chars": n})

    def describe(self) -> dict[str, Any]:
        """Config form."""
        return {"min_chars": self.min_chars, "max_chars": self.max_chars}


_MISSING = object()


class Metadata(Signal):
    """Fires on run metadata: the key exists, equals a value, or is one of several."""

    def __init__(
        self, key: str, *, equals: Any = _MISSING, one_of: Iterable[Any] | None = None
    ) -> None:
        self.key = key
        self.equals = equals
        self.one_of = tuple(one_of) if one_of is not None else None

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Look the key up in the run's metadata."""
        if self.key not in ctx.metadata:
            return SignalResult(False)
        value = ctx.metadata[self.key]
        if self.equals is not _MISSING:
            ok = value == self.equals
        elif self.one_of is not None:
            ok = value in self.one_of
        else:
            ok = True
        return SignalResult(ok, {"metadata": {self.key: value}} if ok else {})

    def describe(self) -> dict[str, Any]:
        """Config form."""
        spec: dict[str, Any] = {"key": self.key}
        if self.equals is not _MISSING:
            spec["equals"] = self.equals
        if self.one_of is not None:
            spec["one_of"] = list(self.one_of)
        return {"metadata": spec}


class Predicate(Signal):
    """Fires when a caller-supplied function returns true. Python only (not in YAML)."""

    def __init__(self, fn: Callable[[RoutingContext], bool], *, name: str | None = None) -> None:
        self.fn = fn
        self.label = name or getattr(fn, "__name__", "predicate")

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Call the function."""
        ok = bool(self.fn(ctx))
        return SignalResult(ok, {"predicate": self.label} if ok else {})

    def describe(self) -> dict[str, Any]:
        """Config form (names the function; not loadable from YAML)."""
        return {"predicate": self.label}


class AllOf(Signal):
    """Fires when every part fires."""

    def __init__(self, *parts: Signal) -> None:
        self.parts = parts

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """All parts must fire; their details are merged."""
        detail: dict[str, Any] = {}
        for part in self.parts:
            res = part.evaluate(ctx)
            if not res.matched:
                return SignalResult(False)
            _merge(detail, res.detail)
        return SignalResult(True, detail)

    def describe(self) -> dict[str, Any]:
        """Config form."""
        return {"all": [p.describe() for p in self.parts]}


class AnyOf(Signal):
    """Fires when at least one part fires."""

    def __init__(self, *parts: Signal) -> None:
        self.parts = parts

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Every part is evaluated so the evidence lists all that fired."""
        detail: dict[str, Any] = {}
        matched = False
        for part in self.parts:
            res = part.evaluate(ctx)
            if res.matched:
                matched = True
                _merge(detail, res.detail)
        return SignalResult(matched, detail)

    def describe(self) -> dict[str, Any]:
        """Config form."""
        return {"any": [p.describe() for p in self.parts]}


class Not(Signal):
    """Fires when its part does not."""

    def __init__(self, part: Signal) -> None:
        self.part = part

    def evaluate(self, ctx: RoutingContext) -> SignalResult:
        """Negate the part."""
        return SignalResult(not self.part.evaluate(ctx).matched)

    def describe(self) -> dict[str, Any]:
        """Config form."""
        return {"not": self.part.describe()}


def _merge(into: dict[str, Any], detail: Mapping[str, Any]) -> None:
    for key, value in detail.items():
        if isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = [*into[key], *value]
        else:
            into[key] = value


# (keys that identify a signal's form, every key that form allows)
_CONFIG_KEYS: tuple[tuple[set[str], set[str]], ...] = (
    ({"keywords"}, {"keywords", "mode", "on"}),
    ({"regex"}, {"regex", "ignore_case", "on"}),
    ({"min_chars", "max_chars"}, {"min_chars", "max_chars"}),
    ({"metadata"}, {"metadata"}),
    ({"all"}, {"all"}),
    ({"any"}, {"any"}),
    ({"not"}, {"not"}),
)


def _check_keys(obj: Mapping[str, Any], where: str) -> None:
    """Refuse fields the signal's form does not have (a typo such as `mdoe` is an error)."""
    for form, allowed in _CONFIG_KEYS:
        if form & set(obj):
            unknown = set(obj) - allowed
            if unknown:
                msg = (
                    f"{where}: unknown field(s) {sorted(unknown)} in a {sorted(form)[0]} "
                    f"signal; allowed: {sorted(allowed)}"
                )
                raise ConfigurationError(msg)
            break
    spec = obj.get("metadata")
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"key", "equals", "one_of"}
        if unknown:
            msg = (
                f"{where}.metadata: unknown field(s) {sorted(unknown)}; "
                "allowed: key, equals, one_of"
            )
            raise ConfigurationError(msg)


def _keywords(obj: Mapping[str, Any], where: str) -> Signal:
    words = obj["keywords"]
    if isinstance(words, str):
        words = [words]
    return Keywords(*words, mode=obj.get("mode", "any"), on=obj.get("on", "task"))


def _regex(obj: Mapping[str, Any], where: str) -> Signal:
    return Regex(obj["regex"], ignore_case=obj.get("ignore_case", True), on=obj.get("on", "task"))


def _length(obj: Mapping[str, Any], where: str) -> Signal:
    return Length(min_chars=obj.get("min_chars"), max_chars=obj.get("max_chars"))


def _metadata(obj: Mapping[str, Any], where: str) -> Signal:
    spec = obj["metadata"]
    if not isinstance(spec, Mapping) or "key" not in spec:
        msg = f"{where}: metadata signal needs {{key: ..., equals: ...}}"
        raise ConfigurationError(msg)
    kwargs = {k: spec[k] for k in ("equals", "one_of") if k in spec}
    return Metadata(spec["key"], **kwargs)


def _parts(obj: Mapping[str, Any], key: str, where: str) -> list[Signal]:
    parts = obj[key]
    if not isinstance(parts, list) or not parts:
        msg = f"{where}.{key}: expected a non-empty list of signals"
        raise ConfigurationError(msg)
    return [signal_from_config(p, f"{where}.{key}[{i}]") for i, p in enumerate(parts)]


_BUILDERS: dict[str, Callable[[Mapping[str, Any], str], Signal]] = {
    "keywords": _keywords,
    "regex": _regex,
    "min_chars": _length,
    "max_chars": _length,
    "metadata": _metadata,
    "all": lambda obj, where: AllOf(*_parts(obj, "all", where)),
    "any": lambda obj, where: AnyOf(*_parts(obj, "any", where)),
    "not": lambda obj, where: Not(signal_from_config(obj["not"], f"{where}.not")),
}
"""The key that identifies a signal's config form → the function that builds it."""


def signal_from_config(obj: Any, where: str = "signal") -> Signal:
    """Build a signal from its config form (as written in graph YAML).

    Forms: `{keywords: [..], mode: any|all}`, `{regex: "..."}`, `{min_chars: n, max_chars: m}`,
    `{metadata: {key: k, equals: v | one_of: [..]}}`, `{all: [..]}`, `{any: [..]}`, `{not: {..}}`.
    `keywords` and `regex` take `on: task|previous` (what text they read).

    Raises:
        ConfigurationError: The form is not one of the above (names where it is).
    """
    if isinstance(obj, Signal):
        return obj
    if not isinstance(obj, Mapping) or not obj:
        msg = f"{where}: a signal must be a mapping such as {{keywords: [refund]}}, got {obj!r}"
        raise ConfigurationError(msg)
    _check_keys(obj, where)
    key = next((k for k in _BUILDERS if k in obj), None)
    if key is None:
        msg = (
            f"{where}: unknown signal {sorted(map(str, obj))}; use keywords, regex, "
            "min_chars/max_chars, metadata, all, any or not"
        )
        raise ConfigurationError(msg)
    return _BUILDERS[key](obj, where)
