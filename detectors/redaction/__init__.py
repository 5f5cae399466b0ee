"""Redaction of personal data and secrets from every text that leaves the daemon.

One module per family of kinds, each a finder that returns `Span`s on the original text
(secrets, network: e-mail and IP, phones, finance: cards and IBANs, national: SSNs and other
national ids, context: documents, names and addresses), and `numbers`, the digit runs and the
words around them that cards, national ids and phones share; `redactor.Redactor` runs the
enabled ones, settles overlaps (spans.resolve) and substitutes placeholders; `config` is the
`redaction:` section.
"""
