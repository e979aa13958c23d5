"""The audio-video-text recipe on the shapes world with sound (`shapes_world/recipes/audio_video_text.py`).

Fast tests: the pieces (captions, batches, the model built from the video-text model, the evaluations on
constructed cases). Slow (`-m slow`): the quick smoke run end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transformers_internvideo2.shapes_world import generator as world
from transformers_internvideo2.shapes_world.recipes import audio_video_text as recipe


def test_audio_caption_vocabulary_is_every_audio_caption_of_the_world():
    vocabulary = recipe.audio_caption_vocabulary()
    assert len(vocabulary) == len(set(vocabulary)) == 12
    seen = {world.sample_clip_spec(20_000_000 + i).audio_caption for i in range(300)}
    assert seen == set(vocabulary)  # 300 clips draw all 12 (4 materials x 3 click patterns)


def test_with_material_changes_only_the_sound():
    spec = world.sample_clip_spec(123)
    for material in world.MATERIALS:
        other = recipe.with_material(spec, material)
        assert other.material == material and other.caption == spec.caption
        np.testing.assert_array_equal(world.render_clip(other), world.render_clip(spec))
        assert other.pitch_hz / world.MATERIAL_PITCH_HZ[material] == pytest.approx(
            spec.pitch_hz / world.MATERIAL_PITCH_HZ[spec.material]
        )
        spectrum = np.abs(np.fft.rfft(world.render_audio(other)))
        peak_hz = np.argmax(spectrum) * world.AUDIO_SAMPLING_RATE / (2 * (len(spectrum) - 1))
        assert abs(peak_hz - other.pitch_hz) < 2.0  # 1 s of sound: 1 Hz bins


def test_clips_render_with_one_second_filterbanks():
    settings = recipe.AudioRecipeSettings.quick()
    extractor = recipe.audio_feature_extractor(settings)
    assert extractor.num_frames == 98  # 1 s at 10 ms hops, 25 ms windows
    clips = recipe.render_clips([world.sample_clip_spec(i) for i in range(3)], extractor)
    assert clips.pixel_values.shape == (3, 8, 3, 32, 32) and clips.input_features.shape == (3, 98, 64)
    assert clips.av_captions[0].split()[2] == clips.materials[0]  # "a red metal circle ..."
    again = recipe.render_clips([world.sample_clip_spec(i) for i in range(3)], extractor)
    torch.testing.assert_close(again.input_features, clips.input_features, rtol=0, atol=0)


def test_heldout_sets_are_what_they_claim():
    settings = recipe.AudioRecipeSettings(audio_eval_clips=5, retrieval_clips=10, contrast_scenes=3)
    sets = recipe.heldout_sets(settings, recipe.audio_feature_extractor(settings))
    assert len(sets["audio"]) == 5 and len(sets["distinct"]) == 10 and len(sets["contrast"]) == 12
    assert len(set(sets["distinct"].av_captions)) == 10
    contrast = sets["contrast"]
    for scene in range(3):
        rows = slice(4 * scene, 4 * scene + 4)
        assert contrast.materials[rows] == list(world.MATERIALS) and len(set(contrast.captions[rows])) == 1
        assert torch.equal(contrast.pixel_values[4 * scene], contrast.pixel_values[4 * scene + 3])
        assert not torch.equal(contrast.input_features[4 * scene], contrast.input_features[4 * scene + 3])
    # test split only: no training seed
    train_captions = {s.av_caption for s in recipe._split_specs("train", 0, 5)}
    assert sets["audio"].av_captions != sorted(train_captions)


class _Tokenizing:
    def tokenize(self, captions, padding="longest"):
        ids = torch.tensor([[101, len(c)] for c in captions])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_batches_alternate_between_the_two_caption_kinds():
    collate = recipe.AlternatingCaptionCollator(_Tokenizing())
    rows = [{"pixel_values": torch.zeros(8, 3, 32, 32), "input_features": torch.zeros(98, 64),
             "audio_caption": "a metal hum, clicks at the start and in the middle",
             "av_caption": f"a red metal circle moves left {i}"} for i in range(3)]  # fmt: skip
    kinds = [collate(rows)["caption_kind"] for _ in range(4)]
    assert kinds == ["av", "audio", "av", "audio"]
    collate.batches = 1
    batch = collate(rows)
    assert batch["input_features"].shape == (3, 98, 64)
    assert len(set(batch["sample_ids"].tolist())) == 1  # one audio caption: all positives of each other
    assert len(set(collate(rows)["sample_ids"].tolist())) == 3
    assert set(recipe.BATCH_KIND_LOSS_WEIGHTS["audio"]) == {"atc"}


@pytest.fixture(scope="module")
def built():
    from transformers_internvideo2.shapes_world.bundled import load_bundled_video_text

    video_text, processor = load_bundled_video_text()
    settings = recipe.AudioRecipeSettings.quick()
    model = recipe.build_audio_video_text_model(settings, video_text).eval()
    processor = recipe.make_processor(processor, recipe.audio_feature_extractor(settings))
    return video_text, model, processor, settings


def test_model_keeps_the_video_text_weights_and_fusion_starts_as_video(built):
    video_text, model, processor, settings = built
    source = video_text.state_dict()
    for key, value in model.state_dict().items():
        if key in source:
            assert torch.equal(value, source[key]), key
    assert model.config.audio_config.hidden_size == settings.audio_hidden_size
    clips = recipe.render_clips([world.sample_clip_spec(i) for i in range(4)], processor.feature_extractor)
    with torch.no_grad():
        video = model.get_video_features(clips.pixel_values).pooler_output
        fused = model.get_audio_video_features(clips.input_features, clips.pixel_values).pooler_output
        audio = model.get_audio_features(clips.input_features)
    torch.testing.assert_close(fused, video)
    assert audio.last_hidden_state.shape == (4, 24, settings.audio_hidden_size)  # 6 time x 4 mel patches


@pytest.mark.slow  # a Trainer and two forwards of the real model: ~10 s on an idle CPU
def test_trainer_uses_the_losses_of_each_batch_kind(built, tmp_path):
    from transformers_internvideo2.training import InternVideo2VideoTextArguments

    video_text, model, processor, settings = built
    clips = recipe.render_clips([world.sample_clip_spec(i) for i in range(4)], processor.feature_extractor)
    args = InternVideo2VideoTextArguments(**recipe._common_args(tmp_path, settings, 1, 1e-4))
    trainer = recipe._trainer_class()(model=model, args=args, data_collator=recipe.AlternatingCaptionCollator(processor))
    collate = recipe.AlternatingCaptionCollator(processor)
    rows = [recipe._ClipRows(clips)[i] for i in range(4)]
    model.train()
    for kind in ("av", "audio"):
        batch = collate(rows)
        assert batch["caption_kind"] == kind
        with torch.no_grad():
            loss = trainer.compute_loss(model, batch)
        weights = trainer._weights()
        assert {n for n, w in weights.items() if w} == set(recipe.BATCH_KIND_LOSS_WEIGHTS[kind])
        assert torch.isfinite(loss)
    model.eval()


def test_evaluations_on_constructed_models():
    """audio_text_evaluation reads the right rows: a model whose audio embedding IS its caption's text embedding
    scores 100 %, one whose audio points to the next caption scores 0 %."""
    vocabulary = recipe.audio_caption_vocabulary()
    table = torch.nn.functional.normalize(torch.randn(12, 16, generator=torch.Generator().manual_seed(0)), dim=-1)

    class Out:
        def __init__(self, x):
            self.pooler_output = x

    class Model:
        shift = 0

        def eval(self):
            return self

        def get_text_features(self, input_ids, attention_mask):
            return Out(table[input_ids[:, 0]])

        def get_audio_features(self, features):
            return Out(table[(features[:, 0, 0].long() + self.shift) % 12])

    class Processor:
        def tokenize(self, captions, padding="longest"):
            ids = torch.tensor([[vocabulary.index(c)] for c in captions])
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    index = [0, 3, 5, 11, 7]
    clips = recipe.AudioClips(
        pixel_values=torch.zeros(5, 1), input_features=torch.tensor(index, dtype=torch.float)[:, None, None].expand(5, 2, 2),
        captions=[""] * 5, audio_captions=[vocabulary[i] for i in index], av_captions=[""] * 5,
        materials=[vocabulary[i].split()[1] for i in index],
    )  # fmt: skip
    model = Model()
    metrics = recipe.audio_text_evaluation(model, Processor(), clips)
    assert metrics["a2t_r1"] == 100.0 and metrics["t2a_r1"] == 100.0 and metrics["material_accuracy"] == 100.0
    assert metrics["chance_r1"] == pytest.approx(100 / 5)  # 5 distinct captions present
    model.shift = 1
    assert recipe.audio_text_evaluation(model, Processor(), clips)["a2t_r1"] == 0.0


@pytest.mark.slow
def test_quick_recipe_runs_end_to_end(tmp_path):
    result = recipe.run(tmp_path, recipe.AudioRecipeSettings.quick(), log=lambda *_: None)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"] == result.metrics
    for key in ("audio_text_a2t_r1", "distinct_video_t2m_r1", "distinct_audio_video_t2m_r1",
                "contrast_audio_video_t2m_r1", "loss_atc_first", "loss_avtc_last"):  # fmt: skip
        assert np.isfinite(result.metrics[key]), key
    assert (tmp_path / recipe.AUDIO_VIDEO_TEXT_DIR / "model.safetensors").is_file()


# ----------------------------------------------------------------------------------------------------------------
# The bundled model (bundled/shapes-audio-video-text)
# ----------------------------------------------------------------------------------------------------------------
def test_bundled_audio_video_text_loads_strictly_without_code():
    from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval
    from transformers_internvideo2.shapes_world import bundled

    folder = bundled.bundled_model_dir(bundled.BUNDLED_AUDIO_VIDEO_TEXT)
    assert not list(folder.rglob("*.py"))
    for path in folder.glob("*.json"):
        assert '"auto_map"' not in path.read_text(), path
    _, info = InternVideo2ForRetrieval.from_pretrained(folder, output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    model, processor = bundled.load_bundled_audio_video_text()
    assert model.config.has_audio and not model.training
    assert processor.feature_extractor.num_frames == 98
    assert next(model.parameters()).dtype == torch.float32
    card = (folder / "README.md").read_text()
    recorded = bundled.bundled_metrics(bundled.BUNDLED_AUDIO_VIDEO_TEXT)
    assert bundled.AUDIO_REPRODUCE_COMMAND in card and recorded["command"] == bundled.AUDIO_REPRODUCE_COMMAND
    assert f"{recorded['metrics']['audio_text_a2t_r1']:.1f} %" in card
    with pytest.raises(ValueError, match="not an audio-video-text folder"):
        bundled.load_bundled_audio_video_text(folder=bundled.bundled_model_dir(bundled.BUNDLED_VIDEO_TEXT))


def test_bundled_audio_video_text_reproduces_its_recorded_heldout_numbers():
    from transformers_internvideo2.shapes_world import bundled

    recorded = bundled.bundled_metrics(bundled.BUNDLED_AUDIO_VIDEO_TEXT)
    settings = recipe.AudioRecipeSettings(**recorded["settings"])
    model, processor = bundled.load_bundled_audio_video_text()
    metrics = recipe.evaluate(model, processor, recipe.heldout_sets(settings, processor.feature_extractor))
    for key in ("audio_text_a2t_r1", "audio_text_t2a_r1", "distinct_video_t2m_r1", "distinct_audio_video_t2m_r1",
                "contrast_video_t2m_r1", "contrast_audio_video_t2m_r1"):  # fmt: skip
        assert metrics[key] == pytest.approx(recorded["metrics"][key], abs=2.5), key  # CPU numerics: a tie or two


def test_demo_audio_step_runs_on_fresh_clips():
    from transformers_internvideo2.shapes_world.demo import demo_audio_section, render_demo_clips

    lines = []
    result = demo_audio_section(render_demo_clips(8, seed=5, num_frames=8, image_size=32), log=lines.append)
    assert result is not None and 0.0 <= result["a2t_r1"] <= 100.0
    assert any("audio -> text R@1" in line for line in lines)
    assert any("text -> audio+video R@1" in line for line in lines)


@pytest.mark.slow  # about 1-2 minutes on 2 CPU cores
def test_a_short_run_learns_what_only_the_sound_tells(tmp_path):
    """80 steps (not the bundled run, another seed): audio-text retrieval far above chance, and on the material
    contrast set (identical frames, only the sound differs) audio+video beats video alone by a wide margin."""
    settings = recipe.AudioRecipeSettings(seed=1, train_clips=480, steps=80, audio_eval_clips=96, retrieval_clips=24,
                                          contrast_scenes=6)  # fmt: skip
    metrics = recipe.run(tmp_path, settings, log=lambda *_: None).metrics
    assert metrics["loss_atc_last"] < metrics["loss_atc_first"] - 0.5
    assert metrics["audio_text_a2t_r1"] >= 3 * metrics["audio_text_chance_r1"]
    assert metrics["audio_text_a2t_r1"] >= metrics["before_audio_text_a2t_r1"] + 30
    assert metrics["contrast_audio_video_t2m_r1"] >= metrics["contrast_video_t2m_r1"] + 30
    assert metrics["distinct_audio_video_t2m_r1"] >= metrics["distinct_video_t2m_r1"]
