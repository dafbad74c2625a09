"""``exchange audit …``: verify the hash-chained log, print the key that signs it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exchange.cli.common import console, existing_url, fail, make_settings, open_current

app = typer.Typer(help="The hash-chained audit log of exchanges.")


@app.command("verify")
def audit_verify(
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM public key to check checkpoints with (default: the local key)."),
    ] = None,
) -> None:
    """Check the audit log; exit 1 listing each kind of tampering found (first bad entry
    and why): edited, deleted, reordered, truncated or rewritten entries, forged appends,
    forged or deleted checkpoints, altered statistics, forged journal lines.

    Entries a killed broker had journaled but not yet committed are committed first.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from exchange.audit.keys import Verifier
    from exchange.audit.trust import Trust
    from exchange.audit.verify import verify
    from exchange.audit.writer import recover

    settings = make_settings(database_url=database_url)
    existing_url(settings)  # the wrong directory is said first, before any key is looked for
    try:
        trust = Trust.of(settings, create=False)
        verifier = Verifier.from_pem(public_key.read_bytes()) if public_key else trust.verifier
    except (OSError, ValueError, SQLAlchemyError) as exc:
        raise fail(f"the audit keys or mirror cannot be read: {exc}") from exc
    if verifier is None:
        trust.close()
        raise fail(
            f"no audit signing key at {trust.key_path}: signed checkpoints cannot be checked",
            "pass --public-key (exchange audit public-key on the exchange's host prints it)",
        )
    try:
        db = open_current(settings)
    except typer.Exit:
        trust.close()
        raise
    try:
        if trust.journal is not None and trust.signer is not None:
            recovery = recover(db, trust.journal, trust.signer)
            if recovery.replayed is None:
                typer.echo("note: a running exchange holds the audit journal; its newest")
                typer.echo("entries may still be on their way into the chain")
            elif recovery.replayed:
                typer.echo(f"recovered {recovery.replayed} journaled entries a stopped broker left")
        report = verify(db, verifier, trust.mirror, trust.journal)
    except (OSError, SQLAlchemyError) as exc:
        raise fail(f"the audit log cannot be read: {type(exc).__name__}: {exc}"[:500]) from exc
    finally:
        db.dispose()
        trust.close()
    signed = f"signed up to seq {report.signed_seq} ({report.checkpoints} checkpoints"
    signed += f", key {report.key_id})"
    if report.ok:
        typer.echo(
            f"ok: {report.entries} entries, chain intact up to seq {report.last_seq}, {signed}"
        )
        if report.unsigned_tail:
            typer.echo(f"note: {report.unsigned_tail} newest entries are not signed yet")
        return
    console.print(
        f"[bold red]audit log tampered[/]: entry {report.first_bad_seq} "
        f"({report.problem}): {report.message}"
    )
    for finding in report.findings[1:]:
        at = f"entry {finding.first_bad_seq}" if finding.first_bad_seq is not None else "—"
        console.print(f"  also: {at} ({finding.problem}): {finding.message}")
    console.print(f"[dim]{report.entries} entries read; {signed}[/]")
    raise typer.Exit(code=1)


@app.command("public-key")
def audit_public_key(
    database_url: Annotated[str | None, typer.Option(help="Database of the exchange.")] = None,
) -> None:
    """Print the public half of the audit signing key (PEM), for whoever checks the log."""
    from exchange.audit import keys
    from exchange.security import audit_key_path

    path = audit_key_path(make_settings(database_url=database_url))
    if not path.exists():
        raise fail(f"no audit signing key at {path}", "`exchange up` creates it on first start")
    try:
        verifier = keys.load(path).verifier
    except (OSError, ValueError) as exc:
        raise fail(f"{path}: {exc}") from exc
    typer.echo(verifier.pem(), nl=False)
    console.print(f"[dim]key id {verifier.key_id()} ({path})[/]")
