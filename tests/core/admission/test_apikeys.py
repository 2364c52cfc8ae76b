"""KeyRing matches configured keys only and names their tenant; fingerprints never reveal keys."""

import pytest

from core.admission.apikeys import ApiKey, KeyRing, fingerprint
from core.errors import ConfigError


def test_only_configured_keys_match() -> None:
    ring = KeyRing.from_entries(["alpha", "beta"])
    assert ring.tenant_of("alpha") == "default"
    assert ring.tenant_of("beta") == "default"
    assert ring.tenant_of("alph") is None
    assert ring.tenant_of("") is None
    assert KeyRing([]).tenant_of("alpha") is None


def test_entries_name_their_tenant_and_a_bare_key_is_the_default_tenants() -> None:
    ring = KeyRing.from_entries(["acme:k1", "globex:k2", "k3", "default:a:b"])
    assert ring.tenant_of("k1") == "acme"
    assert ring.tenant_of("k2") == "globex"
    assert ring.tenant_of("k3") == "default"
    assert ring.tenant_of("a:b") == "default"
    assert ring.tenant_of("acme:k1") is None
    assert ring.tenants == {"acme", "globex", "default"}


def test_a_prefix_that_is_no_tenant_name_is_part_of_a_bare_key() -> None:
    assert ApiKey.parse("not a tenant:secret") == ApiKey("default", "not a tenant:secret")


@pytest.mark.parametrize("entries", [["acme:same", "globex:same"], ["acme:"]])
def test_a_key_of_two_tenants_or_an_empty_key_is_a_configuration_error(
    entries: list[str],
) -> None:
    with pytest.raises(ConfigError):
        KeyRing.from_entries(entries)


def test_fingerprint_is_stable_short_and_not_the_key() -> None:
    assert fingerprint("alpha") == fingerprint("alpha")
    assert fingerprint("alpha") != fingerprint("beta")
    assert "alpha" not in fingerprint("alpha")
    assert len(fingerprint("alpha")) == 12
