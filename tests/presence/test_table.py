"""The presence table against a plain model (entry -> node -> since): random joins,
leaves, snapshots and dropped nodes give the same members, users, counts and changes,
whatever the compact representation (a single member or holder stored as itself)."""

from __future__ import annotations

import random

from tocsin.presence import ABSENT, Change, Table


class Model:
    def __init__(self) -> None:
        self.held: dict[tuple[str, str], dict[str, int]] = {}
        self.states: dict[str, tuple[str, int]] = {}

    def state_of(self, user: str, joined: int) -> tuple[str, int]:
        state, since = self.states.get(user, ("active", 0))
        return state, max(since, joined)

    def add(self, node: str, entry: tuple[str, str], since: int) -> Change | None:
        nodes = self.held.setdefault(entry, {})
        if node in nodes:
            return None
        nodes[node] = since
        if len(nodes) > 1:
            return None
        return Change(entry[0], entry[1], *self.state_of(entry[1], since))

    def remove(self, node: str, entry: tuple[str, str], now: int) -> Change | None:
        nodes = self.held.get(entry, {})
        if node not in nodes:
            return None
        del nodes[node]
        if nodes:
            return None
        del self.held[entry]
        return Change(entry[0], entry[1], ABSENT, now)

    def members(self, stream: str) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for (s, u), nodes in sorted(self.held.items()):
            if s == stream:
                state, since = self.state_of(u, min(nodes.values()))
                out.append({"user": u, "state": state, "since": since})
        return out

    def user(self, user: str) -> tuple[str, int, list[str]]:
        mine = {s: min(n.values()) for (s, u), n in self.held.items() if u == user}
        if not mine:
            return ABSENT, 0, []
        return (*self.state_of(user, min(mine.values())), sorted(mine))

    def count(self, node: str) -> int:
        return sum(node in n for n in self.held.values())


def test_table_matches_the_model() -> None:
    rnd = random.Random(7)
    nodes = [f"n{i}" for i in range(4)]
    streams = ["t:a", "t:b", "u:x", "u:y"]
    users = ["x", "y", "z", "w"]
    table, model = Table(), Model()
    for step in range(20_000):
        node = rnd.choice(nodes)
        entry = (rnd.choice(streams), rnd.choice(users))
        r = rnd.random()
        if r < 0.45:
            assert table.add(node, entry, step) == model.add(node, entry, step)
        elif r < 0.9:
            assert table.remove(node, entry, step) == model.remove(node, entry, step)
        elif r < 0.93:
            snap = {(rnd.choice(streams), rnd.choice(users)): step for _ in range(rnd.randrange(4))}
            got = table.replace_node(node, snap, step)
            want = [c for e in [e for e, n in model.held.items() if node in n and e not in snap]
                    if (c := model.remove(node, e, step)) is not None]
            want += [c for e, at in snap.items() if (c := model.add(node, e, at)) is not None]
            assert sorted(got, key=repr) == sorted(want, key=repr)
        elif r < 0.95:
            got = table.drop_node(node, step)
            want = [c for e in [e for e, n in model.held.items() if node in n]
                    if (c := model.remove(node, e, step)) is not None]
            assert sorted(got, key=repr) == sorted(want, key=repr)
        else:
            user, state = rnd.choice(users), rnd.choice(("active", "idle"))
            table.set_state(user, state, step)  # type: ignore[arg-type]
            model.states[user] = table.states[user]
        for s in streams:
            assert table.members(s) == model.members(s)
        for u in users:
            assert table.user(u) == model.user(u)
        for n in nodes:
            assert table.count(n) == model.count(n)
            assert dict(table.held_by(n)) == {e: ns[n] for e, ns in model.held.items() if n in ns}
