# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""FAISS index and search (tasks/index.py, `internvideo2 index` / `search`, `retrieval.search_index`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transformers_internvideo2 import cli
from transformers_internvideo2.shapes_world.bundled import bundled_model_dir
from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec, write_mp4
from transformers_internvideo2.tasks import index as index_module
from transformers_internvideo2.tasks.index import build_index, load_embeddings, load_index


pytest.importorskip("faiss")


def _vectors(count, dimension, seed):
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _names(count):
    return [f"id{i}" for i in range(count)], [f"/clips/{i}.mp4" for i in range(count)]


def test_flat_index_is_exact_cosine_search(tmp_path):
    vectors = _vectors(300, 24, seed=3)
    ids, paths = _names(300)
    index = build_index(vectors * 5.0, ids, paths)  # scaled: normalised inside, scores are cosines
    assert index.metadata["kind"] == "flat"
    queries = _vectors(7, 24, seed=4)
    hits = index.search(queries, k=5)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    assert [[h["id"] for h in row] for row in hits] == [[ids[i] for i in row] for row in expected]
    np.testing.assert_allclose([h["score"] for h in hits[0]], np.sort(queries[0] @ vectors.T)[::-1][:5], atol=1e-5)
    reloaded = load_index(index.save(tmp_path / "idx"))
    assert reloaded.search(queries, k=5) == hits and reloaded.metadata["count"] == 300


def test_auto_kind_switches_to_hnsw_above_the_limit_with_high_recall(monkeypatch):
    monkeypatch.setattr(index_module, "EXACT_SEARCH_LIMIT", 1000)
    vectors = _vectors(3000, 32, seed=5)
    ids, paths = _names(3000)
    approximate = build_index(vectors, ids, paths)
    exact = build_index(vectors, ids, paths, kind="flat")
    assert approximate.metadata["kind"] == "hnsw"
    queries = _vectors(50, 32, seed=6)
    _, found = approximate.search_vectors(queries, 10)
    _, truth = exact.search_vectors(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.9, recall


def test_ivfpq_index_finds_the_query_vector_itself():
    vectors = _vectors(2000, 32, seed=7)
    ids, paths = _names(2000)
    index = build_index(vectors, ids, paths, kind="ivfpq")
    hits = index.search(vectors[:20], k=10)
    assert np.mean([ids[i] in [h["id"] for h in row] for i, row in enumerate(hits)]) >= 0.9


def test_bad_inputs_are_refused():
    ids, paths = _names(3)
    with pytest.raises(ValueError, match="unique"):
        build_index(_vectors(3, 8, 0), ["a", "a", "b"], paths)
    with pytest.raises(ValueError, match="non-zero"):
        build_index(np.zeros((3, 8)), ids, paths)
    with pytest.raises(ValueError, match="kind must be one of"):
        build_index(_vectors(3, 8, 0), ids, paths, kind="lsh")
    index = build_index(_vectors(3, 8, 0), ids, paths)
    with pytest.raises(ValueError, match="dimension 4, the index 8"):
        index.search(_vectors(1, 4, 1))


@pytest.fixture(scope="module")
def embedded_clips(tmp_path_factory):
    """Six shapes clips embedded by `internvideo2 embed` (local engine, Parquet) with the bundled video-text model."""
    folder = tmp_path_factory.mktemp("index_clips")
    paths = []
    for index in range(6):
        path = folder / f"clip{index}.mp4"
        write_mp4(render_clip(sample_clip_spec(200 + index)), path)
        paths.append(str(path))
    output = folder / "embeddings.parquet"
    model = str(bundled_model_dir("shapes-video-text"))
    assert cli.main(["embed", "--model", model, *paths, "--output", str(output), "--no-progress"]) == 0
    return paths, output


def test_index_and_search_commands_end_to_end(embedded_clips, tmp_path, capsys):
    paths, embeddings = embedded_clips
    table = load_embeddings(embeddings)
    assert table.model == str(bundled_model_dir("shapes-video-text")) and table.vectors.shape == (6, 64)
    folder = tmp_path / "index"
    assert cli.main(["index", str(embeddings), "--output", str(folder)]) == 0
    capsys.readouterr()
    assert cli.main(["search", "a red circle moves left", "--index", str(folder), "--top-k", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert len(results) == 3 and [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert {r["source_path"] for r in results} <= set(paths)
    assert cli.main(["search", "--video", paths[2], "--index", str(folder), "--top-k", "2", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["results"][0]
    assert top["source_path"] == paths[2] and top["score"] == pytest.approx(1.0, abs=1e-4)
    assert cli.main(["search", "--index", str(folder)]) == 1
    assert "Give a text query or --video" in capsys.readouterr().err


def test_search_index_api_matches_brute_force_retrieval(embedded_clips):
    from transformers_internvideo2.tasks.retrieval import embed_texts, load_model_and_processor, search_index

    _, embeddings = embedded_clips
    table = load_embeddings(embeddings)
    index = index_module.index_embeddings(table)
    model, processor = load_model_and_processor(table.model)
    captions = ["a blue square moves up", "a green triangle grows"]
    hits = search_index(index, model, processor, texts=captions, k=6)
    text = embed_texts(model, processor, captions, progress=False).text_embeds.numpy()
    similarity = text @ table.vectors.T
    for row, query_hits in zip(similarity, hits):
        assert [h["source_path"] for h in query_hits] == [table.source_paths[i] for i in np.argsort(-row)]
        np.testing.assert_allclose([h["score"] for h in query_hits], np.sort(row)[::-1], atol=1e-5)
