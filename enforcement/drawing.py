"""The dual-random draw as a pure function: ``compute_draw(seed, snapshot) -> result``.

Everything the draw depends on is in the snapshot (canonical JSON, sorted lists), and the only
randomness is ``random.Random(int(seed, 16))`` consumed in a fixed order, so anyone holding the
seed and the snapshot recomputes exactly the same result (``manage.py verify_draw``).

Snapshot layout (lists, not dicts, to keep 100,000 targets small and fast):
    plan        parameters of the plan (filters, strata, team size, specialty rule)
    frequency   [credit, risk, min_per_year, max_per_year]
    industries  [code, parent_code]
    targets     [enterprise_id, industry_code, region_path, risk, credit, done_last_365, days_since_last|-1]
    inspectors  [user_id, level, jurisdiction_path, [specialty codes], [conflicting enterprise ids]]
    last_team   [enterprise_id, [user ids of the last team there]]
    previous_teams  [[user ids]] teams of the previous draw in the jurisdiction
"""

from __future__ import annotations

import bisect
import gc
import json
import math
import random
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from enforcement.choices import SENIOR_LEVELS

SNAPSHOT_VERSION = 2  # the version of the algorithm and snapshot layout


@contextmanager
def gc_paused():
    """No cyclic garbage collection while the draw builds its ~100,000 small lists.

    They are all alive until the draw is written, so the repeated full collections that their
    allocation triggers find nothing to free and cost about a quarter of the draw. Plain reference
    counting still frees everything; the collector is switched back on (if it was on) afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def canonical_bytes(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sm3_of(obj) -> str:
    from regulator.crypto import sm3_hex

    return sm3_hex(canonical_bytes(obj))


class _Industries:
    def __init__(self, rows):
        self.parent = dict(rows)
        self._cache: dict[str, frozenset[str]] = {}

    def ancestry(self, code: str) -> frozenset[str]:
        """The code and all its ancestors: a specialty or filter on any of them matches."""
        hit = self._cache.get(code)
        if hit is None:
            codes, cur, guard = [], code, 0
            while cur and guard < 10:
                codes.append(cur)
                cur, guard = self.parent.get(cur, ""), guard + 1
            hit = self._cache[code] = frozenset(codes)
        return hit


def _matches(stratum: dict, credit: str, risk: str, ancestry: frozenset[str]) -> bool:
    if stratum.get("credit") and credit not in stratum["credit"]:
        return False
    if stratum.get("risk") and risk not in stratum["risk"]:
        return False
    industry = stratum.get("industry") or ""
    return not industry or industry in ancestry


def _quota(stratum: dict, size: int, default_ratio: str) -> int:
    if stratum.get("count") not in (None, ""):
        return min(int(stratum["count"]), size)
    ratio = Decimal(str(stratum.get("ratio", default_ratio)))
    return min(size, math.ceil(ratio * size))


@gc_paused()
def compute_draw(seed: str, snapshot: dict, *, on_selected=None, on_team=None) -> dict:
    """The draw of ``seed`` over ``snapshot``; the result depends on nothing else.

    Optional listeners see the draw as it is made, so the caller can write it meanwhile:
    ``on_selected(selected)`` once with the sorted selected enterprises, before any team is made,
    then ``on_team(enterprise_id, team)`` once per assignment as soon as it is final (the greedy
    never revisits one), with the sorted team exactly as it appears in the result. They must not
    change what they are given; they have no effect on the result.
    """
    rng = random.Random(int(seed, 16))
    plan = snapshot["plan"]
    industries = _Industries(snapshot["industries"])
    frequency = {(c, r): (lo, hi) for c, r, lo, hi in snapshot["frequency"]}
    prefixes = set(plan.get("industry_prefixes") or [])
    risk_filter = set(plan.get("risk_filter") or [])
    credit_filter = set(plan.get("credit_filter") or [])
    strata = plan.get("strata") or [{"label": "全部", "ratio": plan["default_ratio"]}]
    start, end = (date.fromisoformat(d) for d in plan["period"])
    period_days = (end - start).days + 1

    # 1. Target pool: filters, caps, due enterprises, strata.
    capped: list[int] = []
    due: set[int] = set()
    members: list[list[int]] = [[] for _ in strata]
    info: dict[int, tuple[str, frozenset[str]]] = {}
    stratum_of: dict[tuple[str, str, str], int] = {}  # the first matching stratum, -1 for none
    ancestry_of = industries._cache
    for eid, industry, path, risk, credit, done, days_since in snapshot["targets"]:
        ancestry = ancestry_of.get(industry) or industries.ancestry(industry)
        if prefixes and not (prefixes & ancestry):
            continue
        if (risk_filter and risk not in risk_filter) or (credit_filter and credit not in credit_filter):
            continue
        lo, hi = frequency[(credit, risk)]
        if done >= hi:
            capped.append(eid)
            continue
        info[eid] = (path, ancestry)
        # Due: never inspected, or the minimum interval runs out before the plan period ends.
        if lo > 0 and (days_since < 0 or (days_since + period_days) * lo >= 365):
            due.add(eid)
        klass = (credit, risk, industry)
        index = stratum_of.get(klass, -2)
        if index == -2:
            index = stratum_of[klass] = next(
                (i for i, stratum in enumerate(strata) if _matches(stratum, credit, risk, ancestry)), -1
            )
        if index >= 0:
            members[index].append(eid)

    selected: list[int] = sorted(due)
    strata_report = []
    for stratum, pool in zip(strata, members, strict=True):
        quota = _quota(stratum, len(pool), plan["default_ratio"])
        due_here = [e for e in pool if e in due]
        rest = [e for e in pool if e not in due]  # already sorted: targets are sorted by id
        picked = rng.sample(rest, max(0, min(len(rest), quota - len(due_here))))
        selected.extend(picked)
        strata_report.append(
            {
                "label": stratum.get("label", ""),
                "size": len(pool),
                "quota": quota,
                "due": len(due_here),
                "selected": len(due_here) + len(picked),
            }
        )
    selected = sorted(set(selected))
    if on_selected is not None:
        on_selected(list(selected))

    # 2. Teams: workload-balanced greedy over a shuffled order, under the hard constraints.
    team_size = int(plan["team_size"])
    need_specialty = bool(plan["require_specialty"])
    inspectors = snapshot["inspectors"]
    senior = {uid: level in SENIOR_LEVELS for uid, level, *_ in inspectors}
    jpath = {uid: path for uid, _l, path, *_ in inspectors}
    specs = {row[0]: frozenset(row[3]) for row in inspectors}
    conflicts = {row[0]: frozenset(row[4]) for row in inspectors}
    last_team = dict(snapshot["last_team"])  # enterprise -> [user ids]: a couple of ids, a list will do
    previous_teams = {frozenset(t) for t in snapshot["previous_teams"]}

    # The pool in workload order: (load, tie-break key, uid), kept sorted. A new random key is
    # drawn each time an inspector's load grows, so equally loaded inspectors come in random order.
    uids = sorted(specs)
    rng.shuffle(uids)
    order = [(0, position, uid) for position, uid in enumerate(uids)]
    entry = {item[2]: item for item in order}

    # Who may go where, worked out once rather than per enterprise and inspector: the inspectors
    # whose jurisdiction contains a region path, and those in conflict with an enterprise.
    within: dict[str, frozenset[int]] = {}
    conflicted: dict[int, set[int]] = {}
    for uid, their_conflicts in conflicts.items():
        for conflict in their_conflicts:
            conflicted.setdefault(conflict, set()).add(uid)

    sequence = list(selected)
    rng.shuffle(sequence)
    assignments: dict[int, list[int]] = {}
    unassigned: list[list] = []
    for eid in sequence:
        path, ancestry = info[eid]
        banned = last_team.get(eid, ())
        allowed = within.get(path)
        if allowed is None:
            allowed = within[path] = frozenset(uid for uid, where in jpath.items() if path.startswith(where))
        excluded = conflicted.get(eid, ())
        # One pass in workload order: the first specialist, the first senior, and the first few
        # eligible inspectors are all that the team can be made of.
        specialist = None if need_specialty else 0
        first_senior = None
        early: list[int] = []
        for _load, _key, uid in order:
            if uid not in allowed or uid in excluded or uid in banned:
                continue
            if specialist is None and not specs[uid].isdisjoint(ancestry):
                specialist = uid
            if first_senior is None and senior[uid]:
                first_senior = uid
            if len(early) <= team_size:
                early.append(uid)
            if specialist is not None and first_senior is not None and len(early) > team_size:
                break
        if specialist is None:
            unassigned.append([eid, "no_specialist"])
            continue
        team = [specialist] if need_specialty else []
        if not any(senior[u] for u in team):
            if first_senior is None:
                unassigned.append([eid, "no_senior"])
                continue
            team.append(first_senior)
        for uid in early:
            if len(team) >= team_size:
                break
            if uid not in team:
                team.append(uid)
        if len(team) < team_size:
            unassigned.append([eid, "not_enough_inspectors"])
            continue
        if frozenset(team) in previous_teams:
            team = _avoid_previous_team(
                team, order, allowed, excluded, banned, senior, specs, ancestry, need_specialty, previous_teams
            )
            if team is None:
                unassigned.append([eid, "same_team_as_last_draw"])
                continue
        team_sorted = assignments[eid] = sorted(team)
        if on_team is not None:
            on_team(eid, team_sorted)
        for uid in team:
            old = entry[uid]
            order.pop(bisect.bisect_left(order, old))
            new = (old[0] + 1, rng.random(), uid)
            bisect.insort(order, new)
            entry[uid] = new

    return {
        "v": SNAPSHOT_VERSION,
        "assignments": [[eid, assignments[eid]] for eid in sorted(assignments)],
        "unassigned": sorted(unassigned),
        "capped": sorted(capped),
        "due": sorted(due & set(selected)),
        "strata": strata_report,
    }


UNASSIGNED_REASONS = {
    "no_specialist": "无专业匹配且无需回避的执法人员",
    "no_senior": "无中级及以上执法人员可派",
    "not_enough_inspectors": "可派执法人员不足",
    "same_team_as_last_draw": "无法避免与上次相同的检查组",
}


def _avoid_previous_team(
    team, order, allowed, excluded, banned, senior, specs, ancestry, need_specialty, previous_teams
):
    """Swap one member (last first) for the next eligible inspector until the team is new."""
    candidates = (  # every eligible inspector, in workload order (taken as far as needed)
        uid for _load, _key, uid in order if uid in allowed and uid not in excluded and uid not in banned
    )
    for uid in candidates:
        if uid in team:
            continue
        for pos in range(len(team) - 1, -1, -1):
            trial = team[:pos] + [uid] + team[pos + 1 :]
            if frozenset(trial) in previous_teams or not any(senior[u] for u in trial):
                continue
            if need_specialty and not any(specs[u] & ancestry for u in trial):
                continue
            return trial
    return None
