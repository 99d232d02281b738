"""The ``xmbench`` command line. Heavy libraries (torch, timm, transformers) are imported only inside commands, so
``xmbench --help`` answers at once.

Every user error prints one line ``xmbench: error: ...`` and exits with code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path

from harness import __version__
from harness.errors import UserError, describe, is_out_of_memory, one_line, os_error_message


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes get the same one line as every other error (argparse prints usage, then the error)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"xmbench: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _path(text: str) -> Path:
    """A path argument: an empty one (an unset shell variable, ``--out "$OUT"``) is refused instead of meaning the
    current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; give a file or folder (an unset shell variable?)")
    return Path(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _device_type(text: str) -> str:
    if not re.fullmatch(r"(cpu|cuda|mps)(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a sub-command's --debug must not reset a --debug given before the sub-command.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="xmbench",
        description="Check cross-modal BERT claims against fair baselines: declarative suites, one training recipe "
        "for every pairing, official metrics, reports.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"xmbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = argparse.ArgumentParser(add_help=False)
    plugins.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, to register its model types (repeatable); a suite never imports code itself",
    )
    data_root = argparse.ArgumentParser(add_help=False)
    data_root.add_argument(
        "--data-root",
        type=_path,
        default=None,
        help="where relative dataset paths resolve (default: $XMBENCH_DATA, else the current directory)",
    )
    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument(
        "--profile",
        default=None,
        metavar="NAME",
        help="apply the suite's profile NAME (profiles: {NAME: {...}}), e.g. quick: synthetic data, tiny models",
    )
    profile.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one suite value after the profile (repeatable), e.g. --set train.lr=1e-4; the report lists it",
    )
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument(
        "--out", type=_path, default=None, help="the suite's output folder (default: reports/<suite name>)"
    )

    run = sub.add_parser(
        "run",
        parents=[common, plugins, data_root, profile, out],
        help="train and evaluate every (task, model, seed) of a suite",
    )
    run.add_argument("suite", type=_path, help="suite YAML file, e.g. suites/smoke.yaml")
    run.add_argument("--tasks", type=_names, default=None, metavar="A,B", help="run only these tasks")
    run.add_argument("--models", type=_names, default=None, metavar="X,Y", help="run only these models")
    run.add_argument("--seeds", type=_seeds, default=None, metavar="0,1", help="run only these seeds")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (each run, its fingerprint, whether it is done, claimed or to run, a time estimate) "
        "and train nothing",
    )
    run.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run only shard I of N (0-based): a deterministic, cost-balanced 1/N of the runs; the N shards may run "
        "concurrently, on any machines, into one --out folder (docs/scale-out.md)",
    )
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failed run (default: go on)")
    run.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard scalars (loss, lr, val metrics, throughput) to OUT/tensorboard/",
    )
    run.set_defaults(func=cmd_run)

    val = sub.add_parser(
        "validate",
        parents=[common, plugins, data_root, profile],
        help="check a suite (and build its models) without training; every profile when --profile is not given",
    )
    val.add_argument("suite", type=_path)
    val.set_defaults(func=cmd_validate)

    pln = sub.add_parser(
        "plan",
        parents=[common, plugins, data_root, profile, out],
        help="list a suite's runs, fingerprints and their state",
    )
    pln.add_argument("suite", type=_path)
    pln.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    pln.set_defaults(func=cmd_plan)

    rep = sub.add_parser(
        "report",
        parents=[common, plugins, data_root, profile, out],
        help="rebuild the report of a suite from its run folders (exactly the runs of its current plan)",
    )
    rep.add_argument("suite", type=_path)
    rep.add_argument(
        "--device",
        type=_device_type,
        default=None,
        help="the device type the runs were made on, when it is not this machine's (default: the one most runs match)",
    )
    rep.set_defaults(func=cmd_report)

    lst = sub.add_parser(
        "list", parents=[common, plugins], help="list registered model types, task types or dataset kinds"
    )
    lst.add_argument("what", choices=["models", "tasks", "datasets"])
    lst.set_defaults(func=cmd_list)

    _score_parser(sub, common)
    _gate_parser(sub, common)
    _leaderboard_parser(sub, common)

    data = sub.add_parser("data", parents=[common], help="dataset utilities")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    synth = dsub.add_parser("synth", parents=[common], help="write the synthetic dataset (COCO/Karpathy/VQA formats)")
    synth.add_argument("--out", type=_path, required=True, help="output folder")
    synth.add_argument("--images", type=int, default=1000, help="number of images (default 1000)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    synth.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    synth.add_argument(
        "--dicom",
        action="store_true",
        help="also write imagefolder_dicom/: the image folder as 16-bit DICOM files (needs xmbench[dicom])",
    )
    synth.set_defaults(func=cmd_data_synth)
    data.set_defaults(func=lambda args: _missing_action(data))
    return parser


