"""``shardflow tasks serve``: the approvals inbox in the browser (the optional ``shardflow[web]``).

The web package is imported only when the command runs, so ``shardflow`` works without the
extra and says how to install it; ``web`` (L7) sits below ``cli`` (L8) and never imports it.
"""

from __future__ import annotations

import getpass
import importlib.util
import secrets
import sys
from pathlib import Path
from typing import Any

import click

from shardflow.cli.conventions import logging_options, sub_option
from shardflow.run.rundir import latest_run_dirs

INSTALL_HINT = "pip install 'shardflow[web]'"
WEB_MODULES = ("litestar", "uvicorn")


def _web() -> tuple[Any, Any]:
    """``shardflow.web.app`` and ``shardflow.web.server``, or exit 2 naming the extra."""
    missing = [name for name in WEB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        click.echo(f"shardflow: error: 'tasks serve' needs {' and '.join(missing)}, which come "
                   f"with the web extra: {INSTALL_HINT}", err=True)
        sys.exit(2)
    from shardflow.web import app, server

    return app, server


@click.command("serve")
@click.argument("run_dirs", nargs=-1)
@sub_option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@sub_option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@sub_option("--user", default=None, help="Recorded as completed_by (default: your login name).")
@sub_option("--assignee-only", is_flag=True, help="Only tasks assigned to --user.")
@sub_option("--auto-resume", is_flag=True,
              help="Resume a run as soon as an instance has all its tasks done, or a parked "
                   "timer of it is due.")
@sub_option("--no-token", is_flag=True, help="No access token (loopback hosts only).")
@logging_options
def serve(run_dirs: tuple[str, ...], host: str, port: int, user: str | None,
          assignee_only: bool, auto_resume: bool, no_token: bool) -> None:
    """Serve the human tasks of RUN_DIRs (default: every run with tasks here) in the browser."""
    app, server = _web()
    if not app.is_loopback(host):
        if no_token:
            raise click.UsageError(f"--no-token is only allowed on a loopback host, not {host!r}")
        click.echo(f"shardflow: warning: listening on {host}, beyond this machine; anyone who "
                   "can reach it and has the token can complete tasks (plain HTTP)", err=True)
    paths = [Path(d) for d in run_dirs] or [p for p in latest_run_dirs()
                                             if (p / "tasks.db").exists()]
    config = app.ServeConfig(
        run_dirs=tuple(paths), user=user or getpass.getuser(),
        token=None if no_token else secrets.token_urlsafe(24), host=host, port=port,
        assignee_only=assignee_only, auto_resume=auto_resume)
    server.serve(config, announce=lambda line: click.echo(line, err=True))
