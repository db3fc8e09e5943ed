"""The domain: kinds, units, validation, minimized views, policy, routing,
the linkage protocol and the registry. Pure Python: no SQLAlchemy, pika or grpc."""
