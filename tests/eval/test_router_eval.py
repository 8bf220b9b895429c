"""The router against the labelled evaluation sets: prints the figures, guards against regressions.

The floors sit a little under the figures measured when they were set (see the closing notes);
they catch a change that makes the router worse, they are not the targets.
"""

from __future__ import annotations

from evaluate import SPLITS, report, run, score

FLOORS = {
    # split: (intent accuracy, category accuracy, answer hit rate)
    # dev, dev2 and dev3 were tuned on (their errors were read), so they sit near 100 %; held3,
    # held4 and holdout were not (only their totals were seen), and say how far the rules carry.
    # Measured when set: dev 100/100/99.1, dev2 99.4/98.5/98.0, dev3 99.3/98.7/98.8,
    # held3 93.0/96.7/79.7, held4 95.4/87.5/83.3, holdout 93.1/88.6/88.5.
    "dev": (0.98, 0.96, 0.97),
    "dev2": (0.97, 0.95, 0.95),
    "dev3": (0.97, 0.95, 0.96),
    "held3": (0.90, 0.90, 0.75),
    "held4": (0.92, 0.83, 0.78),
    "holdout": (0.90, 0.85, 0.85),
}


async def test_router_meets_its_floors_on_every_split() -> None:
    results = await run(SPLITS)
    print("\n" + report(results, show_errors=False))
    for split, outcomes in results.items():
        s = score(outcomes)["all"]
        figures = tuple(c[True] / (c[True] + c[False]) for c in (s.intent, s.category, s.answer))
        floors = FLOORS.get(split, FLOORS["holdout"])
        assert all(f >= floor for f, floor in zip(figures, floors, strict=True)), (split, figures, floors)
