"""`lrlab` server commands: the composition root that wires settings, store and API."""

from __future__ import annotations

import sys
from typing import Any

import click

from services.settings import Settings


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@click.group()
@click.version_option(package_name="lrlab-server")
def main() -> None:
    """lrlab: learning-rate experiments that run on Ray and explain themselves."""


@main.command()
@click.option("--host", help="Interface to bind (LRLAB_API_HOST).")
@click.option("--port", type=int, help="Port (LRLAB_API_PORT).")
@click.option("--database-url", help="SQLAlchemy URL (LRLAB_DATABASE_URL); default: SQLite.")
@click.option("--data-dir", type=click.Path(), help="Data directory (LRLAB_DATA_DIR).")
@click.option("--ray-address", help="An existing Ray cluster (LRLAB_RAY_ADDRESS).")
@click.option("--num-cpus", type=float, help="CPUs for a local Ray (LRLAB_RAY_NUM_CPUS).")
@click.option(
    "--scheduler/--no-scheduler", default=None, help="Run trials here (default) or API only."
)
@click.option(
    "--analyzer/--no-analyzer",
    default=None,
    help="Analyse trials live and apply stop policies (default), or only on read.",
)
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    data_dir: str | None,
    ray_address: str | None,
    num_cpus: float | None,
    scheduler: bool | None,
    analyzer: bool | None,
) -> None:
    """Run the API server with an embedded store, creating a local admin token."""
    from api.app import create_app
    from api.loops import start_loops
    from api.serving import serve as serve_app
    from services.bootstrap import ensure_local_admin
    from services.store import open_store

    settings = _settings(
        api_host=host,
        api_port=port,
        database_url=database_url,
        data_dir=data_dir,
        ray_address=ray_address,
        ray_num_cpus=num_cpus,
        run_scheduler=scheduler,
        run_analyzer=analyzer,
    )
    store = open_store(settings.resolved_database_url)
    ensure_local_admin(store, settings)
    loops = start_loops(store, settings)
    click.echo(f"lrlab serving http://{settings.api_host}:{settings.api_port}", err=True)
    click.echo(f"admin token in {settings.admin_token_file.resolve()}", err=True)
    try:
        serve_app(  # uvicorn, ending live streams when it stops
            create_app(settings, store, wake=loops.wake),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
        )
    finally:
        loops.stop()
        store.close()


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--database-url", help="SQLAlchemy URL (LRLAB_DATABASE_URL); default: SQLite.")
def db_upgrade(database_url: str | None) -> None:
    """Bring the schema to the latest migration."""
    from services.store.migrate import heads, upgrade_to_head

    url = _settings(database_url=database_url).resolved_database_url
    upgrade_to_head(url)
    click.echo(f"database at head {', '.join(heads())}")


if __name__ == "__main__":
    sys.exit(main())
