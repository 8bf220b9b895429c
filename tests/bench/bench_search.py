"""Benchmark knowledge search on a large synthetic knowledge base, beside the bare index lookup.

    python tests/bench/bench_search.py [--articles 100000] [--rounds 20] [--postgres]

Builds N synthetic articles on a migrated temp-file SQLite database (and, with ``--postgres``, on a
throw-away PostgreSQL database; admin URL from HELPLINE_TEST_PG_ADMIN), then times a fixed set of
resident-style questions three ways on the same database and session machinery:

* ``search``  - the real ``knowledge.search.search(session, q, limit=5)``, its term cache warm
  (as in a running service, where the same questions keep coming);
* ``cold``    - the same with the term cache emptied before every call (every row read afresh);
* ``ranked``  - the database ranking candidates itself: the same tokens matched in titles and
  keywords, ORDER BY BM25 / ts_rank, LIMIT 50 (search() used this before its topic lists);
* ``raw``     - the bare index lookup with the same OR-of-tokens match, no ORDER BY, LIMIT 5.

The baselines get the tokens search() would look up worked out beforehand, so they time the index
alone: raw -> ranked is what the database's ranking costs; search does everything (tokenising, the
term counts with the topic lists, candidates, fetching and the confidence). Synthetic articles recombine the shipped
articles' titles, keywords and sentences, so Chinese bigram and English word frequencies look like
the real knowledge base grown large, not like random text.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).parent))
from bench_messages import throwaway_postgres  # noqa: E402
from loadgen import Result  # noqa: E402

from helpline.db import Database  # noqa: E402
from helpline.migrate import upgrade  # noqa: E402
from helpline.models import utcnow  # noqa: E402
from knowledge.loader import SHORT_LIMIT, ArticleData, read_articles, shipped_path  # noqa: E402
from knowledge.models import Article, ArticleTerm  # noqa: E402
from knowledge.search import (  # noqa: E402
    MAX_QUERY_TOKENS, TOTAL, lookup_tokens, refresh_terms, search,
)
from knowledge.terms import forget  # noqa: E402
from knowledge.tokens import query_tokens  # noqa: E402

BATCH = 2000
TARGET_P99_MS = 10.0

# (kind, query): half Chinese, half English; 2-character words, phrases, rambling SMS, no match.
QUERIES: tuple[tuple[str, str], ...] = (
    *(("zh 2-char", q) for q in ("井盖", "低保", "赤霉", "稻瘟", "医保", "路灯", "猪瘟", "停电")),
    *(("zh phrase", q) for q in (
        "稻瘟病怎么治", "鱼浮头了", "农机补贴怎么申请", "玉米长瘤子", "小麦赤霉病打什么药",
        "路灯坏了找谁", "残疾证怎么办", "母猪不吃食", "化肥真假怎么看", "电费怎么交",
    )),
    *(("zh long", q) for q in (
        "有人打电话说我医保卡冻结了，让我把钱转到安全账户，这是真的吗？我很着急",
        "我家水稻叶子上有好多褐色的梭形斑点，最近雨水多，是不是得了稻瘟病，该打什么药",
        "村口的井盖被人偷了，晚上黑乎乎的很危险，已经有小孩差点掉下去，请问找哪个部门",
        "家里老人七十多岁一个人住没有收入，能不能申请低保，需要准备什么材料，去哪里办",
        "玉米叶子上长了好多灰色长条斑，从下面的叶子往上蔓延，今年雨多，会不会减产",
        "鱼塘早上好多鱼浮在水面张嘴，是怎么回事，要不要开增氧机，还要不要喂料",
        "我们家的猪突然发烧不吃东西，耳朵和肚皮发红发紫，会不会是猪瘟，要不要报告",
        "苹果树枝干上起了好多红褐色的病斑，一剥树皮有酒糟味，这是什么病怎么治",
    )),
    *(("zh none", q) for q in ("给我讲个笑话", "明天股票会涨吗", "周杰伦演唱会门票", "火星上有外星人吗")),
    *(("en word", q) for q in ("bloat", "smut", "armyworm", "scam", "subsidy", "pension", "rabies")),
    *(("en phrase", q) for q in (
        "my cow is bloated", "tomato leaves curling and yellow", "how do I pay my electricity bill",
        "fall armyworm in my maize", "rice blast treatment", "pig not eating", "fish gasping at surface",
        "fake fertilizer", "street light broken", "disability certificate how", "wheat head blight spray",
    )),
    *(("en long", q) for q in (
        "hi, my tomato plants have leaves curling up and turning yellow since last week and the fruit "
        "stay small, what should I spray and is it a virus",
        "someone called me saying my medical insurance card is frozen and I must move my money to a "
        "safe account, is this a scam, what do I do",
        "our village street lights have been broken for two weeks and the road is dark at night, who "
        "should we report it to and how long does it take",
        "my grandmother is 75, lives alone with no income, can she get minimum living allowance and "
        "what papers does she need to apply",
        "the cow ate a lot of wet clover this morning and now her left side is swollen like a drum and "
        "she keeps kicking her belly, please help fast",
        "fish in my pond are gasping at the surface early in the morning, it was hot and cloudy "
        "yesterday, should I turn on the aerator and stop feeding",
        "caterpillars in the corn whorl with sawdust like droppings and ragged holes in the leaves, "
        "is it fall armyworm and when should I spray",
        "how do I apply for the farm machinery purchase subsidy, I bought a small tractor last month "
        "and the dealer said I can get money back",
    )),
    *(("en none", q) for q in (
        "zxqv wvvk", "who won the football match last night", "tell me a joke",
        "best pizza recipe with pineapple",
    )),
)

_ZH_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]?")
_EN_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Vocab:
    """The shipped articles cut into the pieces synthetic articles are recombined from."""

    articles: list[ArticleData]
    sentences: dict[str, list[list[str]]]  # field -> per article, its sentences (same order as articles)


_vocab: Vocab | None = None


def vocab() -> Vocab:
    """Read once per process: worker processes build their own copy instead of unpickling it."""
    global _vocab
    if _vocab is None:
        articles = read_articles(shipped_path())
        sentences: dict[str, list[list[str]]] = {}
        for field in ("short_zh", "full_zh", "short_en", "full_en"):
            split = _ZH_SENTENCE.findall if field.endswith("zh") else _EN_SENTENCE.split
            pieces = ([s.strip().lstrip("-").strip() for s in split(getattr(a, field))] for a in articles)
            sentences[field] = [[s for s in piece if s] for piece in pieces]
        _vocab = Vocab(articles, sentences)
    return _vocab


def _text(rng: random.Random, parts: list[list[str]], target: int, sep: str) -> str:
    """Sentences drawn mostly from the first parent, some from the others, up to ``target`` chars.

    Drawn without replacement: a sentence said twice would inflate its words' term frequency.
    """
    pools = [rng.sample(p, len(p)) for p in parts]
    out: list[str] = []
    size = 0
    while size < target and any(pools):
        pool = pools[0] if pools[0] and rng.random() < 0.6 else rng.choice([p for p in pools if p])
        sentence = pool.pop()
        out.append(sentence)
        size += len(sentence) + len(sep)
    return sep.join(out)


def synthetic_article(rng: random.Random, number: int) -> ArticleData:
    """One article mixing three real ones: titles, keywords, short and full answers, both languages."""
    v = vocab()
    picks = rng.sample(range(len(v.articles)), 3)
    a, b, c = (v.articles[i] for i in picks)
    sent = {field: [v.sentences[field][i] for i in picks] for field in v.sentences}
    if rng.random() < 0.5:
        title_zh, title_en = a.title_zh, a.title_en
    else:
        title_zh = f"{rng.choice(a.keywords['zh'])}和{rng.choice(b.keywords['zh'])}"
        title_en = f"{rng.choice(a.keywords['en'])} and {rng.choice(b.keywords['en'])}"

    def mix(lang: str) -> list[str]:
        ka, kb, kc = (x.keywords[lang] for x in (a, b, c))
        return [
            *rng.sample(ka, min(len(ka), rng.randint(4, 10))),
            *rng.sample(kb, min(len(kb), rng.randint(1, 4))),
            *rng.sample(kc, min(len(kc), rng.randint(0, 2))),
        ]

    def short(lang: str) -> str:
        sep = "" if lang == "zh" else " "
        return _text(rng, sent[f"short_{lang}"], len(getattr(a, f"short_{lang}")), sep)[: SHORT_LIMIT[lang]]

    return ArticleData(
        slug=f"bench-{number:07d}-{rng.getrandbits(40):010x}",
        category=a.category,
        topic=a.topic,
        title_zh=title_zh[:200],
        title_en=title_en[:200],
        keywords={"zh": mix("zh"), "en": mix("en")},
        short_zh=short("zh"),
        short_en=short("en"),
        full_zh=_text(rng, sent["full_zh"], int(len(a.full_zh) * rng.uniform(0.7, 1.3)), ""),
        full_en=_text(rng, sent["full_en"], int(len(a.full_en) * rng.uniform(0.7, 1.3)), " "),
        source=a.source,
        reviewer=a.reviewer,
        reviewed=a.reviewed - timedelta(days=rng.randrange(1000)),
    )


def article_rows(seed: int, start: int, count: int) -> list[dict[str, Any]]:
    """Rows for articles start..start+count, the same for a seed whichever process makes them."""
    rng = random.Random(f"{seed}:{start}")
    rows = []
    for number in range(start, start + count):
        data = synthetic_article(rng, number)
        fixed = {"status": "published", "origin": "import", "content_hash": data.content_hash}
        rows.append(asdict(data) | data.search_columns() | fixed | {"updated_at": utcnow()})
    return rows


@dataclass
class Build:
    articles: int = 0
    generate_s: float = 0.0  # wall time spent waiting for generated rows (not overlapped with inserts)
    insert_s: float = 0.0  # inserts and commits, incl. FTS5 triggers / GIN index maintenance
    terms_s: float = 0.0
    terms: int = 0
    analyze_s: float = 0.0


async def build_index(db: Database, n: int, seed: int, pool: Executor | None, ahead_n: int) -> Build:
    """Insert ``n`` articles in ~2,000-row transactions, then refresh_terms once (and ANALYZE on PG).

    Generation (tokenising is the slow part) runs in worker processes a few batches ahead, so the
    insert time measured here is the database's, and memory stays at a few batches.
    """
    loop = asyncio.get_running_loop()
    stats = Build(articles=n)
    starts = iter(range(0, n, BATCH))
    ahead: deque[Awaitable[list[dict[str, Any]]]] = deque()

    def submit() -> None:
        start = next(starts, None)
        if start is None:
            return
        count = min(BATCH, n - start)
        if pool is None:
            ahead.append(asyncio.to_thread(article_rows, seed, start, count))
        else:
            ahead.append(loop.run_in_executor(pool, article_rows, seed, start, count))

    for _ in range(ahead_n + 1):
        submit()
    table = Article.__table__
    while ahead:
        t0 = time.perf_counter()
        rows = await ahead.popleft()
        submit()
        t1 = time.perf_counter()
        async with db.write() as session:
            await session.execute(insert(table), rows)
        stats.generate_s += t1 - t0
        stats.insert_s += time.perf_counter() - t1
        del rows
    t0 = time.perf_counter()
    async with db.write() as session:
        stats.terms = await refresh_terms(session)
    stats.terms_s = time.perf_counter() - t0
    if not db.is_sqlite:
        t0 = time.perf_counter()
        async with db.write() as session:
            await session.execute(text("ANALYZE"))
        stats.analyze_s = time.perf_counter() - t0
    return stats


async def reindex(db: Database) -> Build:
    """Keep the articles of an earlier run (``--reuse``), rebuild only the term counts and lists."""
    async with db.read() as session:
        stats = Build(articles=await session.scalar(select(func.count()).select_from(Article)) or 0)
    t0 = time.perf_counter()
    async with db.write() as session:
        stats.terms = await refresh_terms(session)
    stats.terms_s = time.perf_counter() - t0
    return stats


Method = Callable[[AsyncSession, str], Awaitable[Any]]


async def lookup_plan(db: Database) -> dict[str, list[str]]:
    """Per query, the tokens search() asks the index for (``lookup_tokens`` on the same term counts).

    Worked out once, untimed, so the baselines below time the index and nothing else.
    """
    plan: dict[str, list[str]] = {}
    async with db.read() as session:
        for _, query in QUERIES:
            tokens = query_tokens(query)[:MAX_QUERY_TOKENS]
            rows = await session.execute(
                select(ArticleTerm.term, ArticleTerm.df, ArticleTerm.df_all)
                .where(ArticleTerm.term.in_([*tokens, TOTAL]))
            )
            df = {term: (n, n_all) for term, n, n_all in rows}
            total = df.pop(TOTAL, (1, 1))[0]
            plan[query] = lookup_tokens(tokens, df, total) if tokens else []
    return plan


def raw_lookup(is_sqlite: bool, plan: dict[str, list[str]]) -> Method:
    """The bare index lookup search.py's candidate query is built on: same match, no ranking."""
    if is_sqlite:
        sql = text("SELECT rowid FROM articles_fts WHERE articles_fts MATCH :m LIMIT 5")

        def params(tokens: list[str]) -> dict[str, str]:
            return {"m": " OR ".join(f'"{t}"' for t in tokens)}
    else:
        sql = text("SELECT id FROM articles WHERE search_vector @@ to_tsquery('simple', :q) LIMIT 5")

        def params(tokens: list[str]) -> dict[str, str]:
            return {"q": " | ".join(tokens)}

    async def raw(session: AsyncSession, query: str) -> Any:
        if plan[query]:
            return (await session.execute(sql, params(plan[query]))).all()

    return raw


