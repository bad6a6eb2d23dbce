"""The domain: the sunspot series and its windows, the LSTM run in NumPy, prediction intervals,
drift, evaluation and the model artifacts. Pure computation: nothing here knows Kafka, the
wire format or the process it runs in."""
