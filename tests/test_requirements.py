"""The dependency lists agree: setup.py's lower bounds, requirements-dev.txt (the tested pins), requirements-lower.txt
(the declared minimums, built and tested by `.ci/run-lower-bounds`) and requirements-assets.txt (packages installed
with --no-deps into both environments)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


REPO_ROOT = Path(__file__).resolve().parent.parent


def read_pins(name: str) -> dict[str, Version]:
    """`{package: version}` of a requirements file made of `package==version` lines and comments."""
    pins = {}
    for number, line in enumerate((REPO_ROOT / name).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{name}:{number}: not an exact pin: {line}"
        pins[canonicalize_name(requirement.name)] = Version(specifiers[0].version)
    return pins


def declared_requirements() -> list[Requirement]:
    """`install_requires` and every extra of setup.py, read without running it."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = node.value
    install = ast.literal_eval(values["INSTALL_REQUIRES"])
    extras = ast.literal_eval(values["EXTRAS"])
    return [Requirement(text) for text in install + [item for group in extras.values() for item in group]]


def environment_pins(name: str) -> dict[str, Version]:
    """What an environment built from `name` gets: its pins plus the asset packages (installed into both)."""
    return {**read_pins("requirements-assets.txt"), **read_pins(name)}


def test_lower_file_pins_every_declared_minimum_exactly():
    lower = environment_pins("requirements-lower.txt")
    bounded = 0
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        assert name in lower, f"{name} (setup.py) is missing from requirements-lower.txt (and -assets.txt)"
        assert requirement.specifier.contains(lower[name]), f"{name}=={lower[name]} violates setup.py's {requirement}"
        minimums = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        if minimums:
            bounded += 1
            assert lower[name] == max(minimums), f"lower pin {name}=={lower[name]}, setup.py: {requirement}"
    assert bounded >= 4  # torch, torchvision, transformers, av (and bitsandbytes)


def test_dev_pins_satisfy_setup_py_and_lower_file_covers_them():
    dev, lower = read_pins("requirements-dev.txt"), read_pins("requirements-lower.txt")
    assert not set(dev) & set(read_pins("requirements-assets.txt")), "a package pinned in two files"
    installed = environment_pins("requirements-dev.txt")
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        assert name in installed, f"{name} (setup.py) is not pinned in requirements-dev.txt (or -assets.txt)"
        assert requirement.specifier.contains(installed[name]), f"{name}=={installed[name]} violates {requirement}"
    assert set(lower) == set(dev), f"packages in one file only: {sorted(set(lower) ^ set(dev))}"
    for name in lower:
        assert lower[name] <= dev[name], f"{name}: the lower-bound pin {lower[name]} is newer than the dev pin"


@pytest.mark.parametrize("name", ["requirements-dev.txt", "requirements-lower.txt"])
def test_setuptools_pin_installs_with_torch_2_11_and_2_14(name):
    # torch 2.11 requires setuptools<82, torch 2.14 requires setuptools>=77.0.3: one pin must serve both
    assert Version("77.0.3") <= read_pins(name)["setuptools"] < Version("82")
