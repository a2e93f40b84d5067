"""Stage 1: text building, tokenisation, the hybrid index, its lifecycle and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentroute.errors import ConfigurationError, ContentError
from agentroute.routing.skills import Retrieved, SkillIndex, SkillRecord, TextCaps, tokenize
from agentroute.routing.skills import _index as skills_index
from agentroute.routing.skills._text import chunk_words, split_identifier

from .conftest import FakeEmbedder, count_mask_builds, no_mask_cache


def test_tokenize_splits_identifiers_stems_and_bigrams_cjk() -> None:
    """camelCase/snake names become words, plurals are stemmed, Chinese becomes bigrams."""
    assert tokenize("getWeatherForecast for cities") == ["weather", "forecast", "city"]
    assert tokenize("two_factor-auth") == ["two", "factor", "auth"]
    assert tokenize("北京天气") == ["北京", "京天", "天气"]


def test_chunk_words_caps_and_absorbs_short_tail() -> None:
    """Chunks respect the size and the limit, and a short tail joins the last chunk."""
    text = " ".join(str(i) for i in range(340))
    chunks = chunk_words(text, 150, 4)
    assert len(chunks) == 2
    assert chunks[1].split()[-1] == "339"
    assert len(chunk_words(text, 10, 3)) == 3
    assert chunk_words("", 10, 3) == []


def test_search_records_component_scores(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """The right skill comes first and every candidate carries BM25, dense and fused scores."""
    index = SkillIndex.build(pool, fake_embedder)
    hits = index.search("my parcel never arrived, it is lost", k=3)
    assert hits[0].id == "lost-package"
    top = hits[0]
    assert top.bm25 > 0
    assert top.dense > 0
    assert top.fused > 0
    assert top.bm25_rank == 1
    assert set(top.as_detail()) >= {"bm25", "dense", "fused", "dense_head", "dense_body"}


def test_empty_and_huge_bodies_are_indexed_under_caps(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """Empty bodies give head rows only; a 250 KB body is cut to the caps' chunks."""
    caps = TextCaps(max_chunks=2, body_chars=5000)
    index = SkillIndex.build(pool, fake_embedder, caps)
    empty = index.position("weather-forecast")
    huge = index.position("huge-doc")
    assert index.starts[empty + 1] - index.starts[empty] == 2
    assert index.starts[huge + 1] - index.starts[huge] == 2 + 2
    assert index.search("weather forecast in Paris", k=1)[0].id == "weather-forecast"
    assert index.search("convert euros to dollars currency", k=1)[0].id == "huge-doc"


def test_duplicate_or_missing_ids_are_clear_errors(fake_embedder: FakeEmbedder) -> None:
    """Duplicate ids and empty ids raise ConfigurationError naming the id."""
    a = SkillRecord(id="a", name="A", description="x")
    with pytest.raises(ConfigurationError, match="duplicate skill id 'a'"):
        SkillIndex.build([a, a], fake_embedder)
    with pytest.raises(ConfigurationError, match="no id"):
        SkillIndex.build([SkillRecord(id="", name="A", description="x")], fake_embedder)


def test_update_embeds_only_the_changed_skill(pool: list[SkillRecord]) -> None:
    """Re-indexing after one skill changes embeds that skill's texts only."""
    embedder = FakeEmbedder()
    index = SkillIndex.build(pool, embedder)
    before = embedder.texts
    changed = [
        SkillRecord(id=s.id, name=s.name, description=s.description + " Updated.", body=s.body)
        if s.id == "lost-package"
        else s
        for s in pool
    ]
    report = index.update(changed)
    assert report.changed == 1
    assert report.unchanged == len(pool) - 1
    # head + description + one body chunk
    assert embedder.texts - before == report.embedded_texts == 3
    report = index.update(changed[:-1])
    assert report.removed == 1
    assert "beijing" not in index


def test_embedder_failure_mid_index_keeps_index_usable(pool: list[SkillRecord]) -> None:
    """A provider failing part-way leaves a lexical-only but working index, then retries."""
    embedder = FakeEmbedder(fail_after=0)
    index = SkillIndex.build(pool, embedder)
    assert sorted(index.failed) == sorted(s.id for s in pool)
    assert index.last_error is not None
    assert "provider went away" in index.last_error
    embedder.fail_after = None
    hits = index.search("refund my money", k=2, qvec=np.zeros(0, dtype=np.float32))
    assert hits[0].id == "refund-policy"
    report = index.update(pool)
    assert report.failed == []
    assert (report.retried, report.added, report.changed) == (len(pool), 0, 0)
    assert index.failed == []
    assert index.search("refund my money", k=1)[0].dense > 0


