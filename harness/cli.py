"""The ``xmbench`` command line. Heavy libraries (torch, timm, transformers) are imported only inside commands, so
``xmbench --help`` answers at once.

Every user error prints one line ``xmbench: error: ...`` and exits with code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from harness import __version__
from harness.errors import UserError


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a sub-command's --debug must not reset a --debug given before the sub-command.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="xmbench",
        description="Check cross-modal BERT claims against fair baselines: declarative suites, one training recipe "
        "for every pairing, official metrics, reports.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"xmbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="train and evaluate every (task, model, seed) of a suite")
    run.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    run.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<suite name>)")
    run.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="where relative dataset paths resolve (default: $XMBENCH_DATA, else the current directory)",
    )
    run.set_defaults(func=cmd_run)

    val = sub.add_parser("validate", parents=[common], help="check a suite without running it")
    val.add_argument("suite", type=Path)
    val.add_argument("--data-root", type=Path, default=None)
    val.set_defaults(func=cmd_validate)

    rep = sub.add_parser("report", parents=[common], help="rebuild the report of a suite from its run folders")
    rep.add_argument("suite", type=Path)
    rep.add_argument("--out", type=Path, default=None, help="the suite's output folder (default: reports/<suite>)")
    rep.set_defaults(func=cmd_report)

    lst = sub.add_parser("list", parents=[common], help="list registered model types, task types or dataset kinds")
    lst.add_argument("what", choices=["models", "tasks", "datasets"])
    lst.set_defaults(func=cmd_list)

    data = sub.add_parser("data", parents=[common], help="dataset utilities")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    synth = dsub.add_parser("synth", parents=[common], help="write the synthetic dataset (COCO/Karpathy/VQA formats)")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--images", type=int, default=1000, help="number of images (default 1000)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    synth.set_defaults(func=cmd_data_synth)
    data.set_defaults(func=lambda args: _missing_action(data))
    return parser


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, log_path=False)


def _data_root(arg: Path | None) -> Path:
    from harness.data.sources import resolve_data_root

    return resolve_data_root(arg)


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.suite import load_suite
    from harness.suite.check import check_suite

    suite = load_suite(args.suite)
    models = check_suite(suite, args.suite, _data_root(args.data_root))
    runs = sum(len(t.models) for t in suite.tasks.values()) * len(suite.seeds)
    print(
        f"{args.suite}: OK — suite {suite.name!r}: {len(suite.tasks)} task(s), {len(models)} model(s), "
        f"{len(suite.seeds)} seed(s) -> {runs} run(s)"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import failures_message, run_suite
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    out = args.out or Path("reports") / (suite.name or args.suite.stem)
    console = _console()
    outcome = run_suite(suite, args.suite, out, _data_root(args.data_root), console)
    ok = len(outcome.records) - len(outcome.failed)
    console.log(f"{ok}/{len(outcome.records)} runs finished ({outcome.reused} reused) in {outcome.seconds:.0f}s")
    print(f"report: {out / 'report.html'} (also report.md, results.csv, summary.json)")
    if outcome.failed:
        raise UserError(failures_message(outcome))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_report
    from harness.results.aggregate import load_records
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    out = args.out or Path("reports") / (suite.name or args.suite.stem)
    if not (out / "runs").is_dir():
        raise UserError(f"{out}: no runs/ folder; run `xmbench run {args.suite}` first or pass --out")
    records = [r for r in load_records(out) if r.get("task") in suite.tasks]
    paths = write_report(suite, _latest(records), out)
    print(f"report: {paths['html']} ({len(records)} run records)")
    return 0


def _latest(records: list[dict]) -> list[dict]:
    """Keep one record per run_id (the finished one if any), for reports rebuilt from disk."""
    best: dict[str, dict] = {}
    for r in records:
        cur = best.get(r["run_id"])
        if cur is None or (cur.get("status") != "ok" and r.get("status") == "ok"):
            best[r["run_id"]] = r
    return list(best.values())


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "models":
        from harness.models import load_families

        reg = load_families()
        for name in reg:
            fam = reg.get(name)
            print(f"{name:10s} {fam.kind:12s} {(fam.description or '').strip().splitlines()[0]}")
    elif args.what == "tasks":
        from harness.tasks import MAIN_METRIC

        for name, metric in MAIN_METRIC.items():
            print(f"{name:15s} main metric: {metric}")
    else:
        from harness.data.sources import DEFAULT_SPLITS

        for kind, tasks in DEFAULT_SPLITS.items():
            print(f"{kind:12s} " + ", ".join(f"{t} ({a} -> {b})" for t, (a, b) in tasks.items()))
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from harness.data.synthetic import generate

    manifest = generate(args.out, images=args.images, seed=args.seed, size=args.size)
    counts = ", ".join(f"{k}={v}" for k, v in manifest.get("counts", {}).items())
    print(f"wrote synthetic dataset to {args.out} ({counts})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _quiet_libraries()
    args.debug = getattr(args, "debug", False)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"xmbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("xmbench: interrupted; finished runs are kept and will be reused", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error
        if args.debug:
            raise
        print(
            f"xmbench: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
