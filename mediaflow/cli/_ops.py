"""Operator commands: ``dlq``, ``replay``, ``reprocess``, ``status``, ``diagnose``, ``reconcile``.

Argument parsing and printing only; the work is in :mod:`mediaflow.ops`.
Every command prints a table by default and one JSON document with ``--json``,
and exits non-zero when it failed or found something wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import UsageError
from mediaflow.events import utcnow
from mediaflow.kafka.clients import admin_client
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import diagnose, dlq, reconcile, replay, reprocess, status
from mediaflow.ops._output import CLEAR_HOME, Progress, cell, table, to_json
from mediaflow.ops._scan import throwaway_consumer

LIST_COLUMNS = (
    "id",
    "failed_at",
    "stage",
    "kind",
    "client",
    "instance",
    "type",
    "media_id",
    "message",
)
STATS_COLUMNS = ("kind", "stage", "count", "redriven", "first", "last", "example", "message")


def register(subparsers: Any) -> None:
    """Add the operator commands to the CLI."""
    _register_dlq(subparsers)
    _register_replay(subparsers)
    _register_status(subparsers)
    _register_diagnose(subparsers)
    _register_reprocess(subparsers)
    _register_reconcile(subparsers)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _time(text: str) -> Any:
    try:
        return dlq.parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ISO-8601 nor epoch ms") from exc


def _register_dlq(subparsers: Any) -> None:
    parser = subparsers.add_parser("dlq", help="inspect, summarise and redrive dead letters")
    sub = parser.add_subparsers(dest="action", required=True)
    filters = argparse.ArgumentParser(add_help=False)
    group = filters.add_argument_group("selection")
    group.add_argument(
        "--id",
        action="append",
        default=[],
        metavar="P:O",
        help="dead letter at partition:offset of the DLQ topic (repeatable)",
    )
    group.add_argument("--client", help="client id")
    group.add_argument("--instance", help="provider instance id")
    group.add_argument("--stage", help="stage that gave up (detector, downloader...)")
    group.add_argument("--kind", help="error kind (expired, mac_mismatch, undecodable...)")
    group.add_argument("--type", dest="media_type", help="media type (image, audio...)")
    group.add_argument("--since", type=_time, help="dead-lettered at or after (ISO or epoch ms)")
    group.add_argument("--until", type=_time, help="dead-lettered before (ISO or epoch ms)")
    _json_flag(filters)

    listing = sub.add_parser("list", parents=[filters], help="list dead letters, decoded")
    listing.add_argument(
        "--include-dismissed", action="store_true", help="also those dismissed with `dlq dismiss`"
    )
    listing.set_defaults(handler=dlq_list)
    show = sub.add_parser("show", parents=[filters], help="every detail of dead letters")
    show.add_argument("ids", nargs="*", metavar="P:O", help="partition:offset (same as --id)")
    show.set_defaults(handler=dlq_show)
    sub.add_parser("stats", parents=[filters], help="counts by error kind and stage").set_defaults(
        handler=dlq_stats
    )
    redrive = sub.add_parser(
        "redrive", parents=[filters], help="send dead letters back for another try"
    )
    redrive.add_argument("--all", action="store_true", help="select every dead letter (no filter)")
    redrive.add_argument(
        "--to-original",
        action="store_true",
        help="republish to the original topic instead of the first retry tier",
    )
    redrive.add_argument("--dry-run", action="store_true", help="show what would be sent")
    redrive.add_argument(
        "--rate", type=float, default=None, metavar="N", help="at most N records per second"
    )
    redrive.add_argument("--operator", default=None, help="who runs this (default: $USER)")
    redrive.add_argument(
        "--force",
        action="store_true",
        help="also redrive records that already came back after a redrive",
    )
    redrive.set_defaults(handler=dlq_redrive)
    dismiss = sub.add_parser(
        "dismiss", parents=[filters], help="mark dead letters as dismissed (not to be retried)"
    )
    dismiss.add_argument("--all", action="store_true", help="select every dead letter (no filter)")
    dismiss.add_argument("--reason", default=None, help="why (kept in the MediaDismissed event)")
    dismiss.add_argument("--operator", default=None, help="who decides (default: $USER)")
    dismiss.add_argument("--dry-run", action="store_true", help="show what would be dismissed")
    dismiss.set_defaults(handler=dlq_dismiss)


def _selection(args: argparse.Namespace) -> dlq.DlqFilter:
    ids = set(args.id) | set(getattr(args, "ids", []) or [])
    return dlq.DlqFilter(
        ids=frozenset(ids),
        client=args.client,
        instance=args.instance,
        stage=args.stage,
        kind=args.kind,
        media_type=args.media_type,
        since=args.since,
        until=args.until,
    )


def _read(settings: Settings, args: argparse.Namespace) -> list[dlq.DeadLetterView]:
    layout = load_layout(settings.kafka)
    views = dlq.read_dead_letters(
        settings, layout, AvroCodec(), progress=Progress("scanned dead letters")
    )
    selected = _selection(args)
    return [v for v in views if selected.matches(v)]


def dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    """List dead letters; those that came back after a redrive in a section of their own."""
    views = _read(settings, args)
    if not args.include_dismissed:
        hidden = dlq.dismissed_media(settings, (v.media_id or "" for v in views))
        views = [v for v in views if v.media_id not in hidden]
    fresh = [v.summary() for v in views if not v.redriven_before]
    looped = [v.summary() for v in views if v.redriven_before]
    if args.json:
        print(to_json({"dead_letters": fresh, "redriven_and_failed_again": looped}))
        return 0
    print(table(fresh, LIST_COLUMNS) if fresh else "no dead letters match")
    if looped:
        print(f"\nredriven before and failed again ({len(looped)}; redrive needs --force):")
        print(table(looped, LIST_COLUMNS))
    return 0


def dlq_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print every field of the selected dead letters; exit 1 when none match."""
    views = _read(settings, args)
    details = [v.detail() for v in views]
    if args.json:
        print(to_json(details))
    for detail in [] if args.json else details:
        print(f"── dead letter {detail['id']} ──")
        for key, value in detail.items():
            if isinstance(value, dict):
                nested = to_json(value).replace("\n", "\n    ")
                print(f"  {key}:\n    {nested}")
            else:
                print(f"  {key:18} {cell(value)}")
    return 0 if details else 1


