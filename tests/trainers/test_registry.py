"""The trainers' registry covers every trainer kind of the spec."""

from __future__ import annotations

from typing import get_args

from tuner.spec._model import TrainerSpec
from tuner.trainers import TRAINERS


def test_every_trainer_kind_has_a_prepare():
    union = get_args(TrainerSpec)[0]
    kinds = {get_args(m.model_fields["kind"].annotation)[0] for m in get_args(union)}
    assert kinds == set(TRAINERS)
