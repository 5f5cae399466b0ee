"""One reader per GenAI tracing convention, behind one interface, chosen by a classifier.

- `reader`: the `SpanReader` interface (what a span says about its call) and the table-driven
  `AttributeReader` every convention builds from its `Vocabulary`; span kinds.
- `genai`: OpenTelemetry GenAI semantic conventions, v1.26 to v1.37+ (the base the others
  build on); `openinference`, `openllmetry`, `openlit`: each one's own names and shapes.
- `classifier`: a span's kind and operation, and which reader reads it.
- `providers`: provider spellings normalised, and providers known by their API host.

Adding a convention is one module (its vocabulary, marks, kind rules and text shapes) and
its place in `classifier`. Shared reading of attribute values is `collectors.attributes`; the
message shapes every convention ends in are `collectors.messages`.
"""
