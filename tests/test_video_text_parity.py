"""Numerical parity of the stage-2 (video-text) port with the ORIGINAL implementation, and key coverage of the
official stage-2 checkpoint layouts.

Fixtures (shared/fixtures/original, see its README.md), all float32, eval mode, atol 1e-5:

* mm01 / mm02: the stage-2 vision encoder (`PretrainInternVideo2` of multi_modality) with a separate image position
  table / the time-mean image table: video without and with a token mask, one image, and the output of the
  second-to-last block (`x_vis_return_idx=-2`), through `InternVideo2ForPreTraining`.
* mm03: the full `InternVideo2_Stage2_visual` (tiny BERT with 2 text + 2 fusion layers): embeddings, similarity,
  matching logits for every pair, MLM logits and the six matrices of the original `evaluation()`.
* mm06: position embeddings learned for 4 frames at 28 px used at 8 frames and 42 px: our forward-time resampling
  against the original load-time interpolation, and the target model's outputs.
* keys/mm_stage2_{1B,6B}.json: every key of the official layouts converted on the meta device.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_internvideo2 import (
    InternVideo2Config,
    InternVideo2ForPreTraining,
    InternVideo2ForRetrieval,
    InternVideo2Model,
)
from transformers_internvideo2.conversion import internvideo2_video_text as cv
from transformers_internvideo2.conversion.core import ConversionError
from transformers_internvideo2.tasks.retrieval import original_evaluation_matrices, rerank_with_matching_head


REPO_ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-5


def _fixtures_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    shared = Path(env).expanduser() if env else REPO_ROOT.parent / "shared"
    return shared / "fixtures" / "original"


FIXTURES = _fixtures_root()
needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "mm03_stage2_full_bert" / "case.json").is_file(), reason=f"fixtures not found under {FIXTURES}"
)
ATTENTION = ["eager", "sdpa"]


def _max_diff(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert tuple(ours.shape) == tuple(reference.shape), f"shape {tuple(ours.shape)} vs {tuple(reference.shape)}"
    return (ours.float() - reference.float()).abs().max().item()


def _case(name: str):
    folder = FIXTURES / name
    info = json.loads((folder / "case.json").read_text())
    checkpoint = torch.load(folder / "checkpoint.pth", map_location="cpu", weights_only=True)
    return folder, info, cv.unwrap_stage2_checkpoint(checkpoint)


def _stage2_vision_model(info_kwargs: dict, state_dict: dict, attn_implementation: str) -> InternVideo2ForPreTraining:
    config = cv.vision_config_from_original(info_kwargs)
    config._attn_implementation = attn_implementation
    with torch.device("meta"):
        model = InternVideo2ForPreTraining(config)
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    result = cv.convert_stage2_vision_state_dict(state_dict, config, with_heads=True, expected=expected)
    assert not result.dropped
    model.load_state_dict(result.state_dict, strict=True, assign=True)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# mm01 / mm02: stage-2 vision encoder
# ----------------------------------------------------------------------------------------------------------------
@needs_fixtures
@pytest.mark.parametrize("attn_implementation", ATTENTION)
@pytest.mark.parametrize("case", ["mm01_s2vision_sepimgpos", "mm02_s2vision_sharedimgpos"])
def test_stage2_vision_encoder_parity(case, attn_implementation):
    folder, info, state_dict = _case(case)
    model = _stage2_vision_model(info["constructor_kwargs"], state_dict, attn_implementation)
    expected_image_type = "separate" if info["constructor_kwargs"]["sep_image_video_pos_embed"] else "temporal_mean"
    assert model.config.image_position_embedding_type == expected_image_type
    inputs, outputs = load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")
    video = inputs["video"].transpose(1, 2)  # original [B, C, T, H, W] -> ours [B, T, C, H, W]
    image = inputs["image"].transpose(1, 2)
    calls = {
        "video_nomask": dict(pixel_values=video),
        "video_mask": dict(pixel_values=video, bool_masked_pos=inputs["bool_masked_pos"]),
        "image": dict(pixel_values=image),
    }
    diffs = {}
    with torch.no_grad():
        for call, kwargs in calls.items():
            ours = model(**kwargs, output_hidden_states=True)
            pairs = {
                "x_vis": ours.last_hidden_state,
                "x_pool_vis": ours.pooler_output,
                "x_clip_align": ours.clip_aligned,
                "x_align": ours.clip_final_aligned,
                "embeddings": ours.hidden_states[0],
            }
            for block in range(model.config.num_hidden_layers):
                pairs[f"hidden_states.block{block}"] = ours.hidden_states[block + 1]
            for name, tensor in pairs.items():
                diffs[f"{call}.{name}"] = _max_diff(tensor, outputs[f"{call}.{name}"])
        # the original's x_vis_return_idx=-2: the output of the second-to-last block
        hidden = model.internvideo2(video, output_hidden_states=True).hidden_states
        diffs["video_nomask_visonly_idx-2.x_vis"] = _max_diff(hidden[-2], outputs["video_nomask_visonly_idx-2.x_vis"])
    assert len(diffs) == len(outputs), sorted(set(outputs) - set(diffs))
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < ATOL, f"{worst}: {diffs[worst]:.3e}"


# ----------------------------------------------------------------------------------------------------------------
# mm03: full stage-2 model
# ----------------------------------------------------------------------------------------------------------------
def _mm03_model(attn_implementation: str = "eager", for_retrieval: bool = True, keep_heads: bool = False):
    folder, info, state_dict = _case("mm03_stage2_full_bert")
    bert_config = json.loads((folder / "config_bert_tiny.json").read_text())
    config = cv.stage2_config_from_original(
        info["vision_encoder_kwargs"],
        bert_config,
        projection_dim=info["config"]["model"]["embed_dim"],
        temperature=info["config"]["model"]["temp"],
        keep_vision_distillation_heads=keep_heads,
    )
    config._attn_implementation = attn_implementation
    model, result = cv.convert_stage2_checkpoint(state_dict, config, for_retrieval=for_retrieval)
    return folder, model, result


@needs_fixtures
@pytest.mark.parametrize("attn_implementation", ATTENTION)
def test_stage2_full_model_parity(attn_implementation):
    folder, model, result = _mm03_model(attn_implementation)
    assert model.config.text_config.fusion_layer == 2 and model.config.text_config.encoder_width == 64
    # the distillation heads are dropped with a reason, nothing silently
    assert {reason for key, reason in result.dropped.items() if "clip_" in key} == {cv.DISTILLATION_HEAD_REASON}
    assert model.mlm_head.decoder.weight is model.internvideo2.text_model.embeddings.word_embeddings.weight
    inputs, outputs = load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")
    video, ids, mask = inputs["video"], inputs["input_ids"], inputs["attention_mask"]
    diffs = {}
    with torch.no_grad():
        video_out = model.get_video_features(video)
        video_tokens = model.fusion_tokens(video_out.last_hidden_state)
        text_out = model.get_text_features(ids, mask)
        diffs["vision_embeds"] = _max_diff(video_tokens, outputs["vision_embeds"])
        diffs["pooled_vision_embeds"] = _max_diff(video_out.vision_pooler_output, outputs["pooled_vision_embeds"])
        diffs["vision_proj"] = _max_diff(model.get_video_features(video, normalize=False).pooler_output, outputs["vision_proj"])
        diffs["vision_feat_normalized"] = _max_diff(video_out.pooler_output, outputs["vision_feat_normalized"])
        diffs["text_embeds"] = _max_diff(text_out.last_hidden_state, outputs["text_embeds"])
        diffs["text_cls_proj"] = _max_diff(model.get_text_features(ids, mask, normalize=False).pooler_output, outputs["text_cls_proj"])
        diffs["text_feat_normalized"] = _max_diff(text_out.pooler_output, outputs["text_feat_normalized"])
        similarity = video_out.pooler_output @ text_out.pooler_output.t()
        diffs["sim_v2t"] = _max_diff(similarity, outputs["sim_v2t"])
        diffs["sim_t2v"] = _max_diff(similarity.t(), outputs["sim_t2v"])
        # the dual-encoder forward gives the same similarities (scaled by 1 / temperature)
        dual = _mm03_model(attn_implementation, for_retrieval=False)[1]
        dual_out = dual(pixel_values=video, input_ids=ids, attention_mask=mask)
        temperature = dual.temperature.clamp(dual.config.temperature_min, dual.config.temperature_max)
        diffs["logits_per_video*temperature"] = _max_diff(dual_out.logits_per_video * temperature, outputs["sim_v2t"])
        # matching logits of every (video i, text j): text j attends to video i's tokens
        itm = torch.stack(
            [
                model.matching_scores(video_tokens=video_tokens[i : i + 1], input_ids=ids, attention_mask=mask).logits
                for i in range(video.shape[0])
            ]
        )
        diffs["itm_logits"] = _max_diff(itm, outputs["itm_logits"])
        pairs = model.matching_scores(
            pixel_values=video.repeat_interleave(3, dim=0), input_ids=ids.repeat(2, 1), attention_mask=mask.repeat(2, 1)
        )
        diffs["itm_scores_v2t"] = _max_diff(pairs.match_logits.view(2, 3), outputs["itm_scores_v2t"])
        # MLM head over all layers (the original's mode='multi_modal'), text 1 with video 0
        mlm = model.mlm_head(
            model.internvideo2.text_model(
                input_ids=ids[1:2], attention_mask=mask[1:2], encoder_hidden_states=video_tokens[0:1]
            ).last_hidden_state
        )
        diffs["mlm_logits_text1_video0"] = _max_diff(mlm, outputs["mlm_logits_text1_video0"])
        # the original evaluation(): cosine, dual-softmax and matching-head re-ranked matrices (k=128 >= candidates)
        rerank = rerank_with_matching_head(model, similarity, video_tokens, ids, mask)
        for name, matrix in original_evaluation_matrices(similarity, rerank).items():
            diffs[f"eval_{name}"] = _max_diff(matrix, outputs[f"eval_{name}"])
    missing = set(outputs) - set(diffs)
    assert not missing, missing
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < ATOL, f"{worst}: {diffs[worst]:.3e}"


@needs_fixtures
def test_stage2_rerank_top_k_and_fill():
    """With k smaller than the collection, only the top-k by cosine carry matching logits; the rest hold -100."""
    folder, model, _ = _mm03_model()
    inputs, outputs = load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")
    with torch.no_grad():
        video_out = model.get_video_features(inputs["video"])
        text_out = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        similarity = video_out.pooler_output @ text_out.pooler_output.t()
        rerank = rerank_with_matching_head(
            model, similarity, model.fusion_tokens(video_out.last_hidden_state),
            text_hidden_states=text_out.last_hidden_state, text_mask=inputs["attention_mask"], k=1,
        )
    itm = outputs["itm_scores_v2t"]
    for video in range(2):
        best_text = similarity[video].argmax()
        row = rerank.video_to_text[video]
        assert torch.allclose(row[best_text], itm[video, best_text], atol=ATOL)
        assert torch.all(row[torch.arange(3) != best_text] == -100)
    for text in range(3):
        best_video = similarity[:, text].argmax()
        row = rerank.text_to_video[text]
        assert torch.allclose(row[best_video], itm[best_video, text], atol=ATOL)
        assert torch.all(row[torch.arange(2) != best_video] == -100)


@needs_fixtures
def test_stage2_keep_distillation_heads_and_dual_encoder_target():
    folder, retrieval, _ = _mm03_model(keep_heads=True)
    assert isinstance(retrieval.internvideo2.vision_model, InternVideo2ForPreTraining)
    _, dual, result = _mm03_model(for_retrieval=False)
    assert type(dual) is InternVideo2Model
    assert result.dropped["itm_head.weight"] == cv.MATCHING_HEAD_REASON
    assert result.dropped["text_encoder.cls.predictions.transform.dense.weight"] == cv.MLM_HEAD_REASON
    inputs = load_file(folder / "inputs.safetensors")
    with torch.no_grad():
        a = retrieval.get_video_features(inputs["video"]).pooler_output
        b = dual.get_video_features(inputs["video"]).pooler_output
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------------------------------------------
# mm06: position-embedding resampling 4 -> 8 frames, 28 -> 42 px
# ----------------------------------------------------------------------------------------------------------------
@needs_fixtures
def test_position_embedding_resampling_matches_original_interpolation():
    folder, info, state_dict = _case("mm06_pos_interp_t4s28_to_t8s42")
    model = _stage2_vision_model(info["source_constructor_kwargs"], state_dict, "eager")
    outputs = load_file(folder / "outputs.safetensors")
    video = load_file(folder / "inputs.safetensors")["video"].transpose(1, 2)
    target = info["target_constructor_kwargs"]
    grid = (target["num_frames"], target["img_size"] // 14, target["img_size"] // 14)
    with torch.no_grad():
        diffs = {
            "interpolated.pos_embed": _max_diff(
                model.internvideo2.embeddings.position_embeddings(*grid, interpolate=True), outputs["interpolated.pos_embed"]
            ),
            "interpolated.clip_pos_embed": _max_diff(
                model.clip_position_embeddings(*grid, interpolate=True), outputs["interpolated.clip_pos_embed"]
            ),
        }
        ours = model(video, interpolate_pos_encoding=True)
        diffs["target.x_vis"] = _max_diff(ours.last_hidden_state, outputs["target.x_vis"])
        diffs["target.x_pool_vis"] = _max_diff(ours.pooler_output, outputs["target.x_pool_vis"])
        diffs["target.x_clip_align"] = _max_diff(ours.clip_aligned, outputs["target.x_clip_align"])
        diffs["target.x_align"] = _max_diff(ours.clip_final_aligned, outputs["target.x_align"])
    assert set(diffs) == set(outputs)
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < ATOL, f"{worst}: {diffs[worst]:.3e}"
    with pytest.raises(ValueError, match="interpolate_pos_encoding"):
        model(video, interpolate_pos_encoding=False)


# ----------------------------------------------------------------------------------------------------------------
# Key coverage of the official layouts (meta device)
# ----------------------------------------------------------------------------------------------------------------
def _meta_state_dict(family: str) -> tuple[dict, dict]:
    info = json.loads((FIXTURES / "keys" / f"{family}.json").read_text())
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in info["state_dict"].items()}
    # integer buffer in the original
    for key in state_dict:
        if key.endswith("position_ids"):
            state_dict[key] = torch.empty(info["state_dict"][key], dtype=torch.long, device="meta")
    return info, state_dict


def _unique_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@needs_fixtures
def test_stage2_1b_key_coverage():
    info, state_dict = _meta_state_dict("mm_stage2_1B")
    config = cv.stage2_config_from_state_dict(state_dict, keep_vision_distillation_heads=True)
    assert config.vision_config.num_frames == 4  # read from pos_embed (1 + 4 * 256 rows)
    assert config.vision_config.image_position_embedding_type == "separate"
    assert config.text_config.fusion_layer == 19 and config.text_config.encoder_width == 1408
    assert config.projection_dim == 512 and not config.use_vision_token_projection
    preset = InternVideo2Config.from_preset("internvideo2-stage2-1b", keep_vision_distillation_heads=True)
    assert config.to_diff_dict() == preset.to_diff_dict()
    model, result = cv.convert_stage2_checkpoint(state_dict, config)
    assert len(result.renamed) + len(result.dropped) == len(state_dict)
    assert set(result.dropped) == {
        "text_encoder.bert.embeddings.position_ids",
        "text_encoder.cls.predictions.decoder.weight",
        "text_encoder.cls.predictions.decoder.bias",
    }
    # same parameter count as the original model, whose count lists the tied MLM decoder weight and bias again
    vocab, width = model.get_input_embeddings().weight.shape
    assert _unique_parameters(model) + vocab * width + vocab == info["num_parameters"]

    # default: distillation heads dropped, each with the reason
    model, result = cv.convert_stage2_checkpoint(state_dict)
    heads = [key for key in state_dict if "clip_decoder" in key or "clip_pos" in key or "clip_img_pos" in key]
    assert len(heads) == 6 * 4 + 4 + 2
    assert all(result.dropped[key] == cv.DISTILLATION_HEAD_REASON for key in heads)


@needs_fixtures
def test_stage2_6b_key_coverage_and_audio():
    info, state_dict = _meta_state_dict("mm_stage2_6B")
    audio = cv.audio_keys(state_dict)
    assert len(audio) == 250 + 2 + 4 + 2 + 2
    # audio keys without a BEATs cfg: an error naming the ways out
    with pytest.raises(ConversionError, match="drop-audio"):
        cv.convert_stage2_checkpoint(state_dict)
    # the whole layout, audio included, with the released BEATs structure (meta device)
    model, result = cv.convert_stage2_checkpoint(state_dict, audio_preset="beats-iter3")
    config = model.config
    assert config.has_audio and not config.use_audio_matching_head  # the released layout has no atm_head
    assert config.audio_config.hidden_size == 768 and config.audio_config.num_hidden_layers == 12
    assert len(result.renamed) + len(result.dropped) == len(state_dict)
    assert all(key in result.renamed.values() or "relative position bias" in result.dropped[key] for key in audio)
    assert hasattr(model, "audio_video_matching_head") and not hasattr(model, "audio_matching_head")
    # dropping the audio is an explicit opt-in
    model, result = cv.convert_stage2_checkpoint(state_dict, drop_audio=True)
    config = model.config
    assert config.vision_config.hidden_size == 3200 and config.vision_config.num_frames == 4
    assert config.vision_config.image_position_embedding_type == "temporal_mean"
    assert config.use_vision_token_projection and config.vision_token_projection_size == 768
    assert config.text_config.encoder_width == 768 and config.projection_dim == 768
    assert not config.has_audio
    assert all(result.dropped[key] == cv.AUDIO_REASON for key in audio)
    assert len(result.renamed) + len(result.dropped) == len(state_dict)
    # an unknown key is an error, not silently ignored
    state_dict["vision_encoder.something_new"] = torch.empty(3, device="meta")
    with pytest.raises(ConversionError, match="something_new"):
        cv.convert_stage2_checkpoint(state_dict, drop_audio=True)


@needs_fixtures
def test_stage2_conversion_rejects_shape_mismatch():
    folder, info, state_dict = _case("mm03_stage2_full_bert")
    bert_config = json.loads((folder / "config_bert_tiny.json").read_text())
    config = cv.stage2_config_from_original(info["vision_encoder_kwargs"], bert_config, projection_dim=16)
    with pytest.raises(ConversionError, match="vision_proj"):
        cv.convert_stage2_checkpoint(state_dict, config)
    untied = dict(state_dict)
    untied["text_encoder.cls.predictions.decoder.weight"] = untied["text_encoder.cls.predictions.decoder.weight"] + 1
    with pytest.raises(ConversionError, match="not tied"):
        cv.convert_stage2_checkpoint(untied, _mm03_model()[1].config)


@needs_fixtures
def test_convert_and_save_stage2_round_trip(tmp_path):
    from transformers import AutoModel, AutoModelForPreTraining

    folder, model, _ = _mm03_model()
    out = tmp_path / "converted"
    saved, result = cv.convert_and_save_stage2(
        folder / "checkpoint.pth", out, config=model.config, save_processor=False
    )
    reloaded = AutoModelForPreTraining.from_pretrained(out).eval()
    dual = AutoModel.from_pretrained(out).eval()
    assert type(reloaded) is InternVideo2ForRetrieval and type(dual) is InternVideo2Model
    inputs, outputs = load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")
    with torch.no_grad():
        assert _max_diff(dual.get_video_features(inputs["video"]).pooler_output, outputs["vision_feat_normalized"]) < ATOL
        scores = reloaded.matching_scores(
            inputs["video"][:1], inputs["input_ids"], inputs["attention_mask"]
        ).logits
    assert _max_diff(scores, outputs["itm_logits"][0]) < ATOL


def test_conversion_script_dispatches_stage2(tmp_path):
    import subprocess
    import sys

    checkpoint = FIXTURES / "mm03_stage2_full_bert" / "checkpoint.pth"
    if not checkpoint.is_file():
        pytest.skip("fixtures not found")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "conversion" / "convert_internvideo2_to_hf.py"), "--family", "stage2",
         "--checkpoint", str(checkpoint), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    # the tiny fixture is not an official size: a clear error, exit status 1
    assert result.returncode == 1
    assert "not an official stage-2 size" in result.stderr