def ranked_lookup(is_sqlite: bool, plan: dict[str, list[str]]) -> Method:
    """The database's own ranking: the same tokens in titles and keywords, ranked by BM25 /
    ts_rank, LIMIT 50 (what search() did before its topic lists)."""
    if is_sqlite:
        sql = text(
            "SELECT rowid FROM articles_fts WHERE articles_fts MATCH '{search_key} : (' || :m || ')' "
            "ORDER BY bm25(articles_fts, 5.0, 1.0) LIMIT 50"
        )

        def params(tokens: list[str]) -> dict[str, str]:
            return {"m": " OR ".join(f'"{t}"' for t in tokens)}
    else:
        sql = text(
            "SELECT id FROM articles, to_tsquery('simple', :q) AS q WHERE search_key_vector @@ q "
            "ORDER BY ts_rank(search_key_vector, q) DESC LIMIT 50"
        )

        def params(tokens: list[str]) -> dict[str, str]:
            return {"q": " | ".join(tokens)}

    async def ranked(session: AsyncSession, query: str) -> Any:
        if plan[query]:
            return (await session.execute(sql, params(plan[query]))).all()

    return ranked


async def full_search(session: AsyncSession, query: str) -> Any:
    return await search(session, query, limit=5)


async def cold_search(session: AsyncSession, query: str) -> Any:
    """search() with its term cache emptied first: every token's row is read from the database."""
    forget()
    return await search(session, query, limit=5)


