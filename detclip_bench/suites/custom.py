"""Your own data as a suite: one dataset from a command line spec, or a multi-dataset suite from a file.

``--dataset`` (on ``eval`` and ``finetune``) takes the layouts people download:

* a Roboflow/ODinW export folder: ``train/``, ``valid/`` (or ``val/``, ``mini_val/``), ``test/``, each
  holding ``_annotations.coco.json`` (or GLIP's ``annotations_without_background.json``) and its images;
* ``train=A.json,val=B.json,test=C.json``: COCO jsons, each split's images in the json's folder, or in
  another folder given as ``train=A.json@images/train``.

It becomes a one-member suite with the ODinW machinery: COCO AP, verbatim class names as prompts (or
``prompts``, one per category in id order), the eval split ``test`` where there is one (else ``val``),
and for fine-tuning the Table 3 protocol (early stop and model selection on ``val``). The suite is
versioned by the content of its annotation files, so a result always says which files it scored.

A suite file (JSON or YAML; see ``docs/suites.md``) registers a lab's own multi-dataset suite; any
``--suite`` argument that names an existing ``.json``/``.yaml``/``.yml`` file is read as one.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from detclip_bench.datasets.odinw import EXPORT_ANNOTATION_NAMES, EXPORT_SPLIT_FOLDERS, export_splits
from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.predict.vocabulary import parse_prompts as parse_vocabulary_prompts
from detclip_bench.suites.suite import Suite, SuiteMember

__all__ = [
    "SUITE_FILE_SUFFIXES",
    "dataset_suite",
    "is_suite_file",
    "load_suite_file",
    "parse_dataset_spec",
    "parse_prompts",
    "suite_of_results",
]

SUITE_FILE_SUFFIXES = (".json", ".yaml", ".yml")
ANNOTATION_NAMES = EXPORT_ANNOTATION_NAMES
SPLIT_FOLDERS = EXPORT_SPLIT_FOLDERS
SPLITS = tuple(SPLIT_FOLDERS)


def parse_prompts(text: str | None) -> tuple[str, ...] | None:
    """``"cat, red apple"`` → ("cat", "red apple"); None stays None. The prompts are positional (one per
    category in id order), so an empty item is an error here; whitespace and duplicates (ignoring case) are
    handled as ``predict`` handles its ``--prompts`` (:func:`detclip_bench.predict.vocabulary.parse_prompts`)."""
    if text is None:
        return None
    if not all(p.strip() for p in text.split(",")):
        raise DataError("--prompts", text, "an empty prompt (two commas in a row, or a trailing comma)")
    return parse_vocabulary_prompts(text).prompts


def parse_dataset_spec(spec: str) -> dict[str, tuple[Path, Path]]:
    """``split -> (annotation json, image folder)`` from a ``--dataset`` spec (see the module docstring)."""
    spec = spec.strip()
    if "=" not in spec:
        return _export_folder(Path(spec).expanduser())
    files: dict[str, tuple[Path, Path]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        split, sep, value = part.partition("=")
        split = {"valid": "val"}.get(split.strip(), split.strip())
        if not sep or split not in SPLITS:
            raise DataError(spec, part, f"expected split=path.json with split one of {', '.join(SPLITS)}")
        if split in files:
            raise DataError(spec, part, f"split {split!r} is given twice")
        ann, _, images = value.partition("@")
        ann_path = Path(ann).expanduser()
        files[split] = (ann_path, Path(images).expanduser() if images else ann_path.parent)
    return files


def _export_folder(root: Path) -> dict[str, tuple[Path, Path]]:
    if not root.is_dir():
        raise DataError(str(root), "-", "--dataset is neither a folder nor split=path.json pairs")
    files = export_splits(root)
    if not files:
        raise DataError(
            str(root),
            "-",
            "no Roboflow/COCO export here: expected train/, valid/ or test/ folders "
            f"holding {' or '.join(ANNOTATION_NAMES)}",
        )
    return files


def _check_split(split: str, ann: Path, images: Path) -> list[tuple[int, str]]:
    """The split's (category id, name) pairs; a clear error for a missing, empty or imageless split."""
    if not ann.is_file():
        raise DataError(str(ann), split, "annotation file not found")
    if not images.is_dir():
        raise DataError(str(images), split, "image folder not found")
    data = read_json(ann)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(str(ann), split, "not a COCO json (no 'images' list)")
    if not data["images"]:
        raise DataError(str(ann), split, "empty split: the file lists no images")
    if split == "train" and not data.get("annotations"):
        raise DataError(str(ann), split, "empty split: a training split needs annotations")
    missing = [im.get("file_name") for im in data["images"] if not (images / str(im.get("file_name"))).is_file()]
    if missing:
        raise DataError(
            str(ann),
            split,
            f"{len(missing)} of {len(data['images'])} images are missing under {images}, e.g. {missing[0]!r}",
        )
    return sorted((int(c["id"]), str(c["name"])) for c in data.get("categories", []))


