"""Offline training of the sunspot forecaster and the lesson's toy sequence classifier.

TensorFlow is imported lazily inside the training functions so that importing this package
(for its pure helpers) stays cheap and the serving code never pulls TF in.
"""
