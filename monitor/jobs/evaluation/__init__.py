"""The evaluation detector: what evaluators and users said of the calls' answers, per segment
and evaluation name, against the reference. Its config (`config`), job (`job`), its
results' frozen details (`details`, which the CLI reads too, so it imports nothing heavy),
its report page (`report`) and its plugin (`plugin`), the one the daemon's table lists."""
