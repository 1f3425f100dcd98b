from tests.e2e.conftest import system_settings  # noqa: F401  (the same tuned settings)