def test_save_load_round_trip_and_embedder_check(
    tmp_path: Path, pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """A saved index loads with identical results; a different embedder is refused.

    A missing part or a `meta.json` that is not an object is a `ConfigurationError` too.
    """
    index = SkillIndex.build(pool, fake_embedder)
    index.save(tmp_path / "idx")
    loaded = SkillIndex.load(tmp_path / "idx", fake_embedder)
    query = "reset my authenticator codes"
    assert [h.id for h in loaded.search(query, 3)] == [h.id for h in index.search(query, 3)]
    with pytest.raises(ConfigurationError, match="built with embedder"):
        SkillIndex.load(tmp_path / "idx", FakeEmbedder(name="other"))
    with pytest.raises(ConfigurationError, match="not a skills index"):
        SkillIndex.load(tmp_path, fake_embedder)
    (tmp_path / "idx" / "starts.npy").unlink()
    with pytest.raises(ConfigurationError, match="incomplete or damaged"):
        SkillIndex.load(tmp_path / "idx", fake_embedder)
    (tmp_path / "idx" / "meta.json").write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="index format None"):
        SkillIndex.load(tmp_path / "idx", fake_embedder)


def test_allowed_restricts_candidates(pool: list[SkillRecord], fake_embedder: FakeEmbedder) -> None:
    """Only the allowed ids are returned, even when they match nothing."""
    index = SkillIndex.build(pool, fake_embedder)
    hits = index.search("refund my money", k=5, allowed=["lost-package", "twoFactorAuth"])
    assert {h.id for h in hits} == {"lost-package", "twoFactorAuth"}


