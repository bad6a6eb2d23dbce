"""The one home of Kafka I/O: client construction from the settings, reading a topic to its
end, topic specs and their creation, the brokers' refusals, the ACL list, codecs and the
kafka-python compatibility shims.

Every other runtime module asks this package for what it needs of Kafka and does not import
kafka-python itself, so a change of client library, or of a client setting, is made here.
"""
