"""Entity extraction for EGMT: ``python -m engine.egmt.entities --data DIR --out FILE``.

The paper captions both source images (BLIP-2), extracts entity words (Flan-T5) and de-duplicates them
case-insensitively. Without caption or language-model weights, the entities here come from a real
detector: the application's YOLOv5 ONNX detector (``app.detector``, Qt-free) runs on BOTH source images of
every pair; the entity set of a pair is the union of the class names detected with at least
``--threshold`` confidence, de-duplicated without regard to case. The boxes are kept too (training crops
take the entities whose boxes they contain). The caption route stays pluggable: ``--entities NAME,...``
gives every pair a user-given list instead (or a JSON file ``{pair: [names]}`` from any caption model).

The result is one JSON file per dataset (the cache): re-running with the same detector and threshold
only processes pairs it has not seen. It ends with the pseudo-label statistics (pairs per entity).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FusionError
from ..imageio import match_pairs, read_image
from ..paths import REPO_ROOT
from .entity_table import dedupe, normalise_name

CACHE_FORMAT = "egmt-entities-v1"
DEFAULT_THRESHOLD = 0.4
PSEUDO_LABEL_DIR = Path(__file__).resolve().parent / "pseudo_labels"


def default_detector_path() -> Path | None:
    path = REPO_ROOT.parent / "shared" / "models" / "yolov5n" / "yolov5n.onnx"
    return path if path.is_file() else None


def file_sha_prefix(path: Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


@dataclass
class PairEntities:
    """Entities of one pair: names (de-duplicated) and per-modality boxes ``[label, score, x1, y1, x2, y2]``."""

    entities: list[str]
    ir: list[list]
    vi: list[list]
    size: tuple[int, int]  # (H, W) of the pair

    def to_json(self) -> dict[str, Any]:
        return {"entities": self.entities, "ir": self.ir, "vi": self.vi, "size": list(self.size)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "PairEntities":
        return cls(list(d["entities"]), [list(b) for b in d.get("ir", [])], [list(b) for b in d.get("vi", [])],
                   tuple(d.get("size", (0, 0))))

    def boxes(self) -> list[list]:
        return self.ir + self.vi


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Any 8/16-bit gray or colour image -> (H, W, 3) uint8 BGR for the detector."""
    import cv2

    if image.dtype != np.uint8:
        lo, hi = float(image.min()), float(image.max())
        image = ((image.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def detections_to_boxes(detections) -> list[list]:
    return [[d.label, round(d.score, 4), round(d.x1, 1), round(d.y1, 1), round(d.x2, 1), round(d.y2, 1)]
            for d in detections]


def pair_entities(detector, ir_bgr: np.ndarray, vi_bgr: np.ndarray) -> PairEntities:
    """Run ``detector`` (``detect(bgr) -> [Detection]``) on both images; union of names, case-insensitive."""
    ir_boxes = detections_to_boxes(detector.detect(ir_bgr))
    vi_boxes = detections_to_boxes(detector.detect(vi_bgr))
    names = dedupe(b[0] for b in ir_boxes + vi_boxes)
    return PairEntities(names, ir_boxes, vi_boxes, tuple(int(s) for s in vi_bgr.shape[:2]))


def load_cache(path: str | Path) -> dict[str, Any]:
    """Read an entity file written by this command; FusionError naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FusionError(f"entity file not found: {path} (make it with python -m engine.egmt.entities)")
    try:
        blob = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FusionError(f"cannot read entity file {path}: {exc}") from None
    if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT or "pairs" not in blob:
        raise FusionError(f"{path} is not an EGMT entity file (format {CACHE_FORMAT})")
    return blob


def load_pair_entities(path: str | Path) -> dict[str, PairEntities]:
    """pair name (the thermal file's name) -> :class:`PairEntities`."""
    return {k: PairEntities.from_json(v) for k, v in load_cache(path)["pairs"].items()}


def statistics(pairs: dict[str, PairEntities]) -> dict[str, Any]:
    """Pseudo-label statistics: pairs per entity (and per modality), entities per pair."""
    per_entity, ir_only, vi_only = Counter(), Counter(), Counter()
    for p in pairs.values():
        ir_names = {normalise_name(b[0]) for b in p.ir}
        vi_names = {normalise_name(b[0]) for b in p.vi}
        for n in p.entities:
            k = normalise_name(n)
            per_entity[k] += 1
            ir_only[k] += int(k in ir_names and k not in vi_names)
            vi_only[k] += int(k in vi_names and k not in ir_names)
    counts = [len(p.entities) for p in pairs.values()]
    return {
        "pairs": len(pairs),
        "pairs_without_entities": int(sum(c == 0 for c in counts)),
        "entities_per_pair_mean": round(float(np.mean(counts)), 3) if counts else 0.0,
        "entities_per_pair_max": int(max(counts)) if counts else 0,
        "pairs_per_entity": dict(per_entity.most_common()),
        "found_only_in_ir": {k: ir_only[k] for k, _ in per_entity.most_common()},
        "found_only_in_vi": {k: vi_only[k] for k, _ in per_entity.most_common()},
    }


def format_statistics(stats: dict[str, Any]) -> str:
    lines = [f"{stats['pairs']} pairs, {stats['pairs_without_entities']} without entities, "
             f"{stats['entities_per_pair_mean']} entities per pair on average (max {stats['entities_per_pair_max']})",
             "entity            pairs  only-IR  only-VIS"]
    for name, n in stats["pairs_per_entity"].items():
        lines.append(f"{name:<17} {n:>5}  {stats['found_only_in_ir'][name]:>7}  {stats['found_only_in_vi'][name]:>8}")
    return "\n".join(lines)


def extract(data: Path, out: Path, detector_path: Path | None, threshold: float, user_entities: list[str] | None,
            caption_file: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Build or update the entity file ``out`` for the pairs under ``data`` (``ir/`` + ``vi/``)."""
    from tqdm import tqdm

    data, out = Path(data), Path(out)
    if not (data / "ir").is_dir() or not (data / "vi").is_dir():
        raise FusionError(f"{data} must contain 'ir' and 'vi' folders")
    pairs = match_pairs(data / "ir", data / "vi").pairs
    if not pairs:
        raise FusionError(f"no matched thermal/visible pairs under {data}")
    if user_entities is not None or caption_file is not None:
        source: dict[str, Any] = {"kind": "user-list" if user_entities is not None else "caption-file"}
        given = {}
        if caption_file is not None:
            try:
                given = json.loads(Path(caption_file).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise FusionError(f"cannot read caption entity file {caption_file}: {exc}") from None
            source["file"] = str(caption_file)
        result = {}
        for ir_p, vi_p in pairs:
            names = dedupe(given.get(ir_p.name, given.get(ir_p.stem, [])) if caption_file else user_entities)
            result[ir_p.name] = PairEntities(names, [], [], (0, 0))
    else:
        if detector_path is None or not Path(detector_path).is_file():
            raise FusionError(f"detector model not found: {detector_path} (pass --detector PATH.onnx)")
        from app.detector import YoloV5Detector  # Qt-free; the application's own detector

        detector_path = Path(detector_path)
        source = {"kind": "detector", "model": detector_path.name, "sha256_prefix": file_sha_prefix(detector_path),
                  "threshold": threshold, "iou_threshold": 0.45, "images": "both (IR and VIS)"}
        cached: dict[str, Any] = {}
        if out.is_file():
            try:
                old = load_cache(out)
                if old.get("source") == source:
                    cached = old["pairs"]
            except FusionError:
                cached = {}
        detector = YoloV5Detector(detector_path, conf_threshold=threshold, iou_threshold=0.45)
        result = {}
        todo = [(i, v) for i, v in pairs if i.name not in cached]
        for ir_p, vi_p in pairs:
            if ir_p.name in cached:
                result[ir_p.name] = PairEntities.from_json(cached[ir_p.name])
        if not quiet:
            print(f"{len(pairs)} pairs in {data}; {len(pairs) - len(todo)} cached in {out}, {len(todo)} to detect",
                  flush=True)
        start = time.monotonic()
        for ir_p, vi_p in tqdm(todo, desc="entities", unit="pair", disable=quiet or not todo, mininterval=2):
            try:
                ir_img, vi_img = _as_bgr(read_image(ir_p)), _as_bgr(read_image(vi_p))
            except FusionError as exc:
                print(f"warning: skipped {ir_p.name}: {exc}", file=sys.stderr)
                continue
            result[ir_p.name] = pair_entities(detector, ir_img, vi_img)
        detector.close()
        source["seconds"] = round(time.monotonic() - start, 1)
    ordered = {i.name: result[i.name].to_json() for i, _ in pairs if i.name in result}
    blob = {"format": CACHE_FORMAT, "data": str(data), "source": {k: v for k, v in source.items() if k != "seconds"},
            "pairs": ordered}
    blob["statistics"] = statistics({k: PairEntities.from_json(v) for k, v in ordered.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(blob, indent=1) + "\n")
    tmp.replace(out)
    return blob


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.egmt.entities",
                                     description="Entities (pseudo-labels) of every IR/VIS pair for EGMT.")
    parser.add_argument("--data", required=True, help="folder with ir/ and vi/ (names matched)")
    parser.add_argument("--out", required=True, help="entity file (JSON; reused as a cache when it exists)")
    parser.add_argument("--detector", help="YOLOv5 ONNX export (default ../shared/models/yolov5n/yolov5n.onnx)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"confidence a detection needs to count as an entity (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--entities", help="comma-separated entity list given to every pair (no detector)")
    parser.add_argument("--caption-entities", help="JSON {pair name: [entity, ...]} from a caption model")
    args = parser.parse_args(argv)
    try:
        detector = Path(args.detector) if args.detector else default_detector_path()
        user = [s.strip() for s in args.entities.split(",") if s.strip()] if args.entities else None
        blob = extract(Path(args.data), Path(args.out), detector, args.threshold, user,
                       Path(args.caption_entities) if args.caption_entities else None)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing written", file=sys.stderr)
        return 130
    print(format_statistics(blob["statistics"]))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