def _gate_parser(sub, common: argparse.ArgumentParser) -> None:
    """``check``, ``baseline update`` and ``compare``: the CI gate (docs/ci.md)."""
    chk = sub.add_parser(
        "check",
        parents=[common],
        help="CI gate: exit 1 when a metric of RESULTS_DIR regressed against the baseline beyond its noise",
    )
    chk.add_argument("results", type=_path, metavar="RESULTS_DIR", help="the --out folder of `xmbench run`")
    chk.add_argument("--baseline", type=_path, required=True, metavar="FILE", help="baseline file (JSON)")
    chk.add_argument(
        "--false-alarm",
        type=_probability,
        default=None,
        metavar="RATE",
        help="false-alarm rate of the whole check (default: the baseline's, 0.01)",
    )
    chk.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    chk.set_defaults(func=cmd_check)

    base = sub.add_parser("baseline", parents=[common], help="CI baseline files")
    bsub = base.add_subparsers(dest="baseline_command", metavar="ACTION")
    upd = bsub.add_parser(
        "update",
        parents=[common],
        help="write (or refresh) a baseline file from a results folder, keeping its tolerance settings",
    )
    upd.add_argument("results", type=_path, metavar="RESULTS_DIR")
    upd.add_argument("--out", type=_path, required=True, metavar="FILE", help="baseline file to write")
    upd.set_defaults(func=cmd_baseline_update)
    base.set_defaults(func=lambda args: _missing_action(base))

    cmp = sub.add_parser(
        "compare",
        parents=[common],
        help="the same suite run twice (before, after a change): paired differences and the check's verdict",
    )
    cmp.add_argument("before", type=_path, metavar="DIR_A", help="results folder before the change")
    cmp.add_argument("after", type=_path, metavar="DIR_B", help="results folder after the change")
    cmp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    cmp.set_defaults(func=cmd_compare)


def _leaderboard_parser(sub, common: argparse.ArgumentParser) -> None:
    lb = sub.add_parser(
        "leaderboard",
        parents=[common],
        help="merge results folders into one ranked table per (dataset, task, metric)",
    )
    lb.add_argument("folders", type=_path, nargs="+", metavar="DIR", help="results folders (--out of `xmbench run`)")
    lb.add_argument(
        "--out",
        type=_path,
        action="append",
        default=[],
        metavar="FILE",
        help="write FILE.md, FILE.html or FILE.csv (repeatable); without --out, print the boards",
    )
    lb.add_argument(
        "--metrics",
        choices=("main", "all"),
        default="main",
        help="each task's main metric (default) or every metric, sub-metrics included",
    )
    lb.add_argument("--title", default="xmbench leaderboard", help="the page title")
    lb.set_defaults(func=cmd_leaderboard)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from harness.leaderboard import check_outputs, write_leaderboard
    from harness.leaderboard.board import build_leaderboard
    from harness.results.folder import open_results

    check_outputs(args.out)
    folders, sources, seen = [], [], set()
    for path in args.folders:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        folders.append(open_results(path))
        sources.append(str(path))
    lb = build_leaderboard(folders, sources, metrics=args.metrics, title=args.title)
    if not lb.boards:
        raise UserError(
            f"{', '.join(sources)}: no finished (task, model) to put on a board"
            + (f" ({len(lb.excluded)} left out: {lb.excluded[0].reason})" if lb.excluded else "")
            + "; run the suites to the end first"
        )
    if not args.out:
        from rich.console import Console

        from harness.leaderboard.render import print_leaderboard

        print_leaderboard(lb, Console(highlight=False, width=None if sys.stdout.isatty() else 200))
    for path in args.out:
        write_leaderboard(lb, path)
        print(f"wrote {path}")
    rows = sum(len(b.rows) for b in lb.boards)
    marked = sum(1 for b in lb.boards for r in b.rows if not r.comparable)
    print(
        f"{len(lb.boards)} board(s), {rows} row(s) from {len(folders)} folder(s); {marked} row(s) with other "
        f"settings than their board's (marked, not ranked); {len(lb.excluded)} (task, model) left out"
    )
    return 0


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; use a rate such as 0.01") from None
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 0.5); use a rate such as 0.01")
    return value


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from harness.gate.baseline import read_baseline
    from harness.gate.check import check
    from harness.gate.render import print_check
    from harness.results.folder import open_results

    try:
        baseline = read_baseline(args.baseline)
        results = open_results(args.results)
    except UserError as exc:
        if args.json:
            print(json.dumps({"verdict": "error", "exit_code": 2, "problems": [str(exc)], "rows": []}))
        raise
    result = check(baseline, results, str(args.baseline), args.false_alarm)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        from rich.console import Console

        print_check(result, Console(highlight=False, width=None if sys.stdout.isatty() else 160))
    if result.problems:
        first = result.problems[0]
        more = f" (and {len(result.problems) - 1} more problem(s), listed above)" if len(result.problems) > 1 else ""
        raise UserError(f"cannot check {args.results}: {first}{more}")
    return result.exit_code


