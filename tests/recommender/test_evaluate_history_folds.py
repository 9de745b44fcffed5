"""evaluate_recommender --history / --folds forward (#23 item 1): protocol and bad input."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bench.recommender_subset import subset
from eduplatform.ml.datasets.synthetic import generate, write_oulad_folder

SPLIT = 35


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hist")
    write_oulad_folder(generate(learners=60, courses=2, days=130, seed=3), root / "all")
    subset(root / "all", root / "early", ["2026A"])
    subset(root / "all", root / "late", ["2026B"])
    return root


def run(*args: str) -> str:
    out = StringIO()
    call_command("evaluate_recommender", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_history_trains_every_timeline_model_and_keeps_the_keys(folders, tmp_path):
    target = tmp_path / "h.json"
    args = ["--data", str(folders / "late"), "--split-day", str(SPLIT), "--json", str(target)]
    text = run(*args, "--history", str(folders / "early"), "--candidates", "mlp_ranker")
    result = json.loads(target.read_text())
    assert result["history_runs"] == 1
    assert result["history"] == [str(folders / "early")]
    for name in ("recommender", "mlp_ranker", "decayed_popularity", "transitions", "calendar"):
        assert name in text
        m = result["models"][name]
        assert 0.0 <= m["ndcg"] <= 1.0 and "recall" in m and "coverage" in m
    assert result["models"]["decayed_popularity"]["chosen"]["half_life"] in (1, 2, 3, 5, 7, 14, 28)
    # mlp_ranker became the product: an alias with the product's figures, no second fit
    assert result["models"]["mlp_ranker"]["alias_of"] == "recommender"
    assert result["models"]["mlp_ranker"]["ndcg"] == result["models"]["recommender"]["ndcg"]
    # the id-based peers do not use history: same figure with and without it
    run(*args[:-1], str(tmp_path / "n.json"))
    plain = json.loads((tmp_path / "n.json").read_text())
    assert plain["history_runs"] == 0
    for name in ("popularity", "recent_popularity", "item_knn"):
        assert plain["models"][name]["ndcg"] == result["models"][name]["ndcg"]


def test_forward_folds_table_and_json(folders, tmp_path):
    target = tmp_path / "f.json"
    text = run(
        "--data",
        str(folders / "all"),
        "--folds",
        "forward",
        "--json",
        str(target),
        "--candidates",
        "mlp_ranker",
    )
    result = json.loads(target.read_text())
    order = ["split_60", "split_100", "split_150", "later_2026B_split_100"]
    assert result["fold_order"] == order and set(result["folds"]) == set(order)
    assert "models" not in result
    later = result["folds"]["later_2026B_split_100"]
    assert later["history_runs"] == 1 and later["course_runs"] == 1
    assert result["folds"]["split_60"]["course_runs"] == 2
    assert "recommender" in result["mean"] and "mlp_ranker" in result["mean"]
    assert "mean" in text and "split_60" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--history", "{all}"], "in both --history and --data"),
        (["--history", "{early}", "--history", "{early}"], "is in two --history"),
        (["--history", "{root}/missing"], "no such directory"),
    ],
)
def test_bad_history_is_one_line_and_writes_nothing(folders, tmp_path, extra, message):
    target = tmp_path / "x.json"
    extra = [e.format(all=folders / "all", early=folders / "early", root=folders) for e in extra]
    with pytest.raises(CommandError) as err:
        run("--data", str(folders / "all"), "--json", str(target), *extra)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not target.exists()


def test_folds_choice_is_checked(folders):
    with pytest.raises(CommandError):
        run("--data", str(folders / "all"), "--folds", "backward")


def test_subset_refuses_to_write_into_the_source(folders):
    with pytest.raises(SystemExit):
        subset(folders / "all", folders / "all" / "inner", ["2026A"])
    assert not Path(folders / "all" / "inner").exists()


def test_research_candidates_are_opt_in(folders, tmp_path):
    """The product is compared with its peers only; the former candidate's name is listed
    only when asked for, and an unknown one is a one-line error."""
    target = tmp_path / "plain.json"
    run("--data", str(folders / "late"), "--split-day", str(SPLIT), "--json", str(target))
    result = json.loads(target.read_text())
    assert "mlp_ranker" not in result["models"]
    assert "recommender" in result["models"] and "decayed_popularity" in result["models"]
    with pytest.raises(CommandError, match="unknown candidate 'nope'"):
        run("--data", str(folders / "late"), "--candidates", "nope")
