"""Profile a server's hot path under the benchmark's load with py-spy.

``python -m bench.profile --system tocsin --what fanout|unicast|storm|bulk [--seconds 10]``
starts the system, connects the clients, records the server with ``py-spy record``
while the load runs, and writes the collapsed stacks and a text
summary of the heaviest functions (self and inclusive) under ``bench/results/profile/``
(the collapsed stacks go to the git-ignored ``bench/results/tmp/profile/``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import scenarios
from bench.runner import Load, split_cpus
from bench.systems import make_systems


def summarize(collapsed: Path, top: int = 25) -> str:
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        k = int(n)
        total += k
        frames = stack.split(";")
        self_c[frames[-1]] += k
        for f in set(frames):
            incl[f] += k
    out = [f"samples: {total}", "", "self:"]
    out += [f"{100 * v / total:5.1f}%  {f}" for f, v in self_c.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"{100 * v / total:5.1f}%  {f}" for f, v in incl.most_common(top * 2)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    ap.add_argument("--system", default="tocsin")
    ap.add_argument("--what", default="fanout",
                    choices=["fanout", "unicast", "storm", "idle", "bulk"])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=2000, help="unicast notifications/s")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "profile"))
    a = ap.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    server_cpus, load_cpus = split_cpus()
    sysm = make_systems([a.system])[0]
    # as in the run: a single process on its core, several workers on every core
    sysm.cpus = server_cpus if sysm.workers == 1 else None
    load = Load(2, load_cpus)
    sysm.start()
    tag = f"{a.system}-{a.what}"
    try:
        assert sysm.proc is not None
        topic = "bench:prof"
        if a.what == "fanout":
            scenarios.connect_users(sysm, load, "p", a.users, topic=topic)
        elif a.what == "bulk":
            pass  # the bulk row's recipients are not connected (scenarios.bulk)
        else:
            scenarios.connect_users(sysm, load, "p", a.users)
        pids = [p.pid for p in sysm.processes() if "python" in p.name().lower()]
        # every worker under --workers (the supervisor, pids[0], only waits), each its
        # own py-spy: what the second worker costs shows only beside the first
        targets = pids[1:] if sysm.workers > 1 else pids[:1]
        raw_dir = Path(__file__).parent / "results" / "tmp" / "profile"  # git-ignored
        raw_dir.mkdir(parents=True, exist_ok=True)
        names = [tag] if len(targets) == 1 else [f"{tag}-w{i}" for i in range(len(targets))]
        recs = []
        for name, pid in zip(names, targets, strict=True):
            recs.append((name, raw_dir / f"{name}.txt", subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--rate", "250",
                 "--duration", str(int(a.seconds)), "--format", "raw", "--gil",
                 "--nonblocking", "-o", str(raw_dir / f"{name}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        time.sleep(1.0)
        t_end = time.monotonic() + a.seconds - 1.5
        c0 = sysm.cpu_seconds()
        users = [f"p{i}" for i in range(a.users)]
        if a.what == "fanout":
            while time.monotonic() < t_end:
                load.pub.call("burst", host="127.0.0.1", port=sysm.port,
                              path=sysm.topic_publish_path(topic),
                              headers=sysm.publish_headers(), n=20, concurrency=4)
                time.sleep(0.05)
        elif a.what == "unicast":
            load.pub.call("unicast", host="127.0.0.1", port=sysm.port, path="/api/notifications",
                          headers=sysm.publish_headers(), users=users, rate=a.rate,
                          duration=a.seconds - 2, batch=10)
        elif a.what == "bulk":
            # the bulk row's load: 100 distinct recipients per POST /api/notifications/bulk,
            # 4 senders in a closed loop (scenarios.bulk)
            load.pub.call("bulk", host="127.0.0.1", port=sysm.port,
                          path=sysm.user_publish_path(), headers=sysm.publish_headers(),
                          users=users, bulk_path=sysm.bulk_publish_path(), concurrency=4,
                          duration=a.seconds - 2, per_request=scenarios.BULK_PER_REQUEST)
        elif a.what == "storm":
            load.pub.send("unicast", host="127.0.0.1", port=sysm.port, path="/api/notifications",
                          headers=sysm.publish_headers(), users=users, rate=200,
                          duration=a.seconds - 2, batch=1)
            time.sleep(1.0)
            load.all("drop_reconnect", jitter=1.0, detail=False, timeout=120)
            load.pub.recv(timeout=120)
        else:
            time.sleep(a.seconds - 1.5)
        cpu = sysm.cpu_seconds() - c0
        summaries = []
        for name, collapsed, rec in recs:
            _, err = rec.communicate(timeout=a.seconds + 60)
            summaries.append((name, summarize(collapsed) if collapsed.exists()
                              else err.decode()[-2000:]))
        st = load.stats()
        head = (f"{tag}: {a.users} clients, server CPU {cpu:.1f} s over the load window; "
                f"events delivered {st['events']}, gaps {st['gaps']}, dupes {st['dupes']}\n")
        for name, summary in summaries:
            (out / f"{name}-summary.txt").write_text(head + summary)
            print(f"== {name}\n" + head + summary[:4000])
    finally:
        load.close()
        sysm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
