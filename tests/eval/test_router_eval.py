"""The router against the labelled evaluation sets: prints the figures, guards against regressions.

The floors sit a little under the figures measured when they were set (see the closing notes);
they catch a change that makes the router worse, they are not the targets.
"""

from __future__ import annotations

from evaluate import SPLITS, report, run, score

FLOORS = {
    # split: (intent accuracy, category accuracy, answer hit rate)
    "dev": (0.94, 0.90, 0.88),
    "dev2": (0.95, 0.84, 0.83),
    "holdout": (0.85, 0.85, 0.72),
}


async def test_router_meets_its_floors_on_every_split() -> None:
    results = await run(SPLITS)
    print("\n" + report(results, show_errors=False))
    for split, outcomes in results.items():
        s = score(outcomes)["all"]
        figures = tuple(c[True] / (c[True] + c[False]) for c in (s.intent, s.category, s.answer))
        floors = FLOORS.get(split, FLOORS["holdout"])
        assert all(f >= floor for f, floor in zip(figures, floors, strict=True)), (split, figures, floors)
