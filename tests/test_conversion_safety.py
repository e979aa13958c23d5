"""The converters on damaged input: non-finite weights are refused (named) before anything is written, truncated,
corrupt and malicious files give a one-line `ConversionError` (nothing is ever unpickled), and the output folder only
ever holds a complete, verified conversion (built aside, moved into place last)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from transformers_internvideo2 import cli
from transformers_internvideo2.conversion import core
from transformers_internvideo2.conversion import internvideo2_vision as vision
from transformers_internvideo2.conversion.beats import convert_and_save_beats
from transformers_internvideo2.conversion.core import ConversionError
from transformers_internvideo2.conversion.internvideo2_chat import load_original_state_dict
from transformers_internvideo2.conversion.internvideo2_video_text import (
    convert_and_save_stage2,
    load_stage2_checkpoint,
)


def _fixture(name: str) -> Path:
    shared = Path(os.environ.get("INTERNVIDEO2_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    folder = shared / "fixtures" / "original" / name
    if not folder.is_dir():
        pytest.skip(f"fixture {name} not found")
    return folder


@pytest.fixture(scope="module")
def sm01():
    folder = _fixture("sm01_cls_joint_t1")
    kwargs = json.loads((folder / "case.json").read_text())["constructor_kwargs"]
    return torch.load(folder / "checkpoint.pth", weights_only=True), kwargs


def _kwargs_file(tmp_path: Path, kwargs: dict) -> Path:
    path = tmp_path / "kwargs.json"
    path.write_text(json.dumps(kwargs))
    return path


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".previous-" in p.name)


def _state(checkpoint: dict) -> dict:
    """The state dict inside the fixtures' `{"module": state_dict}` (DeepSpeed) wrapping."""
    for wrapper in ("module", "model"):
        if isinstance(checkpoint.get(wrapper), dict):
            return checkpoint[wrapper]
    return checkpoint


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_source_weights_are_named_and_nothing_is_written(sm01, tmp_path, bad_value, capsys):
    checkpoint, kwargs = sm01
    state = {key: value.clone() for key, value in _state(checkpoint).items()}
    state["blocks.1.mlp.fc1.weight"][0, 0] = bad_value
    state["head.bias"][:] = bad_value
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    output = tmp_path / "out"
    with pytest.raises(ConversionError, match=r"2 tensor\(s\).*blocks\.1\.mlp\.fc1\.weight \(1 of .*head\.bias"):
        vision.convert_and_save(path, output, original_kwargs=kwargs)
    assert not output.exists() and _leftovers(tmp_path) == []
    code = cli.main(["convert", "--checkpoint", str(path), "--output", str(output),
                     "--original-kwargs", str(_kwargs_file(tmp_path, kwargs))])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "blocks.1.mlp.fc1.weight" in err and len(err.strip().splitlines()) == 1
    assert not output.exists()


def test_overflow_when_casting_is_caught_before_writing(sm01, tmp_path):
    checkpoint, kwargs = sm01
    state = {key: value.clone() for key, value in _state(checkpoint).items()}
    state["blocks.0.mlp.fc2.weight"][0, 0] = 1e6  # finite in float32, infinite in float16
    path = tmp_path / "big.pth"
    torch.save(state, path)
    with pytest.raises(ConversionError, match=r"converted model.*internvideo2\.encoder\.layer\.0\.mlp\.fc2\.weight"):
        vision.convert_and_save(path, tmp_path / "out", original_kwargs=kwargs, dtype="float16")
    assert not (tmp_path / "out").exists()


