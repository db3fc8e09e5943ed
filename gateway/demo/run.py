"""``silian demo``: a compressed period of the four linkages through a real gateway.

Starts a gateway on the data directory (SQLite unless SILIAN_DATABASE_URL says
otherwise) and the local RabbitMQ — or uses a running one (``target``) —,
registers the principals with fresh keys and plays a ``Simulation`` through
the real gRPC path over mTLS (a CA and certificates the demo keeps in
``<data-dir>/tls``), each agency signing with its own key and presenting its
own certificate: the roster first,
in bulk over SubmitStream, then referrals (the partners learn their
pseudonyms from their inboxes), then the period day by day. Every recipient
reads and acknowledges its inbox meanwhile. At the end the time-driven
linkage rules run once, the audit log is exported and verified offline, and
the period's figures (``gateway.reporting.period``) are printed and written as an HTML
report (``gateway.reporting.html``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from itertools import groupby
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import select

from gateway import bootstrap
from gateway.audit import bundle, checkpoints
from gateway.broker.topology import broker_urls
from gateway.client import AgencyClient, channel_credentials
from gateway.client.inbox import describe_refusals
from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.demo.agencies import Inbox, Key, submit_all
from gateway.demo.console import show
from gateway.demo.disposal import plan_dispositions, time_scale
from gateway.demo.simulation import BUREAU, PHASES, Known, Outgoing, Simulation
from gateway.domain import kinds, registry
from gateway.domain.deadlines import Deadlines
from gateway.domain.policy import Policy
from gateway.domain.routing import recipient_mid
from gateway.proto.silian.v1 import envelope_pb2
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.reporting.disposal import DisposalFigures, minutes_text, share_text
from gateway.reporting.html import write_report
from gateway.reporting.period import summarize
from gateway.service.provision import ensure_principals
from gateway.store import db
from gateway.store.models import OutboxRow
from gateway.store.repository import Store
from gateway.testing import BackgroundGateway, serving_mtls

#: Longest wait for the deliveries of one step (seconds).
DELIVERY_TIMEOUT = 120.0


@dataclass(frozen=True)
class DemoOptions:
    """What ``silian demo`` simulates: ``speed`` is simulated days per second
    (0: as fast as the gateway takes them); ``target`` a running gateway."""

    days: int = 30
    people: int = 2000
    seed: int | None = None
    speed: float = 0.0
    target: str | None = None


@dataclass(frozen=True)
class Parties:
    """Who takes part, as the policy says: every agency signs with its own key and
    reads its inbox; the partners are the agencies it routes referrals to."""

    agencies: tuple[str, ...]
    partners: tuple[str, ...]

    @classmethod
    def of(cls, policy: Policy) -> Parties:
        referred_to = {route.recipient for route in policy.routes_for(kinds.SERVICE_REFERRAL)}
        agencies = tuple(bootstrap.recipients(policy))
        return cls(agencies, tuple(agency for agency in agencies if agency in referred_to))


@dataclass(frozen=True)
class Dial:
    """How the simulated agencies reach the gateway: each over mTLS with its own
    certificate from the PKI folder ``tls`` (``gateway.security.pki``), or in
    plaintext when there is none."""

    target: str
    gateway_id: str
    tls: Path | None

    def __call__(
        self, agency: str, key: Ed25519PrivateKey, gateway_keys: tuple[bytes, ...] = ()
    ) -> AgencyClient:
        folder = self.tls
        return AgencyClient.connect(
            self.target,
            agency=agency,
            key=key,
            gateway_id=self.gateway_id,
            gateway_keys=gateway_keys,
            ca_bundle=folder / "ca.pem" if folder else None,
            client_cert=folder / f"{agency}.pem" if folder else None,
            client_key=folder / f"{agency}.key" if folder else None,
        )


@dataclass
class _Exchange:
    """The agencies' clients (one per agency) and inboxes, and what was sent and expected."""

    clients: dict[str, AgencyClient]
    progress: Progress
    tasks: dict[str, TaskID]
    #: (kind, recipient, sender, mid) -> the mid the recipient's delivery carries
    known_as: Callable[[str, str, str, str], str]
    inboxes: dict[str, Inbox] = field(default_factory=dict)
    expected: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))
    failures: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # expected, across threads
    referred: list[tuple[str, Key, Known]] = field(default_factory=list)
    #: Alerts the bureau received, to dispose of.
    alerts: list[tuple[Key, pb.Alert]] = field(default_factory=list)

    def open_inboxes(self, dial: Dial, settings: Settings) -> None:
        """Every agency reads its inbox, checking the gateway's signature of each
        delivery (the gateway's key is in the data directory, or ``gateway_jwks``)."""
        public = gateway_keys(settings)
        if not public:
            self.failures.append(
                f"no gateway key in {settings.data_dir} and no gateway_jwks setting: "
                "deliveries could not be checked"
            )
        for agency in self.clients:
            reader = dial(agency, self.clients[agency].key, public)
            self.inboxes[agency] = Inbox(reader, self._learn, self._acknowledged)

    def _learn(self, delivery: envelope_pb2.Delivery) -> None:
        """A partner keeps the pseudonym each referral names (its only handle on the
        person) and the unit, to record its services."""
        if delivery.kind == kinds.SERVICE_REFERRAL:
            referral = kinds.decode(delivery.kind, delivery.payload, allow_unknown=True)
            assert isinstance(referral, pb.ServiceReferral)
            known = Known(referral.subject.pseudonym, referral.unit_code)
            self.referred.append((delivery.recipient, (delivery.sender, delivery.mid), known))
        elif delivery.kind == kinds.ALERT and delivery.recipient == BUREAU:
            alert = kinds.decode(delivery.kind, delivery.payload)
            assert isinstance(alert, pb.Alert)
            with self.lock:
                self.alerts.append(((delivery.sender, delivery.mid), alert))

    def known(self) -> dict[str, list[Known]]:
        """Per partner, the people this run referred to it (not strays of other runs
        left in a shared inbox)."""
        found: dict[str, list[Known]] = defaultdict(list)
        for partner, key, known in self.referred:
            if key in self.expected[partner]:
                found[partner].append(known)
        return found

    def _acknowledged(self, agency: str, keys: set[Key]) -> None:
        """Progress counts this run's deliveries (a shared inbox may hold strays)."""
        with self.lock:
            counted = len(keys & self.expected[agency])
        self.progress.advance(self.tasks["deliveries"], counted)

    def send(self, items: list[Outgoing]) -> None:
        """Submit ``items`` in order, one SubmitStream per run of sender and phase."""
        for (sender, phase), run in groupby(items, key=lambda o: (o.sender, o.phase)):
            client = self.clients.get(sender)
            if client is None:
                self.failures.append(f"{sender} is not an agency of the policy: {phase} not sent")
                continue
            envelopes = [client.envelope(o.kind, o.message) for o in run]
            task = self.tasks[phase]
            outcome = submit_all(client, envelopes, partial(self.progress.advance, task))
            self.failures += outcome.refused
            for receipt in outcome.receipts:
                self.expect(receipt.kind, receipt.recipients, receipt.sender, receipt.mid)

    def expect(self, kind: str, recipients: Iterable[str], sender: str, mid: str) -> None:
        """A message each of ``recipients`` should receive (under the mid it knows it by)."""
        with self.lock:
            for recipient in recipients:
                self.expected[recipient].add((sender, self.known_as(kind, recipient, sender, mid)))
            total = sum(len(v) for v in self.expected.values())
        self.progress.update(self.tasks["deliveries"], total=total)

    def wait(self, agencies: Iterable[str] | None = None) -> None:
        """Wait until ``agencies`` (default: all) acknowledged everything expected;
        note what is missing."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        for agency in self.inboxes if agencies is None else agencies:
            inbox = self.inboxes[agency]
            left = inbox.wait_for(self.expected[agency], max(deadline - time.monotonic(), 0))
            if left:
                self.missing[agency] = len(left)
            if inbox.error is not None:
                self.failures.append(f"{agency} inbox failed: {inbox.error}")
            refused = describe_refusals(inbox.reader.refused)
            self.failures += [f"{agency}: {line}" for line in refused]

    def close(self) -> None:
        for inbox in self.inboxes.values():
            inbox.close()
            inbox.client.close()
        for client in self.clients.values():
            client.close()


def run_demo(settings: Settings, console: Console, options: DemoOptions | None = None) -> int:
    """Play the period; 0 if every message was accepted, delivered and acknowledged
    and the audit log verifies offline."""
    options = options or DemoOptions()
    seed = options.seed if options.seed is not None else random.randrange(1_000_000)
    started = datetime.now(UTC)
    clock = time.monotonic()
    store = bootstrap.open_store(settings)
    db.upgrade(store.engine, data_keys=store.data_keys)  # an older data directory, too
    policy = bootstrap.load_policy(settings)
    keys = ensure_principals(settings, store, policy)
    units = bootstrap.load_units(settings)
    scale = time_scale(started)
    simulation = Simulation(people=options.people, days=options.days, units=units, seed=seed)
    console.print(
        f"[bold]Silian demo[/bold] — {options.people} people in {len(units)} units, "
        f"{options.days} days ({simulation.first_day} – {simulation.last_day}), seed {seed}\n"
        f"data directory {settings.data_dir.resolve()}"
    )
    try:
        with ExitStack() as stack:
            parties = Parties.of(policy)
            dial, sweep = _gateway(stack, settings, options, parties, console, scale)
            exchange = _play(stack, settings, dial, keys, parties, simulation, options)
            deadlines = Deadlines.load(settings.disposal_file)
            _dispose(exchange, store, started, simulation, deadlines, scale)
            if sweep is not None:
                _sweep(sweep, exchange, console)
            _expect_alerts(exchange, store, started)
            exchange.wait()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: the gateway and the inboxes are closed")
        return 130
    export_dir = settings.data_dir / "audit-export"
    try:
        verified = bundle.verify(
            _export(store, settings, export_dir), checkpoints.audit_signer(settings).verifier
        )
        verdict = (
            f"OK: {verified.size} entries and {verified.checkpoints} checkpoints verify "
            f"(exported to {export_dir})"
        )
    except bundle.BundleError as err:
        verdict = f"FAILED: {err}"
    summary = summarize(store, units, since=started)
    summary.verified = verdict
    report = write_report(summary, settings.data_dir / "report.html")
    show(console, summary, exchange.failures, exchange.missing, _linkage_names())
    _show_disposal(console, summary.disposal, scale)
    console.print(f"report: {report.resolve()}")
    console.print(f"finished in {time.monotonic() - clock:.0f} s")
    store.engine.dispose()
    failed = exchange.failures or exchange.missing or verdict.startswith("FAILED")
    console.print(
        "[red]something failed (see above)[/red]"
        if failed
        else "[green]every message accepted, delivered and acknowledged; "
        "the audit log verifies[/green]"
    )
    return 1 if failed else 0


def _gateway(
    stack: ExitStack,
    settings: Settings,
    options: DemoOptions,
    parties: Parties,
    console: Console,
    scale: float,
) -> tuple[Dial, Callable[[], int] | None]:
    """How to reach the gateway and, for a gateway of our own, its sweep. Our own
    gateway serves mTLS with a CA the demo keeps in ``<data-dir>/tls``; a running
    one (``target``) is reached with that folder's certificates if it is there.
    Our own gateway's disposal deadlines are compressed by ``scale``."""
    folder = settings.data_dir / "tls"
    if options.target:
        tls = folder if (folder / "ca.pem").exists() else None
        console.print(f"using the gateway at {options.target} ({'mTLS' if tls else 'plaintext'})")
        return Dial(options.target, settings.gateway_id, tls), None
    served = serving_mtls(settings, folder, parties.agencies)
    probe = channel_credentials(folder / "ca.pem", folder / "gateway.pem", folder / "gateway.key")
    running = stack.enter_context(
        BackgroundGateway(replace(served, disposal_time_scale=scale), credentials=probe)
    )
    console.print(
        f"gateway serving on {running.target} over mTLS (CA and certificates in {folder}; "
        f"{running.gateway.store.engine.url.get_backend_name()}, "
        f"RabbitMQ {', '.join(url.split('@')[-1] for url in broker_urls(settings.amqp_url))})"
    )

    def sweep() -> int:
        return running.gateway.service.sweep(datetime.now(UTC))

    return Dial(running.target, settings.gateway_id, folder), sweep


