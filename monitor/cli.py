"""home-monitor run | check-config | once JOB | alertmanager-config | test-notification"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence

from monitor import __version__
from monitor.config import JOB_NAMES, Config, ConfigError, load

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="home-monitor", description=(
        "Measures the internet connection (and more: one job per measurement, see "
        "check-config); serves the figures on /metrics for Prometheus."))
    parser.add_argument("--version", action="version", version=f"home-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = "YAML config (default: $HOMEMON_CONFIG, else ./home-monitor.yml, else defaults)"
    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", help=config_help)
    check = commands.add_parser("check-config", help="validate the config and exit")
    check.add_argument("--config", help=config_help)
    once = commands.add_parser("once", help="run one job once and print its result as JSON")
    once.add_argument("job", choices=JOB_NAMES)
    once.add_argument("--config", help=config_help)
    render = commands.add_parser(
        "alertmanager-config", help="render Alertmanager's config from the template and the "
        "secret files that exist (receivers without secrets are off)")
    render.add_argument("--template", default="/etc/alertmanager/alertmanager.yml")
    render.add_argument("--secrets", default="/run/secrets/homemon",
                        help="directory of secret files, one value per file")
    render.add_argument("--out", required=True, help="where to write the rendered config")
    render.add_argument("--mode", default="600", help="octal file mode of the output")
    render.add_argument("--owner", metavar="UID:GID", type=_owner,
                        help="hand the output to this user (Alertmanager's), so that with mode "
                        "600 only it can read the secrets (needs CAP_CHOWN)")
    render.add_argument("--reload", metavar="URL",
                        help="then ask the Alertmanager at URL to reload (if it is running)")
    render.add_argument("--secret-file", metavar="NAME=FILE", action="append", default=[],
                        type=_rename, help="read the template's secret NAME from FILE instead "
                        "(the central stack's own heartbeat URL)")
    test = commands.add_parser("test-notification", help="send a test alert through "
                               "Alertmanager to every configured phone receiver")
    test.add_argument("--alertmanager", default="http://alertmanager:9093",
                      help="Alertmanager's URL (default: the compose service)")
    return parser


def _load(path: str | None) -> Config | None:
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _owner(text: str) -> tuple[int, int]:
    uid, sep, gid = text.partition(":")
    if not (sep and uid.isdigit() and gid.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected UID:GID (numbers)")
    return int(uid), int(gid)


def _rename(text: str) -> tuple[str, str]:
    name, sep, file = text.partition("=")
    if not (sep and name and file):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=FILE")
    return name, file


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "alertmanager-config":
        from pathlib import Path

        from monitor import alertmanager_config

        return alertmanager_config.main(Path(args.template), Path(args.secrets), Path(args.out),
                                        int(args.mode, 8), args.reload, dict(args.secret_file),
                                        args.owner)
    if args.command == "test-notification":
        from monitor import testalert

        return testalert.main(args.alertmanager)
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    if args.command == "check-config":
        enabled = [name for name, job in config.job_configs().items() if job.enabled]
        print(f"{config.source}: ok (jobs enabled: {', '.join(enabled) or 'none'})")
        return 0
    from monitor import logs

    logs.setup(config.log.level, config.log.format)
    if args.command == "once":
        return _once(config, args.job)
    from monitor.daemon import Daemon

    try:
        daemon = Daemon(config)
    except ConfigError as exc:  # the web-config file changed since the config was checked
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"{config.source}: listen: cannot listen on {config.listen}: {exc.strerror}",
              file=sys.stderr)
        return EXIT_CONFIG
    return daemon.run_until_signalled()


def _once(config: Config, name: str) -> int:
    """Run one job in the foreground, enabled or not, with the same runner as the daemon."""
    from pathlib import Path

    from monitor.jobs.base import JobEnv, build_job
    from monitor.metrics import Metrics
    from monitor.runner import JobRunner

    job_config = config.job(name)
    job_config.enabled = True
    problems = job_config.validate()
    if problems:
        for key, message in problems:
            print(f"{config.source}: jobs.{name}.{key}: {message}", file=sys.stderr)
        return EXIT_CONFIG
    metrics = Metrics()
    env = JobEnv(config, metrics, Path(config.state_dir))
    env.state_dir.mkdir(parents=True, exist_ok=True)
    job = build_job(name, env)
    job.on_start()
    runner = JobRunner(job, metrics, interval=job_config.interval, timeout=job_config.timeout,
                       link_lock=threading.Lock(), shutdown=env.shutdown)
    try:
        outcome = runner.run_once()
    finally:
        job.close()
    print(json.dumps({"job": name, "result": outcome.result,
                      "duration_seconds": round(outcome.duration, 3),
                      "error": outcome.error, **outcome.summary}, indent=2, default=str))
    return 0 if outcome.result == "success" else 1
