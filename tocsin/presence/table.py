"""The cluster-wide presence table every node keeps in memory (no I/O here).

An *entry* is ``(stream, user)`` held by a node: that node has at least one open
connection of ``user`` on ``stream`` (an inbox ``u:<user>`` or a topic ``t:<topic>``).
A user with many tabs, or many tabs on many nodes, is one *member* of the stream: the
union over nodes. Each user also has a reported state (``active``/``idle``; a user
who never reported is ``active``), shared by every stream they are on.

The table reports *changes of membership* — a member appearing or disappearing, a
member's state changing — so the caller can tell the local connections of that
stream. Nodes compute the same table from the same messages, so each node tells
only its own connections and no per-connection message ever crosses the broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

State = Literal["active", "idle"]
STATES: tuple[State, ...] = ("active", "idle")
ABSENT = "absent"

Entry = tuple[str, str]
"""``(stream, user)``."""


@dataclass(slots=True, frozen=True)
class Change:
    """Something listeners of ``stream`` should hear: ``user`` is now ``state``
    (``"absent"``: left) since ``since`` (ms since the epoch)."""

    stream: str
    user: str
    state: str
    since: int


# Every node keeps every entry of the cluster, so an entry's cost is paid once per node
# (measured: ~700 B an entry, i.e. ~5 KB a connection at 100k over 7 processes). The
# common case is one of each — one node holding an entry, one user on an inbox, one
# stream for a user — so a single member is stored as itself and only several as a
# set/dict (a one-element set is 216 B, a one-key dict 184 B, a 2-tuple 56 B).
Holders = tuple[str, int] | dict[str, int]
"""``(node, since)``, or node -> since when several nodes hold the entry."""
Members = str | set[str]


def _put(index: dict[str, Members], key: str, member: str) -> None:
    cur = index.get(key)
    if cur is None:
        index[key] = member
    elif isinstance(cur, str):
        if cur != member:
            index[key] = {cur, member}
    else:
        cur.add(member)


def _take(index: dict[str, Members], key: str, member: str) -> None:
    cur = index.get(key)
    if cur is None:
        return
    if isinstance(cur, str):
        if cur == member:
            del index[key]
        return
    cur.discard(member)
    if len(cur) == 1:
        index[key] = next(iter(cur))
    elif not cur:
        del index[key]


def each(index: dict[str, Members], key: str) -> Iterable[str]:
    """The members of ``key`` in ``index`` (``by_stream``/``by_user``)."""
    cur = index.get(key)
    if cur is None:
        return ()
    return (cur,) if isinstance(cur, str) else cur


def since_of(held: Holders, node: str) -> int | None:
    if isinstance(held, tuple):
        return held[1] if held[0] == node else None
    return held.get(node)


class Table:
    def __init__(self) -> None:
        self.holders: dict[Entry, Holders] = {}
        """Per entry: which node(s) hold it, since when (ms)."""
        self.by_node: dict[str, set[Entry]] = {}
        self.by_stream: dict[str, Members] = {}
        self.by_user: dict[str, Members] = {}
        self.states: dict[str, tuple[State, int]] = {}
        """Per user: reported state and since when (ms)."""

    # -- reading -------------------------------------------------------------------------
    def joined_at(self, entry: Entry) -> int:
        held = self.holders.get(entry)
        if held is None:
            return 0
        return held[1] if isinstance(held, tuple) else min(held.values())

    def held_since(self, entry: Entry, node: str) -> int:
        """When ``node`` began holding ``entry`` (which it holds)."""
        since = since_of(self.holders[entry], node)
        assert since is not None
        return since

    def state_of(self, user: str, joined: int) -> tuple[State, int]:
        state, since = self.states.get(user, ("active", 0))
        return state, max(since, joined)

    def members(self, stream: str) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for user in sorted(each(self.by_stream, stream)):
            state, since = self.state_of(user, self.joined_at((stream, user)))
            out.append({"user": user, "state": state, "since": since})
        return out

    def user(self, user: str) -> tuple[str, int, list[str]]:
        """``(state or "absent", since, streams)`` of ``user`` across the cluster."""
        streams = list(each(self.by_user, user))
        if not streams:
            return ABSENT, 0, []
        joined = min(self.joined_at((s, user)) for s in streams)
        state, since = self.state_of(user, joined)
        return state, since, sorted(streams)

    # -- changing ------------------------------------------------------------------------
    def add(self, node: str, entry: Entry, since: int) -> Change | None:
        held = self.holders.get(entry)
        if held is None:
            self.holders[entry] = (node, since)
        elif since_of(held, node) is not None:
            return None
        else:
            if isinstance(held, tuple):
                self.holders[entry] = {held[0]: held[1], node: since}
            else:
                held[node] = since
            self.by_node.setdefault(node, set()).add(entry)
            return None
        self.by_node.setdefault(node, set()).add(entry)
        stream, user = entry
        _put(self.by_stream, stream, user)
        _put(self.by_user, user, stream)
        state, at = self.state_of(user, since)
        return Change(stream, user, state, at)

    def remove(self, node: str, entry: Entry, now: int) -> Change | None:
        held = self.holders.get(entry)
        if held is None or since_of(held, node) is None:
            return None
        mine = self.by_node.get(node)
        if mine is not None:
            mine.discard(entry)
            if not mine:
                del self.by_node[node]
        if isinstance(held, dict):
            del held[node]
            if len(held) > 1:
                return None
            if held:
                self.holders[entry] = next(iter(held.items()))
                return None
        del self.holders[entry]
        stream, user = entry
        _take(self.by_stream, stream, user)
        _take(self.by_user, user, stream)
        return Change(stream, user, ABSENT, now)

    def replace_node(self, node: str, entries: dict[Entry, int], now: int) -> list[Change]:
        """Make ``node``'s entries exactly ``entries`` (a snapshot from it)."""
        changes: list[Change] = []
        for entry in list(self.by_node.get(node, ())):
            if entry not in entries:
                c = self.remove(node, entry, now)
                if c is not None:
                    changes.append(c)
        for entry, since in entries.items():
            c = self.add(node, entry, since)
            if c is not None:
                changes.append(c)
        return changes

    def drop_node(self, node: str, now: int) -> list[Change]:
        return self.replace_node(node, {}, now)

    def count(self, node: str) -> int:
        return len(self.by_node.get(node, ()))

    def set_state(self, user: str, state: State, since: int) -> list[Change]:
        """Record a reported state; changes for every stream the user is on (none if the
        state is the same or older than the one known)."""
        old = self.states.get(user)
        if old is not None and (old[1] > since or old[0] == state):
            return []
        self.states[user] = (state, since)
        if old is None and state == "active":
            return []  # never reported means active: nothing to tell
        return [Change(s, user, state, since) for s in sorted(each(self.by_user, user))]

    def forget_states(self, older_than: int) -> None:
        """Drop reported states of users present nowhere, reported before ``older_than``."""
        for user in [u for u, (_, at) in self.states.items()
                     if at < older_than and u not in self.by_user]:
            del self.states[user]
