"""Numerical parity of InternVideo-MM (InternVideo v1's multimodal video encoder) with the ORIGINAL code on fixture
`v101_mm_clip_uniformerv2_tiny` (shared/fixtures/original, see its README.md): the lightning checkpoint converted by
`conversion.internvideo_mm`, every saved output and intermediate within 1e-5 in float32, eager and SDPA attention.

The fixture stores the towers' intermediates in the original sequence-first layout; they are compared after a
transpose of ours (ours are batch-first).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_internvideo2.conversion.internvideo_mm import (
    convert_internvideo_mm_state_dict,
    internvideo_mm_config_from_state_dict,
    load_internvideo_mm_checkpoint,
)
from transformers_internvideo2.models.internvideo_mm import InternVideoMMForCaptioning


REPO_ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-5


def _shared_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared"


CASE = _shared_root() / "fixtures" / "original" / "v101_mm_clip_uniformerv2_tiny"
pytestmark = pytest.mark.skipif(not (CASE / "case.json").is_file(), reason=f"fixture not found at {CASE}")


def config_from_case(case: dict, state_dict: dict):
    """Sizes from the tensors; the heads (which the tensors cannot tell) from the case's constructor kwargs."""
    kwargs = case["videointern_kwargs"]
    decoder = case["caption_decoder"]["kwargs"]
    return internvideo_mm_config_from_state_dict(
        state_dict,
        num_frames=kwargs["t_size"],
        vision_config=dict(
            num_attention_heads=case["backbone_vit_kwargs"]["heads"], extractor_num_attention_heads=kwargs["n_head"],
            extractor_layers=kwargs["return_list"],
        ),
        text_config=dict(num_attention_heads=kwargs["transformer_heads"]),
        caption_decoder_heads=decoder["transformer_heads"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def fixture():
    case = json.loads((CASE / "case.json").read_text())
    state_dict = load_internvideo_mm_checkpoint(CASE / "checkpoint.pth")
    config = config_from_case(case, state_dict)
    result, config = convert_internvideo_mm_state_dict(state_dict, config)
    model = InternVideoMMForCaptioning(config).eval()
    model.load_state_dict(result.state_dict, strict=True)
    return model, load_file(str(CASE / "inputs.safetensors")), load_file(str(CASE / "outputs.safetensors"))


def _close(name: str, ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert tuple(ours.shape) == tuple(reference.shape), f"{name}: shape {tuple(ours.shape)} vs {tuple(reference.shape)}"
    diff = (ours.float() - reference.float()).abs().max().item()
    assert diff <= ATOL, f"{name}: max abs diff {diff:.3e} > {ATOL}"


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_every_saved_output_matches_the_original(fixture, attention):
    model, inputs, reference = fixture
    model.set_attn_implementation(attention)
    dual = model.internvideo_mm
    pixel_values = inputs["pixel_values"].transpose(1, 2)  # original (B, C, T, H, W) -> ours (B, T, C, H, W)
    batch, frames = pixel_values.shape[:2]
    input_ids = inputs["input_ids"]
    ours: dict[str, torch.Tensor] = {}
    dpe_outputs: list[torch.Tensor] = []
    hooks = [conv.register_forward_hook(lambda m, i, o: dpe_outputs.append(o))
             for conv in dual.vision_model.temporal.position_convs]  # fmt: skip
    with torch.no_grad():
        video = dual.get_video_features(pixel_values, normalize=False, output_hidden_states=True,
                                        output_extractor_states=True)  # fmt: skip
        for hook in hooks:
            hook.remove()
        text = dual.get_text_features(input_ids, normalize=False, output_hidden_states=True)
        vision_out = dual.vision_model(pixel_values)
        ours["video_embeds"] = video.pooler_output
        ours["text_embeds"] = text.pooler_output
        ours["logit_scale_exp"] = dual.logit_scale.exp()
        output = dual(pixel_values, input_ids)
        ours["logits_per_video"] = output.logits_per_video
        ours["probs"] = output.logits_per_video.softmax(-1)
        ours["balance_sigmoid"] = torch.sigmoid(dual.vision_model.temporal.balance)
        ours["vision.embeddings"] = video.hidden_states[0]
        for i, state in enumerate(video.hidden_states[1:]):
            ours[f"vision.hidden_states.block{i}"] = state.transpose(0, 1)
        for j, (conv, query) in enumerate(zip(dpe_outputs, video.extractor_states)):
            ours[f"vision.dpe{j}"] = conv
            ours[f"vision.extractor{j}.cls"] = query.transpose(0, 1)
        ours["vision.pooled"] = vision_out.pooler_output
        for i, state in enumerate(text.hidden_states[1:]):
            ours[f"text.hidden_states.block{i}"] = state.transpose(0, 1)
        ours["video_all_feats"] = video.last_hidden_state.view(batch, frames, -1, video.last_hidden_state.shape[-1]).permute(2, 0, 1, 3)
        ours["text_all_feats"] = text.last_hidden_state
        image = inputs["image_pixel_values"].transpose(1, 2)
        ours["image_embeds"] = dual.get_image_features(image[:, 0], normalize=False).pooler_output
        ours["text_embeds_masked"] = dual.get_text_features(
            input_ids, normalize=False, masked_positions=inputs["text_masked_indices"]
        ).pooler_output
        caption = model(pixel_values, input_ids[:batch])
        ours["caption_logits"] = caption.logits
        ours["caption.visual_tokens"] = caption.visual_tokens
    missing = sorted(set(reference) - set(ours))
    assert not missing, f"outputs not compared: {missing}"
    for name in sorted(reference):
        _close(name, ours[name], reference[name])


def test_video_mode_is_per_clip_and_image_mode_per_frame(fixture):
    """A clip's embedding does not depend on the other clips of the batch, and image mode treats frames alone."""
    model, inputs, _ = fixture
    dual = model.internvideo_mm
    pixel_values = inputs["pixel_values"].transpose(1, 2)
    with torch.no_grad():
        both = dual.get_video_features(pixel_values).pooler_output
        second = dual.get_video_features(pixel_values[1:]).pooler_output
        frames = dual.get_image_features(pixel_values[0]).pooler_output
        single = dual.get_video_features(pixel_values[0, 2:3, None].transpose(0, 1)).pooler_output
    torch.testing.assert_close(second, both[1:], atol=1e-6, rtol=0)
    assert frames.shape == (pixel_values.shape[1], dual.config.projection_dim)
    torch.testing.assert_close(single[0], frames[2], atol=1e-6, rtol=0)
