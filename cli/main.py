"""``cdp``: imports, administration and the demo."""

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlmodel import Session

from core.settings import ROOT

if TYPE_CHECKING:
    from imports.models import ImportReport

app = typer.Typer(
    help="Open CDP: a customer data platform with a built-in shopping assistant.",
    no_args_is_help=True,
    add_completion=False,
)
import_app = typer.Typer(help="Import shop data from files.", no_args_is_help=True)
db_app = typer.Typer(help="The profile store.", no_args_is_help=True)
assistant_app = typer.Typer(help="The Rasa shopping assistant.", no_args_is_help=True)
index_app = typer.Typer(help="The recommender's product index.", no_args_is_help=True)
segments_app = typer.Typer(
    help="Buying stages, retention and segments.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
app.add_typer(db_app, name="db")
app.add_typer(assistant_app, name="assistant")
app.add_typer(index_app, name="index")
app.add_typer(segments_app, name="segments")
campaigns_app = typer.Typer(help="Marketers' campaign files.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")


@app.callback()
def _setup() -> None:
    from core.logging import configure_logging

    configure_logging("WARNING")


@db_app.command("init")
def db_init() -> None:
    """Create the tables that do not exist yet (safe to run again)."""
    from core import db

    db.create_tables()
    typer.echo(f"tables ready in {db.get_engine().url.render_as_string()}")


@import_app.command("catalog")
def import_catalog(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="export file")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="magento (product export with variants) or magento-simple "
            "(sample-data layout of simple products)",
        ),
    ] = "magento",
    brand: Annotated[
        str | None,
        typer.Option(
            help="brand of the products whose rows name none (brand, manufacturer "
            "or vendor), such as the shop's own label"
        ),
    ] = None,
) -> None:
    """Import a product catalog; importing the same file again changes nothing."""
    from catalog import service
    from core import db

    db.create_tables()
    with Session(db.get_engine()) as session:
        try:
            report = service.import_file(session, path, fmt=fmt, brand=brand)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--format") from None
    typer.echo(
        f"{path.name}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.rejected)} rejected"
    )
    for reason in report.rejected:
        typer.echo(f"  rejected {reason}", err=True)


@import_app.command("reviews")
def import_reviews(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="review export")
    ],
) -> None:
    """Review counts and average ratings per product (Magento's review export)."""
    from catalog import service
    from core import db

    db.create_tables()
    with Session(db.get_engine()) as session:
        try:
            report = service.import_reviews(session, path)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="PATH") from None
    typer.echo(
        f"{path.name}: {report.updated} products updated, {report.unchanged} "
        f"unchanged, {len(report.rejected)} rejected"
    )
    for reason in report.rejected[:SHOWN_REJECTIONS]:
        typer.echo(f"  rejected {reason}", err=True)


ImportFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="file to import")
]
MappingName = Annotated[
    str,
    typer.Option(
        "--mapping",
        "-m",
        help="a shipped mapping (imports/mappings/NAME.yml) or the path of a .yml",
    ),
]
SHOWN_REJECTIONS = 50


@import_app.command("orders")
def import_orders(path: ImportFile, mapping: MappingName) -> None:
    """Queue a webshop's orders as "Order Completed" events.

    Importing the same file again changes nothing."""
    _import_events("orders", path, mapping)


@import_app.command("contacts")
def import_contacts(path: ImportFile, mapping: MappingName) -> None:
    """Queue CRM contacts as identify messages that set traits on their profiles.

    Importing the same file again changes nothing."""
    _import_events("contacts", path, mapping)


@import_app.command("store-purchases")
def import_store_purchases(path: ImportFile, mapping: MappingName) -> None:
    """Queue purchases in physical stores as "Order Completed" events.

    They carry channel "store" and the store id; importing the same file again
    changes nothing."""
    _import_events("store-purchases", path, mapping)


def _import_events(kind: str, path: Path, mapping_name: str) -> None:
    import redis

    from core.errors import DomainError
    from core.redis import get_redis
    from core.settings import get_settings
    from imports import mapping, service

    try:
        loaded = mapping.load(mapping_name, kind=kind)
    except DomainError as exc:
        # One problem a line, unwrapped, so each names its line in the mapping.
        typer.echo(f"--mapping {mapping_name}:\n{exc.msg}", err=True)
        raise typer.Exit(2) from None
    stream = get_settings().tracking.stream
    try:
        client = get_redis()
        client.ping()  # before reading the file, not after
        with _progress_bar() as progress:
            report = service.import_file(
                client, stream, path, loaded, progress=progress
            )
    except RuntimeError as exc:  # no REDIS_URL
        typer.echo(
            f"{exc}; or upload the file to a running api: POST /v1/imports/{kind}",
            err=True,
        )
        raise typer.Exit(1) from None
    except (DomainError, redis.ConnectionError) as exc:
        typer.echo(f"{path.name}: {exc}", err=True)
        raise typer.Exit(1) from None
    _print_import_report(report, stream)


