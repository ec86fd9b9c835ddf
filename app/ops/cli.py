"""The ``casegraph`` command line.

    casegraph serve                          run the server
    casegraph import FILE / export --agent   JSONL in and out (embedded store: server stopped)
    casegraph keys create|list|revoke        manage scoped API keys (works while serving)
    casegraph backup --to DIR                snapshot a running server over HTTP (admin key)
    casegraph restore --from DIR             put a backup back (server stopped)
    casegraph export-model                   export the ONNX runtimes' models into the cache
    casegraph reembed [--runtime R]          re-embed every memory for another runtime (server stopped)

Only ``serve`` loads the models; the other commands start in a fraction of a second. With a
FalkorDB store (``--store``/``CASEGRAPH_STORE=falkordb://...``) import and export work while
servers run; backup and restore snapshot the store's namespace (restore: with its servers
stopped), and so does reembed. A refusal
prints ``casegraph: <message> (<CODE>)`` and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from casegraph import __version__
from casegraph.errors import CaseGraphError, ConfigurationError
from casegraph.ops.settings import EMBEDDING_RUNTIMES, Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casegraph", description="Memory service for support bots.")
    parser.add_argument("--version", action="version", version=f"casegraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the GraphQL server (one process: Kùzu has one writer)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; CASEGRAPH_HOST)")
    serve.add_argument("--port", type=int, help="port (default 3300; CASEGRAPH_PORT)")
    _data_dir(serve)
    _store(serve)
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING... (CASEGRAPH_LOG_LEVEL)")

    keys = sub.add_parser("keys", help="manage API keys (stored hashed in <data-dir>/keys.json, or in the "
                          "FalkorDB server a --store names)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (once)")
    _data_dir(create)
    _store(create)
    create.add_argument("--role", choices=("read", "write", "admin"), required=True)
    create.add_argument("--agent", action="append", default=[], metavar="AGENT_ID",
                        help="an agent id the key may use (repeat for several)")
    create.add_argument("--all-agents", action="store_true", help="the key may use every agent id")
    create.add_argument("--name", default="", help="a label, e.g. the bot or person it is for")
    lst = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    _data_dir(lst)
    _store(lst)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id; takes effect at once")
    _data_dir(revoke)
    _store(revoke)
    revoke.add_argument("key_id")

    backup = sub.add_parser("backup", help="snapshot a running server's data into a new directory")
    backup.add_argument("--to", required=True, type=Path, help="new or empty directory")
    backup.add_argument("--url", help="server URL (default http://CASEGRAPH_HOST:CASEGRAPH_PORT)")
    backup.add_argument("--api-key", help="an admin key over all agents (default: CASEGRAPH_API_KEY)")
    restore = sub.add_parser("restore", help="restore a backup into a data directory (server stopped)")
    restore.add_argument("--from", dest="source", required=True, type=Path, help="a backup directory")
    _data_dir(restore)
    _store(restore)
    restore.add_argument("--force", action="store_true", help="move existing data aside and restore")
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
    export_model = sub.add_parser(
        "export-model", help="export the embedding model for the ONNX runtimes (else done at first start)"
    )
    export_model.add_argument("--cache-dir", type=Path,
                              help="default ~/.cache/casegraph/models; CASEGRAPH_MODEL_CACHE_DIR")
    reembed = sub.add_parser("reembed", help="re-embed every memory with the configured model and runtime "
                             "(server stopped; resumes after an interruption)")
    _data_dir(reembed)
    _store(reembed)
    reembed.add_argument("--runtime", choices=EMBEDDING_RUNTIMES,
                         help="the runtime to convert to (default CASEGRAPH_EMBEDDING_RUNTIME)")
    reembed.add_argument("--batch-size", type=int, default=256, help="memories per transaction (default 256)")
    reembed.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="progress bar on standard error (default: when it is a terminal)")
    for p in (imp, exp):
        p.add_argument("--data-dir", help="data directory (default ./data; CASEGRAPH_DATA_DIR)")
        _store(p)
        p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on standard error (default: when it is a terminal)")
    return parser


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default ./data; CASEGRAPH_DATA_DIR)")


def _store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        help="embedded (default: Kùzu in the data directory) or falkordb://HOST:PORT[/NAMESPACE], a "
        "FalkorDB server any number of processes share (CASEGRAPH_STORE)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=getattr(args, "data_dir", None),
            store=getattr(args, "store", None),
            log_level=getattr(args, "log_level", None),
            embedding_runtime=getattr(args, "runtime", None),
            model_cache_dir=getattr(args, "cache_dir", None),
        )
        if args.command == "serve":
            return serve(settings)
        if args.command == "import":
            return import_file(settings, args)
        if args.command == "export":
            return export_agent(settings, args)
        if args.command == "keys":
            return keys(settings, args)
        if args.command == "backup":
            return backup(settings, args)
        if args.command == "restore":
            return restore(settings, args)
        if args.command == "export-model":
            return export_model(settings)
        if args.command == "reembed":
            return reembed(settings, args)
    except CaseGraphError as exc:  # configuration, a locked data directory, a bad --agent ...
        print(f"casegraph: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    return 1


def serve(settings: Settings) -> int:
    import uvicorn
    from casegraph.api.app import create_app
    from casegraph.ops.logs import configure_logging

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


def keys(settings: Settings, args: argparse.Namespace) -> int:
    from casegraph.ops.keys import ALL_AGENTS, open_key_store

    store = open_key_store(settings)
    if args.keys_command == "create":
        if args.all_agents == bool(args.agent):
            raise ConfigurationError("give --agent AGENT_ID (one or more) or --all-agents")
        record, key = store.create(args.name, args.role, [ALL_AGENTS] if args.all_agents else args.agent)
        print(key)
        print(f"created key {record.id} ({record.role} on {', '.join(record.agents)}); "
              "it is shown only now: store it safely", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        rows = sorted(store.records().values(), key=lambda r: r.created_at)
        print(f"{'ID':<14}{'ROLE':<7}{'STATUS':<9}{'CREATED':<27}{'NAME':<20}AGENTS")
        for r in rows:
            status = "active" if r.active else "revoked"
            print(f"{r.id:<14}{r.role:<7}{status:<9}{r.created_at:<27}{r.name[:19]:<20}{','.join(r.agents)}")
        return 0
    record = store.revoke(args.key_id)
    print(f"revoked key {record.id} ({record.name}) at {record.revoked_at}")
    return 0


def backup(settings: Settings, args: argparse.Namespace) -> int:
    import httpx
    from casegraph.ops import backup as backups

    url = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/")
    key = args.api_key or os.environ.get("CASEGRAPH_API_KEY") or ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.stream("POST", f"{url}/admin/backup", headers=headers, timeout=None) as response:
            if response.status_code != 200:
                response.read()
                try:
                    body = response.json()
                except ValueError:
                    body = {"error": response.text[:200], "code": str(response.status_code)}
                print(f"casegraph: backup refused: {body.get('error')} ({body.get('code')})", file=sys.stderr)
                return 1
            manifest = backups.receive(response.iter_bytes(), args.to)
    except httpx.HTTPError as exc:
        print(f"casegraph: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    print(f"backup written to {args.to}: {manifest['memories']} memories of {len(manifest['agents'])} agents, "
          f"schema {manifest['schemaVersion']}")
    return 0


def restore(settings: Settings, args: argparse.Namespace) -> int:
    from casegraph.ops import backup as backups

    manifest = backups.restore(args.source, settings.data_dir, force=args.force, store=settings.store)
    target = settings.data_dir if manifest.get("store", "embedded") == "embedded" else settings.store
    print(f"restored {manifest['memories']} memories (backup of {manifest['createdAt']}) into {target}; "
          "start the server to use them")
def export_model(settings: Settings) -> int:
    """``casegraph export-model``: the ONNX exports, made and checked now, not at first start."""
    from casegraph.embedding.embedder import open_embedder

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    for runtime in ("onnx", "onnx-int8"):
        embedder = open_embedder(settings.embedding_model, runtime, settings.model_cache_path)
        print(f"{runtime}: {embedder.folder}")  # type: ignore[attr-defined]
    return 0


def reembed(settings: Settings, args: argparse.Namespace) -> int:
    """``casegraph reembed``: every memory embedded again with the configured runtime."""
    from casegraph.embedding.embedder import open_embedder
    from casegraph.ops.reembed import reembed as run_reembed
    from casegraph.storage.backend import is_embedded

    if args.batch_size < 1:
        raise ConfigurationError("--batch-size must be at least 1", code="INVALID_BATCH_SIZE")
    if is_embedded(settings.store) and not (settings.data_dir / "graph").exists():
        print(f"casegraph: no CaseGraph data in {settings.data_dir}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    embedder = open_embedder(settings.embedding_model, settings.embedding_runtime, settings.model_cache_path)
    report = run_reembed(settings, embedder, batch_size=args.batch_size, progress=args.progress)
    if not report.converted:
        where = settings.data_dir if is_embedded(settings.store) else settings.store
        print(f"nothing to re-embed: the vectors in {where} already are {report.target.describe()}",
              file=sys.stderr)
        return 0
    print(f"re-embedded {report.memories} memories ({report.resumed_at} by an earlier run) as "
          f"{report.target.describe()} in {report.seconds:.1f} s; serve with "
          f"CASEGRAPH_EMBEDDING_RUNTIME={report.target.runtime}", file=sys.stderr)
    return 0


def import_file(settings: Settings, args: argparse.Namespace) -> int:
    """``casegraph import``: exit 0 when every line was imported (or already present)."""
    from casegraph.ops.transfer import ImportInterrupted, import_jsonl
    from casegraph.services import Services
    from tqdm import tqdm

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
    from casegraph.domain.validation import check_agent_id
    from casegraph.ops.transfer import export_jsonl, open_for_export

    check_agent_id(args.agent)
    graph = open_for_export(settings)
    if graph is None:
        print(f"casegraph: no CaseGraph data in {settings.data_dir}", file=sys.stderr)
        return 2
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
