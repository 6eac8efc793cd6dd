"""Tools no pipeline stage runs: the full-size benchmark and the demo-archive generator.

Kept out of the folders the stages depend on, so editing them reruns nothing."""
