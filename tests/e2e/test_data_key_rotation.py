"""``silian keys rotate-data-key`` while the gateway runs and an agency keeps
submitting: no call fails, every stored value ends under the new key, and
what was stored before, during and after still reaches its recipients."""

from __future__ import annotations

import threading
from collections.abc import Callable

from click.testing import CliRunner

from gateway import bootstrap
from gateway.cli import main
from gateway.client import AgencyClient
from gateway.domain import kinds
from gateway.store import rekey
from gateway.testing import enrolment
from tests.e2e.conftest import Running
from tests.helpers import receive_mids

Clients = Callable[[str], AgencyClient]
MOST_DURING = 300


def test_rotation_under_load_fails_no_call_and_leaves_nothing_under_the_old_key(
    running: Running, client: Clients
) -> None:
    judicial = client("judicial")
    before = [judicial.submit(kinds.ROSTER_CHANGE, enrolment()).mid for _ in range(15)]
    store = bootstrap.open_store(running.settings)
    old_key = store.data_keys.current

    stop = threading.Event()
    during: list[str] = []
    failures: list[BaseException] = []

    def submit_until_stopped() -> None:
        sender = running.client("judicial")
        try:
            while not stop.is_set() and len(during) < MOST_DURING:
                during.append(sender.submit(kinds.ROSTER_CHANGE, enrolment()).mid)
        except BaseException as exc:  # the test reports it
            failures.append(exc)
        finally:
            sender.close()

    submitter = threading.Thread(target=submit_until_stopped)
    submitter.start()
    try:
        result = CliRunner().invoke(
            main,
            [
                *("--data-dir", str(running.settings.data_dir), "--log-format", "console"),
                *("keys", "rotate-data-key", "--batch", "7", "--switch-seconds", "2.5"),
            ],
            env={"SILIAN_DATABASE_URL": running.settings.database_url},
            catch_exceptions=False,
        )
    finally:
        stop.set()
        submitter.join(60)
    assert result.exit_code == 0, result.output
    assert failures == []
    assert during, "nothing was submitted during the rotation"
    after = [judicial.submit(kinds.ROSTER_CHANGE, enrolment()).mid for _ in range(5)]

    store.engine.dispose()
    store = bootstrap.open_store(running.settings)
    new_key = store.data_keys.current
    assert new_key != old_key
    assert f"data key {new_key} is current (was {old_key})" in result.output
    assert rekey.stale_count(store) == 0
    assert (running.settings.keys_dir / "data" / f"{old_key}.key").exists()

    mids = before + during + after
    police = receive_mids(client("police"), mids, timeout=60)
    assert set(mids) <= set(police)
    resident_ids = {kinds.decode(d.kind, d.payload).subject.resident_id for d in police.values()}
    assert all(resident_ids)

    store.data_keys.rotate()  # a new key that nothing is sealed with yet
    assert rekey.stale_count(store) >= len(mids)
    assert rekey.reseal(store, batch=50) >= len(mids)
    assert rekey.stale_count(store) == 0
    store.engine.dispose()
