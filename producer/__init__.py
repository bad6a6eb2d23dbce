"""The producers: the SILSO replay and a small client for the classifier service."""