def dlq_stats(args: argparse.Namespace, settings: Settings) -> int:
    """Print counts by error kind and stage."""
    rows = dlq.stats(_read(settings, args))
    text = table(rows, STATS_COLUMNS) if rows else "no dead letters"
    print(to_json(rows) if args.json else text)
    return 0


def dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    """Redrive the selection; exit 1 when something selected could not be sent."""
    selected = _selection(args)
    if selected == dlq.DlqFilter() and not args.all:
        raise UsageError("select dead letters with a filter (see --help), or pass --all")
    layout = load_layout(settings.kafka)
    views = _read(settings, args)
    operator = args.operator or os.environ.get("USER") or "unknown"
    plan = dlq.plan_redrive(
        views, layout, operator=operator, to_original=args.to_original, force=args.force
    )
    rows = [{**i.view.summary(), "to": i.topic} for i in plan.items]
    sent = 0
    if not args.dry_run:
        sent = dlq.execute_redrive(
            settings,
            layout,
            AvroCodec(),
            plan,
            rate=args.rate,
            progress=Progress("redriven", total=len(plan.items)),
        )
    refused = [v.summary() for v in plan.refused]
    if args.json:
        print(
            to_json(
                {
                    "redrive_id": plan.redrive_id,
                    "operator": operator,
                    "dry_run": args.dry_run,
                    "sent": sent,
                    "records": rows,
                    "refused": refused,
                }
            )
        )
    else:
        print(table(rows, ("id", "kind", "media_id", "to")) if rows else "nothing to redrive")
        if refused:
            print(
                f"\nnot redriven ({len(refused)}): came back after an earlier redrive "
                "(use --force) or name no original topic"
            )
            print(table(refused, ("id", "kind", "media_id", "message")))
        verb = "would send" if args.dry_run else "sent"
        print(f"\nredrive {plan.redrive_id} by {operator}: {verb} {len(rows)} record(s)")
    return 1 if refused and not plan.items else 0


