"""GP with trials in flight: the kriging believer in tuner.search._gp."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tuner._compat import optuna as compat
from tuner.search import build_searcher
from tuner.search._gp import BelieverGPSampler
from tuner.spec import load_spec

NAMES = ["x0", "x1", "x2"]
DISTS = {n: FloatDistribution(0.0, 1.0) for n in NAMES}


def bowl(x: np.ndarray) -> float:
    return float(((x - 0.3) ** 2).sum())


def history(n: int = 12, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.random(len(NAMES))
        params = dict(zip(NAMES, x.tolist(), strict=True))
        out.append(create_trial(params=params, distributions=DISTS, value=bowl(x)))
    return out


def ask(sampler: optuna.samplers.BaseSampler, trials: list) -> np.ndarray:
    """One suggestion from a study holding `trials` (finished and running)."""
    study = optuna.create_study(sampler=sampler)
    study.add_trials(trials)
    t = study.ask()
    return np.array([t.suggest_float(n, 0.0, 1.0) for n in NAMES])


def running(x: np.ndarray) -> optuna.trial.FrozenTrial:
    params = dict(zip(NAMES, x.tolist(), strict=True))
    return create_trial(params=params, distributions=DISTS, state=TrialState.RUNNING)


@pytest.fixture(autouse=True)
def _quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def test_believer_moves_away_from_pending_points_where_plain_gp_collapses():
    done = history()
    # Ignoring pending trials, GP proposes the same point again and again (any seed).
    plain = [ask(optuna.samplers.GPSampler(seed=s), done) for s in (0, 1, 2)]
    assert max(np.linalg.norm(p - plain[0]) for p in plain) < 1e-3
    # The believer, asked while that point and its own proposals are pending, keeps away.
    pending = [plain[0]]
    for n in (1, 2, 3):
        sampler = BelieverGPSampler(seed=0)
        x = ask(sampler, done + [running(p) for p in pending])
        assert sampler.n_believed == n
        assert min(np.linalg.norm(x - p) for p in pending) > 0.05
        pending.append(x)


def test_with_nothing_pending_it_is_exactly_gp_sampler():
    def run(cls: type) -> list[np.ndarray]:
        sampler, done, out = cls(seed=3), history(10, seed=1), []
        for _ in range(3):
            x = ask(sampler, done)
            done.append(
                create_trial(
                    params=dict(zip(NAMES, x.tolist(), strict=True)),
                    distributions=DISTS,
                    value=bowl(x),
                )
            )
            out.append(x)
        return out

    assert np.array_equal(run(BelieverGPSampler), run(optuna.samplers.GPSampler))


def test_other_optuna_internals_fall_back_to_plain_gp_sampler(monkeypatch, caplog):
    monkeypatch.setattr(compat, "check_gp_internals", lambda: "pretend they changed")
    done, pending = history(), [running(np.full(3, 0.3))]
    with caplog.at_level(logging.WARNING, logger="tuner.search._gp"):
        got = ask(BelieverGPSampler(seed=0), done + pending)
    assert "pretend they changed" in caplog.text
    assert np.array_equal(got, ask(optuna.samplers.GPSampler(seed=0), done + pending))


def test_a_fitted_gp_without_the_state_it_reads_falls_back_to_plain_gp_sampler(monkeypatch, caplog):
    # As if a later Optuna renamed an attribute of GPRegressor that believing() reads.
    monkeypatch.setattr(compat, "REGRESSOR_STATE", (*compat.REGRESSOR_STATE, "_renamed"))
    done, pending = history(), [running(np.full(3, 0.3))]
    sampler = BelieverGPSampler(seed=0)
    with caplog.at_level(logging.WARNING, logger="tuner.search._gp"):
        got = ask(sampler, done + pending)
    assert "has no _renamed" in caplog.text and sampler.n_believed == 0
    assert np.array_equal(got, ask(optuna.samplers.GPSampler(seed=0), done))


def test_searcher_believes_exactly_the_other_trials_in_flight():
    spec = load_spec(
        {
            "name": "s",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
            "search_space": {n: {"type": "float", "low": 0.0, "high": 1.0} for n in NAMES},
            "search": {"algorithm": "gp", "seed": 0},
        }
    )
    searcher = build_searcher(spec)
    sampler = searcher._sampler
    assert isinstance(sampler, BelieverGPSampler)
    for i in range(10):
        c = searcher.suggest(f"w{i}")
        searcher.on_trial_complete(f"w{i}", {"loss": bowl(np.array([c[n] for n in NAMES]))})
    believed = []
    for i in range(4):  # four in flight: each sees the ones asked before it
        searcher.suggest(f"p{i}")
        believed.append(sampler.n_believed)
    assert believed == [0, 1, 2, 3]
    searcher.on_trial_complete("p1", {"loss": 1.0})
    searcher.suggest("p4")
    assert sampler.n_believed == 3


def test_the_believing_gp_keeps_the_mean_and_collapses_the_variance_at_pending_points():
    import torch
    from optuna._gp import gp, prior

    done = history()
    X = np.array([[t.params[n] for n in NAMES] for t in done])
    y = np.array([t.value for t in done])
    fitted = gp.fit_kernel_params(
        X=X,
        Y=(y - y.mean()) / y.std(),
        is_categorical=np.zeros(len(NAMES), dtype=bool),
        log_prior=prior.default_log_prior,
        minimum_noise=prior.DEFAULT_MINIMUM_NOISE_VAR,
        deterministic_objective=False,
    )
    pending = torch.tensor([[0.3, 0.3, 0.3], [0.9, 0.1, 0.5]], dtype=torch.float64)
    probe = torch.tensor([[0.35, 0.3, 0.3], [0.1, 0.8, 0.8]], dtype=torch.float64)
    with torch.no_grad():
        mean, var = fitted.posterior(pending)
        before = fitted.posterior(probe)
        believer = compat.believing(fitted, pending, mean)
        b_mean, b_var = believer.posterior(pending)
        after = fitted.posterior(probe)
        near_var = believer.posterior(probe)[1]
    assert torch.allclose(b_mean, mean, atol=1e-6)  # the believed value is the mean
    assert (b_var < 0.05 * var).all()  # ... and is no longer uncertain
    assert near_var[0] < before[1][0]  # close to a pending point, less uncertain too
    # The fitted GP is untouched (Optuna starts its next fit from its kernel).
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
