"""Shared fixtures: one FiftyOne state folder per session (real mongod), a tiny mini world, and
eval runs of a deterministic fake detector through the real suite runner."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from detclip_bench.adapters.base import Prediction
from detclip_bench.mini_world import generate
from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import evaluate_suite


class GtDerivedDetector:
    """Deterministic detections made from each image's GT: hits, duplicates, poorly localised boxes,
    class confusions and background boxes (all kinds the analysis must tell apart). Images are
    recognised by pixel hash, so call order does not matter."""

    name = "gt-derived-test-detector"

    def __init__(self, suite, root, seed: int = 0):
        self.table: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for target in suite.targets(root):
            ds = target.open()
            vocab = ds.vocabulary()
            index = {c.category_id: k for k, c in enumerate(vocab)}
            for i in range(len(ds)):
                s = ds[i]
                rng = np.random.default_rng([seed, int(s.record_id), len(vocab)])
                key = hashlib.sha256(s.load_image().tobytes()).hexdigest()
                self.table[key] = self._detections(s, index, len(vocab), rng)

    @staticmethod
    def _detections(s, index, n_cats, rng):
        boxes, scores, labels = [], [], []
        wh = np.array([s.width, s.height, s.width, s.height], np.float32)
        for box, concept in zip(s.boxes, s.box_concepts, strict=True):
            k = index[concept.category_id]
            size = box[2:] - box[:2]
            roll = rng.random()
            if roll < 0.75:  # a hit, slightly jittered
                boxes.append(box + rng.normal(0, 0.02, 4) * np.r_[size, size])
                scores.append(rng.uniform(0.3, 1.0))
                labels.append(k)
            if roll < 0.25:  # a duplicate of that hit
                boxes.append(box + rng.normal(0, 0.03, 4) * np.r_[size, size])
                scores.append(rng.uniform(0.05, 0.3))
                labels.append(k)
            if 0.6 < roll < 0.9:  # poorly localised: shifted by ~half its size
                boxes.append(box + 0.6 * np.r_[size, size])
                scores.append(rng.uniform(0.4, 0.95))
                labels.append(k)
            if n_cats > 1 and rng.random() < 0.3:  # confusion: right box, wrong class
                boxes.append(box.copy())
                scores.append(rng.uniform(0.2, 0.9))
                labels.append(int((k + 1 + rng.integers(n_cats - 1)) % n_cats))
        for _ in range(2):  # background boxes on random categories (unverified ones under LVIS rules)
            xy = rng.uniform(0, 0.7, 2) * wh[:2]
            boxes.append(np.r_[xy, xy + rng.uniform(0.1, 0.3, 2) * wh[:2]])
            scores.append(rng.uniform(0.05, 0.99))
            labels.append(int(rng.integers(n_cats)))
        b = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, wh)
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
        return b, np.asarray(scores, np.float32), np.asarray(labels, np.int64)

    def identity(self):
        return "gt-derived-" + hashlib.sha256(repr(sorted(self.table)).encode()).hexdigest()

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        out = []
        for im in images:
            b, s, lab = self.table[hashlib.sha256(im.tobytes()).hexdigest()]
            keep = np.argsort(-s, kind="stable")[:max_dets_per_image]
            out.append(Prediction(b[keep], s[keep], lab[keep]))
        return out


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis_world")
    generate(root, scale=0.1, seed=0, progress=False)
    return root


def _run(tmp_path_factory, mini_root, suite_name):
    suite = get_suite(suite_name)
    out = tmp_path_factory.mktemp(suite_name)
    det = GtDerivedDetector(suite, mini_root)
    evaluate_suite(det, suite, mini_root, out_dir=out, cache_dir=None, progress=False)  # as `eval --no-cache`
    return out


@pytest.fixture(scope="session")
def lvis_run(tmp_path_factory, mini_root):
    return _run(tmp_path_factory, mini_root, "mini-lvis")


@pytest.fixture(scope="session")
def odinw_run(tmp_path_factory, mini_root):
    return _run(tmp_path_factory, mini_root, "mini-odinw13")
