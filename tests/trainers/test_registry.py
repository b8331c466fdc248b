"""The trainers' registry covers every trainer kind of the spec."""

from __future__ import annotations

from typing import get_args

from tuner.spec._model import TrainerSpec
from tuner.trainers import TRAINERS


def test_every_trainer_kind_has_a_prepare():
    union = get_args(TrainerSpec)[0]
    kinds = {get_args(m.model_fields["kind"].annotation)[0] for m in get_args(union)}
    assert kinds == set(TRAINERS)


def test_a_python_trial_loads_in_a_new_worker_without_the_spec_models():
    """Each new trial worker process unpickles the trial function; with 64 trials in
    flight that is 64 processes, and the spec's pydantic models cost each about 0.2 s of
    CPU to import. The python trainer's trial must not pull them in."""
    import subprocess
    import sys

    import ray.cloudpickle as cloudpickle

    from tuner.spec import load_spec
    from tuner.trainers import prepare

    spec = load_spec(
        {
            "name": "light",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
            "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
            "early_stopping": {"patience": 3},
        }
    )
    blob = cloudpickle.dumps(prepare(spec).trainable)
    code = (
        "import sys, ray.cloudpickle as cp\n"
        "fn = cp.loads(sys.stdin.buffer.read())\n"
        "assert callable(fn)\n"
        "print(sorted(m for m in sys.modules if m.startswith('tuner.spec')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=blob, capture_output=True, check=True, timeout=120
    )
    assert out.stdout.decode().strip() == "[]"
