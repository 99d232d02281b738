"""The ``xmbench`` command line. Heavy libraries (torch, timm, transformers) are imported only inside commands, so
``xmbench --help`` answers at once.

Every user error prints one line ``xmbench: error: ...`` and exits with code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
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

    _score_parser(sub, common)

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


def _score_parser(sub, common: argparse.ArgumentParser) -> None:
    score = sub.add_parser("score", parents=[common], help="score prediction files in the official formats")
    ssub = score.add_subparsers(dest="score_command", metavar="METRIC")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    p = ssub.add_parser("vqa", parents=[common, out], help="official VQA accuracy of a results file")
    p.add_argument("--questions", type=Path, required=True, help="v2_OpenEnded_mscoco_*_questions.json")
    p.add_argument("--annotations", type=Path, required=True, help="v2_mscoco_*_annotations.json")
    p.add_argument("--results", type=Path, required=True, help='[{"question_id", "answer"}] (official format)')
    p.add_argument(
        "--mode",
        choices=["official", "legacy"],
        default="official",
        help="official GT-Vision-Lab evaluator (default) or the older LAVIS/ALBEF variant",
    )
    p.set_defaults(func=cmd_score, metric="vqa")

    p = ssub.add_parser("retrieval", parents=[common, out], help="image-text retrieval recall (ALBEF/LAVIS)")
    p.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help='LAVIS eval file [{"image", "caption": [..]}] or a Karpathy dataset_*.json (with --split)',
    )
    p.add_argument("--split", default=None, help="Karpathy split (e.g. test)")
    p.add_argument("--scores", type=Path, required=True, help="images x texts score matrix (.npy)")
    p.add_argument("--scores-t2i", type=Path, default=None, help="texts x images score matrix (.npy), optional")
    p.add_argument(
        "--ties",
        choices=["pessimistic", "optimistic"],
        default="pessimistic",
        help="rank of a ground truth tied with other candidates (default pessimistic; see docs/metrics.md)",
    )
    p.set_defaults(func=cmd_score, metric="retrieval")

    p = ssub.add_parser("multilabel", parents=[common, out], help="multi-label mAP against COCO instances")
    p.add_argument("--annotations", type=Path, required=True, help="instances_*.json")
    p.add_argument(
        "--scores",
        type=Path,
        required=True,
        help="images (ascending id) x categories (ascending id) score matrix (.npy)",
    )
    p.add_argument("--mode", choices=["nonint", "voc", "voc11", "asl"], default="nonint")
    p.set_defaults(func=cmd_score, metric="multilabel")

    p = ssub.add_parser("detection", parents=[common, out], help="COCO bbox mAP through pycocotools COCOeval")
    p.add_argument("--annotations", type=Path, required=True, help="instances_*.json")
    p.add_argument("--results", type=Path, required=True, help="official detection results JSON")
    p.add_argument(
        "--iscrowd-default",
        type=int,
        choices=[0, 1],
        default=None,
        help="value for annotations without 'iscrowd' (default: refuse such files)",
    )
    p.set_defaults(func=cmd_score, metric="detection")

    p = ssub.add_parser("classification", parents=[common, out], help="top-1/top-5 accuracy")
    p.add_argument("--scores", type=Path, required=True, help="N x C score matrix (.npy)")
    p.add_argument("--labels", type=Path, required=True, help="N integer labels (.npy)")
    p.add_argument("--topk", type=int, nargs="+", default=[1, 5])
    p.set_defaults(func=cmd_score, metric="classification")
    score.set_defaults(func=lambda args: _missing_action(score))


def cmd_score(args: argparse.Namespace) -> int:
    from harness import score

    if args.metric == "vqa":
        result = score.score_vqa(args.questions, args.annotations, args.results, args.mode)
    elif args.metric == "retrieval":
        result = score.score_retrieval(args.annotations, args.scores, args.scores_t2i, args.split, args.ties)
    elif args.metric == "multilabel":
        result = score.score_multilabel(args.annotations, args.scores, args.mode)
    elif args.metric == "detection":
        result = score.score_detection(args.annotations, args.results, args.iscrowd_default)
    else:
        result = score.score_classification(args.scores, args.labels, args.topk)
    if args.json:
        print(json.dumps(result))
    else:
        _print_scores(args.metric, result)
    return 0


def _print_scores(metric: str, result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    flat = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    table = Table(title=f"xmbench score {metric}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in flat.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    for key, value in result.items():
        if isinstance(value, dict) and value:
            sub = Table(title=key)
            sub.add_column("name")
            sub.add_column("value", justify="right")
            for name, v in value.items():
                sub.add_row(str(name), f"{v:.2f}" if isinstance(v, float) else str(v))
            console.print(sub)


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
