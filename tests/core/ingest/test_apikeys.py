"""KeyRing matches configured keys only, and fingerprints never reveal the key."""

from core.ingest.apikeys import KeyRing, fingerprint


def test_only_configured_keys_match() -> None:
    ring = KeyRing(["alpha", "beta"])
    assert ring.matches("alpha")
    assert ring.matches("beta")
    assert not ring.matches("alph")
    assert not ring.matches("")
    assert not KeyRing([]).matches("alpha")


def test_fingerprint_is_stable_short_and_not_the_key() -> None:
    assert fingerprint("alpha") == fingerprint("alpha")
    assert fingerprint("alpha") != fingerprint("beta")
    assert "alpha" not in fingerprint("alpha")
    assert len(fingerprint("alpha")) == 12
