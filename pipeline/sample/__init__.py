"""Realistic, invented sample audit logs for the demo and the tests."""
