"""Helpers shared by the tests, imported as ``support.<module>``: no test module imports
another."""
