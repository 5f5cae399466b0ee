"""The driftwatch command: its subcommands, the ops API client, the demo, replay and
recordings.
"""
