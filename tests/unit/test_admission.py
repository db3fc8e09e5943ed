import pytest

from gateway import metrics
from gateway.domain.errors import Overloaded
from gateway.service.admission import Admission, parse_rate_limits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_refills_over_time() -> None:
    clock = Clock()
    admission = Admission(100, {"police": 2}, clock=clock)
    for _ in range(2):
        with admission.admit("police"):
            pass
    with pytest.raises(Overloaded) as caught, admission.admit("police"):
        pass
    assert caught.value.reason == "RATE_LIMITED" and 0 < caught.value.retry_after_seconds <= 0.5
    clock.now += 0.5
    with admission.admit("police"):
        pass
    with admission.admit("judicial"):  # no limit configured
        pass


def test_in_progress_cap_sheds_and_recovers() -> None:
    admission = Admission(1, {})
    with admission.admit("judicial"):
        with pytest.raises(Overloaded) as caught, admission.admit("police"):
            pass
        assert caught.value.reason == "OVERLOADED"
    with admission.admit("police"):
        assert admission.in_progress == 1
    assert admission.in_progress == 0


def test_rate_limit_setting_is_parsed_and_checked() -> None:
    assert parse_rate_limits(" police=1000, ngo=2.5 ") == {"police": 1000.0, "ngo": 2.5}
    assert parse_rate_limits("") == {}
    with pytest.raises(ValueError, match="'ngo=fast' is not AGENCY=MESSAGES_PER_SECOND"):
        parse_rate_limits("ngo=fast")


def test_shed_load_is_counted_as_refused_by_agency_and_reason() -> None:
    refused = metrics.REFUSED.labels("procuratorate", "", "OVERLOADED")
    before = refused._value.get()
    admission = Admission(1, {})
    with (
        admission.admit("judicial"),
        pytest.raises(Overloaded),
        admission.admit("procuratorate"),
    ):
        pass
    assert refused._value.get() == before + 1
