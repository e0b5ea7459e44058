"""ODinW13 suites, built from the loader's manifest (:data:`detclip_bench.datasets.odinw.ODINW13`).

Zero-shot scores each dataset's val split (``mini_val`` for EgoHands/Vehicles, as GLIP does);
fine-tuning selects the checkpoint on val and reports its test AP (PascalVOC: test = valid).
The suite number is the unweighted mean over the 13, recomputed from the rows. Prompts are the
GLIP odinw_13 class names verbatim, with no caption-prompt engineering.

Known differences from mmdetection 3.3.0's ODinW13 configs (GLIP, Grounding DINO, MM-Grounding-DINO;
pinned by ``tests/reality/test_mmdet_odinw.py``): the same 13 datasets, folders and class names, but
mmdetection scores EgoHands and Vehicles on ``valid/`` (we, like GLIP, on ``mini_val/``), and its
MM-Grounding-DINO config turns on caption prompts for CottontailRabbits ("rabbit"), EgoHands ("hand of
a person"), NorthAmericaMushrooms ("flat mushroom", "yellow mushroom") and Packages. Its odinw35
configs also rename CottontailRabbits and NorthAmericaMushrooms' classes the same way.
"""

from __future__ import annotations

from detclip_bench.datasets.odinw import ODINW13, OdinwMember
from detclip_bench.suites.suite import Suite, SuiteMember

_DOWNLOAD = (
    "`detclip-bench data download odinw13 --root <root>` (GLIP's odinw_35 zips, hub URL /resolve/main/, "
    "unzipped into <root>/odinw/ keeping GLIP's folder names)"
)


def _member(m: OdinwMember, eval_split: str) -> SuiteMember:
    files = {
        split: tuple((f"odinw/{a}", f"odinw/{i}") for a, i in m.candidates(split)) for split in ("train", "val", "test")
    }
    return SuiteMember(
        name=f"odinw13/{m.name}",
        loader_format="odinw",
        eval_split=eval_split,
        files=files,
        options=(("class_names", m.classes),),
    )


def odinw13_suite(name: str, *, finetune: bool, mini: bool) -> Suite:
    return Suite(
        name=name,
        version="1.0",
        description=(
            (
                "ODinW13 fine-tuning: per dataset, early stop on val, test AP of the best-val checkpoint"
                if finetune
                else "ODinW13 zero-shot: COCO AP on each dataset's val split (mini_val for "
                "EgoHands/Vehicles, as GLIP; mmdetection's configs score their valid/)"
            )
            + ", unweighted mean over the 13"
            + (" — on the generated mini world" if mini else "")
        ),
        members=tuple(_member(m, "test" if finetune else "val") for m in ODINW13),
        metrics=("coco",),
        prompt_style="verbatim",
        max_dets_per_image=100,
        setting="finetune" if finetune else "zero-shot",
        aggregate="mean",
        mini=mini,
        download="detclip-bench data make-mini --out DIR" if mini else _DOWNLOAD,
    )