Times = dict[str, dict[str, list[float]]]  # method -> query -> seconds per call


async def time_queries(db: Database, methods: dict[str, Method], rounds: int) -> Times:
    """Per method, per query, the latency of each call (s); one warm-up pass first, not recorded.

    Methods are interleaved query by query so they see the same cache state. Each call runs in its
    own ``db.read()`` session, as the service does per message.
    """
    times: Times = {m: {q: [] for _, q in QUERIES} for m in methods}
    for round_ in range(rounds + 1):
        for _, query in QUERIES:
            for name, method in methods.items():
                async with db.read() as session:
                    t0 = time.perf_counter()
                    await method(session, query)
                    elapsed = time.perf_counter() - t0
                if round_:
                    times[name][query].append(elapsed)
    return times


def summary(name: str, latencies: list[float]) -> Result:
    """Sequential calls on one connection: queries/s is calls over the time spent in them."""
    return Result(name, len(latencies), 0, sum(latencies), latencies)


def stat_text(r: Result, with_rate: bool = True) -> str:
    rate = f" ({r.throughput:.0f} q/s)" if with_rate else ""
    return f"p50 {r.pct(50):.2f} ms p99 {r.pct(99):.2f} ms max {max(r.latencies) * 1000:.1f} ms{rate}"


def report(label: str, build: Build, times: Times, plan: dict[str, list[str]], slowest: int) -> None:
    raw_name = "raw FTS" if label == "SQLite" else "raw GIN"
    overall = {m: summary(m, [t for ts in per_q.values() for t in ts]) for m, per_q in times.items()}
    extra = f"  analyze {build.analyze_s:.1f} s" if build.analyze_s else ""
    print(
        f"{label:<11} {build.articles} articles  build {build.insert_s:.1f} s  "
        f"terms {build.terms_s:.1f} s{extra}   search {stat_text(overall['search'])}   "
        f"cold {stat_text(overall['cold'], False)}   ranked {stat_text(overall['ranked'], False)}   {raw_name} {stat_text(overall['raw'])}"
    )
    print(
        f"{'':<11} (generation waited {build.generate_s:.1f} s beyond the inserts; {build.terms} terms; "
        f"{len(QUERIES)} queries x {len(overall['search'].latencies) // len(QUERIES)} rounds)"
    )
    kinds = dict.fromkeys(kind for kind, _ in QUERIES)
    for kind in kinds:
        queries = [q for k, q in QUERIES if k == kind]
        cells = [
            f"{m} " + stat_text(summary(m, [t for q in queries for t in times[m][q]]), False)
            for m in ("search", "cold", "ranked", "raw")
        ]
        print(f"{'':<11} {kind:<10} " + "   ".join(cells))
    by_p50 = sorted(QUERIES, key=lambda kq: summary("", times["search"][kq[1]]).pct(50), reverse=True)
    for kind, query in by_p50[:slowest]:
        r, rc, rk, rw = (summary("", times[m][query]) for m in ("search", "cold", "ranked", "raw"))
        print(
            f"{'':<11} slow: search p50 {r.pct(50):7.2f} ms  cold {rc.pct(50):7.2f}  ranked {rk.pct(50):7.2f}  "
            f"raw {rw.pct(50):6.2f}  {len(query_tokens(query)):>2} tokens, "
            f"{len(plan[query]):>2} looked up  {query[:50]}"
        )


