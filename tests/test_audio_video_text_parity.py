"""Parity of the 6B audio-video-text model (the video-text family with `audio_config`) with the ORIGINAL
`InternVideo2_Stage2_audiovisual` (fixture au02, float32, atol 1e-5, eager and sdpa), its conversion with a separate
`beats.pth`, the real-size key layout with audio, and the per-modality retrieval re-ranking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_internvideo2 import InternVideo2ForRetrieval, InternVideo2Model
from transformers_internvideo2.conversion import internvideo2_video_text as cv
from transformers_internvideo2.conversion.core import ConversionError
from transformers_internvideo2.tasks.retrieval import original_evaluation_matrices, rerank_with_matching_head


REPO_ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-5
_SHARED = Path(os.environ.get("INTERNVIDEO2_SHARED_DIR") or REPO_ROOT.parent / "shared").expanduser()
FIXTURES = _SHARED / "fixtures" / "original"
AU02 = FIXTURES / "au02_stage2_av_tiny"
needs_fixtures = pytest.mark.skipif(not (AU02 / "case.json").is_file(), reason=f"fixtures not found under {FIXTURES}")


def _max_diff(ours: torch.Tensor, reference: torch.Tensor) -> float:
    assert tuple(ours.shape) == tuple(reference.shape), f"shape {tuple(ours.shape)} vs {tuple(reference.shape)}"
    return (ours.float() - reference.float()).abs().max().item()


def _au02_config(state_dict, info, with_audio_matching: bool = True):
    model_cfg = info["config"]["model"]
    bert = json.loads((AU02 / "config_bert_tiny.json").read_text())
    return cv.stage2_config_from_original(
        info["vision_encoder_kwargs"], bert,
        projection_dim=model_cfg["contra_dim"], temperature=model_cfg["temp"],
        use_vision_token_projection=True, vision_token_projection_size=model_cfg["av_concat_dim"],
        audio_config=cv.audio_config_for(state_dict, AU02 / "beats.pth"),
        use_audio_matching_head=with_audio_matching,
    )  # fmt: skip


def _au02_model(attn_implementation: str = "eager", for_retrieval: bool = True):
    info = json.loads((AU02 / "case.json").read_text())
    state_dict = cv.load_stage2_checkpoint(AU02 / "checkpoint.pth")
    config = _au02_config(state_dict, info)
    config._attn_implementation = attn_implementation
    config.audio_config._attn_implementation = attn_implementation
    model, result = cv.convert_stage2_checkpoint(state_dict, config, for_retrieval=for_retrieval)
    return model, result, state_dict


@needs_fixtures
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_audio_video_text_model_parity(attn_implementation):
    model, result, _ = _au02_model(attn_implementation)
    assert model.internvideo2.audio_model.config._attn_implementation == attn_implementation
    inputs, outputs = load_file(AU02 / "inputs.safetensors"), load_file(AU02 / "outputs.safetensors")
    fbank, video, ids, mask = inputs["fbank"], inputs["video"], inputs["input_ids"], inputs["attention_mask"]
    num_media, num_texts = video.shape[0], ids.shape[0]
    diffs = {}
    with torch.no_grad():
        audio = model.get_audio_features(fbank)
        audio_raw = model.get_audio_features(fbank, normalize=False)
        video_out = model.get_video_features(video)
        video_raw = model.get_video_features(video, normalize=False)
        text = model.get_text_features(ids, mask)
        both = model.get_audio_video_features(fbank, video)
        both_raw = model.get_audio_video_features(fbank, video, normalize=False)
        audio_tokens = model.audio_fusion_tokens(audio.last_hidden_state)
        video_tokens = model.fusion_tokens(video_out.last_hidden_state)
        diffs["beats_tokens"] = _max_diff(audio.last_hidden_state, outputs["beats_tokens"])
        diffs["pooled_audio_embeds"] = _max_diff(audio.audio_pooler_output, outputs["pooled_audio_embeds"])
        diffs["audio_embeds"] = _max_diff(audio_tokens, outputs["audio_embeds"])
        diffs["audio_proj"] = _max_diff(audio_raw.pooler_output, outputs["audio_proj"])
        diffs["audio_feat_normalized"] = _max_diff(audio.pooler_output, outputs["audio_feat_normalized"])
        diffs["vision_encoder_x_vis"] = _max_diff(video_out.last_hidden_state, outputs["vision_encoder_x_vis"])
        diffs["vision_embeds"] = _max_diff(video_tokens, outputs["vision_embeds"])
        diffs["pooled_vision_embeds"] = _max_diff(video_out.vision_pooler_output, outputs["pooled_vision_embeds"])
        diffs["vision_proj"] = _max_diff(video_raw.pooler_output, outputs["vision_proj"])
        diffs["vision_feat_normalized"] = _max_diff(video_out.pooler_output, outputs["vision_feat_normalized"])
        diffs["av_fused_proj"] = _max_diff(both_raw.pooler_output, outputs["av_fused_proj"])
        diffs["av_fused_feat_normalized"] = _max_diff(both.pooler_output, outputs["av_fused_feat_normalized"])
        diffs["text_embeds"] = _max_diff(text.last_hidden_state, outputs["text_embeds"])
        diffs["text_cls_proj"] = _max_diff(model.get_text_features(ids, mask, normalize=False).pooler_output, outputs["text_cls_proj"])
        diffs["text_feat_normalized"] = _max_diff(text.pooler_output, outputs["text_feat_normalized"])
        similarity = {
            "audio": audio.pooler_output @ text.pooler_output.t(),
            "video": video_out.pooler_output @ text.pooler_output.t(),
            "audio_video": both.pooler_output @ text.pooler_output.t(),
        }
        for short, modality in (("a", "audio"), ("v", "video"), ("av", "audio_video")):
            diffs[f"sim_{short}2t"] = _max_diff(similarity[modality], outputs[f"sim_{short}2t"])
            diffs[f"sim_t2{short}"] = _max_diff(similarity[modality].t(), outputs[f"sim_t2{short}"])
        diffs["sim_a2v"] = _max_diff(audio.pooler_output @ video_out.pooler_output.t(), outputs["sim_a2v"])
        # the forward gives the same similarities, scaled by 1 / temperature
        forward = model.internvideo2(pixel_values=video, input_features=fbank, input_ids=ids, attention_mask=mask)
        temperature = model.internvideo2.clamped_temperature()
        diffs["forward.logits_per_audio"] = _max_diff(forward.logits_per_audio * temperature, outputs["sim_a2t"])
        diffs["forward.logits_per_audio_video"] = _max_diff(forward.logits_per_audio_video * temperature, outputs["sim_av2t"])
        diffs["forward.logits_per_video"] = _max_diff(forward.logits_per_video * temperature, outputs["sim_v2t"])
        # matching logits of every (media i, text j), per modality
        memory = {"audio": audio_tokens, "video": video_tokens, "audio_video": both.last_hidden_state}
        for name, modality in (("atm", "audio"), ("itm", "video"), ("avtm", "audio_video")):
            logits = torch.stack([
                model.matching_scores(video_tokens=memory[modality][i : i + 1], input_ids=ids, attention_mask=mask,
                                      modality=modality).logits
                for i in range(num_media)
            ])  # fmt: skip
            diffs[f"{name}_logits"] = _max_diff(logits, outputs[f"{name}_logits"])
            diffs[f"{name}_scores"] = _max_diff(logits[..., 1], outputs[f"{name}_scores"])
        # from raw media, one pair per (media, text)
        pairs = model.matching_scores(
            pixel_values=video.repeat_interleave(num_texts, 0), input_features=fbank.repeat_interleave(num_texts, 0),
            input_ids=ids.repeat(num_media, 1), attention_mask=mask.repeat(num_media, 1), modality="audio_video",
        )
        diffs["avtm_scores(raw media)"] = _max_diff(pairs.match_logits.view(num_media, num_texts), outputs["avtm_scores"])
        # MLM over all layers (the original mode='multi_modal'), text 1 with audio+video memory of media 0
        mlm = model.mlm_head(
            model.internvideo2.text_model(
                input_ids=ids[1:2], attention_mask=mask[1:2], encoder_hidden_states=both.last_hidden_state[0:1]
            ).last_hidden_state
        )
        diffs["avmlm_logits_text1_media0"] = _max_diff(mlm, outputs["avmlm_logits_text1_media0"])
        # the original evaluation() per modality (k_test = 128 >= candidates: every pair re-ranked)
        for modality in ("audio", "video", "audio_video"):
            rerank = rerank_with_matching_head(model, similarity[modality], memory[modality], ids, mask, modality=modality)
            for name, matrix in original_evaluation_matrices(similarity[modality], rerank).items():
                diffs[f"eval_{modality}_{name}"] = _max_diff(matrix, outputs[f"eval_{modality}_{name}"])
    missing = set(outputs) - set(diffs)
    assert not missing, missing
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < ATOL, f"{worst}: {diffs[worst]:.3e}"


@needs_fixtures
def test_audio_conversion_is_strict_and_explicit():
    model, result, state_dict = _au02_model()
    # every audio key renamed (tied bias copies dropped with their reason), none silently
    audio = cv.audio_keys(state_dict)
    assert all(key in result.renamed.values() or key in result.dropped for key in audio)
    assert len(result.renamed) + len(result.dropped) == len(state_dict)
    assert model.internvideo2.audio_model.config.hidden_size == 48
    info = json.loads((AU02 / "case.json").read_text())
    # audio keys without a BEATs cfg: a clear error naming both ways out
    with pytest.raises(ConversionError, match="drop-audio"):
        cv.audio_config_for(state_dict)
    # dropping is explicit
    config = _au02_config(state_dict, info)
    no_audio = cv.stage2_config_from_original(
        info["vision_encoder_kwargs"], json.loads((AU02 / "config_bert_tiny.json").read_text()),
        projection_dim=32, use_vision_token_projection=True, vision_token_projection_size=40,
    )  # fmt: skip
    with pytest.raises(ConversionError, match="audio_config"):
        cv.convert_stage2_checkpoint(state_dict, no_audio)
    dropped_model, dropped = cv.convert_stage2_checkpoint(state_dict, no_audio, drop_audio=True)
    assert all(dropped.dropped[key] == cv.AUDIO_REASON for key in audio)
    assert not dropped_model.config.has_audio
    # a model without atm_head (the released layout) rejects an atm_head key, and says audio cannot be re-ranked
    without_atm = {key: value for key, value in state_dict.items() if not key.startswith("atm_head.")}
    released, _ = cv.convert_stage2_checkpoint(without_atm, _au02_config(state_dict, info, with_audio_matching=False))
    with pytest.raises(ValueError, match="no audio-text matching head"):
        released.matching_head_for("audio")
    with pytest.raises(ConversionError, match="atm_head"):
        cv.convert_stage2_checkpoint(state_dict, _au02_config(state_dict, info, with_audio_matching=False))
    # a changed shared-bias copy is refused
    broken = dict(state_dict)
    key = "audio_encoder.encoder.layers.1.self_attn.relative_attention_bias.weight"
    broken[key] = broken[key] + 1
    with pytest.raises(ConversionError, match="differs"):
        cv.convert_stage2_checkpoint(broken, config)
    # the dual encoder drops the matching heads with a reason
    dual, dual_result = cv.convert_stage2_checkpoint(state_dict, config, for_retrieval=False)
    assert type(dual) is InternVideo2Model
    assert dual_result.dropped["avtm_head.weight"] == cv.AUDIO_MATCHING_HEAD_REASON


@needs_fixtures
def test_audio_model_save_and_reload_round_trip(tmp_path):
    from transformers import AutoModel, AutoModelForPreTraining

    model, _, _ = _au02_model()
    model.save_pretrained(tmp_path / "av")
    reloaded = AutoModelForPreTraining.from_pretrained(tmp_path / "av").eval()
    dual = AutoModel.from_pretrained(tmp_path / "av").eval()
    assert type(reloaded) is InternVideo2ForRetrieval and reloaded.config.has_audio
    inputs, outputs = load_file(AU02 / "inputs.safetensors"), load_file(AU02 / "outputs.safetensors")
    with torch.no_grad():
        a = dual.get_audio_features(inputs["fbank"]).pooler_output
        av = reloaded.get_audio_video_features(inputs["fbank"], inputs["video"]).pooler_output
    assert _max_diff(a, outputs["audio_feat_normalized"]) < ATOL
    assert _max_diff(av, outputs["av_fused_feat_normalized"]) < ATOL


def test_video_text_model_without_audio_rejects_audio_calls():
    from transformers_internvideo2 import InternVideo2Config

    config = InternVideo2Config(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           image_size=28, patch_size=14, num_frames=2, pooler_output_size=24, clip_teacher_hidden_size=0),
        text_config=dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, fusion_layer=1, encoder_width=32),
        projection_dim=16,
    )  # fmt: skip
    assert config.audio_config is None and "audio_config" in config.to_dict()
    model = InternVideo2ForRetrieval(config).eval()
    with pytest.raises(ValueError, match="no audio encoder"):
        model.get_audio_features(torch.zeros(1, 32, 64))
    with pytest.raises(ValueError, match="audio-video-text"):
        model.matching_head_for("audio_video")
    with pytest.raises(Exception, match="needs use_vision_token_projection"):
        InternVideo2Config(audio_config={}, use_vision_token_projection=False)
