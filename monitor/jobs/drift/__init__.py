"""The drift detector: its job (`job`), its results' frozen details (`details`, which the
CLI reads too, so it imports nothing heavy), its report page (`report`) and its plugin
(`plugin`), the one the daemon's table lists."""
