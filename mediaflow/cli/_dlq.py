"""``mediaflow dlq``: list, show, stats, redrive and dismiss dead letters."""

import argparse
import os
from typing import Any

from mediaflow.cli._args import json_flag, positive_int, time_arg
from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import UsageError
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import dismiss, dlq, redrive
from mediaflow.ops._output import cell, table, to_json
from mediaflow.ops.letters import LetterState, letter_states
from mediaflow.progress import Progress

LIST_COLUMNS = (
    "id",
    "state",
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
    """Add the command to the CLI."""
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
    group.add_argument("--since", type=time_arg, help="dead-lettered at or after (ISO or epoch ms)")
    group.add_argument("--until", type=time_arg, help="dead-lettered before (ISO or epoch ms)")
    group.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in LetterState],
        help="what became of the letter (repeatable): open, redriven (since), stored (since), "
        "dismissed; list shows all but dismissed by default",
    )
    json_flag(filters)

    listing = sub.add_parser("list", parents=[filters], help="list dead letters, decoded")
    listing.add_argument(
        "--include-dismissed", action="store_true", help="also those dismissed with `dlq dismiss`"
    )
    listing.add_argument(
        "--limit", type=positive_int, metavar="N", help="only the N newest of the selection"
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


def _read(
    settings: Settings, args: argparse.Namespace, default_states: frozenset[str] | None = None
) -> list[tuple[dlq.DeadLetterView, LetterState]]:
    """The selected dead letters with their states (``--state``, else ``default_states``)."""
    layout = load_layout(settings.kafka)
    views = dlq.read_dead_letters(
        settings, layout, AvroCodec(), progress=Progress("scanned dead letters")
    )
    selected = _selection(args)
    views = [v for v in views if selected.matches(v)]
    states = letter_states(settings, views)
    wanted = frozenset(args.state) if args.state else default_states
    return [(v, states[v.id]) for v in views if wanted is None or states[v.id] in wanted]


def _views(settings: Settings, args: argparse.Namespace) -> list[dlq.DeadLetterView]:
    return [v for v, _state in _read(settings, args)]


def dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    """List dead letters with their states; those that came back after a redrive apart."""
    hidden = set() if args.include_dismissed else {LetterState.DISMISSED.value}
    selected = _read(settings, args, frozenset(s.value for s in LetterState) - hidden)
    total = len(selected)
    if args.limit:
        newest = sorted(selected, key=lambda s: s[0].when or dlq.EPOCH, reverse=True)
        selected = sorted(newest[: args.limit], key=lambda s: (s[0].partition, s[0].offset))
    rows = [(v, {**v.summary(), "state": state.value}) for v, state in selected]
    fresh = [row for v, row in rows if not v.redriven_before]
    looped = [row for v, row in rows if v.redriven_before]
    if args.json:
        print(
            to_json({"dead_letters": fresh, "redriven_and_failed_again": looped, "matching": total})
        )
        return 0
    print(table(fresh, LIST_COLUMNS) if fresh else "no dead letters match")
    if looped:
        print(f"\nredriven before and failed again ({len(looped)}; redrive needs --force):")
        print(table(looped, LIST_COLUMNS))
    if len(rows) < total:
        print(f"\nshowing the {len(rows)} newest of {total} (--limit)")
    return 0


def dlq_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print every field of the selected dead letters; exit 1 when none match."""
    details = [{**v.detail(), "state": s.value} for v, s in _read(settings, args)]
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
    rows = dlq.stats(_views(settings, args))
    text = table(rows, STATS_COLUMNS) if rows else "no dead letters"
    print(to_json(rows) if args.json else text)
    return 0


def dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    """Redrive the selection; exit 1 when something selected could not be sent."""
    selected = _selection(args)
    if selected == dlq.DlqFilter() and not args.all:
        raise UsageError("select dead letters with a filter (see --help), or pass --all")
    layout = load_layout(settings.kafka)
    views = redrive.with_originals(settings, _views(settings, args))
    operator = args.operator or os.environ.get("USER") or "unknown"
    plan = redrive.plan_redrive(
        views, layout, operator=operator, to_original=args.to_original, force=args.force
    )
    rows = [{**i.view.summary(), "to": i.topic} for i in plan.items]
    sent = 0
    if not args.dry_run:
        sent = redrive.execute_redrive(
            settings,
            layout,
            AvroCodec(),
            plan,
            rate=args.rate,
            progress=Progress("redriven", total=len(plan.items)),
        )
    refused = [{**v.summary(), "why": redrive.why_refused(v)} for v in plan.refused]
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
            print(f"\nnot redriven ({len(refused)}):")
            for row in refused:
                print(f"  {row['id']}  {cell(row.get('media_id'))}: {row['why']}")
        verb = "would send" if args.dry_run else "sent"
        print(f"\nredrive {plan.redrive_id} by {operator}: {verb} {len(rows)} record(s)")
    return 1 if refused and not plan.items else 0


def dlq_dismiss(args: argparse.Namespace, settings: Settings) -> int:
    """Write a ``MediaDismissed`` event per selected dead letter that names a media."""
    if _selection(args) == dlq.DlqFilter() and not args.all:
        raise UsageError("select dead letters with a filter (see --help), or pass --all")
    operator = args.operator or os.environ.get("USER") or "unknown"
    views = _views(settings, args)
    events = {}
    for view in views:
        event = dismiss.dismissed_event(view, operator, args.reason)
        if event is not None:
            events.setdefault(event.media_id, event)
    written = (
        0
        if args.dry_run
        else dismiss.execute_dismiss(
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
