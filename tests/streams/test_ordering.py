"""The stream invariant under concurrency, on SQLite and PostgreSQL:

within one stream, ids strictly increase in the order the client receives them, and
a client holding id N never later finds an event <= N that it did not receive. Eight
concurrent publishers write to one inbox and one topic while subscribers drop and
resume at random points; every resume must return the exact suffix.
"""

from __future__ import annotations

import asyncio

from tests.support.load import (
    assert_exact_suffix,
    check_suffixes,
    hop,
    publish_mixed,
    resume_at_random,
)
from tests.support.server import ServerProcess
from tests.support.sse import open_stream

PUBLISHERS = 8
PER_PUBLISHER = 30
TOPIC_EVERY = 3


async def test_concurrent_publishers_random_resumes_exact_suffixes(
    server: ServerProcess, uid: str
) -> None:
    user, topic = f"hot-{uid}", f"hot-{uid}"
    inbox = server.url + "/api/notifications/stream"
    feed = f"{server.url}/api/topics/{topic}/stream"
    tok = server.token(user, topics=[topic])
    total_user = PUBLISHERS * PER_PUBLISHER
    total_topic = PUBLISHERS * len(range(0, PER_PUBLISHER, TOPIC_EVERY))

    live = [await open_stream(inbox, tok, "0") for _ in range(3)]
    live_topic = [await open_stream(feed, tok, "0") for _ in range(2)]
    stop = asyncio.Event()
    hoppers = [asyncio.create_task(hop(lambda last: open_stream(inbox, tok, last),
                                       total_user, stop)),
               asyncio.create_task(hop(lambda last: open_stream(feed, tok, last),
                                       total_topic, stop))]
    acked: list[str] = []

    resumers = [asyncio.create_task(resume_at_random(lambda last: open_stream(inbox, tok, last),
                                                     live[0], 6, 0.1)),
                asyncio.create_task(resume_at_random(lambda last: open_stream(feed, tok, last),
                                                     live_topic[0], 6, 0.1))]
    await asyncio.gather(*(publish_mixed(server, w, user, topic, acked,
                                         PER_PUBLISHER, TOPIC_EVERY)
                           for w in range(PUBLISHERS)))
    stop.set()
    try:
        for s in live:
            events = await s.wait_for(total_user, timeout=30)
            assert_exact_suffix(events, 0, total_user)
            assert {e.data["id"] for e in events} == set(acked)  # acknowledged = delivered
        for s in live_topic:
            assert_exact_suffix(await s.wait_for(total_topic, timeout=30), 0, total_topic)
        hopped_user, hopped_topic = await asyncio.gather(*hoppers)
        assert_exact_suffix(hopped_user, 0, total_user)
        assert_exact_suffix(hopped_topic, 0, total_topic)
        assert all(await asyncio.gather(*resumers))
        # Finally, resumes at random points after the fact return the exact suffix,
        # payload for payload.
        await check_suffixes(lambda last: open_stream(inbox, tok, last),
                             live[0].events[:total_user], 5)
    finally:
        for s in live + live_topic:
            await s.close()
