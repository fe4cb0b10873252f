"""The knowledge index's BM25 (alim/knowledge/bm25.py) against bm25s, which it replaces: the
same score for every word in every chunk, the same query scores to the bit, on the bundled base,
synthetic chunks and odd corpora (a chunk without tokens, one chunk, repeated words)."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from alim.knowledge.bm25 import Bm25
from alim.knowledge.documents import load_articles
from alim.knowledge.index import chunk_articles, chunk_sentences
from alim.knowledge.terms import chunk_terms
from alim.text import query_keywords
from bench.scale import synthetic_chunks

QUERIES = [
    "Pomidorun yarpaqları saralır, səbəbi nədir?",
    "Когда сажать картофель в Гяндже?",
    "How often should I water young apple trees? water water",
    "buğda azot gübrə",
]


def _tokens(chunks):  # type: ignore[no-untyped-def]
    return [t.keywords for t in chunk_terms(chunks, [chunk_sentences(c) for c in chunks])]


CORPORA = {
    "bundled": lambda: _tokens(chunk_articles(load_articles(None))),
    "synthetic": lambda: _tokens(synthetic_chunks("ds-b", 300, seed=2)),
    "odd": lambda: [["su", "su", "su"], [], ["torpaq"], ["su", "torpaq", "x1"], []],
    "one": lambda: [["pomido", "suvarm"]],
}


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_scores_are_those_of_bm25s(corpus: str) -> None:
    tokens = CORPORA[corpus]()
    ours = Bm25(tokens)
    reference = bm25s.BM25()
    reference.index([t or ["_"] for t in tokens], show_progress=False)
    matrix = reference.scores
    for word, column in reference.vocab_dict.items():
        if word == "":  # bm25s' empty token has no column
            assert ours.column(word) is None
            continue
        start, end = matrix["indptr"][column], matrix["indptr"][column + 1]
        found = ours.column(word)
        assert found is not None
        column_scores = matrix["data"][start:end]
        expected = dict(zip(matrix["indices"][start:end].tolist(), column_scores, strict=True))
        assert dict(zip(found[0].tolist(), found[1], strict=True)) == expected, word
    assert set(ours.vocabulary) == set(reference.vocab_dict) - {""}
    words = list(reference.vocab_dict)[:5]
    for query in [*(query_keywords(q) for q in QUERIES), words, words + words[:2]]:
        known = [t for t in query if t in reference.vocab_dict and t]
        zeros = np.zeros(len(tokens), dtype=np.float32)
        assert np.array_equal(
            ours.get_scores(query), reference.get_scores(known) if known else zeros
        )
