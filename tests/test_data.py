"""datasets-based loaders (tables and video folders) and the decoding collator, with real mp4 files."""

import csv
import json

import numpy as np
import pytest
import torch

from transformers_internvideo2.training.data import VideoCollator, load_video_folder, load_video_table, video_path
from transformers_internvideo2.shapes_world.generator import DIRECTIONS, render_clip, sample_clip_spec, write_mp4
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Six 16-frame 32x48 shapes clips written as mp4 in a videofolder layout <root>/<direction>/<seed>.mp4."""
    root = tmp_path_factory.mktemp("videofolder")
    rows = []
    for seed in range(6):
        spec = sample_clip_spec(seed, num_frames=16, height=32, width=48)
        folder = root / spec.direction
        folder.mkdir(exist_ok=True)
        path = write_mp4(render_clip(spec), folder / f"{seed}.mp4")
        rows.append({"video": f"{spec.direction}/{seed}.mp4", "label": spec.direction, "caption": spec.caption})
    return root, rows


def processor():
    return InternVideo2VideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, num_frames=8)


def test_csv_and_jsonl_tables(clips):
    root, rows = clips
    with open(root / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["video", "label", "caption"])
        writer.writeheader()
        writer.writerows(rows)
    with open(root / "table.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps({**row, "video": str(root / row["video"])}) + "\n")  # absolute paths
    from_csv = load_video_table(str(root / "table.csv"), caption_column="caption")
    from_jsonl = load_video_table(str(root / "table.jsonl"))
    for ds in (from_csv, from_jsonl):
        assert len(ds) == 6
        assert ds.features["label"].names == sorted({r["label"] for r in rows})
        first = ds[0]
        assert video_path(first["video"]) == str(root / rows[0]["video"])
        assert ds.features["label"].int2str(first["label"]) == rows[0]["label"]
    splits = load_video_table({"train": str(root / "table.csv"), "test": str(root / "table.csv")})
    assert set(splits) == {"train", "test"}


def test_table_errors(clips, tmp_path):
    root, rows = clips
    (tmp_path / "bad.csv").write_text("video,label\nmissing.mp4,left\n")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        load_video_table(str(tmp_path / "bad.csv"))
    with pytest.raises(ValueError, match="not found in the table"):
        load_video_table(str(tmp_path / "bad.csv"), label_column="class", check_files=False)
    with pytest.raises(ValueError, match="Unsupported table format"):
        load_video_table(str(tmp_path / "bad.parquet"))


def test_video_folder_layouts(clips, tmp_path):
    root, rows = clips
    ds = load_video_folder(root)
    assert len(ds) == 6 and ds.features["label"].names == sorted({r["label"] for r in rows})
    with_all_names = load_video_folder(root, class_names=list(DIRECTIONS))
    assert with_all_names.features["label"].names == list(DIRECTIONS)
    for row in with_all_names:
        assert DIRECTIONS[row["label"]] in video_path(row["video"])
    with pytest.raises(ValueError, match="No videos"):
        load_video_folder(tmp_path)


def test_collator_modes_decode_in_dataloader_workers(clips):
    root, _ = clips
    ds = load_video_folder(root, class_names=list(DIRECTIONS))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=3, num_workers=2, collate_fn=VideoCollator(processor(), mode="train", seed=0)
    )
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["pixel_values"].shape == (3, 8, 3, 32, 32) and batches[0]["labels"].dtype == torch.long
    val = VideoCollator(processor(), mode="val")([ds[0], ds[1]])
    reference = processor()(videos=[video_path(ds[0]["video"])], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(val["pixel_values"][:1], reference)
    views = VideoCollator(processor(), mode="multi_view", num_clips=2, num_crops=3)([ds[0]])
    assert views["pixel_values"].shape == (1, 6, 8, 3, 32, 32)
    # training sampling is random within segments but reproducible with a seed
    a = VideoCollator(processor(), mode="train", seed=5)([ds[2]])["pixel_values"]
    b = VideoCollator(processor(), mode="train", seed=5)([ds[2]])["pixel_values"]
    torch.testing.assert_close(a, b)


def test_collator_with_captions_and_tokenizer(clips):
    root, rows = clips
    table = [{"video": str(root / r["video"]), "caption": r["caption"]} for r in rows[:2]]
    plain = VideoCollator(processor(), label_column=None, caption_column="caption")(table)
    assert plain["captions"] == [r["caption"] for r in rows[:2]] and "labels" not in plain

    class WhitespaceTokenizer:
        def __call__(self, texts, padding, truncation, max_length, return_tensors):
            ids = [[len(w) for w in t.split()][:max_length] for t in texts]
            width = max(map(len, ids))
            return {
                "input_ids": torch.tensor([i + [0] * (width - len(i)) for i in ids]),
                "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids]),
            }

    tokenized = VideoCollator(processor(), label_column=None, caption_column="caption", tokenizer=WhitespaceTokenizer())(table)
    assert tokenized["input_ids"].shape[0] == 2 and tokenized["attention_mask"].sum() > 0


def test_collator_errors():
    with pytest.raises(ValueError, match="mode"):
        VideoCollator(processor(), mode="test")
    with pytest.raises(ValueError, match="video path"):
        video_path(3)
    with pytest.raises(ValueError, match="bytes"):
        video_path({"path": None, "bytes": b"..."})


def test_collator_feeds_the_classification_trainer(clips, tmp_path):
    from transformers_internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig
    from transformers_internvideo2.training import InternVideo2ClassificationArguments, InternVideo2ClassificationTrainer

    root, _ = clips
    ds = load_video_folder(root, class_names=list(DIRECTIONS))
    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8,
        num_frames=8, pooler_output_size=16, pooler_num_attention_heads=4, num_labels=4,
    )  # fmt: skip
    args = InternVideo2ClassificationArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=3, max_steps=2, report_to=[], save_strategy="no",
        use_cpu=True, dataloader_num_workers=1, disable_tqdm=True,
    )  # fmt: skip
    trainer = InternVideo2ClassificationTrainer(
        model=InternVideo2ForVideoClassification(config), args=args, train_dataset=ds,
        data_collator=VideoCollator(processor(), mode="train"),
    )  # fmt: skip
    result = trainer.train()
    assert np.isfinite(result.training_loss)


# -- `datasets` video folders: decoded `Video()` rows (torchcodec decoders) straight into the collators ------------
requires_torchcodec = pytest.mark.skipif(
    not __import__("transformers_internvideo2").media.video_decoding.is_torchcodec_usable(),
    reason="datasets decodes Video() columns with torchcodec, which cannot load its FFmpeg libraries here",
)


def _hf_videofolder(root):
    import datasets

    return datasets.load_dataset("videofolder", data_dir=str(root), split="train")


@requires_torchcodec
def test_datasets_videofolder_rows_go_straight_into_the_collator(clips):
    from transformers_internvideo2.media.video_decoding import is_torchcodec_decoder

    root, _ = clips
    ds = _hf_videofolder(root)
    assert is_torchcodec_decoder(ds[0]["video"])  # decoded rows, not paths
    by_path = load_video_folder(root)  # the same clips, in the same order (sorted class folders, sorted files)
    assert ds.features["label"].names == by_path.features["label"].names
    rows, path_rows = [ds[0], ds[1]], [by_path[0], by_path[1]]
    # val: the same "segments" frames as the path route through the processor
    torch.testing.assert_close(
        VideoCollator(processor(), mode="val")(rows)["pixel_values"],
        VideoCollator(processor(), mode="val")(path_rows)["pixel_values"],
    )
    torch.testing.assert_close(
        VideoCollator(processor(), mode="train", seed=3)(rows)["pixel_values"],
        VideoCollator(processor(), mode="train", seed=3)(path_rows)["pixel_values"],
    )
    views = VideoCollator(processor(), mode="multi_view", num_clips=2, num_crops=3)(rows[:1])
    torch.testing.assert_close(
        views["pixel_values"],
        VideoCollator(processor(), mode="multi_view", num_clips=2, num_crops=3)(path_rows[:1])["pixel_values"],
    )
    assert VideoCollator(processor())(rows)["labels"].tolist() == [rows[0]["label"], rows[1]["label"]]
    with pytest.raises(ValueError, match="cast_column"):
        video_path(rows[0]["video"])


def test_collator_names_missing_columns_and_the_plain_trainer_fix(clips):
    root, _ = clips
    row = dict(load_video_folder(root)[0])
    del row["video"]  # what a plain Trainer with remove_unused_columns=True hands the collator
    with pytest.raises(ValueError, match=r"remove_unused_columns=False.*|missing: \['video'\]") as error:
        VideoCollator(processor())([row])
    assert "missing: ['video']" in str(error.value) and "remove_unused_columns=False" in str(error.value)


def test_trainer_uses_the_eval_collator_for_evaluation_only(clips, tmp_path):
    from transformers_internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig
    from transformers_internvideo2.training import InternVideo2ClassificationArguments, InternVideo2ClassificationTrainer

    class RecordingCollator(VideoCollator):
        def __call__(self, rows):
            self.calls = getattr(self, "calls", 0) + 1
            return super().__call__(rows)

    root, _ = clips
    ds = load_video_folder(root, class_names=list(DIRECTIONS))
    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8,
        num_frames=8, pooler_output_size=16, pooler_num_attention_heads=4, num_labels=4,
    )  # fmt: skip
    args = InternVideo2ClassificationArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=3, per_device_eval_batch_size=3, max_steps=1,
        report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True,
    )  # fmt: skip
    train_collator, eval_collator = RecordingCollator(processor(), mode="train"), RecordingCollator(processor())
    trainer = InternVideo2ClassificationTrainer(
        model=InternVideo2ForVideoClassification(config), args=args, train_dataset=ds, eval_dataset=ds,
        data_collator=train_collator, eval_data_collator=eval_collator,
    )  # fmt: skip
    trainer.train()
    training_calls = train_collator.calls  # accelerate's loader fetches one batch ahead, so 1 step may be 2 calls
    assert training_calls >= 1 and not hasattr(eval_collator, "calls")
    metrics = trainer.evaluate()
    assert eval_collator.calls == 2 and train_collator.calls == training_calls and np.isfinite(metrics["eval_loss"])
    trainer.predict(ds)
    assert eval_collator.calls == 4 and train_collator.calls == training_calls


# ----------------------------------------------------------------------------------------------------------------
# Undecodable samples: skipped with a warning and a counter, up to a failure fraction (docs/reliability.md)
# ----------------------------------------------------------------------------------------------------------------
def _corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)  # exists, looks like an mp4, cannot decode
    return path


def test_collator_skips_an_undecodable_sample_with_a_warning_and_a_counter(clips, tmp_path, caplog):
    from transformers_internvideo2.training.data import TooManyUndecodableSamplesError

    root, _ = clips
    ds = load_video_folder(root, class_names=list(DIRECTIONS))
    bad = {"video": {"path": str(_corrupt(tmp_path / "bad.mp4")), "bytes": None}, "label": 3}
    for mode in ("train", "val"):
        collator = VideoCollator(processor(), mode=mode, seed=0, max_failure_fraction=0.5)
        with caplog.at_level("WARNING", logger="transformers_internvideo2.training.data"):
            batch = collator([ds[0], bad, ds[1]])
        assert batch["pixel_values"].shape[0] == 2
        assert batch["labels"].tolist() == [ds[0]["label"], ds[1]["label"]]  # labels stay aligned with the clips
        assert collator.failure_budget.num_failed == 1 and collator.failure_budget.num_seen == 3
        assert "bad.mp4" in caplog.text and "(1 of 2 samples skipped so far)" in caplog.text
        # every sample of a batch bad: the last good sample stands in (a Trainer cannot take an empty batch)
        alone = collator([bad])
        torch.testing.assert_close(alone["labels"], torch.tensor([ds[1]["label"]]))
        # past the fraction: a clear error naming the files
        with pytest.raises(TooManyUndecodableSamplesError, match=r"3 of 5 training samples .*bad\.mp4.*max_failure_fraction"):
            collator([bad, ds[2]])
    with pytest.raises(TooManyUndecodableSamplesError, match="No sample of the batch"):
        VideoCollator(processor())([bad])
    strict = VideoCollator(processor(), max_failure_fraction=0.0)
    with pytest.raises(TooManyUndecodableSamplesError, match="1 of 2"):
        strict([ds[0], bad])


def test_failure_fraction_is_judged_once_one_failure_fits():
    from transformers_internvideo2.training.data import DecodeFailureBudget, TooManyUndecodableSamplesError

    budget = DecodeFailureBudget(0.1)
    budget.failed_sample("first.mp4", ValueError("corrupt"))
    for _ in range(19):
        budget.succeeded()
    assert budget.failure_fraction == 0.05  # 1 of 20 within 10 %
    with pytest.raises(TooManyUndecodableSamplesError, match=r"3 of 22 .*second\.mp4.*third\.mp4"):
        budget.failed_sample("second.mp4", ValueError("corrupt"))  # 2 of 21 < 10 %: fine
        budget.failed_sample("third.mp4", ValueError("corrupt"))  # 3 of 22 > 10 %
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DecodeFailureBudget(1.5)


def test_load_video_table_checks_decodability(clips, tmp_path):
    root, rows = clips
    _corrupt(root / "broken" / "bad.mp4")
    table = root / "with_bad.jsonl"
    with open(table, "w") as f:
        for row in [*rows[:2], {"video": "broken/bad.mp4", "label": "up", "caption": "x"}]:
            f.write(json.dumps(row) + "\n")
    assert len(load_video_table(str(table))) == 3  # existence only, by default
    with pytest.raises(ValueError, match=r"1 of 3 videos cannot be decoded: .*broken/bad\.mp4 \(VideoDecodingError"):
        load_video_table(str(table), check_decodable=True)
    with pytest.raises(ValueError, match=r"1 of 7 videos cannot be decoded: .*broken/bad\.mp4"):
        load_video_folder(root, check_decodable=True)
    assert len(load_video_folder(root)) == 7
    (root / "broken" / "bad.mp4").unlink()
    (root / "broken").rmdir()


def test_classification_trainer_trains_past_an_undecodable_file(clips, tmp_path):
    collator = VideoCollator(processor(), mode="train", max_failure_fraction=0.2)
    trainer = _trainer_with_bad_files(clips, tmp_path, collator, num_bad=1, dataloader_num_workers=0)  # 7 samples
    result = trainer.train()
    assert np.isfinite(result.training_loss) and result.global_step == 4
    assert collator.failure_budget.num_failed == 1 and collator.failure_budget.num_seen == 7


def _trainer_with_bad_files(clips, tmp_path, collator, num_bad=2, **arguments):
    from transformers_internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig
    from transformers_internvideo2.training import InternVideo2ClassificationArguments, InternVideo2ClassificationTrainer

    root, rows = clips
    folder = tmp_path / "videofolder"
    for row in rows:
        (folder / row["video"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / row["video"]).symlink_to(root / row["video"])
    for index in range(num_bad):
        _corrupt(folder / "up" / f"bad_{index}.mp4")
    ds = load_video_folder(folder, class_names=list(DIRECTIONS))
    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8,
        num_frames=8, pooler_output_size=16, pooler_num_attention_heads=4, num_labels=4,
    )  # fmt: skip
    args = InternVideo2ClassificationArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=2, num_train_epochs=1, report_to=[], save_strategy="no",
        use_cpu=True, disable_tqdm=True, **arguments,
    )  # fmt: skip
    return InternVideo2ClassificationTrainer(
        model=InternVideo2ForVideoClassification(config), args=args, train_dataset=ds, data_collator=collator
    )


def test_max_failure_fraction_is_a_training_argument(clips, tmp_path):
    from transformers_internvideo2.training import InternVideo2ClassificationArguments, InternVideo2ChatTrainingArguments
    from transformers_internvideo2.training.data import TooManyUndecodableSamplesError

    assert InternVideo2ClassificationArguments(output_dir=str(tmp_path), report_to=[]).max_failure_fraction == 0.05
    for arguments in (InternVideo2ClassificationArguments, InternVideo2ChatTrainingArguments):
        with pytest.raises(ValueError, match=r"max_failure_fraction must be in \[0, 1\]"):
            arguments(output_dir=str(tmp_path), report_to=[], max_failure_fraction=1.5)
    # the argument reaches a collator left at its default: 0 stops training at the first undecodable sample
    collator = VideoCollator(processor(), mode="train")
    trainer = _trainer_with_bad_files(clips, tmp_path / "strict", collator, dataloader_num_workers=0,
                                      max_failure_fraction=0.0)  # fmt: skip
    assert collator.failure_budget.max_failure_fraction == 0.0
    with pytest.raises(TooManyUndecodableSamplesError, match=r"max_failure_fraction=0\.0"):
        trainer.train()
    # a collator built with its own value keeps it when the argument is left at its default ...
    own = VideoCollator(processor(), mode="train", max_failure_fraction=0.5)
    _trainer_with_bad_files(clips, tmp_path / "own", own, dataloader_num_workers=0)
    assert own.failure_budget.max_failure_fraction == 0.5
    # ... and two different values set on purpose are refused before any work
    with pytest.raises(ValueError, match=r"max_failure_fraction=0\.3 but the data collator VideoCollator was built "
                       r"with max_failure_fraction=0\.5"):  # fmt: skip
        _trainer_with_bad_files(clips, tmp_path / "both", own, dataloader_num_workers=0, max_failure_fraction=0.3)


def test_training_summary_counts_skipped_samples_over_all_dataloader_workers(clips, tmp_path, caplog):
    collator = VideoCollator(processor(), mode="train")
    # (1.0: whatever order the shuffled samples come in, training goes on; the counts are what is checked)
    trainer = _trainer_with_bad_files(clips, tmp_path, collator, num_bad=2, dataloader_num_workers=2,
                                      max_failure_fraction=1.0)  # fmt: skip
    with caplog.at_level("WARNING", logger="transformers_internvideo2.training"):
        result = trainer.train()
    # 8 samples, 2 undecodable, decoded in two worker processes: the totals reach the main process
    assert result.metrics["train_undecodable_samples"] == 2
    assert result.metrics["train_undecodable_fraction"] == pytest.approx(2 / 8)
    assert collator.failure_budget.num_failed == 2 and collator.failure_budget.num_seen == 8
    assert "Training skipped 2 of 8 samples whose video could not be decoded (over all DataLoader workers" in caplog.text


# (a spawned process imports the package again: tens of seconds on a busy machine, hence slow)
@pytest.mark.parametrize("start_method", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_failure_counts_are_shared_with_worker_processes_of_any_start_method(start_method):
    import copy
    import multiprocessing

    from transformers_internvideo2.training.data import DecodeFailureBudget

    budget = DecodeFailureBudget(1.0)
    budget.failed_sample("main.mp4", ValueError("corrupt"))
    workers = [multiprocessing.get_context(start_method).Process(target=budget.succeeded) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert (budget.num_seen, budget.num_failed) == (3, 1)  # the workers' counts reached the main process
    copied = copy.deepcopy(budget)  # any other copy starts from the current counts, then counts on its own
    copied.succeeded()
    assert (copied.num_seen, budget.num_seen) == (4, 3)
