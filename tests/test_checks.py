"""run_check: a student's exception never escapes, and the report says what is off."""

import pytest

from dlmi_utils.course.checks import NOT_IMPLEMENTED, CheckFailed, CheckResult, run_check


def _equals(expected):
    def case(f):
        got = f()
        if got != expected:
            raise CheckFailed(f"expected {expected}, got {got}")
    return case


def test_all_cases_passing_is_passed():
    result = run_check("answer", lambda: 42, [("a", _equals(42)), ("b", _equals(42))])
    assert (result.status, result.passed, result.total, result.ok) == ("passed", 2, 2, True)
    assert result.report() == "PASSED  answer: all 2 checks passed"


def test_failed_case_gives_its_hint_and_partial_score():
    result = run_check("answer", lambda: 41, [("a", _equals(41)), ("b", _equals(42))])
    assert result.status == "failed" and result.score == 0.5 and not result.ok
    assert result.messages == ["b: expected 42, got 41"]
    assert result.report().splitlines() == ["FAILED  answer: 1/2 checks passed",
                                            "        - b: expected 42, got 41"]


def test_not_implemented_stops_at_the_first_case():
    seen = []

    def stub():
        seen.append(1)
        raise NotImplementedError("answer is not implemented yet")

    result = run_check("answer", stub, [("a", _equals(1)), ("b", _equals(2))])
    assert result.status == "not_implemented" and len(seen) == 1
    assert NOT_IMPLEMENTED in result.report()


def test_student_exception_is_caught_and_located():
    def broken():
        return 1 / 0

    result = run_check("answer", broken, [("a", _equals(1)), ("b", _equals(1))])
    assert result.status == "error" and result.passed == 0
    assert result.messages[0].startswith("a: ZeroDivisionError: division by zero (at line")
    assert "`return 1 / 0`" in result.messages[0]


def test_an_exception_in_some_cases_only_is_a_failure():
    def sometimes(x):
        if x < 0:
            raise ValueError("negative")
        return x

    def case(value):
        return lambda f: f(value)

    result = run_check("f", sometimes, [("pos", case(1)), ("neg", case(-1))])
    assert result.status == "failed" and result.passed == 1
    assert result.messages[0].startswith("neg: ValueError: negative (at line")


@pytest.mark.parametrize("fn", [None, 3, "psnr"])
def test_something_not_callable_is_an_error_with_a_hint(fn):
    result = run_check("psnr", fn, [("a", _equals(1))])
    assert result.status == "error" and "did you run the exercise cell?" in result.messages[0]


def test_keyboard_interrupt_is_not_swallowed():
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_check("f", interrupted, [("a", _equals(1))])


def test_result_displays_as_its_report():
    result = CheckResult("f", 0, 1, "error", ["a: boom"])
    assert repr(result) == result.report() == "ERROR   f: your code raised an exception\n" \
                                              "        - a: boom"


def test_yours_or_reference_follows_the_last_check(capsys):
    from dlmi_utils.course.checks import yours_or_reference

    def reference():
        return 42

    def stub():
        raise NotImplementedError

    run_check("answer_fallback", stub, [("a", _equals(42))])
    assert yours_or_reference("answer_fallback", stub, reference) is reference
    assert "has not passed its check yet (not implemented)" in capsys.readouterr().out
    mine = lambda: 42  # noqa: E731
    run_check("answer_fallback", mine, [("a", _equals(42))])
    assert yours_or_reference("answer_fallback", mine, reference) is mine
    assert "using your answer_fallback" in capsys.readouterr().out
    run_check("answer_fallback", lambda: 41, [("a", _equals(42))])
    assert yours_or_reference("answer_fallback", mine, reference) is reference


def test_yours_or_reference_without_a_check_says_what_to_run():
    from dlmi_utils.course.checks import yours_or_reference

    with pytest.raises(ValueError, match="run its check cell first"):
        yours_or_reference("never_checked_exercise", print, print)
