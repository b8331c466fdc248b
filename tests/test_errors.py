"""A failed trial's error text: the user's frames first, Ray's and tuner's after."""

from __future__ import annotations

import sysconfig
import textwrap
from pathlib import Path

from tuner._errors import is_library_file, reorder_traceback_text, trial_error_text

SITE = sysconfig.get_paths()["purelib"]


def _raise_through(tmp_path: Path) -> BaseException:
    """An exception raised by a user's objective, called through a fake stack of Ray
    frames (a file under site-packages/ray/) and a tuner frame, as in a trial."""
    user = tmp_path / "my_objective.py"
    user.write_text(
        textwrap.dedent(
            """
            def objective(config):
                return helper(config["lr"])

            def helper(lr):
                raise ValueError(f"\\x1b[31mlearning rate must be positive (got {lr})\\x1b[0m")
            """
        )
    )
    ray_file = f"{SITE}/ray/air/_internal/fake_util.py"  # never written: a name only
    namespace: dict = {}
    exec(compile(user.read_text(), str(user), "exec"), namespace)
    runner = compile("def run(target, config):\n    return target(config)\n", ray_file, "exec")
    exec(runner, namespace)
    try:
        namespace["run"](namespace["objective"], {"lr": -1})
    except ValueError as e:
        return e
    raise AssertionError("the objective did not raise")


def test_the_users_frames_come_first_and_the_summary_names_type_and_message(tmp_path):
    text = trial_error_text(_raise_through(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "ValueError: learning rate must be positive (got -1)"
    assert "\x1b" not in text
    user_at = text.index("Your code")
    library_at = text.index("Library frames")
    assert user_at < library_at
    user_part = text[user_at:library_at]
    assert "my_objective.py" in user_part and "in objective" in user_part
    assert "in helper" in user_part
    assert "fake_util.py" not in user_part
    assert "fake_util.py" in text[library_at:]
    # The user's frames in call order: objective, then helper (most recent last).
    assert user_part.index("in objective") < user_part.index("in helper")


def test_a_chained_exception_is_named_after_the_traceback():
    try:
        try:
            {}["lr"]
        except KeyError as e:
            raise RuntimeError("no learning rate") from e
    except RuntimeError as e:
        text = trial_error_text(e)
    assert text.splitlines()[0] == "RuntimeError: no learning rate"
    assert text.splitlines()[-1] == "(raised from KeyError: 'lr')"


def test_ray_traceback_text_is_reordered_with_the_users_frames_first():
    ray_text = (
        "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=123, ip=127.0.0.1)\n"
        '  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/trainable.py", '
        "line 331, in train\n"
        "    raise skipped from exception_cause(skipped)\n"
        '  File "/venv/lib/python3.11/site-packages/tuner/trainers/_python.py", line 90, in run\n'
        "    returned = fn(dict(config))\n"
        "               ^^^^^^^^^^^^^^^^\n"
        '  File "/home/me/objective.py", line 4, in objective\n'
        '    raise ValueError("boom")\n'
        "ValueError: boom\n"
    )
    text = reorder_traceback_text(ray_text, summary="ValueError: boom")
    lines = text.splitlines()
    assert lines[0] == "ValueError: boom"
    assert lines[2] == "Your code (most recent call last):"
    assert lines[3] == '  File "/home/me/objective.py", line 4, in objective'
    assert lines[4] == '    raise ValueError("boom")'
    library = text[text.index("Library frames") :]
    assert "trainable.py" in library and "_python.py" in library and "^^^^" in library
    assert "ray::ImplicitFunc.train()" in library  # Ray's header kept, after the frames
    assert "\x1b" not in text


def test_text_without_frames_is_kept_after_its_summary():
    assert reorder_traceback_text("TuneError: gone") == "TuneError: gone"
    assert reorder_traceback_text("header\nTuneError: gone", "TuneError: gone").startswith(
        "TuneError: gone\n\nheader"
    )


def test_library_files_are_told_from_the_users():
    assert is_library_file(f"{SITE}/xgboost/core.py")
    assert is_library_file("/other/machine/lib/python3.11/site-packages/ray/worker.py")
    assert is_library_file(sysconfig.get_paths()["stdlib"] + "/threading.py")
    assert is_library_file("<frozen importlib._bootstrap>")
    assert not is_library_file("/home/me/project/objective.py")
    assert not is_library_file("<string>")
