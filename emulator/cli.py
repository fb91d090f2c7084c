"""Command line: parse arguments into Settings and run. No logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from emulator.errors import ConfigError
from emulator.settings import OPTIONS, Settings, split_key_specs

# Seconds given to open requests on Ctrl-C / SIGTERM. aiohttp may spend it twice (waiting
# for handlers to end, then for the cancelled ones to unwind) before the app's cleanup,
# and the README promises a stop within two seconds. Upload bodies do not wait for it:
# they are cut as the stop begins (emulator/routes/uploads.py OpenBodies).
SHUTDOWN_TIMEOUT = 0.5


# What add_subparsers() gives (argparse names the class only privately).
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; with `command`, only that subcommand's flags are added: argparse
    spends about a millisecond per subcommand building them, at every start (issue 16)."""
    parser = argparse.ArgumentParser(
        prog="livepeer-emulator",
        description="A local emulator of the Livepeer Studio Assets API.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, add in COMMANDS.items():
        if command is None or command == name:
            add(commands, name)
    return parser


def _serve_parser(commands: Subcommands, name: str) -> None:
    serve = commands.add_parser(
        name,
        help="run the API server",
        description="Run the API server. Every flag can also be set with an env var "
        "LIVEPEER_EMULATOR_<FLAG> (e.g. LIVEPEER_EMULATOR_API_KEY=key1,key2).",
    )
    for option in OPTIONS:
        if not option.flag:
            continue
        flag = "--" + option.name.replace("_", "-")
        help_text = f"{option.help} [env {option.env_var}]"
        if option.name in ("api_key", "admin_key"):
            serve.add_argument(flag, action="append", default=None, help=help_text)
        else:
            serve.add_argument(flag, type=option.parse, default=None, help=help_text)


def _healthcheck_parser(commands: Subcommands, name: str) -> None:
    health = commands.add_parser(
        name,
        help="exit 0 if the server here is ready to serve, 1 if not (for HEALTHCHECK)",
        description="Ask the server on this machine for /_emulator/health. Host and port "
        "come from the same flags and LIVEPEER_EMULATOR_* env vars as `serve`; a server "
        "listening on 0.0.0.0 is asked on 127.0.0.1.",
    )
    health.add_argument("--host", default=None, help="[env LIVEPEER_EMULATOR_HOST]")
    health.add_argument("--port", type=int, default=None, help="[env LIVEPEER_EMULATOR_PORT]")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (3)")


def _transfer_parser(commands: Subcommands, name: str) -> None:
    verb, where = {
        "export": ("copy a stopped server's data dir into", "DIR: the export to make"),
        "import": ("copy an export into", "DIR: an export made by `export`"),
    }[name]
    transfer = commands.add_parser(
        name,
        help=f"{verb} DIR (database by SQLite's backup API, media, outputs)",
        description=f"{verb.capitalize()} DIR. Stop the server using the data dir first. "
        "Refuses a non-empty target unless --force.",
    )
    transfer.add_argument("dir", metavar="DIR", type=Path, help=where)
    transfer.add_argument(
        "--data-dir", type=Path, default=None, help="[env LIVEPEER_EMULATOR_DATA_DIR]"
    )
    transfer.add_argument(
        "--force", action="store_true", help="replace the emulator data already there"
    )


def _scenarios_parser(commands: Subcommands, name: str) -> None:
    scenario_cmd = commands.add_parser(name, help="check and list scenarios")
    scenario_cmds = scenario_cmd.add_subparsers(dest="scenarios_command", required=True)
    validate = scenario_cmds.add_parser(
        "validate",
        help="check scenario files; prints FILE:LINE: message per problem, exit 1 if any",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    scenario_cmds.add_parser("list", help="list the shipped scenarios with their descriptions")


def _webhooks_parser(commands: Subcommands, name: str) -> None:
    hooks = commands.add_parser(name, help="webhook tools for a running server")
    hook_cmds = hooks.add_subparsers(dest="webhooks_command", required=True)
    trigger = hook_cmds.add_parser(
        "trigger",
        help="send one asset or task event now to the webhooks that subscribe to it",
        description="Ask a running server to emit EVENT about an asset (task events: its "
        "upload task) to the webhooks of the API key that owns it; prints each answer.",
    )
    trigger.add_argument("event", metavar="EVENT", help="e.g. asset.ready, task.failed")
    trigger.add_argument("--asset", required=True, metavar="ID", help="the asset id")
    trigger.add_argument(
        "--api-key", default=None, help="the asset's API key [env LIVEPEER_EMULATOR_API_KEY]"
    )
    trigger.add_argument(
        "--url", default=None, help="server root (default: http://HOST:PORT from the env)"
    )
    trigger.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")


def _listen_parser(commands: Subcommands, name: str) -> None:
    listen = commands.add_parser(
        name,
        help="forward a running server's webhook events to a local URL, signed (like "
        "stripe listen)",
        description="Stream the webhook events of an API key's tenant from a running "
        "server and POST each one, signed with a secret printed at start, to --forward-to; "
        "prints one line per event. Registers no webhook. Reconnects if the server goes away.",
    )
    listen.add_argument("--forward-to", required=True, metavar="URL", help="where to POST")
    listen.add_argument(
        "--api-key", default=None, help="whose events [env LIVEPEER_EMULATOR_API_KEY]"
    )
    listen.add_argument(
        "--url", default=None, help="server root (default: http://HOST:PORT from the env)"
    )
    listen.add_argument(
        "--events", default=None, metavar="A,B", help="only these events (default: all)"
    )
    listen.add_argument(
        "--secret", default=None, help="sign with this secret (default: a new random one)"
    )


# Each subcommand and what adds its flags, in the order `--help` lists them.
COMMANDS: dict[str, Callable[[Subcommands, str], None]] = {
    "serve": _serve_parser,
    "healthcheck": _healthcheck_parser,
    "export": _transfer_parser,
    "import": _transfer_parser,
    "scenarios": _scenarios_parser,
    "webhooks": _webhooks_parser,
    "listen": _listen_parser,
}


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    # Only the subcommand being run is built (anything else, e.g. --help: all of them).
    command = next((a for a in given if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(given)
    if args.command == "serve":
        return serve(vars(args))
    if args.command == "scenarios":
        return scenarios_command(args.scenarios_command, getattr(args, "files", []))
    if args.command == "healthcheck":
        return healthcheck(args.host, args.port, args.timeout)
    if args.command == "webhooks":
        return webhooks_trigger(args)
    if args.command == "listen":
        return listen_command(args)
    if args.command in ("export", "import"):
        return transfer_command(args.command, args.dir, args.data_dir, args.force)
    return 2


def transfer_command(command: str, target: Path, data_dir: Path | None, force: bool) -> int:
    from emulator import transfer

    try:
        settings = Settings.load({"data_dir": data_dir})
        if command == "export":
            line = transfer.export_data(settings.data_dir, target, force=force)
        else:
            line = transfer.import_data(target, settings.data_dir, force=force)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"livepeer-emulator: cannot {command}: {exc}", file=sys.stderr)
        return 2
    print(f"livepeer-emulator: {line}")
    return 0


def webhooks_trigger(args: argparse.Namespace) -> int:
    from emulator.trigger import server_url, trigger

    try:
        settings = Settings.load({})
    except ValueError as exc:
        print(f"livepeer-emulator: {exc}", file=sys.stderr)
        return 2
    key = args.api_key or next(iter(settings.api_keys), None)
    if not key:
        print("livepeer-emulator: give the asset's API key with --api-key", file=sys.stderr)
        return 2
    ok, lines = trigger(args.url or server_url(settings), key, args.event, args.asset, args.timeout)
    print("\n".join(lines))
    return 0 if ok else 1


def listen_command(args: argparse.Namespace) -> int:
    from emulator.listen import Options, listen, parse_events
    from emulator.trigger import server_url

    try:
        settings = Settings.load({})
    except ValueError as exc:
        print(f"livepeer-emulator: {exc}", file=sys.stderr)
        return 2
    options = Options(
        server=args.url or server_url(settings),
        forward_to=args.forward_to,
        # Without a key (a server with none configured) the stream has every tenant's.
        api_key=args.api_key or next(iter(settings.api_keys), None),
        events=parse_events(args.events),
        secret=args.secret or "",
    )

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await listen(options, lambda line: print(line, flush=True), stop)

    return asyncio.run(run())


def healthcheck(host: str | None, port: int | None, timeout: float) -> int:
    from emulator.healthcheck import check

    try:
        settings = Settings.load({"host": host, "port": port})
    except ValueError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    healthy, why = check(settings, timeout)
    print(f"{'healthy' if healthy else 'unhealthy'}: {why}")
    return 0 if healthy else 1


def scenarios_command(command: str, files: list[str]) -> int:
    from emulator import scenarios

    if command == "list":
        shipped = scenarios.listing()
        width = max((len(name) for name, _ in shipped), default=0)
        for name, description in shipped:
            print(f"{name:<{width}}  {description}")
        return 0
    lines, ok = scenarios.validate_files(files)
    print("\n".join(lines))
    return 0 if ok else 1


def serve(flags: dict[str, Any]) -> int:
    # Start-up (importing aiohttp and the emulator, building the app, opening the store)
    # makes only objects that live as long as the server: the collector, run every few
    # hundred allocations, would walk them dozens of times for nothing (about 15 ms of a
    # 270 ms start). It comes back, with those objects frozen out of its way, once the
    # server listens (_run).
    gc.disable()
    try:
        return _serve(flags)
    finally:
        gc.enable()


def _serve(flags: dict[str, Any]) -> int:
    for name in ("api_key", "admin_key"):
        if flags.get(name):
            try:
                flags[name] = tuple(spec for item in flags[name] for spec in split_key_specs(item))
            except ValueError as exc:
                flag = "--" + name.replace("_", "-")
                print(f"livepeer-emulator: cannot start: {flag}: {exc}", file=sys.stderr)
                return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.load(flags)
    except (ConfigError, ValueError) as exc:
        print(f"livepeer-emulator: cannot start: {exc}", file=sys.stderr)
        return 2
    # The database is created and migrated in a thread while the server's code loads.
    from emulator.store.schema import start_preparing

    preparing = start_preparing(settings.database_path)
    from emulator.middleware import QuietProtocolErrors

    logging.getLogger("aiohttp.server").addFilter(QuietProtocolErrors())
    try:
        from emulator.app import create_app

        app = create_app(settings)
    except (ConfigError, ValueError) as exc:
        print(f"livepeer-emulator: cannot start: {exc}", file=sys.stderr)
        return 2
    finally:
        preparing.join()
    try:
        asyncio.run(_run(app, settings))
    except (ConfigError, OSError) as exc:  # the database opens, and the port binds, in _run
        print(f"livepeer-emulator: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


async def _run(app: Any, settings: Settings) -> None:
    from aiohttp import web

    from emulator.healthcheck import listens_everywhere, local_root
    from emulator.routes.common import RULES

    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        # Host "" binds both wildcards (with --port 0, on two different ports): show the
        # IPv4 one, as 127.0.0.1 is what people expect.
        ipv4 = [a for a in runner.addresses if a[0] == "0.0.0.0"]
        host, port = (ipv4 or runner.addresses)[0][:2]
        where = " (listening on all interfaces)" if listens_everywhere(host) else ""
        if settings.public_url:
            where += f" · public URL {settings.public_url}"
        tenancy = (
            f"{len(settings.api_keys)} API key(s) accepted"
            if settings.api_keys
            else "no API keys configured: every bearer token is its own tenant"
        )
        if settings.admin_keys:
            tenancy += f", {len(settings.admin_keys)} admin key(s)"
        print(
            f"livepeer-emulator: API at {local_root(host, port)}/api{where} · data dir "
            f"{settings.data_dir} · {tenancy} · clock {settings.clock} · "
            f"scenario {app[RULES].default.name}",
            flush=True,
        )
        # Everything built at start (modules, routes, the app) lives as long as the server:
        # moved out of the collector's reach, a full collection walks only what requests
        # leave behind. Without this, each one (about once a second under load) stopped
        # the loop for 30-45 ms and made the p99 of reads 8x a bare app's (bench/README.md).
        # No gc.collect() first: it would hold the first answer back by ~12 ms to free the
        # ~2,000 unreachable objects start-up leaves (about 0.35 MB: attrs' class builders
        # from aiohttp's imports, argparse's formatters), which stay frozen instead.
        gc.freeze()
        gc.enable()  # off since serve() began
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
