"""The contract: stubs generated from protos/ (``python -m gateway.proto.codegen``)."""
