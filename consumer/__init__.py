"""The consumers: the sunspot forecaster and the toy sequence classifier, on Kafka."""