async def bench_database(url: str, label: str, args: argparse.Namespace, pool: Executor | None) -> None:
    await asyncio.to_thread(upgrade, url)
    db = Database.from_url(url)
    try:
        if getattr(args, "reuse", False):
            build = await reindex(db)
        else:
            build = await build_index(db, args.articles, args.seed, pool, args.workers)
        plan = await lookup_plan(db)
        methods: dict[str, Method] = {
            "search": full_search,
            "cold": cold_search,
            "ranked": ranked_lookup(db.is_sqlite, plan),
            "raw": raw_lookup(db.is_sqlite, plan),
        }
        times = await time_queries(db, methods, args.rounds)
    finally:
        await db.dispose()
    report(label, build, times, plan, args.slowest)
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=100_000, help="synthetic articles to index")
    parser.add_argument("--rounds", type=int, default=20, help="timed passes over the query list")
    parser.add_argument(
        "--postgres", action="store_true", help="also run on a throw-away PostgreSQL database"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sqlite-file", type=Path, help="build the SQLite database here and keep it (to profile against)"
    )
    parser.add_argument(
        "--reuse", action="store_true",
        help="with --sqlite-file: keep the articles already there, rebuild only the term index",
    )
    parser.add_argument("--slowest", type=int, default=5, help="list the N slowest queries")
    parser.add_argument(
        "--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
        help="processes generating articles (0: a thread of this process)",
    )
    args = parser.parse_args()
    if args.articles < 1 or args.rounds < 1:
        parser.error("--articles and --rounds must be at least 1")
    chinese = sum(1 for kind, _ in QUERIES if kind.startswith("zh"))
    print(
        f"knowledge search, {len(QUERIES)} queries ({chinese} Chinese), limit 5, {args.rounds} rounds, "
        f"{os.cpu_count()} cores; target: p99 under {TARGET_P99_MS:g} ms on SQLite"
    )
    # Spawn, not fork: the workers only need the shipped articles, and forking next to aiosqlite's
    # threads is unsafe.
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(args.workers, mp_context=spawn) if args.workers else None
    try:
        started = time.perf_counter()
        if args.sqlite_file:
            args.reuse = args.reuse and args.sqlite_file.exists()
            if not args.reuse:
                args.sqlite_file.unlink(missing_ok=True)
            url = f"sqlite+aiosqlite:///{args.sqlite_file.resolve()}"
            asyncio.run(bench_database(url, "SQLite", args, pool))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite+aiosqlite:///{tmp}/bench.db"
                asyncio.run(bench_database(url, "SQLite", args, pool))
        print(f"{'':<11} (SQLite run took {time.perf_counter() - started:.0f} s)")
        if args.postgres:
            started = time.perf_counter()
            with throwaway_postgres() as url:
                asyncio.run(bench_database(url, "PostgreSQL", args, pool))
            print(f"{'':<11} (PostgreSQL run took {time.perf_counter() - started:.0f} s)")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


if __name__ == "__main__":
    main()
