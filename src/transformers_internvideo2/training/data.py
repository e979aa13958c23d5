"""`datasets`-based video data for training: tables of (video path, caption/label), video folders, and a collator
that decodes in `DataLoader` workers.

`datasets.Video` decodes only with torchcodec; here the video column is cast to `Video(decode=False)` (rows hold
`{"path", "bytes"}`) and the [`VideoCollator`] decodes with the package's decoder (torchcodec when usable, PyAV
otherwise) inside the `DataLoader` worker processes (`dataloader_num_workers > 0` in `TrainingArguments`), so the
main process never decodes video.

    >>> train = load_video_table("train.csv", label_column="label", base_dir="videos/")   # or .jsonl / .json
    >>> folder = load_video_folder("ucf_subset/")             # <root>/<class>/<clip>.mp4 -> ClassLabel
    >>> collator = VideoCollator(processor, mode="train")      # random segment sampling; "val"; "multi_view"

**Undecodable samples.** A file that exists but cannot be decoded does not stop training: the collators
([`VideoCollator`], the chat collator) drop it from its batch with a logged warning and count it
([`DecodeFailureBudget`]); once more than `max_failure_fraction` of the samples seen so far failed, training stops with
[`TooManyUndecodableSamplesError`] naming the last files. The counts are shared by the `DataLoader` worker processes
(each holds a copy of the collator, the counters live in shared memory), so the fraction is judged over all of them
and the collator of the main process reports the totals (the trainers' end-of-training summary). The trainers set the
fraction from `TrainingArguments.max_failure_fraction` ([`apply_max_failure_fraction`]).
`load_video_table(..., check_decodable=True)` finds such files before training (see docs/reliability.md).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..media.frame_sampling import sample_frame_indices
from ..media.video_decoding import VIDEO_EXTENSIONS, decode_video_frames, is_torchcodec_decoder


logger = logging.getLogger(__name__)

__all__ = [
    "DecodeFailureBudget",
    "DEFAULT_MAX_FAILURE_FRACTION",
    "TooManyUndecodableSamplesError",
    "VideoCollator",
    "apply_max_failure_fraction",
    "check_videos_decodable",
    "clip_span_frames",
    "load_video_folder",
    "load_video_table",
    "video_path",
    "video_source",
]

# A sample that fails with one of these while being decoded / preprocessed is undecodable (VideoDecodingError is a
# ValueError); other exceptions are bugs and propagate.
SAMPLE_ERRORS = (ValueError, OSError, RuntimeError, IndexError)
DEFAULT_MAX_FAILURE_FRACTION = 0.05


class TooManyUndecodableSamplesError(RuntimeError):
    """More than the allowed fraction of the training samples could not be decoded."""


def _shared_counts(values: list[int]):
    # A lock of the spawn context can be inherited by forked workers and pickled to spawned or forkserver ones (one of
    # the default fork context refuses the latter), so the counts work with every `multiprocessing_context`.
    return multiprocessing.Array("q", values, lock=multiprocessing.get_context("spawn").RLock())


class DecodeFailureBudget:
    """Counts the samples a collator saw and those it skipped because they could not be decoded.

    Args:
        max_failure_fraction: the largest tolerated fraction of skipped samples (0 stops at the first one). The
            fraction is judged once enough samples were seen for one failure to fit (`ceil(1 / fraction)`), so that
            an early bad file does not stop a run whose overall rate is fine.

    The two counts live in shared memory: the `DataLoader` worker processes, which each get a copy of the collator
    (forked, or pickled while a worker is being spawned), count into the same numbers, so `num_seen` / `num_failed`
    are totals over every worker, read from any of them or from the main process. Any other copy (`copy.deepcopy`,
    `pickle.dumps`) starts its own counts from the current ones. The last failures kept for messages (`failed`) are
    per process.
    """

    def __init__(self, max_failure_fraction: float = DEFAULT_MAX_FAILURE_FRACTION):
        self.max_failure_fraction = _checked_fraction(max_failure_fraction)
        self._counts = _shared_counts([0, 0])  # [seen, failed], with its lock
        self.failed: list[tuple[str, str]] = []  # the last few (name, reason), for the final error

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if multiprocessing.context.get_spawning_popen() is None:  # a plain copy, not a worker being started
            state["_counts"] = list(self._counts[:])
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["_counts"], list):
            state["_counts"] = _shared_counts(state["_counts"])
        self.__dict__.update(state)

    @property
    def num_seen(self) -> int:
        return self._counts[0]

    @property
    def num_failed(self) -> int:
        return self._counts[1]

    @property
    def failure_fraction(self) -> float:
        with self._counts.get_lock():
            seen, failed = self._counts[:]
        return failed / seen if seen else 0.0

    def succeeded(self) -> None:
        with self._counts.get_lock():
            self._counts[0] += 1

    def failed_sample(self, name: str, error: BaseException) -> None:
        """Count a skipped sample, log it, and raise once the budget is exceeded."""
        with self._counts.get_lock():
            self._counts[0] += 1
            self._counts[1] += 1
            seen, failed = self._counts[:]
        reason = f"{type(error).__name__}: {error}"
        self.failed = [*self.failed[-4:], (name, reason)]
        info = torch.utils.data.get_worker_info()
        where = f" in DataLoader worker {info.id}" if info is not None else ""  # the counts are over every worker
        logger.warning("Skipped an undecodable training sample %s (%d of %d samples skipped so far)%s: %s",
                       name, failed, seen, where, reason)  # fmt: skip
        self.check()

    def check(self) -> None:
        limit = self.max_failure_fraction
        with self._counts.get_lock():
            seen, failed = self._counts[:]
        judged = limit == 0.0 or seen >= math.ceil(1.0 / limit)
        if failed and judged and failed / seen > limit:
            last = "; ".join(f"{name} ({reason})" for name, reason in self.failed)
            raise TooManyUndecodableSamplesError(
                f"{failed} of {seen} training samples could not be decoded ({failed / seen:.1%}, more than "
                f"max_failure_fraction={limit}). Last ones: {last}. Fix or remove them (load_video_table(..., "
                "check_decodable=True) lists them) or raise max_failure_fraction."
            )

    def keep_decodable(self, items: Sequence, load: Callable, name: Callable) -> tuple[list, list]:
        """`(kept items, their loaded values)`: `load(item)` for each item, the failing ones skipped and counted."""
        kept, loaded = [], []
        for item in items:
            try:
                value = load(item)
            except SAMPLE_ERRORS as error:
                self.failed_sample(name(item), error)
                continue
            self.succeeded()
            kept.append(item)
            loaded.append(value)
        return kept, loaded

def _checked_fraction(fraction: float) -> float:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"max_failure_fraction must be in [0, 1]; got {fraction}.")
    return float(fraction)


def apply_max_failure_fraction(collator, fraction: float) -> None:
    """Give `collator` (one with a [`DecodeFailureBudget`] as `failure_budget`; others are left alone) the trainer's
    `TrainingArguments.max_failure_fraction`. The value set on purpose wins: the arguments' when the collator kept
    the default ([`DEFAULT_MAX_FAILURE_FRACTION`]), the collator's when the arguments kept it; two different values
    set on both sides raise `ValueError` (which one is meant cannot be guessed)."""
    budget = getattr(collator, "failure_budget", None)
    if not isinstance(budget, DecodeFailureBudget) or budget.max_failure_fraction == fraction:
        return
    if fraction == DEFAULT_MAX_FAILURE_FRACTION:  # the arguments' default: the collator's own setting stands
        return
    if budget.max_failure_fraction != DEFAULT_MAX_FAILURE_FRACTION:
        raise ValueError(
            f"TrainingArguments.max_failure_fraction={fraction} but the data collator {type(collator).__name__} was "
            f"built with max_failure_fraction={budget.max_failure_fraction}; set it in one place (or the same value "
            "in both)."
        )
    budget.max_failure_fraction = _checked_fraction(fraction)
    if hasattr(collator, "max_failure_fraction"):  # the chat collator keeps its argument as a field
        collator.max_failure_fraction = budget.max_failure_fraction


_SPLIT_NAMES = ("train", "validation", "val", "test")


def video_path(value) -> str:
    """The file path of a video cell: a path string or a `Video(decode=False)` dict `{"path", "bytes"}`."""
    if is_torchcodec_decoder(value):
        raise ValueError(
            "This video cell is a decoded torchcodec VideoDecoder (a `datasets.Video()` column), not a path; pass it "
            "to the collator as it is, or cast the column with `dataset.cast_column(name, datasets.Video(decode=False))`."
        )
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, dict) and value.get("path"):
        return value["path"]
    if isinstance(value, dict) and value.get("bytes") is not None:
        raise ValueError("In-memory video bytes are not supported; store the videos as files and keep their paths.")
    raise ValueError(f"Expected a video path or a {{'path': ...}} dict; got {type(value).__name__}: {value!r:.80}")


def clip_span_frames(total_frames: int, fps: float, start: float, end: float) -> tuple[int, int]:
    """`(first, last)` frames (inclusive) of the clip `[start, end)` seconds of a video: the frames whose start time
    `i / fps` lies in the span (the data pipeline writes spans as `first / fps`, `(last + 1) / fps`)."""
    if not fps or fps <= 0:
        raise ValueError(f"Cannot locate a clip span in a video without a frame rate (fps={fps!r}).")
    first = max(0, math.ceil(start * fps - 1e-6))
    last = min(int(total_frames) - 1, math.ceil(end * fps - 1e-6) - 1)
    if last < first:
        raise ValueError(
            f"The clip span [{start}, {end}) s holds no frame of a {total_frames}-frame video at {fps:g} fps."
        )
    return first, last


def load_video_table(
    data_files: str | Sequence[str] | dict[str, str | Sequence[str]],
    video_column: str = "video",
    label_column: str | None = "label",
    caption_column: str | None = None,
    base_dir: str | os.PathLike | None = None,
    check_files: bool = True,
    check_decodable: bool = False,
):
    """Load a CSV / JSON-lines table of videos as a `datasets.Dataset` (or `DatasetDict` for a dict of splits).

    Args:
        data_files: file(s) ending in `.csv`, `.tsv`, `.json` or `.jsonl` (passed to `datasets.load_dataset`).
        video_column: column with the video paths; relative paths are resolved against `base_dir` (default: the
            table's folder).
        label_column: class column; string classes are encoded as a `ClassLabel` (sorted names); `None` for none.
        caption_column: caption column to keep (video–text data), if any.
        check_files: fail early, naming the first missing file, instead of in a worker mid-epoch.
        check_decodable: also open every video and decode its first frame; a `ValueError` names every file that
            fails (with the reason) instead of the collators skipping them during training. Costs one short decode
            per file.
    """
    import datasets

    files = list(data_files.values()) if isinstance(data_files, dict) else [data_files]
    flat = [f for entry in files for f in ([entry] if isinstance(entry, (str, os.PathLike)) else entry)]
    if not flat:
        raise ValueError("data_files is empty.")
    first = os.fspath(flat[0])
    suffix = Path(first).suffix.lower()
    builder = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}.get(suffix)
    if builder is None:
        raise ValueError(f"Unsupported table format {suffix!r}; expected .csv, .tsv, .json or .jsonl.")
    kwargs = {"delimiter": "\t"} if suffix == ".tsv" else {}
    loaded = datasets.load_dataset(builder, data_files=data_files, **kwargs)
    root = Path(base_dir) if base_dir is not None else Path(first).resolve().parent

    def prepare(split):
        missing = [c for c in (video_column, label_column, caption_column) if c is not None and c not in split.column_names]
        if missing:
            raise ValueError(f"Columns {missing} not found in the table; it has {split.column_names}.")
        if check_files or check_decodable:
            for relative in split[video_column]:
                if not os.path.isfile(root / relative):
                    raise FileNotFoundError(f"Video listed in the table not found: {root / relative}")
        if check_decodable:
            check_videos_decodable([str(root / relative) for relative in split[video_column]])
        if label_column is not None and split.features[label_column].dtype in ("string", "large_string"):
            split = split.class_encode_column(label_column)
        # Arrow cannot cast a string column to the Video struct, so the column is rebuilt with the new feature.
        features = split.features.copy()
        features[video_column] = datasets.Video(decode=False)
        return split.map(
            lambda row: {video_column: {"path": str(root / row[video_column]), "bytes": None}},  # absolute paths stay
            features=features,
        )

    if isinstance(data_files, dict):
        return datasets.DatasetDict({name: prepare(split) for name, split in loaded.items()})
    return prepare(loaded["train"])


def _sample_name(value) -> str:
    try:
        return video_path(value)
    except ValueError:
        return repr(value)


def check_videos_decodable(paths: Sequence[str], backend: str = "auto") -> None:
    """Decode the first frame of every video; raise a `ValueError` naming each one that fails, with its reason."""
    failures = []
    for path in paths:
        try:
            decode_video_frames(path, [0], backend=backend)
        except SAMPLE_ERRORS as error:
            failures.append(f"{path} ({type(error).__name__}: {error})")
    if failures:
        shown = "; ".join(failures[:20]) + (f"; and {len(failures) - 20} more" if len(failures) > 20 else "")
        raise ValueError(f"{len(failures)} of {len(paths)} videos cannot be decoded: {shown}")


def _folder_rows(root: Path) -> tuple[list[str], list[str]]:
    paths, classes = [], []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(class_dir.rglob("*")):
            if file.is_file() and file.suffix.lower() in VIDEO_EXTENSIONS:
                paths.append(str(file))
                classes.append(class_dir.name)
    return paths, classes


def load_video_folder(
    data_dir: str | os.PathLike, class_names: Sequence[str] | None = None, check_decodable: bool = False
):
    """Load a `videofolder` layout: `<data_dir>/<class>/<clip>.mp4` -> `Dataset` with `video` and `label`
    (`ClassLabel`, names sorted unless `class_names` is given). If `data_dir` holds split folders (`train`,
    `validation`/`val`, `test`) each with class folders, returns a `DatasetDict` with one shared label set.
    `check_decodable=True` decodes the first frame of every video and raises one `ValueError` naming each that
    fails (as [`load_video_table`])."""
    import datasets

    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"Video folder not found: {root}")
    split_dirs = [root / name for name in _SPLIT_NAMES if (root / name).is_dir()]
    sources = {d.name: d for d in split_dirs} if split_dirs else {"train": root}
    rows = {name: _folder_rows(path) for name, path in sources.items()}
    found = sorted({c for _, classes in rows.values() for c in classes})
    if not found:
        raise ValueError(f"No videos ({', '.join(VIDEO_EXTENSIONS)}) found in class sub-folders of {root}.")
    names = list(class_names) if class_names is not None else found
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise ValueError(f"Folders {unknown} are not in class_names {names}.")
    if check_decodable:
        check_videos_decodable([path for paths, _ in rows.values() for path in paths])
    features = datasets.Features({"video": datasets.Video(decode=False), "label": datasets.ClassLabel(names=names)})

    def build(paths, classes):
        return datasets.Dataset.from_dict({"video": paths, "label": [names.index(c) for c in classes]}, features=features)

    built = {name: build(*split_rows) for name, split_rows in rows.items() if split_rows[0]}
    return datasets.DatasetDict(built) if split_dirs else built["train"]


def video_source(value):
    """What the collator decodes from a video cell: an open torchcodec decoder as it is (the rows of a decoded
    `datasets.Video()` column, e.g. `load_dataset("videofolder", ...)`), otherwise the file path."""
    return value if is_torchcodec_decoder(value) else video_path(value)


class VideoCollator:
    """Decode, sample and preprocess a list of dataset rows into a model batch (runs inside DataLoader workers).

    Args:
        video_processor ([`InternVideo2VideoProcessor`]): resize / crop / normalise (its `num_frames` is used).
        mode (`str`): `"train"` — random frame per segment (the original training sampling), `"val"` — segment
            middles, `"multi_view"` — `num_clips x num_crops` test views, giving `pixel_values`
            `(B, V, T, C, H, W)`.
        video_column, label_column, caption_column: dataset columns (`None` to skip labels / captions).
        tokenizer (optional): tokenise captions into `input_ids` / `attention_mask` (padding to the longest,
            `max_length` truncation); without it captions are returned as the `captions` list.
        num_clips, num_crops: views of `"multi_view"` mode. video_backend: `"auto"`, `"pyav"`, `"torchcodec"` or
            `"decord"`.
        seed (`int`, *optional*): seeds the training sampler (per worker: `seed + worker id`) for reproducibility.
        max_failure_fraction (`float`, defaults to 0.05): a sample whose video cannot be decoded is dropped from its
            batch (logged, counted in `failure_budget`); more than this fraction of failed samples stops training
            with [`TooManyUndecodableSamplesError`]. 0 stops at the first. A batch whose every sample failed is
            replaced by the last good sample this collator saw (there is no empty batch). The package's trainers set
            it from `TrainingArguments.max_failure_fraction` ([`apply_max_failure_fraction`]).
        start_column, end_column (optional): columns with a clip span in seconds (`[start, end)`, as the data
            pipeline's JSON lines write them): frames are sampled inside the span only (`"train"` / `"val"`).

    Output: `pixel_values` float32 `(B, T, C, H, W)` (or multi-view), `labels` `(B,)` long if a label column is
    set, and the captions.
    """

    MODES = ("train", "val", "multi_view")

    def __init__(
        self,
        video_processor,
        mode: str = "val",
        video_column: str = "video",
        label_column: str | None = "label",
        caption_column: str | None = None,
        tokenizer=None,
        max_length: int = 32,
        num_clips: int = 4,
        num_crops: int = 3,
        video_backend: str = "auto",
        seed: int | None = None,
        max_failure_fraction: float = DEFAULT_MAX_FAILURE_FRACTION,
        start_column: str | None = None,
        end_column: str | None = None,
    ):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}; got {mode!r}.")
        if (start_column is None) != (end_column is None):
            raise ValueError("start_column and end_column go together: give both or neither.")
        if start_column is not None and mode == "multi_view":
            raise ValueError("Clip spans are read in 'train' and 'val' modes; 'multi_view' reads whole videos.")
        self.start_column, self.end_column = start_column, end_column
        self.video_processor = video_processor
        self.mode = mode
        self.video_column, self.label_column, self.caption_column = video_column, label_column, caption_column
        self.tokenizer, self.max_length = tokenizer, max_length
        self.num_clips, self.num_crops = num_clips, num_crops
        self.video_backend = video_backend
        self.seed = seed
        self._rng: np.random.Generator | None = None
        self.failure_budget = DecodeFailureBudget(max_failure_fraction)
        self._last_good_sample: tuple | None = None

    def _generator(self) -> np.random.Generator:
        if self._rng is None:  # created lazily so that every worker process gets its own stream
            info = torch.utils.data.get_worker_info()
            worker = info.id if info is not None else 0
            base = self.seed if self.seed is not None else int(torch.initial_seed() % 2**31)
            self._rng = np.random.default_rng(base + worker)
        return self._rng

    def _decode_clip(self, source, frame_sampling: str, span: tuple[float, float] | None = None) -> np.ndarray:
        """`num_frames` frames of a path or an open decoder, sampled by `frame_sampling` inside `span` (seconds)."""
        num_frames = self.video_processor.num_frames
        generator = self._generator() if frame_sampling == "random_segments" else None

        def indices(metadata):
            first, last = 0, metadata.total_num_frames - 1
            if span is not None:
                first, last = clip_span_frames(metadata.total_num_frames, metadata.fps, *span)
            return first + sample_frame_indices(last - first + 1, num_frames, frame_sampling, generator=generator)

        frames, _ = decode_video_frames(source, indices, backend=self.video_backend)
        return frames

    def _multi_view(self, source) -> torch.Tensor:
        if not isinstance(source, str):  # an open decoder: the views need the whole clip
            source, _ = decode_video_frames(source)
        return self.video_processor.multi_view(
            source, num_clips=self.num_clips, num_crops=self.num_crops, video_backend=self.video_backend
        )

    def _check_columns(self, row: dict) -> None:
        columns = (self.video_column, self.label_column, self.caption_column, self.start_column, self.end_column)
        wanted = [c for c in columns if c is not None]
        missing = [c for c in wanted if c not in row]
        if missing:
            raise ValueError(
                f"The collator needs the columns {wanted}, but the rows have {sorted(row)} (missing: {missing}). "
                "A plain `Trainer` drops columns its model's forward does not take: set "
                "`TrainingArguments(remove_unused_columns=False)` (the package's Trainers do), or set the collator's "
                "`video_column` / `label_column` / `caption_column` to your column names."
            )

    def _span(self, row: dict) -> tuple[float, float] | None:
        if self.start_column is None:
            return None
        return float(row[self.start_column]), float(row[self.end_column])

    def _pixel_values(self, source, span: tuple[float, float] | None) -> torch.Tensor:
        """One sample's `pixel_values` (without the batch dimension) from a path or an open decoder."""
        if self.mode == "multi_view":
            return self._multi_view(source)
        if self.mode == "train":
            clip = self._decode_clip(source, "random_segments", span)
        elif isinstance(source, str) and span is None:
            return self.video_processor(
                videos=[source], frame_sampling="segments", video_backend=self.video_backend, return_tensors="pt"
            )["pixel_values"][0]
        else:  # an open decoder or a clip span: the same "segments" frames, decoded here
            clip = self._decode_clip(source, "segments", span)
        return self.video_processor(videos=[clip], do_sample_frames=False, return_tensors="pt")["pixel_values"][0]

    def __call__(self, rows: list[dict]) -> dict:
        if not rows:
            raise ValueError("Cannot collate an empty batch.")
        self._check_columns(rows[0])
        # A malformed cell is an error of the data, not an undecodable video: it raises here, before any decoding.
        samples = [(row, video_source(row[self.video_column]), self._span(row)) for row in rows]
        kept, pixel_values = self.failure_budget.keep_decodable(
            samples,
            lambda sample: self._pixel_values(sample[1], sample[2]),
            lambda sample: _sample_name(sample[0][self.video_column]),
        )
        if not kept:
            if self._last_good_sample is None:
                raise TooManyUndecodableSamplesError(
                    f"No sample of the batch could be decoded and no earlier sample can stand in: "
                    f"{[name for name, _ in self.failure_budget.failed]}."
                )
            logger.warning("Every sample of a batch was undecodable; the last good sample stands in for them.")
            kept = [self._last_good_sample]
            pixel_values = [self._pixel_values(*self._last_good_sample[1:])]
        self._last_good_sample = kept[-1]
        rows = [row for row, *_ in kept]
        batch: dict = {"pixel_values": torch.stack(pixel_values)}
        if self.label_column is not None:
            batch["labels"] = torch.tensor([int(row[self.label_column]) for row in rows], dtype=torch.long)
        if self.caption_column is not None:
            captions = [row[self.caption_column] for row in rows]
            if self.tokenizer is not None:
                tokens = self.tokenizer(
                    captions, padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                batch["input_ids"], batch["attention_mask"] = tokens["input_ids"], tokens["attention_mask"]
            else:
                batch["captions"] = captions
        return batch