def dlq_dismiss(args: argparse.Namespace, settings: Settings) -> int:
    """Write a ``MediaDismissed`` event per selected dead letter that names a media."""
    if _selection(args) == dlq.DlqFilter() and not args.all:
        raise UsageError("select dead letters with a filter (see --help), or pass --all")
    operator = args.operator or os.environ.get("USER") or "unknown"
    views = _read(settings, args)
    events = {}
    for view in views:
        event = dlq.dismissed_event(view, operator, args.reason)
        if event is not None:
            events.setdefault(event.media_id, event)
    written = (
        0
        if args.dry_run
        else dlq.execute_dismiss(
            settings, load_layout(settings.kafka), AvroCodec(), list(events.values())
        )
    )
    skipped = [v.id for v in views if not v.media_id]
    if args.json:
        print(
            to_json(
                {
                    "dismissed": sorted(events),
                    "dry_run": args.dry_run,
                    "written": written,
                    "without_media_id": skipped,
                }
            )
        )
    else:
        verb = "would dismiss" if args.dry_run else "dismissed"
        print(f"{verb} {len(events)} media by {operator}: {', '.join(sorted(events)) or '-'}")
        if skipped:
            print(f"not dismissable (no media id): {', '.join(skipped)}")
    return 0


def _register_replay(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="move a consumer group's offsets so a stage reprocesses records"
    )
    parser.add_argument("--group", required=True, help="consumer group id")
    parser.add_argument(
        "--topic", required=True, help="topic (full name, or logical name without the prefix)"
    )
    parser.add_argument("--partition", type=int, default=None, help="only this partition")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--from-timestamp",
        type=_time,
        metavar="TIME",
        help="first record at or after TIME (ISO-8601 or epoch ms)",
    )
    where.add_argument("--from-offset", type=int, metavar="N", help="offset N in each partition")
    where.add_argument("--to-earliest", action="store_true", help="the oldest retained record")
    parser.add_argument("--force", action="store_true", help="even if the group has active members")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    _json_flag(parser)
    parser.set_defaults(handler=replay_command)


def confirm(question: str, *, assume_yes: bool, stdin: Any = None) -> bool:
    """Ask ``question`` on stdin; without a terminal, only ``--yes`` says yes.

    Raises:
        UsageError: no terminal to ask and no ``--yes``.
    """
    if assume_yes:
        return True
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        raise UsageError("not a terminal: pass --yes to confirm (or --dry-run to look first)")
    print(f"{question} [y/N] ", end="", flush=True)
    return stdin.readline().strip().lower() in ("y", "yes")