def _play(
    stack: ExitStack,
    settings: Settings,
    dial: Dial,
    keys: dict[str, Ed25519PrivateKey],
    parties: Parties,
    simulation: Simulation,
    options: DemoOptions,
) -> _Exchange:
    clients = {agency: dial(agency, keys[agency]) for agency in parties.agencies}
    progress = stack.enter_context(_progress())
    tasks = {phase: progress.add_task(label, total=0) for phase, label in PHASES.items()}
    tasks["deliveries"] = progress.add_task("收件 deliveries acknowledged", total=0)
    known_as = partial(
        recipient_mid, bootstrap.load_policy(settings), bootstrap.pseudonym_keys(settings)
    )
    exchange = _Exchange(clients, progress, tasks, known_as)
    stack.callback(exchange.close)
    exchange.open_inboxes(dial, settings)
    enrolments = simulation.enrolments()
    referrals = simulation.referrals()
    progress.update(tasks["roster"], total=len(enrolments))
    progress.update(tasks["referrals"], total=len(referrals))
    exchange.send(enrolments)
    exchange.send(referrals)
    if exchange.failures:  # without the roster the period would only pile up refusals
        return exchange
    exchange.wait(parties.partners)
    days = simulation.period(exchange.known())
    for phase in ("changes", "police", "inspections", "services", "campaigns"):
        progress.update(tasks[phase], total=sum(o.phase == phase for d in days for o in d))
    begun = time.monotonic()
    for number, items in enumerate(days):
        if options.speed:
            time.sleep(max(0.0, begun + number / options.speed - time.monotonic()))  # pacing
        exchange.send(items)
    return exchange


