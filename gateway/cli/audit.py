"""``silian audit …``: the auditors' and operators' commands for the audit log.

``export`` and ``verify`` move the log to an auditor and check it there without
the gateway; ``proof`` prints RFC 9162 proofs as JSON (hashes in base64);
``subject`` lists who received one person's data; ``checkpoint`` signs one
now; ``key`` prints the verifier key auditors check checkpoints with.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from gateway.audit import bundle, checkpoints
from gateway.audit import log as audit_log
from gateway.audit.note import Verifier
from gateway.audit.service import AuditService, Step
from gateway.cli.errors import one_line_errors
from gateway.cli.options import current_settings, err_console
from gateway.config import Settings
from gateway.domain import events
from gateway.store.models import AuditCheckpoint

console = Console(width=None if sys.stdout.isatty() else 160)


def _service(settings: Settings) -> AuditService:
    from gateway import bootstrap

    return AuditService(
        bootstrap.open_store(settings),
        bootstrap.load_policy(settings),
        bootstrap.subject_keys(settings),
    )


class _Bar:
    """bundle.Progress on a rich progress bar (on stderr, so stdout stays clean)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=None)

    def start(self, total: int | None) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=not err_console.is_terminal,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@click.group("audit")
def audit() -> None:
    """The tamper-evident audit log (RFC 9162 Merkle tree, C2SP signed checkpoints).

    Operators export it and sign checkpoints; auditors verify an export offline,
    check proofs, and look up who received a person's data."""


@audit.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the bundle into (created if missing).",
)
@one_line_errors
def export(out: Path) -> None:
    """Sign a checkpoint of the log as it is now, then write a self-contained bundle to
    --out: every entry (JSON Lines, canonical bytes base64 in "leaf"), every checkpoint
    with the consistency proof from the one before, and the verifier key. Give the
    folder to an auditor, who checks it with `silian audit verify`."""
    from gateway import bootstrap

    settings = current_settings()
    store = bootstrap.open_store(settings)
    with _progress() as progress:
        summary = bundle.export(
            store, checkpoints.audit_signer(settings), out, _Bar(progress, "exporting")
        )
    console.print(
        f"exported {summary.size} entries and {summary.checkpoints} checkpoints to {out}\n"
        f"root {summary.root_hash.hex()}\nverifier key {summary.verifier}",
        highlight=False,
    )


@audit.command()
@click.argument("bundle_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--key",
    "key",
    help="The verifier key you got from the bureau (text or a file holding it). "
    "Default: the bundle's own verifier.key, which proves nothing about who signed.",
)
@one_line_errors
def verify(bundle_dir: Path, key: str | None) -> None:
    """Check the audit bundle in DIR offline: recompute the Merkle tree from every entry,
    check every checkpoint's signature and its consistency with the one before, and that
    each checkpoint's root is the root of the entries it covers. Exits 1 naming the
    first entry or checkpoint that does not verify. Needs no database or gateway."""
    try:
        summary = _verify(bundle_dir, key)
    except bundle.BundleError as err:
        raise click.ClickException(f"the audit bundle does not verify: {err}") from None
    console.print(
        f"OK: {summary.size} entries and {summary.checkpoints} checkpoints verify\n"
        f"root {summary.root_hash.hex()} signed by {summary.verifier}",
        highlight=False,
    )


def _verify(bundle_dir: Path, key: str | None) -> bundle.Summary:
    if key is None:
        verifier = bundle.bundled_verifier(bundle_dir)
        err_console.print(
            f"[yellow]note:[/yellow] using the bundle's own key {verifier}; pass --key with "
            "the key you got from the bureau to know who signed",
            highlight=False,
            soft_wrap=True,
        )
    else:
        path = Path(key)
        verifier = Verifier.parse(path.read_text() if path.is_file() else key)
    with _progress() as progress:
        bar = _Bar(progress, "verifying")
        bar.start(bundle.bundle_size(bundle_dir))
        return bundle.verify(bundle_dir, verifier, bar.advance)


