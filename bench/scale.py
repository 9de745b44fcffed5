"""Scale: feature extraction and training time against the number of events.

Run: python -m bench.run --only scale [--full]

Sizes (events in `analytics_learningevent`):
  ~1M   OULAD 2014B, first 600 learners of each run (a database of its own)
  ~3M   OULAD 2013J                          \
  ~5M   + 2013B                   (full only) | one database, presentations
  ~7M   + 2014B: all of OULAD here (full only) | added one after another
  ~10M  + `seed_demo` top-up      (full only) /
At each size, in fresh processes (best of REPEATS), what retraining does: churn training features
(`training_sets`) and training (`train_churn_model`, default settings), the
recommender's frames (`learning_data(with_items=True, with_activity=False)`, as its
retraining reads them) and `Recommender.fit`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
from pathlib import Path

from bench.common import RESULTS, SHARED_OULAD, Section, manage, recreate_database, table
from bench.features import measure_subprocess

SMALL_DB = "eduplatform_bench_feat_scale1m"
BIG_DB = "eduplatform_bench_feat_scale"
DEMO_EVENTS_PER_LEARNER = 230  # seed_demo, 10 runs, 200 days (measured)
TARGET_TOP = 10_000_000
REPEATS = 3  # measurements per size, each in a fresh process; the best is reported


def _events(name: str) -> int:
    import psycopg

    from bench.common import database_url

    with psycopg.connect(database_url(name).replace("postgres://", "postgresql://")) as conn:
        return int(conn.execute("SELECT count(*) FROM analytics_learningevent").fetchone()[0])


def _import(name: str, presentations: str, *extra: str) -> float:
    started = time.perf_counter()
    out = manage(
        "import_oulad",
        str(SHARED_OULAD),
        "--no-progress",
        "--presentations",
        presentations,
        *extra,
        name=name,
    )
    print(out.stdout.strip(), file=sys.stderr)
    return time.perf_counter() - started


def measure() -> dict:
    import django

    django.setup()
    from analytics.learning_data import learning_data
    from analytics.models import Course
    from churn.features import training_sets
    from churn.model.training import ChurnSettings, train_churn_model
    from recommender.model.predictor import Recommender
    from recommender.model.timeline import Params

    as_of = dt.date.today()  # after every OULAD run; the demo runs are in progress
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    sets = training_sets(as_of=as_of)
    seconds["churn_features"] = time.perf_counter() - started
    started = time.perf_counter()
    _, report = train_churn_model(sets.train, sets.val, ChurnSettings())
    seconds["churn_train"] = time.perf_counter() - started
    courses = list(Course.objects.filter(start_date__lt=as_of).order_by("start_date", "id"))
    started = time.perf_counter()
    # As the recommender's retraining reads them (recommender/services.py): no rollup.
    data = learning_data(
        course_ids=[c.id for c in courses], until=as_of, with_items=True, with_activity=False
    )
    seconds["recommender_features"] = time.perf_counter() - started
    days = {c.id: min(c.day_of(as_of), c.length_days) for c in courses}
    started = time.perf_counter()
    Recommender.fit(data, days, Params())
    seconds["recommender_fit"] = time.perf_counter() - started
    return {
        "seconds": seconds,
        "courses": len(courses),
        "churn_rows": len(sets.train) + len(sets.val),
        "churn_val_auc": report.val_auc,
        # Epochs run, summed over the ensemble's networks (early stopping decides).
        "churn_epochs": sum(len(h) for h in report.history),
        # The refit on train + validation runs each network's best epoch count.
        "churn_refit_epochs": sum(report.best_epochs),
        "churn_networks": len(report.best_epochs),
        "churn_train_rows": len(sets.train),
        "rollup_rows": _rollup_rows(as_of),
        "item_rows": len(data.item_activity),
        "learners": int(data.enrolments["learner_id"].nunique()),
    }


def _rollup_rows(as_of: dt.date) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_dailyactivity WHERE date < %s", [as_of])
        return int(cursor.fetchone()[0])


STEPS = {
    "churn_features": "churn features",
    "churn_train": "churn training",
    "recommender_features": "recommender frames",
    "recommender_fit": "recommender fit",
}


def _plot(points: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [p["events"] / 1e6 for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for key, label in STEPS.items():
        ax.plot(events, [p["seconds"][key] for p in points], "o-", label=label)
    total = [sum(p["seconds"].values()) for p in points]
    ax.plot(events, total, "s-", color="black", label="all four")
    ref = [total[0] * e / events[0] for e in events]
    ax.plot(events, ref, "--", color="grey", label="linear from the smallest size")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events (millions, log)")
    ax.set_ylabel("seconds (log)")
    ax.set_title("Retraining cost against events (OULAD + seed_demo)")
    ax.set_xticks(events)
    ax.set_xticklabels([f"{e:.1f}" for e in events])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "scale.png")
    plt.close(fig)


def _slope(xs: list[float], ys: list[float]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / den if den else 0.0


def run(full: bool) -> Section:
    points: list[dict] = []
    imports: list[dict] = []

    def point(name: str, label: str) -> None:
        # Best of REPEATS fresh processes per step: on this shared box one run of the
        # same code varied by up to 40% (steal time); the minimum is the code's cost.
        runs = [measure_subprocess("scale", name) for _ in range(REPEATS)]
        m = dict(runs[0])
        m["runs"] = [r["seconds"] for r in runs]
        m["seconds"] = {key: min(r["seconds"][key] for r in runs) for key in m["seconds"]}
        m.update(events=_events(name), label=label)
        print(f"scale: {label}: {m['events']:,} events {m['seconds']}", file=sys.stderr)
        points.append(m)
        Path("/tmp/bench_scale_points.json").write_text(json.dumps(points))  # in case of a stop

    recreate_database(SMALL_DB)
    manage("migrate", "--noinput", name=SMALL_DB)
    imports.append(
        {
            "what": "2014B, 600 per run",
            "seconds": _import(SMALL_DB, "2014B", "--max-students", "600"),
        }
    )
    point(SMALL_DB, "2014B, first 600 learners per run")
    recreate_database(BIG_DB)
    manage("migrate", "--noinput", name=BIG_DB)
    steps = [("2013J", "2013J")]
    if full:
        steps += [("2013B", "+ 2013B"), ("2014B", "+ 2014B (all OULAD here)")]
    for presentation, label in steps:
        imports.append({"what": presentation, "seconds": _import(BIG_DB, presentation)})
        point(BIG_DB, label)
    if full:
        missing = TARGET_TOP - _events(BIG_DB)
        learners = max(100, round(missing / DEMO_EVENTS_PER_LEARNER))
        started = time.perf_counter()
        out = manage(
            "seed_demo", "--learners", str(learners), "--courses", "10", "--days", "200",
            "--seed", "29", name=BIG_DB,
        )  # fmt: skip
        print(out.stdout.strip(), file=sys.stderr)
        imports.append(
            {"what": f"seed_demo {learners} learners", "seconds": time.perf_counter() - started}
        )
        point(BIG_DB, f"+ seed_demo ({learners:,} learners, 10 runs)")
    return render(points, imports, full)


def _churn_work(p: dict) -> int:
    """Churn training's row-epochs: the early-stopping fit, then the refit on train +
    validation for the best epochs (older results, without the refit, give the fit's)."""
    refit = p["churn_rows"] * p.get("churn_refit_epochs", 0)
    return p["churn_train_rows"] * p["churn_epochs"] + refit


def _work_note(points: list[dict]) -> str:
    """Churn training time per unit of work (rows x epochs, fit and refit), per size."""
    if not all("churn_epochs" in p for p in points):
        return ""
    rows = [
        [
            p["label"],
            p["churn_train_rows"],
            p["churn_epochs"],
            p.get("churn_refit_epochs", ""),
            _churn_work(p),
            p["seconds"]["churn_train"],
            1e6 * p["seconds"]["churn_train"] / _churn_work(p),
        ]
        for p in points
    ]
    return (
        "\n\nChurn training runs every network of the ensemble until early stopping, at most "
        "`max_epochs` epochs and `max_steps` Adam steps (the step budget caps the epochs once "
        "the rows pass about 51,000), then refits each on train + validation for its best "
        "epochs; so its time is about rows x epochs, fit and refit, and early stopping picks "
        "the epochs (on OULAD the best epochs are 2-3, on the synthetic demo runs 5-8). Per "
        "unit of that work, which is what the code's cost per row is:\n\n"
        + table(
            [
                "data",
                "training rows",
                "epochs run (all networks)",
                "refit epochs (all networks)",
                "row-epochs (fit + refit)",
                "seconds",
                "us per row-epoch",
            ],
            rows,
        )
        + "\n\n"
    )


def _work_growth(first: dict, last: dict) -> str:
    """One sentence: churn training's work against its time, smallest to largest size."""
    if "churn_refit_epochs" not in first or "churn_refit_epochs" not in last:
        return ""

    def per_network(p: dict, key: str) -> float:
        return p[key] / p.get("churn_networks", 4)  # older results: the default 4 seeds

    def cost(p: dict) -> float:
        return 1e6 * p["seconds"]["churn_train"] / _churn_work(p)

    return (
        "Its work (row-epochs, fit + refit) grew "
        f"{_churn_work(last) / _churn_work(first):.1f}x and its time "
        f"{last['seconds']['churn_train'] / first['seconds']['churn_train']:.1f}x: at the "
        f"smallest size each network stopped after about {per_network(first, 'churn_epochs'):.0f} "
        f"epochs with a best epoch of {per_network(first, 'churn_refit_epochs'):.0f} (the smallest "
        f"size keeps 600 learners per run), at the largest after "
        f"{per_network(last, 'churn_epochs'):.0f} with {per_network(last, 'churn_refit_epochs'):.0f}. "
        "The cost per row-epoch does not grow; the epochs are what the data supports, capped "
        "by `max_epochs` and, past about 51,000 rows, by the step budget, so a retraining's "
        "cost is at most linear in its rows and then constant per network. "
        f"The time grew less than the work because a row-epoch cost {cost(first):.1f} us at "
        f"the smallest size against {cost(last):.1f} us at the largest: fixed costs per epoch "
        "and per retraining (validation scoring, preprocessing, calibration) weigh more on "
        f"{first['churn_train_rows']:,} rows. The per-step cuts of 95776a4 (dropout masks, "
        "no sequence gather, foreach Adam; results identical bit for bit) took the larger "
        "sizes from 5.8-6.9 to 4.6-5.2 us per row-epoch; before them churn training grew "
        "13.3-13.5x between these two sizes (runs of 2026-12-03 17:34 and 18:38). "
    )


def render(points: list[dict], imports: list[dict], full: bool) -> Section:
    """The section from measured points (also to re-render a saved scale.json).

    Long because it writes one report section (table rows and the plot) from one result dict.
    """
    _plot(points)
    rows = []
    for i, p in enumerate(points):
        s = p["seconds"]
        total = sum(s.values())
        if i == 0:
            growth = ["", ""]
        else:
            q = points[i - 1]
            ev = p["events"] / q["events"]
            growth = [f"{ev:.2f}x", f"{total / sum(q['seconds'].values()):.2f}x"]
        rows.append(
            [p["label"], p["events"], p["rollup_rows"], p["churn_rows"], s["churn_features"], s["churn_train"],
             s["recommender_features"], s["recommender_fit"], total, *growth]
        )  # fmt: skip
    first, last = points[0], points[-1]
    ev = last["events"] / first["events"]
    growth_rows = []
    for key, label in STEPS.items():
        f = last["seconds"][key] / first["seconds"][key]
        slope = _slope([p["events"] for p in points], [p["seconds"][key] for p in points])
        growth_rows.append(
            [label, f"{f:.2f}x", f"{ev:.2f}x", f"{slope:.2f}", "yes" if f <= ev * 1.1 else "NO"]
        )
    total_f = sum(last["seconds"].values()) / sum(first["seconds"].values())
    total_slope = _slope(
        [p["events"] for p in points], [sum(p["seconds"].values()) for p in points]
    )
    growth_rows.append(["all four", f"{total_f:.2f}x", f"{ev:.2f}x", f"{total_slope:.2f}", "yes" if total_f <= ev * 1.1 else "NO"])  # fmt: skip
    last_step = ""
    if len(points) >= 2:
        a, b = points[-2], points[-1]
        grown = {
            "events": b["events"] / a["events"],
            "learners": b["learners"] / a["learners"],
            "rollup rows": b["rollup_rows"] / a["rollup_rows"],
            "churn rows": b["churn_rows"] / a["churn_rows"],
            "time": sum(b["seconds"].values()) / sum(a["seconds"].values()),
        }
        last_step = (
            f"From {a['label']} to {b['label']}: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in grown.items())
            + (
                ". That step grows faster than the events: the demo top-up adds many learners "
                "with few events each, in runs still in progress (more churn rows and rollup "
                "rows per event than OULAD), and 10 more runs. "
                + (
                    "Churn features grew "
                    f"{b['seconds']['churn_features'] / a['seconds']['churn_features']:.2f}x, "
                    "close to runs x rollup rows "
                    f"({b['courses'] * b['rollup_rows'] / (a['courses'] * a['rollup_rows']):.2f}x)"
                    ": the per-run feature build (`build_dataset`, every cut-off of every run) "
                    "grows with runs and their rows. "
                    if b["seconds"]["churn_features"] / a["seconds"]["churn_features"]
                    > grown["events"]
                    else ""
                )
                if grown["time"] > grown["events"]
                else ". "
            )
        )
    body = (
        f"Each size measured {REPEATS} times, each in a fresh process, and per step the best "
        "time of those runs is reported (the time of a retraining, not a "
        "micro-benchmark), as of today (every OULAD run finished; the demo runs, if any, in "
        "progress). Churn training uses the default `ChurnSettings` and the recommender the "
        "default `Params`, as a retraining without parameters does.\n\n"
        + table(
            [
                "data",
                "events",
                "rollup rows",
                "churn rows",
                "churn features s",
                "churn train s",
                "rec. frames s",
                "rec. fit s",
                "total s",
                "events vs previous",
                "time vs previous",
            ],
            rows,
        )
        + "\n\n![seconds against events](bench/scale.png)\n\n"
        "Growth from the smallest to the largest size, and the log-log slope over all sizes "
        "(1.0 = linear):\n\n"
        + table(["step", "time grew", "events grew", "slope", "at most linear"], growth_rows)
        + '\n\nTarget: cost grows at most linearly with events ("at most linear": time grew '
        "no more than 1.1x the events' growth, the run-to-run noise left on this shared 2-core box). "
        + last_step
        + _work_note(points)
        + f"From the smallest to the largest size the churn rows grew "
        f"{last['churn_rows'] / first['churn_rows']:.2f}x and the learners "
        f"{last['learners'] / first['learners']:.2f}x: churn training time follows its rows and "
        "the epochs early stopping picks (within the step budget), not the events. "
        + _work_growth(first, last)
        + (
            f"The recommender frames grew with their item rows ({first['item_rows']:,} to "
            f"{last['item_rows']:,}, {last['item_rows'] / first['item_rows']:.2f}x) at "
            f"{1e6 * first['seconds']['recommender_features'] / first['item_rows']:.2f} and "
            f"{1e6 * last['seconds']['recommender_features'] / last['item_rows']:.2f} us per row. "
            "Their clicks are summed per course run straight from the Arrow batches the read "
            "returns, and only the output is as large as the read (since b3049f7; before it, "
            "a global ordering, a pandas copy and a concatenation of ~10M-row arrays took "
            "1.6-2.4 s at the largest size against 0.07-0.09 s at the smallest, and the frames "
            "grew 13.47x in the run of 2026-12-03 17:34). "
            if "item_rows" in first
            else ""
        )
        + "The churn rows grow with learners x cut-offs, not with events, and the recommender "
        "samples at most `max_learners_per_cutoff` learners per cut-off, so their training can "
        "grow less than the events do; the reads grow with the rollup and event rows.\n"
    )
    return Section(
        name="scale",
        title="Scale (1M to 10M events)",
        body=body,
        mode="full" if full else "quick",
        figures={"points": points, "imports": imports},
    )


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "measure":
        print(json.dumps(measure()))
