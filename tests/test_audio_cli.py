"""The audio modality in the command line: `internvideo2 retrieve --modality audio|video|audio_video` and
`internvideo2 embed --modality audio|audio_video`, with a tiny audio-video-text model (random weights, saved to a
folder) and the real media of the shared folder (a video with an AAC track, one without, two wavs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from transformers_internvideo2 import InternVideo2Config
from transformers_internvideo2.assets import load_bert_uncased_tokenizer
from transformers_internvideo2 import cli
from transformers_internvideo2.models.beats import BeatsFeatureExtractor
from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import (
    InternVideo2ForRetrieval,
    InternVideo2Model,
)
from transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text import (
    InternVideo2Processor,
)
from transformers_internvideo2.tasks.batch import read_records
from transformers_internvideo2.tasks.retrieval import (
    embed_videos,
    load_model_and_processor,
    load_video_embeddings,
    retrieve,
)


CAPTIONS = ["a man throws a ball for his dog", "a tone in the left channel", "people ride bikes"]


def _config(use_audio_matching_head: bool = True, audio: bool = True) -> InternVideo2Config:
    audio_config = dict(patch_size=16, patch_embed_dim=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
                        num_buckets=8, max_distance=16)  # fmt: skip
    return InternVideo2Config(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                           image_size=28, patch_size=14, num_frames=2, pooler_output_size=16,
                           pooler_num_attention_heads=2, clip_teacher_hidden_size=0),
        text_config=dict(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=64, fusion_layer=1, encoder_width=24),
        audio_config=audio_config if audio else None,
        use_audio_matching_head=use_audio_matching_head and audio,
        use_vision_token_projection=True, vision_token_projection_size=24, projection_dim=8,
    )  # fmt: skip


def _save(folder, config, model_class=InternVideo2ForRetrieval, with_extractor: bool = True):
    torch.manual_seed(0)
    model = model_class(config).eval()
    with torch.no_grad():  # spread the random features so that rankings are not decided by rounding
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0.0, 0.3)
    processor = InternVideo2Processor.for_stage2(
        num_frames=2, image_size=28, tokenizer=load_bert_uncased_tokenizer(),
        feature_extractor=BeatsFeatureExtractor() if with_extractor else None,
    )  # fmt: skip
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def media(shared_dir):
    path = shared_dir / "media"
    if not (path / "example1_with_audio.mp4").is_file():
        pytest.skip(f"audio media not found in {path}")
    return path


@pytest.fixture(scope="module")
def av_folder(tmp_path_factory):
    """An audio-video-text retrieval model with both audio heads (atm_head, avtm_head)."""
    return _save(tmp_path_factory.mktemp("av") / "model", _config())


@pytest.fixture(scope="module")
def av_folder_without_atm(tmp_path_factory):
    """As the released 6B: avtm_head only; its processor saved without the audio feature extractor (as the
    stage-2 converter writes it)."""
    return _save(tmp_path_factory.mktemp("av_no_atm") / "model", _config(use_audio_matching_head=False),
                 with_extractor=False)  # fmt: skip


@pytest.fixture(scope="module")
def video_text_folder(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("vt") / "model", _config(audio=False), with_extractor=False)


@pytest.fixture(scope="module")
def files(media):
    return {
        "av": str(media / "example1_with_audio.mp4"),
        "silent": str(media / "example1.mp4"),
        "long": str(media / "speech_long_16k.wav"),
        "short": str(media / "speech_dog_snow_16k.wav"),
    }


def _run(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------------------------------------------
# embed --modality audio / audio_video
# ------------------------------------------------------------------------------------------------------------------
def test_embed_audio_equals_get_audio_features_of_the_processor_features(av_folder, files, tmp_path, capsys):
    paths = [files["long"], files["av"], files["short"], files["silent"]]
    output = tmp_path / "audio.safetensors"
    code, out, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio", *paths,
                          "--output", str(output), "--batch-size", "3", "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "example1.mp4 has no audio track" in out and "example1_with_audio" not in out.split("note:")[-1]
    model, processor = load_model_and_processor(av_folder)
    # the processor's own features: audio files through the audio-file path, videos through the video path
    features = torch.cat([
        processor.process_audio(audio=[files["long"]])["input_features"],
        processor.process_audio(videos=[files["av"]])["input_features"],
        processor.process_audio(audio=[files["short"]])["input_features"],
        processor.process_audio(videos=[files["silent"]])["input_features"],
    ])  # fmt: skip
    assert torch.equal(features[3], torch.zeros_like(features[3]))  # the original's silent features
    with torch.no_grad():
        expected = model.get_audio_features(features)
    with safe_open(str(output), framework="pt") as handle:
        metadata = handle.metadata()
        assert json.loads(metadata["names"]) == paths and metadata["modality"] == "audio"
        assert json.loads(metadata["settings"])["modality"] == "audio"
        assert set(handle.keys()) == {"audio_embeds", "pooler_output"}
        torch.testing.assert_close(handle.get_tensor("audio_embeds"), expected.pooler_output, rtol=0, atol=1e-6)
        torch.testing.assert_close(handle.get_tensor("pooler_output"), expected.audio_pooler_output, rtol=0, atol=1e-6)
    # the embeddings read back as audio embeddings, and cannot be used as video ones
    loaded = load_video_embeddings(output)
    assert loaded.modality == "audio" and loaded.names == paths
    torch.testing.assert_close(loaded.video_embeds, expected.pooler_output, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="audio embeddings, but modality='video'"):
        retrieve(model, processor, loaded, CAPTIONS, rerank=False, progress=False)
    ranked = retrieve(model, processor, loaded, CAPTIONS, rerank=False, progress=False, modality="audio")
    assert ranked.similarity.shape == (4, 3)


def test_embed_audio_video_jsonl_resume_and_modality_mixing(av_folder, files, tmp_path, capsys):
    paths = [files["av"], files["silent"]]
    output = tmp_path / "av.parquet"
    code, out, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio_video", *paths,
                          "--output", str(output), "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "example1.mp4 has no audio track" in out
    records = read_records(output, vector_fields=("audio_video_embeds",))
    assert [r["video"] for r in records] == paths and [r["audio_track"] for r in records] == [True, False]
    model, processor = load_model_and_processor(av_folder)
    inputs = processor(videos=paths, audio_from_videos=True)
    with torch.no_grad():
        expected = model.get_audio_video_features(inputs["input_features"], inputs["pixel_values"]).pooler_output
    got = torch.from_numpy(np.stack([r["audio_video_embeds"] for r in records]))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # resuming the output with another modality is refused: one output never mixes modalities
    code, _, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio", *paths,
                        "--output", str(output), "--resume", "--no-progress")  # fmt: skip
    assert code == 1 and "other settings" in err and "modality" in err
    # the index takes the modality's feature and records the modality
    pytest.importorskip("faiss")
    from transformers_internvideo2.tasks.index import index_embeddings, load_embeddings

    table = load_embeddings(output)
    assert table.modality == "audio_video" and table.feature == "audio_video_embeds"
    assert index_embeddings(table).metadata["modality"] == "audio_video"


def test_embed_audio_video_refuses_audio_files_and_ray_refuses_audio(av_folder, files, tmp_path, capsys):
    code, _, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio_video", files["short"],
                        "--output", str(tmp_path / "x.jsonl"))  # fmt: skip
    assert code == 1 and "needs video files" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio", files["av"],
                        "--engine", "ray", "--output", str(tmp_path / "ray"))  # fmt: skip
    assert code == 1 and "--engine ray embeds video only" in err and err.count("\n") == 1


def test_audio_modalities_need_an_audio_encoder(video_text_folder, files, tmp_path, capsys):
    for modality in ("audio", "audio_video"):
        code, _, err = _run(capsys, "embed", "--model", str(video_text_folder), "--modality", modality, files["av"],
                            "--output", str(tmp_path / f"{modality}.jsonl"), "--no-progress")  # fmt: skip
        assert code == 1 and "has no audio encoder" in err and err.count("\n") == 1, err
        code, _, err = _run(capsys, "retrieve", "--model", str(video_text_folder), "--modality", modality,
                            "--videos", files["av"], "--captions", *CAPTIONS, "--no-progress")  # fmt: skip
        assert code == 1 and "has no audio encoder" in err and err.strip().count("\n") == 0, err


def test_embed_skips_undecodable_audio_and_fails_on_request(av_folder, files, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    output = tmp_path / "a.jsonl"
    code, _, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio", files["short"],
                        str(broken), "--output", str(output), "--no-progress")  # fmt: skip
    assert code == 3 and "skipped" in err and "broken.wav" in err
    assert [r["video"] for r in read_records(output)] == [files["short"]]
    code, _, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio", str(broken),
                        "--output", str(tmp_path / "b.jsonl"), "--on-error", "fail", "--no-progress")  # fmt: skip
    assert code == 1 and "broken.wav" in err


# ------------------------------------------------------------------------------------------------------------------
# retrieve --modality
# ------------------------------------------------------------------------------------------------------------------
def _ranked_lines(out: str, header: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    return [line for line in lines[start + 1 : start + 1 + len(CAPTIONS)]]


def test_retrieve_audio_reranks_with_the_atm_head(av_folder, files, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code, out, err = _run(capsys, "retrieve", "--model", str(av_folder), "--modality", "audio",
                          "--videos", files["av"], files["silent"], files["long"], files["short"],
                          "--captions", *CAPTIONS, "--top-k", "4", "--output", str(report_path), "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "note: example1.mp4 has no audio track" in out
    assert "== text -> audio (cosine) ==" in out
    assert "== text -> audio (reranked) == ordered by the audio-text matching head's match logit (atm)" in out
    for line in _ranked_lines(out, "== text -> audio (reranked)"):
        assert line.count("atm=") == 4 and "match=" not in line
    report = json.loads(report_path.read_text())
    assert report["modality"] == "audio" and report["no_audio_track"] == [files["silent"]]
    # the printed scores are the model's: cosine of get_audio_features, atm logits of the matching head
    model, processor = load_model_and_processor(av_folder)
    results = retrieve(model, processor, [files["av"], files["silent"], files["long"], files["short"]], CAPTIONS,
                       modality="audio", progress=False)  # fmt: skip
    assert results.has_rerank and results.modality == "audio"
    hits = report["text_to_video"]["reranked"][CAPTIONS[0]]
    best = hits[0]
    features = processor.process_audio(audio=[best["name"]]) if best["name"].endswith(".wav") else \
        processor.process_audio(videos=[best["name"]])  # fmt: skip
    tokens = processor.tokenize([CAPTIONS[0]])
    with torch.no_grad():
        logit = model.matching_scores(input_features=features["input_features"], input_ids=tokens["input_ids"],
                                      attention_mask=tokens["attention_mask"], modality="audio").match_logits  # fmt: skip
    assert abs(logit.item() - best["match_logit"]) < 1e-5


def test_retrieve_audio_without_atm_head_ranks_by_cosine(av_folder_without_atm, files, capsys):
    common = ["--model", str(av_folder_without_atm), "--modality", "audio", "--videos", files["av"], files["short"],
              "--captions", *CAPTIONS, "--no-progress"]  # fmt: skip
    code, out, err = _run(capsys, "retrieve", *common)
    assert code == 0, err
    assert "no audio-text matching head (atm_head)" in err and "ranked by cosine" in err
    assert "== text -> audio (cosine) ==" in out and "(reranked)" not in out and "atm=" not in out
    code, _, err = _run(capsys, "retrieve", *common, "--rerank")
    assert code == 1 and "needs an audio-text matching head (atm_head)" in err and err.strip().count("\n") == 0


def test_retrieve_audio_video_reranks_with_the_avtm_head(av_folder_without_atm, files, capsys):
    code, out, err = _run(capsys, "retrieve", "--model", str(av_folder_without_atm), "--modality", "audio_video",
                          "--videos", files["av"], files["silent"], "--captions", *CAPTIONS, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "note: example1.mp4 has no audio track" in out
    assert "== text -> audio+video (reranked) == ordered by the audio+video-text matching head's match logit (avtm)" in out
    for line in _ranked_lines(out, "== text -> audio+video (reranked)"):
        assert line.count("avtm=") == 2
    code, _, err = _run(capsys, "retrieve", "--model", str(av_folder_without_atm), "--modality", "audio_video",
                        "--videos", files["short"], "--captions", *CAPTIONS)  # fmt: skip
    assert code == 1 and "needs video files" in err


def test_retrieve_video_is_the_default_and_unchanged_on_an_audio_model(av_folder, files, capsys):
    code, out, err = _run(capsys, "retrieve", "--model", str(av_folder), "--videos", files["av"], files["silent"],
                          "--captions", *CAPTIONS, "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "== text -> video (reranked) ==" in out and "match=" in out and "no audio track" not in out
    model, processor = load_model_and_processor(av_folder)
    videos = embed_videos(model, processor, [files["av"], files["silent"]], progress=False)
    audio = embed_videos(model, processor, [files["av"], files["silent"]], progress=False, modality="audio")
    assert videos.modality == "video" and audio.modality == "audio"
    assert not torch.allclose(videos.video_embeds, audio.video_embeds)


def test_dual_encoder_folder_and_processor_fallback(tmp_path, files):
    """An audio-video-text folder whose processor has no feature extractor gets the original's
    (BeatsFeatureExtractor()); the dual encoder (no heads) ranks audio by cosine through the Python API."""
    folder = _save(tmp_path / "dual", _config(), model_class=InternVideo2Model, with_extractor=False)
    model, processor = load_model_and_processor(folder)
    assert isinstance(processor.feature_extractor, BeatsFeatureExtractor)
    results = retrieve(model, processor, [files["short"], files["long"]], CAPTIONS, modality="audio", progress=False)
    assert not results.has_rerank and results.similarity.shape == (2, 3)


def test_index_and_search_follow_the_recorded_audio_modality(av_folder, files, tmp_path, capsys):
    """`index` takes `audio_embeds` from audio embeddings and records the modality; `search --video` then encodes
    the query file's sound (an audio index is never queried with video features)."""
    pytest.importorskip("faiss")
    embeddings, index_dir = tmp_path / "audio.parquet", tmp_path / "index"
    code, _, err = _run(capsys, "embed", "--model", str(av_folder), "--modality", "audio", files["short"],
                        files["long"], files["av"], "--output", str(embeddings), "--no-progress")  # fmt: skip
    assert code == 0, err
    code, _, err = _run(capsys, "index", str(embeddings), "--output", str(index_dir))
    assert code == 0 and "audio_embeds (audio)" in err, err
    assert json.loads((index_dir / "index.json").read_text())["modality"] == "audio"
    code, out, err = _run(capsys, "search", "--index", str(index_dir), "--video", files["av"], "--json")
    assert code == 0, err
    hits = json.loads(out)["results"]
    # the query's audio embedding is the indexed one of the same file: cosine 1 with itself, ranked first
    assert hits[0]["source_path"] == files["av"] and abs(hits[0]["score"] - 1.0) < 1e-5
    model, processor = load_model_and_processor(av_folder)
    audio = embed_videos(model, processor, [files["av"], files["short"], files["long"]], progress=False,
                         modality="audio")  # fmt: skip
    expected = {name: float(score) for name, score in zip(audio.names, audio.video_embeds @ audio.video_embeds[0])}
    for hit in hits:
        assert abs(hit["score"] - expected[hit["source_path"]]) < 1e-5


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".npy"])
def test_saved_embeddings_keep_their_modality(av_folder_without_atm, files, tmp_path, suffix):
    from transformers_internvideo2.tasks.retrieval import save_video_embeddings

    model, processor = load_model_and_processor(av_folder_without_atm)
    fused = embed_videos(model, processor, [files["av"]], progress=False, modality="audio_video")
    assert fused.pooler_output is None and fused.no_audio_track == []
    save_video_embeddings(fused, tmp_path / f"e{suffix}")
    loaded = load_video_embeddings(tmp_path / f"e{suffix}")
    assert loaded.modality == "audio_video" and loaded.pooler_output is None
    torch.testing.assert_close(loaded.video_embeds, fused.video_embeds, rtol=0, atol=0)
    with pytest.raises(ValueError, match="audio_video embeddings, but modality='audio'"):
        retrieve(model, processor, loaded, CAPTIONS, rerank=False, modality="audio", progress=False)
    # Python API: audio re-ranking on a model without atm_head is an error that says so
    with pytest.raises(ValueError, match="no audio-text matching head"):
        retrieve(model, processor, [files["short"]], CAPTIONS, rerank=True, modality="audio", progress=False)


