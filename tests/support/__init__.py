"""Helpers shared by the test suites: real servers on loopback and other test fixtures."""
