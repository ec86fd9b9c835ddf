"""The ``casegraph`` command line.

    casegraph serve                          run the server
    casegraph keys create|list|revoke        manage scoped API keys (works while serving)
    casegraph backup --to DIR                snapshot a running server over HTTP (admin key)
    casegraph restore --from DIR             put a backup back (server stopped)

Only ``serve`` loads the models; the other commands start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.errors import CaseGraphError, ConfigurationError
from app.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casegraph", description="Memory service for support bots.")
    parser.add_argument("--version", action="version", version=f"casegraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the GraphQL server (one process: Kùzu has one writer)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; CASEGRAPH_HOST)")
    serve.add_argument("--port", type=int, help="port (default 3300; CASEGRAPH_PORT)")
    _data_dir(serve)
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING... (CASEGRAPH_LOG_LEVEL)")

    keys = sub.add_parser("keys", help="manage API keys (stored hashed in <data-dir>/keys.json)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (once)")
    _data_dir(create)
    create.add_argument("--role", choices=("read", "write", "admin"), required=True)
    create.add_argument("--agent", action="append", default=[], metavar="AGENT_ID",
                        help="an agent id the key may use (repeat for several)")
    create.add_argument("--all-agents", action="store_true", help="the key may use every agent id")
    create.add_argument("--name", default="", help="a label, e.g. the bot or person it is for")
    lst = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    _data_dir(lst)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id; takes effect at once")
    _data_dir(revoke)
    revoke.add_argument("key_id")

    backup = sub.add_parser("backup", help="snapshot a running server's data into a new directory")
    backup.add_argument("--to", required=True, type=Path, help="new or empty directory")
    backup.add_argument("--url", help="server URL (default http://CASEGRAPH_HOST:CASEGRAPH_PORT)")
    backup.add_argument("--api-key", help="an admin key over all agents (default: CASEGRAPH_API_KEY)")
    restore = sub.add_parser("restore", help="restore a backup into a data directory (server stopped)")
    restore.add_argument("--from", dest="source", required=True, type=Path, help="a backup directory")
    _data_dir(restore)
    restore.add_argument("--force", action="store_true", help="move existing data aside and restore")
    return parser


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data directory (default ./data; CASEGRAPH_DATA_DIR)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            host=getattr(args, "host", None), port=getattr(args, "port", None),
            data_dir=getattr(args, "data_dir", None), log_level=getattr(args, "log_level", None),
        )
        if args.command == "serve":
            return serve(settings)
        if args.command == "keys":
            return keys(settings, args)
        if args.command == "backup":
            return backup(settings, args)
        if args.command == "restore":
            return restore(settings, args)
    except ConfigurationError as exc:
        print(f"casegraph: {exc.message}", file=sys.stderr)
        return 2
    except CaseGraphError as exc:
        print(f"casegraph: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    return 1


def serve(settings: Settings) -> int:
    import uvicorn

    from app.main import create_app

    settings.check_bind_allowed()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )
    return 0


def keys(settings: Settings, args: argparse.Namespace) -> int:
    from app.keys import ALL_AGENTS, KeyStore

    store = KeyStore(settings.keys_path)
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

    from app import backup as backups

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
    from app import backup as backups

    manifest = backups.restore(args.source, settings.data_dir, force=args.force)
    print(f"restored {manifest['memories']} memories (backup of {manifest['createdAt']}) into {settings.data_dir}; "
          "start the server to use them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