def _dispose(
    exchange: _Exchange,
    store: Store,
    since: datetime,
    simulation: Simulation,
    deadlines: Deadlines,
    scale: float,
) -> None:
    """The units dispose of the alerts the bureau received (``gateway.demo.disposal``)."""
    if exchange.failures:
        return
    _expect_alerts(exchange, store, since)
    exchange.wait([BUREAU])
    with exchange.lock:
        mine = [alert for key, alert in exchange.alerts if key in exchange.expected[BUREAU]]
    rounds = plan_dispositions(simulation, mine, deadlines, scale, datetime.now(UTC))
    exchange.progress.update(exchange.tasks["disposal"], total=sum(map(len, rounds)))
    for items in rounds:
        exchange.send(items)


def _show_disposal(console: Console, figures: DisposalFigures, scale: float) -> None:
    total = figures.total
    console.print(
        f"闭环 alert disposal: {total.raised} alerts, 处置率 disposal rate "
        f"{share_text(total.rate)} ({total.in_time} of {total.due} due disposed within "
        f"deadline), median {minutes_text(total.median_verify)} to verification and "
        f"{minutes_text(total.median_dispose)} to disposal, {total.open} open "
        f"({total.overdue} overdue), {total.reopened} reopened"
        + (f"; deadlines compressed ×{scale:.3f} to fit the day" if scale < 1 else "")
    )
    campaigns = figures.campaigns
    console.print(
        f"核查专项 verification campaigns: {len(campaigns)}, completion "
        f"{share_text(figures.campaign_completion)} "
        f"({sum(c.answered for c in campaigns)} of {sum(c.asked for c in campaigns)} people "
        f"answered), {sum(c.hits for c in campaigns)} hits, "
        f"{sum(c.state == 'OVERDUE' for c in campaigns)} overdue"
    )


