"""Tests of the reference collector, against real servers on loopback."""
