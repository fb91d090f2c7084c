"""Composition root: builds every part from Settings, installs middlewares and routes.

The one route table is ROUTES below. Each route is named after its handler, and the
API's handlers are named after Studio's operationIds (`requestUpload`, `getAsset`, ...),
so `app.router["getAsset"]` finds one; control routes are named `emulator.<handler>`,
and tus's `tus.<handler>`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from emulator import faults, middleware
from emulator.access import PlaybackAccess
from emulator.api_keys import ApiKeys
from emulator.assets import Assets
from emulator.blobs import Blobs
from emulator.clock import Clock, make_clock
from emulator.delivery import Deliveries
from emulator.errors import ConfigError
from emulator.exports import Exports
from emulator.journal import Journal
from emulator.live_events import LiveEvents
from emulator.media import HOW_TO_FIX, Encoder, Prober, find_tools
from emulator.outputs import OutputFiles
from emulator.processing import ImportLimits, Processing
from emulator.reserve import DiskReserve
from emulator.routes import (
    access_control,
    api_keys,
    assets,
    control,
    dashboard,
    inventory,
    ipfs,
    playback,
    tasks,
    tus,
    uploads,
    webhooks,
)
from emulator.routes import events as event_stream
from emulator.routes import scenario as scenario_control
from emulator.routes.common import (
    ASSETS,
    PROCESSING,
    RULES,
    SCHEDULER,
    SETTINGS,
    TENANCY,
    UPLOADS,
)
from emulator.routes.journal import JOURNAL, clear_requests, get_request, get_requests
from emulator.rulebook import Rulebook
from emulator.scenarios import DEFAULT_SCENARIO, Scenario
from emulator.scenarios import load as load_scenario
from emulator.scheduler import Scheduler
from emulator.settings import Settings
from emulator.signing_keys import SigningKeys
from emulator.store import Store
from emulator.tenancy import Tenancy
from emulator.tokens import UploadTokens
from emulator.tus import TusUploads
from emulator.uploads import Uploads
from emulator.webhooks import Webhooks

if TYPE_CHECKING:
    from emulator.seeding import Seed

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/api/asset/request-upload", assets.request_upload),
    ("POST", "/api/asset/upload/url", assets.upload_asset),
    # Named by the public docs' overview page; Studio itself only has /upload/url. Its
    # answers carry an emulator-only header (assets.mark_docs_alias).
    ("POST", assets.DOCS_ALIAS, assets.upload_asset),
    ("PUT", "/api/asset/upload/direct", uploads.upload_direct),
    ("OPTIONS", "/api/asset/upload/tus", tus.options),
    ("POST", "/api/asset/upload/tus", tus.create),
    ("OPTIONS", "/api/asset/upload/tus/{upload_id:.+}", tus.options),
    ("HEAD", "/api/asset/upload/tus/{upload_id:.+}", tus.head),
    ("PATCH", "/api/asset/upload/tus/{upload_id:.+}", tus.patch),
    ("DELETE", "/api/asset/upload/tus/{upload_id:.+}", tus.terminate),
    ("GET", "/api/asset", assets.get_assets),
    ("GET", "/api/asset/{assetId}", assets.get_asset),
    ("PATCH", "/api/asset/{assetId}", assets.update_asset),
    ("DELETE", "/api/asset/{assetId}", assets.delete_asset),
    ("POST", "/api/asset/{assetId}/restore", assets.restore_asset),
    ("GET", "/api/task", tasks.get_tasks),
    ("GET", "/api/task/{taskId}", tasks.get_task),
    ("GET", "/api/playback/{id}", playback.get_playback_info),
    ("GET", "/hls/{playbackId}/{path:.+}", playback.get_output),
    ("GET", "/asset/{playbackId}/video", playback.get_media),
    ("GET", "/asset/{playbackId}/video/download.{ext}", playback.get_media),
    ("GET", "/ipfs/{cid}", ipfs.get_ipfs),
    ("GET", "/_emulator/health", control.health),
    ("POST", "/_emulator/reset", control.reset),
    ("GET", "/_emulator/clock", control.get_clock),
    ("POST", "/_emulator/clock/advance", control.advance_clock),
    ("POST", "/api/webhook", webhooks.create_webhook),
    ("GET", "/api/webhook", webhooks.get_webhooks),
    ("GET", "/api/webhook/{id}", webhooks.get_webhook),
    ("PUT", "/api/webhook/{id}", webhooks.update_webhook),
    ("PATCH", "/api/webhook/{id}", webhooks.patch_webhook),
    ("DELETE", "/api/webhook/{id}", webhooks.delete_webhook),
    ("GET", "/api/webhook/{id}/log", webhooks.get_webhook_logs),
    ("GET", "/api/webhook/{id}/log/{logId}", webhooks.get_webhook_log),
    ("POST", "/api/webhook/{id}/log/{logId}/resend", webhooks.resend_webhook),
    ("GET", "/_emulator/webhooks/deliveries", webhooks.get_deliveries),
    ("GET", "/_emulator/webhooks/deliveries/{id}", webhooks.get_delivery),
    ("POST", "/_emulator/webhooks/trigger", webhooks.trigger),
    ("GET", "/_emulator/events/stream", event_stream.stream_events),
    ("POST", "/api/access-control/signing-key", access_control.create_signing_key),
    ("GET", "/api/access-control/signing-key", access_control.get_signing_keys),
    ("GET", "/api/access-control/signing-key/{keyId}", access_control.get_signing_key),
    ("PATCH", "/api/access-control/signing-key/{keyId}", access_control.update_signing_key),
    ("DELETE", "/api/access-control/signing-key/{keyId}", access_control.delete_signing_key),
    # Studio's api-token routes refuse API keys; the emulator makes keys here instead:
    ("GET", "/api/api-token", api_keys.api_token),
    ("POST", "/api/api-token", api_keys.api_token),
    ("GET", "/api/api-token/{id}", api_keys.api_token),
    ("DELETE", "/api/api-token/{id}", api_keys.api_token),
    ("POST", "/_emulator/api-keys", api_keys.create_api_key),
    ("GET", "/_emulator/api-keys", api_keys.get_api_keys),
    ("GET", "/_emulator/api-keys/{id}", api_keys.get_api_key),
    ("DELETE", "/_emulator/api-keys/{id}", api_keys.delete_api_key),
    ("GET", "/_emulator/requests", get_requests),
    ("GET", "/_emulator/requests/{id}", get_request),
    ("DELETE", "/_emulator/requests", clear_requests),
    ("GET", "/_emulator/scenario", scenario_control.get_scenario),
    ("PUT", "/_emulator/scenario", scenario_control.put_scenario),
    ("DELETE", "/_emulator/scenario", scenario_control.delete_scenario),
    # The dashboard (a static page) and the read-only lists it needs beside the rest.
    ("GET", "/", dashboard.dashboard_page),
    ("GET", "/dashboard/{name}", dashboard.dashboard_file),
    ("GET", "/_emulator/tenants", inventory.get_tenants),
    ("GET", "/_emulator/scenarios", inventory.get_scenarios),
)


def route_name(path: str, handler: Handler) -> str:
    """camelCase of the handler's name (Studio's operationId); `emulator.` for control
    routes and `tus.` for the tus protocol's, which Studio's schema leaves out."""
    first, *rest = handler.__name__.split("_")
    name = first + "".join(word.title() for word in rest)
    if path.startswith("/_emulator/"):
        return f"emulator.{name}"
    return f"tus.{name}" if path.startswith("/api/asset/upload/tus") else name


def setup_routes(app: web.Application) -> None:
    named: set[str] = set()
    for method, path, handler in ROUTES:
        name: str | None = route_name(path, handler)
        if name in named:
            name = None  # an alias path: the first route keeps the name
        else:
            named.add(str(name))
        # Express routes tolerate a trailing slash; so do these.
        _add_route(app, method, path, handler, name)
        if path != "/":
            _add_route(app, method, path + "/", handler, None)


def _add_route(
    app: web.Application, method: str, path: str, handler: Handler, name: str | None
) -> None:
    if method == "GET":
        # Express answers HEAD on every GET route (the GET's status and headers, no
        # body), API and media files alike; allow_head puts it on the GET's resource.
        app.router.add_get(path, handler, name=name, allow_head=True)
    else:
        app.router.add_route(method, path, handler, name=name)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    prober: Prober | None = None,
    encoder: Encoder | None = None,
    scenario: Scenario | None = None,
) -> web.Application:
    """The whole emulator as an aiohttp app. Raises ConfigError if it could not serve."""
    tools = find_tools(settings.ffprobe, settings.ffmpeg)
    if prober is None:
        prober = Prober(tools.ffprobe, timeout=settings.probe_timeout)
    if tools.ffmpeg is None and settings.outputs != "none":
        where = (
            f"{settings.ffmpeg!r} is not an executable file"
            if settings.ffmpeg
            else ("ffmpeg was not found")
        )
        raise ConfigError(
            f"{where} (it makes the playable outputs; --outputs none needs no ffmpeg): "
            + HOW_TO_FIX.format(VAR="FFMPEG", flag="ffmpeg")
        )
    if encoder is None and tools.ffmpeg:
        encoder = Encoder(tools.ffmpeg, timeout=settings.encode_timeout)
    if scenario is None:
        scenario = load_scenario(settings.scenario) if settings.scenario else DEFAULT_SCENARIO
    # A bad seed file stops the start here, before the port is taken (SeedError).
    seed: Seed | None = None
    if settings.seed:
        # Imported only with --seed: seeding and the PyYAML it reads with cost start time.
        from emulator import seeding

        seed = seeding.load(settings.seed)
        seeding.check_keys(seed, settings.configured_keys)
    the_clock = clock or make_clock(settings.clock)
    keys = ApiKeys.from_settings(settings)
    journal = Journal(settings.journal_size, the_clock.now_ms)
    # A JSON body is capped at 100 kB by read_body; media streams are not capped here.
    app = web.Application(
        client_max_size=1024**4,
        middlewares=[
            middleware.cors,
            # Outside errors: it records the status the client actually got. Off the path
            # of every request when it keeps nothing (journal size 0).
            *([middleware.journal(journal)] if journal.size else []),
            middleware.errors,
            middleware.authentication(keys, locked=settings.control_locked),
            faults.inject,  # inside authentication: a rule may match the tenant
        ],
    )
    app[SETTINGS] = settings
    app[api_keys.API_KEYS] = keys
    app[JOURNAL] = journal
    app[uploads.OPEN_BODIES] = uploads.OpenBodies()
    app.on_shutdown.append(uploads.cut_open_bodies)
    live_events = LiveEvents()  # fed by Deliveries' fan-out, read by the event streams
    app[event_stream.LIVE_EVENTS] = live_events
    app[event_stream.OPEN_STREAMS] = event_stream.OpenStreams()
    app.on_shutdown.append(event_stream.close_streams)
    setup_routes(app)
    app.on_response_prepare.append(assets.mark_docs_alias)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        reserve = DiskReserve(settings.data_dir / "reserve")
        blobs = Blobs(settings.data_dir, reserve)
        blobs.prepare()
        outputs = OutputFiles(
            settings.data_dir,
            prober=prober,
            encoder=encoder,
            cache_bytes=settings.outputs_cache_bytes,
        )
        outputs.prepare()
        store = await Store.open(settings.database_path, reserve)
        reserve.ensure()  # best effort: on a full disk, uploads say so until there is room
        secret = await store.get_meta("upload_token_secret")
        if secret is None:
            secret = secrets.token_hex(32)
            await store.set_meta("upload_token_secret", secret)
        tokens = UploadTokens(bytes.fromhex(secret))
        rules = Rulebook(scenario)  # the scenario in force per tenant, and its faults
        scheduler = Scheduler(the_clock, store)
        deliveries = Deliveries(
            store, scheduler, faults=rules.webhook_faults, fanned_out=live_events.publish
        )
        exports = Exports(
            store=store, blobs=blobs, scheduler=scheduler, rules=rules, events=deliveries
        )
        processing = Processing(
            store=store,
            blobs=blobs,
            outputs=outputs,
            outputs_mode=settings.outputs,
            scheduler=scheduler,
            rules=rules,
            events=deliveries,
            import_limits=ImportLimits(settings.import_max_bytes, settings.import_timeout),
            exports=exports,
        )
        upload_paths = Uploads(
            store=store, blobs=blobs, scheduler=scheduler, tokens=tokens, processing=processing
        )
        tus_uploads = TusUploads(
            uploads=upload_paths, store=store, blobs=blobs, scheduler=scheduler
        )
        # The one registry of timed work, in the order each pass runs it.
        scheduler.register(processing)
        scheduler.register(exports)
        scheduler.register(deliveries)
        scheduler.register(tus_uploads)
        app[RULES] = rules
        app[SCHEDULER] = scheduler
        app[PROCESSING] = processing
        app[UPLOADS] = upload_paths
        app[tus.TUS] = tus_uploads
        app[ASSETS] = Assets(
            store=store,
            blobs=blobs,
            scheduler=scheduler,
            tokens=tokens,
            events=deliveries,
            processing=processing,
            exports=exports,
        )
        app[ipfs.EXPORTS] = exports
        app[webhooks.WEBHOOKS] = Webhooks(store, scheduler, deliveries)
        signing_keys = SigningKeys(store, scheduler)
        access = PlaybackAccess(store=store, scheduler=scheduler, signing_keys=signing_keys)
        app[access_control.SIGNING_KEYS] = signing_keys
        app[access_control.ACCESS] = access
        app[TENANCY] = Tenancy(
            store=store,
            blobs=blobs,
            scheduler=scheduler,
            rules=rules,
            processing=processing,
            tus=tus_uploads,
            deliveries=deliveries,
            signing_keys=signing_keys,
            access=access,
            api_keys=keys,
            live_events=live_events,
        )
        await keys.start(store, scheduler)
        await access.start()
        await deliveries.start()
        await tus_uploads.start()
        await processing.start()
        if seed is not None:
            from emulator.seeding import Seeder  # loaded already, above (with --seed)

            # Before the scheduler's loop: the seeder applies its assets' steps itself.
            seeder = Seeder(
                store=store,
                api_keys=keys,
                signing_keys=signing_keys,
                assets=app[ASSETS],
                uploads=upload_paths,
                processing=processing,
                webhooks=app[webhooks.WEBHOOKS],
                origin=settings.public_url or f"http://{settings.host}:{settings.port}",
            )
            try:
                await seeder.apply(seed)
            except BaseException:
                # Nothing yielded yet, so the cleanup below will not run: close here, or
                # the store's worker thread keeps a refused start's process alive.
                await processing.stop()
                await deliveries.stop()
                await access.stop()
                await store.close()
                raise
        await scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()
            await processing.stop()
            await deliveries.stop()
            await access.stop()
            await store.close()

    app.cleanup_ctx.append(lifecycle)
    return app
