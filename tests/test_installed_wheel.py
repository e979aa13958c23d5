"""Installed, not cloned: build the wheel, install it into a fresh virtual environment outside the repository, and run
`internvideo2 demo` there, with no `../shared` and no source checkout in sight; the bundled folders hold no code and
the Hub-ready export of one is written from the installed package.

The fresh environment gets the package from the wheel only; its dependencies (torch, transformers, the offline asset
packages) are made importable by a `.pth` line pointing at the test environment's site-packages. A `.pth` line adds
that folder to `sys.path` without running the `.pth` files inside it, so the editable install of the checkout is *not*
picked up; the test asserts that the package is imported from the new environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_the_demo_outside_the_repository(tmp_path):
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir),
         str(REPO_ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheel_dir.glob("transformers_internvideo2-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    target = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                          text=True).strip())  # fmt: skip
    # the wheel's files go into the new environment (pip of the test environment, targeting it)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    dependencies = sysconfig.get_paths()["purelib"]
    (target / "zz_test_dependencies.pth").write_text(dependencies + "\n", encoding="utf-8")
    # the console script, as pip would write it into the environment's bin/
    script = venv / "bin" / "internvideo2"
    script.write_text(f"#!{python}\nimport sys\nfrom transformers_internvideo2.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "INTERNVIDEO2_SHARED"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    where = subprocess.run(
        [str(python), "-c", "import transformers_internvideo2 as t, sys; print(t.__file__)"],
        capture_output=True, text=True, cwd=workdir, env=env, timeout=600,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr[-3000:]
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout
    demo = subprocess.run(
        [str(script), "demo", "--clips", "8", "--seed", "1", "--no-progress"],
        capture_output=True, text=True, cwd=workdir, env=env, timeout=1200,
    )  # fmt: skip
    assert demo.returncode == 0, (demo.stdout[-3000:], demo.stderr[-3000:])
    # the real video is the clip shipped inside the installed package, not a file of the checkout
    assert str(target) in demo.stdout and "example1.mp4" in demo.stdout, demo.stdout[-3000:]
    assert "Traceback" not in demo.stderr
    # the bundled folders ship without code copies; the Hub-ready export writes them from the installed package
    bundled = target / "transformers_internvideo2" / "shapes_world" / "bundled"
    assert (bundled / "shapes-direction-classifier" / "model.safetensors").is_file()
    assert sorted(path.name for path in bundled.glob("*/*.py")) == []
    export = subprocess.run(
        [str(python), "-m", "transformers_internvideo2.shapes_world.bundled.hub_export", "shapes-direction-classifier",
         str(tmp_path / "hub")],
        capture_output=True, text=True, cwd=workdir, env=env, timeout=600,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr[-3000:]
    assert (tmp_path / "hub" / "modeling_internvideo2_vision.py").is_file()
    # nothing was written into the installed package
    assert not any(path.suffix in {".tmp", ".partial"} for path in (target / "transformers_internvideo2").rglob("*"))
