"""Serving under load: gunicorn (2 workers) + wrk on loopback, side by side with a bare view.

Run: python -m bench.run --only serving [--full]

1. A scratch database with a seeded platform (two runs of ~1,000 learners),
   both models trained, promoted and batch-scored.
2. gunicorn with 2 sync workers; per-token limits raised so the load test
   measures serving, not the rate limiter.
3. wrk with 16 connections per endpoint, learners drawn at random per request,
   in rounds of every endpoint in turn; medians over the rounds.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

import requests

from bench.common import ROOT, Section, django_env, gunicorn, manage, recreate_database, table

DB = "eduplatform_bench_serving"
ROUNDS = 3
SETUP = r"""
import json, django
django.setup()
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from analytics.models import Course, Enrollment
from eduplatform.registry import services
admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_superuser": True, "is_staff": True})
admin.is_superuser = admin.is_staff = True
admin.set_password("bench-password-123")
admin.save()
teacher, _ = User.objects.get_or_create(username="bench-teacher")
for course in Course.objects.all():
    course.instructors.add(teacher)
ids = list(Course.objects.values_list("id", flat=True))
for kind in ("churn", "recommender"):
    services.batch_scores_refresh(kind=kind, course_ids=ids)
course = Course.objects.order_by("-id").first()
pairs = list(Enrollment.objects.filter(course=course).values_list("learner__pseudonym", "course_id"))
print(json.dumps({
    "token": Token.objects.get_or_create(user=teacher)[0].key,
    "course": course.id,
    "learners": course.enrollments.count(),
    "pairs": pairs,
}))
"""

# The miss paths, timed in one process before the load test: what the first
# request after new data, a promotion or a new day pays (sequential, median).
MISSES = r"""
import json, statistics, time, django
django.setup()
from analytics.pages.course import course_bundle
from analytics.models import Course, Enrollment
from churn.features import serving_frames
from churn.selectors import run_predictions
from eduplatform.core.clock import today
from eduplatform.registry.serving import get_served
from recommender.selectors import _history_rows, _recommend

course = Course.objects.order_by("-id").first()
day = today()

def median_ms(fn, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)

out = {"course page bundle (run-wide reads)": median_ms(lambda: course_bundle(course, day), 3)}
churn = get_served("churn")
key = (course.id, churn.version_id, day)

def score_run():
    serving_frames.clear()
    run_predictions._score(churn, course, day, key)

out["risk: score the whole run (features + IG)"] = median_ms(score_run, 2)
recs = get_served("recommender")
now_day = min(course.day_of(day), course.length_days)
learners = [e.learner for e in Enrollment.objects.filter(course=course).select_related("learner")[:40]]
it = iter(learners * 2)

def recommend():
    learner = next(it)
    rows = _history_rows(learner=learner, course=course)
    _recommend(recs.model, learner=learner, course=course, k=10, now_day=now_day, rows=rows)

