"""Model kinds are registered by module path and imported on first use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eduplatform.registry import kinds

ROOT = Path(__file__).resolve().parents[2]


def test_start_up_does_not_import_pytorch() -> None:
    """Django set-up (what every manage.py command and web worker pays) leaves torch out."""
    code = (
        "import sys, django; django.setup(); "
        "from eduplatform.registry.kinds import kind_names; "
        "assert kind_names() == ['churn', 'recommender'], kind_names(); "
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "eduplatform.settings.test"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_first_use_imports_the_kind_and_sets_torch_threads(monkeypatch, settings) -> None:
    monkeypatch.setattr(kinds, "_KINDS", {})
    before = torch.get_num_threads()
    settings.TORCH_THREADS = 1
    try:
        torch.set_num_threads(2)
        kind = kinds.get_kind("churn")
        assert kind.name == "churn" and kind.primary_metric
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="churn, recommender"):
        kinds.get_kind("nope")


def test_titles_and_order_come_from_the_registration(monkeypatch) -> None:
    """The registry hard-codes no kind: a kind registered with a lower order is listed first."""
    monkeypatch.setattr(kinds, "_MODULES", dict(kinds._MODULES))
    kinds.register_kind_module("zzz", "nowhere.kind", title="Zed model", order=1)
    assert kinds.kind_names() == ["zzz", "churn", "recommender"]
    assert kinds.kind_title("zzz") == "Zed model"
    assert str(kinds.kind_title("churn")) == "Churn risk model"