@audit.group()
def proof() -> None:
    """RFC 9162 proofs from the gateway's stored tree, as JSON (hashes base64)."""


@proof.command("inclusion")
@click.argument("index", type=int)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Tree size to prove inclusion in (default: the newest checkpoint's).",
)
@one_line_errors
def proof_inclusion(index: int, size: int | None) -> None:
    """Prove that entry INDEX (e.g. a receipt's audit_index) is in the tree of --size
    entries. Prints the entry's canonical bytes, its leaf hash, the audit path and, when
    a checkpoint has that size, its signed note."""
    service = _service(current_settings())
    if size is None:
        size = service.checkpoint().size
    entry, hashes = service.inclusion_proof(index, size)
    with service.store.transaction() as session:
        signed = session.get(AuditCheckpoint, size)
        note = signed.note if signed else None
    document = {
        "leaf_index": index,
        "tree_size": size,
        "entry": _b64(entry),
        "leaf_hash": _b64(audit_log.leaf_hash(entry)),
        "hashes": [_b64(h) for h in hashes],
        "checkpoint": note,
    }
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@proof.command("consistency")
@click.argument("old", type=int)
@click.argument("new", type=int)
@one_line_errors
def proof_consistency(old: int, new: int) -> None:
    """Prove that the tree of OLD entries is a prefix of the tree of NEW entries."""
    hashes = _service(current_settings()).consistency_proof(old, new)
    document = {
        "first_tree_size": old,
        "second_tree_size": new,
        "hashes": [_b64(h) for h in hashes],
    }
    click.echo(json.dumps(document, indent=2))


def _when(step: Step | None) -> str:
    return f"{step.time:%Y-%m-%d %H:%M:%S} (#{step.index})" if step else "-"


@audit.command()
@click.argument("subject", metavar="ID-OR-PSEUDONYM")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@one_line_errors
def subject(subject: str, as_json: bool) -> None:
    """Who received the data of the person with this resident ID number (or a pseudonym
    a recipient knows them by): each recipient of each message naming them, when it was
    routed, published, delivered and acknowledged (with audit indexes), and under which
    route and purpose. The look-up itself is written to the audit log."""
    accesses = _service(current_settings()).subject_access_log(subject, "operator")
    if as_json:
        for access in accesses:
            steps = {
                name: {"index": step.index, "time": step.time.isoformat()}
                for name, step in access.steps.items()
            }
            document = {**vars(access), "steps": steps}
            click.echo(json.dumps(document, ensure_ascii=False))
        return
    table = Table("routed", "sender", "kind", "mid", "recipient", "route", "purpose", "view")
    table.add_column("delivered")
    table.add_column("acknowledged")
    for access in accesses:
        table.add_row(
            _when(access.steps.get(events.ROUTED) or access.steps.get(events.PUBLISHED)),
            access.sender,
            access.kind,
            access.mid,
            access.recipient,
            access.route_id,
            access.purpose,
            access.view,
            _when(access.steps.get(events.DELIVERED)),
            _when(access.steps.get(events.ACKNOWLEDGED)),
        )
    console.print(table)
    err_console.print(f"{len(accesses)} receipts of this person's data")


@audit.command("checkpoint")
@one_line_errors
def checkpoint_now() -> None:
    """Sign a checkpoint of the log as it is now (a running gateway also makes them every
    checkpoint_every_entries entries or checkpoint_interval_seconds) and print it."""
    from gateway import bootstrap

    settings = current_settings()
    made = checkpoints.make_checkpoint(
        bootstrap.open_store(settings), checkpoints.audit_signer(settings)
    )
    click.echo(made.note, nl=False)


@audit.command()
@one_line_errors
def key() -> None:
    """Print the verifier key of the audit log (name+key ID+key, the C2SP signed-note
    form). Give it to auditors out of band; they verify checkpoints with it."""
    click.echo(str(checkpoints.audit_signer(current_settings()).verifier))