def test_converted_original_audio_video_checkpoint_end_to_end(shared_dir, files, tmp_path, capsys):
    """The ORIGINAL au02 checkpoint (InternVideo2_Stage2_audiovisual, trained tiny weights, with atm_head) converted by
    `convert_and_save_stage2`: the folder carries the audio feature extractor, and `embed --modality audio` on it gives
    get_audio_features of the processor's features."""
    au02 = shared_dir / "fixtures" / "original" / "au02_stage2_av_tiny"
    if not (au02 / "checkpoint.pth").is_file():
        pytest.skip(f"fixture not found: {au02}")
    from transformers import AutoProcessor

    from transformers_internvideo2.conversion import internvideo2_video_text as cv

    info = json.loads((au02 / "case.json").read_text())
    state_dict = cv.load_stage2_checkpoint(au02 / "checkpoint.pth")
    config = cv.stage2_config_from_original(
        info["vision_encoder_kwargs"], json.loads((au02 / "config_bert_tiny.json").read_text()),
        projection_dim=info["config"]["model"]["contra_dim"], temperature=info["config"]["model"]["temp"],
        use_vision_token_projection=True, vision_token_projection_size=info["config"]["model"]["av_concat_dim"],
        audio_config=cv.audio_config_for(state_dict, au02 / "beats.pth"), use_audio_matching_head=True,
    )  # fmt: skip
    folder = tmp_path / "au02"
    cv.convert_and_save_stage2(au02 / "checkpoint.pth", folder, config=config)
    assert isinstance(AutoProcessor.from_pretrained(folder).feature_extractor, BeatsFeatureExtractor)
    # (its tiny BERT has a 120-token vocabulary, so captions of the real tokenizer do not fit it: audio only here)
    output = tmp_path / "audio.safetensors"
    code, _, err = _run(capsys, "embed", "--model", str(folder), "--modality", "audio", files["short"], files["av"],
                        "--output", str(output), "--no-progress")  # fmt: skip
    assert code == 0, err
    model, processor = load_model_and_processor(folder)
    features = torch.cat([processor.process_audio(audio=[files["short"]])["input_features"],
                          processor.process_audio(videos=[files["av"]])["input_features"]])  # fmt: skip
    with torch.no_grad():
        expected = model.get_audio_features(features).pooler_output
    torch.testing.assert_close(load_video_embeddings(output).video_embeds, expected, rtol=0, atol=1e-6)
