"""The suite survives hostile destinations: each gets a clear failure and the other destinations' reports stay."""


import pytest

from tests.support import no_shrink_conftest, summary

DEV = "--hypothesis-profile=conformance-dev"

HOSTILE = "tests.zoo.hostile"  # the module of the hostile destinations


@pytest.fixture
def hostile(pytester: pytest.Pytester, zoo_importable: None) -> pytest.Pytester:
    """A pytester directory with the hostile destinations importable, run unshrunk (the tests read verdicts and
    messages)."""
    pytester.makeconftest(no_shrink_conftest("conformance-dev"))
    return pytester


def test_a_destination_that_kills_its_process_fails_and_others_are_reported(
    hostile: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under xdist a killed worker is a failure of that clause; the reference's verdicts are all there, and the
    run removes the example directories the killed workers left."""
    temp = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setenv("TMPDIR", str(temp))
    result = hostile.runpytest_subprocess(f"--destination={HOSTILE}:kills", "--destination=reference:registration",
                                          DEV, "-p", "no:cacheprovider", "-n", "2", "-k", "write", timeout=600)
    out = result.stdout.str()
    assert result.ret == 1
    killed = summary(out, f"{HOSTILE}:kills")
    assert killed["write.round-trip"] == "FAILED" and killed["write.count"] == "FAILED"
    assert "ended the worker process" in out
    reference = summary(out, "reference:registration")
    assert {reference[c] for c in ("write.round-trip", "write.count", "write.invalid-key-count")} == {"passed"}
    assert [p.name for p in temp.iterdir() if p.name.startswith("conformance-")] == []


@pytest.mark.parametrize(
    ("name", "clause", "evidence"),
    [
        ("wrong_type", "write.count", "write() returned '"),
        ("exits", "write.round-trip", "DestinationAborted: write() raised SystemExit: bye"),
        ("interrupts", "write.round-trip", "DestinationAborted: write() raised Interrupt"),
        ("lingers", "teardown.releases",
         "threads started by the destination still run after teardown(): ['never-ends']"),
    ],
)
def test_hostile_destination_fails_its_clause_and_the_run_goes_on(
    hostile: pytest.Pytester, name: str, clause: str, evidence: str
) -> None:
    """Wrong types, SystemExit, KeyboardInterrupt subclasses and endless threads fail a clause, nothing more."""
    result = hostile.runpytest_subprocess(f"--destination={HOSTILE}:{name}", "--destination=reference:registration",
                                          DEV, "-p", "no:cacheprovider", "-k", "write or releases", timeout=600)
    out = result.stdout.str()
    assert result.ret == 1
    assert summary(out, f"{HOSTILE}:{name}")[clause] == "FAILED"
    assert evidence in out
    assert "FAILED" not in summary(out, "reference:registration").values()


def test_megabytes_of_output_do_not_break_the_run(hostile: pytest.Pytester) -> None:
    """A destination that prints megabytes per write still gets its verdicts (pytest captures the output)."""
    result = hostile.runpytest_subprocess(f"--destination={HOSTILE}:chatty", DEV, "-p", "no:cacheprovider",
                                          "-k", "batches_read_back or every_record_class or empty_batch", timeout=600)
    assert result.ret == 0
    rows = summary(result.stdout.str(), f"{HOSTILE}:chatty")
    assert rows["write.round-trip"] == "passed" and rows["write.empty-batch"] == "passed"