out["recommendations: one learner (history + model + titles)"] = median_ms(recommend, 40)
print(json.dumps(out))
"""

LUA = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def _median_of(rounds: list[dict[str, dict]], name: str) -> dict:
    """An endpoint's median figures over the rounds; `ratio` is the median of its
    requests/s over the bare view's in the same round."""
    runs = [one[name] for one in rounds]
    out = {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50", "p90", "p99")}
    out["non_2xx"] = sum(r["non_2xx"] for r in runs)
    out["ratio"] = statistics.median(
        one[name]["rps"] / one["bare view (/healthz)"]["rps"] for one in rounds
    )
    return out


def _verdicts(results: dict[str, dict]) -> str:
    """One "met" / "NOT met" per target, from this run's figures."""

    def said(ok: bool) -> str:
        return "met" if ok else "NOT met"

    parts = []
    for name in ("risk API", "recommendations API (k=10)"):
        r = results[name]
        parts.append(
            f"{name}: {r['ratio']:.2f}x ({said(r['ratio'] >= 0.33)}), "
            f"p99 {r['p99']:.0f} ms ({said(r['p99'] <= 25)})"
        )
    page = next(r for name, r in results.items() if name.startswith("course page"))
    parts.append(f"course page p50 {page['p50']:.0f} ms ({said(page['p50'] <= 200)})")
    return "In this run (medians over the rounds): " + "; ".join(parts) + "."


def _wrk(url: str, seconds: int, headers: dict[str, str], paths: list[str] | None) -> dict:
    args = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    with tempfile.TemporaryDirectory() as tmp:
        if paths:
            (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
            (Path(tmp) / "s.lua").write_text(LUA % {"paths": Path(tmp) / "paths.txt", "seed": 7})
            args += ["-s", str(Path(tmp) / "s.lua")]
        out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        lat[pct] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": lat["50"],
        "p90": lat["90"],
        "p99": lat["99"],
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def run(full: bool) -> Section:
    """Long because it is one benchmark section: server start, warm-up, each endpoint measured in
    turn, server stop.
    """
    seconds = 10 if full else 4
    learners = 2400 if full else 2000
    recreate_database(DB)
    manage("migrate", "--noinput", name=DB)
    manage(
        "seed_demo",
        "--learners",
        str(learners),
        "--courses",
        "2",
        "--days",
        "150",
        "--seed",
        "11",
        name=DB,
    )
    for kind in ("churn", "recommender"):
        # In-process training: the benchmark measures serving, no worker runs here.
        manage("retrain", kind, "--wait", name=DB, CELERY_TASK_ALWAYS_EAGER="true")
    env = django_env(DB)
    env.update(
        API_RATE_LIMIT="100000000/min",
        PREDICTION_QUERY_BUDGET="100000000/hour",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    setup = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", SETUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(setup.stdout.strip().splitlines()[-1])
    missed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", MISSES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    misses = json.loads(missed.stdout.strip().splitlines()[-1])
    with gunicorn({**env, "DJANGO_SETTINGS_MODULE": "eduplatform.settings.dev"}) as base:
        session = requests.Session()
        page = session.get(base + "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        session.post(
            base + "/accounts/login/",
            data={
                "username": "bench-admin",
                "password": "bench-password-123",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": base + "/accounts/login/"},
        )
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        auth = {"Authorization": f"Token {info['token']}"}
        pairs = info["pairs"]
        risk = [f"/api/v1/learners/{p}/risk?course={c}" for p, c in pairs]
        recs = [f"/api/v1/learners/{p}/recommendations?course={c}&k=10" for p, c in pairs]
        # Warm both workers (models loaded, course feature frames cached) and
        # every learner's recommendations once (answers in the shared cache):
        # the load test measures the cached paths; misses are timed below.
        warm = requests.Session()
        for path in risk + recs:
            warm.get(base + path, headers=auth, timeout=30)
        course_page = f"/courses/{info['course']}/"
        for _ in range(4):
            session.get(base + course_page)
        targets = {
            "bare view (/healthz)": (base + "/healthz", {}, None),
            "risk API": (base, auth, risk),
            "recommendations API (k=10)": (base, auth, recs),
            f"course page ({info['learners']} learners)": (
                base + course_page,
                {"Cookie": cookie},
                None,
            ),
        }
        # Rounds of every endpoint in turn: this shared box's speed drifts by
        # 20-30 % within minutes, so each round compares endpoints measured
        # side by side, and the medians over rounds are reported.
        rounds = [
            {
                name: _wrk(url, seconds, headers, paths)
                for name, (url, headers, paths) in targets.items()
            }
            for _ in range(ROUNDS)
        ]
    results = {name: _median_of(rounds, name) for name in rounds[0]}
    rows = [
        [name, r["rps"], f"{r['ratio']:.2f}x", r["p50"], r["p90"], r["p99"], r["non_2xx"]]
        for name, r in results.items()
    ]
    per_round = "; ".join(
        f"{name}: "
        + ", ".join(f"{one[name]['rps']:,.0f} ({one[name]['p99']:.0f} ms)" for one in rounds)
        for name in rounds[0]
    )
    body = (
        f"gunicorn with 2 sync workers and wrk (2 threads, 16 connections) on loopback, against "
        f"the same server: {ROUNDS} rounds of {seconds} s per endpoint, the endpoints in turn "
        "within each round; the table gives the median over rounds of each figure, and of "
        "each endpoint's ratio to the bare view in the same round. API requests draw a random "
        "learner of the run per request (non-admin token: bands and item ids). Per-token limits "
        "were raised for the run.\n\n"
        + table(
            ["endpoint", "requests/s", "vs bare view", "p50 ms", "p90 ms", "p99 ms", "non-2xx"],
            rows,
        )
        + "\n\nTargets: risk and recommendations APIs at least 0.33x the bare view with p99 at most "
        "25 ms at 16 connections; course page p50 at most 200 ms. "
        + _verdicts(results)
        + f"\n\nEach round, requests/s (p99): {per_round}.\n\n"
        "The load test measures the cached paths (course bundle, run scores, recommendations "
        "of learners asked before: every learner of the run is asked once before the load). "
        "What a miss costs (the first request after new data, a promotion "
        "or a new day), timed in one process before the load test, median:\n\n"
        + table(["miss", "ms"], [[name, ms] for name, ms in misses.items()])
        + "\n"
    )
    return Section(
        name="serving",
        title="Serving under load",
        body=body,
        mode="full" if full else "quick",
        figures={**results, "rounds": rounds, "misses_ms": misses},
    )