def test_non_english_query_matches_non_english_skill(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """A Chinese query finds the Chinese skill lexically; an unmatched query returns no crash."""
    index = SkillIndex.build(pool, fake_embedder)
    assert index.search("北京的天气怎么样", k=1)[0].id == "beijing"
    assert isinstance(index.search("Wie ist das Wetter?", k=2), list)


def test_from_directory_reports_skill_file_errors(
    tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    """A SKILL.md without front matter or not in UTF-8 is a ContentError naming the file."""
    good = tmp_path / "ok" / "SKILL.md"
    good.parent.mkdir()
    good.write_text("---\nname: ok\ndescription: fine\n---\nBody\n", encoding="utf-8")
    assert len(SkillIndex.from_directory(tmp_path, fake_embedder)) == 1
    bad = tmp_path / "bad" / "SKILL.md"
    bad.parent.mkdir()
    bad.write_text("no front matter here\n", encoding="utf-8")
    with pytest.raises(ContentError, match="front matter"):
        SkillIndex.from_directory(tmp_path, fake_embedder)
    bad.write_bytes(b"---\nname: bad\ndescription: caf\xe9\n---\n")
    with pytest.raises(ContentError, match="not UTF-8"):
        SkillIndex.from_directory(tmp_path, fake_embedder)


def test_clustered_dense_search_agrees_with_exact(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    """Past `ann_rows`, probing every cluster gives the exact ranking, and survives save/load."""
    exact = SkillIndex.build(pool, fake_embedder)
    ann = SkillIndex(fake_embedder, ann_rows=2, nlist=3, nprobe=3)
    ann.update(pool)
    query = "my parcel never arrived"
    assert [h.id for h in ann.search(query, 4)] == [h.id for h in exact.search(query, 4)]
    ann.save(tmp_path / "ann")
    loaded = SkillIndex.load(tmp_path / "ann", fake_embedder)
    assert loaded.search(query, 1)[0].id == "lost-package"


def test_term_stats_match_a_brute_force_scan(
    tmp_path: Path, pool: list[SkillRecord], fake_embedder: FakeEmbedder
) -> None:
    """Term presence and IDF agree with scanning each skill's tokens, also after save/load."""
    index = SkillIndex.build(pool, fake_embedder)
    query = "Refund the lost parcel, then reset two-factor codes xyzzy"
    rows = list(range(len(pool)))
    texts = [
        set(tokenize(f"{s.name} {split_identifier(s.name)} {s.description} {' '.join(s.tags)}"))
        | set(tokenize(s.body[: index.caps.body_chars]))
        for s in pool
    ]
    expected_terms = [t for t in dict.fromkeys(tokenize(query)) if any(t in x for x in texts)]
    for idx in (index, SkillIndex.load(index.save(tmp_path / "idx"), fake_embedder)):
        terms, idf, present = idx.term_stats(query, rows[::-1])
        assert terms == expected_terms
        for j, term in enumerate(terms):
            holders = [term in x for x in texts][::-1]
            assert present[j].tolist() == holders
            df = sum(holders)
            assert idf[j] == pytest.approx(np.log(1 + (len(pool) - df + 0.5) / (df + 0.5)))
    assert index.term_stats("xyzzy plugh", rows)[0] == []


def test_allowed_mask_is_cached_until_the_index_changes(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal `allowed` sequences reuse one mask, with results identical to building it each time.

    The searches ask for every skill, so zero-score skills are padded in from the mask: a stale
    or wrong mask would show. After `update` (positions shift, a skill is added that `allowed`
    does not name) the mask is rebuilt and the new skill stays out.
    """
    index = SkillIndex.build(pool, fake_embedder)
    everyone = [s.id for s in pool]
    queries = ["refund my money", "my parcel is lost", "xyzzy plugh"]

    def search_all(idx: SkillIndex) -> list[list[Retrieved]]:
        # A fresh tuple and a fresh list each time, as the runtime passes them.
        return [
            idx.search(q, k=len(pool), allowed=allowed)
            for q in queries
            for allowed in (tuple(everyone), list(everyone))
        ]

    with no_mask_cache():
        uncached = search_all(index)
    calls = count_mask_builds(monkeypatch)
    cached = search_all(index)
    assert cached == uncached
    assert any(h.fused == 0.0 for hits in cached for h in hits)  # padding from the mask
    assert len(calls) == 1

    newcomer = SkillRecord(id="gift-cards", name="Gift cards", description="Buy gift cards.")
    index.update([*pool[1:], newcomer])
    after = search_all(index)
    assert len(calls) == 2
    fresh = SkillIndex.build([*pool[1:], newcomer], FakeEmbedder())
    with no_mask_cache():
        assert after == search_all(fresh)
    assert all("gift-cards" not in {h.id for h in hits} for hits in after)


def test_allowed_masks_are_bounded(
    pool: list[SkillRecord], fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index keeps at most `_MASK_CACHE_SIZE` masks, dropping the least recently used."""
    index = SkillIndex.build(pool, fake_embedder)
    calls = count_mask_builds(monkeypatch)
    size = skills_index._MASK_CACHE_SIZE
    sets = [tuple(f"unknown-{i}" for i in range(j)) for j in range(size + 1)]
    for allowed in sets[:size]:  # fill the cache
        index.search("refund", k=2, allowed=allowed)
    index.search("refund", k=2, allowed=sets[0])  # a hit: sets[0] is now the most recent
    built = len(calls)
    assert built == size
    index.search("refund", k=2, allowed=sets[size])  # one too many: drops sets[1], not sets[0]
    index.search("refund", k=2, allowed=sets[0])
    assert len(calls) == built + 1
    index.search("refund", k=2, allowed=sets[1])
    assert len(calls) == built + 2


def test_tokenize_splits_latin_words_out_of_cjk_runs() -> None:
    """Latin words inside CJK text tokenise as words; only the CJK parts become bigrams."""
    assert tokenize("帮我创建一个GitHub仓库") == [
        *["帮我", "我创", "创建", "建一", "一个"],
        *["git", "hub"],
        "仓库",
    ]
    assert tokenize("在Docker里部署") == ["在", "docker", "里部", "部署"]
    assert tokenize("用GitHub建仓库") == tokenize("用 GitHub 建仓库")


def test_latin_word_in_cjk_query_matches_its_skill(fake_embedder: FakeEmbedder) -> None:
    """A Chinese query naming a product in Latin letters retrieves that product's skill."""
    skills = [
        SkillRecord(id="docker", name="Docker deploy", description="Deploy a service with docker."),
        SkillRecord(id="github", name="GitHub repos", description="Create a repository."),
    ]
    index = SkillIndex.build(skills, fake_embedder)
    assert index.search("在Docker里部署我的服务", k=1)[0].id == "docker"
    assert index.bm25_scores("用GitHub建一个新仓库")[1] > 0


@pytest.mark.parametrize("tags", [[1, 2], "billing", ("ok", None)])
def test_tags_must_be_a_list_of_strings(fake_embedder: FakeEmbedder, tags: object) -> None:
    """Integer tags or a bare string are configuration errors naming the skill."""
    skill = SkillRecord(id="a", name="A", description="desc", tags=tags)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="skill 'a': tags must be a list of strings"):
        SkillIndex.build([skill], fake_embedder)
