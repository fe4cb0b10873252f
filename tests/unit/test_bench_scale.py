"""The knowledge-at-scale benchmark row (bench.scale) on a tiny catalog: each dataset is loaded
from stored rows into a real index holding its own chunks (faster with stored terms than
without), the partner's scope is searched with the bundled base, and the report's target
compares its p99 with twice one query embedding."""

from bench.scale import markdown, run_scale, targets


def test_a_tiny_scale_row_has_its_numbers_and_target() -> None:
    row = run_scale(20, 5, lambda _: None, datasets=6, embedding={"p50_ms": 1_000.0})
    assert row["chunks"] == 6 * 20
    own, every = row["search"]
    assert (own["datasets"], own["chunks"]) == (1 + 5, row["bundled_chunks"] + 5 * 20)
    assert (every["datasets"], every["chunks"]) == (1 + 6, row["bundled_chunks"] + 6 * 20)
    assert 0 < own["p50_ms"] <= own["p99_ms"]
    assert abs(row["load_s_per_100k_chunks"] - row["load_ms_per_chunk"] * 100) <= 0.1
    assert 0 < row["load_ms_per_chunk"] < row["load_without_terms_ms_per_chunk"]
    per_100k = row["rss_delta_mb"] * 100_000 / 120  # rss_delta_mb is rounded to 0.1 MB
    assert abs(row["rss_mb_per_100k_chunks"] - per_100k) <= 0.05 * 100_000 / 120

    (target,) = targets({"scale": row})
    assert target["status"] == "PASS"  # a 1 s embedding: any search is within 2×
    assert "quick run: 120 chunks" in target["note"]
    assert "s per 100k chunks" in "\n".join(markdown({"scale": row}))
    assert "| 5 of 6 datasets + bundled | 6 |" in "\n".join(markdown({"scale": row}))
    assert targets({})[0]["status"] == "n/a"
