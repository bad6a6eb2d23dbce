"""Tests of the sunspot forecasting service."""
