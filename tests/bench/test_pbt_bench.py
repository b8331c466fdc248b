"""bench/pbt.py's problem, without Ray: the premise the comparison rests on (a rate that
falls during training beats every fixed rate), and a line that resumes from its
checkpoint trains exactly as one that never stopped."""

from __future__ import annotations

import numpy as np

from bench.pbt import FEATURES, _save, _state, train_step, valid_loss

BUDGET = 24  # the bench's default


def final_loss(rates) -> float:
    w = np.zeros(FEATURES)
    for step, lr in enumerate(rates):
        w = train_step(w, lr, step)
    return valid_loss(w)


def test_a_falling_rate_beats_every_fixed_rate():
    fixed = min(final_loss([lr] * BUDGET) for lr in np.logspace(-3, 0, 19))
    falling = final_loss([0.8 * 0.85**step for step in range(BUDGET)])
    assert falling < 0.5 * fixed
    # Early on the large rate leads, late the small one: the best rate moves.
    assert final_loss([0.5] * 4) < final_loss([0.05] * 4)
    w = np.zeros(FEATURES)
    for step in range(16):
        w = train_step(w, 0.5, step)
    late = {lr: valid_loss(train_step(train_step(w, lr, 16), lr, 17)) for lr in (0.5, 0.05)}
    assert late[0.05] < late[0.5]


def test_a_diverged_rate_reports_a_finite_loss():
    assert np.isfinite(final_loss([50.0] * 8))


def test_resuming_from_a_checkpoint_continues_the_line(tmp_path):
    w = np.zeros(FEATURES)
    for step in range(6):
        w = train_step(w, 0.3, step)
        if step == 2:
            _save(str(tmp_path), step, w)
    start, resumed = _state(tmp_path)
    assert start == 3
    for step in range(start, 6):
        resumed = train_step(resumed, 0.3, step)
    assert np.array_equal(resumed, w)
    assert _state(None)[0] == 0
