"""The process edge: the command line, logging, signals and the bounded waits every command
shares (nothing here knows Kafka or the models)."""