def _print_import_report(report: "ImportReport", stream: str) -> None:
    typer.echo(
        f"{report.file}: {report.rows:,} rows read, {report.queued:,} messages "
        f"queued on {stream}, {report.rejected:,} rows rejected "
        f"in {report.seconds:.1f}s"
    )
    for error in report.errors[:SHOWN_REJECTIONS]:
        typer.echo(f"  rejected {error}", err=True)
    if report.rejected > SHOWN_REJECTIONS:
        more = report.rejected - SHOWN_REJECTIONS
        typer.echo(f"  ... and {more:,} more rows rejected", err=True)


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A bar per phase of an import (reading, queueing) on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskID,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    tasks: dict[str, TaskID] = {}
    columns = (TextColumn("{task.description:<9}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as bar:

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        yield update


@index_app.command("build")
def index_build() -> None:
    """Embed the catalog (only products whose text changed) and build the index."""
    from api.main import build_recommender
    from core import db

    db.create_tables()
    started = time.perf_counter()
    recommender = build_recommender(progress=True)
    typer.echo(
        f"index ready: {len(recommender.index)} products "
        f"in {time.perf_counter() - started:.1f}s"
    )


@segments_app.command("refresh")
def segments_refresh() -> None:
    """Recompute every profile's stage and retention cell; run it daily, since time
    alone moves people (a one-time buyer becomes a sleeper)."""
    from core import db
    from segments import service

    db.create_tables()
    started = time.perf_counter()
    with Session(db.get_engine()) as session:
        changed = service.refresh_all(session)
    typer.echo(f"{changed} moves recorded in {time.perf_counter() - started:.1f}s")


@segments_app.command("predict")
def segments_predict(
    clv_days: Annotated[
        int, typer.Option(min=30, help="the lifetime value's horizon, in days")
    ] = 365,
) -> None:
    """Fit the purchase propensity and lifetime value models on the shop's order
    history, then store predictions and the best contact time for every profile;
    run it daily or weekly."""
    from core import db
    from segments import membership, predictions

    db.create_tables()
    started = time.perf_counter()
    with Session(db.get_engine()) as session:
        try:
            model = predictions.fit_store(session, clv_days=clv_days)
        except predictions.NotEnoughHistoryError as exc:
            typer.echo(f"no model fitted: {exc.msg}", err=True)
            raise typer.Exit(1) from None
        path = predictions.save(model)
        run = predictions.refresh_predictions(session, model=model)
        # New predictions move people in and out of segments that test them.
        if membership.tests_predictions():
            moves = membership.recompute_all(session)
            typer.echo(f"segments: {moves.entered} entries, {moves.exited} exits")
    typer.echo(f"fitted on {model.profiles} profiles with orders, saved to {path}")
    v = model.validation
    if "propensity_auc" in v:
        typer.echo(
            f"held-out check: propensity AUC {v['propensity_auc']:.3f} "
            f"(recency alone {v['recency_auc']:.3f})"
        )
    if "clv_mae" in v:
        typer.echo(
            f"held-out check: lifetime value MAE {v['clv_mae']:.2f} "
            f"(spend of the last {clv_days} days {v['last_period_mae']:.2f})"
        )
    typer.echo(
        f"{run.profiles} profiles: {run.scored} with predictions, "
        f"{run.with_contact_time} with a contact time, "
        f"in {time.perf_counter() - started:.1f}s"
    )


@segments_app.command("recompute")
def segments_recompute() -> None:
    """Test every profile against every segment again: after editing the segment
    file, or to repair. Events and time windows keep them current otherwise."""
    from core import db
    from segments import membership
    from segments.definitions import InvalidSegmentsError

    db.create_tables()
    started = time.perf_counter()
    with Session(db.get_engine()) as session:
        try:
            moves = membership.recompute_all(session)
        except InvalidSegmentsError as exc:
            typer.echo("\n".join(exc.problems), err=True)
            raise typer.Exit(1) from None
    typer.echo(
        f"{moves.entered} entries and {moves.exited} exits recorded "
        f"in {time.perf_counter() - started:.1f}s"
    )


@segments_app.command("check")
def segments_check(
    path: Annotated[
        Path | None, typer.Argument(help="default: the configured file")
    ] = None,
) -> None:
    """Check a segment file; every mistake is printed with its line."""
    from core.settings import get_settings
    from segments import definitions
    from segments.definitions import InvalidSegmentsError

    path = path or get_settings().segments.definitions_path
    try:
        parsed = definitions.parse(path.read_text(encoding="utf-8"), name=path.name)
    except OSError as exc:
        typer.echo(f"cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    except InvalidSegmentsError as exc:
        typer.echo("\n".join(exc.problems), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{path.name}: {len(parsed.segments)} segments, no mistakes")


@campaigns_app.command("validate")
def campaigns_validate(
    folder: Annotated[
        Path | None, typer.Argument(help="default: the configured folder")
    ] = None,
) -> None:
    """Check every campaign file; each mistake is printed with its file and line."""
    from campaigns.definitions import validate_folder
    from core.settings import get_settings

    folder = folder or get_settings().campaigns.folder
    if not folder.is_dir():
        typer.echo(f"{folder} is not a folder", err=True)
        raise typer.Exit(2)
    valid, problems = validate_folder(folder)
    if problems:
        typer.echo("\n".join(problems), err=True)
        raise typer.Exit(1)
    typer.echo(f"{folder.name}: {valid} campaigns, no mistakes")


@assistant_app.command("train")
def assistant_train(
    force: Annotated[bool, typer.Option(help="train even if nothing changed")] = False,
) -> None:
    """Train the Rasa model in Rasa's environment when its data changed."""
    from cli import assistant

    trained = assistant.train(force=force)
    typer.echo("model trained" if trained else "model is up to date, not retrained")


@assistant_app.command("vocabulary")
def assistant_vocabulary(
    out: Annotated[
        Path | None,
        typer.Option(help="where to write it [default: assistant/nlu/vocabulary.json]"),
    ] = None,
) -> None:
    """Write the NLU vocabulary (categories, colours, sizes, materials, genders,
    product names) from the catalog; the next `cdp assistant train` uses it."""
    from assistant.errors import EmptyCatalogError
    from assistant.nlu.catalog_terms import VOCABULARY_PATH
    from assistant.vocabulary import export_vocabulary
    from core import db

    path = out or VOCABULARY_PATH
    db.create_tables()
    with Session(db.get_engine()) as session:
        try:
            vocabulary = export_vocabulary(session, path)
        except EmptyCatalogError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    counts = ", ".join(
        f"{len(values)} {entity}" for entity, values in vocabulary["entities"].items()
    )
    typer.echo(f"{path}: {vocabulary['products']} products read; {counts}")


@app.command()
def health(url: str = "http://127.0.0.1:8000") -> None:
    """Print the health of every component of a running platform."""
    import httpx

    body = httpx.get(f"{url}/health", timeout=10).json()
    for name, component in body["components"].items():
        typer.echo(f"{name:10} {component['status']:5} {component['detail']}")
    raise typer.Exit(0 if body["status"] == "ok" else 1)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port of the api and demo shop")] = 8000,
) -> None:
    """Start everything on the demo catalog and keep running until Ctrl-C."""
    from catalog.demo import DEMO_BRAND, DEMO_CATALOG, DEMO_GEAR, DEMO_REVIEWS
    from cli.assistant import train
    from cli.stack import Ports, Stack, tail
    from core import db
    from core.settings import get_settings

    settings = get_settings()
    stack = Stack(
        ports=Ports(api=port), redis_url=settings.redis_url,
        mailbox=ROOT / "var" / "mail",
    )  # fmt: skip
    started = time.perf_counter()
    try:
        typer.echo(
            "1/5 redis: " + ("embedded" if settings.redis_url is None else "REDIS_URL")
        )
        stack.start_redis()
        typer.echo(f"2/5 catalog: importing {DEMO_CATALOG.relative_to(ROOT)}")
        import_catalog(DEMO_CATALOG, "magento", DEMO_BRAND)
        for path in DEMO_GEAR:
            import_catalog(path, "magento-simple", DEMO_BRAND)
        import_reviews(DEMO_REVIEWS)
        typer.echo("3/5 index: embedding the catalog")
        index_build()
        typer.echo("4/5 assistant: training the Rasa model if its data changed")
        train()
        typer.echo("5/5 starting api, worker, action server and Rasa")
        stack.start()
        stack.wait_healthy()
    except (Exception, KeyboardInterrupt):
        stack.stop()
        raise
    mail = f"  campaign mail  {stack.mailbox}/new\n" if stack.smtp_port else ""
    typer.echo(
        f"\nReady in {time.perf_counter() - started:.0f}s.\n"
        f"  demo shop      {stack.api_url}/shop\n"
        f"  api docs       {stack.api_url}/docs\n"
        f"  health         {stack.api_url}/health\n"
        f"  rasa           {stack.rasa_url}\n"
        f"  profile store  {db.get_engine().url.render_as_string()}\n"
        f"  logs           {stack.log_path('*')}\n{mail}"
        "Press Ctrl-C to stop."
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        while (exited := stack.first_exited()) is None:
            time.sleep(1)
        typer.echo(
            f"{exited} stopped unexpectedly:\n{tail(stack.log_path(exited))}", err=True
        )
    except KeyboardInterrupt:
        typer.echo("\nstopping...")
    finally:
        stack.stop()
        typer.echo("all processes stopped")
    logging.shutdown()


if __name__ == "__main__":
    app()
