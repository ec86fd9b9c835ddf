"""The ``casegraph`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.errors import CaseGraphError
from app.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casegraph", description="Memory service for support bots.")
    parser.add_argument("--version", action="version", version=f"casegraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the GraphQL server (one process: Kùzu has one writer)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; CASEGRAPH_HOST)")
    serve.add_argument("--port", type=int, help="port (default 3300; CASEGRAPH_PORT)")
    serve.add_argument("--data-dir", help="data directory (default ./data; CASEGRAPH_DATA_DIR)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING... (CASEGRAPH_LOG_LEVEL)")

    # import/export open the data directory themselves: stop the server first (one writer).
    imp = sub.add_parser("import", help="import memories from a JSONL file (server stopped)")
    imp.add_argument("file", type=Path, help="JSONL, one memory per line")
    imp.add_argument("--on-error", choices=("abort", "skip"), default="abort",
                     help="abort: write nothing if any line is bad (default); skip: import the good lines")
    imp.add_argument("--agent", help="agentId for lines that do not name one")
    imp.add_argument("--batch-size", type=int, default=500, help="memories per transaction (default 500)")
    exp = sub.add_parser("export", help="export an agent's memories to JSONL (server stopped)")
    exp.add_argument("--agent", required=True, help="the agentId to export")
    exp.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
    for p in (imp, exp):
        p.add_argument("--data-dir", help="data directory (default ./data; CASEGRAPH_DATA_DIR)")
        p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on standard error (default: when it is a terminal)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=args.data_dir,
            log_level=getattr(args, "log_level", None),
        )
        if args.command == "serve":
            return serve(settings)
        if args.command == "import":
            return import_file(settings, args)
        if args.command == "export":
            return export_agent(settings, args)
    except CaseGraphError as exc:  # configuration, a locked data directory, a bad --agent ...
        print(f"casegraph: {exc.message}", file=sys.stderr)
        return 2
    return 1


def serve(settings: Settings) -> int:
    import uvicorn

    from app.logs import configure_logging
    from app.main import create_app

    settings.check_bind_allowed()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn logs through our handler (JSON lines)
        access_log=False,  # our middleware logs each request, with its request id
        timeout_graceful_shutdown=10,
    )
    return 0


def import_file(settings: Settings, args: argparse.Namespace) -> int:
    """``casegraph import``: exit 0 when every line was imported (or already present)."""
    from tqdm import tqdm

    from app.services import Services
    from app.transfer import ImportInterrupted, import_jsonl

    if not args.file.is_file():
        print(f"casegraph: no such file: {args.file}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    services = Services.open(settings)
    try:
        report = import_jsonl(
            services, args.file, on_error=args.on_error, batch_size=args.batch_size,
            default_agent=args.agent, progress=args.progress,
            on_bad_line=lambda bad: tqdm.write(str(bad), file=sys.stderr),
        )
    except ImportInterrupted as exc:
        print(f"casegraph: {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()
    rate = report.imported / report.seconds if report.seconds else 0.0
    if report.aborted:
        print(f"import aborted: {len(report.bad)} bad line(s) of {report.lines}; nothing was written "
              "(fix them, or use --on-error skip)", file=sys.stderr)
        return 1
    print(f"imported {report.imported} memories, {report.already_present} already present, "
          f"{len(report.bad)} bad line(s) skipped, in {report.seconds:.1f} s ({rate:.0f}/s)", file=sys.stderr)
    return 0 if report.ok else 1


def export_agent(settings: Settings, args: argparse.Namespace) -> int:
    """``casegraph export --agent X``: JSONL on standard output or ``--output``."""
    from app.graph import GraphStore
    from app.memory import check_agent_id
    from app.transfer import export_jsonl

    check_agent_id(args.agent)
    if not (settings.data_dir / "graph").exists():
        print(f"casegraph: no CaseGraph data in {settings.data_dir}", file=sys.stderr)
        return 2
    graph = GraphStore(settings.data_dir, buffer_pool_mb=settings.buffer_pool_mb)
    try:
        if args.output is None:
            count = export_jsonl(graph, args.agent, sys.stdout, progress=args.progress)
        else:
            with args.output.open("w", encoding="utf-8", newline="\n") as out:
                count = export_jsonl(graph, args.agent, out, progress=args.progress)
    finally:
        graph.close()
    print(f"exported {count} memories of {args.agent}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
