"""OTLP receivers (gRPC, HTTP) and the pure span -> LLMCall extraction."""
