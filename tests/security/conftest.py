"""The security tests use the centre's real fixtures (the shipped model's bundle, real
latents) and the brokers of tests/support."""

from tests.central.service import conftest as service_fixtures

bundle = service_fixtures.bundle
pool = service_fixtures.pool
feed = service_fixtures.feed
settings_for = service_fixtures.settings_for
