import pytest

from cityedge.transport.backoff import TokenBucket, full_jitter_delay


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 0.5), (1, 1.0), (3, 4.0), (10, 60.0), (500, 60.0)])
def test_full_jitter_spans_zero_to_the_capped_exponential(attempt: int, ceiling: float) -> None:
    assert full_jitter_delay(attempt, 0.5, 60.0, 0.0) == 0.0
    assert full_jitter_delay(attempt, 0.5, 60.0, 0.999999) == pytest.approx(ceiling, rel=1e-5)
    assert full_jitter_delay(attempt, 0.5, 60.0, 0.5) == pytest.approx(ceiling / 2)


def test_token_bucket_allows_a_burst_then_paces_to_the_rate() -> None:
    bucket = TokenBucket(rate=100.0, burst=50.0)
    assert bucket.take(50, now=0.0) == 0.0
    assert bucket.take(10, now=0.0) == pytest.approx(0.1)
    # after waiting, tokens refill at the rate
    assert bucket.take(10, now=0.3) == 0.0


def test_token_bucket_never_saves_more_than_its_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0)
    bucket.take(0, now=0.0)
    assert bucket.take(6, now=1000.0) == pytest.approx(0.1)