def _category_difference(pairs, reference, split: str, reference_split: str) -> str:
    """The first id whose name differs, or the ids one split has and the other lacks, in words."""
    mine, theirs = dict(pairs), dict(reference)
    for cid in sorted(mine.keys() & theirs.keys()):
        if mine[cid] != theirs[cid]:
            return f"id {cid} is {mine[cid]!r} in {split} but {theirs[cid]!r} in {reference_split}"
    only = [f"{cid} {mine[cid]!r}" for cid in sorted(mine.keys() - theirs.keys())]
    missing = [f"{cid} {theirs[cid]!r}" for cid in sorted(theirs.keys() - mine.keys())]
    parts = [f"only {split} has id {', '.join(only[:3])}"] if only else []
    parts += [f"{split} lacks id {', '.join(missing[:3])}"] if missing else []
    return "; ".join(parts)


def _content_version(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return "sha256-" + digest.hexdigest()[:12]


def dataset_suite(
    spec: str, *, finetune: bool, prompts: tuple[str, ...] | None = None, name: str | None = None
) -> Suite:
    """A one-member suite over the dataset ``spec`` points at; checked now, with errors naming the file."""
    files = parse_dataset_spec(spec)
    needed = ("train", "val") if finetune else ()
    for split in needed:
        if split not in files:
            raise DataError(spec, split, f"fine-tuning needs a {split} split (found: {', '.join(files)})")
    eval_split = "test" if "test" in files else "val" if "val" in files else None
    if eval_split is None:
        raise DataError(spec, "-", "no split to score: give test= or val=")
    cats = {split: _check_split(split, *paths) for split, paths in files.items()}
    reference_split = eval_split
    for split, pairs in cats.items():
        if pairs != cats[reference_split]:
            raise DataError(
                str(files[split][0]),
                "categories",
                f"the {split} split's category ids/names differ from "
                f"{files[reference_split][0]} ({reference_split}): {_category_difference(pairs, cats[reference_split], split, reference_split)}; "
                "every split must use the same ids and names",
            )
    first = files[eval_split][0]
    label = name or (Path(spec).name if "=" not in spec else first.parent.parent.name or first.stem)
    member = SuiteMember(
        name=label,
        loader_format="odinw",
        eval_split=eval_split,
        files={split: ((str(ann.resolve()), str(img.resolve())),) for split, (ann, img) in files.items()},
        options=(("class_names", tuple(prompts)),) if prompts is not None else (),
    )
    return Suite(
        name=f"dataset-{label}",
        version=_content_version([files[s][0] for s in SPLITS if s in files]),
        description=f"Your dataset {label}: COCO AP on {eval_split}"
        + (", fine-tuned on train with early stop and model selection on val (ODinW13 protocol)" if finetune else ""),
        members=(member,),
        metrics=("coco",),
        prompt_style="verbatim",
        max_dets_per_image=100,
        setting="fine-tuned" if finetune else "zero-shot",
        aggregate="single",
        download=f"--dataset {spec}",
        dataset={"spec": spec, "finetune": finetune, "prompts": list(prompts) if prompts is not None else None},
    )


def suite_of_results(results: dict) -> Suite:
    """The suite a results.json was scored on: rebuilt from its ``--dataset`` spec, read from its suite file,
    or the registered suite of that name."""
    from detclip_bench.suites import get_suite

    if results.get("dataset"):
        d = results["dataset"]
        return dataset_suite(d["spec"], finetune=d["finetune"], prompts=tuple(d["prompts"]) if d["prompts"] else None)
    return get_suite(results.get("suite_file") or results["suite"])


def is_suite_file(name: str) -> bool:
    return name.lower().endswith(SUITE_FILE_SUFFIXES) and Path(name).expanduser().is_file()


_MEMBER_KEYS = {"name", "format", "eval_split", "files", "class_names"}
# a suite file's old spelling of a setting -> today's (results.json's and the leaderboards'); still read, with a note
OLD_SETTINGS = {"finetune": "fine-tuned"}
_SUITE_KEYS = {
    "name",
    "version",
    "description",
    "members",
    "metrics",
    "prompt_style",
    "max_dets_per_image",
    "setting",
    "aggregate",
    "topk_per_category",
    "score_threshold",
    "eval_split",
    "mini",
    "download",
    "include",
}


def _read_mapping(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A suite file's mapping, with ``include: <file>`` (relative to it) read first and its keys overridden."""
    if path.suffix.lower() == ".json":
        raw = read_json(path)
    else:
        import yaml

        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DataError(str(path), "-", f"malformed YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(str(path), "-", "a suite file is a mapping with name, version and members")
    if "include" not in raw:
        return raw
    base = (path.parent / str(raw["include"])).resolve()
    if base in seen or base == path.resolve():
        raise DataError(str(path), "include", f"{base} includes itself")
    if not base.is_file():
        raise DataError(str(path), "include", f"no such suite file: {base}")
    included = _read_mapping(base, (*seen, path.resolve()))
    return {**{k: v for k, v in included.items() if k != "include"}, **{k: v for k, v in raw.items() if k != "include"}}


def load_suite_file(path: str | os.PathLike, *, builtin: bool = False) -> Suite:
    """A :class:`Suite` from a JSON/YAML suite file; member paths are relative to the data root.

    ``builtin``: one of the package's own suite files (``detclip_bench/suites/builtin/``), whose results name the
    suite alone (no ``suite_file``), as every built-in suite's always have.
    """
    path = Path(path).expanduser()
    raw = _read_mapping(path)
    unknown = set(raw) - _SUITE_KEYS
    missing = {"name", "version", "members"} - set(raw)
    if unknown or missing:
        raise DataError(
            str(path),
            "-",
            f"unknown keys {sorted(unknown)}; missing keys {sorted(missing)}; allowed: {sorted(_SUITE_KEYS)}",
        )
    members = tuple(_member(path, i, m, raw.get("eval_split")) for i, m in enumerate(raw["members"] or []))
    try:
        return Suite(
            name=str(raw["name"]),
            version=str(raw["version"]),
            description=str(raw.get("description", "")),
            members=members,
            metrics=tuple(raw.get("metrics", ("coco",))),
            prompt_style=raw.get("prompt_style", "verbatim"),
            max_dets_per_image=int(raw.get("max_dets_per_image", 100)),
            setting=_setting(path, raw.get("setting", "zero-shot")),
            aggregate=raw.get("aggregate", "mean" if len(members) > 1 else "single"),
            topk_per_category=int(raw.get("topk_per_category", 10000)),
            score_threshold=raw.get("score_threshold"),
            mini=bool(raw.get("mini", False)),
            download=str(raw.get("download", f"the paths listed in {path}")),
            suite_file=None if builtin else str(path.resolve()),
        )
    except (TypeError, ValueError) as exc:
        raise DataError(str(path), "-", str(exc)) from exc


def _setting(path: Path, setting: Any) -> Any:
    """A suite file's ``setting``, its old spelling (``finetune``) read as today's with a deprecation note."""
    if setting not in OLD_SETTINGS:
        return setting
    warnings.warn(
        f"{path}: 'setting: {setting}' is the old spelling of 'setting: {OLD_SETTINGS[setting]}' (what results "
        "and leaderboards say); it is still read, but will not be in a later release: change the file",
        FutureWarning,
        stacklevel=3,
    )
    return OLD_SETTINGS[setting]


def _is_pair(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(p, str) for p in value)


def _member(path: Path, i: int, raw: Any, eval_split: str | None = None) -> SuiteMember:
    where = f"members[{i}]"
    if not isinstance(raw, dict) or set(raw) - _MEMBER_KEYS or not {"name", "files"} <= set(raw):
        raise DataError(
            str(path), where, f"a member is a mapping with name and files (allowed keys: {sorted(_MEMBER_KEYS)})"
        )
    files = raw["files"]
    if not isinstance(files, dict) or not files:
        raise DataError(str(path), where, "files maps each split to [annotation json, image folder]")
    parsed = {}
    for split, value in files.items():
        # one [annotation json, image folder] pair, or a list of candidate pairs (the first found is used)
        candidates = [value] if _is_pair(value) else value
        if not (isinstance(candidates, list) and candidates and all(_is_pair(c) for c in candidates)):
            raise DataError(
                str(path),
                f"{where}.files.{split}",
                "expected [annotation json, image folder], or a list of such pairs in order of preference",
            )
        parsed[str(split)] = tuple((a, i) for a, i in candidates)
    eval_split = raw.get("eval_split", eval_split or ("test" if "test" in parsed else "val"))
    if eval_split not in parsed:
        raise DataError(str(path), where, f"eval_split {eval_split!r} is not among the files' splits {sorted(parsed)}")
    names = raw.get("class_names")
    return SuiteMember(
        name=str(raw["name"]),
        loader_format=str(raw.get("format", "odinw")),
        eval_split=eval_split,
        files=parsed,
        options=(("class_names", tuple(names)),) if names else (),
    )
