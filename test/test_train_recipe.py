"""What a CPU pose recipe relies on: the optimizer by name, bf16 autocast where the CPU has it,
a time budget that holds across resumed processes, and the learning curve of a run's state
files on held-out pictures."""
import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

import torch  # noqa: E402

from mos_ros.evaluate import consistency as C  # noqa: E402
from mos_ros.evaluate.curve import (CurvePoint, detection_score, learning_curve,  # noqa: E402
                                    markdown, write_csv)
from mos_ros.evaluate.real_photos import HeldOutImage  # noqa: E402
from mos_ros.model import build_model, load_checkpoint  # noqa: E402
from mos_ros.train.checkpointing import model_from_state  # noqa: E402
from mos_ros.train.config import TrainConfig  # noqa: E402
from mos_ros.train.loop import _amp_context, bf16_supported, train  # noqa: E402
from mos_ros.train.schedule import make_optimizer  # noqa: E402
from mos_ros.train.weights import freeze_layers  # noqa: E402

from test_eval_consistency import _drawn_face, exact_reader, rigid_reader  # noqa: E402
from test_train import _tiny_config  # noqa: E402


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD),
                                        ("adamw", torch.optim.AdamW)])
def test_the_optimizer_is_chosen_by_name_and_holds_only_trainable_parameters(name, kind):
    model = build_model("mos-s-0.5")
    freeze_layers(model, ("body.conv1",))
    optimizer, _ = make_optimizer(model, TrainConfig(variant="mos-s-0.5", optimizer=name))
    assert isinstance(optimizer, kind)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert held == trainable and len(trainable) < len(list(model.parameters()))


def test_an_unknown_optimizer_is_named_with_the_choices():
    with pytest.raises(ValueError, match=r"optimizer must be one of \['adamw', 'sgd'\]"):
        TrainConfig(optimizer="adam")


def test_autocast_runs_the_network_in_bf16_only_where_the_device_has_it():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    cpu = torch.device("cpu")
    with _amp_context(cpu, True):
        on = conv(x)
    with _amp_context(cpu, False):
        off = conv(x)
    assert on.dtype == (torch.bfloat16 if bf16_supported(cpu) else torch.float32)
    assert off.dtype == torch.float32
    torch.testing.assert_close(on.float(), off, atol=0.1, rtol=0.05)


def test_a_resumed_run_keeps_the_time_budget_of_the_whole_run(tmp_path):
    """State files carry the training time; a resumed run whose budget is spent stops after
    one step instead of running on to ``iterations``."""
    changes = dict(iterations=40, checkpoint_every=2, batch_size=2, max_minutes=1.0)
    train(_tiny_config(tmp_path / "a", **dict(changes, iterations=2, max_minutes=0)))
    state = tmp_path / "a" / "state_00000002.pt"
    payload = torch.load(state, weights_only=False)
    assert 0 < payload["train_seconds"] < 600
    payload["train_seconds"] = 59.99          # as if the run had trained for almost a minute
    (tmp_path / "b").mkdir()
    torch.save(payload, tmp_path / "b" / "state_00000002.pt")
    final = train(_tiny_config(tmp_path / "b", **changes), resume="latest")
    assert torch.load(final, weights_only=False)["extra"]["iterations"] == 3
    assert torch.load(tmp_path / "b" / "state_00000003.pt",
                      weights_only=False)["train_seconds"] > 60


def test_a_state_file_gives_its_network(tmp_path):
    train(_tiny_config(tmp_path, iterations=2, checkpoint_every=2, batch_size=2))
    model = model_from_state(tmp_path / "state_00000002.pt")
    final, _ = load_checkpoint(tmp_path / "model_final.pth")
    for name, tensor in final.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name


def _figures(detect) -> dict:
    return C.evaluate_consistency(images=[_drawn_face()], detect=detect).as_dict()


def test_curve_rows_hold_the_model_and_the_constant_on_the_same_faces(tmp_path):
    exact, rigid = CurvePoint(100, _figures(exact_reader)), CurvePoint(0, _figures(rigid_reader))
    assert exact.row()["roll_30"] < 1.0 and exact.row()["kept_45"] == 1.0
    assert rigid.row()["roll_30"] == pytest.approx(30.0)
    assert rigid.row("constant")["eye_line_45"] == pytest.approx(45.0)
    table = markdown([rigid, exact])
    assert table[2].startswith("| constant |") and table[4].startswith("| 100 |")
    with open(write_csv([rigid, exact], tmp_path / "curve.csv")) as handle:
        header, first, second = (line.strip().split(",") for line in handle)
    assert header[0] == "iteration" and "constant_roll_30" in header
    assert [first[0], second[0]] == ["0", "100"]


def test_learning_curve_checks_each_state_once(tmp_path):
    """Every state file's network is checked, in iteration order; a second call reads the
    figures kept beside the run."""
    train(_tiny_config(tmp_path, iterations=4, checkpoint_every=2, batch_size=2))
    points = learning_curve(tmp_path, images=[_drawn_face()])
    assert [p.iteration for p in points] == [2, 4]
    cached = sorted((tmp_path / "curve").glob("*.json"))
    assert [c.name for c in cached] == ["state_00000002.json", "state_00000004.json"]
    figures = json.loads(cached[1].read_text())
    assert figures["model"].endswith("state_00000004.pt") and figures["images"] == 1
    assert figures["detection"]["images"] == 1 and figures["detection"]["large_faces"] == 1
    assert points[-1].row()["fp_per_image"] == figures["detection"]["fp_per_image"]
    stamps = [c.stat().st_mtime_ns for c in cached]
    again = learning_curve(tmp_path, images=[_drawn_face()])
    assert [p.figures for p in again] == [p.figures for p in points]
    assert [c.stat().st_mtime_ns for c in cached] == stamps
    del figures["detection"]                    # a cache from before detection was scored
    cached[1].write_text(json.dumps(figures))
    third = learning_curve(tmp_path, images=[_drawn_face()])
    assert third[-1].figures == points[-1].figures
    # Figures of another set of images (the catalogue gained photos) are measured again.
    drawn = _drawn_face()
    other = HeldOutImage("other", drawn.image, drawn.faces)
    more = learning_curve(tmp_path, images=[drawn, other])
    assert [p.figures["images"] for p in more] == [2, 2]
    assert [p.figures["detection"]["images"] for p in more] == [2, 2]
    assert json.loads(cached[1].read_text())["image_names"] == ["drawn", "other"]
    with pytest.raises(FileNotFoundError, match="no state_"):
        learning_curve(tmp_path / "curve")


def test_curve_detection_counts_found_faces_and_false_positives():
    """The exact reader finds the drawn face; a reader that also answers a face far away
    has one false positive in one image."""
    image = _drawn_face()
    assert detection_score(exact_reader, [image]).recall_large == 1.0

    def with_ghost(picture):
        face = exact_reader(picture)[0]
        return [face, dataclasses.replace(face, box=np.array([0.0, 0.0, 8.0, 8.0]))]
    score = detection_score(with_ghost, [image])
    assert score.fp_per_image == 1.0 and score.recall_large == 1.0
