"""Hub-ready folders: the model card every converted (and bundled) folder carries, and the upload of a finished folder.

A card has YAML metadata the Hub reads (`license` with its name and link, `pipeline_tag`, `library_name`, `tags`,
`base_model`), install instructions, usage for both routes (with the package installed, and `trust_remote_code=True`
without it: the folder carries the code and the `auto_map`), and the measured parity. [`push_folder_to_hub`] uploads a
folder that `core.save_and_verify` finished, with `huggingface_hub`'s `HfApi`, so the code files, the processor
files and the card go up together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData


__all__ = [
    "ORIGINAL_LICENSE",
    "PACKAGE_LICENSE",
    "CardLicense",
    "build_model_card",
    "card_metadata",
    "install_section",
    "push_folder_to_hub",
    "usage_section",
]

logger = logging.getLogger(__name__)

PACKAGE_NAME = "transformers-internvideo2"


@dataclass(frozen=True)
class CardLicense:
    identifier: str  # the Hub's license id
    name: str
    link: str


# The original InternVideo2 code and OpenGVLab's model repositories are published under Apache-2.0.
ORIGINAL_LICENSE = CardLicense(
    "apache-2.0", "Apache License 2.0 (OpenGVLab InternVideo)", "https://github.com/OpenGVLab/InternVideo/blob/main/LICENSE"
)
# Models trained by the package's own recipes carry the package's license.
PACKAGE_LICENSE = CardLicense("apache-2.0", "Apache License 2.0", "https://www.apache.org/licenses/LICENSE-2.0")


def card_metadata(
    pipeline_tag: str | None,
    tags: Sequence[str],
    base_model: str | Sequence[str] | None,
    license: CardLicense = ORIGINAL_LICENSE,
):
    """The `ModelCardData` of a saved folder (`library_name: transformers`; `internvideo2` and `custom_code` tags)."""
    all_tags = list(dict.fromkeys(["internvideo2", "video", "custom_code", *tags]))
    return ModelCardData(
        library_name="transformers",
        license=license.identifier,
        license_name=license.name,
        license_link=license.link,
        pipeline_tag=pipeline_tag,
        tags=all_tags,
        base_model=list(base_model) if isinstance(base_model, (list, tuple)) else base_model,
    )


def install_section() -> str:
    return f"""## Install

```bash
pip install {PACKAGE_NAME}          # the classes, processors, pipelines and converters
# or nothing beyond `transformers` (>= 5.23), `torch` and `torchvision`: load with trust_remote_code=True (below)
```
"""


def usage_section(
    model_auto_class: str,
    processor_auto_class: str | None,
    example: str,
    pipeline_task: str | None = None,
    pipeline_call: str | None = None,
) -> str:
    """Usage with the package installed and through `trust_remote_code` (the folder's code and `auto_map`).
    `example` is Python using `model` (and `processor`) after they are loaded."""
    processor_import = f", {processor_auto_class}" if processor_auto_class else ""
    processor_line = (
        f'processor = {processor_auto_class}.from_pretrained("<this folder or repo>"{{remote}})\n'
        if processor_auto_class
        else ""
    )
    pipeline_lines = ""
    if pipeline_task:
        pipeline_lines = (
            f'\nclassifier = pipeline("{pipeline_task}", model="<this folder or repo>"{{remote}})\n'
            f"{pipeline_call or 'classifier(video)'}\n"
        )
    pipeline_import = ", pipeline" if pipeline_task else ""
    body = (
        f"from transformers import {model_auto_class}{processor_import}{pipeline_import}\n\n"
        f'model = {model_auto_class}.from_pretrained("<this folder or repo>"{{remote}}).eval()\n'
        f"{processor_line}{example.strip()}\n{pipeline_lines}"
    )
    with_package = "import transformers_internvideo2  # registers the classes with the Auto classes\n" + body.replace(
        "{remote}", ""
    )
    remote = body.replace("{remote}", ", trust_remote_code=True")
    return f"""## Usage

With the package installed:

```python
{with_package.rstrip()}
```

Without the package (`trust_remote_code=True` runs the modeling and processing files stored next to the weights;
read them first, as for any remote code):

```python
{remote.rstrip()}
```

Loading is strict: a missing or unexpected weight is an error naming it (see the package's `docs/reliability.md`).
"""


def build_model_card(metadata, title: str, sections: Sequence[str]):
    """A `huggingface_hub.ModelCard` with the YAML metadata, a title and the given Markdown sections."""
    body = "\n".join(section.strip() + "\n" for section in sections if section)
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n# {title}\n\n{body}")


def push_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
) -> str:
    """Create (or reuse) the model repository `repo_id` and upload every file of `folder` in one commit; returns
    the repository id the Hub resolved."""
    folder = Path(folder)
    if not (folder / "config.json").is_file() and not (folder / "README.md").is_file():
        raise FileNotFoundError(f"{folder} is not a finished model folder (no config.json or README.md).")
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, repo_type="model", exist_ok=True, private=private).repo_id
    api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        commit_message=commit_message or f"Upload {folder.name} ({PACKAGE_NAME})",
        ignore_patterns=["__pycache__/*", "*.pyc"],
    )
    logger.info("uploaded %s to the Hub repository %s", folder, repo_id)
    return repo_id
