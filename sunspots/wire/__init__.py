"""The wire contracts: the messages every topic carries (typed structs decoded and encoded in
C) and the JSON Schema documents published from the same definitions."""
