"""Injection-screen evaluation: detection rate on attacks and false-positive rate on benign tasks.

``python -m benchmarks.bench_injection`` prints, for each split (dev: rules may be tuned on it; heldout: same
sources, never tuned on; external: whole sources never looked at while writing the rules; wave2_dev and
wave2_heldout: a second wave of sources, split by source package), the figures per
action level. ``flag`` and ``block`` act on the same verdict (``Verdict.detected``, i.e. score >= the rule
file's threshold), so they share one row; a threshold sweep shows the trade-off of a stricter block level.
Options: ``--sources`` adds per-source detection, ``--misses N`` prints N missed attacks / false positives of the
dev split (never of the others: looking at them would leak into the rules).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from claude_force.security.classifier import RULE_ID as CLASSIFIER_ID
from claude_force.security.injection import DefaultDetector, Verdict
from claude_force.security.verdict import CLEAN

DATA = Path(__file__).resolve().parent / "data" / "injection"
SPLITS = ("dev", "heldout", "external", "authored_nl", "wave2_dev", "wave2_heldout")
#: File of each split; ``authored_nl`` is benign only: hand-written hard requests, never trained or tuned on.
#: ``wave2_*`` is the second wave of public sources (``build_wave2.py``): indirect and agent-style injections,
#: template attacks and non-English text; ``wave2_dev`` may be tuned and trained on, ``wave2_heldout`` never.
FILES = {"authored_nl": "authored_nl_eval.jsonl"}
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def load(split: str) -> list[dict[str, str]]:
    with (DATA / FILES.get(split, f"{split}.jsonl")).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _rate(n: int, d: int) -> float | None:
    return None if d == 0 else n / d


def _evaluate(records: list[dict[str, str]], verdicts: list[Verdict], threshold: float) -> dict[str, Any]:
    attacks = [v for r, v in zip(records, verdicts, strict=False) if r["label"] == "attack"]
    benign = [v for r, v in zip(records, verdicts, strict=False) if r["label"] == "benign"]
    hit = sum(v.score >= threshold for v in attacks)
    fp = sum(v.score >= threshold for v in benign)
    return {
        "threshold": threshold,
        "attacks": len(attacks),
        "benign": len(benign),
        "detected": hit,
        "false_positives": fp,
        "detection_rate": _rate(hit, len(attacks)),
        "fp_rate": _rate(fp, len(benign)),
    }


def run(*, detector: DefaultDetector | None = None, splits: tuple[str, ...] = SPLITS) -> dict[str, Any]:
    """Scan every record of each split; return figures per split, per action level and per threshold.

    ``levels`` are the default detector's (rules, then the classifier); ``rules_only`` are the rules alone, the
    screen before the classifier was added, so the classifier's share can be read off.
    """
    det = detector if detector is not None else DefaultDetector()
    threshold = det.rules.threshold
    classifier = det.classifier
    out: dict[str, Any] = {
        "threshold": threshold,
        "rules": len(det.rules.rules),
        "splits": {},
    }
    for split in splits:
        records = load(split)
        start = time.perf_counter()
        verdicts = [det.scan(r["text"]) for r in records]
        elapsed = time.perf_counter() - start
        # The default detector returns the rules' verdict unchanged unless the classifier raised it (then the
        # rules' own score was below the threshold), so this is the rules alone at the threshold.
        alone = [CLEAN if CLASSIFIER_ID in v.rules else v for v in verdicts]
        at = _evaluate(records, verdicts, threshold)
        per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r, v in zip(records, verdicts, strict=False):
            key = f"{r['label']}|{r['source'].split('#')[0]}"
            per_source[key][0] += int(v.detected)
            per_source[key][1] += 1
        out["splits"][split] = {
            "levels": {"flag": at, "block": at},
            "rules_only": _evaluate(records, alone, threshold),
            "sweep": [_evaluate(records, verdicts, t) for t in SWEEP],
            "per_source": {k: {"flagged": a, "total": b} for k, (a, b) in sorted(per_source.items())},
            "scan_ms_mean": 1000 * elapsed / max(1, len(records)),
            "chars_mean": sum(len(r["text"]) for r in records) / max(1, len(records)),
        }
    out["classifier"] = repr(classifier)  # after the scans, so it shows the loaded model
    return out


def _pct(x: float | None) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}%"


def _print(result: dict[str, Any], *, sources: bool) -> None:
    print(f"injection screen: {result['rules']} rules, threshold {result['threshold']}")
    for split, s in result["splits"].items():
        lv = s["levels"]["flag"]
        print(
            f"\n[{split}] {lv['attacks']} attacks, {lv['benign']} benign; "
            f"mean {s['chars_mean']:.0f} chars, {s['scan_ms_mean']:.2f} ms/scan"
        )
        for level in ("flag", "block"):
            x = s["levels"][level]
            print(
                f"  {level:5}  detection {_pct(x['detection_rate'])} ({x['detected']}/{x['attacks']})"
                f"   false positives {_pct(x['fp_rate'])} ({x['false_positives']}/{x['benign']})"
            )
        ro = s["rules_only"]
        print(
            f"  rules alone: detection {_pct(ro['detection_rate'])}   false positives {_pct(ro['fp_rate'])}"
        )
        sweep = "  ".join(
            f"{t['threshold']:.1f}: {_pct(t['detection_rate'])}/{_pct(t['fp_rate'])}" for t in s["sweep"]
        )
        print(f"  sweep (threshold: detection/FP)  {sweep}")
        if sources:
            for key, v in s["per_source"].items():
                print(f"    {key:75} {v['flagged']:4}/{v['total']:<4}")


def _misses(n: int) -> None:
    det = DefaultDetector()
    records = load("dev")
    shown = {"attack": 0, "benign": 0}
    for r in records:
        v = det.scan(r["text"])
        wrong = (r["label"] == "attack") != v.detected
        if wrong and shown[r["label"]] < n:
            shown[r["label"]] += 1
            kind = "MISSED ATTACK" if r["label"] == "attack" else "FALSE POSITIVE"
            print(f"--- {kind} score={v.score:.2f} rules={v.rules} source={r['source']}")
            print(r["text"][:600].replace("\n", " / "))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate the injection screen on the labelled set.")
    ap.add_argument("--sources", action="store_true", help="show detection per source")
    ap.add_argument("--json", action="store_true", help="print the raw result as JSON")
    ap.add_argument("--misses", type=int, default=0, help="show N dev-split errors of each kind")
    args = ap.parse_args(argv)
    if args.misses:
        _misses(args.misses)
        return
    result = run()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result, sources=args.sources)


if __name__ == "__main__":
    main()
