"""The ``casegraph`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from app import __version__
from app.errors import ConfigurationError
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, data_dir=args.data_dir, log_level=args.log_level
        )
        if args.command == "serve":
            return serve(settings)
    except ConfigurationError as exc:
        print(f"casegraph: {exc.message}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    raise SystemExit(main())