class _Payload:
    """Would create a file when unpickled (it must never be)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_truncated_and_malicious_files_are_one_line_errors(sm01, tmp_path, capsys):
    checkpoint, kwargs = sm01
    folder = _fixture("sm01_cls_joint_t1")
    truncated = _truncated(folder / "checkpoint.pth", tmp_path / "truncated.pth")
    marker = tmp_path / "executed"
    malicious = tmp_path / "malicious.pth"
    torch.save({"model": _state(checkpoint), "extra": _Payload(marker)}, malicious)
    pickled = tmp_path / "legacy.pth"
    with open(pickled, "wb") as handle:
        pickle.dump({"weight": _Payload(marker)}, handle)
    save_file({"w": torch.zeros(64)}, str(tmp_path / "whole.safetensors"))
    truncated_st = _truncated(tmp_path / "whole.safetensors", tmp_path / "truncated.safetensors")

    with pytest.raises(ConversionError, match="truncated or corrupt"):
        core.load_original_checkpoint(truncated)
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        core.load_original_checkpoint(truncated_st)
    for path in (malicious, pickled):
        with pytest.raises(ConversionError, match="never unpickled"):
            core.load_original_checkpoint(path)
    # every converter reads through the same loader
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        load_stage2_checkpoint(truncated)
    with pytest.raises(ConversionError, match="never unpickled"):
        load_original_state_dict(malicious)
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        convert_and_save_beats(truncated, tmp_path / "beats", preset="beats-iter3")
    assert not marker.exists()

    kwargs_file = _kwargs_file(tmp_path, kwargs)
    for path in (truncated, malicious):
        code = cli.main(["convert", "--checkpoint", str(path), "--output", str(tmp_path / "out"),
                         "--original-kwargs", str(kwargs_file)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 1 and len(err.strip().splitlines()) == 1 and str(path) in err, err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_stage2_non_finite_weights_are_refused(tmp_path):
    folder = _fixture("mm03_stage2_full_bert")
    checkpoint = torch.load(folder / "checkpoint.pth", weights_only=True)
    state = {key: value.clone() for key, value in _state(checkpoint).items()}
    name = next(key for key, value in state.items() if value.is_floating_point() and "text_encoder" in key)
    state[name].view(-1)[0] = float("nan")
    path = tmp_path / "stage2.pth"
    torch.save(state, path)
    with pytest.raises(ConversionError, match=name.replace(".", r"\.")):
        convert_and_save_stage2(path, tmp_path / "out", save_processor=False)
    assert not (tmp_path / "out").exists()


def test_failed_verification_leaves_the_previous_folder_untouched(sm01, tmp_path, monkeypatch):
    folder = _fixture("sm01_cls_joint_t1")
    _, kwargs = sm01
    output = tmp_path / "out"
    vision.convert_and_save(folder / "checkpoint.pth", output, original_kwargs=kwargs)
    before = {p.name: p.stat().st_mtime_ns for p in output.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "video_preprocessor_config.json"} <= set(before)

    def corrupt(output_dir, model):
        raise ConversionError("Saved tensor 'x' in model.safetensors differs from the converted one.")

    monkeypatch.setattr(core, "verify_saved_weights", corrupt)
    with pytest.raises(ConversionError, match="differs"):
        vision.convert_and_save(folder / "checkpoint.pth", output, original_kwargs=kwargs)
    assert {p.name: p.stat().st_mtime_ns for p in output.iterdir()} == before
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    # a successful run replaces the previous conversion as a whole
    vision.convert_and_save(folder / "checkpoint.pth", output, original_kwargs=kwargs)
    assert _leftovers(tmp_path) == [] and (output / "config.json").is_file()


def test_output_folder_checks(sm01, tmp_path):
    folder = _fixture("sm01_cls_joint_t1")
    _, kwargs = sm01
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ConversionError, match="is a file"):
        vision.convert_and_save(folder / "checkpoint.pth", tmp_path / "a_file", original_kwargs=kwargs)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    with pytest.raises(ConversionError, match="non-empty folder"):
        vision.convert_and_save(folder / "checkpoint.pth", notes, original_kwargs=kwargs)
    assert (notes / "todo.txt").read_text() == "keep me"


# ---------------------------------------------------------------------------------------------------------------------
# The same contract for the converters of InternVideo (v1), the shot-boundary detectors and CLIP
# ---------------------------------------------------------------------------------------------------------------------
def _videomae_v1_original() -> dict:
    """A random VideoMAE v1 classifier in the original key names (width 384, a released size, one block)."""
    from transformers_internvideo2.conversion.videomae_v1 import videomae_v1_key_mapping
    from transformers_internvideo2.models.videomae_v1 import InternVideoMAEConfig, InternVideoMAEForVideoClassification

    config = InternVideoMAEConfig(
        image_size=32, patch_size=16, num_frames=2, tubelet_size=2, hidden_size=384, num_hidden_layers=1,
        num_attention_heads=6, intermediate_size=64, qv_bias=True, use_mean_pooling=True, num_labels=3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = InternVideoMAEForVideoClassification(config)
    mapping = videomae_v1_key_mapping()
    return {mapping.to_original(key): value.detach().clone() for key, value in model.state_dict().items()
            if mapping.to_original(key) is not None}  # fmt: skip


def _family_source(family: str) -> tuple[dict, list[str], callable]:
    """(original state dict, extra CLI arguments, convert(path, output, dtype)) of a tiny model of the family."""
    if family == "internvideo-mm":
        from test_conversion_internvideo_mm import _tiny_original

        from transformers_internvideo2.conversion.internvideo_mm import convert_and_save_internvideo_mm

        state, _ = _tiny_original(num_layers=2)
        return state, ["--no-processor"], lambda path, output, dtype: convert_and_save_internvideo_mm(
            path, output, dtype=dtype, save_processor=False
        )
    if family == "autoshot":
        from test_shot_boundary import _autoshot_original_state_dict

        from transformers_internvideo2.conversion.shot_boundary import convert_and_save_shot_boundary
        from transformers_internvideo2.models.shot_boundary import ShotBoundaryConfig

        state = _autoshot_original_state_dict(ShotBoundaryConfig.from_preset("autoshot"))
        return state, [], lambda path, output, dtype: convert_and_save_shot_boundary(path, output, family, dtype)
    from transformers_internvideo2.conversion.videomae_v1 import convert_and_save_videomae_v1

    return _videomae_v1_original(), ["--image-size", "32", "--num-frames", "2"], (
        lambda path, output, dtype: convert_and_save_videomae_v1(path, output, 32, 2, dtype=dtype)
    )


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}


@pytest.mark.parametrize("family", ["internvideo-mm", "autoshot", "videomae-v1"])
def test_every_family_refuses_non_finite_weights_and_keeps_the_previous_output(family, tmp_path, capsys):
    state, extra, convert = _family_source(family)
    good = tmp_path / "good.pth"
    torch.save(state, good)
    output = tmp_path / "out"
    convert(good, output, "float32")
    assert (output / "config.json").is_file() and _leftovers(tmp_path) == []
    before = _snapshot(output)
    name = next(k for k in sorted(state) if state[k].is_floating_point() and state[k].numel() > 1 and "norm" not in k)

    damaged = {key: value.clone() for key, value in state.items()}
    damaged[name].view(-1)[0] = float("nan")
    torch.save(damaged, tmp_path / "nan.pth")
    with pytest.raises(ConversionError, match=r"NaN or infinite values in 1 tensor\(s\) of the source file .*"
                       + name.replace(".", r"\.")):  # fmt: skip
        convert(tmp_path / "nan.pth", output, "float32")
    # one `error:` line through `internvideo2 convert`, the previous conversion untouched
    capsys.readouterr()  # (the progress bars of the first conversion)
    code = cli.main(["convert", "--family", family, "--checkpoint", str(tmp_path / "nan.pth"),
                     "--output", str(output), *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and name in err and len(err.strip().splitlines()) == 1, err
    assert _snapshot(output) == before and _leftovers(tmp_path) == []

    big = {key: value.clone() for key, value in state.items()}
    big[name].view(-1)[0] = 1e6  # finite in float32, infinite once cast to float16
    torch.save(big, tmp_path / "big.pth")
    with pytest.raises(ConversionError, match="the converted model"):
        convert(tmp_path / "big.pth", output, "float16")
    # (the check of the converted tensors is part of `core.save_and_verify`: the save goes through it)
    assert _snapshot(output) == before and _leftovers(tmp_path) == []

    # a truncated file is a one-line error too (never unpickled), and a folder that holds no model is not replaced
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        convert(_truncated(good, tmp_path / "truncated.pth"), tmp_path / "other", "float32")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    with pytest.raises(ConversionError, match="non-empty folder"):
        convert(good, notes, "float32")
    assert not (tmp_path / "other").exists() and sorted(p.name for p in notes.iterdir()) == ["todo.txt"]


def test_openai_clip_file_to_merge_is_checked_too(tmp_path):
    from test_conversion_internvideo_mm import _openai_clip_from, _tiny_original

    from transformers_internvideo2.conversion.internvideo_mm import convert_and_save_internvideo_mm

    original, _ = _tiny_original(num_layers=2)
    clip = _openai_clip_from(original)
    clip["visual.transformer.resblocks.0.mlp.c_fc.weight"][0, 0] = float("inf")
    torch.save({"state_dict": original}, tmp_path / "mm.ckpt")
    torch.save(clip, tmp_path / "clip.pt")
    with pytest.raises(ConversionError, match=r"OpenAI CLIP file .*visual\.transformer\.resblocks\.0\.mlp\.c_fc"):
        convert_and_save_internvideo_mm(tmp_path / "mm.ckpt", tmp_path / "out", merge_clip_weights=tmp_path / "clip.pt",
                                        save_processor=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_clip_converter_refuses_non_finite_sources_before_writing(tmp_path):
    from test_conversion_clip import _mm05, _split_into_sources

    from transformers_internvideo2.conversion.internvideo2_clip import convert_and_save_clip

    config, checkpoint, _, _ = _mm05(_fixture("mm05_clip_llama_lora").parent)
    vision, text, delta = _split_into_sources(config, checkpoint)
    tensors = dict(vision["module"])
    name = next(k for k in sorted(tensors) if tensors[k].is_floating_point() and ".blocks.0." in k)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    vision = {"module": tensors}
    for file_name, source in (("vision.pth", vision), ("text.pth", text), ("clip.pth", delta)):
        torch.save(source, tmp_path / file_name)
    with pytest.raises(ConversionError, match=r"source file .*vision\.pth.*" + name.replace(".", r"\.")):
        convert_and_save_clip(tmp_path / "out", config, tmp_path / "vision.pth", tmp_path / "text.pth",
                              tmp_path / "clip.pth")  # fmt: skip
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
