"""Every argument of every management command of our apps says what it is for."""

from __future__ import annotations

import argparse

import pytest
from django.core.management import get_commands, load_command_class

OUR_APPS = ("analytics", "eduplatform.registry", "churn", "recommender")


def our_commands() -> list[tuple[str, str]]:
    return sorted((name, app) for name, app in get_commands().items() if app in OUR_APPS)


def test_our_apps_have_commands():
    names = {name for name, _ in our_commands()}
    assert {"seed_demo", "import_oulad", "evaluate_churn", "evaluate_recommender"} <= names
    assert {"compression_report", "retrain", "export_learner", "erase_learner"} <= names


@pytest.mark.parametrize(("name", "app"), our_commands())
def test_every_argument_has_help(name, app):
    parser = load_command_class(app, name).create_parser("manage.py", name)
    bare = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if "-h" not in action.option_strings
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert bare == [], f"{name}: no help for {bare}"
