"""LVIS suites: minival (MDETR's 5k subset, Fixed AP — the paper's headline) and full val."""

from __future__ import annotations

from detclip_bench.datasets.layouts import suite_candidates
from detclip_bench.suites.suite import Suite, SuiteMember

_DOWNLOAD = (
    "`detclip-bench data download lvis-minival lvis-val coco-val2017 coco-train2017 --root <root>`, i.e. the "
    "LVIS v1 val json from the LVIS site (lvis_v1_val.json.zip) into <root>/lvis/; MDETR's minival "
    "(lvis_v1_minival.json, or GLIP's lvis_v1_minival_inserted_image_name.json renamed) into <root>/lvis/; "
    "COCO 2017 train+val images into <root>/coco/{train2017,val2017}/ (LVIS val draws from both). GLIP's and "
    "mmdetection's layout (<root>/coco/annotations/lvis_v1_minival_inserted_image_name.json, lvis_od_val.json) "
    "is read as it is; `detclip-bench data validate <root>` lists what is found and what is missing."
)


def _member(name: str, part: str) -> SuiteMember:
    # "train" is what LVIS fine-tuning (appendix Table 2) trains on before scoring "val". Candidates: ours
    # (lvis/*.json + coco/) first, then GLIP's and mmdetection's (coco/annotations/lvis_v1_minival_inserted_
    # image_name.json, lvis_od_val.json, ...; lvis_v1/annotations/), from detclip_bench.datasets.layouts
    return SuiteMember(
        name=name,
        loader_format="lvis",
        eval_split="val",
        files={"val": suite_candidates("lvis", part), "train": suite_candidates("lvis", "train")},
    )


def lvis_suite(name: str, *, minival: bool, mini: bool) -> Suite:
    ann = "minival" if minival else "val"
    return Suite(
        name=name,
        version="1.0",
        description=(
            ("LVIS v1 minival (MDETR subset without COCO-train images)" if minival else "LVIS v1 val (19,809 images)")
            + ", zero-shot, 'name, definition' prompts for all categories, 300 detections per image"
            + (" — on the generated mini world" if mini else "")
        ),
        members=(_member("lvis-minival" if minival else "lvis-val", ann),),
        metrics=("lvis-fixed",) if minival else ("lvis-fixed", "lvis-standard"),
        prompt_style="name-definition",
        max_dets_per_image=300,
        score_threshold=1e-4,  # GLIP's LVIS evaluation keeps low-scoring boxes too
        mini=mini,
        download="detclip-bench data make-mini --out DIR" if mini else _DOWNLOAD,
    )