def _topic_name(settings: Settings, name: str) -> str:
    prefix = settings.kafka.topic_prefix
    return name if not prefix or name.startswith(prefix) else settings.kafka.topic(name)


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the replay plan, confirm, and move the offsets."""
    target = replay.ReplayTarget(
        from_timestamp=args.from_timestamp,
        from_offset=args.from_offset,
        to_earliest=args.to_earliest,
    )
    topic = _topic_name(settings, args.topic)
    admin = admin_client(settings.kafka)
    members = replay.active_members(admin, args.group)
    plans = replay.compute_plan(settings.kafka, admin, args.group, topic, target, args.partition)
    rows = [p.row() for p in plans]
    total = sum(p.to_reprocess for p in plans)
    if not args.json:
        print(f"replay plan for group {args.group} on {topic}:")
        print(table(rows, ("partition", "current", "new", "low", "high", "to_reprocess")))
        print(f"{total} record(s) to reprocess")
    if members and not args.force:
        print(
            f"group {args.group} has {len(members)} active member(s): {', '.join(members)}; "
            "stop them first (or --force)",
            file=sys.stderr,
        )
        return 1
    moved = 0
    if not args.dry_run and confirm(f"move offsets of {args.group}?", assume_yes=args.yes):
        moved = replay.apply_plan(admin, args.group, plans)
        if not args.json:
            print(f"moved {moved} partition(s)")
    if args.json:
        print(
            to_json(
                {
                    "group": args.group,
                    "topic": topic,
                    "dry_run": args.dry_run,
                    "partitions": rows,
                    "to_reprocess": total,
                    "moved": moved,
                }
            )
        )
    return 0


def _register_status(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="lag, throughput, dead letters, in-flight age, reachability"
    )
    parser.add_argument("--watch", action="store_true", help="refresh in place like top (Ctrl-C)")
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between the two samples that give throughput (0: no throughput)",
    )
    _json_flag(parser)
    parser.set_defaults(handler=status_command)


GROUP_COLUMNS = ("group", "topic", "partition", "committed", "high", "lag", "rate")


def status_text(data: dict[str, Any]) -> str:
    """The status screen as text."""
    lines = [
        f"mediaflow status  {data['at']:%Y-%m-%d %H:%M:%S}Z  broker {data['broker']}  "
        f"s3 {data['s3']}"
    ]
    newest = data["newest_dead_letter"]
    tail = (
        f" (newest {newest['id']} {newest['stage']}/{newest['kind']}: {newest['message']})"
        if newest
        else ""
    )
    lines.append(f"dead letters: {data['dead_letters']}{tail}")
    projection = data["projection"]
    if "error" in projection:
        lines.append(f"projection: unavailable ({projection['error']})")
    else:
        age = projection["oldest_in_flight_age_s"]
        lines.append(
            f"projection: {projection['media']} media {projection['by_status']}; oldest in flight "
            f"{'-' if age is None else f'{age} s'}; {projection['events_not_applied']} event(s) "
            "not applied yet"
        )
    groups = data["groups"]
    lines += ["", table(groups, GROUP_COLUMNS) if groups else "no consumer group has committed yet"]
    return "\n".join(lines)


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the status once (or keep redrawing it); exit 1 when broker or S3 is unreachable."""
    from storage.s3 import s3_client

    layout = load_layout(settings.kafka)
    admin = admin_client(settings.kafka)
    s3 = s3_client(settings.s3)
    consumer = throwaway_consumer(settings.kafka)
    interval = max(args.interval, 1.0) if args.watch else args.interval
    try:
        previous: status.Sample | None = status.take_sample(admin, consumer, layout)
        while True:
            if interval > 0:
                time.sleep(interval)
                current = status.take_sample(admin, consumer, layout)
            else:
                current, previous = previous, None
            state = status.health(settings, layout, consumer, s3)
            data = status.render(status.lag_rows(current, previous), state)
            text = to_json(data) if args.json else status_text(data)
            print((CLEAR_HOME if args.watch else "") + text, flush=True)
            if not args.watch:
                return 0 if (state.broker, state.s3) == ("ok", "ok") else 1
            previous = current
    finally:
        consumer.close()


def _register_diagnose(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="check broker, topics, bucket, projection, tokens, webhook; hint per failure",
    )
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="per network check")
    _json_flag(parser)
    parser.set_defaults(handler=diagnose_command)


