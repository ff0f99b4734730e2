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

import json
import math
import random
from datetime import date
from decimal import Decimal

from enforcement.choices import SENIOR_LEVELS

SNAPSHOT_VERSION = 1


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


def compute_draw(seed: str, snapshot: dict) -> dict:
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
    for eid, industry, path, risk, credit, done, days_since in snapshot["targets"]:
        ancestry = industries.ancestry(industry)
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
        for index, stratum in enumerate(strata):
            if _matches(stratum, credit, risk, ancestry):
                members[index].append(eid)
                break

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

    # 2. Teams: workload-balanced greedy over a shuffled order, under the hard constraints.
    team_size = int(plan["team_size"])
    need_specialty = bool(plan["require_specialty"])
    inspectors = snapshot["inspectors"]
    senior = {uid: level in SENIOR_LEVELS for uid, level, *_ in inspectors}
    jpath = {uid: path for uid, _l, path, *_ in inspectors}
    specs = {row[0]: frozenset(row[3]) for row in inspectors}
    conflicts = {row[0]: frozenset(row[4]) for row in inspectors}
    last_team = {eid: frozenset(uids) for eid, uids in snapshot["last_team"]}
    previous_teams = {frozenset(t) for t in snapshot["previous_teams"]}

    order = sorted(specs)
    rng.shuffle(order)
    load = dict.fromkeys(order, 0)
    buckets: dict[int, list[int]] = {0: order}

    def by_load():
        for level in sorted(buckets):
            yield from buckets[level]

    sequence = list(selected)
    rng.shuffle(sequence)
    assignments: dict[int, list[int]] = {}
    unassigned: list[list] = []
    for eid in sequence:
        path, ancestry = info[eid]
        banned = last_team.get(eid, frozenset())

        def eligible(uid, path=path, eid=eid, banned=banned):
            return path.startswith(jpath[uid]) and eid not in conflicts[uid] and uid not in banned

        candidates = (u for u in by_load() if eligible(u))
        seen: list[int] = []
        team: list[int] = []

        def find(pred, candidates=candidates, seen=seen, team=team):
            for uid in seen:
                if uid not in team and pred(uid):
                    return uid
            for uid in candidates:
                seen.append(uid)
                if uid not in team and pred(uid):
                    return uid
            return None

        def matches(uid, ancestry=ancestry):
            return bool(specs[uid] & ancestry)

        reason = ""
        if need_specialty:
            uid = find(matches)
            if uid is None:
                reason = "no_specialist"
            else:
                team.append(uid)
        if not reason and not any(senior[u] for u in team):
            uid = find(senior.__getitem__)
            if uid is None:
                reason = "no_senior"
            else:
                team.append(uid)
        while not reason and len(team) < team_size:
            uid = find(lambda u: True)
            if uid is None:
                reason = "not_enough_inspectors"
            else:
                team.append(uid)
        if not reason and frozenset(team) in previous_teams:
            reason = "same_team_as_last_draw"
            seen.extend(candidates)  # rare path: consider every eligible inspector
            for uid in list(seen):
                if uid is None or uid in team:
                    continue
                for pos in range(len(team) - 1, -1, -1):
                    trial = team[:pos] + [uid] + team[pos + 1 :]
                    if frozenset(trial) in previous_teams or not any(senior[u] for u in trial):
                        continue
                    if need_specialty and not any(matches(u) for u in trial):
                        continue
                    team[:] = trial
                    reason = ""
                    break
                if not reason:
                    break
        if reason:
            unassigned.append([eid, reason])
            continue
        assignments[eid] = sorted(team)
        for uid in team:
            buckets[load[uid]].remove(uid)
            if not buckets[load[uid]]:
                del buckets[load[uid]]
            load[uid] += 1
            bucket = buckets.setdefault(load[uid], [])
            bucket.insert(rng.randrange(len(bucket) + 1), uid)  # random place among equals: varied teams

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
