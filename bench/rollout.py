"""Shadow traffic's cost to the caller: native predict throughput and p50/p99 over HTTP on an
alias with one shadow version vs. the same alias without, in interleaved rounds of one run.

The model is a realistic pipeline fitted on a DataFrame (breast-cancer data, 30 named float
columns; StandardScaler + LogisticRegression), stored as v1 with `production` on it; the shadow
is v2, a 100-tree random forest on the same columns (both compiled to ONNX by the registry, as
uploads are). The server is gunicorn with the project's config and defaults, as users run it;
load comes from `wrk` (Debian package) or a Python keep-alive client, 8 connections, one row per
request on `/api/v1/models/<name>/predict` (resolved through `production`).

Each round measures the alias without its shadow, then with it: the policy is changed through
`registry.services.alias_set` between the two, and the load starts once the server's routes have
expired (MLPLATFORM_ALIAS_TTL_SECONDS) and it answers again. Goal, printed beside the figures:
with the shadow, p50 within 10 % of without (the shadow's work runs off the request path, in a
background thread of each web process, dropping copies when its queue is full); the copies the
shadow scored and dropped are read from the alias's figures.

Sizes: BENCH_ROLLOUT_SECONDS (per target and round, default 3), BENCH_ROLLOUT_ROUNDS (default 5).
"""

import json
import os
import shutil
import time

import numpy as np

from bench._harness import ROOT, django_setup, gunicorn, stop
from bench._registry import ready_version
from bench.serving import _dump, _load, _server_config, _slug, _token, _warm

VAR = ROOT / "var" / "bench-rollout"
NAME = "bc-rollout"
GOAL_P50_RATIO = 1.10
TTL_SECONDS = 1.0


def _models() -> dict[str, float]:
    """Store v1 (production) and v2 (the shadow); returns the one-row request's record."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.rename(columns=_slug)
    row = {column: float(value) for column, value in x.iloc[0].items()}
    primary = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    shadow = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(x, y)
    ready_version(NAME, _dump(primary), input_example=[row], alias="production")
    ready_version(NAME, _dump(shadow), input_example=[row])
    return row


def _policy(shadows: tuple[int, ...]) -> None:
    from registry import services
    from registry.models import RegisteredModel
    from registry.traffic import TrafficPolicy

    services.alias_set(
        model=RegisteredModel.objects.get(name=NAME),
        alias="production",
        version_number=1,
        user=None,
        policy=TrafficPolicy(shadows=shadows),
    )


def _shadow_figures() -> tuple[int, int, int, float | None]:
    """(copies scored, errors, drops, agreement) of the shadow, from every web process."""
    from django.db.models import Sum

    from serving.models import TrafficMinute

    sums = TrafficMinute.objects.filter(alias__model__name=NAME, role="shadow").aggregate(
        requests=Sum("requests"),
        errors=Sum("errors"),
        drops=Sum("drops"),
        compared=Sum("compared_rows"),
        agreed=Sum("agreed_rows"),
    )
    compared = sums["compared"] or 0
    return (
        sums["requests"] or 0,
        sums["errors"] or 0,
        sums["drops"] or 0,
        (sums["agreed"] or 0) / compared if compared else None,
    )


def main() -> None:
    seconds = int(os.environ.get("BENCH_ROLLOUT_SECONDS", "3"))
    rounds = int(os.environ.get("BENCH_ROLLOUT_ROUNDS", "5"))
    django_setup(VAR)
    token = _token()
    row = _models()
    tool = "wrk" if shutil.which("wrk") else "a Python client (install Debian's wrk for precision)"
    print(
        f"load: {tool}, 8 connections, {rounds} interleaved rounds of {seconds} s per target "
        f"(medians); gunicorn {_server_config()}; one row per request"
    )
    env = {
        "MLPLATFORM_VAR_DIR": str(VAR),
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings.local",
        "DJANGO_DEBUG": "0",
        "MLPLATFORM_PRELOAD": "production",
        "MLPLATFORM_ALIAS_TTL_SECONDS": str(TTL_SECONDS),
    }
    body = json.dumps({"instances": [row]})
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    process, port = gunicorn("mlplatform.wsgi", env, var=VAR)
    url = f"http://127.0.0.1:{port}/api/v1/models/{NAME}/predict"
    results: dict[str, list[dict[str, float]]] = {"without shadow": [], "with shadow": []}
    try:
        for _ in range(rounds):
            for target, shadows in (("without shadow", ()), ("with shadow", (2,))):
                _policy(shadows)
                time.sleep(TTL_SECONDS + 0.5)  # every worker's routes have expired
                error = _warm(url, body, auth)
                if error:
                    raise RuntimeError(f"{target}: {error}")
                results[target].append(_load(url, body, auth, seconds))
        time.sleep(3)  # the web processes write their figures every 2 s
    finally:
        stop(process)
    medians = {
        target: {key: float(np.median([run[key] for run in runs])) for key in ("rps", "p50", "p99")}
        for target, runs in results.items()
    }
    for target, figures in medians.items():
        errors = sum(run["errors"] for run in results[target])
        print(
            f"  {target:>15}: {figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  "
            f"p99 {figures['p99']:6.2f} ms" + (f"  ({errors:.0f} errors!)" if errors else "")
        )
    scored, failed, dropped, agreement = _shadow_figures()
    shown = f"{agreement:.4f}" if agreement is not None else "-"
    print(
        f"  shadow v2: {scored} copies scored ({failed} errors), {dropped} dropped (queue full), "
        f"label agreement with v1 {shown}"
    )
    with_, without = medians["with shadow"], medians["without shadow"]
    ratio = with_["p50"] / without["p50"]
    print(
        f"\ngoal: p50 with a shadow within 10 % of without: {ratio:.2f} of it "
        f"({'met' if ratio <= GOAL_P50_RATIO else 'MISSED'}); "
        f"throughput {with_['rps'] / without['rps']:.2f} of it"
    )


if __name__ == "__main__":
    main()