def diagnose_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the checklist; exit 1 if any check failed."""
    checks = diagnose.run_checks(settings, timeout=args.timeout)
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(to_json({"ok": not failed, "checks": checks}))
    else:
        for item in checks:
            print(item.line())
        print(f"\n{len(checks) - len(failed)}/{len(checks)} checks passed")
    return 1 if failed else 0


def _register_reprocess(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reprocess", help="re-emit download requests for media chosen from the projection"
    )
    parser.add_argument("--client", help="client id")
    parser.add_argument("--instance", help="provider instance id")
    parser.add_argument("--status", help="detected, retrying, stored, dead_lettered, ...")
    parser.add_argument("--type", dest="media_type", help="media type (image, audio...)")
    parser.add_argument("--since", type=_time, help="first seen at or after (ISO or epoch ms)")
    parser.add_argument("--until", type=_time, help="first seen before (ISO or epoch ms)")
    parser.add_argument("--media-id", action="append", default=[], help="this media (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many media")
    parser.add_argument("--dry-run", action="store_true", help="show what would be re-requested")
    _json_flag(parser)
    parser.set_defaults(handler=reprocess_command)


def request_again(
    settings: Settings, media_ids: list[str], *, dry_run: bool
) -> tuple[list[str], list[str]]:
    """The reprocess path: find each media's original request and publish it again.

    Returns:
        ``(re-requested, not found on the request topic)`` media ids.
    """
    layout = load_layout(settings.kafka)
    found = reprocess.find_requests(
        settings, layout, AvroCodec(), media_ids, progress=Progress("scanned requests")
    )
    if not dry_run:
        reprocess.reemit(settings, layout, found.values())
    return sorted(found), sorted(set(media_ids) - set(found))


def _ms(moment: Any) -> int | None:
    from mediaflow.kafka.headers import millis

    return None if moment is None else millis(moment)


def reprocess_command(args: argparse.Namespace, settings: Settings) -> int:
    """Re-request the selected media; exit 1 when some had no request left on the topic."""
    from storage.projection import MediaQuery, open_store

    media_ids = list(args.media_id)
    if not media_ids:
        query = MediaQuery(
            client_id=args.client,
            instance_id=args.instance,
            status=args.status,
            media_type=args.media_type,
            since_ms=_ms(args.since),
            until_ms=_ms(args.until),
            limit=200,
        )
        store = open_store(settings.projection_db_url)
        try:
            media_ids = [r.media_id for r in reprocess.select_media(store, query, limit=args.limit)]
        finally:
            store.close()
    sent, missing = request_again(settings, media_ids, dry_run=args.dry_run)
    if args.json:
        print(to_json({"dry_run": args.dry_run, "requested": sent, "not_found": missing}))
    else:
        verb = "would re-request" if args.dry_run else "re-requested"
        print(f"{verb} {len(sent)} media: {', '.join(sent) or '-'}")
        if missing:
            print(
                f"no download request left on the topic for {len(missing)} media "
                f"(retention passed?): {', '.join(missing)}"
            )
    return 1 if missing else 0


def _register_reconcile(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reconcile", help="find stored media missing from the bucket, and stuck media"
    )
    parser.add_argument(
        "--older-than",
        type=float,
        default=3600,
        metavar="S",
        help="non-terminal for longer than S seconds counts as stuck",
    )
    parser.add_argument("--fix", action="store_true", help="re-request the download of findings")
    _json_flag(parser)
    parser.set_defaults(handler=reconcile_command)


FINDING_COLUMNS = ("media_id", "problem", "status", "client_id", "detail")


def reconcile_command(args: argparse.Namespace, settings: Settings) -> int:
    """Report findings (and fix them); exit 1 when something is left unfixed."""
    from storage.projection import open_store
    from storage.s3 import s3_client

    store = open_store(settings.projection_db_url)
    try:
        rows = list(store.rows())
    finally:
        store.close()
    stored = [r for r in rows if r.status == "stored"]
    findings = reconcile.stored_problems(
        stored,
        s3_client(settings.s3),
        settings.s3.bucket,
        progress=Progress("checked objects", total=len(stored)),
    )
    findings += reconcile.stuck(rows, now_ms=_ms(utcnow()) or 0, older_than_s=args.older_than)
    fixed: list[str] = []
    missing: list[str] = []
    if args.fix and findings:
        fixed, missing = request_again(settings, [f.media_id for f in findings], dry_run=False)
    if args.json:
        print(
            to_json(
                {"checked": len(rows), "findings": findings, "fixed": fixed, "not_fixable": missing}
            )
        )
    else:
        print(table([_row(f) for f in findings], FINDING_COLUMNS) if findings else "no findings")
        print(
            f"\nchecked {len(rows)} media ({len(stored)} stored objects): "
            f"{len(findings)} finding(s)" + (f", {len(fixed)} re-requested" if args.fix else "")
        )
        if missing:
            print(f"no download request left for: {', '.join(missing)}")
    unfixed = len(findings) - len(fixed)
    return 1 if unfixed else 0


def _row(finding: reconcile.Finding) -> dict[str, Any]:
    return {k: getattr(finding, k) for k in FINDING_COLUMNS}
