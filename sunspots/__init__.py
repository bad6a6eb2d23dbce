"""Shared core of the sunspot forecasting service: data, schemas, window, model artifacts, Kafka settings."""
