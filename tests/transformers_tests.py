"""Make the Transformers test mixins importable (``VideoProcessingTestMixin``, ``ModelTesterMixin``, ``ConfigTester``).

The wheel of ``transformers`` ships no tests; the **sdist** of the pinned version does (only the top-level
``tests/*.py`` files). This helper

1. uses ``$TRANSFORMERS_TESTS_DIR`` if set, else ``~/.cache/transformers_internvideo2/transformers-<version>-tests``;
2. if that directory is not populated yet, takes the sdist from ``$TRANSFORMERS_SDIST`` (a ``.tar.gz``) or downloads
   it with ``pip download --no-deps --no-binary :all: transformers==<version>`` (PyPI only), and extracts its
   ``tests/`` into ``<dir>/transformers_upstream_tests/`` (a package, since the files use relative imports);
3. adds small stand-ins for the three helper sub-packages that the sdist does **not** ship but that
   ``test_modeling_common.py`` / ``test_configuration_common.py`` import (written here, see ``_STUBS``):
   ``generation.test_utils.GenerationTesterMixin`` and ``exporters.test_export.ExportTesterMixin`` are empty
   mixins (so generation/export tests do not run), ``utils.test_configuration_utils.config_common_kwargs`` is a
   dict of non-default values for common ``PreTrainedConfig`` attributes;
4. puts ``<dir>`` on ``sys.path``.

Usage from a test module::

    from transformers_tests import import_upstream
    VideoProcessingTestMixin = import_upstream("test_video_processing_common").VideoProcessingTestMixin

``import_upstream`` raises ``unittest.SkipTest`` (so pytest skips the module/test) when the sdist cannot be obtained,
e.g. with no network and no cache.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

import transformers


PACKAGE_NAME = "transformers_upstream_tests"
VERSION = transformers.__version__

_STUBS = {
    "generation/__init__.py": "",
    "generation/test_utils.py": (
        '"""Stand-in written by transformers-internvideo2: the sdist lacks tests/generation/."""\n\n\n'
        "class GenerationTesterMixin:\n"
        '    """Empty: generation tests are not available from the sdist."""\n'
    ),
    "exporters/__init__.py": "",
    "exporters/test_export.py": (
        '"""Stand-in written by transformers-internvideo2: the sdist lacks tests/exporters/."""\n\n\n'
        "class ExportTesterMixin:\n"
        '    """Empty: export tests are not available from the sdist."""\n'
    ),
    "utils/__init__.py": "",
    "utils/test_configuration_utils.py": (
        '"""Stand-in written by transformers-internvideo2: the sdist lacks tests/utils/.\n\n'
        "Non-default values for common `PreTrainedConfig` attributes, used by `ConfigTester.check_config_arguments_init`.\n"
        '"""\n\n'
        "config_common_kwargs = {\n"
        '    "return_dict": False,\n'
        '    "output_hidden_states": True,\n'
        '    "output_attentions": True,\n'
        '    "dtype": "float16",\n'
        '    "chunk_size_feed_forward": 5,\n'
        '    "architectures": ["BertModel"],\n'
        '    "id2label": {0: "label"},\n'
        '    "label2id": {"label": "0"},\n'
        '    "problem_type": "regression",\n'
        "}\n"
    ),
}


def tests_dir() -> Path:
    """The directory that holds (or will hold) the ``transformers_upstream_tests`` package."""
    env = os.environ.get("TRANSFORMERS_TESTS_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "transformers_internvideo2" / f"transformers-{VERSION}-tests"


def _download_sdist(dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
        "-q", f"transformers=={VERSION}", "-d", str(dest),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    found = sorted(dest.glob(f"transformers-{VERSION}.tar.gz"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"pip download of the transformers=={VERSION} sdist failed: {proc.stderr.strip()[-2000:]}")
    return found[0]


def _extract_tests(sdist: Path, target: Path) -> None:
    prefix = f"transformers-{VERSION}/tests/"
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        pkg = tmp / PACKAGE_NAME
        pkg.mkdir()
        with tarfile.open(sdist, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
            if not any(m.name.endswith("test_video_processing_common.py") for m in members):
                raise RuntimeError(f"{sdist} has no tests/test_video_processing_common.py")
            for member in members:
                rel = member.name[len(prefix) :]
                out = pkg / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for rel, text in _STUBS.items():
            out = pkg / rel
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(text)
        (pkg / "__init__.py").write_text(f'"""tests/ of the transformers {VERSION} sdist (+ stand-ins)."""\n')
        (pkg / "VERSION").write_text(VERSION + "\n")
        final = target / PACKAGE_NAME
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(pkg, final)  # atomic: concurrent test processes never see a half-extracted package
        except OSError:
            # another process installed it in the meantime: fine if that copy is complete
            marker = final / "VERSION"
            if not (marker.exists() and marker.read_text().strip() == VERSION):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_upstream_tests() -> Path:
    """Populate the cache if needed, put it on ``sys.path`` and return the package directory."""
    root = tests_dir()
    pkg = root / PACKAGE_NAME
    marker = pkg / "VERSION"
    if not (marker.exists() and marker.read_text().strip() == VERSION):
        root.mkdir(parents=True, exist_ok=True)
        sdist_env = os.environ.get("TRANSFORMERS_SDIST")
        if sdist_env:
            _extract_tests(Path(sdist_env), root)
        else:
            with tempfile.TemporaryDirectory(dir=root) as dl:
                _extract_tests(_download_sdist(Path(dl)), root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return pkg


def import_upstream(module: str):
    """Import ``transformers_upstream_tests.<module>``; ``unittest.SkipTest`` if the sdist is unobtainable."""
    try:
        ensure_upstream_tests()
    except Exception as err:  # no network and no cache: skip rather than fail the whole suite
        raise unittest.SkipTest(f"transformers {VERSION} test sources unavailable: {err}") from err
    return importlib.import_module(f"{PACKAGE_NAME}.{module}")
