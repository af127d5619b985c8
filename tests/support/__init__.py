"""Test helpers, one module per topic (plain functions and constants, no fixtures).

Fixtures live in the conftest files and nothing imports a conftest: what a test
needs from the suite's set-up (database URLs, the test key) is in
:mod:`support.databases`.
"""