def _sweep(sweep: Callable[[], int], exchange: _Exchange, console: Console) -> None:
    """Run the linkages' time rules (overdue findings, days without a check) once now."""
    try:
        console.print(f"linkage rules swept: {sweep()} alerts raised by time rules")
    except Exception as err:  # any failure of a rule is a failure of the demo, shown plainly
        exchange.failures.append(f"the linkage rules' sweep failed: {err!r}"[:500])


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        yield progress


def _expect_alerts(exchange: _Exchange, store: Store, since: datetime) -> None:
    """Alerts the linkage rules raised are expected in their recipients' inboxes too."""
    with store.transaction() as session:
        rows = session.execute(
            select(
                OutboxRow.recipient, OutboxRow.sender, OutboxRow.mid, OutboxRow.created_at
            ).where(OutboxRow.kind == kinds.ALERT, OutboxRow.destination == "inbox")
        ).all()
    for recipient, sender, mid, created in rows:
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        if created >= since:
            exchange.expect(kinds.ALERT, [recipient], sender, mid)


def _export(store: Store, settings: Settings, out: Path) -> Path:
    """Sign a checkpoint of the whole log and export it to ``out`` (replacing a
    previous export), as an operator hands it to an auditor."""
    bundle.export(store, checkpoints.audit_signer(settings), out)
    return out


def _linkage_names() -> list[str]:
    return [found.name for found in registry.discover().all]
