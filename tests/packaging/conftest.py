"""Fixtures for the packaging tests: the packaging scripts loaded as modules."""

from __future__ import annotations

from types import ModuleType

import pytest
from packaging_helpers import PACKAGING, SPEC_DIR, load_script


@pytest.fixture(scope="session")
def bundle_rules() -> ModuleType:
    return load_script(SPEC_DIR / "bundle_rules.py", "bundle_rules")


@pytest.fixture(scope="session")
def make_icons() -> ModuleType:
    return load_script(PACKAGING / "make_icons.py", "celeste_make_icons")
