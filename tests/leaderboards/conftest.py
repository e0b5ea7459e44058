from __future__ import annotations

import pytest

from leaderboards.results import ToolkitResult

ODINW_FOLDERS = [
    "PascalVOC",
    "AerialMaritimeDrone",
    "Aquarium",
    "CottontailRabbits",
    "EgoHands",
    "Mushrooms",
    "Packages",
    "Raccoon",
    "ShellfishOpenImages",
    "VehiclesOpenImages",
    "Pistols",
    "Pothole",
    "ThermalDogsAndPeople",
]


def make_result(**overrides) -> ToolkitResult:
    values = [50.0 + i for i in range(13)]
    fields = dict(
        model="detclipv2-swin-t",
        checkpoint="runs/t/model.safetensors",
        checkpoint_sha256="ab" * 32,
        suite="odinw13-finetune",
        suite_version="1",
        protocol="coco",
        setting="fine-tuned",
        scale="full",
        metrics={"AP": sum(values) / 13},
        per_dataset={n: {"AP": v} for n, v in zip(ODINW_FOLDERS, values, strict=True)},
        git_hash="0" * 40,
        date="2025-01-02T03:04:05+00:00",
    )
    fields.update(overrides)
    return ToolkitResult(**fields)


@pytest.fixture
def full_odinw_result() -> ToolkitResult:
    return make_result()


@pytest.fixture
def mini_results() -> list[ToolkitResult]:
    return [
        make_result(
            model="detclipv2-mini",
            suite="mini-odinw13-finetune",
            scale="mini",
            checkpoint_sha256="cd" * 32,
            metrics={"AP": 30.0},
            per_dataset={"shapes": {"AP": 20.0}, "digits": {"AP": 41.0}},
        ),  # stored 30.0 ≠ mean 30.5
        make_result(
            model="detclipv2-mini",
            suite="mini-lvis",
            scale="mini",
            protocol="lvis-fixed",
            setting="zero-shot",
            checkpoint_sha256="cd" * 32,
            metrics={"AP": 12.5, "APr": 4.0, "APc": 11.0, "APf": 16.0},
            per_dataset={},
        ),
    ]
