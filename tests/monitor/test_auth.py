from __future__ import annotations

from monitor.core.auth import bearer_matches

TOKEN = "s3cret-token-0123456789"


def test_one_bearer_value_with_the_token_matches_in_any_case_of_the_scheme() -> None:
    assert bearer_matches([f"Bearer {TOKEN}"], TOKEN)
    assert bearer_matches([f"bearer {TOKEN}"], TOKEN)
    assert bearer_matches([f"BEARER {TOKEN}".encode()], TOKEN)


def test_a_wrong_token_another_scheme_or_no_value_does_not_match() -> None:
    assert not bearer_matches([f"Bearer {TOKEN}x"], TOKEN)
    assert not bearer_matches([f"Basic {TOKEN}"], TOKEN)
    assert not bearer_matches([TOKEN], TOKEN)
    assert not bearer_matches([], TOKEN)


def test_two_values_are_refused_even_when_one_of_them_is_right() -> None:
    assert not bearer_matches([f"Bearer {TOKEN}", "Bearer other"], TOKEN)
    assert not bearer_matches(["Bearer other", f"Bearer {TOKEN}"], TOKEN)


def test_an_empty_token_matches_nothing_not_everything() -> None:
    assert not bearer_matches(["Bearer "], "")
    assert not bearer_matches(["Bearer"], "")
