"""Images too large for one fit: how a row fits a worker's memory (`sizing`), and the row as groups
of tiles restored on any workers and blended by an assembly (`jobs`)."""
