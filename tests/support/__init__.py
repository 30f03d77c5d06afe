"""What test modules share: helpers and test data, never tests (pytest collects nothing
here). Fixtures live in the conftest.py files; a test module imports from here, never from
another test module or a conftest (tests/unit/test_suite_layout.py checks both)."""
