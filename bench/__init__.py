"""The relay's benchmark (``bench/run``); bench/README.md says what each number means."""