def cmd_baseline_update(args: argparse.Namespace) -> int:
    from harness.gate.baseline import baseline_from_results, read_baseline, write_baseline
    from harness.results.folder import open_results

    results = open_results(args.results)
    previous = read_baseline(args.out) if args.out.exists() else None
    if previous is not None and previous.suite != results.suite:
        raise UserError(
            f"{args.out}: is the baseline of suite {previous.suite!r}, not {results.suite!r}; choose another --out"
        )
    baseline = baseline_from_results(results, previous)
    write_baseline(baseline, args.out)
    gated = sum(1 for m in baseline.metrics.values() if m.gate)
    kept = " (tolerances and gate flags kept)" if previous else ""
    print(
        f"wrote {args.out}: suite {baseline.suite!r}, {len(baseline.metrics)} metrics, {gated} gated{kept}; "
        f"check with `xmbench check RESULTS_DIR --baseline {args.out}`"
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from harness.gate.compare import compare_folders
    from harness.gate.render import compare_table, print_check
    from harness.results.folder import open_results

    before, after = open_results(args.before), open_results(args.after)
    rows, result = compare_folders(before, after)
    if args.json:
        print(json.dumps({"differences": rows, "check": result.to_json()}, indent=2))
    else:
        from rich.console import Console

        console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        console.print(compare_table(rows, str(args.before), str(args.after)))
        console.print()
        print_check(result, console, title=f"xmbench check {args.after} against {args.before}")
    if result.problems:
        raise UserError(f"cannot check {args.after} against {args.before}: {result.problems[0]}")
    return result.exit_code


def _score_parser(sub, common: argparse.ArgumentParser) -> None:
    score = sub.add_parser("score", parents=[common], help="score prediction files in the official formats")
    ssub = score.add_subparsers(dest="score_command", metavar="METRIC")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    # A paired comparison of two prediction files (--against): the options that go with it.
    cmp = argparse.ArgumentParser(add_help=False)
    cmp.add_argument(
        "--claim-delta",
        default=None,
        metavar="D",
        help="with --against: judge the claim that the first file beats --against by D points (3.2) or D%% (15%%)",
    )
    cmp.add_argument(
        "--metric",
        dest="metric_name",
        default=None,
        metavar="NAME",
        help="with --against: the metric compared (default: the main one, e.g. vqa_accuracy, top1, r_mean, mAP)",
    )
    cmp.add_argument(
        "--replicates",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="with --against: bootstrap replicates (default 10000; at most 2000 for mAP)",
    )
    against = "of a second model, on the same examples: a paired comparison (bootstrap over image clusters)"

    p = ssub.add_parser("vqa", parents=[common, out, cmp], help="official VQA accuracy of a results file")
    p.add_argument("--questions", type=_path, required=True, help="v2_OpenEnded_mscoco_*_questions.json")
    p.add_argument("--annotations", type=_path, required=True, help="v2_mscoco_*_annotations.json")
    p.add_argument("--results", type=_path, required=True, help='[{"question_id", "answer"}] (official format)')
    p.add_argument(
        "--mode",
        choices=["official", "legacy"],
        default="official",
        help="official GT-Vision-Lab evaluator (default) or the older LAVIS/ALBEF variant",
    )
    p.add_argument("--against", type=_path, default=None, metavar="RESULTS", help=f"a results file {against}")
    p.set_defaults(func=cmd_score, metric="vqa")

    p = ssub.add_parser("retrieval", parents=[common, out, cmp], help="image-text retrieval recall (ALBEF/LAVIS)")
    p.add_argument(
        "--annotations",
        type=_path,
        required=True,
        help='LAVIS eval file [{"image", "caption": [..]}] or a Karpathy dataset_*.json (with --split)',
    )
    p.add_argument("--split", default=None, help="Karpathy split (e.g. test)")
    p.add_argument("--scores", type=_path, required=True, help="images x texts score matrix (.npy)")
    p.add_argument("--scores-t2i", type=_path, default=None, help="texts x images score matrix (.npy), optional")
    p.add_argument(
        "--ties",
        choices=["pessimistic", "optimistic"],
        default="pessimistic",
        help="rank of a ground truth tied with other candidates (default pessimistic; see docs/metrics.md)",
    )
    p.add_argument("--against", type=_path, default=None, metavar="SCORES", help=f"an images x texts .npy {against}")
    p.add_argument(
        "--against-t2i", type=_path, default=None, metavar="SCORES", help="texts x images .npy of --against, optional"
    )
    p.set_defaults(func=cmd_score, metric="retrieval")

    p = ssub.add_parser("multilabel", parents=[common, out, cmp], help="multi-label mAP against COCO instances")
    p.add_argument("--annotations", type=_path, required=True, help="instances_*.json")
    p.add_argument(
        "--scores",
        type=_path,
        required=True,
        help="images (ascending id) x categories (ascending id) score matrix (.npy)",
    )
    p.add_argument("--mode", choices=["nonint", "voc", "voc11", "asl"], default="nonint")
    p.add_argument("--against", type=_path, default=None, metavar="SCORES", help=f"a score matrix {against}")
    p.set_defaults(func=cmd_score, metric="multilabel")

    p = ssub.add_parser("detection", parents=[common, out], help="COCO bbox mAP through pycocotools COCOeval")
    p.add_argument("--annotations", type=_path, required=True, help="instances_*.json")
    p.add_argument("--results", type=_path, required=True, help="official detection results JSON")
    p.add_argument(
        "--iscrowd-default",
        type=int,
        choices=[0, 1],
        default=None,
        help="value for annotations without 'iscrowd' (default: refuse such files)",
    )
    p.set_defaults(func=cmd_score, metric="detection")

    p = ssub.add_parser("classification", parents=[common, out, cmp], help="top-1/top-5 accuracy")
    p.add_argument("--scores", type=_path, required=True, help="N x C score matrix (.npy)")
    p.add_argument("--labels", type=_path, required=True, help="N integer labels (.npy)")
    p.add_argument("--topk", type=_positive_int, nargs="+", default=[1, 5])
    p.add_argument("--against", type=_path, default=None, metavar="SCORES", help=f"an N x C .npy {against}")
    p.add_argument(
        "--clusters",
        type=_path,
        default=None,
        metavar="FILE.npy",
        help="with --against: one cluster label per row (e.g. the image id); default: each row its own cluster",
    )
    p.set_defaults(func=cmd_score, metric="classification")
    score.set_defaults(func=lambda args: _missing_action(score))


def cmd_score(args: argparse.Namespace) -> int:
    from harness import score

    if getattr(args, "against", None) is not None:  # a paired comparison of two files (docs/statistics.md)
        options = {"metric": args.metric_name, "claim_delta": args.claim_delta, "replicates": args.replicates}
        if args.metric == "vqa":
            first = args.results
            result = score.compare_vqa(args.questions, args.annotations, first, args.against, args.mode, **options)
        elif args.metric == "retrieval":
            first = args.scores
            result = score.compare_retrieval(
                args.annotations,
                first,
                args.against,
                args.scores_t2i,
                args.against_t2i,
                args.split,
                args.ties,
                **options,
            )
        elif args.metric == "multilabel":
            first = args.scores
            result = score.compare_multilabel(args.annotations, first, args.against, args.mode, **options)
        else:
            first = args.scores
            result = score.compare_classification(first, args.labels, args.against, args.clusters, **options)
        if args.json:
            print(json.dumps(result))
        else:
            score.print_comparison(result, f"xmbench score {args.metric}: {first.name} against {args.against.name}")
        return 0
    only_with = [
        flag
        for flag, dest in (
            ("--against-t2i", "against_t2i"),
            ("--clusters", "clusters"),
            ("--claim-delta", "claim_delta"),
            ("--metric", "metric_name"),
        )
        if getattr(args, dest, None) is not None
    ]
    if only_with:
        raise UserError(f"{only_with[0]} applies to a paired comparison; add --against with a second model's file")
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
    """``xmbench data`` or ``xmbench score`` without its action: one line, like every other command-line mistake."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    raise UserError(
        f"{parser.prog}: missing {sub.metavar or 'action'}: one of {', '.join(sub.choices)} "
        f"(see `{parser.prog} --help`)"
    )


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


def _load(args: argparse.Namespace):
    """Plug-ins named on the command line first, then the suite."""
    from harness.models import load_plugins
    from harness.suite import load_suite

    load_plugins(getattr(args, "plugin", []) or [])
    return load_suite(args.suite, getattr(args, "profile", None), getattr(args, "sets", None) or ())


def _out(args: argparse.Namespace, suite) -> Path:
    name = suite.name or args.suite.stem
    args.out = args.out or Path("reports") / (name if suite.profile is None else f"{name}-{suite.profile}")
    return args.out


def cmd_validate(args: argparse.Namespace) -> int:
    """The suite as given; without --profile, also each profile it defines."""
    from harness.suite.check import check_suite
    from harness.suite.loader import suite_profiles

    profiles = [args.profile] if args.profile is not None else [None, *suite_profiles(args.suite)]
    for profile in profiles:
        args.profile = profile
        suite = _load(args)
        where = args.suite if profile is None else f"{args.suite} (profile {profile})"
        models = check_suite(suite, where, _data_root(args.data_root), build=True)
        runs = sum(len(t.models) for t in suite.tasks.values()) * len(suite.seeds)
        print(
            f"{where}: OK — suite {suite.name!r}: {len(suite.tasks)} task(s), {len(models)} model(s) built, "
            f"{len(suite.seeds)} seed(s) -> {runs} run(s)"
        )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Exit 0 when every selected run finished, 1 when any run failed (each listed with its one-line error)."""
    from harness import dist
    from harness.runner import Selection

    suite = _load(args)
    out = _out(args, suite)
    console = _console()
    selection = None
    if args.tasks or args.models or args.seeds:
        selection = Selection(args.tasks, args.models, args.seeds)
    if args.dry_run:
        return _dry_run(args, suite, out, selection, console)
    if dist.env_world_size() <= 1:
        return _run_and_summarise(args, suite, out, console, selection, dist.world())
    # under torchrun: join the process group; every rank trains, rank 0 speaks and writes
    from harness.train.precision import resolve_device

    world = dist.init(resolve_device(suite.hardware.device).type)
    console.quiet = not world.main
    try:
        return _run_and_summarise(args, suite, out, console, selection, world)
    finally:
        dist.shutdown()


def _run_and_summarise(args: argparse.Namespace, suite, out: Path, console, selection, world) -> int:
    """Run the suite and print its summary; under torchrun, ranks other than 0 print nothing."""
    from harness.runner import failures_lines, run_suite

    outcome = run_suite(
        suite,
        args.suite,
        out,
        _data_root(args.data_root),
        console,
        selection=selection,
        fail_fast=args.fail_fast,
        tensorboard=args.tensorboard and world.main,
        shard=args.shard,
    )
    if not world.main:
        return 1 if outcome.failed or outcome.input_errors else 0
    ok = len(outcome.records) - len(outcome.failed)
    elsewhere = f", {len(outcome.claimed_elsewhere)} left to another process" if outcome.claimed_elsewhere else ""
    parallel = f", {world.size} data-parallel processes ({world.backend})" if world.active else ""
    console.log(
        f"{ok}/{len(outcome.records)} runs finished ({outcome.reused} reused{elsewhere}) in "
        f"{outcome.seconds:.0f}s{parallel}"
    )
    if outcome.report is not None:
        from rich.console import Console

        from harness.report.terminal import print_summary

        print_summary(outcome.report, Console(highlight=False))
        print(f"report: {out / 'report.html'} (also report.md, results.csv, summary.json)")
    if outcome.input_errors:  # bad input (exit 2) outranks failed runs (exit 1); the failures are in the log
        first = outcome.input_errors[0]
        more = (
            f" (and {len(outcome.input_errors) - 1} more task(s) with bad input)"
            if len(outcome.input_errors) > 1
            else ""
        )
        raise UserError(first + more)
    if outcome.failed:
        for line in failures_lines(outcome):
            print(f"xmbench: {line}", file=sys.stderr)
        return 1
    return 0


def _dry_run(args: argparse.Namespace, suite, out: Path, selection, console) -> int:
    from harness.runner import dry_run, plan_suite, select_runs

    plan = plan_suite(suite, args.suite, _data_root(args.data_root), console, build=False)
    runs = select_runs(plan, selection)
    if args.shard is not None:
        from harness.shard import shard_runs

        runs = shard_runs(plan, runs, args.shard)
        print(f"shard {args.shard}: {len(runs)} run(s)")
    if not runs:
        print("0 run(s): nothing falls to this shard (nothing was trained: --dry-run)")
        return 0
    states = dry_run(plan, out, runs)
    width = max(len(s.spec.run_id) for s in states)
    print(f"{'run':{width}s}  fingerprint   {'state':8s}  estimate  note")
    for s in states:
        est = f"{s.estimate_s:7.0f}s" if s.estimate_s is not None else "       —"
        print(f"{s.spec.run_id:{width}s}  {s.spec.fingerprint[:12]}  {s.state:8s}  {est}  {s.note}".rstrip())
    todo = [s for s in states if s.state in ("to run", "failed")]
    known = [s.estimate_s for s in todo if s.estimate_s is not None]
    total = f"; about {sum(known):.0f}s for the {len(known)} with an estimate" if known else ""
    counts = {k: sum(s.state == k for s in states) for k in ("done", "claimed", "failed", "to run")}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    print(f"{len(states)} run(s): {summary}{total} (nothing was trained: --dry-run)")
    return 0


def _shard(text: str):
    from harness.shard import Shard

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integer seeds, got {text!r}") from None


def _plan_for_folder(args: argparse.Namespace, suite, out: Path):
    """The plan, and its runs on the device type that the folder's runs were made on (see ``report --device``)."""
    from harness.results.record import read_record
    from harness.runner import plan_suite

    plan = plan_suite(suite, args.suite, _data_root(args.data_root), _console(), build=False)
    if getattr(args, "device", None):
        return plan, plan.runs_on(args.device.split(":")[0])
    best, best_hits = plan.runs, -1
    for device in dict.fromkeys([plan.device.type, "cuda", "cpu", "mps"]):
        runs = plan.runs_on(device)
        hits = sum(read_record(out / r.folder) is not None for r in runs)
        if hits > best_hits:
            best, best_hits = runs, hits
    return plan, best


def cmd_plan(args: argparse.Namespace) -> int:
    from harness.results.collect import collect

    suite = _load(args)
    out = _out(args, suite)
    _, runs = _plan_for_folder(args, suite, out)
    found = collect(out, runs)
    state = {r.run_id: r.status for r in found.records}
    state.update({r: "in progress" for r in found.in_progress})
    state.update({r: "missing" for r in found.missing})
    rows = [
        {
            "run_id": s.run_id,
            "fingerprint": s.fingerprint,
            "folder": s.folder,
            "device": s.device,
            "state": state[s.run_id],
        }
        for s in runs
    ]
    if args.json:
        other = [{"folder": o.folder, "run_id": o.run_id, "reason": o.reason} for o in found.other]
        print(json.dumps({"suite": suite.name, "out": str(out), "runs": rows, "not_part_of_this_plan": other}))
        return 0
    for row in rows:
        print(f"{row['run_id']:40s} {row['fingerprint'][:16]}  {row['state']}")
    for o in found.other:
        print(f"{o.folder}: not part of this plan ({o.reason})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.runner import write_plan_report

    suite = _load(args)
    out = _out(args, suite)
    if not (out / "runs").is_dir():
        raise UserError(f"{out}: no runs/ folder; run `xmbench run {args.suite}` first or pass --out")
    plan, runs = _plan_for_folder(args, suite, out)
    report = write_plan_report(plan, out, runs)
    print(f"report: {report.paths['html']} ({len(runs)} planned runs)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.models import load_plugins

    load_plugins(getattr(args, "plugin", []) or [])
    if args.what == "models":
        from harness.models import load_families

        reg = load_families()
        for name in reg:
            fam = reg.get(name)
            print(f"{name:10s} {fam.kind:12s} {(fam.description or '').strip().splitlines()[0]}  [{fam.source}]")
    elif args.what == "tasks":
        from harness.tasks import task_registry

        reg = task_registry()
        for name in reg:
            cls = reg.get(name)
            needs = ", ".join(sorted(cls.requires)) or "image or text"
            print(f"{name:15s} main metric: {cls.main_metric:13s} needs: {needs}")
    else:
        from harness.data.kinds import DATASET_KINDS

        for kind in DATASET_KINDS:
            splits = DATASET_KINDS.get(kind).splits
            print(f"{kind:12s} " + ", ".join(f"{t} ({a} -> {b})" for t, (a, b) in splits.items()))
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from harness.data.synthetic import generate

    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"{args.out}: exists and is not a folder; choose another --out")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.force:
        raise UserError(
            f"{args.out}: the folder is not empty; choose an empty or new --out, or add --force to write into it "
            "(files with the same names are replaced)"
        )
    manifest = generate(args.out, images=args.images, seed=args.seed, size=args.size, dicom=args.dicom)
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
        return _fail(args, _in_suite(args, str(exc)), exc.exit_code)
    except KeyboardInterrupt:
        print("xmbench: interrupted; finished runs are kept and will be reused", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system said no: permissions, a full disk, a read-only mount
        return _fail(args, os_error_message(exc, _places(args)))
    except SystemExit as exc:  # user code (a plug-in, a model factory) called sys.exit() inside a command
        return _fail(
            args,
            f"code run by this command (a --plugin module or a registered model) called sys.exit({exc.code!r}); "
            "remove that call from it (rerun with --debug for the traceback)",
        )
    except Exception as exc:
        if is_out_of_memory(exc):
            return _fail(
                args,
                f"out of memory ({describe(exc)}); lower train.batch_size, image.size or the model size, "
                "or free memory (rerun with --debug for the traceback)",
            )
        if args.debug:  # a bug, not a user error
            raise
        print(
            one_line(f"xmbench: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 1


def _fail(args: argparse.Namespace, message: str, code: int = 2) -> int:
    """Print the one error line (after the traceback with --debug) and return the exit code."""
    if args.debug:
        traceback.print_exc()
    print(one_line(f"xmbench: error: {message}"), file=sys.stderr)
    return code


def _in_suite(args: argparse.Namespace, message: str) -> str:
    """A message about a suite key (``hardware.device: ...``) raised after the suite was loaded, prefixed with the
    suite file, so that every message names its file (checks of the suite itself already do)."""
    suite = getattr(args, "suite", None)
    if suite is None:
        return message
    from harness.suite.schema import Suite

    keys = "|".join(re.escape(k) for k in Suite.model_fields)
    return f"{suite}: {message}" if re.match(rf"(?:{keys})(?:[.\[:]|$)", message) else message


def _places(args: argparse.Namespace) -> list[tuple[Path, str]]:
    """Folders whose file-system errors suggest another location: the output folder and the cache."""
    places = []
    if isinstance(getattr(args, "out", None), Path):
        places.append((args.out, "--out"))
    try:
        from harness.data.text import cache_root

        places.append((cache_root(), "XMBENCH_CACHE"))
    except UserError:
        pass
    return places


if __name__ == "__main__":
    raise SystemExit(main())
