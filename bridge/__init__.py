"""The bridge: transports, pipeline, outbox, sinks, configuration and the ``tillwire`` command line."""
